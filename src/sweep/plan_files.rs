//! A sweep's folder holds its plan: one config file per run under `plan/` (what
//! `regulab run` takes, each naming its document in the folder). Running the same sweep
//! again finds the same plan and continues; a different sweep is refused, naming the
//! folder, unless `--overwrite`.

use super::SweepPoint;
use crate::config::{ConfigValues, NOT_IDENTITY};
use crate::util::write_json_atomic;
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// `DIR/plan/NAME.json` for a run document `NAME.json`.
pub fn plan_path(folder: &Path, file: &str) -> PathBuf {
    folder.join("plan").join(file)
}

/// What a plan file says about a run, less what does not change its numbers.
fn identity(values: &Value) -> Value {
    let mut values = values.clone();
    if let Value::Object(map) = &mut values {
        map.retain(|key, _| !NOT_IDENTITY.contains(&key.as_str()));
    }
    values
}

/// Checks that `folder` is empty, or holds this same sweep, then writes the plan. With
/// `overwrite`, another sweep's plan, documents and summary there are removed first.
pub fn prepare(folder: &Path, points: &[SweepPoint], overwrite: bool) -> Result<()> {
    let planned: Vec<(String, Value)> = points
        .iter()
        .map(|p| {
            Ok((
                p.file.clone(),
                serde_json::to_value(ConfigValues::from(p.config.clone()))?,
            ))
        })
        .collect::<Result<_>>()?;
    if let Some(difference) = difference(folder, &planned)? {
        if !overwrite {
            bail!(
                "--out {}: holds {difference}; choose another folder, or pass --overwrite to replace it",
                folder.display()
            );
        }
        clear(folder)?;
    }
    for (file, values) in &planned {
        let path = plan_path(folder, file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| {
                format!(
                    "--out {}: cannot create {}",
                    folder.display(),
                    parent.display()
                )
            })?;
        }
        write_json_atomic(&path, values)?;
    }
    Ok(())
}

/// How the folder differs from this sweep, in words; `None` when it is empty or holds the
/// same plan.
fn difference(folder: &Path, planned: &[(String, Value)]) -> Result<Option<String>> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Ok(None); // does not exist yet
    };
    if entries.count() == 0 {
        return Ok(None);
    }
    let plan_dir = folder.join("plan");
    let Ok(existing) = std::fs::read_dir(&plan_dir) else {
        return Ok(Some(
            "files that are not a sweep's (it has no plan/)".into(),
        ));
    };
    let mut existing: Vec<String> = existing
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    existing.sort();
    let mut names: Vec<String> = planned.iter().map(|(file, _)| file.clone()).collect();
    names.sort();
    if existing != names {
        return Ok(Some(format!(
            "another sweep ({} runs planned there, {} here)",
            existing.len(),
            names.len()
        )));
    }
    for (file, values) in planned {
        let path = plan_path(folder, file);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let recorded: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if identity(&recorded) != identity(values) {
            return Ok(Some(format!(
                "another sweep ({file} is planned with other settings)"
            )));
        }
    }
    Ok(None)
}

/// Removes another sweep's plan, run documents, their files and its summary.
pub fn clear(folder: &Path) -> Result<()> {
    let plan_dir = folder.join("plan");
    let _ = std::fs::remove_dir_all(&plan_dir);
    // Its Slurm jobs name its runs, not this sweep's.
    let _ = std::fs::remove_dir_all(folder.join("slurm"));
    for entry in
        std::fs::read_dir(folder).with_context(|| format!("{}: cannot read", folder.display()))?
    {
        let path = entry?.path();
        if path.is_file() {
            std::fs::remove_file(&path)
                .with_context(|| format!("{}: cannot remove", path.display()))?;
        }
    }
    Ok(())
}

//! Where a run document goes, checked before any data is read so that a bad `--out` costs
//! nothing.

use crate::config::RunConfig;
use crate::schema::{load_run, ModelRole, RunDocument, RunStatus};
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};

/// The run document's path: the configured one or `runs/<time>-<command>.json`, checked
/// before any data is read.
pub(super) fn output_path(config: &RunConfig) -> Result<PathBuf> {
    let out =
        config.output.out.clone().unwrap_or_else(|| {
            crate::run_writer::default_run_path(&config.model_kind().to_string())
        });
    if out.is_dir() {
        bail!(
            "--out {}: is a folder; name the run document's file",
            out.display()
        );
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| {
            format!(
                "--out {}: cannot create folder {}",
                out.display(),
                parent.display()
            )
        })?;
    }
    Ok(out)
}

/// Refuses an output that would overwrite the data it reads.
pub(super) fn check_not_input(out: &Path, inputs: &[PathBuf]) -> Result<()> {
    let Ok(out_real) = out.canonicalize() else {
        return Ok(()); // does not exist yet: cannot be an input
    };
    for input in inputs {
        if input.canonicalize().is_ok_and(|i| i == out_real) {
            bail!(
                "--out {}: is an input data file; name another path for the run document",
                out.display()
            );
        }
    }
    Ok(())
}

pub(super) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// What `--out` already holds, as far as this run is concerned.
pub(super) enum EarlierRun {
    /// Nothing (or something `--overwrite` replaces, or a failed try of this run).
    None,
    /// This run, completed or diverged: its result stands.
    Finished(Box<RunDocument>),
    /// This run, interrupted or killed: it continues from its checkpoint when that belongs
    /// to it.
    Unfinished(Box<RunDocument>),
}

/// Applies the output rule: a path may hold only this same run's own earlier document (same
/// id); anything else is refused, naming it, unless `overwrite`.
pub(super) fn earlier_run(out: &Path, run_id: &str, overwrite: bool) -> Result<EarlierRun> {
    if overwrite || !out.exists() {
        return Ok(EarlierRun::None);
    }
    let shown = out.display();
    let document = load_run(out).map_err(|_| {
        anyhow!(
            "--out {shown}: holds a file that is not this run's document; choose another --out, or pass --overwrite to replace it"
        )
    })?;
    if document.run_id != run_id {
        let other = if document.run_id.is_empty() {
            "a run of an earlier regulab".to_string()
        } else {
            format!("another run (id {})", document.run_id)
        };
        bail!(
            "--out {shown}: holds {other}, {}; choose another --out, or pass --overwrite to replace it",
            document.status
        );
    }
    Ok(match document.status {
        RunStatus::Completed | RunStatus::Diverged => EarlierRun::Finished(Box::new(document)),
        RunStatus::Running | RunStatus::Interrupted => EarlierRun::Unfinished(Box::new(document)),
        RunStatus::Failed => EarlierRun::None,
    })
}

/// Removes the files an earlier run left beside `out` (checkpoint, saved models), so that a
/// fresh run never mixes with them.
pub(super) fn remove_run_files(out: &Path) {
    let mut files = vec![crate::checkpoint::path_for(out)];
    for role in [ModelRole::Final, ModelRole::Selected] {
        files.push(crate::model_file::path_for(out, role));
    }
    for file in files {
        let _ = std::fs::remove_file(file);
    }
}

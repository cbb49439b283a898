//! Where a run document goes, checked before any data is read so that a bad `--out` costs
//! nothing.

use crate::config::RunConfig;
use anyhow::{bail, Context, Result};
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

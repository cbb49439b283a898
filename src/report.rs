//! The run document: the versioned JSON that holds a run's configuration and curves.
//!
//! It is rewritten atomically (temp file + rename) after every epoch, so an interrupted,
//! crashed or diverged run still leaves a valid file whose `status` says how it ended.
//! The schema is documented in README.md ("The run document"); bump [`SCHEMA_VERSION`]
//! on any change that removes or renames a field.

use crate::regularization::RegularizationReport;
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The version of the run and sweep documents this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;
/// The `kind` of a run document.
pub const RUN_KIND: &str = "regulab-run";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Completed,
    Interrupted,
    Diverged,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    pub regulab_version: &'static str,
    pub torch_version: &'static str,
    pub device: String,
    pub cuda_available: bool,
    pub cpu_threads: i32,
}

impl Environment {
    pub fn collect(device: tch::Device) -> Self {
        Environment {
            regulab_version: env!("CARGO_PKG_VERSION"),
            torch_version: crate::info::TORCH_VERSION,
            device: crate::device::device_name(device),
            cuda_available: tch::Cuda::is_available(),
            cpu_threads: tch::get_num_threads(),
        }
    }
}

/// Losses and metrics of one split after an epoch. Non-finite values serialize as `null`.
pub type SplitRecord = BTreeMap<String, f64>;

#[derive(Debug, Clone, Serialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train: SplitRecord,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation: Option<SplitRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<SplitRecord>,
    pub weight_norms: BTreeMap<String, f64>,
    pub implied_weight_decay_loss: f64,
    pub lr: f64,
    /// Training time of the epoch (excluding evaluation).
    pub seconds: f64,
    pub eval_seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    pub epoch: usize,
    /// 1-based count of optimizer steps since the start of the run.
    pub step: usize,
    pub base_loss: f64,
    pub reg_loss: f64,
    pub total_loss: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunDocument {
    pub schema_version: u32,
    pub kind: &'static str,
    pub command: String,
    pub status: RunStatus,
    pub message: Option<String>,
    pub started_at: String,
    pub updated_at: String,
    pub config: serde_json::Value,
    pub dataset: serde_json::Value,
    pub environment: Environment,
    pub regularization: RegularizationReport,
    /// The headline test metric: `rmse` (lower is better) or `accuracy` (higher is better).
    pub metric: &'static str,
    pub epochs: Vec<EpochRecord>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepRecord>,
    pub summary: serde_json::Map<String, serde_json::Value>,
}

/// Owns the document and its file.
pub struct RunWriter {
    pub path: PathBuf,
    pub document: RunDocument,
}

pub fn now_utc() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// `runs/<UTC time>-<command>.json`.
pub fn default_run_path(command: &str) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S%.3f");
    PathBuf::from("runs").join(format!("{stamp}-{command}.json"))
}

impl RunWriter {
    pub fn new(path: PathBuf, document: RunDocument) -> Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).with_context(|| {
                format!(
                    "--out {}: cannot create folder {}",
                    path.display(),
                    parent.display()
                )
            })?;
        }
        let writer = RunWriter { path, document };
        writer.save()?;
        Ok(writer)
    }

    /// Writes the whole document to a temp file beside the target, then renames it over the
    /// target: readers see the old or the new file, never a half-written one.
    pub fn save(&self) -> Result<()> {
        write_json_atomic(&self.path, &self.document)
    }

    pub fn finish(&mut self, status: RunStatus, message: Option<String>) -> Result<()> {
        self.document.status = status;
        self.document.message = message;
        self.document.updated_at = now_utc();
        self.save()
    }
}

pub fn write_json_atomic(path: &Path, value: &impl Serialize) -> Result<()> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run.json".into());
    let temp = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    let text = serde_json::to_string_pretty(value).context("serializing the run document")?;
    std::fs::write(&temp, text + "\n")
        .with_context(|| format!("{}: cannot write", temp.display()))?;
    std::fs::rename(&temp, path)
        .with_context(|| format!("{}: cannot replace with {}", path.display(), temp.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_values_serialize_as_null() {
        let mut record = SplitRecord::new();
        record.insert("total_loss".into(), f64::NAN);
        record.insert("base_loss".into(), 1.5);
        let text = serde_json::to_string(&record).unwrap();
        assert_eq!(text, r#"{"base_loss":1.5,"total_loss":null}"#);
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.json");
        write_json_atomic(&path, &serde_json::json!({"a": 1})).unwrap();
        write_json_atomic(&path, &serde_json::json!({"a": 2})).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap()["a"],
            2
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

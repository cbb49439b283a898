//! Writing the run document ([`crate::schema::RunDocument`]) while a run trains.
//!
//! The document is rewritten atomically (temp file + rename) after every epoch, so an
//! interrupted, crashed or diverged run still leaves a valid file whose `status` says how
//! it ended.

use crate::schema::{Environment, MetricInfo, RunDocument, RunStatus, Summary};
use crate::train::{Event, Observer};
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

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

/// The machine a run trains on.
pub fn collect_environment(device: tch::Device) -> Environment {
    Environment {
        regulab_version: env!("CARGO_PKG_VERSION").into(),
        torch_version: crate::info::TORCH_VERSION.into(),
        device: crate::device::device_name(device),
        cuda_available: tch::Cuda::is_available(),
        cpu_threads: tch::get_num_threads(),
        cpu_threads_choice: String::new(),
    }
}

/// A lock file beside a run document (`.NAME.lock`, holding the writer's process id), so
/// that two runs never write one document. A lock left by a process that no longer exists
/// (killed with SIGKILL, a power cut) is taken over.
#[derive(Debug)]
pub struct OutputLock {
    path: PathBuf,
}

impl OutputLock {
    pub fn acquire(document: &Path) -> Result<Self> {
        let name = document
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = document.with_file_name(format!(".{name}.lock"));
        for _ in 0..2 {
            let created = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path);
            match created {
                Ok(mut file) => {
                    use std::io::Write;
                    let _ = write!(file, "{}", std::process::id());
                    return Ok(OutputLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|text| text.trim().parse::<i32>().ok());
                    if let Some(pid) = holder.filter(|&pid| process_exists(pid)) {
                        anyhow::bail!(
                            "--out {}: another regulab run (process {pid}) is writing it; wait for it or choose another --out",
                            document.display()
                        );
                    }
                    // Stale: its writer is gone.
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!(
                            "--out {}: cannot create {}",
                            document.display(),
                            path.display()
                        )
                    })
                }
            }
        }
        anyhow::bail!(
            "--out {}: cannot take over the lock {}",
            document.display(),
            path.display()
        )
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn process_exists(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    #[cfg(unix)]
    {
        // Signal 0 checks existence without sending anything; EPERM means it exists.
        let result = unsafe { libc::kill(pid, 0) };
        result == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        true
    }
}

/// Owns the document and its file; as an observer it records epochs and logged steps.
pub struct RunWriter {
    pub path: PathBuf,
    pub document: RunDocument,
    started: Instant,
    /// Training time before this process (a resumed run's earlier part).
    prior_seconds: f64,
    _lock: OutputLock,
}

impl RunWriter {
    /// Writes the initial document (status `running`).
    pub fn create(path: PathBuf, document: RunDocument, lock: OutputLock) -> Result<Self> {
        let writer = RunWriter {
            path,
            document,
            started: Instant::now(),
            prior_seconds: 0.0,
            _lock: lock,
        };
        writer.save()?;
        Ok(writer)
    }

    pub fn save(&self) -> Result<()> {
        write_json_atomic(&self.path, &self.document)
    }

    pub fn set_prior_seconds(&mut self, seconds: f64) {
        self.prior_seconds = seconds;
    }

    pub fn metric(&self) -> &MetricInfo {
        &self.document.metric
    }

    /// Records how the run ended, with the findings about its curves, and writes the final
    /// document.
    pub fn finish(&mut self, status: RunStatus, message: Option<String>) -> Result<()> {
        self.document.status = status;
        self.document.message = message;
        self.refresh_summary();
        self.document.diagnostics = crate::explain::explain(&self.document);
        self.save()
    }

    fn refresh_summary(&mut self) {
        let stop_reason = self.document.summary.stop_reason.take();
        let restored = self.document.summary.restored.take();
        self.document.summary = Summary::from_epochs(
            &self.document.epochs,
            &self.document.metric,
            self.prior_seconds + self.started.elapsed().as_secs_f64(),
        );
        self.document.summary.stop_reason = stop_reason;
        self.document.summary.restored = restored;
        self.document.updated_at = now_utc();
    }
}

impl Observer for RunWriter {
    fn on_event(&mut self, event: &Event) -> Result<()> {
        match event {
            Event::EpochEnded(record) => {
                self.document.epochs.push((*record).clone());
                self.refresh_summary();
                self.save()
            }
            Event::StepLogged(step) => {
                self.document.steps.push((*step).clone());
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Writes `value` as JSON to a temp file beside `path`, then renames it over `path`: readers
/// see the old or the new file, never a half-written one. Errors name `path`; the temp file
/// never survives a failed write.
pub fn write_json_atomic(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).context("serializing the document")?;
    write_atomic(path, (text + "\n").as_bytes())
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "document".into());
    let temp = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    let written = std::fs::write(&temp, bytes).and_then(|()| std::fs::rename(&temp, path));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(error).with_context(|| format!("{}: cannot write", path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_second_writer_is_refused_and_a_stale_lock_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let document = dir.path().join("run.json");
        let lock = OutputLock::acquire(&document).unwrap();
        let error = OutputLock::acquire(&document).unwrap_err().to_string();
        assert!(error.contains("another regulab run"), "{error}");
        drop(lock);
        // A lock whose process is gone.
        std::fs::write(dir.path().join(".run.json.lock"), "999999999").unwrap();
        let lock = OutputLock::acquire(&document).unwrap();
        drop(lock);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_failed_write_names_the_path_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("taken");
        std::fs::create_dir(&target).unwrap();
        let error = write_json_atomic(&target, &1).unwrap_err();
        assert!(format!("{error:#}").starts_with(&format!("{}: cannot write", target.display())));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

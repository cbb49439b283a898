//! Writing the run document ([`crate::schema::RunDocument`]) while a run trains.
//!
//! The document is rewritten atomically (temp file + rename) after every epoch, so an
//! interrupted, crashed or diverged run still leaves a valid file whose `status` says how
//! it ended.

use crate::schema::{Environment, MetricInfo, RunDocument, RunStatus, Summary};
use crate::train::{Event, Observer};
use crate::util::{now_utc, write_json_atomic, OutputLock};
use anyhow::Result;
use std::path::PathBuf;
use std::time::Instant;

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
        engine: String::new(),
        engine_choice: String::new(),
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

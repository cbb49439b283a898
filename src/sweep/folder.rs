//! A sweep's folder read back from its plan (`DIR/plan/NAME.json`) and its run documents,
//! without the command line that made it: `regulab status DIR` (each planned run's state,
//! and Slurm's for queued tasks) and `regulab summarize DIR` (the summary files from the
//! documents there). The swept keys are the keys named in the plan's file names
//! (`lambda=0.1,seed=2.json`), their values those of each plan file.

use super::{group_over_replicates, metric_of, sweep_run, write_summary, SweepPoint};
use crate::config::{self, ModelKind};
use crate::schema::{
    load_run, RunDocument, RunStatus, SweepRun, SweepSummary, SCHEMA_VERSION, SWEEP_KIND,
};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::Path;

/// The runs a folder's plan lists, in the order of their swept values.
#[derive(Debug, Clone)]
pub struct Planned {
    pub swept: Vec<String>,
    pub points: Vec<SweepPoint>,
}

impl Planned {
    pub fn trainer(&self) -> ModelKind {
        self.points[0].config.model_kind()
    }
}

/// Reads `DIR/plan/*.json`; a folder without a plan is an error naming it.
pub fn load_planned(folder: &Path) -> Result<Planned> {
    let plan_dir = folder.join("plan");
    let entries = std::fs::read_dir(&plan_dir).map_err(|_| {
        anyhow!(
            "{}: not a sweep or cv folder (it has no plan/)",
            folder.display()
        )
    })?;
    let mut files: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("{}: its plan/ lists no runs", folder.display());
    }
    let mut swept: Vec<String> = Vec::new();
    for file in &files {
        for key in keys_in_name(file) {
            if !swept.contains(&key) {
                swept.push(key);
            }
        }
    }
    let mut points = Vec::new();
    for file in files {
        let path = super::plan_path(folder, &file);
        let config = config::load_file(&path)
            .and_then(|f| f.layer.resolve())
            .with_context(|| format!("{}: not a run's plan", path.display()))?;
        let typed = serde_json::to_value(config.to_values())?;
        let values = swept
            .iter()
            .map(|key| (key.clone(), typed[key.as_str()].clone()))
            .collect();
        points.push(SweepPoint {
            file,
            values,
            config,
        });
    }
    points.sort_by(|a, b| {
        swept
            .iter()
            .map(|k| compare_values(a.values.get(k), b.values.get(k)))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
            .then_with(|| a.file.cmp(&b.file))
    });
    Ok(Planned { swept, points })
}

/// The configuration keys a sweep's file name lists (`lambda=0.1,seed=2.json`).
fn keys_in_name(file: &str) -> Vec<String> {
    file.trim_end_matches(".json")
        .split(',')
        .filter_map(|part| part.split_once('='))
        .filter(|(key, _)| config::canonical_key(key) == Some(*key))
        .map(|(key, _)| key.to_string())
        .collect()
}

fn compare_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a.and_then(Value::as_f64), b.and_then(Value::as_f64)) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        _ => {
            let text = |v: Option<&Value>| v.map(|v| v.to_string()).unwrap_or_default();
            text(a).cmp(&text(b))
        }
    }
}

/// A planned run's document, when it has one that can be read.
pub fn document(folder: &Path, point: &SweepPoint) -> Option<RunDocument> {
    let path = folder.join(&point.file);
    path.exists().then(|| load_run(&path).ok()).flatten()
}

/// A run whose document says it needs no more training (completed or diverged).
pub fn is_finished(document: Option<&RunDocument>) -> bool {
    document.is_some_and(|d| matches!(d.status, RunStatus::Completed | RunStatus::Diverged))
}

/// A run as the summary lists it, from its document.
pub fn run_from_document(point: &SweepPoint, document: &RunDocument) -> SweepRun {
    let metric = metric_of(point.config.model_kind());
    sweep_run(
        point,
        &document.run_id,
        document.status,
        document.message.clone(),
        &document.summary,
        &metric,
    )
}

/// A run without a document, listed as failed with `message`.
pub fn missing_run(point: &SweepPoint, message: String) -> SweepRun {
    let metric = metric_of(point.config.model_kind());
    sweep_run(
        point,
        "",
        RunStatus::Failed,
        Some(message),
        &Default::default(),
        &metric,
    )
}

/// The summary of `runs` (in the plan's order), written to `summary.json` / `summary.csv`.
pub fn write_summary_of(
    folder: &Path,
    trainer: ModelKind,
    swept: &[String],
    runs: Vec<SweepRun>,
) -> Result<SweepSummary> {
    let summary = SweepSummary {
        schema_version: SCHEMA_VERSION,
        kind: SWEEP_KIND.into(),
        command: trainer,
        metric: metric_of(trainer),
        swept: swept.to_vec(),
        groups: group_over_replicates(&runs),
        runs,
    };
    write_summary(folder, &summary)?;
    Ok(summary)
}

/// What `regulab summarize` did.
pub struct Summarized {
    pub summary: SweepSummary,
    pub planned: usize,
    /// Planned runs without a (readable) document.
    pub missing: Vec<String>,
}

/// `regulab summarize DIR`: the summary files from the documents the folder holds.
pub fn summarize(folder: &Path) -> Result<Summarized> {
    let planned = load_planned(folder)?;
    let mut runs = Vec::new();
    let mut missing = Vec::new();
    for point in &planned.points {
        match document(folder, point) {
            Some(doc) => runs.push(run_from_document(point, &doc)),
            None => missing.push(point.file.clone()),
        }
    }
    let summary = write_summary_of(folder, planned.trainer(), &planned.swept, runs)?;
    Ok(Summarized {
        summary,
        planned: planned.points.len(),
        missing,
    })
}

/// One planned run's state for `regulab status`.
#[derive(Debug, Clone)]
pub struct RunState {
    pub file: String,
    /// `pending` without a document, else the document's status.
    pub status: String,
    pub epochs_done: usize,
    pub epochs_planned: usize,
    pub elapsed_seconds: Option<f64>,
    /// Running runs: seconds per epoch so far times the epochs left.
    pub seconds_left: Option<f64>,
    /// Slurm's state of the task that trains it (`PENDING`, `RUNNING`, ...), with its id.
    pub slurm: Option<(String, String)>,
}

/// `regulab status DIR`: every planned run's state, in the plan's order.
pub fn status(folder: &Path) -> Result<Vec<RunState>> {
    let planned = load_planned(folder)?;
    let queued = super::slurm::queued_tasks(folder).unwrap_or_default();
    Ok(planned
        .points
        .iter()
        .map(|point| {
            let epochs_planned = point.config.training.epochs;
            let mut state = RunState {
                file: point.file.clone(),
                status: "pending".into(),
                epochs_done: 0,
                epochs_planned,
                elapsed_seconds: None,
                seconds_left: None,
                slurm: queued.get(&point.file).cloned(),
            };
            if let Some(doc) = document(folder, point) {
                let whole = doc.epochs.iter().filter(|e| !e.partial).count();
                let done = whole.max(doc.summary.epochs_completed);
                let elapsed = if doc.summary.total_seconds > 0.0 {
                    doc.summary.total_seconds
                } else {
                    doc.epochs.iter().map(|e| e.seconds + e.eval_seconds).sum()
                };
                state.status = doc.status.to_string();
                state.epochs_done = done;
                state.elapsed_seconds = Some(elapsed);
                if doc.status == RunStatus::Running && done > 0 {
                    let left = epochs_planned.saturating_sub(done) as f64;
                    state.seconds_left = Some(elapsed / done as f64 * left);
                }
            }
            state
        })
        .collect())
}

fn seconds_text(seconds: Option<f64>) -> String {
    match seconds {
        None => String::new(),
        Some(s) if s < 60.0 => format!("{s:.1} s"),
        Some(s) if s < 3600.0 => format!("{:.1} min", s / 60.0),
        Some(s) => format!("{:.1} h", s / 3600.0),
    }
}

/// The states as a table, then one line of counts.
pub fn status_table(states: &[RunState]) -> String {
    let mut rows = vec![vec![
        "run".to_string(),
        "status".into(),
        "epochs".into(),
        "elapsed".into(),
        "left".into(),
        "slurm".into(),
    ]];
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for state in states {
        *counts.entry(state.status.as_str()).or_default() += 1;
        rows.push(vec![
            state.file.trim_end_matches(".json").to_string(),
            state.status.clone(),
            format!("{}/{}", state.epochs_done, state.epochs_planned),
            seconds_text(state.elapsed_seconds),
            seconds_text(state.seconds_left),
            state
                .slurm
                .as_ref()
                .map(|(id, s)| format!("{s} ({id})"))
                .unwrap_or_default(),
        ]);
    }
    let counts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    format!(
        "{}{} runs planned: {}\n",
        super::align(&rows),
        states.len(),
        counts.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swept_keys_come_from_file_names() {
        assert_eq!(keys_in_name("lambda=0.1,seed=2.json"), ["lambda", "seed"]);
        assert_eq!(keys_in_name("run.json"), Vec::<String>::new());
        assert_eq!(
            compare_values(Some(&Value::from(2)), Some(&Value::from(10))),
            Ordering::Less
        );
    }
}

//! Sweeps: a base configuration and lists of values for some keys; every combination is a
//! [`RunConfig`] trained in turn, its document written into the sweep's folder under a name
//! made of its values (`lambda=0.1,seed=2.json`), and `summary.json` / `summary.csv` collect
//! each run's selected test metric with the mean and sample standard deviation over seeds and
//! folds (`split` lists: runs on other data of the same setting, like other seeds).

mod folder;
mod parallel;
mod plan_files;
mod slurm;

pub use folder::{document, is_finished, status, status_table, summarize, RunState, Summarized};
pub use plan_files::plan_path;
pub use slurm::{SlurmOptions, Submitted};

use crate::config::{Layer, ModelKind, Origin, RunConfig, SweepAxis};
use crate::experiment::{self, RunContext};
use crate::interrupt::Interrupter;
use crate::schema::{
    MetricInfo, RunStatus, Selection, SweepGroup, SweepRun, SweepSummary, REPLICATE_KEYS,
    SCHEMA_VERSION, SWEEP_KIND,
};
use crate::util::{write_atomic, write_json_atomic};
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What to sweep and where to put it.
#[derive(Debug, Clone)]
pub struct SweepPlan {
    pub base: Layer,
    pub axes: Vec<SweepAxis>,
    pub folder: PathBuf,
    /// Replace another sweep's folder, and retrain runs that finished before.
    pub overwrite: bool,
    /// Runs trained at once, each in its own process (1: in this process, one after another).
    pub jobs: usize,
    /// CPU threads per run when `jobs` > 1 (`None`: cores / jobs, at least 1).
    pub threads: Option<usize>,
    /// Devices to spread the runs over, one run per device at a time (`--device
    /// cuda:0,cuda:1`); empty: every run on its configured device.
    pub devices: Vec<String>,
    /// Where the runs train: here, or as a Slurm job array.
    pub executor: Executor,
}

/// Where a sweep's runs train.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Executor {
    /// On this machine (`--jobs` processes at a time).
    #[default]
    Local,
    /// As one Slurm job array (`--executor slurm`).
    Slurm(SlurmOptions),
}

/// One combination: its file name, swept values and configuration.
#[derive(Debug, Clone)]
pub struct SweepPoint {
    pub file: String,
    pub values: BTreeMap<String, Value>,
    pub config: RunConfig,
}

/// How a sweep ended.
#[derive(Debug, Clone)]
pub struct SweepOutcome {
    pub summary: SweepSummary,
    /// Runs that failed or diverged.
    pub unsuccessful: usize,
    /// The signal that interrupted the sweep.
    pub signal: Option<i32>,
}

impl SweepPlan {
    /// The keys with more than one value, in the order given.
    pub fn swept(&self) -> Vec<&'static str> {
        let mut swept = Vec::new();
        for axis in &self.axes {
            if axis.values.len() > 1 && !swept.contains(&axis.key) {
                swept.push(axis.key);
            }
        }
        swept
    }

    /// Every combination, resolved and validated before any is trained.
    pub fn expand(&self) -> Result<Vec<SweepPoint>> {
        if self.base.is_given("out") {
            bail!(
                "{}: a sweep names its runs' files itself; give the folder with --out DIR",
                self.base.describe("out")
            );
        }
        let swept = self.swept();
        let mut combinations: Vec<(Layer, BTreeMap<String, Value>)> =
            vec![(self.base.clone(), BTreeMap::new())];
        for axis in &self.axes {
            let mut next = Vec::new();
            for (layer, values) in &combinations {
                for value in &axis.values {
                    let mut layer = layer.clone();
                    layer.set(axis.key, value.clone(), axis.origin.clone())?;
                    let mut values = values.clone();
                    if swept.contains(&axis.key) {
                        values.insert(axis.key.to_string(), value.clone());
                    }
                    next.push((layer, values));
                }
            }
            combinations = next;
        }
        let mut used = Vec::new();
        combinations
            .into_iter()
            .map(|(mut layer, given)| {
                // Values as the resolved config holds them ("0" and 0.0 are one lambda), so
                // names and summaries do not depend on how a value was typed.
                let typed = serde_json::to_value(layer.resolve()?.to_values())?;
                let values: BTreeMap<String, Value> = given
                    .keys()
                    .map(|key| (key.clone(), typed[key.as_str()].clone()))
                    .collect();
                let file = unique_name(file_name(&swept, &values), &mut used);
                let out = self.folder.join(&file);
                layer.set(
                    "out",
                    Value::String(out.display().to_string()),
                    Origin::Flag,
                )?;
                Ok(SweepPoint {
                    file,
                    values,
                    config: layer.resolve()?,
                })
            })
            .collect()
    }
}

/// `lambda=0.1,seed=2.json`, from the swept values in the order they were given.
fn file_name(swept: &[&str], values: &BTreeMap<String, Value>) -> String {
    let parts: Vec<String> = swept
        .iter()
        .filter_map(|key| {
            let value = match values.get(*key)? {
                Value::String(text) => text.clone(),
                Value::Array(items) => items
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join("-"),
                other => other.to_string(),
            };
            Some(format!("{key}={}", value.replace(['/', '\\'], "_")))
        })
        .collect();
    if parts.is_empty() {
        "run.json".into()
    } else {
        format!("{}.json", parts.join(","))
    }
}

fn unique_name(name: String, used: &mut Vec<String>) -> String {
    let mut candidate = name.clone();
    let mut n = 2;
    while used.contains(&candidate) {
        candidate = name.replacen(".json", &format!("-{n}.json"), 1);
        n += 1;
    }
    used.push(candidate.clone());
    candidate
}

fn metric_of(trainer: ModelKind) -> MetricInfo {
    MetricInfo::from(trainer.headline_metric())
}

/// Trains every combination: in this process one after another (`jobs` 1), or as up to
/// `jobs` processes at a time. The summary is rewritten after each run, and also when a
/// signal stops the sweep (the interrupted run is listed with its status). The same command
/// on the same folder continues: finished runs are kept, interrupted ones resume, failed
/// ones train again.
pub fn run(plan: &SweepPlan, interrupter: &Interrupter, argv: &[String]) -> Result<SweepOutcome> {
    let points = plan.expand()?;
    let Some(first) = points.first() else {
        bail!("the sweep has no runs");
    };
    plan_files::prepare(&plan.folder, &points, plan.overwrite)?;
    let trainer = first.config.model_kind();
    let mut summary = SweepSummary {
        schema_version: SCHEMA_VERSION,
        kind: SWEEP_KIND.into(),
        command: trainer,
        metric: metric_of(trainer),
        swept: plan.swept().iter().map(|k| k.to_string()).collect(),
        runs: Vec::new(),
        groups: Vec::new(),
    };
    let signal = if plan.jobs > 1 || !plan.devices.is_empty() {
        parallel::run_all(plan, &points, interrupter, &mut |run| {
            record(&plan.folder, &mut summary, run)
        })?
    } else {
        run_in_turn(plan, &points, interrupter, argv, &mut |run| {
            record(&plan.folder, &mut summary, run)
        })?
    };
    // Runs finish in any order with several jobs; the summary lists them as planned.
    summary
        .runs
        .sort_by_key(|run| points.iter().position(|p| p.file == run.file));
    summary.groups = group_over_replicates(&summary.runs);
    write_summary(&plan.folder, &summary)?;
    let unsuccessful = summary
        .runs
        .iter()
        .filter(|r| matches!(r.status, RunStatus::Failed | RunStatus::Diverged))
        .count();
    Ok(SweepOutcome {
        summary,
        unsuccessful,
        signal,
    })
}

/// `--executor slurm`: writes the plan, then submits the runs that are not finished as one
/// Slurm job array (see `slurm`); with `--wait`, waits for it and writes the summary.
pub fn submit(
    plan: &SweepPlan,
    options: &SlurmOptions,
    interrupter: &Interrupter,
) -> Result<Submitted> {
    let points = plan.expand()?;
    if points.is_empty() {
        bail!("the sweep has no runs");
    }
    plan_files::prepare(&plan.folder, &points, plan.overwrite)?;
    slurm::submit(plan, options, &points, interrupter)
}

/// Checks that `folder` is empty or holds these same runs (`prepare` of the plan), then writes
/// their plan files; with `overwrite`, another sweep's files there are removed first.
pub fn prepare_folder(folder: &Path, points: &[SweepPoint], overwrite: bool) -> Result<()> {
    plan_files::prepare(folder, points, overwrite)
}

/// Removes a folder's plan, run documents and summaries (what `--overwrite` replaces).
pub fn clear_folder(folder: &Path) -> Result<()> {
    plan_files::clear(folder)
}

/// Trains `points`, whose plan files are written, with the plan's executor: in this process
/// one after another, as `jobs` processes, or as a Slurm job array waited for (another
/// command, like `tune`, needs their documents before it goes on). Returns the signal that
/// stopped them.
pub fn train_points(
    plan: &SweepPlan,
    points: &[SweepPoint],
    interrupter: &Interrupter,
    argv: &[String],
) -> Result<Option<i32>> {
    if points.is_empty() {
        return Ok(None);
    }
    let mut ignore = |_: SweepRun| Ok(());
    match &plan.executor {
        Executor::Slurm(options) => {
            let options = SlurmOptions {
                wait: true,
                ..options.clone()
            };
            Ok(match slurm::submit(plan, &options, points, interrupter)? {
                Submitted::Waited(outcome) => outcome.signal,
                Submitted::Queued { .. } | Submitted::Nothing { .. } => None,
            })
        }
        Executor::Local if plan.jobs > 1 || !plan.devices.is_empty() => {
            parallel::run_all(plan, points, interrupter, &mut ignore)
        }
        Executor::Local => run_in_turn(plan, points, interrupter, argv, &mut ignore),
    }
}

fn record(folder: &Path, summary: &mut SweepSummary, run: SweepRun) -> Result<()> {
    summary.runs.push(run);
    summary.groups = group_over_replicates(&summary.runs);
    write_summary(folder, summary)
}

/// The runs one after another in this process; returns the signal that stopped them.
fn run_in_turn(
    plan: &SweepPlan,
    points: &[SweepPoint],
    interrupter: &Interrupter,
    argv: &[String],
    record: &mut dyn FnMut(SweepRun) -> Result<()>,
) -> Result<Option<i32>> {
    let total = points.len();
    let metric = metric_of(points[0].config.model_kind());
    let name = command_name(argv);
    for (index, point) in points.iter().enumerate() {
        crate::util::erroutln!(
            "regulab {name}: run {}/{total} {}",
            index + 1,
            point.file.trim_end_matches(".json")
        );
        let context = RunContext {
            argv: argv.to_vec(),
            interrupter,
            overwrite: plan.overwrite,
        };
        let (run, signal) = match experiment::run(&point.config, &context) {
            Ok(result) => (
                sweep_run(
                    point,
                    &result.run_id,
                    result.status,
                    result.message,
                    &result.summary,
                    &metric,
                ),
                result.signal,
            ),
            Err(error) => {
                let message = format!("{error:#}");
                crate::util::erroutln!(
                    "regulab {name}: run {}/{total} failed: {message}",
                    index + 1
                );
                (folder::missing_run(point, message), None)
            }
        };
        record(run)?;
        if signal.is_some() {
            return Ok(signal);
        }
    }
    Ok(None)
}

fn sweep_run(
    point: &SweepPoint,
    run_id: &str,
    status: RunStatus,
    message: Option<String>,
    summary: &crate::schema::Summary,
    metric: &MetricInfo,
) -> SweepRun {
    SweepRun {
        file: point.file.clone(),
        run_id: run_id.to_string(),
        values: point.values.clone(),
        status,
        message,
        selection: summary.selection,
        selected_epoch: summary.selected_epoch,
        validation_at_selected: summary.selected_validation(metric),
        test_at_selected: summary.selected_test(metric),
        final_test: summary.final_test_value(metric),
        oracle_best_test: summary.oracle_best_test.map(|best| best.value),
    }
}

/// The mean and the sample standard deviation (n - 1; zero for one value).
pub fn mean_and_std(values: &[f64]) -> (Option<f64>, Option<f64>) {
    if values.is_empty() {
        return (None, None);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    // Sample standard deviation (n - 1); zero for a single seed.
    let std = if values.len() > 1 {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (Some(mean), Some(std))
}

fn setting_of(values: &BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    let mut key = values.clone();
    key.retain(|k, _| !REPLICATE_KEYS.contains(&k.as_str()));
    key
}

/// Runs whose swept values differ only in seed or fold, with the mean and spread of their
/// metrics.
pub fn group_over_replicates(runs: &[SweepRun]) -> Vec<SweepGroup> {
    let mut groups: Vec<(BTreeMap<String, Value>, Vec<&SweepRun>)> = Vec::new();
    for run in runs {
        let key = setting_of(&run.values);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(run),
            None => groups.push((key, vec![run])),
        }
    }
    groups
        .into_iter()
        .map(|(values, all)| {
            // Only completed runs count: an interrupted fold's model was cut short, and a
            // diverged or failed one's numbers are not the setting's; mixing them into a mean
            // the table labels "runs N" misstates the result. They are counted as left out.
            let members: Vec<&SweepRun> = all
                .iter()
                .copied()
                .filter(|r| r.status == RunStatus::Completed)
                .collect();
            let selected: Vec<f64> = members.iter().filter_map(|r| r.test_at_selected).collect();
            let last: Vec<f64> = members.iter().filter_map(|r| r.final_test).collect();
            let (test_at_selected_mean, test_at_selected_std) = mean_and_std(&selected);
            let validation: Vec<f64> = members
                .iter()
                .filter_map(|r| r.validation_at_selected)
                .collect();
            let (validation_at_selected_mean, _) = mean_and_std(&validation);
            let (final_test_mean, final_test_std) = mean_and_std(&last);
            SweepGroup {
                values,
                runs: all.len(),
                completed: members.len(),
                left_out: all.len() - members.len(),
                validation_at_selected_mean,
                test_at_selected_mean,
                test_at_selected_std,
                final_test_mean,
                final_test_std,
            }
        })
        .collect()
}

fn value_text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

fn number(value: Option<f64>) -> String {
    value.map(|x| x.to_string()).unwrap_or_default()
}

fn selection_name(selection: Selection) -> &'static str {
    match selection {
        Selection::Validation => "validation",
        Selection::Last => "last",
    }
}

fn write_summary(dir: &Path, summary: &SweepSummary) -> Result<()> {
    write_json_atomic(&dir.join("summary.json"), summary)?;
    let metric = &summary.metric.name;
    let mut csv = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = vec!["file".into(), "status".into()];
    header.extend(summary.swept.iter().cloned());
    header.extend([
        "selection".to_string(),
        "selected_epoch".to_string(),
        format!("test_{metric}_at_selected"),
        format!("final_test_{metric}"),
        format!("replicates_test_{metric}_at_selected_mean"),
        format!("replicates_test_{metric}_at_selected_std"),
        "message".into(),
    ]);
    csv.write_record(&header)?;
    for run in &summary.runs {
        let key = setting_of(&run.values);
        let group = summary.groups.iter().find(|g| g.values == key);
        let mut row: Vec<String> = vec![run.file.clone(), run.status.to_string()];
        row.extend(summary.swept.iter().map(|k| value_text(run.values.get(k))));
        row.push(selection_name(run.selection).into());
        row.push(
            run.selected_epoch
                .map(|e| e.to_string())
                .unwrap_or_default(),
        );
        row.push(number(run.test_at_selected));
        row.push(number(run.final_test));
        row.push(number(group.and_then(|g| g.test_at_selected_mean)));
        row.push(number(group.and_then(|g| g.test_at_selected_std)));
        row.push(run.message.clone().unwrap_or_default());
        csv.write_record(&row)?;
    }
    let bytes = csv.into_inner().context("writing summary.csv")?;
    write_atomic(&dir.join("summary.csv"), &bytes)
}

/// `cv` or `sweep`, as the user typed it, for the lines that say which command speaks.
pub fn command_name(argv: &[String]) -> &'static str {
    match argv.get(1).map(String::as_str) {
        Some("cv") => "cv",
        Some("tune") => "tune",
        _ => "sweep",
    }
}

/// What the groups average over, as the table's heading says it: only the replicate keys
/// that vary ("folds" for a cross-validation over folds alone).
fn replicates_name(swept: &[String]) -> &'static str {
    let seeds = swept.iter().any(|k| k == "seed");
    let folds = swept.iter().any(|k| k == "split");
    match (seeds, folds) {
        (true, false) => "seeds",
        (false, true) => "folds",
        _ => "seeds and folds",
    }
}

/// The results as a plain-text table (one row per run, then the groups over seeds and folds).
pub fn results_table(summary: &SweepSummary) -> String {
    let metric = &summary.metric.name;
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut header: Vec<String> = summary.swept.clone();
    header.extend(["status".into(), "epoch".into(), format!("test {metric}")]);
    rows.push(header);
    for run in &summary.runs {
        let mut row: Vec<String> = summary
            .swept
            .iter()
            .map(|k| value_text(run.values.get(k)))
            .collect();
        row.push(run.status.to_string());
        row.push(
            run.selected_epoch
                .map(|e| e.to_string())
                .unwrap_or_default(),
        );
        row.push(
            run.test_at_selected
                .map(|v| format!("{v:.5}"))
                .unwrap_or_default(),
        );
        rows.push(row);
    }
    let mut text = align(&rows);
    let seeded = summary.groups.iter().any(|g| g.runs > 1);
    if seeded {
        let mut groups: Vec<Vec<String>> = Vec::new();
        let keys: Vec<String> = summary
            .swept
            .iter()
            .filter(|k| !REPLICATE_KEYS.contains(&k.as_str()))
            .cloned()
            .collect();
        let mut header = keys.clone();
        header.extend([
            "runs".into(),
            "left out".into(),
            format!("validation {metric} mean"),
            format!("test {metric} mean"),
            "std".into(),
        ]);
        groups.push(header);
        for group in &summary.groups {
            let mut row: Vec<String> = keys
                .iter()
                .map(|k| value_text(group.values.get(k)))
                .collect();
            row.push(group.completed.to_string());
            row.push(group.left_out.to_string());
            row.push(
                group
                    .validation_at_selected_mean
                    .map(|v| format!("{v:.5}"))
                    .unwrap_or_default(),
            );
            row.push(
                group
                    .test_at_selected_mean
                    .map(|v| format!("{v:.5}"))
                    .unwrap_or_default(),
            );
            row.push(
                group
                    .test_at_selected_std
                    .map(|v| format!("{v:.5}"))
                    .unwrap_or_default(),
            );
            groups.push(row);
        }
        text += &format!("\nover {}:\n", replicates_name(&summary.swept));
        text += &align(&groups);
    }
    text
}

/// Rows of cells as text columns, each as wide as its widest cell (sweep and tune tables).
pub fn align(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(String::len)
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| format!("{cell:<width$}", width = widths[c]))
            .collect();
        text += cells.join("  ").trim_end();
        text += "\n";
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(axes: &[(&'static str, Vec<Value>)]) -> SweepPlan {
        let mut base = Layer::default();
        base.set("command", json!("mf"), Origin::Flag).unwrap();
        base.set("penalty", json!("batch-l2"), Origin::Flag)
            .unwrap();
        SweepPlan {
            base,
            axes: axes
                .iter()
                .map(|(key, values)| SweepAxis {
                    key,
                    values: values.clone(),
                    origin: Origin::Flag,
                })
                .collect(),
            folder: PathBuf::from("sweeps/x"),
            overwrite: false,
            jobs: 1,
            threads: None,
            devices: Vec::new(),
            executor: Executor::Local,
        }
    }

    #[test]
    fn every_combination_is_a_config_named_after_its_values() {
        let points = plan(&[
            ("lambda", vec![json!("0"), json!("0.1")]),
            ("seed", vec![json!(1), json!(2), json!(3)]),
            ("split", vec![json!("u1")]),
        ])
        .expand()
        .unwrap();
        assert_eq!(points.len(), 6);
        assert_eq!(points[0].file, "lambda=0.0,seed=1.json");
        assert_eq!(points[5].file, "lambda=0.1,seed=3.json");
        assert_eq!(points[5].config.penalty.lambda, 0.1);
        assert_eq!(points[5].config.training.seed, 3);
        assert_eq!(
            points[5].config.output.out,
            Some(PathBuf::from("sweeps/x/lambda=0.1,seed=3.json"))
        );
        assert!(
            !points[0].values.contains_key("split"),
            "a single value is not swept"
        );
    }

    #[test]
    fn a_bad_value_fails_before_any_run() {
        let error = plan(&[("lambda", vec![json!("0.1"), json!("-1")])])
            .expand()
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "--lambda -1: must be a non-negative number"
        );
    }

    #[test]
    fn seeds_are_aggregated() {
        let run = |lambda: f64, seed: u64, value: f64| SweepRun {
            file: String::new(),
            run_id: String::new(),
            values: BTreeMap::from([
                ("lambda".to_string(), lambda.into()),
                ("seed".to_string(), seed.into()),
            ]),
            status: RunStatus::Completed,
            message: None,
            selection: Selection::Last,
            selected_epoch: Some(1),
            validation_at_selected: None,
            test_at_selected: Some(value),
            final_test: Some(value),
            oracle_best_test: Some(value),
        };
        let groups = group_over_replicates(&[run(0.0, 1, 1.0), run(0.0, 2, 3.0), run(0.1, 1, 5.0)]);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].test_at_selected_mean, Some(2.0));
        assert!((groups[0].test_at_selected_std.unwrap() - 2f64.sqrt()).abs() < 1e-12);
        assert_eq!(groups[1].runs, 1);
    }
}

//! `regulab tune`: searched values for any trainer key (`space`), trials drawn at random or
//! on a grid, trained to rungs of epochs with successive halving (`asha`), chosen on the
//! validation metric only; the choice's test metric is read once, at the end.
//!
//! Every trial is one run per fold in the experiment store: a plan file in `DIR/plan/` and a
//! run document in `DIR`, trained by the sweep's executors (in turn, `--jobs`, Slurm). A trial
//! waits at a rung as a paused run (`pause_after`, not part of its identity) with its
//! checkpoint, and a promoted trial continues that same run from there; so the same command
//! on the same folder also continues an interrupted tune.

mod asha;
mod space;
mod table;

pub use asha::{choose, promote, rungs, successive_halving, Measured, Progress, Stop};
pub use space::{parse_axis, sample, Domain, Sampler, SearchAxis, TrialValues};
pub use table::tune_table;

use crate::config::Origin;
use crate::interrupt::Interrupter;
use crate::model::Metric;
use crate::schema::{
    load_run, FoldTest, MetricInfo, RunDocument, RunStatus, SearchedKey, TuneChoice, TuneSummary,
    TuneTrial, SCHEMA_VERSION, TUNE_KIND,
};
use crate::sweep::{self, SweepPlan, SweepPoint};
use crate::util::write_json_atomic;
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::Path;

/// How trials are stopped early.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scheduler {
    /// Every trial trains its epochs.
    None,
    /// Successive halving from `min_epochs`, keeping 1/`reduction` at each rung.
    Asha { min_epochs: usize, reduction: usize },
}

/// What to tune and where.
#[derive(Debug, Clone)]
pub struct TunePlan {
    /// The fixed part of the configuration (`base`), the folder, `--jobs`, the executor and
    /// `--overwrite`; its axes are not used.
    pub sweep: SweepPlan,
    /// The `split` of each fold (`--folds u1,...`); empty: the configured split.
    pub folds: Vec<String>,
    pub space: Vec<SearchAxis>,
    pub sampler: Sampler,
    pub trials: Option<usize>,
    pub scheduler: Scheduler,
    /// Every trial's epochs (the last rung); `None`: the configured `epochs`.
    pub max_epochs: Option<usize>,
    /// The selection metric; `None`: the trainer's validation metric.
    pub metric: Option<Metric>,
}

/// How a tune ended.
pub struct TuneOutcome {
    pub summary: TuneSummary,
    /// The signal that interrupted it.
    pub signal: Option<i32>,
}

/// A trial: its values and one run per fold.
struct Trial {
    name: String,
    values: TrialValues,
    points: Vec<SweepPoint>,
}

/// The trials, rungs and metric, resolved and validated before anything trains.
pub struct Prepared {
    trials: Vec<Trial>,
    rungs: Vec<usize>,
    metric: Metric,
    summary: TuneSummary,
}

/// Keys a tune sets itself.
const NOT_SEARCHED: &[&str] = &["epochs", "split", "out", "pause_after", "command"];

impl TunePlan {
    /// Draws the trials and resolves every run's configuration; errors name the flag.
    pub fn prepare(&self) -> Result<Prepared> {
        if self.sweep.base.is_given("out") {
            bail!("tune names its runs' files itself; give the folder with --out DIR");
        }
        for axis in &self.space {
            if NOT_SEARCHED.contains(&axis.key) {
                let instead = match axis.key {
                    "epochs" => "; set them with --max-epochs",
                    "split" => "; give the folds with --folds",
                    _ => "",
                };
                bail!("--search {}: tune sets it itself{instead}", axis.key);
            }
            if self.space.iter().filter(|a| a.key == axis.key).count() > 1 {
                bail!("--search {}: given twice", axis.key);
            }
        }
        let drawn = sample(&self.space, self.sampler, self.trials)?;
        let mut base = self.sweep.base.clone();
        if let Some(epochs) = self.max_epochs {
            base.set("epochs", Value::from(epochs), Origin::Flag)?;
        }
        let width = (drawn.len().saturating_sub(1)).to_string().len().max(2);
        let mut trials = Vec::new();
        for (index, values) in drawn.into_iter().enumerate() {
            let name = format!("t{index:0width$}");
            trials.push(self.trial(&base, name, values)?);
        }
        let first = &trials[0].points[0].config;
        if first.val_split().is_none() {
            bail!("tune chooses on validation only and never on test: add --val-split F (e.g. --val-split 0.1)");
        }
        let trainer = first.model_kind();
        let metric = self.metric.unwrap_or(trainer.headline_metric());
        let max_epochs = first.training.epochs;
        let rungs = match self.scheduler {
            Scheduler::None => vec![max_epochs],
            Scheduler::Asha {
                min_epochs,
                reduction,
            } => rungs(min_epochs, max_epochs, reduction)?,
        };
        let summary = TuneSummary {
            schema_version: SCHEMA_VERSION,
            kind: TUNE_KIND.into(),
            command: trainer,
            metric: MetricInfo::from(metric),
            search: self
                .space
                .iter()
                .map(|axis| SearchedKey {
                    key: axis.key.into(),
                    spec: axis.spec.clone(),
                    log: axis.is_log(),
                })
                .collect(),
            sampler: match self.sampler {
                Sampler::Grid => "grid".into(),
                Sampler::Random { .. } => "random".into(),
            },
            sampler_seed: match self.sampler {
                Sampler::Grid => None,
                Sampler::Random { seed } => Some(seed),
            },
            scheduler: match self.scheduler {
                Scheduler::None => "none".into(),
                Scheduler::Asha { .. } => "asha".into(),
            },
            reduction: match self.scheduler {
                Scheduler::None => 1,
                Scheduler::Asha { reduction, .. } => reduction,
            },
            rungs: rungs.clone(),
            folds: self.folds.clone(),
            state: "running".into(),
            trials: trials
                .iter()
                .enumerate()
                .map(|(index, trial)| TuneTrial {
                    index,
                    name: trial.name.clone(),
                    values: trial.values.clone(),
                    validation: Vec::new(),
                    epochs: 0,
                    stopped: "pending".into(),
                    stopped_at_rung: None,
                    runs: trial.points.iter().map(|p| p.file.clone()).collect(),
                })
                .collect(),
            choice: None,
        };
        Ok(Prepared {
            trials,
            rungs,
            metric,
            summary,
        })
    }

    /// One trial's runs (one per fold), its values as the configuration holds them.
    fn trial(
        &self,
        base: &crate::config::Layer,
        name: String,
        drawn: TrialValues,
    ) -> Result<Trial> {
        let mut layer = base.clone();
        for (key, value) in &drawn {
            layer.set(key, value.clone(), Origin::Flag)?;
        }
        let typed = serde_json::to_value(layer.resolve()?.to_values())?;
        let values = drawn
            .keys()
            .map(|key| (key.clone(), typed[key.as_str()].clone()))
            .collect();
        let folds: Vec<Option<&String>> = if self.folds.is_empty() {
            vec![None]
        } else {
            self.folds.iter().map(Some).collect()
        };
        let mut points = Vec::new();
        for fold in folds {
            let mut layer = layer.clone();
            let file = match fold {
                Some(fold) => {
                    layer.set("split", Value::String(fold.clone()), Origin::Flag)?;
                    format!("{name},split={fold}.json")
                }
                None => format!("{name}.json"),
            };
            let out = self.sweep.folder.join(&file);
            layer.set(
                "out",
                Value::String(out.display().to_string()),
                Origin::Flag,
            )?;
            points.push(SweepPoint {
                file,
                values: Default::default(),
                config: layer.resolve()?,
            });
        }
        Ok(Trial {
            name,
            values,
            points,
        })
    }
}

/// The parts of a summary that say which tune it is.
fn same_tune(a: &TuneSummary, b: &TuneSummary) -> bool {
    let values =
        |s: &TuneSummary| -> Vec<_> { s.trials.iter().map(|t| t.values.clone()).collect() };
    (
        &a.command,
        &a.metric,
        &a.search,
        &a.sampler,
        &a.sampler_seed,
        &a.scheduler,
        &a.reduction,
        &a.rungs,
        &a.folds,
    ) == (
        &b.command,
        &b.metric,
        &b.search,
        &b.sampler,
        &b.sampler_seed,
        &b.scheduler,
        &b.reduction,
        &b.rungs,
        &b.folds,
    ) && values(a) == values(b)
}

/// Refuses a folder holding another tune (or anything else) unless `overwrite`, which clears
/// it; then writes the plan.
fn prepare_folder(plan: &TunePlan, prepared: &Prepared, points: &[SweepPoint]) -> Result<()> {
    let folder = &plan.sweep.folder;
    let path = folder.join("tune.json");
    if path.exists() {
        let same = crate::schema::load_tune(&path)
            .map(|earlier| same_tune(&earlier, &prepared.summary))
            .unwrap_or(false);
        if !same {
            if !plan.sweep.overwrite {
                bail!(
                    "--out {}: holds another tune; choose another folder, or pass --overwrite to replace it",
                    folder.display()
                );
            }
            sweep::clear_folder(folder)?;
        }
    }
    sweep::prepare_folder(folder, points, plan.sweep.overwrite)
}

/// Runs the tune: the rungs in turn, each trial's runs by the sweep's executor, then the
/// choice on validation and its test result. The same command on the same folder continues.
pub fn run(plan: &TunePlan, interrupter: &Interrupter, argv: &[String]) -> Result<TuneOutcome> {
    let prepared = plan.prepare()?;
    let mut points: Vec<SweepPoint> = prepared
        .trials
        .iter()
        .flat_map(|t| t.points.iter().cloned())
        .collect();
    prepare_folder(plan, &prepared, &points)?;
    // The folder is this tune's now: runs continue, never start over.
    let executor = SweepPlan {
        overwrite: false,
        ..plan.sweep.clone()
    };
    let folder = &plan.sweep.folder;
    let rungs = &prepared.rungs;
    let last = *rungs.last().context("a tune has at least one rung")?;
    let metric = prepared.metric;
    let folds = prepared.trials[0].points.len();
    let mut signal = None;
    let mut measure = |rung: usize, alive: &[usize]| -> Result<Option<Vec<Measured>>> {
        let epochs = rungs[rung];
        let pause = (epochs < last).then_some(epochs);
        let mut todo = Vec::new();
        for &trial in alive {
            for point in &mut points[trial * folds..(trial + 1) * folds] {
                point.config.training.pause_after = pause;
                if !reached(sweep::document(folder, point).as_ref(), epochs) {
                    todo.push(point.clone());
                }
            }
        }
        sweep::prepare_folder(folder, &points, false)?;
        crate::util::erroutln!(
            "regulab tune: rung {rung} of 0..{} ({}): {}, {} to train",
            rungs.len() - 1,
            crate::util::count_noun(epochs, "epoch"),
            crate::util::count_noun(alive.len(), "trial"),
            crate::util::count_noun(todo.len(), "run")
        );
        signal = sweep::train_points(&executor, &todo, interrupter, argv)?;
        if signal.is_some() {
            return Ok(None);
        }
        Ok(Some(
            alive
                .iter()
                .map(|&trial| {
                    let runs = &points[trial * folds..(trial + 1) * folds];
                    measure_trial(folder, runs, epochs, metric)
                })
                .collect(),
        ))
    };
    let progress = successive_halving(
        prepared.trials.len(),
        rungs.len(),
        match plan.scheduler {
            Scheduler::None => 1,
            Scheduler::Asha { reduction, .. } => reduction,
        },
        metric.higher_is_better(),
        &mut measure,
    )?;
    let mut summary = prepared.summary.clone();
    record_progress(&mut summary, &progress);
    summary.state = if signal.is_some() {
        "interrupted".into()
    } else {
        "completed".into()
    };
    if signal.is_none() {
        summary.choice = choose(&progress, metric.higher_is_better())
            .map(|trial| choice(folder, &prepared, trial, &progress[trial], metric))
            .transpose()?;
    }
    write_json_atomic(&folder.join("tune.json"), &summary)?;
    Ok(TuneOutcome { summary, signal })
}

/// A run has trained to `epochs` (or ended: completed early, diverged).
fn reached(document: Option<&RunDocument>, epochs: usize) -> bool {
    document.is_some_and(|d| {
        matches!(d.status, RunStatus::Completed | RunStatus::Diverged)
            || (d.status != RunStatus::Failed && whole_epochs(d) >= epochs)
    })
}

fn whole_epochs(document: &RunDocument) -> usize {
    document.epochs.iter().filter(|e| !e.partial).count()
}

/// The best validation value of `metric` over the whole epochs up to `epochs`, with its
/// epoch (the earliest on ties).
fn best_validation(document: &RunDocument, epochs: usize, metric: Metric) -> Option<(usize, f64)> {
    let mut best: Option<(usize, f64)> = None;
    for record in document
        .epochs
        .iter()
        .filter(|e| !e.partial && e.epoch <= epochs)
    {
        let Some(value) = record
            .validation
            .as_ref()
            .and_then(|v| v.get(&metric.key()))
            .copied()
            .filter(|v| v.is_finite())
        else {
            continue;
        };
        if best.is_none_or(|(_, b)| metric.is_better(value, b)) {
            best = Some((record.epoch, value));
        }
    }
    best
}

/// A trial's result at a rung: the mean over its folds of each fold's best validation value.
fn measure_trial(folder: &Path, runs: &[SweepPoint], epochs: usize, metric: Metric) -> Measured {
    let mut values = Vec::new();
    for point in runs {
        let Ok(document) = load_run(&folder.join(&point.file)) else {
            return Measured::Failed;
        };
        match document.status {
            RunStatus::Diverged => return Measured::Diverged,
            RunStatus::Failed => return Measured::Failed,
            RunStatus::Completed => {}
            // Stopped short of the rung by something else than its pause.
            _ if whole_epochs(&document) < epochs => return Measured::Failed,
            _ => {}
        }
        match best_validation(&document, epochs, metric) {
            Some((_, value)) => values.push(value),
            None => return Measured::Failed,
        }
    }
    Measured::Value(values.iter().sum::<f64>() / values.len() as f64)
}

fn record_progress(summary: &mut TuneSummary, progress: &[Progress]) {
    for (trial, p) in summary.trials.iter_mut().zip(progress) {
        trial.validation = p.values.clone();
        trial.epochs = p
            .values
            .len()
            .checked_sub(1)
            .map_or(0, |k| summary.rungs[k]);
        let (stopped, rung) = match p.stop {
            Stop::Pending => ("pending", None),
            Stop::Pruned { rung } => ("pruned", Some(rung)),
            Stop::Completed => ("completed", None),
            Stop::Diverged { rung } => ("diverged", Some(rung)),
            Stop::Failed { rung } => ("failed", Some(rung)),
        };
        trial.stopped = stopped.into();
        trial.stopped_at_rung = rung;
    }
}

/// The chosen trial with its test metric per fold, at the epoch each fold's validation chose:
/// the only place a tune reads test numbers.
fn choice(
    folder: &Path,
    prepared: &Prepared,
    trial: usize,
    progress: &Progress,
    metric: Metric,
) -> Result<TuneChoice> {
    let chosen = &prepared.trials[trial];
    let mut test = Vec::new();
    for (fold, point) in chosen.points.iter().enumerate() {
        let document = load_run(&folder.join(&point.file))?;
        let (epoch, _) = best_validation(&document, usize::MAX, metric)
            .with_context(|| format!("{}: no validation value", point.file))?;
        let value = document
            .epochs
            .iter()
            .find(|e| e.epoch == epoch && !e.partial)
            .and_then(|e| e.test.as_ref())
            .and_then(|t| t.get(&metric.key()))
            .copied();
        test.push(FoldTest {
            run: point.file.clone(),
            fold: prepared.summary.folds.get(fold).cloned(),
            epoch,
            value,
        });
    }
    let values: Vec<f64> = test.iter().filter_map(|t| t.value).collect();
    let (test_mean, test_std) = sweep::mean_and_std(&values);
    Ok(TuneChoice {
        trial,
        values: chosen.values.clone(),
        validation: progress
            .values
            .last()
            .copied()
            .flatten()
            .unwrap_or(f64::NAN),
        test,
        test_mean,
        test_std,
    })
}

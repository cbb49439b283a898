//! The documents regulab writes, as Serialize + Deserialize types: the run document and the
//! sweep summary. The writer, `regulab plot`, the sweep's aggregation and every other reader
//! use these types, so a renamed field breaks the build or a test, not a user's plot.
//!
//! Version 2 (this build) types the configuration ([`RunConfig`]), records the command line,
//! names the headline metric with its direction, and reports the epoch chosen without the
//! test set (`summary.selected_epoch`). Version 1 documents are upgraded when read.
//! docs/run-document.md describes every field.

use crate::config::{ModelKind, RunConfig};
use crate::model::Metric;
pub use crate::model::Split;
use crate::regularization::RegularizationRecord;
use anyhow::{anyhow, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// The version of the run and sweep documents this build writes.
pub const SCHEMA_VERSION: u32 = 2;
/// The `kind` of a run document.
pub const RUN_KIND: &str = "regulab-run";
/// The `kind` of a sweep's summary.json.
pub const SWEEP_KIND: &str = "regulab-sweep";
/// `kind` of a tune's summary, `DIR/tune.json`.
pub const TUNE_KIND: &str = "regulab-tune";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Completed,
    Interrupted,
    Diverged,
    Failed,
}

crate::named_enum!(
    RunStatus,
    ["running", "completed", "interrupted", "diverged", "failed"]
);

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Something is wrong with the run or its settings.
    Warning,
    /// An explanation of what the curves show; nothing to fix.
    Info,
}

/// What a finding is about: a stable id for scripts and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    Overfitting,
    RegLossRisesTotalFalls,
    PenaltyShare,
    WeightNorms,
    Divergence,
    EvalDivisor,
    WeightDecayVsPenalty,
    /// A tune's choice at the edge of a searched range (`regulab explain` on a tune).
    SearchEdge,
    /// A kind this build does not know (a document written by a newer regulab).
    #[serde(other)]
    Other,
}

impl FindingKind {
    pub fn name(self) -> &'static str {
        match self {
            FindingKind::Overfitting => "overfitting",
            FindingKind::RegLossRisesTotalFalls => "reg-loss-rises-total-falls",
            FindingKind::PenaltyShare => "penalty-share",
            FindingKind::WeightNorms => "weight-norms",
            FindingKind::Divergence => "divergence",
            FindingKind::EvalDivisor => "eval-divisor",
            FindingKind::WeightDecayVsPenalty => "weight-decay-vs-penalty",
            FindingKind::SearchEdge => "search-edge",
            FindingKind::Other => "other",
        }
    }
}

/// One finding: a title, the evidence from the run's numbers, and what to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub severity: Severity,
    /// One line.
    pub title: String,
    /// The run's numbers behind the title: epochs and values.
    pub evidence: String,
    /// What to do (or why nothing needs doing).
    pub advice: String,
    /// The key numbers of the evidence, for scripts and tests (names per kind; see
    /// docs/run-document.md).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub numbers: BTreeMap<String, f64>,
}

/// Why a completed run stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Every configured epoch ran.
    Epochs,
    /// Early stopping's patience ran out on validation.
    EarlyStop,
}

/// The headline metric and which direction is better, so that readers need no list of
/// metric names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricInfo {
    pub name: String,
    pub higher_is_better: bool,
}

/// The one conversion from a model's metric to the document's description of it.
impl From<Metric> for MetricInfo {
    fn from(metric: Metric) -> Self {
        MetricInfo {
            name: metric.key(),
            higher_is_better: metric.higher_is_better(),
        }
    }
}

impl MetricInfo {
    pub fn is_better(&self, candidate: f64, best: f64) -> bool {
        if self.higher_is_better {
            candidate > best
        } else {
            candidate < best
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    #[serde(default)]
    pub regulab_version: String,
    #[serde(default)]
    pub torch_version: String,
    #[serde(default)]
    pub device: String,
    #[serde(default)]
    pub cuda_available: bool,
    #[serde(default)]
    pub cpu_threads: i32,
    /// Why the run used `cpu_threads` threads: `--threads N`, or the default's reason.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cpu_threads_choice: String,
    /// The engine that computed the training steps: `fused` (matrix factorization's fused CPU
    /// step) or `autograd`; empty in documents from before engines existed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub engine: String,
    /// Why that engine: `--engine fused`, `--engine autograd`, or what `auto` found.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub engine_choice: String,
}

/// Losses and metrics of one split after an epoch. Non-finite values are written as `null`
/// and read back as NaN.
pub type SplitRecord = BTreeMap<String, f64>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    /// The epoch was cut short by an interrupt: its numbers cover fewer steps than an epoch.
    #[serde(default, skip_serializing_if = "is_false")]
    pub partial: bool,
    #[serde(deserialize_with = "nan_map")]
    pub train: SplitRecord,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_nan_map"
    )]
    pub validation: Option<SplitRecord>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_nan_map"
    )]
    pub test: Option<SplitRecord>,
    #[serde(default, deserialize_with = "nan_map")]
    pub weight_norms: BTreeMap<String, f64>,
    #[serde(default, deserialize_with = "nan_number")]
    pub implied_weight_decay_loss: f64,
    #[serde(default, deserialize_with = "nan_number")]
    pub lr: f64,
    /// Training time of the epoch (excluding evaluation).
    #[serde(default, deserialize_with = "nan_number")]
    pub seconds: f64,
    #[serde(default, deserialize_with = "nan_number")]
    pub eval_seconds: f64,
}

impl EpochRecord {
    /// The numbers of one split (train always; validation and test when the run has them).
    pub fn split(&self, split: Split) -> Option<&SplitRecord> {
        match split {
            Split::Train => Some(&self.train),
            Split::Validation => self.validation.as_ref(),
            Split::Test => self.test.as_ref(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub epoch: usize,
    /// 1-based count of optimizer steps since the start of the run.
    pub step: usize,
    #[serde(deserialize_with = "nan_number")]
    pub base_loss: f64,
    #[serde(deserialize_with = "nan_number")]
    pub reg_loss: f64,
    #[serde(deserialize_with = "nan_number")]
    pub total_loss: f64,
}

/// How the reported epoch was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Selection {
    /// The epoch with the best validation metric.
    Validation,
    /// The last epoch (no validation split to choose with).
    #[default]
    Last,
}

/// An epoch and the value of the headline metric there.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochValue {
    pub epoch: usize,
    pub value: f64,
}

/// The run's result. The headline is `test_at_selected`: the test metrics at an epoch chosen
/// without looking at the test set. `oracle_best_test` is chosen on the test set and is only
/// there to show how optimistic such a choice is; it is never a result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    #[serde(default)]
    pub epochs_completed: usize,
    #[serde(default)]
    pub total_seconds: f64,
    #[serde(default)]
    pub selection: Selection,
    #[serde(default)]
    pub selected_epoch: Option<usize>,
    /// Validation metrics at the selected epoch (when selected on validation).
    #[serde(default, deserialize_with = "optional_nan_map")]
    pub validation_at_selected: Option<SplitRecord>,
    /// Test metrics at the selected epoch.
    #[serde(default, deserialize_with = "optional_nan_map")]
    pub test_at_selected: Option<SplitRecord>,
    /// Test metrics at the last epoch.
    #[serde(default, deserialize_with = "optional_nan_map")]
    pub final_test: Option<SplitRecord>,
    /// The best test value over the epochs: chosen on the test set, so not a result.
    #[serde(default)]
    pub oracle_best_test: Option<EpochValue>,
    /// Why a completed run stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<StopReason>,
    /// With `restore_best`: the epoch whose weights were put back, measured again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored: Option<RestoredWeights>,
}

/// The weights a run ended with when it restored its best validation epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestoredWeights {
    pub epoch: usize,
    #[serde(default, deserialize_with = "optional_nan_map")]
    pub validation: Option<SplitRecord>,
    #[serde(default, deserialize_with = "optional_nan_map")]
    pub test: Option<SplitRecord>,
}

impl Summary {
    /// The headline metric's value at the selected epoch.
    pub fn selected_test(&self, metric: &MetricInfo) -> Option<f64> {
        finite(self.test_at_selected.as_ref()?.get(&metric.name).copied())
    }

    pub fn selected_validation(&self, metric: &MetricInfo) -> Option<f64> {
        finite(
            self.validation_at_selected
                .as_ref()?
                .get(&metric.name)
                .copied(),
        )
    }

    pub fn final_test_value(&self, metric: &MetricInfo) -> Option<f64> {
        finite(self.final_test.as_ref()?.get(&metric.name).copied())
    }
}

impl Summary {
    /// Chooses the reported epoch without the test set: the best validation metric when
    /// there is a validation split, else the last whole epoch.
    pub fn from_epochs(epochs: &[EpochRecord], metric: &MetricInfo, total_seconds: f64) -> Self {
        let whole: Vec<&EpochRecord> = epochs.iter().filter(|e| !e.partial).collect();
        let value_of = |split: Option<&SplitRecord>| finite(split?.get(&metric.name).copied());
        let has_validation = whole.iter().any(|e| e.validation.is_some());
        let selected = if has_validation {
            whole
                .iter()
                .filter_map(|e| Some((*e, value_of(e.validation.as_ref())?)))
                .reduce(|best, next| {
                    if metric.is_better(next.1, best.1) {
                        next
                    } else {
                        best
                    }
                })
                .map(|(e, _)| e)
        } else {
            whole.last().copied()
        };
        let oracle_best_test = whole
            .iter()
            .filter_map(|e| {
                Some(EpochValue {
                    epoch: e.epoch,
                    value: value_of(e.test.as_ref())?,
                })
            })
            .reduce(|best, next| {
                if metric.is_better(next.value, best.value) {
                    next
                } else {
                    best
                }
            });
        Summary {
            epochs_completed: whole.len(),
            total_seconds,
            selection: if has_validation {
                Selection::Validation
            } else {
                Selection::Last
            },
            selected_epoch: selected.map(|e| e.epoch),
            validation_at_selected: selected.and_then(|e| e.validation.clone()),
            test_at_selected: selected.and_then(|e| e.test.clone()),
            final_test: whole.last().and_then(|e| e.test.clone()),
            oracle_best_test,
            stop_reason: None,
            restored: None,
        }
    }
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn finite(value: Option<f64>) -> Option<f64> {
    value.filter(|v| v.is_finite())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunDocument {
    pub schema_version: u32,
    pub kind: String,
    pub command: ModelKind,
    /// The run's identity ([`crate::config::RunConfig::run_id`]): its configuration and data.
    /// Its checkpoint, saved models and sweep summary carry the same id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run_id: String,
    pub status: RunStatus,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub started_at: String,
    #[serde(default)]
    pub updated_at: String,
    /// The command line the run was started with.
    #[serde(default)]
    pub argv: Vec<String>,
    /// The resolved configuration; `regulab rerun` runs it again.
    pub config: RunConfig,
    /// Data set statistics (ratings or images; see docs/run-document.md).
    #[serde(default)]
    pub dataset: Value,
    #[serde(default)]
    pub environment: Environment,
    pub regularization: RegularizationRecord,
    pub metric: MetricInfo,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub epochs: Vec<EpochRecord>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_empty"
    )]
    pub steps: Vec<StepRecord>,
    #[serde(default)]
    pub summary: Summary,
    /// Plain-language findings about the curves, computed when the run ends
    /// (`crate::explain`; `regulab explain` recomputes them from the curves).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<Finding>,
    /// Checkpoint, data fingerprint, resumes and saved models.
    #[serde(flatten)]
    pub files: RunFiles,
}

/// What a run keeps beside its document, and how it was continued.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunFiles {
    /// Where the run writes its checkpoint (`regulab resume` continues from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<CheckpointInfo>,
    /// Sizes and a checksum of the data trained on; resuming checks the data is unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_fingerprint: Option<crate::data::fingerprint::DataFingerprint>,
    /// Each time the run was continued by `regulab resume`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resumed: Vec<ResumeRecord>,
    /// The model files written when the run completed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<SavedModel>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointInfo {
    /// The checkpoint's file name, in the run document's folder.
    pub file: String,
    /// Written after every `every`-th epoch; removed when the run completes.
    pub every: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResumeRecord {
    /// The checkpoint's epoch: training continued with the epoch after it.
    pub from_epoch: usize,
    pub at: String,
}

/// Which weights a model file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelRole {
    /// The weights the run ended with (the restored ones with `restore_best`).
    Final,
    /// The weights of the selected epoch (the best validation epoch).
    Selected,
}

crate::named_enum!(ModelRole, ["final", "selected"]);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedModel {
    pub role: ModelRole,
    /// The `.safetensors` file's name, in the run document's folder.
    pub file: String,
    /// The epoch whose weights it holds.
    pub epoch: usize,
}

impl RunDocument {
    /// A file named in the document, beside the document at `document_path`.
    pub fn beside(document_path: &Path, file: &str) -> std::path::PathBuf {
        document_path
            .parent()
            .unwrap_or_else(|| Path::new(""))
            .join(file)
    }
}

impl RunDocument {
    /// (epoch, value) of `split.key` over the epochs that recorded a finite value.
    pub fn series(&self, split: Split, key: &str) -> Vec<(f64, f64)> {
        self.epochs
            .iter()
            .filter_map(|e| {
                let value = *e.split(split)?.get(key)?;
                value.is_finite().then_some((e.epoch as f64, value))
            })
            .collect()
    }
}

/// One run of a sweep, as the summary lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepRun {
    pub file: String,
    /// The run's id (its document's `run_id`); empty when it failed before starting.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run_id: String,
    /// The swept keys' values for this run.
    pub values: BTreeMap<String, Value>,
    pub status: RunStatus,
    pub message: Option<String>,
    pub selection: Selection,
    pub selected_epoch: Option<usize>,
    /// The headline metric on validation at the selected epoch: what to choose settings by.
    #[serde(default)]
    pub validation_at_selected: Option<f64>,
    /// The headline metric on test at the selected epoch.
    pub test_at_selected: Option<f64>,
    pub final_test: Option<f64>,
    /// Chosen on the test set: not a result.
    pub oracle_best_test: Option<f64>,
}

/// Runs that differ only in their seed, with the mean and sample standard deviation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepGroup {
    pub values: BTreeMap<String, Value>,
    pub runs: usize,
    pub completed: usize,
    /// Runs of the group not in its means and spreads: interrupted, diverged or failed ones,
    /// whose numbers describe a model cut short (`runs - completed`; 0 in older summaries).
    #[serde(default)]
    pub left_out: usize,
    #[serde(default)]
    pub validation_at_selected_mean: Option<f64>,
    pub test_at_selected_mean: Option<f64>,
    pub test_at_selected_std: Option<f64>,
    pub final_test_mean: Option<f64>,
    pub final_test_std: Option<f64>,
}

/// Keys whose values repeat one setting rather than change it: seeds, and folds of the data
/// (a cross-validation's splits). A sweep's groups, its figure and its report table average
/// over them.
pub const REPLICATE_KEYS: [&str; 2] = ["seed", "split"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepSummary {
    pub schema_version: u32,
    pub kind: String,
    pub command: ModelKind,
    pub metric: MetricInfo,
    /// The keys that take more than one value, in the order given.
    pub swept: Vec<String>,
    pub runs: Vec<SweepRun>,
    pub groups: Vec<SweepGroup>,
}

/// `DIR/tune.json`: what `regulab tune` searched, every trial's way up the rungs, and the
/// choice (made on validation) with its test result. Fields in docs/run-document.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuneSummary {
    pub schema_version: u32,
    pub kind: String,
    pub command: ModelKind,
    /// The selection metric (validation only).
    pub metric: MetricInfo,
    pub search: Vec<SearchedKey>,
    /// `grid` or `random`.
    pub sampler: String,
    /// The random sampler's seed (none for the grid).
    pub sampler_seed: Option<u64>,
    /// `none` or `asha`.
    pub scheduler: String,
    /// ASHA's η: the share 1/η of a rung's trials continues.
    pub reduction: usize,
    /// The epochs of each rung; the last is every trial's `epochs`.
    pub rungs: Vec<usize>,
    /// The folds each trial trains on (`split` values); empty: the configured split.
    pub folds: Vec<String>,
    /// `running` (a rung under way), `interrupted` or `completed`.
    pub state: String,
    pub trials: Vec<TuneTrial>,
    pub choice: Option<TuneChoice>,
}

/// One `--search KEY=SPEC`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchedKey {
    pub key: String,
    pub spec: String,
    /// A log-uniform range (figures use a log axis).
    pub log: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuneTrial {
    pub index: usize,
    /// Its name in the folder: documents `NAME.json` (`NAME,split=u1.json` over folds).
    pub name: String,
    pub values: BTreeMap<String, Value>,
    /// The selection metric on validation at each rung it reached (the best epoch up to the
    /// rung, averaged over folds); `null` where it diverged or failed.
    pub validation: Vec<Option<f64>>,
    /// The epochs of the last rung it reached (0: none yet).
    pub epochs: usize,
    /// `pending`, `pruned`, `completed`, `diverged` or `failed`.
    pub stopped: String,
    /// The rung (from 0) where it was pruned, diverged or failed.
    pub stopped_at_rung: Option<usize>,
    /// Its run documents, one per fold.
    pub runs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuneChoice {
    pub trial: usize,
    pub values: BTreeMap<String, Value>,
    /// Its validation value at the last rung (the mean over folds).
    pub validation: f64,
    /// Per fold, the test metric at the epoch that fold's validation selected.
    pub test: Vec<FoldTest>,
    pub test_mean: Option<f64>,
    /// Sample standard deviation over folds (0 for one).
    pub test_std: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldTest {
    /// The run document.
    pub run: String,
    pub fold: Option<String>,
    pub epoch: usize,
    pub value: Option<f64>,
}

/// Reads a tune's `tune.json`.
pub fn load_tune(path: &Path) -> Result<TuneSummary> {
    let value = read_json(path, TUNE_KIND)?;
    parse(path, value, TUNE_KIND)
}

/// Reads a run document (version 2, or version 1 upgraded), with one-line errors naming the
/// file: unreadable, malformed JSON (with line and column), not a regulab run, or another
/// schema version.
pub fn load_run(path: &Path) -> Result<RunDocument> {
    let value = read_json(path, RUN_KIND)?;
    run_from_value(value).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// A run document from parsed JSON whose header was checked (version 1 is upgraded).
pub fn run_from_value(mut value: Value) -> std::result::Result<RunDocument, String> {
    if value["schema_version"].as_u64() == Some(1) {
        value = upgrade_v1(value);
    }
    serde_json::from_value(value).map_err(|e| format!("invalid regulab run JSON: {e}"))
}

/// Reads a sweep's summary.json.
pub fn load_sweep(path: &Path) -> Result<SweepSummary> {
    let value = read_json(path, SWEEP_KIND)?;
    if value["schema_version"].as_u64() == Some(1) {
        return Err(anyhow!(
            "{}: a version 1 sweep summary; run the sweep again with this regulab",
            path.display()
        ));
    }
    parse(path, value, SWEEP_KIND)
}

fn parse<T: DeserializeOwned>(path: &Path, value: Value, kind: &str) -> Result<T> {
    // Sweep summaries are the only other kind read here.
    serde_json::from_value(value).map_err(|e| {
        anyhow!(
            "{}: invalid {} JSON: {e}",
            path.display(),
            describe_kind(kind)
        )
    })
}

fn read_json(path: &Path, kind: &str) -> Result<Value> {
    let file = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidData => {
            anyhow!(
                "{file}: not a {} JSON (not UTF-8 text)",
                describe_kind(kind)
            )
        }
        _ => anyhow!("{file}: cannot read: {e}"),
    })?;
    let value: Value =
        serde_json::from_str(&text).map_err(|e| anyhow!("{file}: malformed JSON: {e}"))?;
    check_header(&value, kind).map_err(|e| anyhow!("{file}: {e}"))?;
    Ok(value)
}

fn describe_kind(kind: &str) -> String {
    match kind.strip_prefix("regulab-") {
        Some(what) => format!("regulab {what}"),
        None => kind.to_string(),
    }
}

/// `Err` with the reason when `value` is not a document of `kind` that this build reads.
pub fn check_header(value: &Value, kind: &str) -> std::result::Result<(), String> {
    let what = describe_kind(kind);
    let Some(object) = value.as_object() else {
        let found = match value {
            Value::Array(_) => "an array",
            Value::String(_) => "a string",
            Value::Number(_) => "a number",
            Value::Bool(_) => "a boolean",
            _ => "null",
        };
        return Err(format!(
            "not a {what} JSON (the top level is {found}, expected an object)"
        ));
    };
    match object.get("kind") {
        Some(Value::String(found)) if found == kind => {}
        found => {
            let mut detail = match found {
                None => format!("no \"kind\" field, expected \"{kind}\""),
                Some(found) => format!("kind is {found}, expected \"{kind}\""),
            };
            if kind == RUN_KIND && found.and_then(Value::as_str) == Some(SWEEP_KIND) {
                detail +=
                    "; a sweep summary: draw it with regulab plot SUMMARY.json or regulab report";
            }
            return Err(format!("not a {what} JSON ({detail})"));
        }
    }
    match object.get("schema_version").and_then(Value::as_u64) {
        Some(1) | Some(2) => Ok(()),
        _ => Err(format!(
            "not a {what} JSON (schema_version {}, this regulab reads 1 and {SCHEMA_VERSION})",
            object
                .get("schema_version")
                .map_or("missing".to_string(), Value::to_string)
        )),
    }
}

/// A version 1 run document in version 2's shape: a flat untyped config becomes a
/// `RunConfig` (keys it does not know are dropped), the metric gains its direction, and the
/// summary's test-chosen "best" becomes `oracle_best_test`.
fn upgrade_v1(mut value: Value) -> Value {
    let command = value["command"].as_str().unwrap_or("mf").to_string();
    let metric = value["metric"]
        .as_str()
        .unwrap_or(if command == "mlp" { "accuracy" } else { "rmse" })
        .to_string();
    value["metric"] = serde_json::json!({
        "name": metric,
        "higher_is_better": metric == "accuracy",
    });
    value["config"] = upgrade_v1_config(&value["config"], &command);
    let last = value["epochs"]
        .as_array()
        .and_then(|e| e.last())
        .cloned()
        .unwrap_or(Value::Null);
    let old = value["summary"].clone();
    let best_epoch = old["best_epoch"].as_u64();
    let best_value = old[format!("best_test_{metric}")].as_f64();
    value["summary"] = serde_json::json!({
        "epochs_completed": value["epochs"].as_array().map_or(0, Vec::len),
        "total_seconds": old["total_seconds"].as_f64().unwrap_or(0.0),
        "selection": "last",
        "selected_epoch": last["epoch"],
        "test_at_selected": last["test"],
        "final_test": last["test"],
        "oracle_best_test": best_epoch.zip(best_value).map(|(epoch, value)| serde_json::json!({"epoch": epoch, "value": value})),
    });
    if !value["regularization"].is_object() {
        value["regularization"] = serde_json::json!({});
    }
    if let Some(regularization) = value["regularization"].as_object_mut() {
        let defaults = [
            ("penalty", Value::from("none")),
            ("lambda", Value::from(0.0)),
            ("formula", Value::from("")),
            ("scale", Value::from("none")),
            ("penalize_bias", Value::from(false)),
            ("weight_decay", Value::from(0.0)),
            ("weight_decay_mode", Value::from("none")),
            ("implied_weight_decay_formula", Value::from("")),
        ];
        for (key, default) in defaults {
            let present = regularization.get(key).is_some_and(|v| {
                v.is_string() == default.is_string() && v.is_number() == default.is_number()
            });
            if !present {
                regularization.insert(key.into(), default);
            }
        }
        if !regularization.get("divisor").is_some_and(Value::is_number) {
            regularization.insert("divisor".into(), Value::Null);
        }
    }
    value
}

fn upgrade_v1_config(old: &Value, command: &str) -> Value {
    let origin = crate::config::Origin::Set;
    let mut minimal = crate::config::Layer::default();
    let _ = minimal.set("command", Value::from(command), origin.clone());
    let data = old["data"].as_str().unwrap_or("unknown");
    let _ = minimal.set("data", Value::from(data), origin.clone());
    // Keys this version does not know, or values it rejects, are dropped.
    let mut values = minimal.clone();
    if let Some(object) = old.as_object() {
        for (key, value) in object.iter().filter(|(_, v)| !v.is_null()) {
            let _ = values.set(key, value.clone(), origin.clone());
        }
    }
    let _ = values.remove("out");
    let layer = if values.resolve().is_ok() {
        values
    } else {
        minimal
    };
    serde_json::to_value(&layer.values).unwrap_or(Value::Null)
}

fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

fn nan_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
}

fn nan_map<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<String, f64>, D::Error> {
    let map = Option::<BTreeMap<String, Option<f64>>>::deserialize(deserializer)?;
    Ok(map
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or(f64::NAN)))
        .collect())
}

fn optional_nan_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<BTreeMap<String, f64>>, D::Error> {
    let map = Option::<BTreeMap<String, Option<f64>>>::deserialize(deserializer)?;
    Ok(map.map(|m| {
        m.into_iter()
            .map(|(k, v)| (k, v.unwrap_or(f64::NAN)))
            .collect()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_values_round_trip_as_null() {
        let mut record = SplitRecord::new();
        record.insert("total_loss".into(), f64::NAN);
        record.insert("base_loss".into(), 1.5);
        let text = serde_json::to_string(&record).unwrap();
        assert_eq!(text, r#"{"base_loss":1.5,"total_loss":null}"#);
        let summary: Summary =
            serde_json::from_str(r#"{"test_at_selected": {"rmse": null, "mae": 0.5}}"#).unwrap();
        let test = summary.test_at_selected.unwrap();
        assert!(test["rmse"].is_nan());
        assert_eq!(test["mae"], 0.5);
    }

    #[test]
    fn foreign_documents_are_named() {
        let reason =
            |text: &str| check_header(&serde_json::from_str(text).unwrap(), RUN_KIND).unwrap_err();
        assert!(reason(r#"{"foo": 1}"#).contains(r#"no "kind" field"#));
        assert!(reason(r#"[1]"#).contains("an array"));
        assert!(reason(r#"{"kind": "regulab-sweep", "schema_version": 2}"#)
            .contains("regulab plot SUMMARY.json"));
        assert!(
            reason(r#"{"kind": "regulab-run", "schema_version": 3}"#).contains("schema_version 3")
        );
        assert!(reason(r#"{"kind": "regulab-run"}"#).contains("schema_version missing"));
    }

    #[test]
    fn metric_direction_decides_better() {
        let rmse = MetricInfo {
            name: "rmse".into(),
            higher_is_better: false,
        };
        assert!(rmse.is_better(0.9, 1.0));
        let accuracy = MetricInfo {
            name: "accuracy".into(),
            higher_is_better: true,
        };
        assert!(accuracy.is_better(0.9, 0.8));
    }
}

//! A run as data: [`RunConfig`], the one typed description of a training run.
//!
//! Users give configuration as flags, config files (TOML or JSON), `--set key=value` and
//! recorded run documents; all of them become [`Layer`]s of flat keys named like the long
//! flags. [`Layer::resolve`] fills the per-command defaults and validates everything in one
//! place, before any data is loaded, naming the flag or file line of a bad value.
//! `RunConfig` serializes back to the same flat keys (the run document's `config`), and
//! deserializes through the same resolution, so a recorded run can be run again exactly.

mod file;
mod layer;

pub use file::{load_file, ConfigFile, SweepAxis};
pub use layer::{canonical_key, closest_key, ConfigValues, Layer, Origin, MF_ONLY, MLP_ONLY};

use crate::data::fingerprint::DataFingerprint;
use crate::data::{LoadOptions, SplitSpec, SyntheticConfig};
use crate::device::DeviceChoice;
use crate::model::mf::MfVariant;
use crate::model::mlp::{Activation, LossKind};
use crate::model::Metric;
use crate::optim::{OptimizerKind, OptimizerSettings};
use crate::regularization::{PenaltyKind, PenaltySettings};
use crate::schedule::{EarlyStop, LrSchedule};
use crate::setting::InvalidSetting;
use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Which model a run trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    Mf,
    Mlp,
}

crate::named_enum!(ModelKind, ["mf", "mlp"]);

/// The settings whose defaults differ between the trainers, in one place.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelDefaults {
    pub lr: f64,
    pub batch_size: usize,
    pub epochs: usize,
}

impl ModelKind {
    /// The metric runs of this trainer are selected and summarized by.
    pub fn headline_metric(self) -> crate::model::Metric {
        match self {
            ModelKind::Mf => crate::model::Metric::Rmse,
            ModelKind::Mlp => crate::model::Metric::Accuracy,
        }
    }

    pub fn defaults(self) -> ModelDefaults {
        match self {
            ModelKind::Mf => ModelDefaults {
                lr: 0.01,
                batch_size: 1024,
                epochs: 20,
            },
            ModelKind::Mlp => ModelDefaults {
                lr: 0.001,
                batch_size: 128,
                epochs: 10,
            },
        }
    }

    fn own_keys(self) -> &'static [&'static str] {
        match self {
            ModelKind::Mf => MF_ONLY,
            ModelKind::Mlp => MLP_ONLY,
        }
    }

    fn other(self) -> ModelKind {
        match self {
            ModelKind::Mf => ModelKind::Mlp,
            ModelKind::Mlp => ModelKind::Mf,
        }
    }
}

/// A list of metrics, written `ndcg@10,recall@10` in flags and as a list of names in files
/// and run documents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricList(pub Vec<Metric>);

impl Serialize for MetricList {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|m| m.key()))
    }
}

impl<'de> Deserialize<'de> for MetricList {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Text(String),
            List(Vec<String>),
        }
        let names = match Form::deserialize(deserializer)? {
            Form::Text(text) => text.split(',').map(str::to_string).collect(),
            Form::List(names) => names,
        };
        names
            .iter()
            .filter(|name| !name.trim().is_empty())
            .map(|name| name.parse::<Metric>())
            .collect::<Result<Vec<_>, _>>()
            .map(MetricList)
            .map_err(serde::de::Error::custom)
    }
}

/// Relevance threshold of ranking metrics on the 1..5 scale: "liked" is 4 or 5 stars.
pub const DEFAULT_RELEVANCE: f64 = 4.0;

/// What matrix factorization measures besides rmse and mae.
#[derive(Debug, Clone, PartialEq)]
pub struct RankingSpec {
    /// Ranking metrics recorded on validation and test each epoch (rmse and mae always are).
    pub metrics: Vec<Metric>,
    /// Ratings at or above this are relevant.
    pub relevance: f64,
}

impl RankingSpec {
    /// The ranking metrics a run records: `metrics`, and the selection metric when it is
    /// one, each once.
    pub fn recorded(&self, selection: Metric) -> Vec<Metric> {
        let mut recorded: Vec<Metric> = self
            .metrics
            .iter()
            .copied()
            .filter(|m| m.is_ranking())
            .collect();
        if selection.is_ranking() && !recorded.contains(&selection) {
            recorded.push(selection);
        }
        recorded
    }
}

/// How matrix factorization's training steps are computed (`--engine`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// The fused step where it covers the run (the CPU) and its self-check passed, else
    /// autograd.
    #[default]
    Auto,
    /// libtorch's autograd and the optimizer: the reference.
    Autograd,
    /// The fused CPU step (`crate::fused_mf`); refused where it does not apply.
    Fused,
}

crate::named_enum!(Engine, ["auto", "autograd", "fused"]);

/// Why `--engine fused` is refused on a CUDA device.
pub const FUSED_ON_CUDA: &str =
    "fused runs on the CPU only; on a CUDA device training goes through autograd (--engine auto or autograd)";

/// Matrix factorization on ratings.
#[derive(Debug, Clone, PartialEq)]
pub struct MfSpec {
    /// How training steps are computed.
    pub engine: Engine,
    /// `synthetic`, a data set name from the cache, or a path.
    pub data: String,
    pub download: bool,
    pub split: SplitSpec,
    /// How ratings files are checked: duplicates and the rating scale.
    pub load: LoadOptions,
    pub synthetic: SyntheticConfig,
    pub variant: MfVariant,
    pub dim: i64,
    pub init_std: f64,
    /// Hold out this fraction of the training ratings (seeded) for validation.
    pub val_split: Option<f64>,
    pub ranking: RankingSpec,
}

/// The MLP on MNIST-format images.
#[derive(Debug, Clone, PartialEq)]
pub struct MlpSpec {
    pub data: String,
    pub download: bool,
    pub hidden: Vec<i64>,
    pub activation: Activation,
    pub loss: LossKind,
    pub normalize: bool,
    pub val_split: Option<f64>,
    pub limit_train: Option<usize>,
    pub limit_test: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ModelSpec {
    Mf(MfSpec),
    Mlp(MlpSpec),
}

/// The loop's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingSettings {
    pub epochs: usize,
    pub batch_size: usize,
    /// Initial weights, batch order and random splits.
    pub seed: u64,
    pub device: DeviceChoice,
    /// CPU threads for torch; `None` leaves torch's choice.
    pub threads: Option<usize>,
    /// Train even when the memory estimate exceeds what the machine has.
    pub force: bool,
    pub schedule: LrSchedule,
    pub early_stop: Option<EarlyStop>,
    /// Put the best validation epoch's weights back at the end.
    pub restore_best: bool,
    /// End the run after this epoch as interrupted, resumable from its checkpoint (how
    /// `regulab tune` trains a trial up to a rung, and on to the next one if promoted); not
    /// part of the run's identity, so the same run continues.
    pub pause_after: Option<usize>,
    /// Chooses the reported epoch, and drives early stopping, `restore_best` and plateau
    /// schedules [default: the trainer's headline metric].
    pub selection_metric: Metric,
}

/// Where and how much a run reports.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputSettings {
    /// The run document; `None` picks `runs/<time>-<command>.json` when the run starts.
    pub out: Option<PathBuf>,
    /// Also record the losses every N optimizer steps.
    pub log_every: Option<usize>,
    pub quiet: bool,
    /// Write a checkpoint every this many epochs (0: never); see [`DEFAULT_CHECKPOINT_EVERY`].
    pub checkpoint_every: usize,
}

/// Every epoch: a checkpoint costs one write of the weights and optimizer state (about 1 MB
/// for ml-100k, 45 MB for ml-25m with Adam), small beside an epoch, and an interrupted run
/// then loses at most one epoch. The checkpoint is removed when the run completes.
pub const DEFAULT_CHECKPOINT_EVERY: usize = 1;

/// One training run, fully resolved and validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "ConfigValues", try_from = "ConfigValues")]
pub struct RunConfig {
    pub model: ModelSpec,
    pub optimizer: OptimizerSettings,
    pub penalty: PenaltySettings,
    pub training: TrainingSettings,
    pub output: OutputSettings,
}

impl RunConfig {
    pub fn model_kind(&self) -> ModelKind {
        match self.model {
            ModelSpec::Mf(_) => ModelKind::Mf,
            ModelSpec::Mlp(_) => ModelKind::Mlp,
        }
    }

    /// The data the run reads: `synthetic`, a data set name or a path.
    pub fn data(&self) -> &str {
        match &self.model {
            ModelSpec::Mf(spec) => &spec.data,
            ModelSpec::Mlp(spec) => &spec.data,
        }
    }

    /// Points the run at other data (`resume --data`: the same data in another place).
    pub fn set_data(&mut self, data: &str) {
        match &mut self.model {
            ModelSpec::Mf(spec) => spec.data = data.to_string(),
            ModelSpec::Mlp(spec) => spec.data = data.to_string(),
        }
    }

    /// The configuration as flat keys (what the run document records).
    pub fn to_values(&self) -> ConfigValues {
        self.clone().into()
    }

    /// A layer with every value of this configuration, recorded at `origin`.
    pub fn to_layer(&self, origin: Origin) -> Result<Layer> {
        Layer::from_values(&self.to_values(), origin)
    }

    /// The run's identity: a hash of what it computes (every key but those in
    /// [`NOT_IDENTITY`], seed included) and of the data it trains on. Two runs with one id
    /// produce the same numbers on the CPU, so a finished one need not train again, and a
    /// checkpoint or document with another id belongs to another run.
    pub fn run_id(&self, data: &DataFingerprint) -> String {
        use sha2::{Digest, Sha256};
        let mut values = match serde_json::to_value(self.to_values()) {
            Ok(Value::Object(values)) => values,
            _ => serde_json::Map::new(),
        };
        values.retain(|key, _| !NOT_IDENTITY.contains(&key.as_str()));
        let mut hasher = Sha256::new();
        hasher.update(Value::Object(values).to_string());
        hasher.update(b"\n");
        hasher.update(&data.sha256);
        let digest = hasher.finalize();
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Keys that say where a run writes, how it shows progress or which machine it uses, not what
/// it computes; the data is in the id through its fingerprint instead of its path or name.
pub const NOT_IDENTITY: &[&str] = &[
    "out",
    "quiet",
    "force",
    "checkpoint_every",
    "threads",
    "device",
    "download",
    "data",
    "pause_after",
    // Both engines compute the same numbers (bit for bit where the parity suite checks them;
    // `auto` picks fused only where its self-check reproduces ATen's sums), and a checkpoint
    // of one resumes in the other, as with `threads`. The document's environment records the
    // engine that ran.
    "engine",
];

impl From<RunConfig> for ConfigValues {
    fn from(config: RunConfig) -> ConfigValues {
        let mut values = ConfigValues {
            command: Some(config.model_kind()),
            optimizer: Some(config.optimizer.kind),
            lr: Some(config.optimizer.lr),
            momentum: Some(config.optimizer.momentum),
            dampening: Some(config.optimizer.dampening),
            nesterov: Some(config.optimizer.nesterov),
            betas: Some(config.optimizer.betas),
            eps: Some(config.optimizer.eps),
            amsgrad: Some(config.optimizer.amsgrad),
            alpha: Some(config.optimizer.alpha),
            centered: Some(config.optimizer.centered),
            weight_decay: Some(config.optimizer.weight_decay),
            penalty: Some(config.penalty.kind),
            lambda: Some(config.penalty.lambda),
            penalty_scale: config.penalty.scale,
            penalize_bias: Some(config.penalty.penalize_bias),
            batch_size: Some(config.training.batch_size),
            epochs: Some(config.training.epochs),
            seed: Some(config.training.seed),
            device: Some(config.training.device),
            threads: config.training.threads,
            force: Some(config.training.force),
            lr_schedule: Some(config.training.schedule),
            early_stop: config.training.early_stop.map(|e| e.patience),
            min_delta: config.training.early_stop.map(|e| e.min_delta),
            restore_best: Some(config.training.restore_best),
            pause_after: config.training.pause_after,
            // Written only when not the default, so existing runs keep their identity.
            selection_metric: (config.training.selection_metric
                != config.model_kind().headline_metric())
            .then_some(config.training.selection_metric),
            log_every: config.output.log_every,
            quiet: Some(config.output.quiet),
            checkpoint_every: Some(config.output.checkpoint_every),
            out: config.output.out,
            ..Default::default()
        };
        match config.model {
            ModelSpec::Mf(spec) => {
                if spec.data == "synthetic" {
                    let s = spec.synthetic;
                    values.synthetic_users = Some(s.users);
                    values.synthetic_items = Some(s.items);
                    values.synthetic_ratings = Some(s.ratings);
                    values.synthetic_rank = Some(s.rank);
                    values.synthetic_noise = Some(s.noise_std);
                    values.synthetic_seed = Some(s.seed);
                }
                values.data = Some(spec.data);
                values.download = Some(spec.download);
                values.split = Some(spec.split);
                values.duplicates = Some(spec.load.duplicates);
                values.rating_range = spec.load.rating_range;
                values.model = Some(spec.variant);
                values.dim = Some(spec.dim);
                values.init_std = Some(spec.init_std);
                values.sparse = Some(config.optimizer.sparse);
                values.engine = Some(spec.engine);
                values.val_split = spec.val_split;
                values.metrics =
                    (!spec.ranking.metrics.is_empty()).then_some(MetricList(spec.ranking.metrics));
                values.relevance =
                    (spec.ranking.relevance != DEFAULT_RELEVANCE).then_some(spec.ranking.relevance);
            }
            ModelSpec::Mlp(spec) => {
                values.data = Some(spec.data);
                values.download = Some(spec.download);
                values.hidden = Some(spec.hidden);
                values.activation = Some(spec.activation);
                values.loss = Some(spec.loss);
                values.normalize = Some(spec.normalize);
                values.val_split = spec.val_split;
                values.limit_train = spec.limit_train;
                values.limit_test = spec.limit_test;
            }
        }
        values
    }
}

/// Every key's default for one trainer, as a flag would spell it (`0.9,0.999`, `random:0.8`):
/// the configuration an empty layer resolves to. Switches (false by default) and keys
/// without a fixed default (`out`, `threads`, ...) are left out. `--help` shows these, so
/// the help can never disagree with what a run uses.
pub fn default_values(trainer: ModelKind) -> BTreeMap<String, String> {
    // The MLP has no default data set; a stand-in lets the rest resolve and is left out.
    let data_default = trainer == ModelKind::Mf;
    let layer = Layer::with_values(ConfigValues {
        command: Some(trainer),
        data: (!data_default).then(|| "mnist".to_string()),
        ..Default::default()
    });
    let Ok(config) = layer.resolve() else {
        return BTreeMap::new();
    };
    let Ok(Value::Object(values)) = serde_json::to_value(ConfigValues::from(config)) else {
        return BTreeMap::new();
    };
    values
        .into_iter()
        .filter(|(key, _)| key != "command" && (data_default || key != "data"))
        .filter_map(|(key, value)| Some((key, flag_text(&value)?)))
        .collect()
}

/// A default as the flag's text; `None` for switches and unset keys.
fn flag_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        // 0.0 reads as 0 in a flag, as users type it.
        Value::Number(number) => Some(match number.as_f64() {
            Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{x:.0}"),
            _ => number.to_string(),
        }),
        Value::Array(items) => Some(
            items
                .iter()
                .map(flag_text)
                .collect::<Option<Vec<_>>>()?
                .join(","),
        ),
        Value::Bool(_) | Value::Null | Value::Object(_) => None,
    }
}

impl TryFrom<ConfigValues> for RunConfig {
    type Error = String;

    fn try_from(values: ConfigValues) -> Result<Self, String> {
        Layer::with_values(values)
            .resolve()
            .map_err(|e| format!("{e:#}"))
    }
}

impl Layer {
    /// Fills defaults and validates: the one place a configuration is checked. Errors name
    /// the flag, file line or key of the offending value.
    pub fn resolve(&self) -> Result<RunConfig> {
        let v = &self.values;
        let trainer = v.command.ok_or_else(|| {
            anyhow!("no command: a config file run with `regulab run` needs command = \"mf\" or \"mlp\"")
        })?;
        let other = trainer.other();
        if let Some(key) = other.own_keys().iter().find(|k| self.is_given(k)) {
            bail!(
                "{}: applies to `regulab {other}` only, not to {trainer}",
                self.describe(key)
            );
        }
        let defaults = trainer.defaults();
        let spec = match trainer {
            ModelKind::Mf => ModelSpec::Mf(MfSpec {
                engine: v.engine.unwrap_or_default(),
                data: v.data.clone().unwrap_or_else(|| "synthetic".into()),
                download: v.download.unwrap_or(false),
                split: v.split.clone().unwrap_or(SplitSpec::Random(0.8)),
                load: LoadOptions {
                    duplicates: v.duplicates.unwrap_or_default(),
                    rating_range: v.rating_range,
                },
                synthetic: layer::synthetic_config(v),
                variant: v.model.unwrap_or(MfVariant::Biased),
                dim: v.dim.unwrap_or(16),
                init_std: v.init_std.unwrap_or(0.1),
                val_split: v.val_split,
                ranking: RankingSpec {
                    metrics: v.metrics.clone().unwrap_or_default().0,
                    relevance: v.relevance.unwrap_or(DEFAULT_RELEVANCE),
                },
            }),
            ModelKind::Mlp => ModelSpec::Mlp(MlpSpec {
                data: v.data.clone().ok_or_else(|| {
                    anyhow!("--data is required for mlp: mnist, fashion-mnist or an MNIST-format folder")
                })?,
                download: v.download.unwrap_or(false),
                hidden: v.hidden.clone().unwrap_or_else(|| vec![512, 256, 128]),
                activation: v.activation.unwrap_or(Activation::Relu),
                loss: v.loss.unwrap_or(LossKind::Ce),
                normalize: v.normalize.unwrap_or(false),
                val_split: v.val_split,
                limit_train: v.limit_train,
                limit_test: v.limit_test,
            }),
        };
        let config = RunConfig {
            model: spec,
            optimizer: optimizer_settings(v, defaults.lr),
            penalty: PenaltySettings {
                kind: v.penalty.unwrap_or(PenaltyKind::None),
                lambda: v.lambda.unwrap_or(0.0),
                scale: v.penalty_scale,
                penalize_bias: v.penalize_bias.unwrap_or(false),
            },
            training: TrainingSettings {
                epochs: v.epochs.unwrap_or(defaults.epochs),
                batch_size: v.batch_size.unwrap_or(defaults.batch_size),
                seed: v.seed.unwrap_or(0),
                device: v.device.unwrap_or_default(),
                threads: v.threads,
                force: v.force.unwrap_or(false),
                schedule: v.lr_schedule.unwrap_or_default(),
                early_stop: v.early_stop.map(|patience| EarlyStop {
                    patience,
                    min_delta: v.min_delta.unwrap_or(0.0),
                }),
                restore_best: v.restore_best.unwrap_or(false),
                pause_after: v.pause_after,
                selection_metric: v.selection_metric.unwrap_or(trainer.headline_metric()),
            },
            output: OutputSettings {
                out: v.out.clone(),
                log_every: v.log_every,
                quiet: v.quiet.unwrap_or(false),
                checkpoint_every: v.checkpoint_every.unwrap_or(DEFAULT_CHECKPOINT_EVERY),
            },
        };
        config
            .validate()
            .map_err(|invalid| anyhow!("{}: {}", self.describe(invalid.key), invalid.reason))?;
        // A penalty form with no strength trains with none at all, and the document then says
        // "no penalty" although the command named one: refuse it where the form is named.
        if v.penalty.is_some_and(|kind| kind != PenaltyKind::None) && v.lambda.is_none() {
            bail!(
                "{} needs a strength: add --lambda (`lambda` in a config file), e.g. --lambda 0.1",
                self.describe("penalty")
            );
        }
        Ok(config)
    }
}

/// The optimizer's settings: torch.optim's defaults where a key is not given.
fn optimizer_settings(v: &ConfigValues, default_lr: f64) -> OptimizerSettings {
    let torch = OptimizerSettings::new(
        v.optimizer.unwrap_or(OptimizerKind::Adam),
        v.lr.unwrap_or(default_lr),
    );
    OptimizerSettings {
        momentum: v.momentum.unwrap_or(torch.momentum),
        dampening: v.dampening.unwrap_or(torch.dampening),
        nesterov: v.nesterov.unwrap_or(torch.nesterov),
        weight_decay: v.weight_decay.unwrap_or(torch.weight_decay),
        betas: v.betas.unwrap_or(torch.betas),
        eps: v.eps.unwrap_or(torch.eps),
        amsgrad: v.amsgrad.unwrap_or(torch.amsgrad),
        alpha: v.alpha.unwrap_or(torch.alpha),
        centered: v.centered.unwrap_or(torch.centered),
        sparse: v.sparse.unwrap_or(false),
        ..torch
    }
}

impl RunConfig {
    /// Every check that needs no data.
    fn validate(&self) -> Result<(), InvalidSetting> {
        let at_least_one = |key: &'static str, value: Option<usize>| match value {
            Some(0) => Err(InvalidSetting::new(key, "must be at least 1")),
            _ => Ok(()),
        };
        let t = &self.training;
        at_least_one("epochs", Some(t.epochs))?;
        at_least_one("batch_size", Some(t.batch_size))?;
        at_least_one("pause_after", t.pause_after)?;
        if let Some(pause) = t.pause_after {
            let every = self.output.checkpoint_every;
            if every == 0 || pause % every != 0 {
                return Err(InvalidSetting::new(
                    "pause_after",
                    "must be a multiple of checkpoint_every, so that the paused run has a checkpoint to continue from",
                ));
            }
        }
        if t.batch_size > i64::MAX as usize {
            return Err(InvalidSetting::new("batch_size", "is too large"));
        }
        at_least_one("threads", t.threads)?;
        self.validate_selection()?;
        self.validate_metrics()?;
        at_least_one("log_every", self.output.log_every)?;
        self.optimizer.validate()?;
        self.penalty.validate()?;
        if let Some(out) = &self.output.out {
            if out.is_dir() {
                return Err(InvalidSetting::new(
                    "out",
                    "is a folder; name the run document's file (e.g. runs/lambda-0.1.json)",
                ));
            }
        }
        match &self.model {
            ModelSpec::Mf(spec) => {
                validate_sparse_penalty(&self.penalty, self.optimizer.sparse)?;
                if spec.engine == Engine::Fused && matches!(t.device, DeviceChoice::Cuda(_)) {
                    return Err(InvalidSetting::new("engine", FUSED_ON_CUDA));
                }
                validate_mf(spec)
            }
            ModelSpec::Mlp(spec) => {
                if self.penalty.kind == PenaltyKind::BatchL2 {
                    return Err(InvalidSetting::new(
                        "penalty",
                        "batch-l2 is matrix factorization's per-rating penalty; for the MLP use l2, norm or l1",
                    ));
                }
                validate_mlp(spec)
            }
        }
    }
}

impl RunConfig {
    /// The fraction of training data held out for validation, if any.
    pub fn val_split(&self) -> Option<f64> {
        match &self.model {
            ModelSpec::Mf(spec) => spec.val_split,
            ModelSpec::Mlp(spec) => spec.val_split,
        }
    }

    /// Early stopping, restoring and plateau schedules choose on validation; without a
    /// validation split they would have to choose on test.
    fn validate_selection(&self) -> Result<(), InvalidSetting> {
        let t = &self.training;
        let needs = [
            ("early_stop", t.early_stop.is_some()),
            ("restore_best", t.restore_best),
            ("lr_schedule", t.schedule.needs_validation()),
        ];
        if let Some((key, _)) = needs.iter().find(|(_, needed)| *needed) {
            if self.val_split().is_none() {
                return Err(InvalidSetting::new(
                    key,
                    "needs a validation split (--val-split F): choosing on the test set would make the test result optimistic",
                ));
            }
        }
        if let Some(early) = t.early_stop {
            if early.patience == 0 {
                return Err(InvalidSetting::new("early_stop", "must be at least 1"));
            }
            if !(early.min_delta.is_finite() && early.min_delta >= 0.0) {
                return Err(InvalidSetting::new(
                    "min_delta",
                    "must be a non-negative number",
                ));
            }
        }
        Ok(())
    }
}

impl RunConfig {
    /// Metrics the trainer can measure: ranking metrics are matrix factorization's, accuracy
    /// the MLP's.
    fn validate_metrics(&self) -> Result<(), InvalidSetting> {
        let selection = self.training.selection_metric;
        match &self.model {
            ModelSpec::Mf(spec) => {
                if let Some(bad) = spec
                    .ranking
                    .metrics
                    .iter()
                    .chain([&selection])
                    .find(|m| **m == Metric::Accuracy)
                {
                    let key = if *bad == selection {
                        "selection_metric"
                    } else {
                        "metrics"
                    };
                    return Err(InvalidSetting::new(
                        key,
                        "accuracy is the MLP's metric; matrix factorization has rmse, mae, precision@K, recall@K, ndcg@K and hit@K",
                    ));
                }
                if !spec.ranking.relevance.is_finite() {
                    return Err(InvalidSetting::new("relevance", "must be a number"));
                }
            }
            ModelSpec::Mlp(_) => {
                if selection != Metric::Accuracy {
                    return Err(InvalidSetting::new(
                        "selection_metric",
                        "the MLP is selected by accuracy",
                    ));
                }
            }
        }
        Ok(())
    }
}

fn validate_fraction(val_split: Option<f64>) -> Result<(), InvalidSetting> {
    match val_split {
        Some(fraction) if !(fraction > 0.0 && fraction < 1.0) => Err(InvalidSetting::new(
            "val_split",
            "must be strictly between 0 and 1",
        )),
        _ => Ok(()),
    }
}

/// Row-sparse updates leave the rows a batch did not use untouched; a penalty over whole
/// tables would have to move every row at every step.
fn validate_sparse_penalty(penalty: &PenaltySettings, sparse: bool) -> Result<(), InvalidSetting> {
    if sparse && !matches!(penalty.kind, PenaltyKind::None | PenaltyKind::BatchL2) {
        return Err(InvalidSetting::new(
            "sparse",
            format!(
                "needs a row-local penalty (batch-l2) or none; --penalty {} touches every row",
                penalty.kind
            ),
        ));
    }
    Ok(())
}

fn validate_mf(spec: &MfSpec) -> Result<(), InvalidSetting> {
    validate_fraction(spec.val_split)?;
    if spec.dim <= 0 {
        return Err(InvalidSetting::new("dim", "must be positive"));
    }
    if !(spec.init_std.is_finite() && spec.init_std >= 0.0) {
        return Err(InvalidSetting::new(
            "init_std",
            "must be a non-negative number",
        ));
    }
    if spec.data == "synthetic" {
        spec.synthetic.check()?;
    }
    Ok(())
}

fn validate_mlp(spec: &MlpSpec) -> Result<(), InvalidSetting> {
    if let Some(bad) = spec.hidden.iter().find(|&&h| h <= 0) {
        return Err(InvalidSetting::new(
            "hidden",
            format!("layer size {bad} must be positive"),
        ));
    }
    validate_fraction(spec.val_split)?;
    for (key, limit) in [
        ("limit_train", spec.limit_train),
        ("limit_test", spec.limit_test),
    ] {
        if limit == Some(0) {
            return Err(InvalidSetting::new(key, "must be at least 1"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn layer(pairs: &[(&str, serde_json::Value)]) -> Layer {
        let mut layer = Layer::default();
        for (key, value) in pairs {
            layer.set(key, value.clone(), Origin::Flag).unwrap();
        }
        layer
    }

    #[test]
    fn defaults_differ_per_command() {
        let mf = layer(&[("command", json!("mf"))]).resolve().unwrap();
        assert_eq!(mf.optimizer.lr, 0.01);
        assert_eq!(mf.training.batch_size, 1024);
        let mlp = layer(&[("command", json!("mlp")), ("data", json!("x"))])
            .resolve()
            .unwrap();
        assert_eq!(mlp.optimizer.lr, 0.001);
        assert_eq!(mlp.training.epochs, 10);
    }

    #[test]
    fn resolved_config_round_trips_through_the_document_form() {
        let config = layer(&[
            ("command", json!("mf")),
            ("penalty", json!("batch-l2")),
            ("lambda", json!("0.1")),
            ("split", json!("u1")),
            ("out", json!("runs/x.json")),
        ])
        .resolve()
        .unwrap();
        let text = serde_json::to_string(&config).unwrap();
        assert!(text.contains(r#""lambda":0.1"#), "{text}");
        assert!(text.contains(r#""penalty":"batch-l2""#), "{text}");
        let back: RunConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(back, config);
    }

    #[test]
    fn ranking_keys_parse_from_text_and_lists_and_round_trip() {
        let from_text = layer(&[
            ("command", json!("mf")),
            ("metrics", json!("ndcg@10, recall@5")),
            ("relevance", json!("3.5")),
            ("selection_metric", json!("ndcg@10")),
        ])
        .resolve()
        .unwrap();
        let from_list = layer(&[
            ("command", json!("mf")),
            ("metrics", json!(["ndcg@10", "recall@5"])),
            ("relevance", json!(3.5)),
            ("selection_metric", json!("ndcg@10")),
        ])
        .resolve()
        .unwrap();
        assert_eq!(from_text, from_list);
        let ModelSpec::Mf(spec) = &from_text.model else {
            panic!("mf")
        };
        assert_eq!(spec.ranking.metrics, [Metric::Ndcg(10), Metric::Recall(5)]);
        assert_eq!(from_text.training.selection_metric, Metric::Ndcg(10));
        let text = serde_json::to_string(&from_text).unwrap();
        assert!(
            text.contains(r#""metrics":["ndcg@10","recall@5"]"#),
            "{text}"
        );
        let back: RunConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(back, from_text);
        // Defaults are not written, so runs without ranking keep their identity.
        let plain = layer(&[("command", json!("mf"))]).resolve().unwrap();
        let text = serde_json::to_string(&plain).unwrap();
        assert!(
            !text.contains("metric") && !text.contains("relevance"),
            "{text}"
        );
        let error = Layer::default()
            .set("metrics", json!("ndcg@x"), Origin::Flag)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("--metrics ndcg@x: ") && error.contains("K must be"),
            "{error}"
        );
    }

    #[test]
    fn validation_names_the_flag_and_value() {
        let error =
            |pairs: &[(&str, serde_json::Value)]| layer(pairs).resolve().unwrap_err().to_string();
        assert_eq!(
            error(&[
                ("command", json!("mf")),
                ("penalty", json!("l1")),
                ("lambda", json!("-1"))
            ]),
            "--lambda -1: must be a non-negative number"
        );
        assert_eq!(
            error(&[("command", json!("mf")), ("epochs", json!("0"))]),
            "--epochs 0: must be at least 1"
        );
        assert!(error(&[
            ("command", json!("mlp")),
            ("data", json!("x")),
            ("dim", json!(4))
        ])
        .contains("--dim 4: applies to `regulab mf` only"));
        assert!(error(&[("command", json!("mlp"))]).contains("--data is required"));
    }
}

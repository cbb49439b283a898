//! A partial run configuration as a user gives it: flat keys named like the long flags, each
//! value remembered with where it came from (a flag, a file line, `--set`, a recorded run), so
//! that every error can name the place to fix.
//!
//! Layers stack: defaults < config file < flags < `--set`. [`Layer::resolve`] (in `mod.rs`)
//! turns the merged layer into a typed [`super::RunConfig`].

use crate::data::{DuplicatePolicy, RatingRange, SplitSpec, SyntheticConfig};
use crate::device::DeviceChoice;
use crate::model::mf::MfVariant;
use crate::model::mlp::{Activation, LossKind};
use crate::optim::OptimizerKind;
use crate::regularization::{PenaltyKind, PenaltyScale};
use crate::schedule::LrSchedule;
use crate::setting::flag_name;
use anyhow::{bail, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

use super::ModelKind;

/// Declares the flat configuration: one optional field per key, the list of keys, and
/// per-key setting from a loosely typed value (a flag's text or a file's native value).
macro_rules! config_keys {
    ($( $(#[$doc:meta])* $key:ident : $type:ty ),* $(,)?) => {
        /// Every configuration key, each optional. Serialized as the run document's `config`
        /// (absent keys are omitted); keys are the long flag names with `_` for `-`.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct ConfigValues {
            $( $(#[$doc])* #[serde(default, skip_serializing_if = "Option::is_none")] pub $key: Option<$type>, )*
        }

        impl ConfigValues {
            /// Every key, in the order the run document lists them.
            pub const KEYS: &'static [&'static str] = &[$(stringify!($key)),*];

            fn set_loose(&mut self, key: &str, value: &Value) -> std::result::Result<(), String> {
                match key {
                    $( stringify!($key) => self.$key = Some(loose::<$type>(value)?), )*
                    _ => return Err(format!("unknown key {key:?}")),
                }
                Ok(())
            }

            fn take_from(&mut self, other: &ConfigValues) {
                $( if other.$key.is_some() { self.$key = other.$key.clone(); } )*
            }
        }
    };
}

config_keys! {
    /// `mf` or `mlp` (config files; the subcommand sets it otherwise).
    command: ModelKind,
    data: String,
    download: bool,
    split: SplitSpec,
    duplicates: DuplicatePolicy,
    rating_range: RatingRange,
    model: MfVariant,
    dim: i64,
    init_std: f64,
    /// Row-sparse gradients and updates (matrix factorization).
    sparse: bool,
    /// How training steps are computed (matrix factorization): auto, autograd or fused.
    engine: super::Engine,
    synthetic_users: usize,
    synthetic_items: usize,
    synthetic_ratings: usize,
    synthetic_rank: usize,
    synthetic_noise: f64,
    synthetic_seed: u64,
    hidden: Vec<i64>,
    activation: Activation,
    loss: LossKind,
    normalize: bool,
    val_split: f64,
    /// Ranking metrics recorded on validation and test each epoch (matrix factorization).
    metrics: super::MetricList,
    /// Ratings at or above this are relevant to ranking metrics.
    relevance: f64,
    /// The metric that chooses epochs: summary selection, early stopping, restore_best,
    /// plateau schedules.
    selection_metric: crate::model::Metric,
    limit_train: usize,
    limit_test: usize,
    optimizer: OptimizerKind,
    lr: f64,
    momentum: f64,
    dampening: f64,
    nesterov: bool,
    betas: (f64, f64),
    eps: f64,
    amsgrad: bool,
    alpha: f64,
    centered: bool,
    weight_decay: f64,
    penalty: PenaltyKind,
    lambda: f64,
    penalty_scale: PenaltyScale,
    penalize_bias: bool,
    batch_size: usize,
    epochs: usize,
    seed: u64,
    device: DeviceChoice,
    threads: usize,
    log_every: usize,
    quiet: bool,
    out: PathBuf,
    force: bool,
    lr_schedule: LrSchedule,
    early_stop: usize,
    min_delta: f64,
    restore_best: bool,
    checkpoint_every: usize,
    /// Stop after this epoch, resumable (a tune's trial that waits at a rung).
    pause_after: usize,
}

/// Keys that only one trainer understands.
pub const MF_ONLY: &[&str] = &[
    "split",
    "duplicates",
    "rating_range",
    "model",
    "dim",
    "init_std",
    "sparse",
    "engine",
    "synthetic_users",
    "synthetic_items",
    "synthetic_ratings",
    "synthetic_rank",
    "synthetic_noise",
    "synthetic_seed",
    "metrics",
    "relevance",
];
pub const MLP_ONLY: &[&str] = &[
    "hidden",
    "activation",
    "loss",
    "normalize",
    "limit_train",
    "limit_test",
];

/// Where a value came from, for error messages.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// A command-line flag (`--lambda`).
    Flag,
    /// A key in a config file, with its line when known (TOML).
    File { path: PathBuf, line: Option<usize> },
    /// `--set key=value`.
    Set,
    /// The `config` of a recorded run document.
    Recorded { path: PathBuf },
}

impl Origin {
    /// How the user refers to `key` at this origin.
    pub fn describe(&self, key: &str) -> String {
        match self {
            Origin::Flag => flag_name(key),
            Origin::File {
                path,
                line: Some(line),
            } => format!("{}:{line}: {key}", path.display()),
            Origin::File { path, line: None } => format!("{}: {key}", path.display()),
            Origin::Set => format!("--set {key}"),
            Origin::Recorded { path } => format!("{}: config.{key}", path.display()),
        }
    }
}

/// Configuration values with their origins.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Layer {
    pub values: ConfigValues,
    given: BTreeMap<&'static str, (Value, Origin)>,
}

/// The canonical key for a user's spelling (`weight-decay` and `weight_decay` are one key).
pub fn canonical_key(key: &str) -> Option<&'static str> {
    let normalized = key.trim().replace('-', "_");
    ConfigValues::KEYS
        .iter()
        .copied()
        .find(|known| *known == normalized)
}

/// The known key closest to a misspelled one, for "did you mean".
pub fn closest_key(key: &str) -> Option<&'static str> {
    let normalized = key.replace('-', "_");
    ConfigValues::KEYS
        .iter()
        .copied()
        .map(|known| (edit_distance(&normalized, known), known))
        .filter(|(distance, _)| *distance <= 2)
        .min()
        .map(|(_, known)| known)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

impl Layer {
    /// Sets `key` from a loosely typed value; the error names the key at its origin.
    pub fn set(&mut self, key: &str, value: Value, origin: Origin) -> Result<()> {
        let Some(canonical) = canonical_key(key) else {
            let hint = closest_key(key)
                .map(|k| format!(" (did you mean {k}?)"))
                .unwrap_or_default();
            bail!("{}: unknown key{hint}", origin.describe(key));
        };
        if let Err(reason) = self.values.set_loose(canonical, &value) {
            bail!(
                "{} {}: {reason}",
                origin.describe(canonical),
                value_text(&value)
            );
        }
        self.given.insert(canonical, (value, origin));
        Ok(())
    }

    /// Values whose origin is unknown (errors then name the flag).
    pub fn with_values(values: ConfigValues) -> Layer {
        Layer {
            values,
            given: BTreeMap::new(),
        }
    }

    /// A layer holding every value of `values`, all from one origin.
    pub fn from_values(values: &ConfigValues, origin: Origin) -> Result<Layer> {
        let mut layer = Layer::default();
        let json = serde_json::to_value(values)?;
        if let Value::Object(map) = json {
            for (key, value) in map {
                layer.set(&key, value, origin.clone())?;
            }
        }
        Ok(layer)
    }

    /// Values of `other` replace this layer's.
    pub fn overlay(&mut self, other: &Layer) {
        self.values.take_from(&other.values);
        for (key, given) in &other.given {
            self.given.insert(key, given.clone());
        }
    }

    pub fn remove(&mut self, key: &'static str) -> Result<()> {
        let mut values = serde_json::to_value(&self.values)?;
        if let Value::Object(map) = &mut values {
            map.remove(key);
        }
        self.values = serde_json::from_value(values)?;
        self.given.remove(key);
        Ok(())
    }

    /// Whether the user gave `key` (as opposed to a default filling it).
    pub fn is_given(&self, key: &str) -> bool {
        self.given.contains_key(key)
    }

    /// How to name `key` in an error: at its origin when given, else as its flag.
    pub fn describe(&self, key: &str) -> String {
        match self.given.get(key) {
            Some((value, origin)) => format!("{} {}", origin.describe(key), value_text(value)),
            None => flag_name(key),
        }
    }
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Reads a value of type `T` from a native value or from text (flags are text; config files
/// and recorded runs have native values). Text is tried as the type's own spelling (enums,
/// splits, paths), then as a number or boolean, then as a comma list (`--hidden 512,256`).
fn loose<T: DeserializeOwned>(value: &Value) -> std::result::Result<T, String> {
    let direct = serde_json::from_value::<T>(value.clone());
    let Value::String(text) = value else {
        return direct.map_err(|e| friendly::<T>(&e.to_string()));
    };
    let text = text.trim();
    direct
        .or_else(|first| {
            serde_json::from_str::<T>(text)
                .or_else(|_| {
                    let number = text.parse::<f64>().map_err(|_| ())?;
                    let number = serde_json::Number::from_f64(number).ok_or(())?;
                    serde_json::from_value::<T>(Value::Number(number)).map_err(|_| ())
                })
                .or_else(|_| serde_json::from_str::<T>(&format!("[{text}]")).map_err(|_| ()))
                .map_err(|_| first)
        })
        .map_err(|e| friendly::<T>(&e.to_string()))
}

/// serde's messages name Rust types; users want to hear what to type.
fn friendly<T>(message: &str) -> String {
    let expected = match std::any::type_name::<T>() {
        "f64" => "a number",
        "usize" | "u64" => "a non-negative integer",
        "i64" => "an integer",
        "bool" => "true or false",
        "alloc::string::String" | "std::path::PathBuf" => "text",
        "alloc::vec::Vec<i64>" => "a list of integers (512,256,128)",
        _ => return message.to_string(),
    };
    format!("expected {expected}")
}

/// The synthetic generator's sizes from a layer, defaults filled.
pub fn synthetic_config(values: &ConfigValues) -> SyntheticConfig {
    let defaults = SyntheticConfig::default();
    SyntheticConfig {
        users: values.synthetic_users.unwrap_or(defaults.users),
        items: values.synthetic_items.unwrap_or(defaults.items),
        ratings: values.synthetic_ratings.unwrap_or(defaults.ratings),
        rank: values.synthetic_rank.unwrap_or(defaults.rank),
        noise_std: values.synthetic_noise.unwrap_or(defaults.noise_std),
        seed: values.synthetic_seed.unwrap_or(defaults.seed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flags_text_and_native_values_set_the_same_key() {
        let mut layer = Layer::default();
        layer.set("lambda", json!("0.1"), Origin::Flag).unwrap();
        assert_eq!(layer.values.lambda, Some(0.1));
        layer.set("lambda", json!(0.2), Origin::Set).unwrap();
        assert_eq!(layer.values.lambda, Some(0.2));
        layer
            .set("weight-decay", json!("1e-5"), Origin::Flag)
            .unwrap();
        assert_eq!(layer.values.weight_decay, Some(1e-5));
        layer.set("lr", json!(".5"), Origin::Flag).unwrap();
        assert_eq!(layer.values.lr, Some(0.5));
        layer.set("hidden", json!("512,256"), Origin::Flag).unwrap();
        assert_eq!(layer.values.hidden, Some(vec![512, 256]));
        layer.set("hidden", json!([64]), Origin::Set).unwrap();
        assert_eq!(layer.values.hidden, Some(vec![64]));
        layer.set("penalty", json!("l2"), Origin::Flag).unwrap();
        assert_eq!(layer.values.penalty, Some(PenaltyKind::Frobenius));
        layer.set("split", json!("u1"), Origin::Flag).unwrap();
        layer.set("nesterov", json!("true"), Origin::Flag).unwrap();
        layer.set("out", json!(123), Origin::Set).unwrap_err();
        layer.set("data", json!("ml-100k"), Origin::Flag).unwrap();
        layer
            .set("seed", json!("18446744073709551615"), Origin::Flag)
            .unwrap();
        assert_eq!(layer.values.seed, Some(u64::MAX));
    }

    #[test]
    fn errors_name_the_key_where_it_was_given() {
        let mut layer = Layer::default();
        let file = Origin::File {
            path: "exp.toml".into(),
            line: Some(3),
        };
        let error = layer.set("lambda", json!("abc"), file.clone()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "exp.toml:3: lambda abc: expected a number"
        );
        let error = layer.set("lamda", json!(1), file).unwrap_err();
        assert_eq!(
            error.to_string(),
            "exp.toml:3: lamda: unknown key (did you mean lambda?)"
        );
        let error = layer
            .set("optimizer", json!("adagrad"), Origin::Flag)
            .unwrap_err();
        assert!(
            error.to_string().starts_with("--optimizer adagrad: ")
                && error.to_string().contains("adam"),
            "{error}"
        );
        let error = layer.set("epochs", json!("-3"), Origin::Flag).unwrap_err();
        assert_eq!(
            error.to_string(),
            "--epochs -3: expected a non-negative integer"
        );
        let error = layer
            .set("batch_size", json!("18446744073709551616"), Origin::Flag)
            .unwrap_err();
        assert!(
            error.to_string().contains("non-negative integer"),
            "{error}"
        );
    }

    #[test]
    fn overlay_keeps_the_latest_value_and_its_origin() {
        let mut base = Layer::default();
        base.set("lambda", json!(0.1), Origin::Set).unwrap();
        base.set("epochs", json!(3), Origin::Set).unwrap();
        let mut top = Layer::default();
        top.set("lambda", json!("0.5"), Origin::Flag).unwrap();
        base.overlay(&top);
        assert_eq!(base.values.lambda, Some(0.5));
        assert_eq!(base.values.epochs, Some(3));
        assert_eq!(base.describe("lambda"), "--lambda 0.5");
        assert_eq!(base.describe("epochs"), "--set epochs 3");
    }

    #[test]
    fn every_key_round_trips_through_json() {
        let values = ConfigValues {
            lambda: Some(0.25),
            split: Some("random:0.8".parse().unwrap()),
            hidden: Some(vec![3, 2]),
            device: Some(DeviceChoice::Cpu),
            ..Default::default()
        };
        let text = serde_json::to_string(&values).unwrap();
        let back: ConfigValues = serde_json::from_str(&text).unwrap();
        assert_eq!(back, values);
        assert_eq!(
            ConfigValues::KEYS.len(),
            std::collections::BTreeSet::from_iter(ConfigValues::KEYS).len()
        );
    }
}

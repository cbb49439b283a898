//! The run document as plotting reads it, and loading regulab JSON documents with
//! one-line errors that name the file.

use anyhow::{anyhow, Result};
use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::fmt;
use std::marker::PhantomData;
use std::path::Path;

use crate::report::{RUN_KIND, SCHEMA_VERSION};
use crate::sweep::SWEEP_KIND;

/// The parts of a run document (schema_version 1) that plotting needs. Other fields
/// are ignored; `null` numbers (a diverged run's losses) become `None`.
#[derive(Debug, Clone, Deserialize)]
pub struct RunDocument {
    pub schema_version: u64,
    pub kind: String,
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    /// Every resolved flag, in the order the document lists them.
    #[serde(default, deserialize_with = "null_as_default")]
    pub config: OrderedMap<Value>,
    #[serde(default)]
    pub dataset: Option<DatasetInfo>,
    /// The headline test metric: `rmse` (lower is better) or `accuracy`.
    #[serde(default)]
    pub metric: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub epochs: Vec<EpochRecord>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub steps: Vec<StepRecord>,
    #[serde(default)]
    pub summary: Option<Summary>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct DatasetInfo {
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EpochRecord {
    pub epoch: u64,
    #[serde(default)]
    pub train: Option<SplitMetrics>,
    #[serde(default)]
    pub test: Option<SplitMetrics>,
    #[serde(default)]
    pub validation: Option<SplitMetrics>,
    /// Parameter name to norm, in the model's parameter order.
    #[serde(default, deserialize_with = "null_as_default")]
    pub weight_norms: OrderedMap<Option<f64>>,
    #[serde(default)]
    pub implied_weight_decay_loss: Option<f64>,
    #[serde(default)]
    pub lr: Option<f64>,
    #[serde(default)]
    pub seconds: Option<f64>,
}

/// Losses and metrics of one split in one epoch; `loss` is the plain test/validation
/// loss, the others as in the training objective.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SplitMetrics {
    #[serde(default)]
    pub loss: Option<f64>,
    #[serde(default)]
    pub base_loss: Option<f64>,
    #[serde(default)]
    pub reg_loss: Option<f64>,
    #[serde(default)]
    pub total_loss: Option<f64>,
    #[serde(default)]
    pub rmse: Option<f64>,
    #[serde(default)]
    pub mae: Option<f64>,
    #[serde(default)]
    pub accuracy: Option<f64>,
}

impl SplitMetrics {
    /// A value by its JSON key; `None` when absent, null or not a known key.
    pub fn get(&self, key: &str) -> Option<f64> {
        match key {
            "loss" => self.loss,
            "base_loss" => self.base_loss,
            "reg_loss" => self.reg_loss,
            "total_loss" => self.total_loss,
            "rmse" => self.rmse,
            "mae" => self.mae,
            "accuracy" => self.accuracy,
            _ => None,
        }
        .filter(|v| v.is_finite())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct StepRecord {
    pub epoch: u64,
    pub step: u64,
    #[serde(default)]
    pub base_loss: Option<f64>,
    #[serde(default)]
    pub reg_loss: Option<f64>,
    #[serde(default)]
    pub total_loss: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Summary {
    #[serde(default)]
    pub best_epoch: Option<u64>,
    #[serde(default)]
    pub total_seconds: Option<f64>,
}

impl RunDocument {
    /// The headline metric, inferred from the command when the document omits it.
    pub fn metric_name(&self) -> &str {
        match (self.metric.as_deref(), self.command.as_deref()) {
            (Some(metric), _) => metric,
            (None, Some("mlp")) => "accuracy",
            _ => "rmse",
        }
    }

    /// (epoch, value) of `split.key` over the epochs that recorded a finite value.
    pub fn series(&self, split: Split, key: &str) -> Vec<(f64, f64)> {
        self.epochs
            .iter()
            .filter_map(|e| {
                let part = match split {
                    Split::Train => e.train.as_ref(),
                    Split::Test => e.test.as_ref(),
                    Split::Validation => e.validation.as_ref(),
                }?;
                Some((e.epoch as f64, part.get(key)?))
            })
            .collect()
    }

    /// Parameter names in the order they first appear.
    pub fn norm_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for epoch in &self.epochs {
            for (name, _) in &epoch.weight_norms.0 {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
        names
    }

    pub fn norm_series(&self, name: &str) -> Vec<(f64, f64)> {
        self.epochs
            .iter()
            .filter_map(|e| {
                let value = e.weight_norms.get(name).copied().flatten()?;
                value.is_finite().then_some((e.epoch as f64, value))
            })
            .collect()
    }

    /// (epoch, value) of the best test metric: the summary's best epoch when it has a
    /// recorded value, else the best recorded value.
    pub fn best_test(&self) -> Option<(f64, f64)> {
        let metric = self.metric_name();
        let test = self.series(Split::Test, metric);
        let from_summary = self
            .summary
            .as_ref()
            .and_then(|s| s.best_epoch)
            .and_then(|best| test.iter().find(|(e, _)| *e == best as f64).copied());
        from_summary.or_else(|| {
            let better = |a: f64, b: f64| {
                if lower_is_better(metric) {
                    a < b
                } else {
                    a > b
                }
            };
            test.iter()
                .copied()
                .reduce(|best, p| if better(p.1, best.1) { p } else { best })
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
    Validation,
}

/// Metrics where smaller is better; the rest (accuracy) are maximized.
pub fn lower_is_better(metric: &str) -> bool {
    matches!(
        metric,
        "rmse" | "mae" | "mse" | "loss" | "base_loss" | "total_loss"
    )
}

/// A JSON object kept in document order (serde_json's own map sorts its keys), so that
/// legends list flags and norms list layers the way the run wrote them.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderedMap<V>(pub Vec<(String, V)>);

impl<V> Default for OrderedMap<V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<V> OrderedMap<V> {
    pub fn get(&self, key: &str) -> Option<&V> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
            type Value = OrderedMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(OrderedMap(entries))
            }
        }
        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Reads a run document, with one-line errors that name the file: unreadable, malformed
/// JSON (with line and column), not a regulab run, or another schema version.
pub fn load_run(path: &Path) -> Result<RunDocument> {
    load_document(path, RUN_KIND)
}

/// Reads a regulab JSON document of the given `kind` (`regulab-run`, `regulab-sweep`)
/// into `T`, checking `kind` and `schema_version` before the shape of the rest.
pub fn load_document<T: DeserializeOwned>(path: &Path, kind: &str) -> Result<T> {
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
    // Parsed again from the text, not from `value`, so that a wrong field type is
    // reported with its line and column.
    serde_json::from_str(&text)
        .map_err(|e| anyhow!("{file}: invalid {} JSON: {e}", describe_kind(kind)))
}

fn describe_kind(kind: &str) -> String {
    match kind.strip_prefix("regulab-") {
        Some(what) => format!("regulab {what}"),
        None => kind.to_string(),
    }
}

/// `Err` with the reason when `value` is not a schema-1 document of `kind`.
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
                detail += "; plot a sweep with scripts/plot_curves.py --sweep";
            }
            return Err(format!("not a {what} JSON ({detail})"));
        }
    }
    match object.get("schema_version") {
        Some(version) if version.as_u64() == Some(u64::from(SCHEMA_VERSION)) => Ok(()),
        found => Err(format!(
            "not a {what} JSON (schema_version {}, this regulab reads {SCHEMA_VERSION})",
            found.map_or("missing".to_string(), Value::to_string)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> RunDocument {
        let value: Value = serde_json::from_str(text).expect("test JSON");
        check_header(&value, RUN_KIND).expect("header");
        serde_json::from_str(text).expect("run document")
    }

    #[test]
    fn nulls_and_unknown_fields_are_tolerated() {
        let d = doc(r#"{
            "schema_version": 1, "kind": "regulab-run", "command": "mf", "status": "diverged",
            "message": "loss became NaN", "extra": {"anything": [1, 2]}, "metric": "rmse",
            "config": {"lambda": 0.1, "dim": 8},
            "epochs": [
              {"epoch": 1, "train": {"base_loss": 1.0, "reg_loss": 0.1, "total_loss": 1.1, "rmse": 1.0, "new_metric": 3},
               "test": {"rmse": 0.9}, "weight_norms": {"user_factors": 2.0, "item_factors": 3.0}},
              {"epoch": 2, "train": {"base_loss": null, "reg_loss": null, "total_loss": null, "rmse": null},
               "test": null, "weight_norms": {"user_factors": null, "item_factors": 3.5}}
            ],
            "steps": null, "summary": {"best_epoch": 1, "best_test_rmse": 0.9}
        }"#);
        assert_eq!(d.series(Split::Train, "base_loss"), vec![(1.0, 1.0)]);
        assert_eq!(d.series(Split::Test, "rmse"), vec![(1.0, 0.9)]);
        assert_eq!(d.norm_series("user_factors"), vec![(1.0, 2.0)]);
        assert_eq!(d.norm_series("item_factors"), vec![(1.0, 3.0), (2.0, 3.5)]);
        assert_eq!(d.norm_names(), vec!["user_factors", "item_factors"]);
        assert_eq!(d.best_test(), Some((1.0, 0.9)));
        assert!(d.steps.is_empty());
        assert_eq!(
            d.config
                .0
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>(),
            vec!["lambda", "dim"],
            "config keeps document order"
        );
    }

    #[test]
    fn best_test_follows_the_metric_direction_without_a_summary() {
        let text = |metric: &str| {
            format!(
                r#"{{"schema_version": 1, "kind": "regulab-run", "command": "mlp", "metric": "{metric}",
                    "epochs": [{{"epoch": 1, "test": {{"{metric}": 0.5}}}},
                               {{"epoch": 2, "test": {{"{metric}": 0.7}}}},
                               {{"epoch": 3, "test": {{"{metric}": 0.6}}}}]}}"#
            )
        };
        assert_eq!(doc(&text("accuracy")).best_test(), Some((2.0, 0.7)));
        assert_eq!(doc(&text("rmse")).best_test(), Some((1.0, 0.5)));
    }

    #[test]
    fn foreign_documents_are_named() {
        let reason =
            |text: &str| check_header(&serde_json::from_str(text).unwrap(), RUN_KIND).unwrap_err();
        assert!(reason(r#"{"foo": 1}"#).contains(r#"no "kind" field"#));
        assert!(reason(r#"[1]"#).contains("an array"));
        assert!(reason(r#"{"kind": "regulab-sweep", "schema_version": 1}"#).contains("--sweep"));
        assert!(
            reason(r#"{"kind": "regulab-run", "schema_version": 2}"#).contains("schema_version 2")
        );
        assert!(reason(r#"{"kind": "regulab-run"}"#).contains("schema_version missing"));
        for r in [reason(r#"{"foo": 1}"#), reason("3")] {
            assert!(r.starts_with("not a regulab run JSON ("), "{r}");
        }
    }
}

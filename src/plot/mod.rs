//! `regulab plot`: a run document's curves drawn to one SVG or PNG image, for users
//! without Python (`scripts/plot_curves.py` draws the same and more with matplotlib).
//!
//! The image is a grid: train base / regularization / total loss on top; below, train
//! vs test metric (one panel per metric when MF and MLP runs are mixed) and weight
//! norms. Several runs are overlaid, each in its own colour, and a legend strip at the
//! bottom names them by the config values that differ between them.
//!
//! Text is laid out and rasterized by plotters' pure-Rust `ab_glyph` backend from a
//! TrueType/OpenType file found on the system at run time (or named by `REGULAB_FONT`),
//! so building regulab needs no fontconfig or freetype development packages.

use anyhow::{anyhow, bail, Result};
use clap::Args;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters_backend::DrawingErrorKind;
use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::report::{RUN_KIND, SCHEMA_VERSION};
use crate::sweep::SWEEP_KIND;

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Labels use a system sans-serif TrueType/OpenType font (DejaVu Sans, Liberation Sans, ...); \
                  set REGULAB_FONT=/path/to/font.ttf to choose one. For more figures, sweeps and \
                  per-step losses: scripts/plot_curves.py --help"
)]
pub struct PlotArgs {
    /// Run JSON files (from `regulab mf` or `regulab mlp`); several are overlaid
    #[arg(required = true, value_name = "RUN.json")]
    pub runs: Vec<PathBuf>,
    /// Output image: FIG.svg or FIG.png
    #[arg(short, long, value_name = "FIG.svg|png")]
    pub output: PathBuf,
    /// Image width in pixels [default: 1350]
    #[arg(long)]
    pub width: Option<u32>,
    /// Image height in pixels [default: 820, more when a long legend needs room]
    #[arg(long)]
    pub height: Option<u32>,
}

// ------------------------------------------------------------------------------ document

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

// ------------------------------------------------------------------------------ legends

/// Config keys that only say where results go or how chatty a run is: they differ
/// between otherwise identical runs and would only clutter legends.
const LEGEND_IGNORED_KEYS: &[&str] = &[
    "output",
    "out",
    "output_dir",
    "out_dir",
    "quiet",
    "progress",
];
const LEGEND_MAX_KEYS: usize = 4;

/// One label per run: the config values that tell the runs apart (`lambda=0.001,
/// optimizer=adam`), else the file name. Mirrors `legend_labels` in plot_curves.py.
pub fn legend_labels(runs: &[(PathBuf, RunDocument)]) -> Vec<String> {
    let file_name = |path: &Path| {
        path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    };
    if runs.len() == 1 {
        return vec![file_name(&runs[0].0)];
    }
    // The command joins the flags: runs of different commands differ in it first.
    let merged: Vec<Vec<(String, Value)>> = runs
        .iter()
        .map(|(_, doc)| {
            let command = doc.command.clone().map_or(Value::Null, Value::String);
            std::iter::once(("command".to_string(), command))
                .chain(doc.config.0.iter().cloned())
                .collect()
        })
        .collect();
    let lookup = |m: &[(String, Value)], key: &str| -> Option<Value> {
        m.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    };
    let mut keys: Vec<String> = Vec::new();
    for m in &merged {
        for (k, _) in m {
            if !keys.contains(k) && !LEGEND_IGNORED_KEYS.contains(&k.as_str()) {
                keys.push(k.clone());
            }
        }
    }
    let commands: Vec<_> = runs.iter().map(|(_, d)| d.command.clone()).collect();
    if commands.iter().any(|c| *c != commands[0]) {
        // Model-specific flags would all "differ"; compare only the shared ones.
        keys.retain(|k| merged.iter().all(|m| lookup(m, k).is_some()));
    }
    let partition = |ks: &[String]| -> usize {
        let mut seen: Vec<String> = merged
            .iter()
            .map(|m| {
                ks.iter()
                    // An absent flag and a null one both mean "not set".
                    .map(|k| lookup(m, k).unwrap_or(Value::Null).to_string())
                    .collect::<Vec<_>>()
                    .join("\u{1}")
            })
            .collect();
        seen.sort();
        seen.dedup();
        seen.len()
    };
    // A key whose value follows from the keys already chosen (an optimizer's default lr)
    // tells the reader nothing new. "Follows" needs evidence: runs that share the chosen
    // values and agree on the key. When the chosen keys already tell every run apart,
    // each further difference (penalty next to lambda) is kept.
    let mut chosen: Vec<String> = Vec::new();
    for key in keys {
        if partition(std::slice::from_ref(&key)) < 2 {
            continue;
        }
        let mut with = chosen.clone();
        with.push(key.clone());
        let groups = partition(&chosen);
        if partition(&with) > groups || groups == runs.len() {
            chosen = with;
        }
    }
    let shown = &chosen[..chosen.len().min(LEGEND_MAX_KEYS)];
    let names: Vec<String> = runs.iter().map(|(p, _)| file_name(p)).collect();
    runs.iter()
        .zip(&merged)
        .zip(&names)
        .map(|(((path, doc), m), name)| {
            let mut label = if shown.is_empty() {
                // The same file name in different folders: the path tells them apart.
                if names.iter().filter(|n| *n == name).count() > 1 {
                    path.display().to_string()
                } else {
                    name.clone()
                }
            } else {
                let parts: Vec<String> = shown
                    .iter()
                    .filter_map(|k| lookup(m, k).map(|v| format!("{k}={}", format_value(&v))))
                    .collect();
                let mut label = parts.join(", ");
                if chosen.len() > shown.len() {
                    label += ", ...";
                }
                label
            };
            if let Some(status) = doc.status.as_deref().filter(|s| *s != "completed") {
                label += &format!(" [{status}]");
            }
            label
        })
        .collect()
}

fn format_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "none".to_string(),
        other => other.to_string(),
    }
}

// ------------------------------------------------------------------------------ figure

/// matplotlib's default colours, so that both plotters colour runs alike.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
const FONT: &str = "sans-serif";
const DEFAULT_WIDTH: u32 = 1350;
const DEFAULT_HEIGHT: u32 = 820;
const TITLE_HEIGHT: u32 = 34;
const LEGEND_ROW_HEIGHT: u32 = 20;
const LINE_WIDTH: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Stroke {
    Solid,
    Dashed,
    Dotted,
    /// Markers only.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Marker {
    None,
    Dot,
    Ring,
    Triangle,
    Square,
    Cross,
    OpenTriangle,
    OpenSquare,
}

/// Markers that tell parameters apart when colour already stands for the run.
const PARAMETER_MARKERS: [Marker; 7] = [
    Marker::Dot,
    Marker::Triangle,
    Marker::Square,
    Marker::Ring,
    Marker::Cross,
    Marker::OpenTriangle,
    Marker::OpenSquare,
];

#[derive(Debug, Clone)]
struct Line {
    points: Vec<(f64, f64)>,
    color: RGBColor,
    stroke: Stroke,
    marker: Marker,
}

/// A legend entry drawn inside a panel.
#[derive(Debug, Clone)]
struct Key {
    label: String,
    color: RGBColor,
    stroke: Stroke,
    marker: Marker,
}

#[derive(Debug, Clone, Default)]
struct Panel {
    title: String,
    y_label: String,
    lines: Vec<Line>,
    /// Best test epochs: a vertical guide and a large dot.
    best: Vec<(f64, f64, RGBColor)>,
    keys: Vec<Key>,
    log_y: bool,
}

impl Panel {
    fn points(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.lines
            .iter()
            .flat_map(|l| l.points.iter().copied())
            .chain(self.best.iter().map(|&(x, y, _)| (x, y)))
    }
}

/// Everything the image shows, computed from the runs before any drawing.
struct Figure {
    title: String,
    loss_panels: Vec<Panel>,
    lower_panels: Vec<Panel>,
    /// The legend strip under the grid: run colours, then the line-style key.
    legend: Vec<Key>,
    epochs: Range<f64>,
}

fn build_figure(runs: &[(PathBuf, RunDocument)]) -> Figure {
    let labels = legend_labels(runs);
    let colors: Vec<RGBColor> = (0..runs.len())
        .map(|i| PALETTE[i % PALETTE.len()])
        .collect();
    let single = runs.len() == 1;

    let mut loss_panels = Vec::new();
    for (key, name) in [
        ("base_loss", "base loss"),
        ("reg_loss", "regularization loss"),
        ("total_loss", "total loss"),
    ] {
        let mut panel = Panel {
            title: name.to_string(),
            y_label: format!("train {name}"),
            ..Panel::default()
        };
        for ((_, doc), &color) in runs.iter().zip(&colors) {
            panel.lines.push(Line {
                points: doc.series(Split::Train, key),
                color,
                stroke: Stroke::Solid,
                marker: Marker::Dot,
            });
            if key == "reg_loss" {
                // With decoupled or optimizer weight decay the penalty is not in the loss;
                // the implied loss shows what it would have added.
                let implied: Vec<(f64, f64)> = doc
                    .epochs
                    .iter()
                    .filter_map(|e| Some((e.epoch as f64, e.implied_weight_decay_loss?)))
                    .filter(|(_, v)| v.is_finite())
                    .collect();
                if implied.iter().any(|&(_, v)| v != 0.0) {
                    panel.lines.push(Line {
                        points: implied,
                        color,
                        stroke: Stroke::Dotted,
                        marker: Marker::None,
                    });
                    if panel.keys.is_empty() {
                        panel.keys.push(Key {
                            label: "implied weight decay loss".to_string(),
                            color: BLACK,
                            stroke: Stroke::Dotted,
                            marker: Marker::None,
                        });
                    }
                }
            }
        }
        loss_panels.push(panel);
    }

    let mut metrics: Vec<&str> = Vec::new();
    for (_, doc) in runs {
        if !metrics.contains(&doc.metric_name()) {
            metrics.push(doc.metric_name());
        }
    }
    let mut lower_panels = Vec::new();
    let mut any_validation = false;
    for metric in &metrics {
        let direction = if lower_is_better(metric) {
            "lower"
        } else {
            "higher"
        };
        let mut panel = Panel {
            title: format!("train vs test {metric}"),
            y_label: format!("{metric} ({direction} is better)"),
            ..Panel::default()
        };
        for ((_, doc), &color) in runs.iter().zip(&colors) {
            if doc.metric_name() != *metric {
                continue;
            }
            panel.lines.push(Line {
                points: doc.series(Split::Train, metric),
                color,
                stroke: Stroke::Dashed,
                marker: Marker::None,
            });
            let validation = doc.series(Split::Validation, metric);
            if !validation.is_empty() {
                any_validation = true;
                panel.lines.push(Line {
                    points: validation,
                    color,
                    stroke: Stroke::Dotted,
                    marker: Marker::None,
                });
            }
            panel.lines.push(Line {
                points: doc.series(Split::Test, metric),
                color,
                stroke: Stroke::Solid,
                marker: Marker::Dot,
            });
            if let Some((epoch, value)) = doc.best_test() {
                panel.best.push((epoch, value, color));
                if single {
                    panel.keys.push(Key {
                        label: format!("best test {} (epoch {epoch})", significant(value, 4)),
                        color,
                        stroke: Stroke::None,
                        marker: Marker::Ring,
                    });
                }
            }
        }
        lower_panels.push(panel);
    }

    let mut norms = Panel {
        title: "weight norms".to_string(),
        y_label: "weight norm".to_string(),
        ..Panel::default()
    };
    let mut names: Vec<String> = Vec::new();
    for (_, doc) in runs {
        for name in doc.norm_names() {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    for (i, name) in names.iter().enumerate() {
        // One run: a colour per parameter. Several: colour is the run and the marker the
        // parameter, numbered within the run that has it, so MF and MLP runs side by side
        // each use the first markers; the key then takes the colour of that run.
        let owners: Vec<usize> = runs
            .iter()
            .enumerate()
            .filter(|(_, (_, doc))| !doc.norm_series(name).is_empty())
            .map(|(r, _)| r)
            .collect();
        let local = owners
            .first()
            .and_then(|&r| runs[r].1.norm_names().iter().position(|n| n == name))
            .unwrap_or(i);
        let marker = if single {
            Marker::Dot
        } else {
            PARAMETER_MARKERS[local % PARAMETER_MARKERS.len()]
        };
        for &r in &owners {
            norms.lines.push(Line {
                points: runs[r].1.norm_series(name),
                color: if single {
                    PALETTE[i % PALETTE.len()]
                } else {
                    colors[r]
                },
                stroke: Stroke::Solid,
                marker,
            });
        }
        let (color, stroke) = match owners.as_slice() {
            _ if single => (PALETTE[i % PALETTE.len()], Stroke::Solid),
            [only] => (colors[*only], Stroke::None),
            _ => (BLACK, Stroke::None),
        };
        norms.keys.push(Key {
            label: name.clone(),
            color,
            stroke,
            marker,
        });
    }
    let values: Vec<f64> = norms.points().map(|(_, y)| y).collect();
    let smallest = values.iter().copied().fold(f64::INFINITY, f64::min);
    let largest = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // Bias norms near 1 next to weight norms near 50 would lie flat on a linear axis.
    norms.log_y = smallest > 0.0 && largest / smallest > 20.0;
    if norms.log_y {
        norms.y_label = "weight norm (log scale)".to_string();
    }
    lower_panels.push(norms);

    let mut legend = Vec::new();
    if !single {
        for (label, &color) in labels.iter().zip(&colors) {
            legend.push(Key {
                label: label.clone(),
                color,
                stroke: Stroke::Solid,
                marker: Marker::Dot,
            });
        }
    }
    let mut style = vec![
        ("train", Stroke::Dashed, Marker::None),
        ("test", Stroke::Solid, Marker::Dot),
    ];
    if any_validation {
        style.push(("validation", Stroke::Dotted, Marker::None));
    }
    style.push(("best test epoch", Stroke::None, Marker::Ring));
    let key_color = if single { colors[0] } else { BLACK };
    legend.extend(style.into_iter().map(|(label, stroke, marker)| Key {
        label: label.to_string(),
        color: key_color,
        stroke,
        marker,
    }));

    let all_epochs: Vec<f64> = runs
        .iter()
        .flat_map(|(_, d)| d.epochs.iter().map(|e| e.epoch as f64))
        .collect();
    let first = all_epochs.iter().copied().fold(f64::INFINITY, f64::min);
    let last = all_epochs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let epochs = if first.is_finite() {
        (first - 0.3)..(last + 0.3)
    } else {
        0.0..1.0
    };

    let title = if single {
        let (path, doc) = &runs[0];
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let mut parts: Vec<String> = Vec::new();
        parts.extend(doc.command.clone());
        parts.extend(doc.dataset.as_ref().and_then(|d| d.name.clone()));
        parts.push(name);
        let mut title = parts.join(" | ");
        if let Some(status) = doc.status.as_deref().filter(|s| *s != "completed") {
            title += &format!(" ({status}");
            if let Some(message) = &doc.message {
                title += &format!(": {}", one_line(message));
            }
            title += ")";
        }
        title
    } else {
        format!("{} runs", runs.len())
    };

    Figure {
        title,
        loss_panels,
        lower_panels,
        legend,
        epochs,
    }
}

/// Multi-line text (an error message from a failed run) squeezed onto one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `value` with `digits` significant digits, without trailing zeros.
fn significant(value: f64, digits: i32) -> String {
    if value == 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = (digits - 1 - magnitude).max(0) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

// ------------------------------------------------------------------------------ drawing

type DrawResult<DB> =
    std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn draw_figure<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    figure: &Figure,
    rows: u32,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let (width, height) = root.dim_in_pixel();
    let (title_area, rest) = root.split_vertically(TITLE_HEIGHT);
    title_area.draw(&Text::new(
        figure.title.clone(),
        (width as i32 / 2, TITLE_HEIGHT as i32 / 2),
        TextStyle::from((FONT, 18).into_font()).pos(Pos::new(HPos::Center, VPos::Center)),
    ))?;
    let legend_height = rows * LEGEND_ROW_HEIGHT + 12;
    let grid_height = height.saturating_sub(TITLE_HEIGHT + legend_height);
    let (grid, legend_area) = rest.split_vertically(grid_height);
    let (upper, lower) = grid.split_vertically(grid_height / 2);
    for (area, panel) in upper
        .split_evenly((1, figure.loss_panels.len()))
        .iter()
        .zip(&figure.loss_panels)
    {
        draw_panel(area, panel, figure.epochs.clone())?;
    }
    for (area, panel) in lower
        .split_evenly((1, figure.lower_panels.len()))
        .iter()
        .zip(&figure.lower_panels)
    {
        draw_panel(area, panel, figure.epochs.clone())?;
    }
    draw_legend(&legend_area, &figure.legend, width)?;
    root.present()
}

fn y_range(panel: &Panel) -> Range<f64> {
    let (lo, hi) = panel
        .points()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (_, y)| {
            (lo.min(y), hi.max(y))
        });
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    if panel.log_y {
        return (lo / 1.15)..(hi * 1.15);
    }
    let pad = if hi > lo {
        (hi - lo) * 0.06
    } else {
        (hi.abs() * 0.05).max(1e-3)
    };
    (lo - pad)..(hi + pad)
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    epochs: Range<f64>,
) -> DrawResult<DB> {
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(&panel.title, (FONT, 15))
        .margin(10)
        .x_label_area_size(38)
        .y_label_area_size(62);
    let y = y_range(panel);
    if panel.log_y {
        let chart = builder.build_cartesian_2d(epochs, LogAxis::new(y))?;
        fill_panel(chart, panel)
    } else {
        let chart = builder.build_cartesian_2d(epochs, y)?;
        fill_panel(chart, panel)
    }
}

/// A log-scale axis with ticks at 1, 2, 5 (or 1 to 9) times powers of ten. plotters'
/// own log scale labels only powers of ten, so a panel spanning 4 to 60 shows one label.
#[derive(Debug, Clone)]
struct LogAxis {
    /// log10 of the ends.
    lo: f64,
    hi: f64,
}

impl LogAxis {
    fn new(range: Range<f64>) -> Self {
        let lo = range.start.max(f64::MIN_POSITIVE).log10();
        let hi = range.end.max(f64::MIN_POSITIVE).log10();
        Self {
            lo,
            hi: if hi > lo { hi } else { lo + 1.0 },
        }
    }

    fn ticks(&self, multipliers: &[f64]) -> Vec<f64> {
        let mut ticks = Vec::new();
        for exponent in (self.lo.floor() as i32)..=(self.hi.ceil() as i32) {
            for m in multipliers {
                let value = m * 10f64.powi(exponent);
                let log = value.log10();
                if log >= self.lo - 1e-9 && log <= self.hi + 1e-9 {
                    ticks.push(value);
                }
            }
        }
        ticks
    }
}

impl Ranged for LogAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let t = (value.log10() - self.lo) / (self.hi - self.lo);
        limit.0 + (t * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        let most = hint.max_num_points();
        let sets: [&[f64]; 3] = [
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
            &[1.0, 2.0, 5.0],
            &[1.0],
        ];
        sets.iter()
            .map(|set| self.ticks(set))
            .find(|ticks| ticks.len() <= most)
            .unwrap_or_default()
    }

    fn range(&self) -> Range<f64> {
        10f64.powf(self.lo)..10f64.powf(self.hi)
    }
}

fn fill_panel<DB, Y>(
    mut chart: ChartContext<'_, DB, Cartesian2d<RangedCoordf64, Y>>,
    panel: &Panel,
) -> DrawResult<DB>
where
    DB: DrawingBackend,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(&panel.y_label)
        .x_labels(12)
        .y_labels(8)
        // Epochs are whole numbers; fractional ticks stay unlabelled.
        .x_label_formatter(&|x| {
            if (x - x.round()).abs() < 1e-9 {
                format!("{}", x.round())
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| significant(*y, 3))
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBAColor(0, 0, 0, 0.12))
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 13))
        .draw()?;
    let y_span = chart.y_range();
    for &(epoch, _, color) in &panel.best {
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(epoch, y_span.start), (epoch, y_span.end)],
            color.mix(0.35).stroke_width(1),
        )))?;
    }
    for line in &panel.lines {
        let style = line.color.stroke_width(LINE_WIDTH);
        let points = line.points.iter().copied();
        match line.stroke {
            Stroke::Solid => {
                chart.draw_series(LineSeries::new(points, style))?;
            }
            Stroke::Dashed => {
                chart.draw_series(DashedLineSeries::new(points, 8, 5, style))?;
            }
            Stroke::Dotted => {
                chart.draw_series(DashedLineSeries::new(points, 2, 4, style))?;
            }
            Stroke::None => {}
        }
    }
    // Markers, the best-epoch dots and the key are drawn in pixels on the plotting area.
    let area = chart.plotting_area().strip_coord_spec();
    let (base_x, base_y) = area.get_base_pixel();
    let to_pixel = |point: &(f64, f64)| {
        let (x, y) = chart.backend_coord(point);
        (x - base_x, y - base_y)
    };
    for line in &panel.lines {
        for point in &line.points {
            draw_marker(&area, to_pixel(point), line.marker, line.color, 3)?;
        }
    }
    for &(epoch, value, color) in &panel.best {
        let centre = to_pixel(&(epoch, value));
        area.draw(&Circle::new(centre, 7, color.filled()))?;
        area.draw(&Circle::new(centre, 7, BLACK.stroke_width(1)))?;
    }
    if panel.lines.iter().all(|l| l.points.is_empty()) {
        let (w, h) = area.dim_in_pixel();
        let grey = TextStyle::from((FONT, 14).into_font())
            .color(&RGBColor(120, 120, 120))
            .pos(Pos::new(HPos::Center, VPos::Center));
        area.draw(&Text::new("no data", (w as i32 / 2, h as i32 / 2), grey))?;
    }
    if !panel.keys.is_empty() {
        // Points along the lines too, not only the vertices: a line crossing a corner
        // between two epochs counts against it.
        let mut pixels: Vec<(i32, i32)> = panel.points().map(|p| to_pixel(&p)).collect();
        for line in panel.lines.iter().filter(|l| l.stroke != Stroke::None) {
            for pair in line.points.windows(2) {
                let (a, b) = (to_pixel(&pair[0]), to_pixel(&pair[1]));
                pixels.extend((1..8).map(|k| {
                    let t = f64::from(k) / 8.0;
                    let along = |u: i32, v: i32| u + (f64::from(v - u) * t).round() as i32;
                    (along(a.0, b.0), along(a.1, b.1))
                }));
            }
        }
        draw_key_box(&area, &panel.keys, &pixels)?;
    }
    Ok(())
}

fn draw_marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    at: (i32, i32),
    marker: Marker,
    color: RGBColor,
    size: i32,
) -> DrawResult<DB> {
    let (x, y) = at;
    match marker {
        Marker::None => Ok(()),
        Marker::Dot => area.draw(&Circle::new(at, size, color.filled())),
        Marker::Ring => area.draw(&Circle::new(at, size + 1, color.stroke_width(2))),
        Marker::Triangle => area.draw(&TriangleMarker::new(at, size + 1, color.filled())),
        Marker::Square => area.draw(&Rectangle::new(
            [(x - size, y - size), (x + size, y + size)],
            color.filled(),
        )),
        Marker::Cross => area.draw(&Cross::new(at, size + 1, color.stroke_width(2))),
        Marker::OpenTriangle => {
            area.draw(&TriangleMarker::new(at, size + 2, color.stroke_width(2)))
        }
        Marker::OpenSquare => area.draw(&Rectangle::new(
            [(x - size, y - size), (x + size, y + size)],
            color.stroke_width(2),
        )),
    }
}

/// A key entry's line and marker, 20 px wide, starting at `(x, y)`.
fn draw_glyph<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (x, y): (i32, i32),
    key: &Key,
) -> DrawResult<DB> {
    let style = key.color.stroke_width(2);
    let path = vec![(x, y), (x + 20, y)];
    match key.stroke {
        Stroke::Solid => area.draw(&PathElement::new(path, style))?,
        Stroke::Dashed => area.draw(&DashedPathElement::new(path, 6, 3, style))?,
        Stroke::Dotted => area.draw(&DashedPathElement::new(path, 2, 3, style))?,
        Stroke::None => {}
    }
    draw_marker(area, (x + 10, y), key.marker, key.color, 3)
}

/// A panel's key, in whichever corner of the plotting area covers the fewest points.
fn draw_key_box<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    keys: &[Key],
    points: &[(i32, i32)],
) -> DrawResult<DB> {
    let font = TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    let mut text_width = 0;
    for key in keys {
        let (w, _) = area.estimate_text_size(&key.label, &font)?;
        text_width = text_width.max(w as i32);
    }
    let row = 17;
    let (box_w, box_h) = (text_width + 42, row * keys.len() as i32 + 8);
    let (w, h) = area.dim_in_pixel();
    let (w, h) = (w as i32, h as i32);
    let margin = 6;
    let corners = [
        (w - box_w - margin, margin),
        (margin, margin),
        (w - box_w - margin, h - box_h - margin),
        (margin, h - box_h - margin),
    ];
    let covered = |&(x0, y0): &(i32, i32)| {
        points
            .iter()
            .filter(|&&(x, y)| {
                x >= x0 - 4 && x <= x0 + box_w + 4 && y >= y0 - 4 && y <= y0 + box_h + 4
            })
            .count()
    };
    let (x0, y0) = corners
        .iter()
        .copied()
        .min_by_key(covered)
        .unwrap_or(corners[0]);
    area.draw(&Rectangle::new(
        [(x0, y0), (x0 + box_w, y0 + box_h)],
        WHITE.mix(0.9).filled(),
    ))?;
    area.draw(&Rectangle::new(
        [(x0, y0), (x0 + box_w, y0 + box_h)],
        RGBColor(200, 200, 200).stroke_width(1),
    ))?;
    for (i, key) in keys.iter().enumerate() {
        let y = y0 + 4 + row * i as i32 + row / 2;
        draw_glyph(area, (x0 + 8, y), key)?;
        area.draw(&Text::new(key.label.clone(), (x0 + 34, y), font.clone()))?;
    }
    Ok(())
}

/// Approximate width in pixels of legend text at 12 px: enough to lay entries out in
/// rows before any backend exists (the image height depends on the row count).
fn legend_entry_width(key: &Key) -> u32 {
    28 + 7 * key.label.chars().count() as u32 + 24
}

/// The legend entries of each row for an image `width` pixels wide.
fn legend_rows(keys: &[Key], width: u32) -> Vec<Vec<&Key>> {
    let usable = width.saturating_sub(40).max(200);
    let mut rows: Vec<Vec<&Key>> = Vec::new();
    let mut used = 0;
    for key in keys {
        let w = legend_entry_width(key);
        match rows.last_mut() {
            Some(row) if used + w <= usable => {
                row.push(key);
                used += w;
            }
            _ => {
                rows.push(vec![key]);
                used = w;
            }
        }
    }
    rows
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    keys: &[Key],
    width: u32,
) -> DrawResult<DB> {
    let font = TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (r, row) in legend_rows(keys, width).iter().enumerate() {
        let row_width: u32 = row.iter().map(|k| legend_entry_width(k)).sum();
        let mut x = (width.saturating_sub(row_width) / 2) as i32;
        let y = 6 + (r as i32) * LEGEND_ROW_HEIGHT as i32 + LEGEND_ROW_HEIGHT as i32 / 2;
        for key in row {
            draw_glyph(area, (x, y), key)?;
            area.draw(&Text::new(key.label.clone(), (x + 28, y), font.clone()))?;
            x += legend_entry_width(key) as i32;
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------ command

/// `regulab plot`: loads every run, then draws them into one image whose format
/// follows the output's extension.
pub fn run_plot(args: &PlotArgs) -> Result<()> {
    let output = &args.output;
    let format = output_format(output)?;
    let mut runs = Vec::new();
    let mut empty = Vec::new();
    for path in &args.runs {
        let doc = load_run(path)?;
        if doc.epochs.is_empty() {
            let mut status = doc.status.clone().unwrap_or_else(|| "unknown".to_string());
            if let Some(message) = &doc.message {
                status += &format!(": {}", one_line(message));
            }
            empty.push(format!(
                "{}: no epochs recorded (status {status})",
                path.display()
            ));
        } else {
            runs.push((path.clone(), doc));
        }
    }
    if runs.is_empty() {
        bail!("{}; nothing to plot", empty.join("; "));
    }
    for line in &empty {
        eprintln!("regulab: warning: {line}; nothing drawn for it");
    }
    let figure = build_figure(&runs);
    let width = args.width.unwrap_or(DEFAULT_WIDTH).max(400);
    let rows = legend_rows(&figure.legend, width).len() as u32;
    let legend_height = rows * LEGEND_ROW_HEIGHT + 12;
    let height = args
        .height
        .unwrap_or(DEFAULT_HEIGHT + legend_height.saturating_sub(2 * LEGEND_ROW_HEIGHT + 12))
        .max(TITLE_HEIGHT + legend_height + 200);
    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| anyhow!("{}: cannot create the folder: {e}", parent.display()))?;
    }
    ensure_font()?;
    // Fail here with the OS's reason: the backends report a write failure only at the
    // end, wrapped in their own debug formatting.
    std::fs::File::create(output)
        .map_err(|e| anyhow!("{}: cannot write: {e}", output.display()))?;
    let drawn = match format {
        ImageFormat::Svg => {
            let root = SVGBackend::new(output, (width, height)).into_drawing_area();
            draw_figure(root, &figure, rows).map_err(describe_drawing_error)
        }
        ImageFormat::Png => {
            let root = BitMapBackend::new(output, (width, height)).into_drawing_area();
            draw_figure(root, &figure, rows).map_err(describe_drawing_error)
        }
    };
    drawn.map_err(|e| {
        // The backend has already written whatever it drew; a half image is no result.
        let _ = std::fs::remove_file(output);
        anyhow!("{}: {e}", output.display())
    })
}

/// Environment variable naming a .ttf or .otf file for the labels.
pub const FONT_ENV: &str = "REGULAB_FONT";

/// Registers a system font as plotters' "sans-serif", once per process.
fn ensure_font() -> Result<()> {
    static REGISTERED: std::sync::OnceLock<std::result::Result<PathBuf, String>> =
        std::sync::OnceLock::new();
    REGISTERED
        .get_or_init(register_system_font)
        .as_ref()
        .map(|_| ())
        .map_err(|e| anyhow!("{e}"))
}

fn register_system_font() -> std::result::Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(FONT_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return register_font_file(&path)
            .map(|()| path.clone())
            .map_err(|e| format!("{FONT_ENV}={}: {e}", path.display()));
    }
    for path in font_candidates() {
        if register_font_file(&path).is_ok() {
            return Ok(path);
        }
    }
    Err(format!(
        "no TrueType or OpenType font found for the labels; install one (e.g. `apt-get install \
         fonts-dejavu-core`) or set {FONT_ENV}=/path/to/font.ttf"
    ))
}

fn register_font_file(path: &Path) -> std::result::Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    // plotters keeps fonts for the life of the process and wants 'static bytes; one
    // font is read once per process, so leaking it is the simple, bounded way.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font(FONT, FontStyle::Normal, bytes)
        .map_err(|_| "not a TrueType or OpenType font".to_string())
}

/// Font files to try, best first: what fontconfig picks for sans-serif, well-known
/// sans fonts, then any regular-looking .ttf/.otf under the usual font folders.
fn font_candidates() -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(out) = std::process::Command::new("fc-match")
        .args(["--format=%{file}", "sans-serif:style=Regular"])
        .output()
    {
        let file = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && is_font_file(Path::new(&file)) {
            candidates.push(PathBuf::from(file));
        }
    }
    for known in [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
        "/System/Library/Fonts/Supplemental/Arial.ttf",
        "/Library/Fonts/Arial.ttf",
        "C:\\Windows\\Fonts\\arial.ttf",
    ] {
        candidates.push(PathBuf::from(known));
    }
    let mut roots = vec![
        PathBuf::from("/usr/share/fonts"),
        PathBuf::from("/usr/local/share/fonts"),
    ];
    if let Some(home) = std::env::var_os("HOME") {
        roots.push(Path::new(&home).join(".local/share/fonts"));
        roots.push(Path::new(&home).join(".fonts"));
    }
    let mut found = Vec::new();
    for root in roots {
        collect_font_files(&root, 4, &mut found);
    }
    // Upright sans faces first; bold, italic and monospace ones only as a last resort.
    found.sort_by_key(|path| {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let odd = [
            "bold",
            "italic",
            "oblique",
            "mono",
            "light",
            "condensed",
            "serif",
        ]
        .iter()
        .filter(|w| name.contains(*w) && !(**w == "serif" && name.contains("sans")))
        .count();
        (odd, !name.contains("sans"), name)
    });
    candidates.extend(found);
    candidates
}

fn is_font_file(path: &Path) -> bool {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .is_some_and(|e| e == "ttf" || e == "otf")
}

fn collect_font_files(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if depth > 0 {
                collect_font_files(&path, depth - 1, found);
            }
        } else if is_font_file(&path) {
            found.push(path);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ImageFormat {
    Svg,
    Png,
}

fn output_format(output: &Path) -> Result<ImageFormat> {
    let extension = output
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match extension.as_deref() {
        Some("svg") => Ok(ImageFormat::Svg),
        Some("png") => Ok(ImageFormat::Png),
        Some(other) => bail!(
            "{}: unknown image format .{other}; use an output ending in .svg or .png",
            output.display()
        ),
        None => bail!(
            "{}: no file extension; use an output ending in .svg or .png",
            output.display()
        ),
    }
}

fn describe_drawing_error<E: std::error::Error + Send + Sync>(
    error: DrawingAreaErrorKind<E>,
) -> String {
    match error {
        DrawingAreaErrorKind::BackendError(DrawingErrorKind::FontError(e)) => {
            format!("cannot draw the labels with the font ({e}); set {FONT_ENV}=/path/to/font.ttf")
        }
        DrawingAreaErrorKind::BackendError(DrawingErrorKind::DrawingError(e)) => {
            format!("cannot write the image: {e}")
        }
        other => format!("drawing failed: {other}"),
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

    fn run(command: &str, config: &str, status: &str) -> RunDocument {
        doc(&format!(
            r#"{{"schema_version": 1, "kind": "regulab-run", "command": "{command}",
                "status": "{status}", "config": {config}, "epochs": []}}"#
        ))
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

    #[test]
    fn legends_name_the_differing_config_values() {
        let runs = vec![
            (
                PathBuf::from("a.json"),
                run(
                    "mf",
                    r#"{"optimizer": "adam", "lr": 0.01, "lambda": 0.001, "seed": 0, "output": "a"}"#,
                    "completed",
                ),
            ),
            (
                PathBuf::from("b.json"),
                run(
                    "mf",
                    r#"{"optimizer": "sgd", "lr": 0.05, "lambda": 0.001, "seed": 0, "output": "b"}"#,
                    "completed",
                ),
            ),
            (
                PathBuf::from("c.json"),
                run(
                    "mf",
                    r#"{"optimizer": "adam", "lr": 0.01, "lambda": 0.1, "seed": 0, "output": "c"}"#,
                    "diverged",
                ),
            ),
        ];
        // lr follows from the optimizer, output is ignored, seed does not differ.
        assert_eq!(
            legend_labels(&runs),
            vec![
                "optimizer=adam, lambda=0.001",
                "optimizer=sgd, lambda=0.001",
                "optimizer=adam, lambda=0.1 [diverged]",
            ]
        );
    }

    #[test]
    fn legends_keep_independent_differences() {
        let runs = vec![
            (
                PathBuf::from("a.json"),
                run(
                    "mf",
                    r#"{"lambda": 0.05, "penalty": "batch-l2", "weight_decay": 0.0}"#,
                    "completed",
                ),
            ),
            (
                PathBuf::from("b.json"),
                run(
                    "mf",
                    r#"{"lambda": 10.0, "penalty": "frobenius", "weight_decay": 0.0}"#,
                    "completed",
                ),
            ),
            (
                PathBuf::from("c.json"),
                run(
                    "mf",
                    r#"{"lambda": 0.0, "penalty": "none", "weight_decay": 0.0001}"#,
                    "completed",
                ),
            ),
        ];
        assert_eq!(
            legend_labels(&runs),
            vec![
                "lambda=0.05, penalty=batch-l2, weight_decay=0.0",
                "lambda=10.0, penalty=frobenius, weight_decay=0.0",
                "lambda=0.0, penalty=none, weight_decay=0.0001",
            ]
        );
    }

    #[test]
    fn legends_fall_back_to_file_names_and_compare_shared_flags_across_commands() {
        let same = r#"{"lambda": 0.01}"#;
        let runs = vec![
            (PathBuf::from("x/run.json"), run("mf", same, "completed")),
            (PathBuf::from("y/other.json"), run("mf", same, "completed")),
        ];
        assert_eq!(legend_labels(&runs), vec!["run.json", "other.json"]);
        let runs = vec![
            (PathBuf::from("x/run.json"), run("mf", same, "completed")),
            (PathBuf::from("y/run.json"), run("mf", same, "completed")),
        ];
        assert_eq!(legend_labels(&runs), vec!["x/run.json", "y/run.json"]);
        let runs = vec![
            (
                PathBuf::from("mf.json"),
                run("mf", r#"{"dim": 16, "lambda": 0.01}"#, "completed"),
            ),
            (
                PathBuf::from("mlp.json"),
                run("mlp", r#"{"hidden": [256], "lambda": 0.01}"#, "completed"),
            ),
        ];
        assert_eq!(legend_labels(&runs), vec!["command=mf", "command=mlp"]);
    }

    #[test]
    fn numbers_are_shortened_for_labels() {
        assert_eq!(significant(0.914_836, 4), "0.9148");
        assert_eq!(significant(12.0, 3), "12");
        assert_eq!(significant(0.000_123_45, 3), "0.000123");
        assert_eq!(significant(1234.6, 3), "1235");
        assert_eq!(significant(0.0, 3), "0");
        assert_eq!(one_line("a\n  b\tc"), "a b c");
    }

    #[test]
    fn log_axis_ticks_are_round_numbers() {
        let axis = LogAxis::new(4.0..75.0);
        assert_eq!(axis.key_points(5usize), vec![5.0, 10.0, 20.0, 50.0]);
        assert_eq!(axis.key_points(2usize), vec![10.0]);
        assert_eq!(axis.map(&4.0, (0, 100)), 0);
        assert_eq!(axis.map(&75.0, (0, 100)), 100);
    }

    #[test]
    fn output_format_comes_from_the_extension() {
        assert_eq!(
            output_format(Path::new("a/fig.svg")).unwrap(),
            ImageFormat::Svg
        );
        assert_eq!(
            output_format(Path::new("fig.PNG")).unwrap(),
            ImageFormat::Png
        );
        assert!(output_format(Path::new("fig.jpg"))
            .unwrap_err()
            .to_string()
            .contains(".jpg"));
        assert!(output_format(Path::new("fig")).is_err());
    }
}

//! Plain-language findings about a recorded run: what its curves show, with the run's own
//! numbers (epochs and values) as evidence, and what to do about it.
//!
//! Everything here reads a [`RunDocument`] only, so `regulab explain` works on any recorded
//! run (including older ones), and the same findings are stored in the document's
//! `diagnostics` when a run ends. The thresholds are named constants below, each with the
//! reason for its value; the runs in README.md's "Reproducing the lecture" set them.

use crate::config::Task;
use crate::optim::OptimizerKind;
use crate::regularization::{PenaltyKind, PenaltyScale};
use crate::schema::{EpochRecord, MetricInfo, RunDocument, RunStatus, SplitRecord};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Fewest whole epochs for a trend (a best epoch followed by a worse one, a rise after a
/// fall): with two points every change looks like a trend.
pub const MIN_TREND_EPOCHS: usize = 3;

/// A lower-is-better held-out metric (RMSE) at least this fraction above its best is
/// reported as a note. 1 % is about the epoch-to-epoch wobble of test RMSE on MovieLens u1
/// once it has settled (0.9270 to 0.9278 with batch-l2, λ = 0.1).
pub const OVERFIT_NOTE_RELATIVE: f64 = 0.01;
/// ... and at least this fraction above its best is a warning: unregularized MF on u1 is
/// 13.7 % above its best after 12 epochs, a well-regularized run stays within 1 %.
pub const OVERFIT_WARN_RELATIVE: f64 = 0.05;
/// A higher-is-better held-out metric (accuracy, a fraction) this far below its best is a
/// note: half a point is the sampling noise of accuracy on a 2,000-image test set.
pub const OVERFIT_NOTE_POINTS: f64 = 0.005;
/// ... and this far below is a warning: two points is more than the MLP's epoch-to-epoch
/// wobble on Fashion-MNIST (up to 0.6 points).
pub const OVERFIT_WARN_POINTS: f64 = 0.02;

/// The regularization loss counts as rising when its last epoch is at least this factor
/// above its lowest epoch: smaller changes are the noise of epoch means.
pub const REG_RISE_FACTOR: f64 = 1.2;

/// A penalty below this share of the training loss (last epoch) barely changes the
/// gradient: λ is too weak to matter, or the weights it acts on have collapsed.
pub const SHARE_TINY: f64 = 0.01;
/// A penalty above this share (last epoch) outweighs the data term: the optimum it is
/// heading for is mostly "small weights", not "fit the data".
pub const SHARE_DOMINANT: f64 = 0.5;

/// The penalized weights' norm growing by at least this factor from the first to the last
/// epoch is reported: MF on u1 grows 3× in 10 epochs with or without a penalty, a run whose
/// penalty balances the data early grows 1.5×.
pub const NORM_GROWTH_FACTOR: f64 = 2.0;
/// Growth below this fraction per epoch (last epoch) counts as levelled off.
pub const NORM_SETTLED_PER_EPOCH: f64 = 0.005;
/// A weight tensor whose norm ends at or below this fraction of its size at initialization
/// (or of its largest recorded norm) has collapsed: MF's user factors under batch-l2 with
/// λ = 1 end at 6 % of their initial norm, the MLP under the slide's `torch.norm` penalty at
/// 0.2 %; trained weights otherwise grow.
pub const NORM_COLLAPSE_FRACTION: f64 = 0.1;

/// An epoch whose mean training loss is this factor above the lowest earlier epoch is a
/// spike (instability); a falling loss never comes near it.
pub const LOSS_JUMP_FACTOR: f64 = 1.5;
/// SGD's L2 step multiplies a weight by 1 − lr·λ: beyond 2 the factor is below −1 and the
/// weights grow in magnitude every step whatever the data.
pub const SGD_DECAY_STEP_LIMIT: f64 = 2.0;

/// Series in the evidence show at most this many epochs (the first, the last and evenly
/// spaced ones between), so a 100-epoch run stays readable.
pub const MAX_SERIES_POINTS: usize = 6;

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

/// Every finding for a run, warnings first.
pub fn explain(doc: &RunDocument) -> Vec<Finding> {
    let run = Run::new(doc);
    let mut findings: Vec<Finding> = [
        divergence(&run),
        overfitting(&run),
        penalty_share(&run),
        weight_norms(&run),
        reg_loss_rises(&run),
        eval_divisor(&run),
        weight_decay_vs_penalty(&run),
    ]
    .into_iter()
    .flatten()
    .collect();
    findings.sort_by_key(|f| f.severity);
    findings
}

/// The findings for the console: title, evidence and advice of each, wrapped.
pub fn render(findings: &[Finding]) -> String {
    if findings.is_empty() {
        return "no findings: the curves crossed none of the thresholds (overfitting, penalty share, \
                weight norms, divergence)\n"
            .into();
    }
    let mut out = String::new();
    for (index, finding) in findings.iter().enumerate() {
        if index > 0 {
            out.push('\n');
        }
        let title = format!(
            "{}: {} [{}]",
            severity_word(finding.severity),
            finding.title,
            finding.kind.name()
        );
        out += &wrap(&title, "", WIDTH);
        out += &wrap(&format!("evidence: {}", finding.evidence), "    ", WIDTH);
        out += &wrap(&format!("what to do: {}", finding.advice), "    ", WIDTH);
    }
    out
}

/// One line per finding (severity and title), for the end of a run.
pub fn render_titles(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| format!("  {}: {}\n", severity_word(f.severity), f.title))
        .collect()
}

fn severity_word(severity: Severity) -> &'static str {
    match severity {
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

/// Console width the evidence is wrapped to.
const WIDTH: usize = 100;

/// Greedy word wrap of each line of `text`, indented by `indent`, continuation lines by two
/// more spaces.
fn wrap(text: &str, indent: &str, width: usize) -> String {
    let mut out = String::new();
    for paragraph in text.lines() {
        let mut line = String::from(indent);
        let mut empty = true;
        for word in paragraph.split_whitespace() {
            if !empty && line.chars().count() + 1 + word.chars().count() > width {
                out += line.trim_end();
                out.push('\n');
                line = format!("{indent}  ");
                empty = true;
            }
            if !empty {
                line.push(' ');
            }
            line += word;
            empty = false;
        }
        out += line.trim_end();
        out.push('\n');
    }
    out
}

/// A number with 4 significant digits, without exponent between 1e-3 and 1e5: how every
/// value appears in the evidence (tests format expected values the same way).
pub fn format_number(value: f64) -> String {
    if !value.is_finite() {
        return if value.is_nan() {
            "NaN".into()
        } else {
            "inf".into()
        };
    }
    if value == 0.0 {
        return "0".into();
    }
    let magnitude = value.abs();
    if !(1e-3..1e5).contains(&magnitude) {
        return format!("{value:.3e}");
    }
    let decimals = (3 - magnitude.log10().floor() as i32).max(0) as usize;
    format!("{value:.decimals$}")
}

fn num(value: f64) -> String {
    format_number(value)
}

/// A share as a percentage: one decimal, two below 0.1 %.
fn pct(share: f64) -> String {
    if share.abs() < 0.001 && share != 0.0 {
        format!("{:.2}%", share * 100.0)
    } else {
        format!("{:.1}%", share * 100.0)
    }
}

/// A count with thousands separators (10,000).
fn count(value: f64) -> String {
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if value < 0.0 {
        format!("-{out}")
    } else {
        out
    }
}

/// `epoch N value` pairs, at most [`MAX_SERIES_POINTS`] of them.
fn series(points: &[(usize, f64)], show: impl Fn(f64) -> String) -> String {
    sample(points)
        .iter()
        .map(|(epoch, value)| format!("{} (epoch {epoch})", show(*value)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn sample<T: Copy>(points: &[T]) -> Vec<T> {
    if points.len() <= MAX_SERIES_POINTS {
        return points.to_vec();
    }
    let last = points.len() - 1;
    let mut indices: Vec<usize> = (0..MAX_SERIES_POINTS)
        .map(|k| (k * last + (MAX_SERIES_POINTS - 1) / 2) / (MAX_SERIES_POINTS - 1))
        .collect();
    indices.dedup();
    indices.into_iter().map(|i| points[i]).collect()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Part {
    Train,
    Validation,
    Test,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Train => "training",
            Part::Validation => "validation",
            Part::Test => "test",
        }
    }
}

/// A run document with what every finding needs: its whole epochs and lookups.
struct Run<'a> {
    doc: &'a RunDocument,
    /// Epochs not cut short by a signal (a partial epoch's means cover fewer steps).
    epochs: Vec<&'a EpochRecord>,
    metric: &'a MetricInfo,
}

impl<'a> Run<'a> {
    fn new(doc: &'a RunDocument) -> Self {
        Run {
            doc,
            epochs: doc.epochs.iter().filter(|e| !e.partial).collect(),
            metric: &doc.metric,
        }
    }

    fn split<'e>(&self, epoch: &'e EpochRecord, part: Part) -> Option<&'e SplitRecord> {
        match part {
            Part::Train => Some(&epoch.train),
            Part::Validation => epoch.validation.as_ref(),
            Part::Test => epoch.test.as_ref(),
        }
    }

    /// (epoch, value) of `part.key` over the whole epochs with a finite value.
    fn curve(&self, part: Part, key: &str) -> Vec<(usize, f64)> {
        self.epochs
            .iter()
            .filter_map(|e| {
                let value = *self.split(e, part)?.get(key)?;
                value.is_finite().then_some((e.epoch, value))
            })
            .collect()
    }

    fn at(&self, part: Part, key: &str, epoch: usize) -> Option<f64> {
        let record = self.epochs.iter().find(|e| e.epoch == epoch)?;
        let value = *self.split(record, part)?.get(key)?;
        value.is_finite().then_some(value)
    }

    /// The split that judges generalization: validation when the run has one, else test.
    fn held_out(&self) -> Part {
        if self.epochs.iter().any(|e| e.validation.is_some()) {
            Part::Validation
        } else {
            Part::Test
        }
    }

    /// "RMSE" or "accuracy".
    fn metric_label(&self) -> String {
        match self.metric.name.as_str() {
            "rmse" => "RMSE".into(),
            "mae" => "MAE".into(),
            other => other.into(),
        }
    }

    fn penalty_active(&self) -> bool {
        let r = &self.doc.regularization;
        r.penalty != PenaltyKind::None && r.lambda != 0.0
    }

    fn weight_decay(&self) -> f64 {
        self.doc.regularization.weight_decay
    }

    fn optimizer(&self) -> OptimizerKind {
        self.doc.config.optimizer.kind
    }

    fn lr(&self) -> f64 {
        self.doc.config.optimizer.lr
    }

    fn is_bias(name: &str) -> bool {
        name.ends_with("bias")
    }

    /// The tensors the penalty acts on (the weights when there is no penalty).
    fn penalized(&self, name: &str) -> bool {
        !Self::is_bias(name) || (self.penalty_active() && self.doc.regularization.penalize_bias)
    }

    fn penalized_names(&self) -> &'static str {
        if self.penalty_active() && self.doc.regularization.penalize_bias {
            "weights and biases"
        } else {
            "weights"
        }
    }

    /// Σ‖W‖² over the penalized tensors of an epoch (None when a norm is missing or not finite).
    fn squared_norm(&self, epoch: &EpochRecord) -> Option<f64> {
        let mut total = 0.0;
        let mut any = false;
        for (name, norm) in &epoch.weight_norms {
            if self.penalized(name) {
                if !norm.is_finite() {
                    return None;
                }
                total += norm * norm;
                any = true;
            }
        }
        any.then_some(total)
    }

    /// (epoch, √Σ‖W‖²) of the penalized tensors.
    fn norm_curve(&self) -> Vec<(usize, f64)> {
        self.epochs
            .iter()
            .filter_map(|e| Some((e.epoch, self.squared_norm(e)?.sqrt())))
            .collect()
    }

    fn dataset_number(&self, path: &[&str]) -> Option<f64> {
        let mut value = &self.doc.dataset;
        for key in path {
            value = value.get(key)?;
        }
        value.as_f64().filter(|v| v.is_finite() && *v > 0.0)
    }

    /// Training examples: `split.train_ratings` (MF) or `train_used` (MLP).
    fn train_size(&self) -> Option<f64> {
        self.dataset_number(&["train_used"])
            .or_else(|| self.dataset_number(&["split", "train_ratings"]))
    }

    /// Test examples: `test_used` (MLP) or `split.test_ratings` (MF).
    fn test_size(&self) -> Option<f64> {
        self.dataset_number(&["test_used"])
            .or_else(|| self.dataset_number(&["split", "test_ratings"]))
    }

    fn example_word(&self) -> &'static str {
        match self.doc.config.task {
            Task::Mf(_) => "ratings",
            Task::Mlp(_) => "images",
        }
    }

    /// The expected norm of a weight tensor at initialization, with how it follows from the
    /// configuration: MF factors are N(0, init_std²) (norm init_std·√(rows·dim)); MLP
    /// weights are uniform in ±1/√fan_in as torch.nn.Linear (norm √(fan_out/3)).
    fn initial_norm(&self, name: &str) -> Option<(f64, String)> {
        match &self.doc.config.task {
            Task::Mf(task) => {
                let rows = match name {
                    "user_factors" => self.dataset_number(&["users"])?,
                    "item_factors" => self.dataset_number(&["items"])?,
                    _ => return None,
                };
                let norm = task.init_std * (rows * task.dim as f64).sqrt();
                (norm > 0.0).then(|| {
                    (
                        norm,
                        format!(
                            "init_std {} × √({} × {})",
                            num(task.init_std),
                            count(rows),
                            task.dim
                        ),
                    )
                })
            }
            Task::Mlp(task) => {
                let layer: usize = name
                    .strip_prefix("l_layers.")?
                    .strip_suffix(".weight")?
                    .parse()
                    .ok()?;
                let classes = self.dataset_number(&["classes"])?;
                let fan_out = match task.hidden.get(layer) {
                    Some(&size) => size as f64,
                    None if layer == task.hidden.len() => classes,
                    None => return None,
                };
                Some((
                    (fan_out / 3.0).sqrt(),
                    format!("√(fan_out / 3) = √({} / 3)", count(fan_out)),
                ))
            }
        }
    }

    /// The regularization as a phrase: "batch-l2, λ = 0.1" / "no penalty and no weight decay".
    fn regularization_phrase(&self) -> String {
        let r = &self.doc.regularization;
        let mut parts = Vec::new();
        if self.penalty_active() {
            parts.push(format!("penalty {}, λ = {}", r.penalty, num(r.lambda)));
        }
        if r.weight_decay != 0.0 {
            parts.push(format!(
                "weight decay {} ({})",
                num(r.weight_decay),
                r.weight_decay_mode
            ));
        }
        if parts.is_empty() {
            "no penalty and no weight decay".into()
        } else {
            parts.join(" and ")
        }
    }

    /// "test RMSE 0.9273 at epoch 10, best 0.9270 at epoch 6", for advice that points at the
    /// held-out curve.
    fn held_out_phrase(&self) -> Option<String> {
        let part = self.held_out();
        let curve = self.curve(part, &self.metric.name);
        let last = *curve.last()?;
        let best = best_of(&curve, self.metric)?;
        let best = if best.0 == last.0 {
            "its best".to_string()
        } else {
            format!("best {} at epoch {}", num(best.1), best.0)
        };
        Some(format!(
            "{} {} {} at epoch {}, {best}",
            part.name(),
            self.metric_label(),
            num(last.1),
            last.0,
        ))
    }

    /// Weight tensors that ended at or below [`NORM_COLLAPSE_FRACTION`] of their initial size
    /// (or of their largest recorded norm).
    fn collapsed(&self) -> Vec<Collapsed> {
        let Some(last) = self.epochs.last() else {
            return Vec::new();
        };
        let mut collapsed = Vec::new();
        for (name, &norm) in &last.weight_norms {
            if Self::is_bias(name) || !norm.is_finite() {
                continue;
            }
            let reference = self.initial_norm(name).or_else(|| {
                let largest = self
                    .epochs
                    .iter()
                    .filter_map(|e| e.weight_norms.get(name).copied())
                    .filter(|v| v.is_finite())
                    .fold(0.0, f64::max);
                let first = self.epochs.first()?.epoch;
                (largest > 0.0).then(|| {
                    (
                        largest,
                        format!("its largest recorded norm (from epoch {first} on)"),
                    )
                })
            });
            if let Some((reference, how)) = reference {
                if norm <= NORM_COLLAPSE_FRACTION * reference {
                    collapsed.push(Collapsed {
                        name: name.clone(),
                        epoch: last.epoch,
                        norm,
                        reference,
                        how,
                    });
                }
            }
        }
        collapsed
    }

    /// `regulab rerun RUN.json --set key=value`, naming the run's own file when known.
    fn rerun(&self, setting: &str) -> String {
        let file = self
            .doc
            .config
            .output
            .out
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "RUN.json".into());
        format!("`regulab rerun {file} --set {setting}`")
    }
}

/// A weight tensor that ended near zero.
struct Collapsed {
    name: String,
    /// The last epoch, where `norm` was recorded.
    epoch: usize,
    norm: f64,
    /// Its expected norm at initialization, or its largest recorded one.
    reference: f64,
    /// How `reference` was found.
    how: String,
}

/// The best (epoch, value) by the metric's direction; the earliest on ties.
fn best_of(curve: &[(usize, f64)], metric: &MetricInfo) -> Option<(usize, f64)> {
    curve.iter().copied().reduce(|best, next| {
        if metric.is_better(next.1, best.1) {
            next
        } else {
            best
        }
    })
}

fn numbers(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs
        .iter()
        .filter(|(_, v)| v.is_finite())
        .map(|(k, v)| (k.to_string(), *v))
        .collect()
}

/// The optimizer as its papers and torch.optim spell it.
fn optimizer_name(kind: OptimizerKind) -> &'static str {
    match kind {
        OptimizerKind::Sgd => "SGD",
        OptimizerKind::Adam => "Adam",
        OptimizerKind::Adamw => "AdamW",
        OptimizerKind::Rmsprop => "RMSprop",
    }
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The held-out metric turns worse after its best epoch while the training metric keeps
/// improving.
fn overfitting(run: &Run) -> Option<Finding> {
    let metric = run.metric;
    let part = run.held_out();
    let held = run.curve(part, &metric.name);
    if held.len() < MIN_TREND_EPOCHS {
        return None;
    }
    let best = best_of(&held, metric)?;
    let last = *held.last()?;
    if last.0 == best.0 {
        return None;
    }
    let worse_by = (last.1 - best.1).abs();
    let relative = worse_by / best.1.abs().max(f64::MIN_POSITIVE);
    let (severity, amount) = if metric.higher_is_better {
        let severity = if worse_by >= OVERFIT_WARN_POINTS {
            Severity::Warning
        } else if worse_by >= OVERFIT_NOTE_POINTS {
            Severity::Info
        } else {
            return None;
        };
        (severity, format!("{:.1} points", worse_by * 100.0))
    } else {
        let severity = if relative >= OVERFIT_WARN_RELATIVE {
            Severity::Warning
        } else if relative >= OVERFIT_NOTE_RELATIVE {
            Severity::Info
        } else {
            return None;
        };
        (severity, format!("+{}", pct(relative)))
    };
    // Training must keep improving over the same epochs; otherwise the run is unstable or
    // stalled, not overfitting. The training metric when recorded, else the base loss.
    let use_metric = run.at(Part::Train, &metric.name, last.0).is_some();
    let train_key = if use_metric {
        metric.name.as_str()
    } else {
        "base_loss"
    };
    let train_at_best = run.at(Part::Train, train_key, best.0)?;
    let train_at_last = run.at(Part::Train, train_key, last.0)?;
    let improved = if use_metric {
        metric.is_better(train_at_last, train_at_best)
    } else {
        train_at_last < train_at_best
    };
    if !improved {
        return None;
    }
    let label = run.metric_label();
    let held_name = part.name();
    let (turned, kept) = if metric.higher_is_better {
        ("fell", "rising")
    } else {
        ("turned up", "falling")
    };
    let train_label = if use_metric {
        format!("training {label}")
    } else {
        "the training loss".into()
    };
    let slightly = if severity == Severity::Info {
        " slightly"
    } else {
        ""
    };
    let title = format!(
        "{} {label} {turned}{slightly} after epoch {} while {train_label} kept {kept}: {} → {} by epoch {} ({amount})",
        capitalize(held_name),
        best.0,
        num(best.1),
        num(last.1),
        last.0,
    );
    let after: Vec<(usize, f64)> = held.iter().copied().filter(|p| p.0 > best.0).collect();
    let mut evidence = format!(
        "{} {label} was best at epoch {} ({}), then: {}; at epoch {} it is {} worse than the best ({}). \
         {} over the same epochs: {} → {}. Regularization: {}.",
        capitalize(held_name),
        best.0,
        num(best.1),
        series(&after, num),
        last.0,
        num(worse_by),
        amount,
        capitalize(&train_label),
        num(train_at_best),
        num(train_at_last),
        run.regularization_phrase(),
    );
    let norms = run.norm_curve();
    let norm_at = |epoch| norms.iter().find(|p| p.0 == epoch).map(|p| p.1);
    if let (Some(a), Some(b)) = (norm_at(best.0), norm_at(last.0)) {
        evidence += &format!(
            " The {}' norm √Σ‖W‖² went {} → {} over those epochs.",
            run.penalized_names(),
            num(a),
            num(b)
        );
    }
    let mut advice = if run.penalty_active() || run.weight_decay() != 0.0 {
        let (name, key, value) = if run.penalty_active() {
            ("λ", "lambda", run.doc.regularization.lambda)
        } else {
            ("weight decay", "weight_decay", run.weight_decay())
        };
        format!(
            "Regularize more strongly ({name} = {} now: try 3 to 10 times more, e.g. {}) until the \
             {held_name} curve stays flat, or stop near epoch {}.",
            num(value),
            run.rerun(&format!("{key}={}", num(value * 3.0))),
            best.0
        )
    } else {
        let example = match run.doc.config.task {
            Task::Mf(_) => "--penalty batch-l2 --lambda 0.1, or --penalty l2",
            Task::Mlp(_) => "--penalty l2 --lambda 5, or --weight-decay 1e-4",
        };
        format!(
            "Add regularization ({example}) and compare the {held_name} curve, or stop near epoch {}.",
            best.0
        )
    };
    advice = if severity == Severity::Info {
        format!(
            "A small change (under {}): if it keeps growing over more epochs, the model is fitting \
             noise in the training data after epoch {}. {advice}",
            if metric.higher_is_better {
                format!("{:.0} points", OVERFIT_WARN_POINTS * 100.0)
            } else {
                pct(OVERFIT_WARN_RELATIVE)
            },
            best.0
        )
    } else {
        format!(
            "The model fits noise in the training data after epoch {}. {advice}",
            best.0
        )
    };
    if part == Part::Test {
        advice += &format!(
            " The test set picked epoch {}, so {} is optimistic, not a result",
            best.0,
            num(best.1)
        );
        advice += match run.doc.config.task {
            Task::Mlp(_) => ": choose the epoch on a validation split (--val-split 0.1).",
            Task::Mf(_) => ".",
        };
    }
    Some(Finding {
        kind: FindingKind::Overfitting,
        severity,
        title,
        evidence,
        advice,
        numbers: numbers(&[
            ("best_epoch", best.0 as f64),
            ("best_value", best.1),
            ("last_epoch", last.0 as f64),
            ("last_value", last.1),
            ("worse_by", worse_by),
            ("relative_worse_by", relative),
            ("train_at_best", train_at_best),
            ("train_at_last", train_at_last),
        ]),
    })
}

/// (epoch, base, reg, total) of the training epoch means, where all three are finite.
fn train_losses(run: &Run) -> Vec<(usize, f64, f64, f64)> {
    run.epochs
        .iter()
        .filter_map(|e| {
            let get = |key: &str| e.train.get(key).copied().filter(|v| v.is_finite());
            Some((
                e.epoch,
                get("base_loss")?,
                get("reg_loss")?,
                get("total_loss")?,
            ))
        })
        .collect()
}

/// The penalty's share of the training loss per epoch.
fn shares(run: &Run) -> Vec<(usize, f64)> {
    train_losses(run)
        .into_iter()
        .filter(|&(_, _, _, total)| total > 0.0)
        .map(|(epoch, _, reg, total)| (epoch, reg / total))
        .collect()
}

/// The regularization loss rises while the total falls: the trade-off, with the share.
fn reg_loss_rises(run: &Run) -> Option<Finding> {
    if !run.penalty_active() {
        return None;
    }
    let losses = train_losses(run);
    if losses.len() < 2 {
        return None;
    }
    let low = losses
        .iter()
        .copied()
        .reduce(|low, next| if next.2 < low.2 { next } else { low })?;
    let last = *losses.last()?;
    let first = losses[0];
    if last.0 == low.0 || !(last.2 >= REG_RISE_FACTOR * low.2 && last.2 > low.2) {
        return None;
    }
    if last.3 >= low.3 {
        return None;
    }
    // A negligible penalty rising is noise, not a trade-off (the penalty-share finding says so).
    if last.3 > 0.0 && last.2 / last.3 < SHARE_TINY {
        return None;
    }
    let factor = last.2 / low.2.max(f64::MIN_POSITIVE);
    let (base_change, reg_change, total_change) = (last.1 - low.1, last.2 - low.2, last.3 - low.3);
    let title = format!(
        "The regularization loss rose {:.1}× ({} → {}, epochs {}–{}) while the total loss fell ({} → {}): the expected trade-off",
        factor,
        num(low.2),
        num(last.2),
        low.0,
        last.0,
        num(low.3),
        num(last.3)
    );
    let mut evidence = String::from("Training epoch means (what the gradient saw): ");
    if low.0 != first.0 {
        evidence += &format!(
            "the regularization loss first fell from {} (epoch {}) to {} (epoch {}), then rose to {} (epoch {}); ",
            num(first.2),
            first.0,
            num(low.2),
            low.0,
            num(last.2),
            last.0
        );
    } else {
        evidence += &format!(
            "the regularization loss rose from {} (epoch {}) to {} (epoch {}); ",
            num(low.2),
            low.0,
            num(last.2),
            last.0
        );
    }
    evidence += &format!(
        "over the same epochs the base loss went {} → {} ({}{}) and the total {} → {} ({}{}), \
         so the base fell more than the penalty rose (+{}).",
        num(low.1),
        num(last.1),
        sign(base_change),
        num(base_change.abs()),
        num(low.3),
        num(last.3),
        sign(total_change),
        num(total_change.abs()),
        num(reg_change),
    );
    let share = shares(run);
    evidence += &format!(
        " The penalty's share of the total: {}.",
        series(&share, pct)
    );
    let norms = run.norm_curve();
    let norm_at = |epoch| norms.iter().find(|p| p.0 == epoch).map(|p| p.1);
    if let (Some(a), Some(b)) = (norm_at(low.0), norm_at(last.0)) {
        evidence += &format!(
            " The penalized {}' norm √Σ‖W‖² went {} → {}: the penalty grows with its square.",
            run.penalized_names(),
            num(a),
            num(b)
        );
    }
    let mut advice = String::from(
        "Nothing to fix on this evidence alone. Training minimizes base + penalty, not each term: \
         at first shrinking the random initial weights is the cheapest way down; then fitting the \
         data needs larger weights, and a step that adds a little penalty but removes more base \
         loss still lowers the total.",
    );
    if run.doc.regularization.penalty == PenaltyKind::BatchL2 {
        advice += " With batch-l2 both terms are divided by |B|, so λ weighs one rating's penalty \
                   against that rating's squared error, and a user or item is penalized once per \
                   rating it has in the batch.";
    }
    advice += &format!(
        " A rising penalty does not say whether λ is too big or too small: the held-out curve does ({}); \
         so does the share: under {} λ barely acts, over {} it dominates.",
        run.held_out_phrase()
            .unwrap_or_else(|| "this run has no held-out split".into()),
        pct(SHARE_TINY),
        pct(SHARE_DOMINANT)
    );
    let last_share = share.last().map_or(f64::NAN, |s| s.1);
    Some(Finding {
        kind: FindingKind::RegLossRisesTotalFalls,
        severity: Severity::Info,
        title,
        evidence,
        advice,
        numbers: numbers(&[
            ("low_epoch", low.0 as f64),
            ("reg_at_low", low.2),
            ("base_at_low", low.1),
            ("total_at_low", low.3),
            ("last_epoch", last.0 as f64),
            ("reg_at_last", last.2),
            ("base_at_last", last.1),
            ("total_at_last", last.3),
            ("reg_factor", factor),
            ("share_at_last", last_share),
        ]),
    })
}

/// A multiplicative factor; near 1 as "1 − x" so that its size stays visible.
fn factor(value: f64) -> String {
    if (1.0 - value).abs() < 0.01 && value != 1.0 {
        format!("1 − {}", num(1.0 - value))
    } else {
        num(value)
    }
}

fn sign(change: f64) -> &'static str {
    if change < 0.0 {
        "−"
    } else {
        "+"
    }
}

/// A penalty that is a tiny or dominant part of the training loss.
fn penalty_share(run: &Run) -> Option<Finding> {
    if !run.penalty_active() {
        return None;
    }
    let share = shares(run);
    let last = *share.last()?;
    let largest = share
        .iter()
        .copied()
        .reduce(|a, b| if b.1 > a.1 { b } else { a })?;
    let lambda = run.doc.regularization.lambda;
    let shown = series(&share, pct);
    let held = run
        .held_out_phrase()
        .map(|p| format!(" Held out: {p}."))
        .unwrap_or_default();
    let (title, evidence, advice) = if last.1 > SHARE_DOMINANT {
        (
            format!(
                "The penalty is {} of the training loss at epoch {}: λ = {} is likely too strong",
                pct(last.1),
                last.0,
                num(lambda)
            ),
            format!("The penalty's share of the training loss: {shown}.{held}"),
            format!(
                "A penalty above {} of the loss outweighs the data: the optimum it heads for is mostly \
                 small weights. Lower λ 3 to 10 times (e.g. {}) and keep the value with the best \
                 held-out {}.",
                pct(SHARE_DOMINANT),
                run.rerun(&format!("lambda={}", num(lambda / 3.0))),
                run.metric_label()
            ),
        )
    } else if last.1 < SHARE_TINY {
        let collapsed = run.collapsed();
        if collapsed.is_empty() {
            (
                format!(
                    "The penalty is only {} of the training loss at epoch {}: λ = {} is too weak to matter",
                    pct(last.1),
                    last.0,
                    num(lambda)
                ),
                format!("The penalty's share of the training loss: {shown}.{held}"),
                format!(
                    "A penalty under {} of the loss barely changes the gradient, so the run is \
                     close to unregularized. Raise λ 3 to 10 times (e.g. {}) if the held-out curve \
                     turns up, or drop the penalty.",
                    pct(SHARE_TINY),
                    run.rerun(&format!("lambda={}", num(lambda * 10.0)))
                ),
            )
        } else {
            let names: Vec<&str> = collapsed.iter().map(|c| c.name.as_str()).collect();
            (
                format!(
                    "The penalty is only {} of the training loss at epoch {} because the weights it acts on collapsed: λ = {} is too strong",
                    pct(last.1),
                    last.0,
                    num(lambda)
                ),
                format!(
                    "The penalty's share of the training loss: {shown}; largest {} at epoch {}. \
                     Collapsed: {} (see the weight-norms finding).{held}",
                    pct(largest.1),
                    largest.0,
                    names.join(", ")
                ),
                format!(
                    "A tiny penalty on collapsed weights means λ won: the weights were pulled to \
                     about zero and the model lost what they carried. Lower λ 3 to 10 times \
                     (e.g. {}).",
                    run.rerun(&format!("lambda={}", num(lambda / 10.0)))
                ),
            )
        }
    } else {
        return None;
    };
    Some(Finding {
        kind: FindingKind::PenaltyShare,
        severity: Severity::Warning,
        title,
        evidence,
        advice,
        numbers: numbers(&[
            ("last_epoch", last.0 as f64),
            ("share_at_last", last.1),
            ("largest_share", largest.1),
            ("largest_share_epoch", largest.0 as f64),
        ]),
    })
}

/// Weight tensors that collapsed (warning), or the penalized weights' norm growing (note).
fn weight_norms(run: &Run) -> Option<Finding> {
    let collapsed = run.collapsed();
    if !collapsed.is_empty() {
        let parts: Vec<String> = collapsed
            .iter()
            .map(|c| {
                let first = run
                    .epochs
                    .first()
                    .and_then(|e| Some((e.epoch, *e.weight_norms.get(&c.name)?)))
                    .filter(|(e, _)| *e != c.epoch)
                    .map(|(e, v)| format!(", {} after epoch {e}", num(v)))
                    .unwrap_or_default();
                format!(
                    "{}: {} at the start ({}){first}, {} at epoch {} ({} of the start)",
                    c.name,
                    num(c.reference),
                    c.how,
                    num(c.norm),
                    c.epoch,
                    pct(c.norm / c.reference)
                )
            })
            .collect();
        let cause = if run.penalty_active() {
            format!(
                "The penalty ({}) pulls these weights to zero harder than the data pushes them out.",
                run.regularization_phrase()
            )
        } else if run.weight_decay() != 0.0 {
            format!(
                "Weight decay ({}) pulls these weights to zero harder than the data pushes them out.",
                run.regularization_phrase()
            )
        } else {
            "Nothing in the objective pulls weights to zero here, so the data gradient itself \
             shrank them (dead units or a saturated output)."
                .into()
        };
        let what_is_left = match run.doc.config.task {
            Task::Mf(_) => "what is left predicts from the biases (μ + b_u + b_i) alone",
            Task::Mlp(_) => "what is left cannot separate the classes",
        };
        let mut evidence = format!("{}. {cause}", parts.join("; "));
        if let Some(held) = run.held_out_phrase() {
            evidence += &format!(" Held out: {held}.");
        }
        let advice = if run.penalty_active() || run.weight_decay() != 0.0 {
            let setting = if run.penalty_active() {
                format!("lambda={}", num(run.doc.regularization.lambda / 10.0))
            } else {
                format!("weight_decay={}", num(run.weight_decay() / 10.0))
            };
            let mut advice = format!(
                "Collapsed weights mean the regularization is too strong; {what_is_left}. \
                 Lower it 3 to 10 times (e.g. {}).",
                run.rerun(&setting)
            );
            if run.doc.regularization.penalty == PenaltyKind::Norm
                && run.doc.regularization.scale == PenaltyScale::None
            {
                advice += " The unsquared norm penalty pulls every matrix with a unit-size \
                           gradient whatever its size; with no divisor λ must be small (about 0.01), \
                           or use the squared form (--penalty l2).";
            }
            advice
        } else {
            format!("{what_is_left}; lower --lr or check the data and the activation.")
        };
        return Some(Finding {
            kind: FindingKind::WeightNorms,
            severity: Severity::Warning,
            title: format!(
                "Weights collapsed toward zero: {}",
                collapsed
                    .iter()
                    .map(|c| format!(
                        "{} at {} of its initial size",
                        c.name,
                        pct(c.norm / c.reference)
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            evidence,
            advice,
            numbers: collapsed
                .iter()
                .flat_map(|c| {
                    [
                        (format!("{}.last", c.name), c.norm),
                        (format!("{}.initial", c.name), c.reference),
                    ]
                })
                .collect(),
        });
    }
    let norms = run.norm_curve();
    if norms.len() < 2 {
        return None;
    }
    let (first, last) = (norms[0], *norms.last()?);
    let factor = last.1 / first.1.max(f64::MIN_POSITIVE);
    if factor < NORM_GROWTH_FACTOR {
        return None;
    }
    let before_last = norms[norms.len() - 2];
    let last_growth = last.1 / before_last.1.max(f64::MIN_POSITIVE) - 1.0;
    let settled = last_growth < NORM_SETTLED_PER_EPOCH;
    let names = run.penalized_names();
    let title = format!(
        "The {names}' norm grew {:.1}× ({} → {}, epochs {}–{}){}",
        factor,
        num(first.1),
        num(last.1),
        first.0,
        last.0,
        if settled {
            " and has levelled off"
        } else {
            " and is still growing"
        }
    );
    let per_tensor: Vec<String> = run
        .epochs
        .first()
        .zip(run.epochs.last())
        .map(|(a, b)| {
            b.weight_norms
                .iter()
                .filter(|(name, v)| run.penalized(name) && v.is_finite())
                .filter_map(|(name, v)| {
                    let start = a.weight_norms.get(name).filter(|s| s.is_finite())?;
                    Some(format!("{name} {} → {}", num(*start), num(*v)))
                })
                .collect()
        })
        .unwrap_or_default();
    let evidence = format!(
        "√Σ‖W‖² over the {names}: {}; {} in the last epoch. Per tensor: {}. Regularization: {}.",
        series(&norms, num),
        if last_growth >= 0.0 {
            format!("+{}", pct(last_growth))
        } else {
            pct(last_growth)
        },
        per_tensor.join(", "),
        run.regularization_phrase()
    );
    let held = run
        .held_out_phrase()
        .map(|p| format!(" ({p})"))
        .unwrap_or_default();
    let advice = if run.penalty_active() || run.weight_decay() != 0.0 {
        format!(
            "Growing weights under regularization are how the model fits; they level off where \
             the pull toward zero balances the data's. Judge its strength by the held-out curve{held}: \
             if it turns up while the norm still grows, regularize more."
        )
    } else {
        format!(
            "Nothing holds the weights back. Growing weights with a held-out curve that turns up{held} \
             are the signature of overfitting: add a penalty or weight decay."
        )
    };
    Some(Finding {
        kind: FindingKind::WeightNorms,
        severity: Severity::Info,
        title,
        evidence,
        advice,
        numbers: numbers(&[
            ("first_epoch", first.0 as f64),
            ("norm_at_first", first.1),
            ("last_epoch", last.0 as f64),
            ("norm_at_last", last.1),
            ("growth_factor", factor),
            ("last_epoch_growth", last_growth),
        ]),
    })
}

/// A diverged run (non-finite loss) or a spike in the training loss, with its likely cause.
fn divergence(run: &Run) -> Option<Finding> {
    let doc = run.doc;
    let all: Vec<(usize, f64)> = doc
        .epochs
        .iter()
        .filter_map(|e| Some((e.epoch, *e.train.get("total_loss")?)))
        .collect();
    let blew_up = all.iter().find(|(_, v)| !v.is_finite()).map(|p| p.0);
    let finite: Vec<(usize, f64)> = all.iter().copied().filter(|p| p.1.is_finite()).collect();
    let diverged = doc.status == RunStatus::Diverged || blew_up.is_some();
    // A spike: an epoch whose loss is far above the lowest earlier one.
    let spike = finite
        .iter()
        .enumerate()
        .skip(1)
        .find_map(|(i, &(epoch, v))| {
            let low = finite[..i]
                .iter()
                .copied()
                .reduce(|a, b| if b.1 < a.1 { b } else { a })?;
            (v > LOSS_JUMP_FACTOR * low.1 && low.1 > 0.0).then_some((epoch, v, low))
        });
    if !diverged && spike.is_none() {
        return None;
    }
    let optimizer = run.optimizer();
    let opt_name = optimizer_name(optimizer);
    let lr = run.lr();
    let r = &doc.regularization;
    // SGD's L2 step: w ← (1 − lr·c)·w with c = λ/divisor (the squared-norm penalty) plus
    // coupled weight decay; Adam-type optimizers normalize the step, so only SGD is checked.
    let l2_coefficient = {
        let penalty = match (r.penalty, r.divisor) {
            (PenaltyKind::Frobenius, Some(divisor)) if run.penalty_active() && divisor > 0.0 => {
                r.lambda / divisor
            }
            _ => 0.0,
        };
        penalty + r.weight_decay
    };
    let decay_step = lr * l2_coefficient;
    let penalty_cause = optimizer == OptimizerKind::Sgd && decay_step > SGD_DECAY_STEP_LIMIT;
    let mut evidence = String::new();
    if diverged {
        if let Some(message) = &doc.message {
            evidence += &format!("The run stopped: {message}. ");
        }
    }
    if !finite.is_empty() {
        evidence += &format!("Mean training loss per epoch: {}", series(&finite, num));
        match blew_up {
            Some(epoch) => evidence += &format!(", then not finite in epoch {epoch}. "),
            None => evidence += ". ",
        }
    }
    if let Some((epoch, value, low)) = spike {
        evidence += &format!(
            "Epoch {epoch}'s loss {} is {:.1}× the lowest earlier one ({} at epoch {}). ",
            num(value),
            value / low.1,
            num(low.1),
            low.0
        );
    }
    // MF's base loss is the mean squared error: an RMSE measured after the epoch far above
    // √(epoch mean) means the weights blew up during the epoch.
    if matches!(doc.config.task, Task::Mf(_)) {
        if let Some(&(epoch, _)) = finite.last() {
            let base = run.at(Part::Train, "base_loss", epoch);
            let rmse = run.at(Part::Train, "rmse", epoch);
            if let (Some(base), Some(rmse)) = (base, rmse) {
                if rmse * rmse > 2.0 * base {
                    evidence += &format!(
                        "After epoch {epoch} the training RMSE was {} (squared {}), far above the epoch's \
                         mean loss {}: the weights were already blowing up during the epoch. ",
                        num(rmse),
                        num(rmse * rmse),
                        num(base)
                    );
                }
            }
        }
    }
    evidence += &format!(
        "Optimizer {opt_name}, lr {}; {}.",
        num(lr),
        run.regularization_phrase()
    );
    if l2_coefficient > 0.0 && optimizer == OptimizerKind::Sgd {
        evidence += &format!(
            " Each SGD step multiplies the weights by 1 − lr·{} = {}.",
            if r.weight_decay != 0.0 && run.penalty_active() {
                "(λ/n + weight decay)"
            } else if r.weight_decay != 0.0 {
                "weight decay"
            } else {
                "λ/n"
            },
            num(1.0 - decay_step)
        );
    }
    let (title_cause, advice) = if penalty_cause {
        (
            "the L2 step lr·λ/n overshoots zero",
            format!(
                "With SGD the L2 term alone multiplies the weights by 1 − {} per step, below −1: \
                 they flip sign and grow every step whatever the data. Keep lr·λ/n under 1 \
                 (lower λ or --lr), e.g. {}.",
                num(decay_step),
                run.rerun(&format!("lr={}", num(lr / 10.0)))
            ),
        )
    } else {
        (
            "the learning rate is likely too high",
            format!(
                "Lower --lr about 10 times (e.g. {}); if it still diverges, lower it again or use \
                 Adam, whose step size is bounded by lr. A penalty does not cure a too-large step.",
                run.rerun(&format!("lr={}", num(lr / 10.0)))
            ),
        )
    };
    let title = if diverged {
        format!(
            "Training diverged{}: {title_cause} (lr {})",
            blew_up
                .map(|e| format!(" in epoch {e}"))
                .unwrap_or_default(),
            num(lr)
        )
    } else {
        let (epoch, value, low) = spike.unwrap_or((0, f64::NAN, (0, f64::NAN)));
        format!(
            "The training loss jumped {:.1}× at epoch {epoch}: {title_cause} (lr {})",
            value / low.1,
            num(lr)
        )
    };
    let last_finite = finite.last().copied();
    Some(Finding {
        kind: FindingKind::Divergence,
        severity: Severity::Warning,
        title,
        evidence,
        advice,
        numbers: numbers(&[
            ("lr", lr),
            ("diverged_epoch", blew_up.map_or(f64::NAN, |e| e as f64)),
            (
                "last_finite_epoch",
                last_finite.map_or(f64::NAN, |p| p.0 as f64),
            ),
            ("last_finite_loss", last_finite.map_or(f64::NAN, |p| p.1)),
            ("spike_epoch", spike.map_or(f64::NAN, |s| s.0 as f64)),
            ("l2_step", decay_step),
        ]),
    })
}

/// One epoch of the cost computed two ways (see [`eval_divisor`]).
#[derive(Debug, Clone, Copy)]
struct TwoCosts {
    epoch: usize,
    squares: f64,
    base: f64,
    penalty_trained: f64,
    penalty_eval: f64,
}

impl TwoCosts {
    fn trained(&self) -> f64 {
        self.base + self.penalty_trained
    }

    fn eval(&self) -> f64 {
        self.base + self.penalty_eval
    }
}

/// The test cost as trained (penalty ÷ training-set size) next to the cost a user computes
/// dividing the penalty by the evaluation set's size, derived from the recorded norms.
fn eval_divisor(run: &Run) -> Option<Finding> {
    let r = &run.doc.regularization;
    if !run.penalty_active() || r.scale != PenaltyScale::Dataset {
        return None;
    }
    let divisor = r
        .divisor
        .filter(|d| *d > 0.0)
        .or_else(|| run.train_size())?;
    let eval_size = run.test_size()?;
    if (eval_size - divisor).abs() < 0.5 {
        return None;
    }
    let costs: Vec<TwoCosts> = run
        .epochs
        .iter()
        .filter_map(|e| {
            let test = e.test.as_ref()?;
            let base = test.get("base_loss").copied().filter(|v| v.is_finite())?;
            let squares = run.squared_norm(e);
            // The squared-norm form follows from the recorded norms; other dataset-scaled forms
            // (L1) from the recorded test penalty, rescaled to the other divisor.
            let penalty_trained = match (r.penalty, squares) {
                (PenaltyKind::Frobenius, Some(squares)) => r.lambda / (2.0 * divisor) * squares,
                _ => test.get("reg_loss").copied().filter(|v| v.is_finite())?,
            };
            Some(TwoCosts {
                epoch: e.epoch,
                squares: squares.unwrap_or(f64::NAN),
                base,
                penalty_trained,
                penalty_eval: penalty_trained * divisor / eval_size,
            })
        })
        .collect();
    if costs.len() < 2 {
        return None;
    }
    let (first, last) = (costs[0], *costs.last()?);
    let moves = |a: f64, b: f64| if b > a { "rises" } else { "falls" };
    let rise_or_fall = |a: f64, b: f64| if b > a { "rise" } else { "fall" };
    let ratio = divisor / eval_size;
    let term = if r.penalty == PenaltyKind::Frobenius {
        "L2 term"
    } else {
        "penalty"
    };
    let words = run.example_word();
    let title = if moves(first.eval(), last.eval()) != moves(first.trained(), last.trained()) {
        format!(
            "Dividing the {term} by the test set's size ({}) instead of the training set's ({}) makes the test cost {} ({} → {}) while the cost as trained {} ({} → {})",
            count(eval_size),
            count(divisor),
            rise_or_fall(first.eval(), last.eval()),
            num(first.eval()),
            num(last.eval()),
            moves(first.trained(), last.trained()),
            num(first.trained()),
            num(last.trained())
        )
    } else {
        format!(
            "With the {term} divided by the test set's size ({}) instead of the training set's ({}), the test cost would read {} instead of {} at epoch {}",
            count(eval_size),
            count(divisor),
            num(last.eval()),
            num(last.trained()),
            last.epoch
        )
    };
    let label = run.metric_label();
    let lines: Vec<String> = sample(&costs)
        .iter()
        .map(|c| {
            let squares = if c.squares.is_finite() {
                format!("Σ‖W‖² {}, ", num(c.squares))
            } else {
                String::new()
            };
            let metric = run
                .at(Part::Test, &run.metric.name, c.epoch)
                .map(|v| format!("; test {label} {}", num(v)))
                .unwrap_or_default();
            format!(
                "epoch {}: {squares}test base {}, {term} ÷ {} = {} → cost as trained {}; {term} ÷ {} = {} → cost {}{metric}",
                c.epoch,
                num(c.base),
                count(divisor),
                num(c.penalty_trained),
                num(c.trained()),
                count(eval_size),
                num(c.penalty_eval),
                num(c.eval())
            )
        })
        .collect();
    let formula = if r.penalty == PenaltyKind::Frobenius {
        format!(
            "λ/(2·n)·Σ‖W‖² over the penalized {} with λ = {}",
            run.penalized_names(),
            num(r.lambda)
        )
    } else {
        format!("the {} penalty with λ = {}", r.penalty, num(r.lambda))
    };
    let evidence = format!(
        "Training minimized the base cost + {formula} and n = {} training {words}. Dividing by the \
         {} test {words} instead multiplies that term by {}.\n{}",
        count(divisor),
        count(eval_size),
        num(ratio),
        lines.join("\n")
    );
    let advice = format!(
        "Nothing is wrong with the model: a cost that climbs only through the weight term, while \
         the base cost {} and test {label} moves {}, is a reporting artifact. Divide the penalty by \
         the training set's size wherever you report the cost (the divisor the gradient used), or \
         report the base cost and the penalty separately as the run document does (test.base_loss, \
         test.reg_loss). A cost evaluated on another set is comparable across sets only without \
         the penalty.",
        moves(first.base, last.base),
        match run.at(Part::Test, &run.metric.name, last.epoch) {
            Some(v) => {
                let start = run.at(Part::Test, &run.metric.name, first.epoch);
                match start {
                    Some(s) => format!("{} → {}", num(s), num(v)),
                    None => num(v),
                }
            }
            None => "as it does".into(),
        }
    );
    Some(Finding {
        kind: FindingKind::EvalDivisor,
        severity: Severity::Info,
        title,
        evidence,
        advice,
        numbers: numbers(&[
            ("train_size", divisor),
            ("eval_size", eval_size),
            ("first_epoch", first.epoch as f64),
            ("last_epoch", last.epoch as f64),
            ("squares_at_first", first.squares),
            ("squares_at_last", last.squares),
            ("base_at_first", first.base),
            ("base_at_last", last.base),
            ("cost_trained_at_first", first.trained()),
            ("cost_trained_at_last", last.trained()),
            ("cost_eval_at_first", first.eval()),
            ("cost_eval_at_last", last.eval()),
        ]),
    })
}

/// Whether the run's weight decay is an L2 penalty in disguise (coupled) or not
/// (decoupled), and which weight decay an explicit penalty corresponds to.
fn weight_decay_vs_penalty(run: &Run) -> Option<Finding> {
    let r = &run.doc.regularization;
    let optimizer = run.optimizer();
    let opt_name = optimizer_name(optimizer);
    let wd = r.weight_decay;
    let penalty = run.penalty_active();
    if wd == 0.0 && !penalty {
        return None;
    }
    let lr = run.lr();
    let last_implied = run.epochs.last().map(|e| {
        (
            e.epoch,
            e.implied_weight_decay_loss,
            e.train.get("base_loss").copied(),
        )
    });
    let mut number_pairs: Vec<(&str, f64)> = vec![("weight_decay", wd), ("lr", lr)];
    let (title, evidence, advice) = if wd != 0.0 && r.weight_decay_mode == "decoupled" {
        let batch = run.doc.config.training.batch_size as f64;
        let steps = run.train_size().map(|n| (n / batch).ceil());
        let per_step = 1.0 - lr * wd;
        let mut evidence = format!(
            "{opt_name} multiplies every parameter by 1 − lr·wd each step (lr·wd = {} × {} = {}), \
             outside the adaptive step",
            num(lr),
            num(wd),
            num(lr * wd)
        );
        if let Some(steps) = steps {
            let per_epoch = per_step.powf(steps);
            evidence += &format!(
                ": over {} steps per epoch that is a factor {} per epoch, {} over {} epochs",
                count(steps),
                factor(per_epoch),
                factor(per_epoch.powf(run.epochs.len() as f64)),
                run.epochs.len()
            );
            number_pairs.push(("factor_per_epoch", per_epoch));
        }
        evidence += ".";
        if let Some((epoch, implied, _)) = last_implied {
            evidence += &format!(
                " The recorded implied L2 term (wd/2)·Σ‖θ‖² ({} at epoch {epoch}) is for comparison only: \
                 no loss contained it.",
                num(implied)
            );
        }
        if penalty {
            evidence += &format!(
                " The explicit penalty ({} λ = {}) goes through the adaptive step, as Adam's coupled \
                 decay would.",
                r.penalty,
                num(r.lambda)
            );
        }
        (
            format!(
                "{opt_name}'s weight decay {} is decoupled: it is not an L2 penalty, and the same number means a different strength",
                num(wd)
            ),
            evidence,
            "Do not carry a weight-decay value between AdamW and SGD/Adam, or between it and an \
             explicit penalty: coupled decay (SGD, Adam) equals --penalty l2 --penalty-scale none \
             --lambda wd --penalize-bias, decoupled decay does not. If the factor per epoch is close \
             to 1 the decay barely acts; raise wd (AdamW commonly uses 1e-2 to 1e-1) and compare the \
             held-out curve."
                .to_string(),
        )
    } else if wd != 0.0 {
        let mut evidence = format!(
            "{opt_name} adds wd·θ = {}·θ to every parameter's gradient before its update: the gradient \
             of (wd/2)·Σ‖θ‖² over all parameters, biases included.",
            num(wd)
        );
        if let Some((epoch, implied, base)) = last_implied {
            evidence += &format!(" That implied L2 term is {} at epoch {epoch}", num(implied));
            match base.filter(|b| b.is_finite() && *b + implied > 0.0) {
                Some(base) => {
                    evidence += &format!(
                        " against a base loss of {} ({} of their sum).",
                        num(base),
                        pct(implied / (base + implied))
                    );
                    number_pairs.push(("implied_share", implied / (base + implied)));
                }
                None => evidence += ".",
            }
            number_pairs.push(("implied_loss_at_last", implied));
        }
        if optimizer != OptimizerKind::Sgd {
            evidence += &format!(
                " Under {opt_name} that gradient is then rescaled per parameter by the adaptive step, \
                 exactly as an explicit penalty's would be; AdamW's decoupled decay is what avoids it."
            );
        }
        if penalty {
            evidence += &format!(
                " The run also has an explicit penalty ({} λ = {}): the two pulls add.",
                r.penalty,
                num(r.lambda)
            );
        }
        (
            format!(
                "{opt_name}'s weight decay {} is coupled: it is the same as an explicit L2 penalty (wd/2)·Σ‖θ‖²",
                num(wd)
            ),
            evidence,
            format!(
                "--penalty l2 --penalty-scale none --lambda {} --penalize-bias trains the same run \
                 (up to float rounding); the lecture's λ/(2n)·Σ‖W‖² form with λ = wd·n = {} pulls the \
                 weights as hard but leaves the biases alone. Switch to --optimizer adamw for decay \
                 that is not an L2 penalty.",
                num(wd),
                run.train_size()
                    .map(|n| num(wd * n))
                    .unwrap_or_else(|| "wd·n".into())
            ),
        )
    } else {
        match (r.penalty, r.divisor) {
            (PenaltyKind::Frobenius, Some(divisor)) if divisor > 0.0 => {
                let equivalent = r.lambda / divisor;
                number_pairs.push(("equivalent_weight_decay", equivalent));
                let biases = if r.penalize_bias {
                    "; with --penalize-bias the biases are included too, as weight decay does"
                } else {
                    "; weight decay would also decay the biases, which this penalty leaves alone"
                };
                if r.weight_decay_mode == "decoupled" || optimizer == OptimizerKind::Adamw {
                    (
                        format!(
                            "This L2 penalty has no weight-decay twin under {opt_name}: AdamW's decay is decoupled"
                        ),
                        format!(
                            "The penalty's gradient (λ/n)·W = {}·W goes through {opt_name}'s adaptive \
                             step; AdamW's weight decay shrinks weights outside it.",
                            num(equivalent)
                        ),
                        "Compare with --optimizer adam --weight-decay instead: Adam's coupled decay \
                         equals this penalty."
                            .into(),
                    )
                } else {
                    (
                        format!(
                            "Under {opt_name} this L2 penalty equals coupled weight decay λ/n = {} on the {}",
                            num(equivalent),
                            run.penalized_names()
                        ),
                        format!(
                            "The gradient of λ/(2n)·Σ‖W‖² is (λ/n)·W with λ = {} and n = {}: \
                             {opt_name}'s --weight-decay {} adds the same term{biases}.",
                            num(r.lambda),
                            count(divisor),
                            num(equivalent)
                        ),
                        "Either form trains the same weights (up to float rounding and the biases). \
                         Under AdamW the same number would be decoupled decay, a different strength."
                            .into(),
                    )
                }
            }
            (PenaltyKind::BatchL2, _) => (
                "No weight decay equals this batch-l2 penalty: it pulls each user or item once per rating in the batch".into(),
                format!(
                    "batch-l2 with λ = {} penalizes ‖p_u‖² + ‖q_i‖² for every rating in a batch, divided by \
                     |B|: users and items with many ratings are pulled harder than rare ones. Weight decay \
                     pulls every row equally, whether it was used in the batch or not.",
                    num(r.lambda)
                ),
                "To compare with weight decay, use --penalty l2 (λ/(2n)·Σ‖W‖², equal to \
                 --weight-decay λ/n under SGD and Adam) rather than batch-l2."
                    .into(),
            ),
            (kind, _) => (
                format!("No weight decay equals the {kind} penalty: it is not a squared L2 term"),
                match kind {
                    PenaltyKind::Norm => "The unsquared norm λ·Σ‖W‖ has the gradient λ·W/‖W‖: a pull of \
                                          the same size on every matrix, large or small, where weight decay's \
                                          pull is proportional to the weights."
                        .to_string(),
                    _ => "The L1 penalty's gradient λ·sign(W)/n pulls every weight by the same amount \
                          toward zero and makes some exactly zero; weight decay's pull is proportional \
                          to the weight."
                        .to_string(),
                },
                "Weight decay corresponds to --penalty l2 only; compare with that form.".into(),
            ),
        }
    };
    Some(Finding {
        kind: FindingKind::WeightDecayVsPenalty,
        severity: Severity::Info,
        title,
        evidence,
        advice,
        numbers: numbers(&number_pairs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Layer, Origin};
    use crate::schema::{Summary, RUN_KIND, SCHEMA_VERSION};
    use serde_json::{json, Value};

    /// A document for a configuration given as flag pairs, with the dataset statistics and
    /// epochs given.
    fn document(
        pairs: &[(String, Value)],
        dataset: Value,
        epochs: Vec<EpochRecord>,
    ) -> RunDocument {
        let mut layer = Layer::default();
        for (key, value) in pairs {
            layer.set(key, value.clone(), Origin::Flag).unwrap();
        }
        let config = layer.resolve().unwrap();
        let n = dataset["split"]["train_ratings"]
            .as_u64()
            .or(dataset["train_used"].as_u64())
            .unwrap_or(1) as usize;
        let penalty = config
            .penalty
            .resolve(n, config.training.batch_size)
            .unwrap();
        let regularization = penalty.report(
            config.optimizer.weight_decay,
            config.optimizer.weight_decay_mode(),
        );
        let trainer = config.trainer();
        let metric = match trainer {
            crate::config::Trainer::Mf => MetricInfo {
                name: "rmse".into(),
                higher_is_better: false,
            },
            crate::config::Trainer::Mlp => MetricInfo {
                name: "accuracy".into(),
                higher_is_better: true,
            },
        };
        let summary = Summary::from_epochs(&epochs, &metric, 1.0);
        RunDocument {
            schema_version: SCHEMA_VERSION,
            kind: RUN_KIND.into(),
            command: trainer,
            status: RunStatus::Completed,
            message: None,
            started_at: String::new(),
            updated_at: String::new(),
            argv: Vec::new(),
            config,
            dataset,
            environment: Default::default(),
            regularization,
            metric,
            epochs,
            steps: Vec::new(),
            summary,
            diagnostics: Vec::new(),
            files: Default::default(),
        }
    }

    fn mf_dataset() -> Value {
        json!({"users": 943, "items": 1682, "split": {"train_ratings": 80000, "test_ratings": 20000}})
    }

    fn record(pairs: &[(&str, f64)]) -> SplitRecord {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    /// An MF epoch: train (base, reg, rmse), test rmse, factor norms (user, item).
    fn mf_epoch(
        epoch: usize,
        train: (f64, f64, f64),
        test_rmse: f64,
        norms: (f64, f64),
    ) -> EpochRecord {
        let (base, reg, rmse) = train;
        EpochRecord {
            epoch,
            partial: false,
            train: record(&[
                ("base_loss", base),
                ("reg_loss", reg),
                ("total_loss", base + reg),
                ("rmse", rmse),
            ]),
            validation: None,
            test: Some(record(&[
                ("base_loss", test_rmse * test_rmse),
                ("loss", test_rmse * test_rmse),
                ("reg_loss", reg),
                ("total_loss", test_rmse * test_rmse + reg),
                ("rmse", test_rmse),
            ])),
            weight_norms: [
                ("item_bias".to_string(), 10.0),
                ("item_factors".to_string(), norms.1),
                ("user_bias".to_string(), 8.0),
                ("user_factors".to_string(), norms.0),
            ]
            .into_iter()
            .collect(),
            implied_weight_decay_loss: 0.0,
            lr: 0.01,
            seconds: 0.1,
            eval_seconds: 0.01,
        }
    }

    fn kinds(findings: &[Finding]) -> Vec<(FindingKind, Severity)> {
        findings.iter().map(|f| (f.kind, f.severity)).collect()
    }

    fn find(findings: &[Finding], kind: FindingKind) -> &Finding {
        findings
            .iter()
            .find(|f| f.kind == kind)
            .unwrap_or_else(|| panic!("no {kind:?} in {findings:#?}"))
    }

    /// Configuration pairs for `command`.
    fn with(command: &str, pairs: &[(&str, Value)]) -> Vec<(String, Value)> {
        std::iter::once(("command".to_string(), json!(command)))
            .chain(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())))
            .collect()
    }

    fn mf(pairs: &[(&str, Value)]) -> Vec<(String, Value)> {
        with("mf", pairs)
    }

    /// Unregularized MF: test RMSE turns up after epoch 2, training keeps falling, factors grow.
    fn overfitting_epochs() -> Vec<EpochRecord> {
        let test = [1.015, 0.968, 0.974, 0.995, 1.016, 1.033];
        (1..=6)
            .map(|e| {
                let train_rmse = 0.95 - 0.06 * e as f64;
                mf_epoch(
                    e,
                    (train_rmse * train_rmse, 0.0, train_rmse),
                    test[e - 1],
                    (16.0 + 6.0 * e as f64, 21.0 + 7.0 * e as f64),
                )
            })
            .collect()
    }

    #[test]
    fn overfitting_names_the_best_epoch_and_the_rise() {
        let doc = document(&mf(&[]), mf_dataset(), overfitting_epochs());
        let findings = explain(&doc);
        let finding = find(&findings, FindingKind::Overfitting);
        assert_eq!(finding.severity, Severity::Warning);
        assert_eq!(finding.numbers["best_epoch"], 2.0);
        assert_eq!(finding.numbers["last_epoch"], 6.0);
        assert!((finding.numbers["worse_by"] - 0.065).abs() < 1e-12);
        assert!(finding.title.contains("after epoch 2"), "{}", finding.title);
        assert!(
            finding.title.contains("0.9680 → 1.033"),
            "{}",
            finding.title
        );
        assert!(finding.title.contains("+6.7%"), "{}", finding.title);
        assert!(finding.evidence.contains("no penalty and no weight decay"));
        assert!(finding.advice.contains("optimistic"));
        // Growth of unpenalized weights is reported too, as a note.
        assert_eq!(
            find(&findings, FindingKind::WeightNorms).severity,
            Severity::Info
        );
        // Warnings come first.
        assert_eq!(findings[0].severity, Severity::Warning);
    }

    #[test]
    fn a_flat_held_out_curve_is_not_overfitting() {
        let mut epochs = overfitting_epochs();
        // The held-out RMSE settles within the noise of its best.
        for (e, value) in epochs
            .iter_mut()
            .zip([1.0, 0.93, 0.928, 0.927, 0.9275, 0.9272])
        {
            e.test.as_mut().unwrap().insert("rmse".into(), value);
        }
        let findings = explain(&document(&mf(&[]), mf_dataset(), epochs.clone()));
        assert!(findings.iter().all(|f| f.kind != FindingKind::Overfitting));
        // A rising held-out curve while training also worsens is not overfitting either.
        for (e, value) in epochs.iter_mut().zip([1.0, 0.93, 0.95, 0.99, 1.05, 1.1]) {
            e.test.as_mut().unwrap().insert("rmse".into(), value);
            e.train.insert("rmse".into(), value - 0.05);
        }
        let findings = explain(&document(&mf(&[]), mf_dataset(), epochs));
        assert!(findings.iter().all(|f| f.kind != FindingKind::Overfitting));
    }

    /// batch-l2 at λ = 0.1: the penalty first falls, then rises; the total falls throughout.
    fn batch_l2_epochs() -> Vec<EpochRecord> {
        let rows = [
            (1.08, 0.030, 0.96, 1.015, 9.5, 14.9),
            (0.89, 0.020, 0.90, 0.963, 13.8, 20.8),
            (0.80, 0.059, 0.85, 0.939, 19.2, 28.6),
            (0.74, 0.089, 0.82, 0.931, 23.0, 33.9),
            (0.66, 0.135, 0.77, 0.927, 28.3, 40.2),
            (0.59, 0.18, 0.74, 0.9273, 32.5, 44.4),
        ];
        rows.iter()
            .enumerate()
            .map(|(i, &(base, reg, rmse, test, user, item))| {
                mf_epoch(i + 1, (base, reg, rmse), test, (user, item))
            })
            .collect()
    }

    #[test]
    fn a_rising_penalty_under_a_falling_total_is_explained_with_its_share() {
        let doc = document(
            &mf(&[("penalty", json!("batch-l2")), ("lambda", json!("0.1"))]),
            mf_dataset(),
            batch_l2_epochs(),
        );
        let findings = explain(&doc);
        let finding = find(&findings, FindingKind::RegLossRisesTotalFalls);
        assert_eq!(finding.severity, Severity::Info);
        assert_eq!(finding.numbers["low_epoch"], 2.0);
        assert_eq!(finding.numbers["reg_at_low"], 0.020);
        assert_eq!(finding.numbers["reg_at_last"], 0.18);
        assert!((finding.numbers["share_at_last"] - 0.18 / (0.59 + 0.18)).abs() < 1e-12);
        assert!(finding.title.contains("9.0×"), "{}", finding.title);
        assert!(finding
            .evidence
            .contains("first fell from 0.03000 (epoch 1) to 0.02000 (epoch 2)"));
        assert!(
            finding.evidence.contains("23.4% (epoch 6)"),
            "{}",
            finding.evidence
        );
        assert!(finding.advice.contains("once per"));
        // A healthy penalized run: no warning at all.
        assert!(
            findings.iter().all(|f| f.severity == Severity::Info),
            "{:#?}",
            kinds(&findings)
        );
        // batch-l2 has no weight-decay twin.
        assert!(find(&findings, FindingKind::WeightDecayVsPenalty)
            .title
            .contains("No weight decay equals this batch-l2"));
    }

    #[test]
    fn a_falling_penalty_gives_no_trade_off_finding() {
        let mut epochs = batch_l2_epochs();
        for (i, e) in epochs.iter_mut().enumerate() {
            let reg = 0.05 - 0.005 * i as f64;
            let base = e.train["base_loss"];
            e.train.insert("reg_loss".into(), reg);
            e.train.insert("total_loss".into(), base + reg);
        }
        let doc = document(
            &mf(&[("penalty", json!("batch-l2")), ("lambda", json!("0.1"))]),
            mf_dataset(),
            epochs,
        );
        assert!(explain(&doc)
            .iter()
            .all(|f| f.kind != FindingKind::RegLossRisesTotalFalls));
    }

    #[test]
    fn a_collapsed_model_has_a_tiny_share_and_too_strong_a_lambda() {
        // batch-l2, λ = 1: the factors shrink from their initial 12.3 / 16.4 to almost nothing.
        let epochs: Vec<EpochRecord> = (1..=5)
            .map(|e| {
                mf_epoch(
                    e,
                    (0.92 - 0.01 * e as f64, 0.0005, 0.93),
                    0.955,
                    (0.8 - 0.05 * e as f64, 3.2),
                )
            })
            .collect();
        let doc = document(
            &mf(&[("penalty", json!("batch-l2")), ("lambda", json!("1"))]),
            mf_dataset(),
            epochs,
        );
        let findings = explain(&doc);
        let norms = find(&findings, FindingKind::WeightNorms);
        assert_eq!(norms.severity, Severity::Warning);
        assert!(norms.title.contains("user_factors"), "{}", norms.title);
        assert!(!norms.title.contains("item_factors"), "{}", norms.title);
        // init_std 0.1 × √(943 × 16) = 12.28
        assert!(
            (norms.numbers["user_factors.initial"] - 0.1 * (943.0f64 * 16.0).sqrt()).abs() < 1e-9
        );
        assert!(norms.evidence.contains("12.28"), "{}", norms.evidence);
        assert!(norms.advice.contains("μ + b_u + b_i"));
        let share = find(&findings, FindingKind::PenaltyShare);
        assert_eq!(share.severity, Severity::Warning);
        assert!(share.title.contains("too strong"), "{}", share.title);
        assert!(share.title.contains("collapsed"), "{}", share.title);
    }

    #[test]
    fn a_tiny_share_without_collapse_says_lambda_is_too_weak() {
        let mut epochs = batch_l2_epochs();
        for e in &mut epochs {
            let base = e.train["base_loss"];
            e.train.insert("reg_loss".into(), 0.001);
            e.train.insert("total_loss".into(), base + 0.001);
        }
        let doc = document(
            &mf(&[("penalty", json!("batch-l2")), ("lambda", json!("0.001"))]),
            mf_dataset(),
            epochs,
        );
        let share = find(&explain(&doc), FindingKind::PenaltyShare).clone();
        assert!(share.title.contains("too weak"), "{}", share.title);
        assert!(share.advice.contains("lambda=0.01000"), "{}", share.advice);
    }

    #[test]
    fn a_dominant_penalty_says_lambda_is_too_strong() {
        let mut epochs = batch_l2_epochs();
        for e in &mut epochs {
            let base = e.train["base_loss"];
            e.train.insert("reg_loss".into(), 1.5 * base);
            e.train.insert("total_loss".into(), 2.5 * base);
        }
        let doc = document(
            &mf(&[("penalty", json!("batch-l2")), ("lambda", json!("3"))]),
            mf_dataset(),
            epochs,
        );
        let share = find(&explain(&doc), FindingKind::PenaltyShare).clone();
        assert_eq!(share.severity, Severity::Warning);
        assert!(share.title.contains("60.0%"), "{}", share.title);
        assert!(share.title.contains("too strong"), "{}", share.title);
    }

    #[test]
    fn divergence_blames_the_learning_rate_or_the_l2_step() {
        let mut epochs = vec![mf_epoch(1, (1.35, 0.0, 2.34), 2.12, (61.0, 68.0))];
        let mut blown = mf_epoch(2, (f64::NAN, 0.0, f64::NAN), f64::NAN, (f64::NAN, f64::NAN));
        blown.train.insert("total_loss".into(), f64::NAN);
        epochs.push(blown);
        let mut doc = document(
            &mf(&[("optimizer", json!("sgd")), ("lr", json!("100"))]),
            mf_dataset(),
            epochs,
        );
        doc.status = RunStatus::Diverged;
        doc.message = Some("diverged in epoch 2: total loss is NaN".into());
        let findings = explain(&doc);
        let finding = find(&findings, FindingKind::Divergence);
        assert_eq!(finding.severity, Severity::Warning);
        assert!(finding.title.contains("in epoch 2"), "{}", finding.title);
        assert!(finding.title.contains("learning rate"), "{}", finding.title);
        assert!(finding.evidence.contains("2.340"), "{}", finding.evidence);
        assert!(
            finding.advice.contains("--set lr=10.00"),
            "{}",
            finding.advice
        );
        // An L2 step beyond 2 under SGD is the cause instead.
        let mut doc = document(
            &mf(&[
                ("optimizer", json!("sgd")),
                ("lr", json!("10")),
                ("penalty", json!("l2")),
                ("lambda", json!("24000")),
            ]),
            mf_dataset(),
            doc.epochs.clone(),
        );
        doc.status = RunStatus::Diverged;
        let finding = find(&explain(&doc), FindingKind::Divergence).clone();
        assert!(finding.title.contains("L2 step"), "{}", finding.title);
        assert!((finding.numbers["l2_step"] - 3.0).abs() < 1e-12);
    }

    #[test]
    fn a_loss_spike_is_reported_without_nan() {
        let mut epochs = batch_l2_epochs();
        let base = 2.0;
        epochs[4].train.insert("base_loss".into(), base);
        epochs[4].train.insert("total_loss".into(), base + 0.135);
        let doc = document(
            &mf(&[("penalty", json!("batch-l2")), ("lambda", json!("0.1"))]),
            mf_dataset(),
            epochs,
        );
        let finding = find(&explain(&doc), FindingKind::Divergence).clone();
        assert!(finding.title.contains("jumped"), "{}", finding.title);
        assert_eq!(finding.numbers["spike_epoch"], 5.0);
    }

    /// The quadratic-cost network: L2 ÷ 10,000 training images, evaluated on 2,000.
    fn mlp_doc() -> RunDocument {
        let epochs = (1..=4)
            .map(|e| {
                let w0 = 6.1 + e as f64;
                let w1 = 7.3 + e as f64;
                let squares = w0 * w0 + w1 * w1;
                let reg = 5.0 / (2.0 * 10000.0) * squares;
                let base = 0.21 - 0.02 * e as f64;
                EpochRecord {
                    epoch: e,
                    partial: false,
                    train: record(&[
                        ("base_loss", base),
                        ("reg_loss", reg),
                        ("total_loss", base + reg),
                        ("accuracy", 0.7 + 0.03 * e as f64),
                    ]),
                    validation: None,
                    test: Some(record(&[
                        ("base_loss", base),
                        ("loss", base),
                        ("reg_loss", reg),
                        ("total_loss", base + reg),
                        ("accuracy", 0.7 + 0.03 * e as f64),
                    ])),
                    weight_norms: [
                        ("l_layers.0.bias".to_string(), 1.0),
                        ("l_layers.0.weight".to_string(), w0),
                        ("l_layers.1.bias".to_string(), 1.5),
                        ("l_layers.1.weight".to_string(), w1),
                    ]
                    .into_iter()
                    .collect(),
                    implied_weight_decay_loss: 0.0,
                    lr: 0.5,
                    seconds: 1.0,
                    eval_seconds: 0.1,
                }
            })
            .collect();
        document(
            &with(
                "mlp",
                &[
                    ("data", json!("fashion-mnist")),
                    ("hidden", json!("30")),
                    ("activation", json!("sigmoid")),
                    ("loss", json!("mse")),
                    ("optimizer", json!("sgd")),
                    ("lr", json!("0.5")),
                    ("penalty", json!("l2")),
                    ("lambda", json!("5")),
                    ("batch_size", json!("10")),
                ],
            ),
            json!({"rows": 28, "cols": 28, "classes": 10, "train_used": 10000, "test_used": 2000}),
            epochs,
        )
    }

    #[test]
    fn the_evaluation_divisor_cost_is_derived_from_the_norms() {
        let doc = mlp_doc();
        let findings = explain(&doc);
        let finding = find(&findings, FindingKind::EvalDivisor);
        let squares = |e: usize| {
            let norms = &doc.epochs[e].weight_norms;
            norms["l_layers.0.weight"].powi(2) + norms["l_layers.1.weight"].powi(2)
        };
        let base = |e: usize| doc.epochs[e].test.as_ref().unwrap()["base_loss"];
        let trained = |e| base(e) + 5.0 / 20000.0 * squares(e);
        let eval = |e| base(e) + 5.0 / 4000.0 * squares(e);
        assert_eq!(finding.numbers["train_size"], 10000.0);
        assert_eq!(finding.numbers["eval_size"], 2000.0);
        assert!((finding.numbers["cost_trained_at_first"] - trained(0)).abs() < 1e-12);
        assert!((finding.numbers["cost_eval_at_last"] - eval(3)).abs() < 1e-12);
        // The trained cost falls while the evaluation-size cost rises: the title says so.
        assert!(trained(3) < trained(0) && eval(3) > eval(0));
        let expected = format!(
            "makes the test cost rise ({} → {}) while the cost as trained falls ({} → {})",
            format_number(eval(0)),
            format_number(eval(3)),
            format_number(trained(0)),
            format_number(trained(3))
        );
        assert!(finding.title.contains(&expected), "{}", finding.title);
        assert!(finding.title.contains("(2,000)") && finding.title.contains("(10,000)"));
        assert!(finding
            .evidence
            .contains(&format!("Σ‖W‖² {}", format_number(squares(0)))));
        // Under SGD the L2 penalty equals weight decay λ/n.
        let twin = find(&findings, FindingKind::WeightDecayVsPenalty);
        assert_eq!(twin.numbers["equivalent_weight_decay"], 5.0 / 10000.0);
        assert!(findings.iter().all(|f| f.severity == Severity::Info));
    }

    #[test]
    fn weight_decay_is_coupled_or_decoupled_by_optimizer() {
        let coupled = document(
            &mf(&[("weight_decay", json!("1e-4"))]),
            mf_dataset(),
            batch_l2_epochs(),
        );
        let finding = find(&explain(&coupled), FindingKind::WeightDecayVsPenalty).clone();
        assert!(finding.title.contains("is coupled"), "{}", finding.title);
        assert!(finding
            .advice
            .contains("--penalty l2 --penalty-scale none --lambda 1.000e-4"));
        let decoupled = document(
            &mf(&[
                ("optimizer", json!("adamw")),
                ("weight_decay", json!("1e-4")),
            ]),
            mf_dataset(),
            batch_l2_epochs(),
        );
        let finding = find(&explain(&decoupled), FindingKind::WeightDecayVsPenalty).clone();
        assert!(finding.title.contains("decoupled"), "{}", finding.title);
        // 80,000 ratings in batches of 1,024: 79 steps, each × (1 − 0.01·1e-4).
        let per_epoch = (1.0 - 1e-6f64).powf(79.0);
        assert!((finding.numbers["factor_per_epoch"] - per_epoch).abs() < 1e-15);
    }

    #[test]
    fn partial_epochs_and_empty_runs_are_handled() {
        let doc = document(&mf(&[]), mf_dataset(), Vec::new());
        assert!(explain(&doc).is_empty());
        assert!(render(&[]).starts_with("no findings"));
        let mut epochs = overfitting_epochs();
        epochs.last_mut().unwrap().partial = true;
        epochs
            .last_mut()
            .unwrap()
            .test
            .as_mut()
            .unwrap()
            .insert("rmse".into(), 9.0);
        let findings = explain(&document(&mf(&[]), mf_dataset(), epochs));
        assert_eq!(
            find(&findings, FindingKind::Overfitting).numbers["last_epoch"],
            5.0
        );
    }

    #[test]
    fn findings_round_trip_and_render() {
        let findings = explain(&mlp_doc());
        let text = serde_json::to_string(&findings).unwrap();
        assert!(text.contains(r#""kind":"eval-divisor""#), "{text}");
        assert!(text.contains(r#""severity":"info""#), "{text}");
        let back: Vec<Finding> = serde_json::from_str(&text).unwrap();
        // serde_json's float parsing may differ in the last bit; everything else is exact.
        for (read, written) in back.iter().zip(&findings) {
            assert_eq!(
                (
                    read.kind,
                    read.severity,
                    &read.title,
                    &read.evidence,
                    &read.advice
                ),
                (
                    written.kind,
                    written.severity,
                    &written.title,
                    &written.evidence,
                    &written.advice
                )
            );
            for (key, value) in &written.numbers {
                assert!(
                    (read.numbers[key] - value).abs() <= 1e-12 * value.abs(),
                    "{key}"
                );
            }
        }
        assert_eq!(back.len(), findings.len());
        let unknown: Finding = serde_json::from_value(json!({
            "kind": "from-the-future", "severity": "info", "title": "t", "evidence": "e", "advice": "a"
        }))
        .unwrap();
        assert_eq!(unknown.kind, FindingKind::Other);
        let rendered = render(&findings);
        assert!(rendered.contains("[eval-divisor]"));
        assert!(
            rendered.lines().all(|l| l.chars().count() <= WIDTH),
            "{rendered}"
        );
        assert!(!rendered.to_lowercase().contains("seed 0"));
    }

    #[test]
    fn numbers_are_formatted_with_four_significant_digits() {
        assert_eq!(format_number(0.96812), "0.9681");
        assert_eq!(format_number(1.10047), "1.100");
        assert_eq!(format_number(137.28), "137.3");
        assert_eq!(format_number(0.020921), "0.02092");
        assert_eq!(format_number(12345.6), "12346");
        assert_eq!(format_number(1e-6), "1.000e-6");
        assert_eq!(format_number(0.0), "0");
        assert_eq!(count(80000.0), "80,000");
        assert_eq!(count(943.0), "943");
        assert_eq!(pct(0.0008), "0.08%");
        assert_eq!(
            sample(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
            vec![1, 3, 5, 6, 8, 10]
        );
    }
}

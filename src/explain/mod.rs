//! Plain-language findings about a recorded run: what its curves show, with the run's own
//! numbers (epochs and values) as evidence, and what to do about it.
//!
//! Everything here reads a [`RunDocument`] only, so `regulab explain` works on any recorded
//! run (including older ones), and the same findings are stored in the document's
//! `diagnostics` when a run ends. Each finding has its own file: a `detect` that returns the
//! numbers behind it (and which thresholds they crossed), and a `describe` that words them.
//! The thresholds are named constants in the finding's file, each with the reason for its
//! value, re-exported here; the runs in README.md's "Reproducing the lecture" set them.

mod divergence;
mod eval_divisor;
mod overfitting;
mod penalty_share;
mod reg_loss_rises;
mod search_edge;
mod weight_decay_vs_penalty;
mod weight_norms;
mod wording;

pub use crate::util::format_number;
pub use divergence::{LOSS_JUMP_FACTOR, SGD_DECAY_STEP_LIMIT};
pub use eval_divisor::{divisor_costs, DivisorCosts};
pub use overfitting::{
    OVERFIT_NOTE_POINTS, OVERFIT_NOTE_RELATIVE, OVERFIT_WARN_POINTS, OVERFIT_WARN_RELATIVE,
};
pub use penalty_share::{SHARE_DOMINANT, SHARE_TINY};
pub use reg_loss_rises::REG_RISE_FACTOR;
pub use search_edge::EDGE_FRACTION;
pub use weight_norms::{NORM_COLLAPSE_FRACTION, NORM_GROWTH_FACTOR, NORM_SETTLED_PER_EPOCH};
pub use wording::MAX_SERIES_POINTS;

use crate::optim::OptimizerKind;
use crate::regularization::PenaltyKind;
use crate::schema::{EpochRecord, MetricInfo, RunDocument, Split, SplitRecord};
pub use crate::schema::{Finding, FindingKind, Severity};
use std::collections::BTreeMap;
use wording::{severity_word, wrap, WIDTH};

/// Fewest whole epochs for a trend (a best epoch followed by a worse one, a rise after a
/// fall): with two points every change looks like a trend.
pub const MIN_TREND_EPOCHS: usize = 3;

/// Every finding for a run, warnings first.
pub fn explain(doc: &RunDocument) -> Vec<Finding> {
    let run = Run::new(doc);
    let mut findings: Vec<Finding> = [
        divergence::detect(&run).map(|e| divergence::describe(&run, &e)),
        overfitting::detect(&run).map(|e| overfitting::describe(&run, &e)),
        penalty_share::detect(&run).map(|e| penalty_share::describe(&run, &e)),
        weight_norms::detect(&run).map(|e| weight_norms::describe(&run, &e)),
        reg_loss_rises::detect(&run).map(|e| reg_loss_rises::describe(&run, &e)),
        eval_divisor::detect(&run).map(|e| eval_divisor::describe(&run, &e)),
        weight_decay_vs_penalty::detect(&run).map(|e| weight_decay_vs_penalty::describe(&run, &e)),
    ]
    .into_iter()
    .flatten()
    .collect();
    findings.sort_by_key(|f| f.severity);
    findings
}

/// The findings about a tune's summary: a choice at the edge of a searched range.
pub fn explain_tune(summary: &crate::schema::TuneSummary) -> Vec<Finding> {
    search_edge::detect(summary)
        .iter()
        .map(|edge| search_edge::describe(summary, edge))
        .collect()
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

/// One training epoch's means, all finite.
#[derive(Debug, Clone, Copy, PartialEq)]
struct TrainLosses {
    epoch: usize,
    base: f64,
    reg: f64,
    total: f64,
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

    fn split<'e>(&self, epoch: &'e EpochRecord, part: Split) -> Option<&'e SplitRecord> {
        epoch.split(part)
    }

    /// (epoch, value) of `part.key` over the whole epochs with a finite value.
    fn curve(&self, part: Split, key: &str) -> Vec<(usize, f64)> {
        self.epochs
            .iter()
            .filter_map(|e| {
                let value = *self.split(e, part)?.get(key)?;
                value.is_finite().then_some((e.epoch, value))
            })
            .collect()
    }

    fn at(&self, part: Split, key: &str, epoch: usize) -> Option<f64> {
        let record = self.epochs.iter().find(|e| e.epoch == epoch)?;
        let value = *self.split(record, part)?.get(key)?;
        value.is_finite().then_some(value)
    }

    /// The split that judges generalization: validation when the run has one, else test.
    fn held_out(&self) -> Split {
        if self.epochs.iter().any(|e| e.validation.is_some()) {
            Split::Validation
        } else {
            Split::Test
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

    /// The training epoch means, where base, penalty and total are all finite.
    fn train_losses(&self) -> Vec<TrainLosses> {
        self.epochs
            .iter()
            .filter_map(|e| {
                let get = |key: &str| e.train.get(key).copied().filter(|v| v.is_finite());
                Some(TrainLosses {
                    epoch: e.epoch,
                    base: get("base_loss")?,
                    reg: get("reg_loss")?,
                    total: get("total_loss")?,
                })
            })
            .collect()
    }

    /// The penalty's share of the training loss per epoch.
    fn shares(&self) -> Vec<(usize, f64)> {
        self.train_losses()
            .into_iter()
            .filter(|l| l.total > 0.0)
            .map(|l| (l.epoch, l.reg / l.total))
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

/// A finding's `numbers`, leaving out the values a run did not have (NaN).
fn numbers(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs
        .iter()
        .filter(|(_, v)| v.is_finite())
        .map(|(k, v)| (k.to_string(), *v))
        .collect()
}

#[cfg(test)]
mod fixtures;

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use serde_json::json;

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
}

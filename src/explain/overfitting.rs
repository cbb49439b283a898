//! The held-out metric turns worse after its best epoch while the training metric keeps
//! improving.

use super::wording::{capitalize, num, pct, series};
use super::{best_of, numbers, Finding, FindingKind, Run, Severity, Split, MIN_TREND_EPOCHS};
use crate::config::ModelSpec;

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

/// A held-out curve past its best while training still improved.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Overfitting {
    /// The split that judged it (validation, else test).
    pub part: Split,
    /// The held-out metric's (epoch, value) over the whole epochs.
    pub held: Vec<(usize, f64)>,
    pub best: (usize, f64),
    pub last: (usize, f64),
    /// |last − best| in the metric's unit.
    pub worse_by: f64,
    /// `worse_by` as a fraction of the best value.
    pub relative: f64,
    /// Warning past the WARN threshold, note past the NOTE one.
    pub severity: Severity,
    /// Training judged by the metric itself; false: by the base loss (no training metric).
    pub train_by_metric: bool,
    pub train_at_best: f64,
    pub train_at_last: f64,
}

pub(super) fn detect(run: &Run) -> Option<Overfitting> {
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
    let (change, note, warn) = if metric.higher_is_better {
        (worse_by, OVERFIT_NOTE_POINTS, OVERFIT_WARN_POINTS)
    } else {
        (relative, OVERFIT_NOTE_RELATIVE, OVERFIT_WARN_RELATIVE)
    };
    let severity = if change >= warn {
        Severity::Warning
    } else if change >= note {
        Severity::Info
    } else {
        return None;
    };
    // Training must keep improving over the same epochs; otherwise the run is unstable or
    // stalled, not overfitting. The training metric when recorded, else the base loss.
    let train_by_metric = run.at(Split::Train, &metric.name, last.0).is_some();
    let train_key = if train_by_metric {
        metric.name.as_str()
    } else {
        "base_loss"
    };
    let train_at_best = run.at(Split::Train, train_key, best.0)?;
    let train_at_last = run.at(Split::Train, train_key, last.0)?;
    let improved = if train_by_metric {
        metric.is_better(train_at_last, train_at_best)
    } else {
        train_at_last < train_at_best
    };
    improved.then_some(Overfitting {
        part,
        held,
        best,
        last,
        worse_by,
        relative,
        severity,
        train_by_metric,
        train_at_best,
        train_at_last,
    })
}

pub(super) fn describe(run: &Run, o: &Overfitting) -> Finding {
    let amount = if run.metric.higher_is_better {
        format!("{:.1} points", o.worse_by * 100.0)
    } else {
        format!("+{}", pct(o.relative))
    };
    let label = run.metric_label();
    let train_label = if o.train_by_metric {
        format!("training {label}")
    } else {
        "the training loss".into()
    };
    Finding {
        kind: FindingKind::Overfitting,
        severity: o.severity,
        title: title(run, o, &label, &train_label, &amount),
        evidence: evidence(run, o, &label, &train_label, &amount),
        advice: advice(run, o),
        numbers: numbers(&[
            ("best_epoch", o.best.0 as f64),
            ("best_value", o.best.1),
            ("last_epoch", o.last.0 as f64),
            ("last_value", o.last.1),
            ("worse_by", o.worse_by),
            ("relative_worse_by", o.relative),
            ("train_at_best", o.train_at_best),
            ("train_at_last", o.train_at_last),
        ]),
    }
}

fn title(run: &Run, o: &Overfitting, label: &str, train_label: &str, amount: &str) -> String {
    let turned = if run.metric.higher_is_better {
        "fell"
    } else {
        "turned up"
    };
    // A ranking metric has no training value: the training loss stands in, and it falls.
    let kept = if run.metric.higher_is_better && o.train_by_metric {
        "rising"
    } else {
        "falling"
    };
    let slightly = if o.severity == Severity::Info {
        " slightly"
    } else {
        ""
    };
    format!(
        "{} {label} {turned}{slightly} after epoch {} while {train_label} kept {kept}: {} → {} by epoch {} ({amount})",
        capitalize(o.part.noun()),
        o.best.0,
        num(o.best.1),
        num(o.last.1),
        o.last.0,
    )
}

fn evidence(run: &Run, o: &Overfitting, label: &str, train_label: &str, amount: &str) -> String {
    let after: Vec<(usize, f64)> = o.held.iter().copied().filter(|p| p.0 > o.best.0).collect();
    let mut evidence = format!(
        "{} {label} was best at epoch {} ({}), then: {}; at epoch {} it is {} worse than the best ({}). \
         {} over the same epochs: {} → {}. Regularization: {}.",
        capitalize(o.part.noun()),
        o.best.0,
        num(o.best.1),
        series(&after, num),
        o.last.0,
        num(o.worse_by),
        amount,
        capitalize(train_label),
        num(o.train_at_best),
        num(o.train_at_last),
        run.regularization_phrase(),
    );
    let norms = run.norm_curve();
    let norm_at = |epoch| norms.iter().find(|p| p.0 == epoch).map(|p| p.1);
    if let (Some(a), Some(b)) = (norm_at(o.best.0), norm_at(o.last.0)) {
        evidence += &format!(
            " The {}' norm √Σ‖W‖² went {} → {} over those epochs.",
            run.penalized_names(),
            num(a),
            num(b)
        );
    }
    evidence
}

fn advice(run: &Run, o: &Overfitting) -> String {
    let held_name = o.part.noun();
    let best_epoch = o.best.0;
    let remedy = if run.penalty_active() || run.weight_decay() != 0.0 {
        let (name, key, value) = if run.penalty_active() {
            ("λ", "lambda", run.doc.regularization.lambda)
        } else {
            ("weight decay", "weight_decay", run.weight_decay())
        };
        format!(
            "Regularize more strongly ({name} = {} now: try 3 to 10 times more, e.g. {}) until the \
             {held_name} curve stays flat, or stop near epoch {best_epoch}.",
            num(value),
            run.rerun(&format!("{key}={}", num(value * 3.0))),
        )
    } else {
        let example = match run.doc.config.model {
            ModelSpec::Mf(_) => "--penalty batch-l2 --lambda 0.1",
            ModelSpec::Mlp(_) => "--penalty l2 --lambda 5, or --weight-decay 1e-4",
        };
        format!(
            "Add regularization ({example}) and compare the {held_name} curve, or stop near epoch {best_epoch}."
        )
    };
    let mut advice = if o.severity == Severity::Info {
        format!(
            "A small change (under {}): if it keeps growing over more epochs, the model is fitting \
             noise in the training data after epoch {best_epoch}. {remedy}",
            if run.metric.higher_is_better {
                format!("{:.0} points", OVERFIT_WARN_POINTS * 100.0)
            } else {
                pct(OVERFIT_WARN_RELATIVE)
            },
        )
    } else {
        format!("The model fits noise in the training data after epoch {best_epoch}. {remedy}")
    };
    if o.part == Split::Test {
        advice += &format!(
            " The test set picked epoch {best_epoch}, so {} is optimistic, not a result",
            num(o.best.1)
        );
        advice += match run.doc.config.model {
            ModelSpec::Mlp(_) => ": choose the epoch on a validation split (--val-split 0.1).",
            ModelSpec::Mf(_) => ".",
        };
    }
    advice
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{explain, FindingKind, Run, Severity};
    use super::*;
    use crate::schema::EpochRecord;

    /// The test RMSE curve of `overfitting_epochs` replaced by `test`.
    fn with_test_rmse(test: &[f64]) -> Vec<EpochRecord> {
        let mut epochs = overfitting_epochs();
        for (e, &value) in epochs.iter_mut().zip(test) {
            e.test.as_mut().unwrap().insert("rmse".into(), value);
        }
        epochs
    }

    fn detected(epochs: Vec<EpochRecord>) -> Option<Overfitting> {
        detect(&Run::new(&document(&mf(&[]), mf_dataset(), epochs)))
    }

    #[test]
    fn the_relative_rise_decides_note_warning_or_nothing() {
        // Best 1.0 at epoch 2; the last epoch just below and just above each threshold.
        let at = |last: f64| detected(with_test_rmse(&[1.1, 1.0, 1.0, 1.0, 1.0, last]));
        assert_eq!(at(1.0 + OVERFIT_NOTE_RELATIVE * 0.99), None);
        let note = at(1.0 + OVERFIT_NOTE_RELATIVE * 1.01).unwrap();
        assert_eq!(note.severity, Severity::Info);
        assert_eq!((note.best, note.last.0), ((2, 1.0), 6));
        assert_eq!(
            at(1.0 + OVERFIT_WARN_RELATIVE * 0.99).unwrap().severity,
            Severity::Info
        );
        let warning = at(1.0 + OVERFIT_WARN_RELATIVE * 1.01).unwrap();
        assert_eq!(warning.severity, Severity::Warning);
        assert!((warning.relative - OVERFIT_WARN_RELATIVE * 1.01).abs() < 1e-12);
        assert!(warning.train_by_metric);
        assert!(warning.train_at_last < warning.train_at_best);
    }

    #[test]
    fn a_best_last_epoch_or_a_short_run_is_no_trend() {
        assert_eq!(
            detected(with_test_rmse(&[1.1, 1.05, 1.04, 1.03, 1.02, 1.0])),
            None
        );
        let mut short = with_test_rmse(&[1.0, 0.9, 1.5]);
        short.truncate(MIN_TREND_EPOCHS - 1);
        assert_eq!(detected(short), None);
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
}

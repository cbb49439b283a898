//! A diverged run (non-finite loss) or a spike in the training loss, with its likely cause.

use super::wording::{num, optimizer_name, series};
use super::{numbers, Finding, FindingKind, Run, Severity, Split};
use crate::config::ModelSpec;
use crate::optim::OptimizerKind;
use crate::regularization::PenaltyKind;
use crate::schema::RunStatus;

/// An epoch whose mean training loss is this factor above the lowest earlier epoch is a
/// spike (instability); a falling loss never comes near it.
pub const LOSS_JUMP_FACTOR: f64 = 1.5;
/// SGD's L2 step multiplies a weight by 1 − lr·λ: beyond 2 the factor is below −1 and the
/// weights grow in magnitude every step whatever the data.
pub const SGD_DECAY_STEP_LIMIT: f64 = 2.0;
/// MF's base loss is the mean squared error: a training RMSE measured after the epoch whose
/// square is this factor above the epoch's mean means the weights blew up during the epoch.
const RMSE_AFTER_EPOCH_FACTOR: f64 = 2.0;

/// An epoch whose loss jumped above the lowest earlier one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Spike {
    pub epoch: usize,
    pub loss: f64,
    /// (epoch, loss) of the lowest earlier epoch.
    pub low: (usize, f64),
}

/// MF's training RMSE after an epoch, far above the epoch's mean loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct RmseAfterEpoch {
    pub epoch: usize,
    pub rmse: f64,
    pub base: f64,
}

/// A diverged run or a loss spike, with what points at its cause.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Divergence {
    /// The run stopped as diverged, or a training loss was not finite.
    pub diverged: bool,
    /// The first epoch whose training loss was not finite.
    pub blew_up: Option<usize>,
    /// (epoch, mean training loss) of the epochs with a finite loss, partial ones included.
    pub finite: Vec<(usize, f64)>,
    pub spike: Option<Spike>,
    pub rmse_after_epoch: Option<RmseAfterEpoch>,
    /// c in SGD's L2 step w ← (1 − lr·c)·w: λ/divisor of the squared-norm penalty plus
    /// coupled weight decay.
    pub l2_coefficient: f64,
    /// lr·c.
    pub decay_step: f64,
    /// SGD's L2 step alone overshoots ([`SGD_DECAY_STEP_LIMIT`]).
    pub penalty_cause: bool,
}

pub(super) fn detect(run: &Run) -> Option<Divergence> {
    let doc = run.doc;
    let all: Vec<(usize, f64)> = doc
        .epochs
        .iter()
        .filter_map(|e| Some((e.epoch, *e.train.get("total_loss")?)))
        .collect();
    let blew_up = all.iter().find(|(_, v)| !v.is_finite()).map(|p| p.0);
    let finite: Vec<(usize, f64)> = all.iter().copied().filter(|p| p.1.is_finite()).collect();
    let diverged = doc.status == RunStatus::Diverged || blew_up.is_some();
    let spike = spike(&finite);
    if !diverged && spike.is_none() {
        return None;
    }
    let r = &doc.regularization;
    // Adam-type optimizers normalize the step, so only SGD's L2 step is checked.
    let penalty = match (r.penalty, r.divisor) {
        (PenaltyKind::Frobenius, Some(divisor)) if run.penalty_active() && divisor > 0.0 => {
            r.lambda / divisor
        }
        _ => 0.0,
    };
    let l2_coefficient = penalty + r.weight_decay;
    let decay_step = run.lr() * l2_coefficient;
    Some(Divergence {
        diverged,
        blew_up,
        rmse_after_epoch: rmse_after_epoch(run, &finite),
        finite,
        spike,
        l2_coefficient,
        decay_step,
        penalty_cause: run.optimizer() == OptimizerKind::Sgd && decay_step > SGD_DECAY_STEP_LIMIT,
    })
}

/// The first epoch whose loss is far above the lowest earlier one.
fn spike(finite: &[(usize, f64)]) -> Option<Spike> {
    finite
        .iter()
        .enumerate()
        .skip(1)
        .find_map(|(i, &(epoch, loss))| {
            let low = finite[..i]
                .iter()
                .copied()
                .reduce(|a, b| if b.1 < a.1 { b } else { a })?;
            (loss > LOSS_JUMP_FACTOR * low.1 && low.1 > 0.0).then_some(Spike { epoch, loss, low })
        })
}

fn rmse_after_epoch(run: &Run, finite: &[(usize, f64)]) -> Option<RmseAfterEpoch> {
    if !matches!(run.doc.config.model, ModelSpec::Mf(_)) {
        return None;
    }
    let &(epoch, _) = finite.last()?;
    let base = run.at(Split::Train, "base_loss", epoch)?;
    let rmse = run.at(Split::Train, "rmse", epoch)?;
    (rmse * rmse > RMSE_AFTER_EPOCH_FACTOR * base).then_some(RmseAfterEpoch { epoch, rmse, base })
}

pub(super) fn describe(run: &Run, d: &Divergence) -> Finding {
    let lr = run.lr();
    let (title_cause, advice) = cause(run, d);
    let last_finite = d.finite.last().copied();
    Finding {
        kind: FindingKind::Divergence,
        severity: Severity::Warning,
        title: title(run, d, title_cause),
        evidence: evidence(run, d),
        advice,
        numbers: numbers(&[
            ("lr", lr),
            ("diverged_epoch", d.blew_up.map_or(f64::NAN, |e| e as f64)),
            (
                "last_finite_epoch",
                last_finite.map_or(f64::NAN, |p| p.0 as f64),
            ),
            ("last_finite_loss", last_finite.map_or(f64::NAN, |p| p.1)),
            ("spike_epoch", d.spike.map_or(f64::NAN, |s| s.epoch as f64)),
            ("l2_step", d.decay_step),
        ]),
    }
}

/// The likely cause, for the title, and the advice that follows from it.
fn cause(run: &Run, d: &Divergence) -> (&'static str, String) {
    let lr = run.lr();
    if d.penalty_cause {
        (
            "the L2 step lr·λ/n overshoots zero",
            format!(
                "With SGD the L2 term alone multiplies the weights by 1 − {} per step, below −1: \
                 they flip sign and grow every step whatever the data. Keep lr·λ/n under 1 \
                 (lower λ or --lr), e.g. {}.",
                num(d.decay_step),
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
    }
}

fn title(run: &Run, d: &Divergence, title_cause: &str) -> String {
    let lr = run.lr();
    if d.diverged {
        format!(
            "Training diverged{}: {title_cause} (lr {})",
            d.blew_up
                .map(|e| format!(" in epoch {e}"))
                .unwrap_or_default(),
            num(lr)
        )
    } else {
        let Spike { epoch, loss, low } = d.spike.unwrap_or(Spike {
            epoch: 0,
            loss: f64::NAN,
            low: (0, f64::NAN),
        });
        format!(
            "The training loss jumped {:.1}× at epoch {epoch}: {title_cause} (lr {})",
            loss / low.1,
            num(lr)
        )
    }
}

fn evidence(run: &Run, d: &Divergence) -> String {
    let mut evidence = String::new();
    if d.diverged {
        if let Some(message) = &run.doc.message {
            evidence += &format!("The run stopped: {message}. ");
        }
    }
    if !d.finite.is_empty() {
        evidence += &format!("Mean training loss per epoch: {}", series(&d.finite, num));
        match d.blew_up {
            Some(epoch) => evidence += &format!(", then not finite in epoch {epoch}. "),
            None => evidence += ". ",
        }
    }
    if let Some(Spike { epoch, loss, low }) = d.spike {
        evidence += &format!(
            "Epoch {epoch}'s loss {} is {:.1}× the lowest earlier one ({} at epoch {}). ",
            num(loss),
            loss / low.1,
            num(low.1),
            low.0
        );
    }
    if let Some(RmseAfterEpoch { epoch, rmse, base }) = d.rmse_after_epoch {
        evidence += &format!(
            "After epoch {epoch} the training RMSE was {} (squared {}), far above the epoch's \
             mean loss {}: the weights were already blowing up during the epoch. ",
            num(rmse),
            num(rmse * rmse),
            num(base)
        );
    }
    let optimizer = run.optimizer();
    let r = &run.doc.regularization;
    evidence += &format!(
        "Optimizer {}, lr {}; {}.",
        optimizer_name(optimizer),
        num(run.lr()),
        run.regularization_phrase()
    );
    if d.l2_coefficient > 0.0 && optimizer == OptimizerKind::Sgd {
        evidence += &format!(
            " Each SGD step multiplies the weights by 1 − lr·{} = {}.",
            if r.weight_decay != 0.0 && run.penalty_active() {
                "(λ/n + weight decay)"
            } else if r.weight_decay != 0.0 {
                "weight decay"
            } else {
                "λ/n"
            },
            num(1.0 - d.decay_step)
        );
    }
    evidence
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{explain, FindingKind, Run, Severity};
    use super::*;
    use crate::schema::EpochRecord;
    use serde_json::json;

    /// Unregularized MF epochs with these mean training losses (all base loss).
    fn with_losses(losses: &[f64]) -> Vec<EpochRecord> {
        losses
            .iter()
            .enumerate()
            .map(|(i, &loss)| mf_epoch(i + 1, (loss, 0.0, loss.sqrt()), 0.95, (13.0, 17.0)))
            .collect()
    }

    fn detected(pairs: &[(&str, serde_json::Value)], losses: &[f64]) -> Option<Divergence> {
        detect(&Run::new(&document(
            &mf(pairs),
            mf_dataset(),
            with_losses(losses),
        )))
    }

    #[test]
    fn a_spike_is_a_jump_past_the_factor_over_the_lowest_earlier_epoch() {
        let low = 0.8;
        assert_eq!(
            detected(&[], &[1.0, low, low * LOSS_JUMP_FACTOR * 0.99]),
            None
        );
        let d = detected(&[], &[1.0, low, low * LOSS_JUMP_FACTOR * 1.01]).unwrap();
        assert!(!d.diverged);
        assert_eq!(d.blew_up, None);
        let spike = d.spike.unwrap();
        assert_eq!((spike.epoch, spike.low), (3, (2, low)));
        assert_eq!(d.rmse_after_epoch, None);
    }

    #[test]
    fn a_non_finite_loss_is_divergence_and_sgd_l2_past_the_limit_is_its_cause() {
        // l2 with λ = 80,000 over n = 80,000 ratings: c = 1, so lr is the L2 step.
        let sgd = |lr: f64| {
            let pairs = [
                ("optimizer", json!("sgd")),
                ("lr", json!(lr.to_string())),
                ("penalty", json!("l2")),
                ("lambda", json!("80000")),
            ];
            detected(&pairs, &[1.0, f64::NAN]).unwrap()
        };
        let below = sgd(SGD_DECAY_STEP_LIMIT * 0.99);
        assert!(below.diverged && !below.penalty_cause);
        assert_eq!(below.blew_up, Some(2));
        assert_eq!(below.finite, vec![(1, 1.0)]);
        let above = sgd(SGD_DECAY_STEP_LIMIT * 1.01);
        assert!(above.penalty_cause);
        assert!((above.decay_step - SGD_DECAY_STEP_LIMIT * 1.01).abs() < 1e-12);
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
}

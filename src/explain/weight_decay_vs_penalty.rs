//! Whether the run's weight decay is an L2 penalty in disguise (coupled) or not
//! (decoupled), and which weight decay an explicit penalty corresponds to.

use super::wording::{count, factor, num, optimizer_name, pct};
use super::{numbers, Finding, FindingKind, Run, Severity};
use crate::optim::OptimizerKind;
use crate::regularization::PenaltyKind;
use crate::regularization::WeightDecayMode;

/// How decoupled weight decay compounds over an epoch of steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct DecayPerEpoch {
    pub steps: f64,
    /// (1 − lr·wd) to the power of the steps.
    pub factor: f64,
    /// `factor` over all the run's whole epochs.
    pub over_run: f64,
    pub epochs: usize,
}

/// The last whole epoch's weight-decay term, as if it were a loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct ImpliedLoss {
    pub epoch: usize,
    /// (wd/2)·Σ‖θ‖².
    pub implied: f64,
    pub base: Option<f64>,
}

impl ImpliedLoss {
    /// The implied term's share of base + implied, when that sum is positive.
    fn share(&self) -> Option<(f64, f64)> {
        let base = self
            .base
            .filter(|b| b.is_finite() && *b + self.implied > 0.0)?;
        Some((base, self.implied / (base + self.implied)))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum DecayCase {
    /// Weight decay outside the adaptive step (AdamW); the per-epoch factor when the
    /// training set's size is known.
    Decoupled(Option<DecayPerEpoch>),
    /// Weight decay added to the gradient: an L2 penalty over all parameters.
    Coupled,
    /// No weight decay; the squared-norm penalty's gradient is coupled weight decay
    /// `equivalent` = λ/n (n = `divisor`), unless the optimizer decouples decay.
    SquaredPenalty {
        divisor: f64,
        equivalent: f64,
        decoupled: bool,
    },
    /// No weight decay; batch-l2, which pulls each row once per rating in the batch.
    BatchL2,
    /// No weight decay; a penalty that is not a squared L2 term.
    NotSquared(PenaltyKind),
}

/// The run's weight decay or penalty, and which of the cases it is.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct WeightDecayVsPenalty {
    pub weight_decay: f64,
    pub lr: f64,
    pub implied: Option<ImpliedLoss>,
    pub case: DecayCase,
}

pub(super) fn detect(run: &Run) -> Option<WeightDecayVsPenalty> {
    let r = &run.doc.regularization;
    let wd = r.weight_decay;
    if wd == 0.0 && !run.penalty_active() {
        return None;
    }
    let lr = run.lr();
    let case = if wd != 0.0 && r.weight_decay_mode == WeightDecayMode::Decoupled {
        let batch = run.doc.config.training.batch_size as f64;
        DecayCase::Decoupled(run.train_size().map(|n| {
            let steps = (n / batch).ceil();
            let factor = (1.0 - lr * wd).powf(steps);
            let epochs = run.epochs.len();
            DecayPerEpoch {
                steps,
                factor,
                over_run: factor.powf(epochs as f64),
                epochs,
            }
        }))
    } else if wd != 0.0 {
        DecayCase::Coupled
    } else {
        match (r.penalty, r.divisor) {
            (PenaltyKind::Frobenius, Some(divisor)) if divisor > 0.0 => DecayCase::SquaredPenalty {
                divisor,
                equivalent: r.lambda / divisor,
                decoupled: r.weight_decay_mode == WeightDecayMode::Decoupled
                    || run.optimizer() == OptimizerKind::Adamw,
            },
            (PenaltyKind::BatchL2, _) => DecayCase::BatchL2,
            (kind, _) => DecayCase::NotSquared(kind),
        }
    };
    Some(WeightDecayVsPenalty {
        weight_decay: wd,
        lr,
        implied: run.epochs.last().map(|e| ImpliedLoss {
            epoch: e.epoch,
            implied: e.implied_weight_decay_loss,
            base: e.train.get("base_loss").copied(),
        }),
        case,
    })
}

pub(super) fn describe(run: &Run, w: &WeightDecayVsPenalty) -> Finding {
    let mut number_pairs: Vec<(&str, f64)> = vec![("weight_decay", w.weight_decay), ("lr", w.lr)];
    let (title, evidence, advice) = match &w.case {
        DecayCase::Decoupled(per_epoch) => {
            if let Some(per_epoch) = per_epoch {
                number_pairs.push(("factor_per_epoch", per_epoch.factor));
            }
            decoupled(run, w, per_epoch)
        }
        DecayCase::Coupled => {
            if let Some(implied) = w.implied {
                if let Some((_, share)) = implied.share() {
                    number_pairs.push(("implied_share", share));
                }
                number_pairs.push(("implied_loss_at_last", implied.implied));
            }
            coupled(run, w)
        }
        DecayCase::SquaredPenalty {
            divisor,
            equivalent,
            decoupled,
        } => {
            number_pairs.push(("equivalent_weight_decay", *equivalent));
            if *decoupled {
                squared_penalty_decoupled(run, *equivalent)
            } else {
                squared_penalty(run, *divisor, *equivalent)
            }
        }
        DecayCase::BatchL2 => batch_l2(run),
        DecayCase::NotSquared(kind) => not_squared(run, *kind),
    };
    Finding {
        kind: FindingKind::WeightDecayVsPenalty,
        severity: Severity::Info,
        title,
        evidence,
        advice,
        numbers: numbers(&number_pairs),
    }
}

/// Title, evidence and advice for decoupled weight decay.
fn decoupled(
    run: &Run,
    w: &WeightDecayVsPenalty,
    per_epoch: &Option<DecayPerEpoch>,
) -> (String, String, String) {
    let r = &run.doc.regularization;
    let opt_name = optimizer_name(run.optimizer());
    let (lr, wd) = (w.lr, w.weight_decay);
    let mut evidence = format!(
        "{opt_name} multiplies every parameter by 1 − lr·wd each step (lr·wd = {} × {} = {}), \
         outside the adaptive step",
        num(lr),
        num(wd),
        num(lr * wd)
    );
    if let Some(p) = per_epoch {
        evidence += &format!(
            ": over {} steps per epoch that is a factor {} per epoch, {} over {} epochs",
            count(p.steps),
            factor(p.factor),
            factor(p.over_run),
            p.epochs
        );
    }
    evidence += ".";
    if let Some(ImpliedLoss { epoch, implied, .. }) = w.implied {
        evidence += &format!(
            " The recorded implied L2 term (wd/2)·Σ‖θ‖² ({} at epoch {epoch}) is for comparison only: \
             no loss contained it.",
            num(implied)
        );
    }
    if run.penalty_active() {
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
}

/// Title, evidence and advice for coupled weight decay.
fn coupled(run: &Run, w: &WeightDecayVsPenalty) -> (String, String, String) {
    let r = &run.doc.regularization;
    let optimizer = run.optimizer();
    let opt_name = optimizer_name(optimizer);
    let wd = w.weight_decay;
    let mut evidence = format!(
        "{opt_name} adds wd·θ = {}·θ to every parameter's gradient before its update: the gradient \
         of (wd/2)·Σ‖θ‖² over all parameters, biases included.",
        num(wd)
    );
    if let Some(implied) = w.implied {
        evidence += &format!(
            " That implied L2 term is {} at epoch {}",
            num(implied.implied),
            implied.epoch
        );
        match implied.share() {
            Some((base, share)) => {
                evidence += &format!(
                    " against a base loss of {} ({} of their sum).",
                    num(base),
                    pct(share)
                );
            }
            None => evidence += ".",
        }
    }
    if optimizer != OptimizerKind::Sgd {
        evidence += &format!(
            " Under {opt_name} that gradient is then rescaled per parameter by the adaptive step, \
             exactly as an explicit penalty's would be; AdamW's decoupled decay is what avoids it."
        );
    }
    if run.penalty_active() {
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
}

/// Title, evidence and advice for a squared-norm penalty under an optimizer that decouples
/// weight decay.
fn squared_penalty_decoupled(run: &Run, equivalent: f64) -> (String, String, String) {
    let opt_name = optimizer_name(run.optimizer());
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
}

/// Title, evidence and advice for a squared-norm penalty, which coupled weight decay equals.
fn squared_penalty(run: &Run, divisor: f64, equivalent: f64) -> (String, String, String) {
    let r = &run.doc.regularization;
    let opt_name = optimizer_name(run.optimizer());
    let biases = if r.penalize_bias {
        "; with --penalize-bias the biases are included too, as weight decay does"
    } else {
        "; weight decay would also decay the biases, which this penalty leaves alone"
    };
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

/// Title, evidence and advice for batch-l2 without weight decay.
fn batch_l2(run: &Run) -> (String, String, String) {
    (
        "No weight decay equals this batch-l2 penalty: it pulls each user or item once per rating in the batch".into(),
        format!(
            "batch-l2 with λ = {} penalizes ‖p_u‖² + ‖q_i‖² for every rating in a batch, divided by \
             |B|: users and items with many ratings are pulled harder than rare ones. Weight decay \
             pulls every row equally, whether it was used in the batch or not.",
            num(run.doc.regularization.lambda)
        ),
        format!(
            "To compare with weight decay, use {} rather than batch-l2.",
            run.l2_flags()
        ),
    )
}

/// Title, evidence and advice for L1 or the unsquared norm without weight decay.
fn not_squared(run: &Run, kind: PenaltyKind) -> (String, String, String) {
    (
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
        format!(
            "Weight decay corresponds to the l2 form only; compare with {}.",
            run.l2_flags()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{explain, FindingKind, Run};
    use super::*;
    use serde_json::{json, Value};

    fn detected(pairs: &[(&str, Value)]) -> Option<WeightDecayVsPenalty> {
        detect(&Run::new(&document(
            &mf(pairs),
            mf_dataset(),
            batch_l2_epochs(),
        )))
    }

    #[test]
    fn the_case_follows_the_optimizer_and_the_penalty() {
        assert_eq!(detected(&[]), None);
        let wd = json!("1e-4");
        let coupled = detected(&[("weight_decay", wd.clone())]).unwrap();
        assert_eq!(coupled.case, DecayCase::Coupled);
        assert_eq!(coupled.implied.map(|i| i.epoch), Some(6));
        let adamw = detected(&[("optimizer", json!("adamw")), ("weight_decay", wd)]).unwrap();
        let DecayCase::Decoupled(Some(per_epoch)) = adamw.case else {
            panic!("{:?}", adamw.case)
        };
        // 80,000 ratings in batches of 1,024.
        assert_eq!((per_epoch.steps, per_epoch.epochs), (79.0, 6));
        let l2 = [("penalty", json!("l2")), ("lambda", json!("8"))];
        let sgd = detected(&[&l2[..], &[("optimizer", json!("sgd"))]].concat()).unwrap();
        assert_eq!(
            sgd.case,
            DecayCase::SquaredPenalty {
                divisor: 80000.0,
                equivalent: 1e-4,
                decoupled: false
            }
        );
        let adamw = detected(&[&l2[..], &[("optimizer", json!("adamw"))]].concat()).unwrap();
        assert!(matches!(
            adamw.case,
            DecayCase::SquaredPenalty {
                decoupled: true,
                ..
            }
        ));
        let norm = detected(&[("penalty", json!("norm")), ("lambda", json!("1"))]).unwrap();
        assert_eq!(norm.case, DecayCase::NotSquared(PenaltyKind::Norm));
    }

    #[test]
    fn the_implied_share_needs_a_positive_sum() {
        let implied = |implied, base| ImpliedLoss {
            epoch: 1,
            implied,
            base,
        };
        assert_eq!(implied(1.0, Some(3.0)).share(), Some((3.0, 0.25)));
        assert_eq!(implied(0.0, Some(0.0)).share(), None);
        assert_eq!(implied(1.0, Some(f64::NAN)).share(), None);
        assert_eq!(implied(1.0, None).share(), None);
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
}

//! A penalty that is a tiny or dominant part of the training loss.

use super::weight_norms::collapsed;
use super::wording::{num, pct, series};
use super::{numbers, Finding, FindingKind, Run, Severity};

/// A penalty below this share of the training loss (last epoch) barely changes the
/// gradient: λ is too weak to matter, or the weights it acts on have collapsed.
pub const SHARE_TINY: f64 = 0.01;
/// A penalty above this share (last epoch) outweighs the data term: the optimum it is
/// heading for is mostly "small weights", not "fit the data".
pub const SHARE_DOMINANT: f64 = 0.5;

/// Which side of the share thresholds the last epoch fell on.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum ShareVerdict {
    /// Above [`SHARE_DOMINANT`].
    Dominant,
    /// Below [`SHARE_TINY`] with every weight tensor still its size: λ is too weak.
    Tiny,
    /// Below [`SHARE_TINY`] because these weight tensors collapsed: λ is too strong.
    TinyCollapsed(Vec<String>),
}

/// A penalty share past one of the thresholds at the last epoch.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct PenaltyShare {
    /// The penalty's share of the training loss per epoch.
    pub shares: Vec<(usize, f64)>,
    pub last: (usize, f64),
    pub largest: (usize, f64),
    pub verdict: ShareVerdict,
}

pub(super) fn detect(run: &Run) -> Option<PenaltyShare> {
    if !run.penalty_active() {
        return None;
    }
    let shares = run.shares();
    let last = *shares.last()?;
    let largest = shares
        .iter()
        .copied()
        .reduce(|a, b| if b.1 > a.1 { b } else { a })?;
    let verdict = if last.1 > SHARE_DOMINANT {
        ShareVerdict::Dominant
    } else if last.1 < SHARE_TINY {
        let names: Vec<String> = collapsed(run).into_iter().map(|c| c.name).collect();
        if names.is_empty() {
            ShareVerdict::Tiny
        } else {
            ShareVerdict::TinyCollapsed(names)
        }
    } else {
        return None;
    };
    Some(PenaltyShare {
        shares,
        last,
        largest,
        verdict,
    })
}

pub(super) fn describe(run: &Run, share: &PenaltyShare) -> Finding {
    Finding {
        kind: FindingKind::PenaltyShare,
        severity: Severity::Warning,
        title: title(run, share),
        evidence: evidence(run, share),
        advice: advice(run, share),
        numbers: numbers(&[
            ("last_epoch", share.last.0 as f64),
            ("share_at_last", share.last.1),
            ("largest_share", share.largest.1),
            ("largest_share_epoch", share.largest.0 as f64),
        ]),
    }
}

fn title(run: &Run, share: &PenaltyShare) -> String {
    let (last, lambda) = (share.last, num(run.doc.regularization.lambda));
    match &share.verdict {
        ShareVerdict::Dominant => format!(
            "The penalty is {} of the training loss at epoch {}: λ = {lambda} is likely too strong",
            pct(last.1),
            last.0,
        ),
        ShareVerdict::Tiny => format!(
            "The penalty is only {} of the training loss at epoch {}: λ = {lambda} is too weak to matter",
            pct(last.1),
            last.0,
        ),
        ShareVerdict::TinyCollapsed(_) => format!(
            "The penalty is only {} of the training loss at epoch {} because the weights it acts on collapsed: λ = {lambda} is too strong",
            pct(last.1),
            last.0,
        ),
    }
}

fn evidence(run: &Run, share: &PenaltyShare) -> String {
    let shown = series(&share.shares, pct);
    let held = run
        .held_out_phrase()
        .map(|p| format!(" Held out: {p}."))
        .unwrap_or_default();
    match &share.verdict {
        ShareVerdict::Dominant | ShareVerdict::Tiny => {
            format!("The penalty's share of the training loss: {shown}.{held}")
        }
        ShareVerdict::TinyCollapsed(names) => format!(
            "The penalty's share of the training loss: {shown}; largest {} at epoch {}. \
             Collapsed: {} (see the weight-norms finding).{held}",
            pct(share.largest.1),
            share.largest.0,
            names.join(", ")
        ),
    }
}

fn advice(run: &Run, share: &PenaltyShare) -> String {
    let lambda = run.doc.regularization.lambda;
    match &share.verdict {
        ShareVerdict::Dominant => format!(
            "A penalty above {} of the loss outweighs the data: the optimum it heads for is mostly \
             small weights. Lower λ 3 to 10 times (e.g. {}) and keep the value with the best \
             held-out {}.",
            pct(SHARE_DOMINANT),
            run.rerun(&format!("lambda={}", num(lambda / 3.0))),
            run.metric_label()
        ),
        ShareVerdict::Tiny => format!(
            "A penalty under {} of the loss barely changes the gradient, so the run is \
             close to unregularized. Raise λ 3 to 10 times (e.g. {}) if the held-out curve \
             turns up, or drop the penalty.",
            pct(SHARE_TINY),
            run.rerun(&format!("lambda={}", num(lambda * 10.0)))
        ),
        ShareVerdict::TinyCollapsed(_) => format!(
            "A tiny penalty on collapsed weights means λ won: the weights were pulled to \
             about zero and the model lost what they carried. Lower λ 3 to 10 times \
             (e.g. {}).",
            run.rerun(&format!("lambda={}", num(lambda / 10.0)))
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{explain, FindingKind, Run, Severity};
    use super::*;
    use crate::schema::EpochRecord;
    use serde_json::json;

    /// `batch_l2_epochs` with the penalty at `share` of the training loss in every epoch.
    fn at_share(share: f64) -> Vec<EpochRecord> {
        let mut epochs = batch_l2_epochs();
        for e in &mut epochs {
            let base = e.train["base_loss"];
            let reg = base * share / (1.0 - share);
            e.train.insert("reg_loss".into(), reg);
            e.train.insert("total_loss".into(), base + reg);
        }
        epochs
    }

    fn verdict(share: f64) -> Option<ShareVerdict> {
        let pairs = mf(&[("penalty", json!("batch-l2")), ("lambda", json!("0.1"))]);
        let doc = document(&pairs, mf_dataset(), at_share(share));
        detect(&Run::new(&doc)).map(|s| s.verdict)
    }

    #[test]
    fn the_last_share_is_judged_against_both_thresholds() {
        assert_eq!(verdict(SHARE_TINY * 0.99), Some(ShareVerdict::Tiny));
        assert_eq!(verdict(SHARE_TINY * 1.01), None);
        assert_eq!(verdict(SHARE_DOMINANT * 0.99), None);
        assert_eq!(verdict(SHARE_DOMINANT * 1.01), Some(ShareVerdict::Dominant));
    }

    #[test]
    fn a_tiny_share_names_the_collapsed_tensors() {
        let mut epochs = at_share(SHARE_TINY * 0.5);
        for e in &mut epochs[1..] {
            e.weight_norms.insert("user_factors".into(), 0.1);
        }
        let pairs = mf(&[("penalty", json!("batch-l2")), ("lambda", json!("1"))]);
        let share = detect(&Run::new(&document(&pairs, mf_dataset(), epochs))).unwrap();
        assert_eq!(
            share.verdict,
            ShareVerdict::TinyCollapsed(vec!["user_factors".into()])
        );
        assert_eq!(share.last.0, 6);
    }

    #[test]
    fn no_penalty_has_no_share() {
        let doc = document(&mf(&[]), mf_dataset(), at_share(0.9));
        assert_eq!(detect(&Run::new(&doc)), None);
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
}

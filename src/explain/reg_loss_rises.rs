//! The regularization loss rises while the total falls: the trade-off, with the share.

use super::penalty_share::{SHARE_DOMINANT, SHARE_TINY};
use super::wording::{num, pct, series, sign};
use super::{numbers, Finding, FindingKind, Run, Severity, TrainLosses};
use crate::regularization::PenaltyKind;

/// The regularization loss counts as rising when its last epoch is at least this factor
/// above its lowest epoch: smaller changes are the noise of epoch means.
pub const REG_RISE_FACTOR: f64 = 1.2;

/// A penalty that rose from its lowest epoch while the total loss fell.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RegLossRise {
    pub first: TrainLosses,
    /// The epoch with the lowest penalty.
    pub low: TrainLosses,
    pub last: TrainLosses,
    /// Last penalty ÷ lowest penalty, at least [`REG_RISE_FACTOR`].
    pub factor: f64,
    /// The penalty's share of the training loss per epoch.
    pub shares: Vec<(usize, f64)>,
}

pub(super) fn detect(run: &Run) -> Option<RegLossRise> {
    if !run.penalty_active() {
        return None;
    }
    let losses = run.train_losses();
    if losses.len() < 2 {
        return None;
    }
    let low = losses
        .iter()
        .copied()
        .reduce(|low, next| if next.reg < low.reg { next } else { low })?;
    let last = *losses.last()?;
    let first = losses[0];
    if last.epoch == low.epoch || !(last.reg >= REG_RISE_FACTOR * low.reg && last.reg > low.reg) {
        return None;
    }
    if last.total >= low.total {
        return None;
    }
    // A negligible penalty rising is noise, not a trade-off (the penalty-share finding says so).
    if last.total > 0.0 && last.reg / last.total < SHARE_TINY {
        return None;
    }
    Some(RegLossRise {
        first,
        low,
        last,
        factor: last.reg / low.reg.max(f64::MIN_POSITIVE),
        shares: run.shares(),
    })
}

pub(super) fn describe(run: &Run, rise: &RegLossRise) -> Finding {
    let RegLossRise { low, last, .. } = *rise;
    let title = format!(
        "The regularization loss rose {:.1}× ({} → {}, epochs {}–{}) while the total loss fell ({} → {}): the expected trade-off",
        rise.factor,
        num(low.reg),
        num(last.reg),
        low.epoch,
        last.epoch,
        num(low.total),
        num(last.total)
    );
    let last_share = rise.shares.last().map_or(f64::NAN, |s| s.1);
    Finding {
        kind: FindingKind::RegLossRisesTotalFalls,
        severity: Severity::Info,
        title,
        evidence: evidence(run, rise),
        advice: advice(run),
        numbers: numbers(&[
            ("low_epoch", low.epoch as f64),
            ("reg_at_low", low.reg),
            ("base_at_low", low.base),
            ("total_at_low", low.total),
            ("last_epoch", last.epoch as f64),
            ("reg_at_last", last.reg),
            ("base_at_last", last.base),
            ("total_at_last", last.total),
            ("reg_factor", rise.factor),
            ("share_at_last", last_share),
        ]),
    }
}

fn evidence(run: &Run, rise: &RegLossRise) -> String {
    let RegLossRise {
        first, low, last, ..
    } = *rise;
    let mut evidence = String::from("Training epoch means (what the gradient saw): ");
    if low.epoch != first.epoch {
        evidence += &format!(
            "the regularization loss first fell from {} (epoch {}) to {} (epoch {}), then rose to {} (epoch {}); ",
            num(first.reg),
            first.epoch,
            num(low.reg),
            low.epoch,
            num(last.reg),
            last.epoch
        );
    } else {
        evidence += &format!(
            "the regularization loss rose from {} (epoch {}) to {} (epoch {}); ",
            num(low.reg),
            low.epoch,
            num(last.reg),
            last.epoch
        );
    }
    let (base_change, total_change) = (last.base - low.base, last.total - low.total);
    evidence += &format!(
        "over the same epochs the base loss went {} → {} ({}{}) and the total {} → {} ({}{}), \
         so the base fell more than the penalty rose (+{}).",
        num(low.base),
        num(last.base),
        sign(base_change),
        num(base_change.abs()),
        num(low.total),
        num(last.total),
        sign(total_change),
        num(total_change.abs()),
        num(last.reg - low.reg),
    );
    evidence += &format!(
        " The penalty's share of the total: {}.",
        series(&rise.shares, pct)
    );
    let norms = run.norm_curve();
    let norm_at = |epoch| norms.iter().find(|p| p.0 == epoch).map(|p| p.1);
    if let (Some(a), Some(b)) = (norm_at(low.epoch), norm_at(last.epoch)) {
        evidence += &format!(
            " The penalized {}' norm √Σ‖W‖² went {} → {}: the penalty grows with its square.",
            run.penalized_names(),
            num(a),
            num(b)
        );
    }
    evidence
}

fn advice(run: &Run) -> String {
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
    advice
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{explain, FindingKind, Run, Severity};
    use super::*;
    use crate::schema::EpochRecord;
    use serde_json::json;

    /// `batch_l2_epochs` with the training penalty of each epoch replaced by `reg` (the total
    /// follows).
    fn with_reg(reg: &[f64]) -> Vec<EpochRecord> {
        let mut epochs = batch_l2_epochs();
        for (e, &value) in epochs.iter_mut().zip(reg) {
            let base = e.train["base_loss"];
            e.train.insert("reg_loss".into(), value);
            e.train.insert("total_loss".into(), base + value);
        }
        epochs
    }

    fn detected(epochs: Vec<EpochRecord>) -> Option<RegLossRise> {
        let pairs = mf(&[("penalty", json!("batch-l2")), ("lambda", json!("0.1"))]);
        detect(&Run::new(&document(&pairs, mf_dataset(), epochs)))
    }

    #[test]
    fn the_rise_must_reach_the_factor_from_the_lowest_epoch() {
        let low = 0.1;
        let below = detected(with_reg(&[
            0.2,
            low,
            0.11,
            0.11,
            0.11,
            low * REG_RISE_FACTOR * 0.99,
        ]));
        assert_eq!(below, None);
        let rise = detected(with_reg(&[
            0.2,
            low,
            0.11,
            0.11,
            0.11,
            low * REG_RISE_FACTOR * 1.01,
        ]))
        .unwrap();
        assert_eq!(
            (rise.first.epoch, rise.low.epoch, rise.last.epoch),
            (1, 2, 6)
        );
        assert!((rise.factor - REG_RISE_FACTOR * 1.01).abs() < 1e-12);
        assert_eq!(rise.shares.len(), 6);
    }

    #[test]
    fn a_rise_under_a_tiny_share_or_a_rising_total_is_not_the_trade_off() {
        // The penalty triples, but stays under SHARE_TINY of the total (base 0.59 last).
        let tiny = 0.59 * SHARE_TINY * 0.9;
        assert_eq!(
            detected(with_reg(&[
                tiny,
                tiny / 3.0,
                tiny / 3.0,
                tiny / 3.0,
                tiny / 3.0,
                tiny
            ])),
            None
        );
        // The penalty rises enough for the total to rise too.
        assert_eq!(detected(with_reg(&[0.1, 0.1, 0.1, 0.1, 0.1, 2.0])), None);
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
}

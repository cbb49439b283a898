//! Weight tensors that collapsed (warning), or the penalized weights' norm growing (note).

use super::wording::{count, num, pct, series};
use super::{numbers, Finding, FindingKind, Run, Severity};
use crate::config::ModelSpec;
use crate::regularization::{PenaltyKind, PenaltyScale};

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

/// What a collapsed tensor's norm is compared with.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum NormReference {
    /// MF factors drawn from N(0, init_std²): `rows × dim` of them.
    Gaussian { init_std: f64, rows: f64, dim: i64 },
    /// An MLP weight, uniform in ±1/√fan_in as torch.nn.Linear.
    Linear { fan_out: f64 },
    /// No known initialization: the largest norm recorded, from `first_epoch` on.
    Largest { first_epoch: usize },
}

impl NormReference {
    /// How the reference norm follows from the configuration.
    fn how(&self) -> String {
        match self {
            NormReference::Gaussian {
                init_std,
                rows,
                dim,
            } => format!("init_std {} × √({} × {dim})", num(*init_std), count(*rows)),
            NormReference::Linear { fan_out } => {
                format!("√(fan_out / 3) = √({} / 3)", count(*fan_out))
            }
            NormReference::Largest { first_epoch } => {
                format!("its largest recorded norm (from epoch {first_epoch} on)")
            }
        }
    }
}

/// A weight tensor that ended near zero.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Collapsed {
    pub name: String,
    /// The last epoch, where `norm` was recorded.
    pub epoch: usize,
    pub norm: f64,
    /// Its expected norm at initialization, or its largest recorded one.
    pub reference: f64,
    pub reference_kind: NormReference,
}

/// The penalized weights' norm over the run, grown past [`NORM_GROWTH_FACTOR`].
#[derive(Debug, Clone, PartialEq)]
pub(super) struct NormGrowth {
    /// (epoch, √Σ‖W‖²) of the penalized tensors.
    pub norms: Vec<(usize, f64)>,
    pub first: (usize, f64),
    pub last: (usize, f64),
    /// Last norm ÷ first norm.
    pub factor: f64,
    /// The last epoch's relative change.
    pub last_growth: f64,
    /// The last epoch grew less than [`NORM_SETTLED_PER_EPOCH`].
    pub settled: bool,
}

/// Collapsed tensors take precedence over growth.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum WeightNorms {
    Collapsed(Vec<Collapsed>),
    Growing(NormGrowth),
}

pub(super) fn detect(run: &Run) -> Option<WeightNorms> {
    let collapsed = collapsed(run);
    if !collapsed.is_empty() {
        return Some(WeightNorms::Collapsed(collapsed));
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
    Some(WeightNorms::Growing(NormGrowth {
        first,
        last,
        factor,
        last_growth,
        settled: last_growth < NORM_SETTLED_PER_EPOCH,
        norms,
    }))
}

/// Weight tensors that ended at or below [`NORM_COLLAPSE_FRACTION`] of their initial size
/// (or of their largest recorded norm).
pub(super) fn collapsed(run: &Run) -> Vec<Collapsed> {
    let Some(last) = run.epochs.last() else {
        return Vec::new();
    };
    let mut collapsed = Vec::new();
    for (name, &norm) in &last.weight_norms {
        if Run::is_bias(name) || !norm.is_finite() {
            continue;
        }
        let reference = initial_norm(run, name).or_else(|| {
            let largest = run
                .epochs
                .iter()
                .filter_map(|e| e.weight_norms.get(name).copied())
                .filter(|v| v.is_finite())
                .fold(0.0, f64::max);
            let first_epoch = run.epochs.first()?.epoch;
            (largest > 0.0).then_some((largest, NormReference::Largest { first_epoch }))
        });
        if let Some((reference, reference_kind)) = reference {
            if norm <= NORM_COLLAPSE_FRACTION * reference {
                collapsed.push(Collapsed {
                    name: name.clone(),
                    epoch: last.epoch,
                    norm,
                    reference,
                    reference_kind,
                });
            }
        }
    }
    collapsed
}

/// The expected norm of a weight tensor at initialization: MF factors are N(0, init_std²)
/// (norm init_std·√(rows·dim)); MLP weights are uniform in ±1/√fan_in as torch.nn.Linear
/// (norm √(fan_out/3)).
fn initial_norm(run: &Run, name: &str) -> Option<(f64, NormReference)> {
    match &run.doc.config.model {
        ModelSpec::Mf(spec) => {
            let rows = match name {
                "user_factors" => run.dataset_number(&["users"])?,
                "item_factors" => run.dataset_number(&["items"])?,
                _ => return None,
            };
            let norm = spec.init_std * (rows * spec.dim as f64).sqrt();
            (norm > 0.0).then_some((
                norm,
                NormReference::Gaussian {
                    init_std: spec.init_std,
                    rows,
                    dim: spec.dim,
                },
            ))
        }
        ModelSpec::Mlp(spec) => {
            let layer: usize = name
                .strip_prefix("l_layers.")?
                .strip_suffix(".weight")?
                .parse()
                .ok()?;
            let classes = run.dataset_number(&["classes"])?;
            let fan_out = match spec.hidden.get(layer) {
                Some(&size) => size as f64,
                None if layer == spec.hidden.len() => classes,
                None => return None,
            };
            Some(((fan_out / 3.0).sqrt(), NormReference::Linear { fan_out }))
        }
    }
}

pub(super) fn describe(run: &Run, norms: &WeightNorms) -> Finding {
    match norms {
        WeightNorms::Collapsed(collapsed) => describe_collapsed(run, collapsed),
        WeightNorms::Growing(growth) => describe_growth(run, growth),
    }
}

fn describe_collapsed(run: &Run, collapsed: &[Collapsed]) -> Finding {
    let what_is_left = match run.doc.config.model {
        ModelSpec::Mf(_) => "what is left predicts from the biases (μ + b_u + b_i) alone",
        ModelSpec::Mlp(_) => "what is left cannot separate the classes",
    };
    Finding {
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
        evidence: collapsed_evidence(run, collapsed),
        advice: collapsed_advice(run, what_is_left),
        numbers: collapsed
            .iter()
            .flat_map(|c| {
                [
                    (format!("{}.last", c.name), c.norm),
                    (format!("{}.initial", c.name), c.reference),
                ]
            })
            .collect(),
    }
}

fn collapsed_evidence(run: &Run, collapsed: &[Collapsed]) -> String {
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
                c.reference_kind.how(),
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
    let mut evidence = format!("{}. {cause}", parts.join("; "));
    if let Some(held) = run.held_out_phrase() {
        evidence += &format!(" Held out: {held}.");
    }
    evidence
}

fn collapsed_advice(run: &Run, what_is_left: &str) -> String {
    if !(run.penalty_active() || run.weight_decay() != 0.0) {
        return format!("{what_is_left}; lower --lr or check the data and the activation.");
    }
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
        advice += &format!(
            " The unsquared norm penalty pulls every matrix with a unit-size gradient whatever \
             its size; with no divisor λ must be small (about 0.01), or use the squared form \
             ({}).",
            run.l2_flags()
        );
    }
    advice
}

fn describe_growth(run: &Run, g: &NormGrowth) -> Finding {
    let names = run.penalized_names();
    let title = format!(
        "The {names}' norm grew {:.1}× ({} → {}, epochs {}–{}){}",
        g.factor,
        num(g.first.1),
        num(g.last.1),
        g.first.0,
        g.last.0,
        if g.settled {
            " and has levelled off"
        } else {
            " and is still growing"
        }
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
    Finding {
        kind: FindingKind::WeightNorms,
        severity: Severity::Info,
        title,
        evidence: growth_evidence(run, g),
        advice,
        numbers: numbers(&[
            ("first_epoch", g.first.0 as f64),
            ("norm_at_first", g.first.1),
            ("last_epoch", g.last.0 as f64),
            ("norm_at_last", g.last.1),
            ("growth_factor", g.factor),
            ("last_epoch_growth", g.last_growth),
        ]),
    }
}

fn growth_evidence(run: &Run, g: &NormGrowth) -> String {
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
    format!(
        "√Σ‖W‖² over the {}: {}; {} in the last epoch. Per tensor: {}. Regularization: {}.",
        run.penalized_names(),
        series(&g.norms, num),
        if g.last_growth >= 0.0 {
            format!("+{}", pct(g.last_growth))
        } else {
            pct(g.last_growth)
        },
        per_tensor.join(", "),
        run.regularization_phrase()
    )
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::Run;
    use super::*;
    use crate::schema::EpochRecord;
    use serde_json::json;

    /// Unregularized MF epochs whose factor norms (user, item) are `norms`.
    fn with_norms(norms: &[(f64, f64)]) -> Vec<EpochRecord> {
        norms
            .iter()
            .enumerate()
            .map(|(i, &n)| mf_epoch(i + 1, (0.8, 0.0, 0.9), 0.95, n))
            .collect()
    }

    fn detected(epochs: Vec<EpochRecord>) -> Option<WeightNorms> {
        detect(&Run::new(&document(&mf(&[]), mf_dataset(), epochs)))
    }

    /// The initial norm of MF's user factors in `mf_dataset`: 0.1 × √(943 × 16).
    fn user_initial() -> f64 {
        0.1 * (943.0f64 * 16.0).sqrt()
    }

    #[test]
    fn a_norm_at_the_collapse_fraction_of_its_start_has_collapsed() {
        let edge = NORM_COLLAPSE_FRACTION * user_initial();
        let above = detected(with_norms(&[(13.0, 20.0), (edge * 1.01, 20.0)]));
        assert!(
            !matches!(above, Some(WeightNorms::Collapsed(_))),
            "{above:?}"
        );
        let Some(WeightNorms::Collapsed(collapsed)) =
            detected(with_norms(&[(13.0, 20.0), (edge * 0.99, 20.0)]))
        else {
            panic!("no collapse")
        };
        assert_eq!(collapsed.len(), 1);
        assert_eq!(
            (collapsed[0].name.as_str(), collapsed[0].epoch),
            ("user_factors", 2)
        );
        assert!((collapsed[0].reference - user_initial()).abs() < 1e-9);
        assert!(matches!(
            collapsed[0].reference_kind,
            NormReference::Gaussian { dim: 16, .. }
        ));
    }

    #[test]
    fn growth_is_reported_from_the_growth_factor_and_settles_below_its_rate() {
        // √(a² + b²) of the penalized factors: scale both by the same factor.
        let start = (12.0, 16.0);
        let scaled = |k: f64| (start.0 * k, start.1 * k);
        let below = NORM_GROWTH_FACTOR * 0.99;
        assert_eq!(
            detected(with_norms(&[start, scaled(1.5), scaled(below)])),
            None
        );
        let above = NORM_GROWTH_FACTOR * 1.01;
        let Some(WeightNorms::Growing(growing)) =
            detected(with_norms(&[start, scaled(1.5), scaled(above)]))
        else {
            panic!("no growth")
        };
        assert!((growing.factor - above).abs() < 1e-12);
        assert!(!growing.settled);
        let settle = 1.0 + NORM_SETTLED_PER_EPOCH * 0.9;
        let Some(WeightNorms::Growing(settled)) =
            detected(with_norms(&[start, scaled(above), scaled(above * settle)]))
        else {
            panic!("no growth")
        };
        assert!(settled.settled);
        assert!((settled.last_growth - NORM_SETTLED_PER_EPOCH * 0.9).abs() < 1e-12);
    }

    #[test]
    fn without_an_initialization_the_largest_recorded_norm_is_the_reference() {
        // An MLP whose dataset does not say its classes: the output layer's initial norm is
        // unknown.
        let mut doc = mlp_doc();
        doc.dataset = json!({"train_used": 10000, "test_used": 2000});
        let last = doc.epochs.len() - 1;
        doc.epochs[last]
            .weight_norms
            .insert("l_layers.1.weight".into(), 0.05);
        let run = Run::new(&doc);
        let collapsed = collapsed(&run);
        assert_eq!(collapsed.len(), 1, "{collapsed:?}");
        assert_eq!(
            collapsed[0].reference_kind,
            NormReference::Largest { first_epoch: 1 }
        );
        assert_eq!(collapsed[0].reference, 7.3 + 3.0);
    }
}

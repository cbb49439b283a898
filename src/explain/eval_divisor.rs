//! The test cost as trained (penalty ÷ training-set size) next to the cost a user computes
//! dividing the penalty by the evaluation set's size, derived from the recorded norms.

use super::wording::{count, num, sample};
use super::{numbers, Finding, FindingKind, Run, Severity, Split};
use crate::regularization::{PenaltyKind, PenaltyScale};

/// One epoch of the test cost computed two ways.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct TwoCosts {
    pub epoch: usize,
    /// Σ‖W‖² of the penalized tensors (NaN when a norm is missing).
    pub squares: f64,
    pub base: f64,
    /// The penalty divided by the training set's size, as the gradient saw it.
    pub penalty_trained: f64,
    /// The same penalty divided by the evaluation set's size.
    pub penalty_eval: f64,
}

impl TwoCosts {
    fn trained(&self) -> f64 {
        self.base + self.penalty_trained
    }

    fn eval(&self) -> f64 {
        self.base + self.penalty_eval
    }
}

/// A dataset-scaled penalty on a run whose test set differs in size from its training set.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct EvalDivisor {
    /// The penalty's divisor in training (the training set's size).
    pub divisor: f64,
    pub eval_size: f64,
    /// At least two epochs.
    pub costs: Vec<TwoCosts>,
}

impl EvalDivisor {
    fn first(&self) -> TwoCosts {
        self.costs[0]
    }

    fn last(&self) -> TwoCosts {
        self.costs[self.costs.len() - 1]
    }

    /// The evaluation-size cost moves the other way from the cost as trained.
    fn opposite(&self) -> bool {
        let (first, last) = (self.first(), self.last());
        (last.eval() > first.eval()) != (last.trained() > first.trained())
    }
}

/// The test cost per epoch as trained and with the evaluation set's divisor, for a run
/// the eval-divisor finding applies to: what `regulab plot` and `regulab report` draw.
#[derive(Debug, Clone, PartialEq)]
pub struct DivisorCosts {
    /// The penalty's divisor in training (the training set's size).
    pub train_size: f64,
    /// The evaluation (test) set's size.
    pub eval_size: f64,
    /// (epoch, test cost as trained, test cost with the penalty divided by `eval_size`).
    pub epochs: Vec<(usize, f64, f64)>,
}

/// The two test costs of a run whose dataset-scaled penalty would be divided by another
/// size on the test set; `None` when the finding does not apply.
pub fn divisor_costs(doc: &crate::schema::RunDocument) -> Option<DivisorCosts> {
    let d = detect(&Run::new(doc))?;
    Some(DivisorCosts {
        train_size: d.divisor,
        eval_size: d.eval_size,
        epochs: d
            .costs
            .iter()
            .map(|c| (c.epoch, c.trained(), c.eval()))
            .collect(),
    })
}

pub(super) fn detect(run: &Run) -> Option<EvalDivisor> {
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
    (costs.len() >= 2).then_some(EvalDivisor {
        divisor,
        eval_size,
        costs,
    })
}

fn moves(a: f64, b: f64) -> &'static str {
    if b > a {
        "rises"
    } else {
        "falls"
    }
}

fn rise_or_fall(a: f64, b: f64) -> &'static str {
    if b > a {
        "rise"
    } else {
        "fall"
    }
}

/// "L2 term" for the squared-norm penalty, "penalty" otherwise.
fn term(run: &Run) -> &'static str {
    if run.doc.regularization.penalty == PenaltyKind::Frobenius {
        "L2 term"
    } else {
        "penalty"
    }
}

pub(super) fn describe(run: &Run, d: &EvalDivisor) -> Finding {
    let (first, last) = (d.first(), d.last());
    Finding {
        kind: FindingKind::EvalDivisor,
        severity: Severity::Info,
        title: title(run, d),
        evidence: evidence(run, d),
        advice: advice(run, d),
        numbers: numbers(&[
            ("train_size", d.divisor),
            ("eval_size", d.eval_size),
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
    }
}

fn title(run: &Run, d: &EvalDivisor) -> String {
    let (first, last) = (d.first(), d.last());
    let term = term(run);
    if d.opposite() {
        format!(
            "Dividing the {term} by the test set's size ({}) instead of the training set's ({}) makes the test cost {} ({} → {}) while the cost as trained {} ({} → {})",
            count(d.eval_size),
            count(d.divisor),
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
            count(d.eval_size),
            count(d.divisor),
            num(last.eval()),
            num(last.trained()),
            last.epoch
        )
    }
}

fn evidence(run: &Run, d: &EvalDivisor) -> String {
    let r = &run.doc.regularization;
    let term = term(run);
    let label = run.metric_label();
    let lines: Vec<String> = sample(&d.costs)
        .iter()
        .map(|c| {
            let squares = if c.squares.is_finite() {
                format!("Σ‖W‖² {}, ", num(c.squares))
            } else {
                String::new()
            };
            let metric = run
                .at(Split::Test, &run.metric.name, c.epoch)
                .map(|v| format!("; test {label} {}", num(v)))
                .unwrap_or_default();
            format!(
                "epoch {}: {squares}test base {}, {term} ÷ {} = {} → cost as trained {}; {term} ÷ {} = {} → cost {}{metric}",
                c.epoch,
                num(c.base),
                count(d.divisor),
                num(c.penalty_trained),
                num(c.trained()),
                count(d.eval_size),
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
    let words = run.example_word();
    format!(
        "Training minimized the base cost + {formula} and n = {} training {words}. Dividing by the \
         {} test {words} instead multiplies that term by {}.\n{}",
        count(d.divisor),
        count(d.eval_size),
        num(d.divisor / d.eval_size),
        lines.join("\n")
    )
}

fn advice(run: &Run, d: &EvalDivisor) -> String {
    let (first, last) = (d.first(), d.last());
    let metric = &run.metric.name;
    format!(
        "Nothing is wrong with the model: a cost that climbs only through the weight term, while \
         the base cost {} and test {} moves {}, is a reporting artifact. Divide the penalty by \
         the training set's size wherever you report the cost (the divisor the gradient used), or \
         report the base cost and the penalty separately as the run document does (test.base_loss, \
         test.reg_loss). A cost evaluated on another set is comparable across sets only without \
         the penalty.",
        moves(first.base, last.base),
        run.metric_label(),
        match run.at(Split::Test, metric, last.epoch) {
            Some(v) => match run.at(Split::Test, metric, first.epoch) {
                Some(s) => format!("{} → {}", num(s), num(v)),
                None => num(v),
            },
            None => "as it does".into(),
        }
    )
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{explain, format_number, FindingKind, Run, Severity};
    use super::*;
    use serde_json::json;

    #[test]
    fn the_two_costs_differ_by_the_ratio_of_the_set_sizes() {
        let d = detect(&Run::new(&mlp_doc())).unwrap();
        assert_eq!((d.divisor, d.eval_size), (10000.0, 2000.0));
        assert_eq!(d.costs.len(), 4);
        for c in &d.costs {
            assert!((c.penalty_eval - 5.0 * c.penalty_trained).abs() < 1e-12);
            assert!((c.penalty_trained - 5.0 / 20000.0 * c.squares).abs() < 1e-15);
        }
        assert!(d.opposite());
    }

    #[test]
    fn sets_of_the_same_size_or_an_unscaled_penalty_have_no_second_cost() {
        let mut same = mlp_doc();
        same.dataset["test_used"] = json!(10000);
        assert_eq!(detect(&Run::new(&same)), None);
        let mut unscaled = mlp_doc();
        unscaled.regularization.scale = PenaltyScale::None;
        assert_eq!(detect(&Run::new(&unscaled)), None);
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
}

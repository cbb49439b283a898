//! The lecture's second question, drawn: an MLP's test cost beside its test accuracy (on a
//! right axis). When the run's penalty is divided by the training set's size and the test
//! set has another size (the eval-divisor finding), the cost is drawn twice: as trained, and
//! with the penalty divided by the test set's size, the cost that climbs while the accuracy
//! rises.

use plotters::style::{RGBColor, BLACK};
use std::path::PathBuf;

use super::document::{PlotView, Split};
use super::figure::{Key, Line, Marker, Panel, Secondary, Stroke, XAxis, PALETTE};
use crate::explain::{divisor_costs, DivisorCosts};
use crate::schema::RunDocument;

/// The key of the cost as trained.
pub const COST_AS_TRAINED: &str = "test cost as trained";
/// The key of the cost with the evaluation set's divisor.
pub const COST_WITH_TEST_DIVISOR: &str = "test cost with the test set's divisor";

/// Test cost (left axis) and test accuracy (right axis) of every run that measured accuracy;
/// both costs where the eval-divisor finding applies.
pub(super) fn cost_accuracy_panel(
    runs: &[(PathBuf, RunDocument)],
    colors: &[RGBColor],
    epochs: &XAxis,
) -> Option<Panel> {
    let mut panel = Panel::new("test cost vs test accuracy", "test cost", epochs.clone());
    // One run: a colour per quantity. Several: the run's colour, a line style per quantity.
    let single = runs.len() == 1;
    let pick = |index: usize, run: RGBColor| if single { PALETTE[index] } else { run };
    let mut accuracy = Vec::new();
    let mut divisors: Vec<DivisorCosts> = Vec::new();
    for ((_, doc), &color) in runs.iter().zip(colors) {
        let accuracies = doc.curve(Split::Test, "accuracy");
        if accuracies.is_empty() {
            continue;
        }
        match divisor_costs(doc) {
            Some(costs) => {
                let at = |pick_cost: fn(&(usize, f64, f64)) -> f64| -> Vec<(f64, f64)> {
                    costs
                        .epochs
                        .iter()
                        .map(|c| (c.0 as f64, pick_cost(c)))
                        .collect()
                };
                panel
                    .lines
                    .push(line(at(|c| c.1), pick(0, color), Stroke::Solid));
                panel
                    .lines
                    .push(line(at(|c| c.2), pick(1, color), Stroke::LongDash));
                divisors.push(costs);
            }
            None => panel.lines.push(line(
                doc.curve(Split::Test, "total_loss"),
                pick(0, color),
                Stroke::Solid,
            )),
        }
        accuracy.push(Line {
            points: accuracies,
            color: pick(3, color),
            stroke: Stroke::Dashed,
            marker: Marker::Triangle,
        });
    }
    if accuracy.is_empty() {
        return None;
    }
    let key_color = |index: usize| if single { PALETTE[index] } else { BLACK };
    panel.keys = cost_keys(&divisors, key_color(0), key_color(1));
    panel.keys.push(Key {
        label: "test accuracy (right axis)".to_string(),
        color: key_color(3),
        stroke: Stroke::Dashed,
        marker: Marker::Triangle,
    });
    if !divisors.is_empty() {
        panel.title = "test cost, two divisors, vs test accuracy".to_string();
        // The figure's answer to the lecture's second question: room for its keys.
        panel.weight = 2;
    }
    panel.secondary = Some(Secondary {
        y_label: "test accuracy".to_string(),
        lines: accuracy,
    });
    Some(panel)
}

fn line(points: Vec<(f64, f64)>, color: RGBColor, stroke: Stroke) -> Line {
    let marker = if stroke == Stroke::Solid {
        Marker::Dot
    } else {
        Marker::None
    };
    Line {
        points,
        color,
        stroke,
        marker,
    }
}

/// The cost's keys: one "test cost" without the finding; else the cost as trained and the
/// cost with the test set's divisor, with the sizes when every run shares them.
fn cost_keys(divisors: &[DivisorCosts], trained: RGBColor, eval: RGBColor) -> Vec<Key> {
    let key = |label: String, color, stroke| Key {
        label,
        color,
        stroke,
        marker: if stroke == Stroke::Solid {
            Marker::Dot
        } else {
            Marker::None
        },
    };
    let Some(first) = divisors.first() else {
        return vec![key("test cost (left axis)".into(), trained, Stroke::Solid)];
    };
    let shared = divisors
        .iter()
        .all(|d| d.train_size == first.train_size && d.eval_size == first.eval_size);
    let (as_trained, with_test) = if shared {
        (
            format!("{COST_AS_TRAINED} (penalty ÷ {})", first.train_size),
            format!("{COST_WITH_TEST_DIVISOR} (÷ {})", first.eval_size),
        )
    } else {
        (
            format!("{COST_AS_TRAINED} (penalty ÷ training-set size)"),
            format!("{COST_WITH_TEST_DIVISOR} (÷ its size)"),
        )
    };
    vec![
        key(as_trained, trained, Stroke::Solid),
        key(with_test, eval, Stroke::LongDash),
    ]
}

//! The report's charts as data: one chart per question (train losses, the headline metric
//! on every split, a parameter's weight norm, ...), each with a series per run and part
//! (train, test, ...) aligned on a shared x axis, so that a run has the same colour in every
//! chart and its parts a line style of their own.

use crate::explain::divisor_costs;
use crate::schema::RunDocument;
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Which cursor group a chart belongs to: charts of a group show the same x position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Axis {
    Epoch,
    Step,
}

/// How a series is drawn; the run gives the colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum Stroke {
    Solid,
    Dashed,
    Dotted,
    LongDash,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct Series {
    /// The run's index in the page's runs.
    pub(super) run: usize,
    /// What the series is within the run ("train", "test"); empty when the chart has one
    /// series per run.
    pub(super) part: String,
    pub(super) dash: Stroke,
    /// On the right axis (`Chart::y2_label`).
    pub(super) right: bool,
    /// One per x; `None` where the run has no finite value.
    pub(super) values: Vec<Option<f64>>,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct Chart {
    pub(super) title: String,
    pub(super) y_label: String,
    /// The right axis's label, when some series are on it.
    pub(super) y2_label: Option<String>,
    pub(super) axis: Axis,
    pub(super) x: Vec<f64>,
    pub(super) series: Vec<Series>,
}

type Runs = [(PathBuf, RunDocument)];

/// A part of each run's chart: its name, line style, axis and values at an epoch index.
struct Part<'a> {
    name: &'a str,
    dash: Stroke,
    right: bool,
    value: ValueAt<'a>,
}

/// A part's value in a run document at an index into its epochs.
type ValueAt<'a> = Box<dyn Fn(&RunDocument, usize) -> Option<f64> + 'a>;

impl<'a> Part<'a> {
    fn new(
        name: &'a str,
        dash: Stroke,
        value: impl Fn(&RunDocument, usize) -> Option<f64> + 'a,
    ) -> Self {
        Part {
            name,
            dash,
            right: false,
            value: Box::new(value),
        }
    }

    fn on_the_right(mut self) -> Self {
        self.right = true;
        self
    }
}

/// Every chart the runs have data for. A series exists for each run and part with at
/// least one value; a chart exists when it has a series.
pub(super) fn build_charts(runs: &Runs) -> Vec<Chart> {
    let train =
        |key: &'static str| move |d: &RunDocument, e: usize| d.epochs[e].train.get(key).copied();
    let mut charts = vec![epoch_chart(
        runs,
        "train loss: total and base",
        "loss",
        vec![
            Part::new("total", Stroke::Solid, train("total_loss")),
            Part::new("base", Stroke::Dashed, train("base_loss")),
        ],
    )];
    // The regularization loss is small beside the total: its own chart gives it its own
    // scale, so that its early dip and its rise show.
    let regularized = runs.iter().any(|(_, d)| {
        d.epochs
            .iter()
            .any(|e| e.train.get("reg_loss").is_some_and(|v| *v != 0.0))
    });
    if regularized {
        charts.push(single_chart(
            runs,
            "train regularization loss",
            "loss",
            train("reg_loss"),
        ));
        charts.push(single_chart(
            runs,
            "penalty's share of the train total loss",
            "regularization / total (%)",
            |d, e| {
                let train = &d.epochs[e].train;
                let share = train.get("reg_loss")? / train.get("total_loss")?;
                Some(100.0 * share)
            },
        ));
    }
    if runs
        .iter()
        .any(|(_, d)| d.epochs.iter().any(|e| e.implied_weight_decay_loss != 0.0))
    {
        charts.push(single_chart(
            runs,
            "implied weight decay loss (not in the total)",
            "loss",
            |d, e| Some(d.epochs[e].implied_weight_decay_loss),
        ));
    }
    for metric in metric_names(runs) {
        charts.push(metric_chart(runs, &metric));
    }
    charts.extend(cost_chart(runs));
    for name in parameter_names(runs) {
        let title = format!("weight norm of {name}");
        charts.push(single_chart(runs, &title, "norm", |d, e| {
            d.epochs[e].weight_norms.get(&name).copied()
        }));
    }
    charts.extend(step_chart(runs));
    charts.retain(|c| !c.series.is_empty());
    charts
}

/// Train, validation and test values of a headline metric in one chart; the title names
/// the splits drawn.
fn metric_chart(runs: &Runs, metric: &str) -> Chart {
    let direction = runs
        .iter()
        .find(|(_, d)| d.metric.name == metric)
        .map_or("", |(_, d)| {
            if d.metric.higher_is_better {
                " (higher is better)"
            } else {
                " (lower is better)"
            }
        });
    let mut chart = epoch_chart(
        runs,
        "",
        &format!("{metric}{direction}"),
        vec![
            Part::new("train", Stroke::Dashed, |d, e| {
                d.epochs[e].train.get(metric).copied()
            }),
            Part::new("validation", Stroke::Dotted, |d, e| {
                d.epochs[e].validation.as_ref()?.get(metric).copied()
            }),
            Part::new("test", Stroke::Solid, |d, e| {
                d.epochs[e].test.as_ref()?.get(metric).copied()
            }),
        ],
    );
    let mut splits: Vec<&str> = Vec::new();
    for split in ["train", "validation", "test"] {
        if chart.series.iter().any(|s| s.part == split) {
            splits.push(split);
        }
    }
    chart.title = match splits.as_slice() {
        [one] => format!("{one} {metric}"),
        [first, second] => format!("{first} and {second} {metric}"),
        _ => format!("train, validation and test {metric}"),
    };
    chart
}

/// The MLP's test cost next to its test accuracy (right axis): the lecture's second
/// question. Where the eval-divisor finding applies, the cost as trained and the cost with
/// the test set's divisor, the one that climbs.
fn cost_chart(runs: &Runs) -> Option<Chart> {
    if !runs
        .iter()
        .any(|(_, d)| d.command == crate::config::ModelKind::Mlp)
    {
        return None;
    }
    let costs: Vec<Option<crate::explain::DivisorCosts>> =
        runs.iter().map(|(_, d)| divisor_costs(d)).collect();
    let divided = costs.iter().any(Option::is_some);
    let index_of = |d: &RunDocument| runs.iter().position(|(_, r)| std::ptr::eq(r, d));
    let test = |key: &'static str| {
        move |d: &RunDocument, e: usize| d.epochs[e].test.as_ref()?.get(key).copied()
    };
    // The finding's numbers where it applies (the cost as trained from the same norms as
    // the other), else the recorded test total.
    let with_divisor = |pick: fn(&(usize, f64, f64)) -> f64, or_recorded: bool| {
        let costs = &costs;
        move |d: &RunDocument, e: usize| {
            let epoch = d.epochs[e].epoch;
            match costs[index_of(d)?].as_ref() {
                Some(run) => run.epochs.iter().find(|c| c.0 == epoch).map(pick),
                None if or_recorded => test("total_loss")(d, e),
                None => None,
            }
        }
    };
    let mut parts = Vec::new();
    if divided {
        parts.push(Part::new(
            crate::plot::COST_AS_TRAINED,
            Stroke::Solid,
            with_divisor(|c| c.1, true),
        ));
        parts.push(Part::new(
            crate::plot::COST_WITH_TEST_DIVISOR,
            Stroke::LongDash,
            with_divisor(|c| c.2, false),
        ));
    } else {
        parts.push(Part::new("test cost", Stroke::Solid, test("total_loss")));
    }
    parts.push(Part::new("test accuracy", Stroke::Dashed, test("accuracy")).on_the_right());
    let title = if divided {
        "test cost (as trained and with the test set's divisor) and test accuracy"
    } else {
        "test cost (total loss) and test accuracy"
    };
    let mut chart = epoch_chart(runs, title, "test cost", parts);
    chart.y2_label = Some("test accuracy".to_string());
    Some(chart)
}

/// A chart with one series per run (no parts).
fn single_chart(
    runs: &Runs,
    title: &str,
    y_label: &str,
    value: impl Fn(&RunDocument, usize) -> Option<f64>,
) -> Chart {
    epoch_chart(
        runs,
        title,
        y_label,
        vec![Part::new("", Stroke::Solid, value)],
    )
}

/// A chart over epochs: for every run and part, `value(document, index into its epochs)`.
fn epoch_chart(runs: &Runs, title: &str, y_label: &str, parts: Vec<Part<'_>>) -> Chart {
    let epochs: BTreeSet<usize> = runs
        .iter()
        .flat_map(|(_, d)| d.epochs.iter().map(|e| e.epoch))
        .collect();
    let x: Vec<usize> = epochs.into_iter().collect();
    let mut series = Vec::new();
    for (run, (_, doc)) in runs.iter().enumerate() {
        for part in &parts {
            let values: Vec<Option<f64>> = x
                .iter()
                .map(|&epoch| {
                    let index = doc.epochs.iter().position(|e| e.epoch == epoch)?;
                    (part.value)(doc, index).filter(|v| v.is_finite())
                })
                .collect();
            if values.iter().any(Option::is_some) {
                series.push(Series {
                    run,
                    part: part.name.to_string(),
                    dash: part.dash,
                    right: part.right,
                    values,
                });
            }
        }
    }
    Chart {
        title: title.to_string(),
        y_label: y_label.to_string(),
        y2_label: None,
        axis: Axis::Epoch,
        x: x.into_iter().map(|e| e as f64).collect(),
        series,
    }
}

/// The train total loss at every logged step (`--log-every`), with the regularization
/// loss on its own right axis (its early dip is invisible on the total's scale).
fn step_chart(runs: &Runs) -> Option<Chart> {
    let steps: BTreeSet<usize> = runs
        .iter()
        .flat_map(|(_, d)| d.steps.iter().map(|s| s.step))
        .collect();
    if steps.is_empty() {
        return None;
    }
    let x: Vec<usize> = steps.into_iter().collect();
    let mut series = Vec::new();
    for (run, (_, doc)) in runs.iter().enumerate() {
        let at = |pick: fn(&crate::schema::StepRecord) -> f64| -> Vec<Option<f64>> {
            x.iter()
                .map(|&step| {
                    let record = doc.steps.iter().find(|s| s.step == step)?;
                    Some(pick(record)).filter(|v| v.is_finite())
                })
                .collect()
        };
        let total = at(|s| s.total_loss);
        if total.iter().any(Option::is_some) {
            series.push(Series {
                run,
                part: "total".to_string(),
                dash: Stroke::Solid,
                right: false,
                values: total,
            });
        }
        let reg = at(|s| s.reg_loss);
        if reg.iter().any(|v| v.is_some_and(|v| v != 0.0)) {
            series.push(Series {
                run,
                part: "regularization".to_string(),
                dash: Stroke::Dotted,
                right: true,
                values: reg,
            });
        }
    }
    let regularized = series.iter().any(|s| s.right);
    Some(Chart {
        title: if regularized {
            "train loss per logged step (one batch each): total, and regularization on the right"
        } else {
            "train total loss per logged step (one batch each)"
        }
        .to_string(),
        y_label: "total loss".to_string(),
        y2_label: regularized.then(|| "regularization loss".to_string()),
        axis: Axis::Step,
        x: x.into_iter().map(|s| s as f64).collect(),
        series,
    })
}

fn metric_names(runs: &Runs) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (_, doc) in runs {
        if !names.contains(&doc.metric.name) {
            names.push(doc.metric.name.clone());
        }
    }
    names
}

/// Parameter names in the order they first appear.
fn parameter_names(runs: &Runs) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (_, doc) in runs {
        for epoch in &doc.epochs {
            for name in epoch.weight_norms.keys() {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
    }
    names
}

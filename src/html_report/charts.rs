//! The report's charts as data: one chart per quantity (train total loss, test metric, a
//! parameter's weight norm, ...), each with one series per run aligned on a shared x axis,
//! so that a run has the same index (and colour) in every chart.

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

#[derive(Debug, Clone, Serialize)]
pub(super) struct Chart {
    pub(super) title: String,
    pub(super) y_label: String,
    pub(super) axis: Axis,
    pub(super) x: Vec<f64>,
    /// One per run, in the runs' order; `None` where a run has no finite value.
    pub(super) series: Vec<Vec<Option<f64>>>,
}

type Runs = [(PathBuf, RunDocument)];

/// Every chart the runs have data for. A chart exists when at least one run has a value
/// in it, and then holds a series for every run.
pub(super) fn build_charts(runs: &Runs) -> Vec<Chart> {
    let mut charts = Vec::new();
    charts.push(epoch_chart(runs, "train total loss", "loss", |d, e| {
        d.epochs[e].train.get("total_loss").copied()
    }));
    charts.push(epoch_chart(runs, "train base loss", "loss", |d, e| {
        d.epochs[e].train.get("base_loss").copied()
    }));
    let regularized = runs.iter().any(|(_, d)| {
        d.epochs
            .iter()
            .any(|e| e.train.get("reg_loss").is_some_and(|v| *v != 0.0))
    });
    if regularized {
        charts.push(epoch_chart(
            runs,
            "train regularization loss",
            "loss",
            |d, e| d.epochs[e].train.get("reg_loss").copied(),
        ));
        charts.push(epoch_chart(
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
        charts.push(epoch_chart(
            runs,
            "implied weight decay loss (not in the total)",
            "loss",
            |d, e| Some(d.epochs[e].implied_weight_decay_loss),
        ));
    }
    for metric in metric_names(runs) {
        charts.extend(metric_charts(runs, &metric));
    }
    if runs
        .iter()
        .any(|(_, d)| d.command == crate::config::ModelKind::Mlp)
    {
        // The lecture's question: the test cost can climb while the accuracy still rises.
        charts.push(epoch_chart(
            runs,
            "test cost (total loss)",
            "loss",
            |d, e| d.epochs[e].test.as_ref()?.get("total_loss").copied(),
        ));
    }
    for name in parameter_names(runs) {
        let title = format!("weight norm of {name}");
        charts.push(epoch_chart(runs, &title, "norm", |d, e| {
            d.epochs[e].weight_norms.get(&name).copied()
        }));
    }
    if let Some(steps) = step_chart(runs) {
        charts.push(steps);
    }
    charts.retain(|c| c.series.iter().flatten().any(Option::is_some));
    charts
}

/// Train, validation and test values of a headline metric, one chart each.
fn metric_charts(runs: &Runs, metric: &str) -> Vec<Chart> {
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
    let y_label = format!("{metric}{direction}");
    vec![
        epoch_chart(runs, &format!("train {metric}"), &y_label, |d, e| {
            d.epochs[e].train.get(metric).copied()
        }),
        epoch_chart(runs, &format!("validation {metric}"), &y_label, |d, e| {
            d.epochs[e].validation.as_ref()?.get(metric).copied()
        }),
        epoch_chart(runs, &format!("test {metric}"), &y_label, |d, e| {
            d.epochs[e].test.as_ref()?.get(metric).copied()
        }),
    ]
}

/// A chart over epochs: `value(document, index into its epochs)` for every run.
fn epoch_chart(
    runs: &Runs,
    title: &str,
    y_label: &str,
    value: impl Fn(&RunDocument, usize) -> Option<f64>,
) -> Chart {
    let epochs: BTreeSet<usize> = runs
        .iter()
        .flat_map(|(_, d)| d.epochs.iter().map(|e| e.epoch))
        .collect();
    let x: Vec<usize> = epochs.into_iter().collect();
    let series = runs
        .iter()
        .map(|(_, doc)| {
            x.iter()
                .map(|&epoch| {
                    let index = doc.epochs.iter().position(|e| e.epoch == epoch)?;
                    value(doc, index).filter(|v| v.is_finite())
                })
                .collect()
        })
        .collect();
    Chart {
        title: title.to_string(),
        y_label: y_label.to_string(),
        axis: Axis::Epoch,
        x: x.into_iter().map(|e| e as f64).collect(),
        series,
    }
}

/// The train total loss at every logged step (`--log-every`), when any run logged steps.
fn step_chart(runs: &Runs) -> Option<Chart> {
    let steps: BTreeSet<usize> = runs
        .iter()
        .flat_map(|(_, d)| d.steps.iter().map(|s| s.step))
        .collect();
    if steps.is_empty() {
        return None;
    }
    let x: Vec<usize> = steps.into_iter().collect();
    let series = runs
        .iter()
        .map(|(_, doc)| {
            x.iter()
                .map(|&step| {
                    let record = doc.steps.iter().find(|s| s.step == step)?;
                    Some(record.total_loss).filter(|v| v.is_finite())
                })
                .collect()
        })
        .collect();
    Some(Chart {
        title: "train total loss per logged step (one batch each)".to_string(),
        y_label: "loss".to_string(),
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

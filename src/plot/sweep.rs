//! A sweep's or cross-validation's summary drawn: the headline metric against the swept
//! value, mean ± std over seeds or folds, with the setting chosen on validation marked.
//! The test value at each run's reported epoch (chosen without the test set) is the
//! headline; the validation mean is drawn beside it because it is what settings are chosen
//! by.

use anyhow::{bail, Result};
use plotters::style::{RGBColor, BLACK};
use serde_json::Value;
use std::path::Path;

use super::figure::{significant, Figure, Key, Line, Marker, Panel, Stroke, XAxis, PALETTE};
use crate::schema::{SweepGroup, SweepSummary, REPLICATE_KEYS};

pub(super) fn build_sweep_figure(path: &Path, summary: &SweepSummary) -> Result<Figure> {
    let varied: Vec<&String> = summary
        .swept
        .iter()
        .filter(|k| !REPLICATE_KEYS.contains(&k.as_str()))
        .collect();
    if summary.groups.len() < 2 || varied.is_empty() {
        bail!(
            "{}: one setting (swept: {}); nothing to draw against it; \
             `regulab report` shows its table",
            path.display(),
            if summary.swept.is_empty() {
                "nothing".to_string()
            } else {
                summary.swept.join(", ")
            }
        );
    }
    let x_key = varied
        .iter()
        .find(|k| {
            summary
                .groups
                .iter()
                .all(|g| g.values[k.as_str()].is_number())
        })
        .unwrap_or(&varied[0])
        .to_string();
    let axis = SweepAxis::new(&x_key, &summary.groups);
    let metric = &summary.metric;
    let direction = if metric.higher_is_better {
        "higher"
    } else {
        "lower"
    };
    let mut panel = Panel::new(
        &format!(
            "{} over {} per setting",
            metric.name,
            crate::util::count_noun(repeats(summary), "run")
        ),
        &format!("{} ({direction} is better)", metric.name),
        axis.x_axis(),
    );
    panel.x_break = axis.zero_at.map(|zero| zero + axis.zero_gap / 2.0);
    let series = series_labels(&summary.groups, &x_key);
    let mut legend = Vec::new();
    for (index, label) in series.iter().enumerate() {
        let color = PALETTE[index % PALETTE.len()];
        let members: Vec<&SweepGroup> = summary
            .groups
            .iter()
            .filter(|g| &other_values(g, &x_key) == label)
            .collect();
        add_series(&mut panel, &axis, &x_key, &members, color);
        if series.len() > 1 {
            legend.push(Key {
                label: label.clone(),
                color,
                stroke: Stroke::Solid,
                marker: Marker::Dot,
            });
        }
    }
    let chosen = chosen_on_validation(summary);
    if let Some(group) = chosen {
        let index = series
            .iter()
            .position(|l| *l == other_values(group, &x_key))
            .unwrap_or(0);
        if let (Some(x), Some(y)) = (
            axis.position(&group.values[&x_key]),
            group.test_at_selected_mean,
        ) {
            panel.best.push((x, y, PALETTE[index % PALETTE.len()]));
        }
    }
    let key_color = if series.len() == 1 { PALETTE[0] } else { BLACK };
    panel.keys = sweep_keys(summary, chosen.is_some(), key_color);
    Ok(Figure {
        title: sweep_title(summary, &x_key, chosen),
        rows: vec![vec![panel]],
        legend,
    })
}

/// The panel's key: the test mean, and the validation mean and the choice only when the
/// sweep has them (a sweep without a validation split chooses nothing).
fn sweep_keys(summary: &SweepSummary, chosen: bool, color: RGBColor) -> Vec<Key> {
    let key = |label: &str, stroke, marker| Key {
        label: label.to_string(),
        color,
        stroke,
        marker,
    };
    let mut keys = vec![key(
        "test at each run's reported epoch: mean ± std",
        Stroke::Solid,
        Marker::Dot,
    )];
    let validated = summary
        .groups
        .iter()
        .any(|g| g.validation_at_selected_mean.is_some_and(f64::is_finite));
    if validated {
        keys.push(key(
            "validation mean (settings are chosen by it)",
            Stroke::Dotted,
            Marker::OpenSquare,
        ));
    }
    if chosen {
        keys.push(key("chosen on validation", Stroke::None, Marker::Ring));
    }
    keys
}

/// The most completed runs of any setting (seeds or folds).
fn repeats(summary: &SweepSummary) -> usize {
    summary
        .groups
        .iter()
        .map(|g| g.completed)
        .max()
        .unwrap_or(0)
}

/// The test mean ± std and the validation mean of the groups of one series, by x.
fn add_series(
    panel: &mut Panel,
    axis: &SweepAxis,
    x_key: &str,
    members: &[&SweepGroup],
    color: plotters::style::RGBColor,
) {
    let mut test = Vec::new();
    let mut validation = Vec::new();
    for group in members {
        let Some(x) = axis.position(&group.values[x_key]) else {
            continue;
        };
        if let Some(mean) = group.test_at_selected_mean.filter(|v| v.is_finite()) {
            test.push((x, mean));
            if let Some(std) = group
                .test_at_selected_std
                .filter(|s| s.is_finite() && *s > 0.0)
            {
                panel.bars.push((x, mean - std, mean + std, color));
            }
        }
        if let Some(mean) = group.validation_at_selected_mean.filter(|v| v.is_finite()) {
            validation.push((x, mean));
        }
    }
    for (points, stroke, marker) in [
        (test, Stroke::Solid, Marker::Dot),
        (validation, Stroke::Dotted, Marker::OpenSquare),
    ] {
        // No line crosses the break: zero stands apart from the log scale.
        let (zero, mut scaled): (Vec<_>, Vec<_>) =
            points.into_iter().partition(|p| Some(p.0) == axis.zero_at);
        scaled.sort_by(|a, b| a.0.total_cmp(&b.0));
        panel.lines.push(Line {
            points: zero,
            color,
            stroke: Stroke::None,
            marker,
        });
        panel.lines.push(Line {
            points: scaled,
            color,
            stroke,
            marker,
        });
    }
}

/// The group with the best validation mean: the setting the sweep chooses without the
/// test set.
fn chosen_on_validation(summary: &SweepSummary) -> Option<&SweepGroup> {
    summary
        .groups
        .iter()
        .filter(|g| g.validation_at_selected_mean.is_some_and(f64::is_finite))
        .reduce(|best, next| {
            let (b, n) = (
                best.validation_at_selected_mean.unwrap_or(f64::NAN),
                next.validation_at_selected_mean.unwrap_or(f64::NAN),
            );
            if summary.metric.is_better(n, b) {
                next
            } else {
                best
            }
        })
}

fn sweep_title(summary: &SweepSummary, x_key: &str, chosen: Option<&SweepGroup>) -> String {
    let mut title = format!(
        "{} sweep: test {} against {x_key}",
        summary.command, summary.metric.name
    );
    if let Some(group) = chosen {
        let setting: Vec<String> = group
            .values
            .iter()
            .map(|(k, v)| format!("{k}={}", value_text(v)))
            .collect();
        title += &format!("; chosen on validation: {}", setting.join(", "));
        if let Some(mean) = group.test_at_selected_mean {
            title += &format!(", test {}", crate::util::format_number(mean));
            if let Some(std) = group.test_at_selected_std.filter(|s| s.is_finite()) {
                title += &format!(" ± {}", significant(std, 2));
            }
        }
    } else {
        title += " (no validation split: nothing chosen)";
    }
    title
}

/// One label per combination of the swept keys other than `x_key`, in order of appearance.
fn series_labels(groups: &[SweepGroup], x_key: &str) -> Vec<String> {
    let mut labels: Vec<String> = Vec::new();
    for group in groups {
        let label = other_values(group, x_key);
        if !labels.contains(&label) {
            labels.push(label);
        }
    }
    labels
}

fn other_values(group: &SweepGroup, x_key: &str) -> String {
    group
        .values
        .iter()
        .filter(|(k, _)| k.as_str() != x_key && !REPLICATE_KEYS.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={}", value_text(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "none".to_string(),
        other => other.to_string(),
    }
}

/// Where each swept value goes on the x axis: log10 of the value when the positive values
/// span a factor of 10 or more (zero, if swept, one decade left of the smallest positive
/// value, past a break), else the value itself; text values in the order given.
struct SweepAxis {
    key: String,
    /// (value, position, label)
    values: Vec<(Value, f64, String)>,
    log: bool,
    zero_at: Option<f64>,
    zero_gap: f64,
}

impl SweepAxis {
    fn new(key: &str, groups: &[SweepGroup]) -> Self {
        let mut distinct: Vec<Value> = Vec::new();
        for group in groups {
            let value = group.values.get(key).cloned().unwrap_or(Value::Null);
            if !distinct.contains(&value) {
                distinct.push(value);
            }
        }
        let numbers: Option<Vec<f64>> = distinct.iter().map(Value::as_f64).collect();
        let Some(numbers) = numbers else {
            let values = distinct
                .iter()
                .enumerate()
                .map(|(i, v)| (v.clone(), i as f64, value_text(v)))
                .collect();
            return SweepAxis {
                key: key.to_string(),
                values,
                log: false,
                zero_at: None,
                zero_gap: 0.0,
            };
        };
        let positive: Vec<f64> = numbers.iter().copied().filter(|v| *v > 0.0).collect();
        let smallest = positive.iter().copied().fold(f64::INFINITY, f64::min);
        let largest = positive.iter().copied().fold(0.0, f64::max);
        let log =
            numbers.iter().all(|v| *v >= 0.0) && positive.len() >= 2 && largest / smallest >= 10.0;
        let zero_gap = 1.0;
        let zero_at = (log && numbers.contains(&0.0)).then(|| smallest.log10() - zero_gap);
        let values = distinct
            .iter()
            .zip(&numbers)
            .map(|(value, &number)| {
                let position = match (log, zero_at) {
                    (true, Some(zero)) if number == 0.0 => zero,
                    (true, _) => number.log10(),
                    (false, _) => number,
                };
                (value.clone(), position, value_text(value))
            })
            .collect();
        SweepAxis {
            key: key.to_string(),
            values,
            log,
            zero_at,
            zero_gap,
        }
    }

    fn position(&self, value: &Value) -> Option<f64> {
        self.values
            .iter()
            .find(|(v, _, _)| v == value)
            .map(|(_, position, _)| *position)
    }

    fn x_axis(&self) -> XAxis {
        let mut ticks: Vec<(f64, String)> = self
            .values
            .iter()
            .map(|(_, position, label)| (*position, label.clone()))
            .collect();
        ticks.sort_by(|a, b| a.0.total_cmp(&b.0));
        let first = ticks.first().map_or(0.0, |t| t.0);
        let last = ticks.last().map_or(1.0, |t| t.0);
        let pad = if last > first {
            (last - first) * 0.08
        } else {
            0.5
        };
        let label = if self.zero_at.is_some() {
            format!("{} (log scale; 0 left of the break)", self.key)
        } else if self.log {
            format!("{} (log scale)", self.key)
        } else {
            self.key.clone()
        };
        XAxis {
            label,
            range: (first - pad)..(last + pad),
            ticks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(lambda: Value, validation: f64, test: f64) -> SweepGroup {
        SweepGroup {
            values: [("lambda".to_string(), lambda)].into_iter().collect(),
            runs: 2,
            completed: 2,
            left_out: 0,
            validation_at_selected_mean: Some(validation),
            test_at_selected_mean: Some(test),
            test_at_selected_std: Some(0.01),
            final_test_mean: Some(test),
            final_test_std: Some(0.01),
        }
    }

    #[test]
    fn zero_sits_a_decade_left_of_the_smallest_positive_value_on_a_log_axis() {
        let groups = vec![
            group(serde_json::json!(0.0), 0.95, 0.96),
            group(serde_json::json!(0.001), 0.94, 0.95),
            group(serde_json::json!(0.1), 0.93, 0.92),
        ];
        let axis = SweepAxis::new("lambda", &groups);
        assert!(axis.log);
        let at = |v: f64| axis.position(&serde_json::json!(v)).unwrap();
        assert!((at(0.001) - -3.0).abs() < 1e-12);
        assert!((at(0.1) - -1.0).abs() < 1e-12);
        assert!((at(0.0) - -4.0).abs() < 1e-12);
        let labels: Vec<String> = axis.x_axis().ticks.into_iter().map(|t| t.1).collect();
        assert_eq!(labels, vec!["0.0", "0.001", "0.1"]);
        // A narrow range stays linear, zero where it belongs.
        let narrow = SweepAxis::new(
            "lambda",
            &[
                group(serde_json::json!(0.0), 1.0, 1.0),
                group(serde_json::json!(0.05), 1.0, 1.0),
            ],
        );
        assert!(!narrow.log);
        assert_eq!(narrow.position(&serde_json::json!(0.0)), Some(0.0));
    }

    #[test]
    fn the_key_names_validation_and_the_choice_only_when_there_are_some() {
        let mut groups = vec![
            group(serde_json::json!(0.0), 0.95, 0.96),
            group(serde_json::json!(0.1), 0.93, 0.92),
        ];
        let summary = |groups: Vec<SweepGroup>| SweepSummary {
            schema_version: 2,
            kind: crate::schema::SWEEP_KIND.into(),
            command: crate::config::ModelKind::Mf,
            metric: crate::schema::MetricInfo {
                name: "rmse".into(),
                higher_is_better: false,
            },
            swept: vec!["lambda".into()],
            runs: vec![],
            groups,
        };
        let labels = |summary: &SweepSummary| -> Vec<String> {
            let chosen = chosen_on_validation(summary).is_some();
            sweep_keys(summary, chosen, BLACK)
                .into_iter()
                .map(|k| k.label)
                .collect()
        };
        let validated = summary(groups.clone());
        assert_eq!(labels(&validated).len(), 3, "{:?}", labels(&validated));
        for group in &mut groups {
            group.validation_at_selected_mean = None;
        }
        let unvalidated = summary(groups);
        assert_eq!(
            labels(&unvalidated),
            vec!["test at each run's reported epoch: mean ± std"]
        );
        assert!(sweep_title(&unvalidated, "lambda", None).contains("nothing chosen"));
    }
}

//! A tune's summary (`tune.json`) drawn: one panel per searched key, each trial's validation
//! value at the highest rung it reached against its value of that key (a log axis for
//! log-searched keys), the colour saying how far it got, the choice ringed. Only validation
//! is drawn: it is what the tune chose by.

use anyhow::{bail, Result};
use serde_json::Value;
use std::path::Path;

use super::figure::{significant, Figure, Key, Line, Marker, Panel, Stroke, XAxis, PALETTE};
use crate::schema::{SearchedKey, TuneSummary};

pub(super) fn build_tune_figure(path: &Path, summary: &TuneSummary) -> Result<Figure> {
    let reached: Vec<(usize, f64)> = summary
        .trials
        .iter()
        .filter_map(|t| {
            let (rung, value) = t
                .validation
                .iter()
                .enumerate()
                .rev()
                .find_map(|(k, v)| v.map(|v| (k, v)))?;
            value.is_finite().then_some((rung, value))
        })
        .collect();
    if reached.is_empty() {
        bail!(
            "{}: no trial has a validation value yet; nothing to draw",
            path.display()
        );
    }
    let metric = &summary.metric;
    let direction = if metric.higher_is_better {
        "higher"
    } else {
        "lower"
    };
    let mut row = Vec::new();
    for searched in &summary.search {
        let axis = KeyAxis::new(searched, summary);
        let mut panel = Panel::new(
            &format!("validation {} against {}", metric.name, searched.key),
            &format!("validation {} ({direction} is better)", metric.name),
            axis.x_axis(),
        );
        for (rung, epochs) in summary.rungs.iter().enumerate() {
            let points: Vec<(f64, f64)> = summary
                .trials
                .iter()
                .filter_map(|t| {
                    let last = t.validation.len().checked_sub(1)?;
                    let value = (*t.validation.get(rung)?).filter(|v| v.is_finite())?;
                    let x = axis.position(t.values.get(&searched.key)?)?;
                    (last == rung).then_some((x, value))
                })
                .collect();
            let color = PALETTE[rung % PALETTE.len()];
            panel.lines.push(Line {
                points,
                color,
                stroke: Stroke::None,
                marker: Marker::Dot,
            });
            if panel.keys.len() < summary.rungs.len() {
                panel.keys.push(Key {
                    label: format!("stopped at {epochs} epochs"),
                    color,
                    stroke: Stroke::None,
                    marker: Marker::Dot,
                });
            }
        }
        if let Some(choice) = &summary.choice {
            if let Some(x) = choice
                .values
                .get(&searched.key)
                .and_then(|v| axis.position(v))
            {
                let rung = summary.rungs.len() - 1;
                panel
                    .best
                    .push((x, choice.validation, PALETTE[rung % PALETTE.len()]));
            }
        }
        row.push(panel);
    }
    let title = match &summary.choice {
        Some(choice) => format!(
            "tune over {} trials: chosen {} on validation {} {:.4}",
            summary.trials.len(),
            summary.trials[choice.trial].name,
            metric.name,
            choice.validation
        ),
        None => format!(
            "tune over {} trials: nothing chosen yet",
            summary.trials.len()
        ),
    };
    // Three panels a row at most.
    let rows = row
        .chunks(3)
        .map(|chunk| chunk.to_vec())
        .collect::<Vec<Vec<Panel>>>();
    Ok(Figure {
        title,
        rows,
        legend: Vec::new(),
    })
}

/// Where a searched key's values sit on the x axis: log10 of log-searched numbers, other
/// numbers as they are, anything else (a list of words) by its place in the list.
struct KeyAxis {
    key: String,
    log: bool,
    categories: Option<Vec<Value>>,
    /// The numeric positions' span.
    span: (f64, f64),
    /// The distinct numeric positions (a searched list's values get a tick each).
    distinct: Vec<f64>,
}

impl KeyAxis {
    fn new(searched: &SearchedKey, summary: &TuneSummary) -> Self {
        let values: Vec<&Value> = summary
            .trials
            .iter()
            .filter_map(|t| t.values.get(&searched.key))
            .collect();
        let numeric = values.iter().all(|v| v.is_number());
        let categories = (!numeric).then(|| {
            let mut distinct: Vec<Value> = Vec::new();
            for value in values {
                if !distinct.contains(value) {
                    distinct.push(value.clone());
                }
            }
            distinct.sort_by_key(|v| v.to_string());
            distinct
        });
        let mut axis = KeyAxis {
            key: searched.key.clone(),
            log: searched.log && numeric,
            categories,
            span: (f64::INFINITY, f64::NEG_INFINITY),
            distinct: Vec::new(),
        };
        for trial in &summary.trials {
            if let Some(x) = trial
                .values
                .get(&searched.key)
                .and_then(|v| axis.position(v))
            {
                axis.span = (axis.span.0.min(x), axis.span.1.max(x));
                if !axis.distinct.contains(&x) {
                    axis.distinct.push(x);
                }
            }
        }
        axis
    }

    fn position(&self, value: &Value) -> Option<f64> {
        match &self.categories {
            Some(categories) => categories.iter().position(|c| c == value).map(|i| i as f64),
            None => {
                let x = value.as_f64()?;
                if self.log {
                    (x > 0.0).then(|| x.log10())
                } else {
                    Some(x)
                }
            }
        }
    }

    fn x_axis(&self) -> XAxis {
        if let Some(categories) = &self.categories {
            let ticks = categories
                .iter()
                .enumerate()
                .map(|(i, v)| (i as f64, v.as_str().map_or(v.to_string(), str::to_string)))
                .collect();
            return XAxis {
                label: self.key.clone(),
                range: -0.5..(categories.len() as f64 - 0.5),
                ticks,
            };
        }
        let (low, high) = if self.span.0.is_finite() {
            self.span
        } else {
            (0.0, 1.0)
        };
        let pad = if high > low { (high - low) * 0.08 } else { 0.5 };
        XAxis {
            label: if self.log {
                format!("{} (log scale)", self.key)
            } else {
                self.key.clone()
            },
            range: (low - pad)..(high + pad),
            ticks: if !self.log && self.distinct.len() <= 8 {
                self.distinct
                    .iter()
                    .map(|&x| (x, significant(x, 4)))
                    .collect()
            } else {
                ticks(low - pad, high + pad, self.log)
            },
        }
    }
}

/// Decades on a log axis (1e-3, 1e-2, ...; halves of a decade when it spans less than two),
/// five even steps otherwise.
fn ticks(low: f64, high: f64, log: bool) -> Vec<(f64, String)> {
    if log {
        let step = if high - low < 2.0 { 0.5 } else { 1.0 };
        let mut ticks = Vec::new();
        let mut x = (low / step).ceil() * step;
        while x <= high + 1e-9 {
            ticks.push((x, significant(10f64.powf(x), 2)));
            x += step;
        }
        return ticks;
    }
    (0..5)
        .map(|i| {
            let x = low + (high - low) * (i as f64 + 0.5) / 5.0;
            (x, significant(x, 3))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_are_decades_and_halves_for_short_spans() {
        let decades: Vec<String> = ticks(-3.2, 0.1, true).into_iter().map(|t| t.1).collect();
        assert_eq!(decades, ["0.001", "0.01", "0.1", "1"]);
        assert_eq!(ticks(-1.6, -0.4, true).len(), 3);
        assert_eq!(ticks(0.0, 10.0, false).len(), 5);
    }
}

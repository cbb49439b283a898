//! What the image shows, as data: panels of lines with their styles and keys, computed
//! from the runs before any drawing.

use plotters::style::{RGBColor, BLACK};
use std::ops::Range;
use std::path::PathBuf;

use super::document::{PlotView, Split};
use super::legend::legend_labels;
use crate::schema::RunDocument;

/// matplotlib's default colours, so that both plotters colour runs alike.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Stroke {
    Solid,
    Dashed,
    Dotted,
    /// Markers only.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Marker {
    None,
    Dot,
    Ring,
    Triangle,
    Square,
    Cross,
    OpenTriangle,
    OpenSquare,
}

/// Markers that tell parameters apart when colour already stands for the run.
const PARAMETER_MARKERS: [Marker; 7] = [
    Marker::Dot,
    Marker::Triangle,
    Marker::Square,
    Marker::Ring,
    Marker::Cross,
    Marker::OpenTriangle,
    Marker::OpenSquare,
];

#[derive(Debug, Clone)]
pub(super) struct Line {
    pub(super) points: Vec<(f64, f64)>,
    pub(super) color: RGBColor,
    pub(super) stroke: Stroke,
    pub(super) marker: Marker,
}

/// A legend entry drawn inside a panel.
#[derive(Debug, Clone)]
pub(super) struct Key {
    pub(super) label: String,
    pub(super) color: RGBColor,
    pub(super) stroke: Stroke,
    pub(super) marker: Marker,
}

#[derive(Debug, Clone, Default)]
pub(super) struct Panel {
    pub(super) title: String,
    pub(super) y_label: String,
    pub(super) lines: Vec<Line>,
    /// Best test epochs: a vertical guide and a large dot.
    pub(super) best: Vec<(f64, f64, RGBColor)>,
    pub(super) keys: Vec<Key>,
    pub(super) log_y: bool,
}

impl Panel {
    pub(super) fn points(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.lines
            .iter()
            .flat_map(|l| l.points.iter().copied())
            .chain(self.best.iter().map(|&(x, y, _)| (x, y)))
    }
}

/// Everything the image shows, computed from the runs before any drawing.
pub(super) struct Figure {
    pub(super) title: String,
    pub(super) loss_panels: Vec<Panel>,
    pub(super) lower_panels: Vec<Panel>,
    /// The legend strip under the grid: run colours, then the line-style key.
    pub(super) legend: Vec<Key>,
    pub(super) epochs: Range<f64>,
}

pub(super) fn build_figure(runs: &[(PathBuf, RunDocument)]) -> Figure {
    let labels = legend_labels(runs);
    let colors: Vec<RGBColor> = (0..runs.len())
        .map(|i| PALETTE[i % PALETTE.len()])
        .collect();
    let single = runs.len() == 1;

    let mut loss_panels = Vec::new();
    for (key, name) in [
        ("base_loss", "base loss"),
        ("reg_loss", "regularization loss"),
        ("total_loss", "total loss"),
    ] {
        let mut panel = Panel {
            title: name.to_string(),
            y_label: format!("train {name}"),
            ..Panel::default()
        };
        for ((_, doc), &color) in runs.iter().zip(&colors) {
            panel.lines.push(Line {
                points: doc.curve(Split::Train, key),
                color,
                stroke: Stroke::Solid,
                marker: Marker::Dot,
            });
            if key == "reg_loss" {
                // With decoupled or optimizer weight decay the penalty is not in the loss;
                // the implied loss shows what it would have added.
                let implied: Vec<(f64, f64)> = doc
                    .epochs
                    .iter()
                    .map(|e| (e.epoch as f64, e.implied_weight_decay_loss))
                    .filter(|(_, v)| v.is_finite())
                    .collect();
                if implied.iter().any(|&(_, v)| v != 0.0) {
                    panel.lines.push(Line {
                        points: implied,
                        color,
                        stroke: Stroke::Dotted,
                        marker: Marker::None,
                    });
                    if panel.keys.is_empty() {
                        panel.keys.push(Key {
                            label: "implied weight decay loss".to_string(),
                            color: BLACK,
                            stroke: Stroke::Dotted,
                            marker: Marker::None,
                        });
                    }
                }
            }
        }
        loss_panels.push(panel);
    }

    let mut metrics: Vec<&str> = Vec::new();
    for (_, doc) in runs {
        if !metrics.contains(&doc.metric_name()) {
            metrics.push(doc.metric_name());
        }
    }
    let mut lower_panels = Vec::new();
    let mut any_validation = false;
    for metric in &metrics {
        let lower = runs
            .iter()
            .find(|(_, doc)| doc.metric_name() == *metric)
            .is_some_and(|(_, doc)| doc.lower_is_better());
        let direction = if lower { "lower" } else { "higher" };
        let mut panel = Panel {
            title: format!("train vs test {metric}"),
            y_label: format!("{metric} ({direction} is better)"),
            ..Panel::default()
        };
        for ((_, doc), &color) in runs.iter().zip(&colors) {
            if doc.metric_name() != *metric {
                continue;
            }
            panel.lines.push(Line {
                points: doc.curve(Split::Train, metric),
                color,
                stroke: Stroke::Dashed,
                marker: Marker::None,
            });
            let validation = doc.curve(Split::Validation, metric);
            if !validation.is_empty() {
                any_validation = true;
                panel.lines.push(Line {
                    points: validation,
                    color,
                    stroke: Stroke::Dotted,
                    marker: Marker::None,
                });
            }
            panel.lines.push(Line {
                points: doc.curve(Split::Test, metric),
                color,
                stroke: Stroke::Solid,
                marker: Marker::Dot,
            });
            if let Some((epoch, value)) = doc.selected_test() {
                panel.best.push((epoch, value, color));
                if single {
                    let how = match doc.summary.selection {
                        crate::schema::Selection::Validation => "best validation epoch",
                        crate::schema::Selection::Last => "last epoch",
                    };
                    panel.keys.push(Key {
                        label: format!("test {} at epoch {epoch} ({how})", significant(value, 4)),
                        color,
                        stroke: Stroke::None,
                        marker: Marker::Ring,
                    });
                }
            }
        }
        lower_panels.push(panel);
    }

    let mut norms = Panel {
        title: "weight norms".to_string(),
        y_label: "weight norm".to_string(),
        ..Panel::default()
    };
    let mut names: Vec<String> = Vec::new();
    for (_, doc) in runs {
        for name in doc.norm_names() {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    for (i, name) in names.iter().enumerate() {
        // One run: a colour per parameter. Several: colour is the run and the marker the
        // parameter, numbered within the run that has it, so MF and MLP runs side by side
        // each use the first markers; the key then takes the colour of that run.
        let owners: Vec<usize> = runs
            .iter()
            .enumerate()
            .filter(|(_, (_, doc))| !doc.norm_series(name).is_empty())
            .map(|(r, _)| r)
            .collect();
        let local = owners
            .first()
            .and_then(|&r| runs[r].1.norm_names().iter().position(|n| n == name))
            .unwrap_or(i);
        let marker = if single {
            Marker::Dot
        } else {
            PARAMETER_MARKERS[local % PARAMETER_MARKERS.len()]
        };
        for &r in &owners {
            norms.lines.push(Line {
                points: runs[r].1.norm_series(name),
                color: if single {
                    PALETTE[i % PALETTE.len()]
                } else {
                    colors[r]
                },
                stroke: Stroke::Solid,
                marker,
            });
        }
        let (color, stroke) = match owners.as_slice() {
            _ if single => (PALETTE[i % PALETTE.len()], Stroke::Solid),
            [only] => (colors[*only], Stroke::None),
            _ => (BLACK, Stroke::None),
        };
        norms.keys.push(Key {
            label: name.clone(),
            color,
            stroke,
            marker,
        });
    }
    let values: Vec<f64> = norms.points().map(|(_, y)| y).collect();
    let smallest = values.iter().copied().fold(f64::INFINITY, f64::min);
    let largest = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // Bias norms near 1 next to weight norms near 50 would lie flat on a linear axis.
    norms.log_y = smallest > 0.0 && largest / smallest > 20.0;
    if norms.log_y {
        norms.y_label = "weight norm (log scale)".to_string();
    }
    lower_panels.push(norms);

    let mut legend = Vec::new();
    if !single {
        for (label, &color) in labels.iter().zip(&colors) {
            legend.push(Key {
                label: label.clone(),
                color,
                stroke: Stroke::Solid,
                marker: Marker::Dot,
            });
        }
    }
    let mut style = vec![
        ("train", Stroke::Dashed, Marker::None),
        ("test", Stroke::Solid, Marker::Dot),
    ];
    if any_validation {
        style.push(("validation", Stroke::Dotted, Marker::None));
    }
    style.push(("best test epoch", Stroke::None, Marker::Ring));
    let key_color = if single { colors[0] } else { BLACK };
    legend.extend(style.into_iter().map(|(label, stroke, marker)| Key {
        label: label.to_string(),
        color: key_color,
        stroke,
        marker,
    }));

    let all_epochs: Vec<f64> = runs
        .iter()
        .flat_map(|(_, d)| d.epochs.iter().map(|e| e.epoch as f64))
        .collect();
    let first = all_epochs.iter().copied().fold(f64::INFINITY, f64::min);
    let last = all_epochs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let epochs = if first.is_finite() {
        (first - 0.3)..(last + 0.3)
    } else {
        0.0..1.0
    };

    let title = if single {
        let (path, doc) = &runs[0];
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let mut parts: Vec<String> = Vec::new();
        parts.push(doc.command.to_string());
        parts.extend(doc.dataset_name());
        parts.push(name);
        let mut title = parts.join(" | ");
        if let Some(status) = Some(doc.status.to_string()).filter(|s| s != "completed") {
            title += &format!(" ({status}");
            if let Some(message) = &doc.message {
                title += &format!(": {}", one_line(message));
            }
            title += ")";
        }
        title
    } else {
        format!("{} runs", runs.len())
    };

    Figure {
        title,
        loss_panels,
        lower_panels,
        legend,
        epochs,
    }
}

/// Multi-line text (an error message from a failed run) squeezed onto one line.
pub(super) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `value` with `digits` significant digits, without trailing zeros.
pub(super) fn significant(value: f64, digits: i32) -> String {
    if value == 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = (digits - 1 - magnitude).max(0) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_shortened_for_labels() {
        assert_eq!(significant(0.914_836, 4), "0.9148");
        assert_eq!(significant(12.0, 3), "12");
        assert_eq!(significant(0.000_123_45, 3), "0.000123");
        assert_eq!(significant(1234.6, 3), "1235");
        assert_eq!(significant(0.0, 3), "0");
        assert_eq!(one_line("a\n  b\tc"), "a b c");
    }
}

//! What the image shows, as data: rows of panels of lines with their styles and keys,
//! computed from the runs before any drawing.
//!
//! Colour always stands for the run; line style for the quantity (in the loss panel: total,
//! base, regularization) or the split (in the metric panel: train, validation, test). Each
//! panel's key sits above its plotting area, outside the curves, and says which is which.

use anyhow::{bail, Result};
use plotters::style::{RGBColor, BLACK};
use std::ops::Range;
use std::path::PathBuf;

use super::document::{run_title, PlotView, Split};
use super::legend::legend_labels;
use crate::schema::{RunDocument, Selection};

/// matplotlib's default colours, so that both plotters colour runs alike.
pub(super) const PALETTE: [RGBColor; 10] = [
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
    LongDash,
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

/// A legend entry: a line sample and its label.
#[derive(Debug, Clone)]
pub(super) struct Key {
    pub(super) label: String,
    pub(super) color: RGBColor,
    pub(super) stroke: Stroke,
    pub(super) marker: Marker,
}

/// The x axis: its span and the labelled ticks.
#[derive(Debug, Clone)]
pub(super) struct XAxis {
    pub(super) label: String,
    pub(super) range: Range<f64>,
    pub(super) ticks: Vec<(f64, String)>,
}

/// A second y axis on the right (the MLP's test accuracy beside its test cost).
#[derive(Debug, Clone)]
pub(super) struct Secondary {
    pub(super) y_label: String,
    pub(super) lines: Vec<Line>,
}

#[derive(Debug, Clone)]
pub(super) struct Panel {
    pub(super) title: String,
    pub(super) y_label: String,
    pub(super) x: XAxis,
    pub(super) lines: Vec<Line>,
    /// Reported epochs (or the setting chosen on validation): a vertical guide and a
    /// large dot.
    pub(super) best: Vec<(f64, f64, RGBColor)>,
    /// Error bars: x, low, high.
    pub(super) bars: Vec<(f64, f64, f64, RGBColor)>,
    /// Drawn above the plotting area.
    pub(super) keys: Vec<Key>,
    pub(super) log_y: bool,
    pub(super) secondary: Option<Secondary>,
    /// Share of the row's width, relative to the row's other panels.
    pub(super) weight: u32,
    /// An x position where the axis is broken (a sweep's zero left of its log scale).
    pub(super) x_break: Option<f64>,
}

impl Panel {
    pub(super) fn new(title: &str, y_label: &str, x: XAxis) -> Self {
        Panel {
            title: title.to_string(),
            y_label: y_label.to_string(),
            x,
            lines: Vec::new(),
            best: Vec::new(),
            bars: Vec::new(),
            keys: Vec::new(),
            log_y: false,
            secondary: None,
            weight: 1,
            x_break: None,
        }
    }

    pub(super) fn points(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.lines
            .iter()
            .flat_map(|l| l.points.iter().copied())
            .chain(self.best.iter().map(|&(x, y, _)| (x, y)))
            .chain(
                self.bars
                    .iter()
                    .flat_map(|&(x, lo, hi, _)| [(x, lo), (x, hi)]),
            )
    }

    fn has_data(&self) -> bool {
        self.points().next().is_some()
    }
}

/// Everything the image shows, computed from the runs before any drawing.
pub(super) struct Figure {
    pub(super) title: String,
    pub(super) rows: Vec<Vec<Panel>>,
    /// The legend strip under the grid: what each colour stands for.
    pub(super) legend: Vec<Key>,
}

/// What `regulab plot` draws from run documents.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct FigureOptions {
    /// The loss panel over the logged steps instead of epochs.
    pub(super) steps: bool,
}

pub(super) fn build_figure(
    runs: &[(PathBuf, RunDocument)],
    options: FigureOptions,
) -> Result<Figure> {
    let colors: Vec<RGBColor> = (0..runs.len())
        .map(|i| PALETTE[i % PALETTE.len()])
        .collect();
    let epochs = epoch_axis(runs);
    let mut top = vec![loss_panel(runs, &colors, &epochs, options)?];
    top.extend(share_panel(runs, &colors, &epochs));
    let mut bottom: Vec<Panel> = metric_names(runs)
        .iter()
        .map(|metric| metric_panel(runs, &colors, &epochs, metric))
        .collect();
    bottom.extend(cost_accuracy_panel(runs, &colors, &epochs));
    bottom.extend(norms_panel(runs, &colors, &epochs));
    let rows: Vec<Vec<Panel>> = [top, bottom]
        .into_iter()
        .map(|row| row.into_iter().filter(Panel::has_data).collect::<Vec<_>>())
        .filter(|row| !row.is_empty())
        .collect();
    let legend = if runs.len() == 1 {
        Vec::new()
    } else {
        legend_labels(runs)
            .into_iter()
            .zip(&colors)
            .map(|(label, &color)| Key {
                label,
                color,
                stroke: Stroke::Solid,
                marker: Marker::None,
            })
            .collect()
    };
    Ok(Figure {
        title: figure_title(runs),
        rows,
        legend,
    })
}

/// One run: its settings from the recorded config (and its status when it did not
/// complete). Several: their count and the settings they share.
fn figure_title(runs: &[(PathBuf, RunDocument)]) -> String {
    if let [(_, doc)] = runs {
        let mut title = run_title(doc);
        if doc.status != crate::schema::RunStatus::Completed {
            title += &format!(" ({}", doc.status);
            if let Some(message) = &doc.message {
                title += &format!(": {}", one_line(message));
            }
            title += ")";
        }
        return title;
    }
    let titles: Vec<String> = runs.iter().map(|(_, d)| run_title(d)).collect();
    let shared: Vec<&str> = titles[0]
        .split(" | ")
        .filter(|part| titles.iter().all(|t| t.split(" | ").any(|p| p == *part)))
        .collect();
    let mut title = format!("{} runs", runs.len());
    if !shared.is_empty() {
        title += &format!(" | {}", shared.join(" | "));
    }
    title
}

/// The epochs every run covers, with whole-number ticks.
fn epoch_axis(runs: &[(PathBuf, RunDocument)]) -> XAxis {
    let epochs: Vec<f64> = runs
        .iter()
        .flat_map(|(_, d)| d.epochs.iter().map(|e| e.epoch as f64))
        .collect();
    whole_number_axis("epoch", &epochs)
}

/// An axis over `values` with round whole-number ticks (1, 2, 5 times a power of ten).
pub(super) fn whole_number_axis(label: &str, values: &[f64]) -> XAxis {
    let first = values.iter().copied().fold(f64::INFINITY, f64::min);
    let last = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (first, last) = if first.is_finite() {
        (first, last)
    } else {
        (0.0, 1.0)
    };
    let span = (last - first).max(1.0);
    let step = [1.0, 2.0, 5.0]
        .iter()
        .flat_map(|m| (0..8).map(move |e| m * 10f64.powi(e)))
        .filter(|step| span / step <= 10.0)
        .fold(f64::INFINITY, f64::min);
    let pad = (span * 0.03).max(0.3);
    let mut ticks = Vec::new();
    let mut tick = (first / step).ceil() * step;
    while tick <= last + 1e-9 {
        ticks.push((tick, format!("{tick}")));
        tick += step;
    }
    XAxis {
        label: label.to_string(),
        range: (first - pad)..(last + pad),
        ticks,
    }
}

/// A loss curve: the document key, its key label, and how it is drawn.
type LossQuantity = (&'static str, &'static str, Stroke, Marker);

/// Base, regularization and total train loss of every run on one axis; per logged step
/// with `--steps`.
fn loss_panel(
    runs: &[(PathBuf, RunDocument)],
    colors: &[RGBColor],
    epochs: &XAxis,
    options: FigureOptions,
) -> Result<Panel> {
    let mut panel = if options.steps {
        step_loss_panel(runs)?
    } else {
        Panel::new("train loss (epoch means)", "train loss", epochs.clone())
    };
    panel.weight = 2;
    let marker = if options.steps {
        Marker::None
    } else {
        Marker::Dot
    };
    let quantities: [LossQuantity; 3] = [
        ("total_loss", "total", Stroke::Solid, marker),
        ("base_loss", "base", Stroke::Dashed, Marker::None),
        ("reg_loss", "regularization", Stroke::Dotted, Marker::None),
    ];
    let mut shown = [false; 3];
    for ((_, doc), &color) in runs.iter().zip(colors) {
        for (index, &(key, _, stroke, marker)) in quantities.iter().enumerate() {
            let points = if options.steps {
                step_losses(doc, key)
            } else {
                doc.curve(Split::Train, key)
            };
            // An unregularized run has no regularization curve (it would be zero).
            if key == "reg_loss" && points.iter().all(|&(_, v)| v == 0.0) {
                continue;
            }
            shown[index] |= !points.is_empty();
            panel.lines.push(Line {
                points,
                color,
                stroke,
                marker,
            });
        }
        if !options.steps {
            add_implied_weight_decay(&mut panel, doc, color, runs.len() == 1);
        }
    }
    let key_color = if runs.len() == 1 { colors[0] } else { BLACK };
    let keys = quantity_keys(&quantities, shown, key_color);
    panel.keys.splice(0..0, keys);
    Ok(panel)
}

/// The loss panel over optimizer steps; every run must have recorded its steps.
fn step_loss_panel(runs: &[(PathBuf, RunDocument)]) -> Result<Panel> {
    let without: Vec<String> = runs
        .iter()
        .filter(|(_, d)| d.steps.is_empty())
        .map(|(p, _)| p.display().to_string())
        .collect();
    if !without.is_empty() {
        bail!(
            "{}: no per-step losses recorded; train with --log-every N to record them, \
             or plot without --steps",
            without.join(", ")
        );
    }
    let steps: Vec<f64> = runs
        .iter()
        .flat_map(|(_, d)| d.steps.iter().map(|s| s.step as f64))
        .collect();
    Ok(Panel::new(
        "train loss at logged steps (one batch each)",
        "train loss",
        whole_number_axis("optimizer step", &steps),
    ))
}

/// One loss (`base_loss`, `reg_loss`, else the total) at every logged step.
fn step_losses(doc: &RunDocument, key: &str) -> Vec<(f64, f64)> {
    doc.steps
        .iter()
        .map(|s| {
            let value = match key {
                "base_loss" => s.base_loss,
                "reg_loss" => s.reg_loss,
                _ => s.total_loss,
            };
            (s.step as f64, value)
        })
        .filter(|(_, v)| v.is_finite())
        .collect()
}

/// Decoupled or optimizer weight decay is not in the loss; the implied loss shows what it
/// would have added.
fn add_implied_weight_decay(panel: &mut Panel, doc: &RunDocument, color: RGBColor, single: bool) {
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
            stroke: Stroke::LongDash,
            marker: Marker::None,
        });
        shown_implied_key(panel, single, color);
    }
}

/// The keys of the quantities some run shows, in the panel's order.
fn quantity_keys(quantities: &[LossQuantity], shown: [bool; 3], color: RGBColor) -> Vec<Key> {
    quantities
        .iter()
        .zip(shown)
        .filter(|(_, shown)| *shown)
        .map(|(&(_, name, stroke, marker), _)| Key {
            label: name.to_string(),
            color,
            stroke,
            marker,
        })
        .collect()
}

fn shown_implied_key(panel: &mut Panel, single: bool, color: RGBColor) {
    if panel.keys.iter().any(|k| k.stroke == Stroke::LongDash) {
        return;
    }
    panel.keys.push(Key {
        label: "implied weight decay (not in the total)".to_string(),
        color: if single { color } else { BLACK },
        stroke: Stroke::LongDash,
        marker: Marker::None,
    });
}

/// The penalty's share of the train total loss, in percent: the regularization curve is
/// small beside the base loss, so its size relative to the total gets its own axis.
fn share_panel(
    runs: &[(PathBuf, RunDocument)],
    colors: &[RGBColor],
    epochs: &XAxis,
) -> Option<Panel> {
    let mut panel = Panel::new(
        "penalty's share of the total",
        "regularization / total (%)",
        epochs.clone(),
    );
    for ((_, doc), &color) in runs.iter().zip(colors) {
        let points: Vec<(f64, f64)> = doc
            .epochs
            .iter()
            .filter_map(|e| {
                let share = e.train.get("reg_loss")? / e.train.get("total_loss")?;
                Some((e.epoch as f64, 100.0 * share)).filter(|(_, v)| v.is_finite())
            })
            .collect();
        if points.iter().any(|&(_, v)| v != 0.0) {
            panel.lines.push(Line {
                points,
                color,
                stroke: Stroke::Solid,
                marker: Marker::Dot,
            });
        }
    }
    (!panel.lines.is_empty()).then_some(panel)
}

fn metric_names(runs: &[(PathBuf, RunDocument)]) -> Vec<String> {
    let mut metrics: Vec<String> = Vec::new();
    for (_, doc) in runs {
        if !metrics.iter().any(|m| m == doc.metric_name()) {
            metrics.push(doc.metric_name().to_string());
        }
    }
    metrics
}

/// Train (dashed), validation (dotted) and test (solid) values of a headline metric, the
/// reported epoch marked.
fn metric_panel(
    runs: &[(PathBuf, RunDocument)],
    colors: &[RGBColor],
    epochs: &XAxis,
    metric: &str,
) -> Panel {
    let lower = runs
        .iter()
        .find(|(_, doc)| doc.metric_name() == metric)
        .is_some_and(|(_, doc)| doc.lower_is_better());
    let direction = if lower { "lower" } else { "higher" };
    let mut panel = Panel::new(
        &format!("train, validation and test {metric}"),
        &format!("{metric} ({direction} is better)"),
        epochs.clone(),
    );
    let mut any_validation = false;
    let mut selections: Vec<Selection> = Vec::new();
    for ((_, doc), &color) in runs.iter().zip(colors) {
        if doc.metric_name() != metric {
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
            if !selections.contains(&doc.summary.selection) {
                selections.push(doc.summary.selection);
            }
        }
    }
    let key_color = if runs.len() == 1 { colors[0] } else { BLACK };
    let mut styles = vec![("train", Stroke::Dashed, Marker::None)];
    if any_validation {
        styles.push(("validation", Stroke::Dotted, Marker::None));
    }
    styles.push(("test", Stroke::Solid, Marker::Dot));
    let reported = match selections.as_slice() {
        [Selection::Validation] => "test at the best validation epoch",
        [Selection::Last] => "test at the last epoch",
        _ => "test at the reported epoch",
    };
    if !selections.is_empty() {
        styles.push((reported, Stroke::None, Marker::Ring));
    }
    panel.keys = styles
        .into_iter()
        .map(|(label, stroke, marker)| Key {
            label: label.to_string(),
            color: key_color,
            stroke,
            marker,
        })
        .collect();
    if runs.len() == 1 {
        if let (Some((epoch, value)), Some((_, doc))) = (runs[0].1.selected_test(), runs.first()) {
            panel.title = format!(
                "{metric}: test {} at epoch {epoch} ({})",
                significant(value, 4),
                match doc.summary.selection {
                    Selection::Validation => "best validation",
                    Selection::Last => "last",
                }
            );
        }
    }
    panel
}

/// The lecture's second question: the MLP's test cost (total loss) can climb while its test
/// accuracy still rises. Cost on the left axis, accuracy on the right.
fn cost_accuracy_panel(
    runs: &[(PathBuf, RunDocument)],
    colors: &[RGBColor],
    epochs: &XAxis,
) -> Option<Panel> {
    let mut panel = Panel::new(
        "test cost vs test accuracy",
        "test cost (total loss)",
        epochs.clone(),
    );
    // One run: a colour per axis. Several: the run's colour, a line style per axis.
    let single = runs.len() == 1;
    let (cost_key, accuracy_key) = if single {
        (PALETTE[0], PALETTE[3])
    } else {
        (BLACK, BLACK)
    };
    let mut accuracy = Vec::new();
    for ((_, doc), &color) in runs.iter().zip(colors) {
        let accuracies = doc.curve(Split::Test, "accuracy");
        if accuracies.is_empty() {
            continue;
        }
        panel.lines.push(Line {
            points: doc.curve(Split::Test, "total_loss"),
            color: if single { cost_key } else { color },
            stroke: Stroke::Solid,
            marker: Marker::Dot,
        });
        accuracy.push(Line {
            points: accuracies,
            color: if single { accuracy_key } else { color },
            stroke: Stroke::Dashed,
            marker: Marker::Triangle,
        });
    }
    if accuracy.is_empty() {
        return None;
    }
    panel.keys = vec![
        Key {
            label: "test cost (left axis)".to_string(),
            color: cost_key,
            stroke: Stroke::Solid,
            marker: Marker::Dot,
        },
        Key {
            label: "test accuracy (right axis)".to_string(),
            color: accuracy_key,
            stroke: Stroke::Dashed,
            marker: Marker::Triangle,
        },
    ];
    panel.secondary = Some(Secondary {
        y_label: "test accuracy".to_string(),
        lines: accuracy,
    });
    Some(panel)
}

/// Every parameter's weight norm: one run gets a colour per parameter; several get their
/// run's colour and a marker per parameter.
fn norms_panel(
    runs: &[(PathBuf, RunDocument)],
    colors: &[RGBColor],
    epochs: &XAxis,
) -> Option<Panel> {
    let single = runs.len() == 1;
    let mut norms = Panel::new("weight norms", "weight norm", epochs.clone());
    let mut names: Vec<String> = Vec::new();
    for (_, doc) in runs {
        for name in doc.norm_names() {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    for (i, name) in names.iter().enumerate() {
        // Markers are numbered within the run that has the parameter, so MF and MLP runs
        // side by side each use the first markers.
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
    if norms.lines.is_empty() {
        return None;
    }
    let values: Vec<f64> = norms.points().map(|(_, y)| y).collect();
    let smallest = values.iter().copied().fold(f64::INFINITY, f64::min);
    let largest = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // Bias norms near 1 next to weight norms near 50 would lie flat on a linear axis.
    norms.log_y = smallest > 0.0 && largest / smallest > 20.0;
    if norms.log_y {
        norms.y_label = "weight norm (log scale)".to_string();
    }
    Some(norms)
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

    #[test]
    fn whole_number_axes_have_round_ticks() {
        let ticks = |values: &[f64]| -> Vec<f64> {
            whole_number_axis("x", values)
                .ticks
                .iter()
                .map(|t| t.0)
                .collect()
        };
        assert_eq!(ticks(&[1.0, 2.0]), vec![1.0, 2.0]);
        assert_eq!(ticks(&[1.0, 30.0]), vec![5.0, 10.0, 15.0, 20.0, 25.0, 30.0]);
        assert_eq!(
            ticks(&[20.0, 700.0]),
            vec![100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0]
        );
        assert_eq!(ticks(&[3.0]), vec![3.0]);
    }
}

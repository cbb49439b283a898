//! What the image shows, as data: rows of panels of lines with their styles and keys,
//! computed from the runs before any drawing.
//!
//! Colour stands for the run (one run: for the quantity); line style for the quantity (in the
//! loss panel: total, base, regularization) or the split (in the metric panel: train,
//! validation, test). The weight-norm panels, one per run, give colour to the layer instead
//! (`norms`). Each panel's key sits above its plotting area, outside the curves, and says
//! which is which.

use anyhow::{bail, Result};
use plotters::style::{RGBColor, BLACK};
use std::ops::Range;
use std::path::PathBuf;

use super::costs::cost_accuracy_panel;
use super::document::{run_title, PlotView, Split};
use super::legend::short_labels;
use super::norms::norms_panels;
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
    OpenSquare,
}

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
    let labels: Vec<String> = short_labels(runs).into_iter().map(|l| l.label).collect();
    let mut top = vec![loss_panel(runs, &colors, &epochs, options)?];
    top.extend(share_panel(runs, &colors, &epochs));
    let mut bottom: Vec<Panel> = metric_names(runs)
        .iter()
        .map(|metric| metric_panel(runs, &colors, &epochs, metric))
        .collect();
    bottom.extend(cost_accuracy_panel(runs, &colors, &epochs));
    let norms = norms_panels(runs, &colors, &labels, &epochs);
    // One run's norms fit beside its metrics; several runs' panels get their own row.
    let (bottom, third) = if runs.len() == 1 {
        ([bottom, norms].concat(), Vec::new())
    } else {
        (bottom, norms)
    };
    let rows: Vec<Vec<Panel>> = [top, bottom, third]
        .into_iter()
        .map(|row| row.into_iter().filter(Panel::has_data).collect::<Vec<_>>())
        .filter(|row| !row.is_empty())
        .collect();
    let legend = if runs.len() == 1 {
        Vec::new()
    } else {
        labels
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
    // The regularization losses and the implied weight decays: the right axis when small.
    let mut penalties: Vec<Line> = Vec::new();
    let mut implied: Vec<Line> = Vec::new();
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
            let line = Line {
                points,
                color,
                stroke,
                marker,
            };
            if key == "reg_loss" {
                penalties.push(line);
            } else {
                panel.lines.push(line);
            }
        }
        if !options.steps {
            implied.extend(implied_weight_decay(doc, color));
        }
    }
    let key_color = if runs.len() == 1 { colors[0] } else { BLACK };
    panel.keys = quantity_keys(&quantities, shown, key_color);
    if !implied.is_empty() {
        panel.keys.push(Key {
            label: "implied weight decay (not in the total)".to_string(),
            color: key_color,
            stroke: Stroke::LongDash,
            marker: Marker::None,
        });
    }
    put_small_terms(&mut panel, [penalties, implied]);
    Ok(panel)
}

/// The regularization loss (or implied weight decay) below this fraction of the largest
/// total or base loss gets the right axis: on the total's axis its early dip and its rise
/// would lie flat (0.03 → 0.015 beside a total of 1.2).
const SMALL_TERM_FRACTION: f64 = 0.3;

/// The regularization losses and the implied weight decays (`[penalties, implied]`) on the
/// panel's axis, or, each kind that is small beside the losses, on a right axis of their
/// own; their keys then say so.
fn put_small_terms(panel: &mut Panel, [penalties, implied]: [Vec<Line>; 2]) {
    let largest = |lines: &[Line]| {
        lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1.abs()))
            .fold(0.0, f64::max)
    };
    let losses = largest(&panel.lines);
    let small = |lines: &[Line]| {
        !lines.is_empty() && !panel.log_y && largest(lines) < SMALL_TERM_FRACTION * losses
    };
    let (small_penalties, small_implied) = (small(&penalties), small(&implied));
    let mut right = Vec::new();
    for (lines, small) in [(penalties, small_penalties), (implied, small_implied)] {
        if small {
            right.extend(lines);
        } else {
            panel.lines.extend(lines);
        }
    }
    for key in &mut panel.keys {
        let moved = match key.stroke {
            Stroke::Dotted => small_penalties,
            Stroke::LongDash => small_implied,
            _ => false,
        };
        if moved {
            key.label = match key.label.strip_suffix(')') {
                Some(open) => format!("{open}; right axis)"),
                None => format!("{} (right axis)", key.label),
            };
        }
    }
    let y_label = match (small_penalties, small_implied) {
        (true, false) => "regularization loss",
        (false, true) => "implied weight-decay loss",
        (true, true) => "regularization or implied decay",
        (false, false) => return,
    };
    panel.secondary = Some(Secondary {
        y_label: y_label.to_string(),
        lines: right,
    });
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
fn implied_weight_decay(doc: &RunDocument, color: RGBColor) -> Option<Line> {
    let implied: Vec<(f64, f64)> = doc
        .epochs
        .iter()
        .map(|e| (e.epoch as f64, e.implied_weight_decay_loss))
        .filter(|(_, v)| v.is_finite())
        .collect();
    implied.iter().any(|&(_, v)| v != 0.0).then_some(Line {
        points: implied,
        color,
        stroke: Stroke::LongDash,
        marker: Marker::None,
    })
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
        &format!("train and test {metric}"),
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
    if any_validation {
        // The title names only the splits drawn.
        panel.title = format!("train, validation and test {metric}");
    }
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

//! The weight-norm panels. A parameter is told apart by colour and line style, never by
//! markers alone: a colour per layer (or factor matrix) and a line style per kind of tensor
//! (weights solid, biases dashed). Several runs get one panel each (colour cannot stand for
//! the run and the parameter at once); many runs get one line per run, the norm of all
//! penalizable weights together.

use std::path::PathBuf;

use super::document::PlotView;
use super::figure::{Key, Line, Marker, Panel, Stroke, XAxis, PALETTE};
use crate::schema::RunDocument;

/// Most runs that get a norms panel each; more share one panel of total norms.
const MOST_NORM_PANELS: usize = 4;

/// The norm panels of `runs`: one per run (up to [`MOST_NORM_PANELS`]), else one panel with
/// each run's total weight norm in its colour.
pub(super) fn norms_panels(
    runs: &[(PathBuf, RunDocument)],
    colors: &[plotters::style::RGBColor],
    labels: &[String],
    epochs: &XAxis,
) -> Vec<Panel> {
    if runs.len() > MOST_NORM_PANELS {
        return total_norms_panel(runs, colors, epochs)
            .into_iter()
            .collect();
    }
    runs.iter()
        .zip(labels)
        .filter_map(|((_, doc), label)| {
            let title = if runs.len() == 1 {
                "weight norms".to_string()
            } else {
                format!("weight norms: {label}")
            };
            // Several runs: layer colours past the runs' own, so none reads as a run.
            let offset = if runs.len() == 1 { 0 } else { runs.len() };
            parameter_norms_panel(doc, &title, epochs, offset)
        })
        .collect()
}

/// The layer a parameter belongs to (`l_layers.0` for `l_layers.0.weight`, `user` for
/// `user_factors` and `user_bias`): its colour.
fn layer_of(name: &str) -> &str {
    for suffix in [".weight", ".bias", "_factors", "_bias"] {
        if let Some(layer) = name.strip_suffix(suffix) {
            return layer;
        }
    }
    name
}

/// Every parameter's norm in one run: a colour per layer, biases dashed.
fn parameter_norms_panel(
    doc: &RunDocument,
    title: &str,
    epochs: &XAxis,
    offset: usize,
) -> Option<Panel> {
    let mut panel = Panel::new(title, "weight norm", epochs.clone());
    let mut layers: Vec<&str> = Vec::new();
    let names = doc.norm_names();
    for name in &names {
        let layer = layer_of(name);
        if !layers.contains(&layer) {
            layers.push(layer);
        }
        let index = layers.iter().position(|l| *l == layer).unwrap_or(0);
        let color = PALETTE[(index + offset) % PALETTE.len()];
        let stroke = if name.ends_with("bias") {
            Stroke::Dashed
        } else {
            Stroke::Solid
        };
        panel.lines.push(Line {
            points: doc.norm_series(name),
            color,
            stroke,
            marker: Marker::None,
        });
        panel.keys.push(Key {
            label: name.clone(),
            color,
            stroke,
            marker: Marker::None,
        });
    }
    if panel.lines.iter().all(|l| l.points.is_empty()) {
        return None;
    }
    use_log_scale_when_spread(&mut panel);
    Some(panel)
}

/// √Σ‖W‖² over each run's weights (biases left out), one line per run.
fn total_norms_panel(
    runs: &[(PathBuf, RunDocument)],
    colors: &[plotters::style::RGBColor],
    epochs: &XAxis,
) -> Option<Panel> {
    let mut panel = Panel::new(
        "weight norm (all weights)",
        "√Σ‖W‖² (biases left out)",
        epochs.clone(),
    );
    for ((_, doc), &color) in runs.iter().zip(colors) {
        let points: Vec<(f64, f64)> = doc
            .epochs
            .iter()
            .filter_map(|e| {
                let squares: f64 = e
                    .weight_norms
                    .iter()
                    .filter(|(name, _)| !name.ends_with("bias"))
                    .map(|(_, norm)| norm * norm)
                    .sum();
                (squares.is_finite() && squares > 0.0).then(|| (e.epoch as f64, squares.sqrt()))
            })
            .collect();
        panel.lines.push(Line {
            points,
            color,
            stroke: Stroke::Solid,
            marker: Marker::None,
        });
    }
    if panel.lines.iter().all(|l| l.points.is_empty()) {
        return None;
    }
    use_log_scale_when_spread(&mut panel);
    Some(panel)
}

/// Bias norms near 1 next to weight norms near 50 would lie flat on a linear axis.
fn use_log_scale_when_spread(panel: &mut Panel) {
    let values: Vec<f64> = panel.points().map(|(_, y)| y).collect();
    let smallest = values.iter().copied().fold(f64::INFINITY, f64::min);
    let largest = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    panel.log_y = smallest > 0.0 && largest / smallest > 20.0;
    if panel.log_y {
        panel.y_label = format!("{} (log scale)", panel.y_label);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layers_weight_and_bias_share_its_colour() {
        assert_eq!(layer_of("l_layers.0.weight"), "l_layers.0");
        assert_eq!(layer_of("l_layers.0.bias"), "l_layers.0");
        assert_eq!(layer_of("user_factors"), "user");
        assert_eq!(layer_of("user_bias"), "user");
        assert_eq!(layer_of("global_bias"), "global");
        assert_eq!(layer_of("other"), "other");
    }
}

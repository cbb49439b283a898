//! How numbers and the run's settings are written in every finding, and the console layout.

use super::{best_of, Run, Severity};
use crate::config::ModelSpec;
use crate::optim::OptimizerKind;
use crate::util::format_number;

/// Series in the evidence show at most this many epochs (the first, the last and evenly
/// spaced ones between), so a 100-epoch run stays readable.
pub const MAX_SERIES_POINTS: usize = 6;

/// Console width the evidence is wrapped to.
pub(super) const WIDTH: usize = 100;

pub(super) fn severity_word(severity: Severity) -> &'static str {
    match severity {
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

/// Greedy word wrap of each line of `text`, indented by `indent`, continuation lines by two
/// more spaces.
pub(super) fn wrap(text: &str, indent: &str, width: usize) -> String {
    let mut out = String::new();
    for paragraph in text.lines() {
        let mut line = String::from(indent);
        let mut empty = true;
        for word in paragraph.split_whitespace() {
            if !empty && line.chars().count() + 1 + word.chars().count() > width {
                out += line.trim_end();
                out.push('\n');
                line = format!("{indent}  ");
                empty = true;
            }
            if !empty {
                line.push(' ');
            }
            line += word;
            empty = false;
        }
        out += line.trim_end();
        out.push('\n');
    }
    out
}

pub(super) fn num(value: f64) -> String {
    format_number(value)
}

/// A share as a percentage: one decimal, two below 0.1 %.
pub(super) fn pct(share: f64) -> String {
    if share.abs() < 0.001 && share != 0.0 {
        format!("{:.2}%", share * 100.0)
    } else {
        format!("{:.1}%", share * 100.0)
    }
}

/// A count with thousands separators (10,000).
pub(super) fn count(value: f64) -> String {
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if value < 0.0 {
        format!("-{out}")
    } else {
        out
    }
}

/// `epoch N value` pairs, at most [`MAX_SERIES_POINTS`] of them.
pub(super) fn series(points: &[(usize, f64)], show: impl Fn(f64) -> String) -> String {
    sample(points)
        .iter()
        .map(|(epoch, value)| format!("{} (epoch {epoch})", show(*value)))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn sample<T: Copy>(points: &[T]) -> Vec<T> {
    if points.len() <= MAX_SERIES_POINTS {
        return points.to_vec();
    }
    let last = points.len() - 1;
    let mut indices: Vec<usize> = (0..MAX_SERIES_POINTS)
        .map(|k| (k * last + (MAX_SERIES_POINTS - 1) / 2) / (MAX_SERIES_POINTS - 1))
        .collect();
    indices.dedup();
    indices.into_iter().map(|i| points[i]).collect()
}

/// A multiplicative factor; near 1 as "1 − x" so that its size stays visible.
pub(super) fn factor(value: f64) -> String {
    if (1.0 - value).abs() < 0.01 && value != 1.0 {
        format!("1 − {}", num(1.0 - value))
    } else {
        num(value)
    }
}

pub(super) fn sign(change: f64) -> &'static str {
    if change < 0.0 {
        "−"
    } else {
        "+"
    }
}

pub(super) fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The optimizer as its papers and torch.optim spell it.
pub(super) fn optimizer_name(kind: OptimizerKind) -> &'static str {
    match kind {
        OptimizerKind::Sgd => "SGD",
        OptimizerKind::Adam => "Adam",
        OptimizerKind::Adamw => "AdamW",
        OptimizerKind::Rmsprop => "RMSprop",
    }
}

/// The run's settings and curves as the phrases several findings share.
impl Run<'_> {
    /// "RMSE" or "accuracy".
    pub(super) fn metric_label(&self) -> String {
        match self.metric.name.as_str() {
            "rmse" => "RMSE".into(),
            "mae" => "MAE".into(),
            other => other.into(),
        }
    }

    pub(super) fn penalized_names(&self) -> &'static str {
        if self.penalty_active() && self.doc.regularization.penalize_bias {
            "weights and biases"
        } else {
            "weights"
        }
    }

    pub(super) fn example_word(&self) -> &'static str {
        match self.doc.config.model {
            ModelSpec::Mf(_) => "ratings",
            ModelSpec::Mlp(_) => "images",
        }
    }

    /// The regularization as a phrase: "batch-l2, λ = 0.1" / "no penalty and no weight decay".
    pub(super) fn regularization_phrase(&self) -> String {
        let r = &self.doc.regularization;
        let mut parts = Vec::new();
        if self.penalty_active() {
            parts.push(format!("penalty {}, λ = {}", r.penalty, num(r.lambda)));
        }
        if r.weight_decay != 0.0 {
            parts.push(format!(
                "weight decay {} ({})",
                num(r.weight_decay),
                r.weight_decay_mode
            ));
        }
        if parts.is_empty() {
            "no penalty and no weight decay".into()
        } else {
            parts.join(" and ")
        }
    }

    /// "test RMSE 0.9273 at epoch 10, best 0.9270 at epoch 6", for advice that points at the
    /// held-out curve.
    pub(super) fn held_out_phrase(&self) -> Option<String> {
        let part = self.held_out();
        let curve = self.curve(part, &self.metric.name);
        let last = *curve.last()?;
        let best = best_of(&curve, self.metric)?;
        let best = if best.0 == last.0 {
            "its best".to_string()
        } else {
            format!("best {} at epoch {}", num(best.1), best.0)
        };
        Some(format!(
            "{} {} {} at epoch {}, {best}",
            part.noun(),
            self.metric_label(),
            num(last.1),
            last.0,
        ))
    }

    /// Runnable flags for the L2 penalty as strong as `--weight-decay 1e-4` under SGD and
    /// Adam (λ/(2n)·Σ‖W‖² pulls like weight decay λ/n): advice names a strength, since a form
    /// without one trains with no penalty at all.
    pub(super) fn l2_flags(&self) -> String {
        match self.train_size() {
            Some(n) => format!(
                "--penalty l2 --lambda {} (n × 1e-4 with n = {} training examples: the pull of --weight-decay 1e-4)",
                num(n * 1e-4),
                count(n)
            ),
            None => "--penalty l2 --lambda 10".to_string(),
        }
    }

    /// `regulab rerun RUN.json --set key=value`, naming the run's own file when known.
    pub(super) fn rerun(&self, setting: &str) -> String {
        let file = self
            .doc
            .config
            .output
            .out
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "RUN.json".into());
        format!("`regulab rerun {file} --set {setting}`")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_formatted_with_four_significant_digits() {
        assert_eq!(format_number(0.96812), "0.9681");
        assert_eq!(format_number(1.10047), "1.100");
        assert_eq!(format_number(137.28), "137.3");
        assert_eq!(format_number(0.020921), "0.02092");
        assert_eq!(format_number(12345.6), "12346");
        assert_eq!(format_number(1e-6), "1.000e-6");
        assert_eq!(format_number(0.0), "0");
        assert_eq!(count(80000.0), "80,000");
        assert_eq!(count(943.0), "943");
        assert_eq!(pct(0.0008), "0.08%");
        assert_eq!(
            sample(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
            vec![1, 3, 5, 6, 8, 10]
        );
    }
}

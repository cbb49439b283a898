//! A tune whose choice sits at the edge of a searched range: the best value may lie outside
//! what was searched, so the range should be widened past that edge.
//!
//! A range (`log:A:B`, `uniform:A:B`, `int:A:B`) counts the choice at an edge when it lies in
//! the outer [`EDGE_FRACTION`] of the range (on the log scale for `log`); a list when the
//! choice is its smallest or largest number (lists of words have no edge).

use crate::schema::{Finding, FindingKind, SearchedKey, Severity, TuneSummary};
use std::collections::BTreeMap;

/// The outer tenth of a range: with the few dozen trials a tune affords, a random search
/// rarely places its best trial that close to a bound unless the optimum lies at or past it.
pub const EDGE_FRACTION: f64 = 0.1;

/// The evidence: which key, which side, the chosen value and the bounds.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Edge {
    key: String,
    spec: String,
    chosen: f64,
    /// The bound it sits at, and whether that is the upper one.
    bound: f64,
    upper: bool,
    log: bool,
    /// A list: the choice is its smallest or largest value.
    list: bool,
}

/// Whole numbers as they are (a dimension of 32), others as findings write numbers.
fn num(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e9 {
        format!("{value:.0}")
    } else {
        super::wording::num(value)
    }
}

/// The searched bounds of `spec` (`log:A:B[:N]`, `uniform:...`, `int:...`) or of a numeric
/// list; `None` for a list of words.
fn bounds(spec: &str) -> Option<(f64, f64, bool)> {
    let parts: Vec<&str> = spec.split(':').collect();
    if matches!(parts[0], "log" | "uniform" | "int") && parts.len() >= 3 {
        let low = parts[1].parse().ok()?;
        let high = parts[2].parse().ok()?;
        return Some((low, high, false));
    }
    let numbers: Option<Vec<f64>> = spec.split(',').map(|v| v.trim().parse().ok()).collect();
    let numbers = numbers?;
    let low = numbers.iter().copied().fold(f64::INFINITY, f64::min);
    let high = numbers.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (numbers.len() >= 2 && low < high).then_some((low, high, true))
}

fn edge_of(searched: &SearchedKey, chosen: f64) -> Option<Edge> {
    let (low, high, list) = bounds(&searched.spec)?;
    let scale = |x: f64| if searched.log { x.ln() } else { x };
    let at = (scale(chosen) - scale(low)) / (scale(high) - scale(low));
    let fraction = if list { 0.0 } else { EDGE_FRACTION };
    let upper = at >= 1.0 - fraction - 1e-12;
    let lower = at <= fraction + 1e-12;
    (upper || lower).then(|| Edge {
        key: searched.key.clone(),
        spec: searched.spec.clone(),
        chosen,
        bound: if upper { high } else { low },
        upper,
        log: searched.log,
        list,
    })
}

pub(super) fn detect(summary: &TuneSummary) -> Vec<Edge> {
    let Some(choice) = &summary.choice else {
        return Vec::new();
    };
    summary
        .search
        .iter()
        .filter_map(|searched| {
            let chosen = choice.values.get(&searched.key)?.as_f64()?;
            edge_of(searched, chosen)
        })
        .collect()
}

pub(super) fn describe(summary: &TuneSummary, edge: &Edge) -> Finding {
    let side = if edge.upper { "upper" } else { "lower" };
    let widened = match (edge.upper, edge.log) {
        (true, true) => format!("up to about {}", num(edge.bound * 10.0)),
        (false, true) => format!("down to about {}", num(edge.bound / 10.0)),
        (true, false) if edge.list => format!("with values above {}", num(edge.bound)),
        (false, false) if edge.list => format!("with values below {}", num(edge.bound)),
        (true, false) => format!("past {}", num(edge.bound)),
        (false, false) => format!("below {}", num(edge.bound)),
    };
    let metric = &summary.metric.name;
    let validation = summary
        .choice
        .as_ref()
        .map_or(f64::NAN, |choice| choice.validation);
    Finding {
        kind: FindingKind::SearchEdge,
        severity: Severity::Warning,
        title: format!(
            "the chosen {} ({}) sits at the {side} edge of its searched range ({})",
            edge.key,
            num(edge.chosen),
            edge.spec
        ),
        evidence: if edge.list {
            format!(
                "the trial chosen on validation ({metric} {}) has {} = {}, the {} of the listed \
                 values; the best value may lie beyond it",
                num(validation),
                edge.key,
                num(edge.chosen),
                if edge.upper { "largest" } else { "smallest" }
            )
        } else {
            format!(
                "the trial chosen on validation ({metric} {}) has {} = {}, within the outer {}% \
                 of the range {}{}; the best value may lie beyond {}",
                num(validation),
                edge.key,
                num(edge.chosen),
                (EDGE_FRACTION * 100.0).round(),
                edge.spec,
                if edge.log { " on a log scale" } else { "" },
                num(edge.bound)
            )
        },
        advice: format!(
            "widen --search {} {widened} and tune again (in a new folder); keep the choice only \
             if it then moves away from the edge",
            edge.key
        ),
        numbers: BTreeMap::from([
            ("chosen".to_string(), edge.chosen),
            ("bound".to_string(), edge.bound),
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(spec: &str, log: bool) -> SearchedKey {
        SearchedKey {
            key: "lambda".into(),
            spec: spec.into(),
            log,
        }
    }

    #[test]
    fn the_outer_tenth_of_a_range_and_the_ends_of_a_list_are_edges() {
        let lambda = key("log:0.001:1", true);
        // 0.5 is 90% of the way from 0.001 to 1 on a log scale (log10: -0.3 of -3..0).
        assert!(edge_of(&lambda, 0.6).is_some_and(|e| e.upper && e.bound == 1.0));
        assert!(edge_of(&lambda, 0.0015).is_some_and(|e| !e.upper));
        assert_eq!(edge_of(&lambda, 0.03), None);
        let dim = key("16,32,64", false);
        assert!(edge_of(&dim, 64.0).is_some_and(|e| e.upper));
        assert_eq!(edge_of(&dim, 32.0), None);
        assert_eq!(bounds("adam,sgd"), None);
    }
}

//! The searched values: `--search KEY=SPEC` for any trainer key, where SPEC is
//! `log:A:B` (log-uniform), `uniform:A:B`, `int:A:B` (integers, both ends included) or a
//! list `A,B,C`; and the two samplers that turn a space into trials. `random` draws every key
//! independently from a generator seeded by `--sampler-seed`; `grid` takes every combination
//! of the lists, and of ranges given a count (`log:A:B:N`: N points spaced evenly on the log
//! scale, both ends included; `uniform:A:B:N`, `int:A:B:N` alike), and refuses a range
//! without one, since a continuous range has no grid of its own.

use anyhow::{anyhow, bail, Context, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use std::collections::BTreeMap;

/// Where one key's values come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Domain {
    /// Log-uniform on [low, high]; `points` for the grid.
    Log {
        low: f64,
        high: f64,
        points: Option<usize>,
    },
    Uniform {
        low: f64,
        high: f64,
        points: Option<usize>,
    },
    /// Integers low..=high.
    Int {
        low: i64,
        high: i64,
        points: Option<usize>,
    },
    /// The values as typed (the configuration parses them like a flag's text).
    List(Vec<String>),
}

/// One searched key.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchAxis {
    pub key: &'static str,
    /// As the user wrote it after `=`, for the summary.
    pub spec: String,
    pub domain: Domain,
}

impl SearchAxis {
    /// Whether the values are spread on a log scale (the figure's x axis follows).
    pub fn is_log(&self) -> bool {
        matches!(self.domain, Domain::Log { .. })
    }
}

/// How trials are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampler {
    Grid,
    Random { seed: u64 },
}

/// Parses `KEY=SPEC` (the text of one `--search`); the key must be a configuration key.
pub fn parse_axis(text: &str) -> Result<SearchAxis> {
    let fail = |why: String| anyhow!("--search {text}: {why}");
    let (key, spec) = text
        .split_once('=')
        .ok_or_else(|| fail("expected KEY=SPEC, e.g. lambda=log:1e-3:1 or dim=16,32,64".into()))?;
    let key = crate::config::canonical_key(key).ok_or_else(|| {
        let hint = crate::config::closest_key(key)
            .map(|k| format!(" (did you mean {k}?)"))
            .unwrap_or_default();
        fail(format!("{:?} is not a configuration key{hint}", key.trim()))
    })?;
    let domain = parse_domain(spec.trim()).map_err(|e| fail(e.to_string()))?;
    Ok(SearchAxis {
        key,
        spec: spec.trim().to_string(),
        domain,
    })
}

fn parse_domain(spec: &str) -> Result<Domain> {
    let parts: Vec<&str> = spec.split(':').collect();
    let kind = parts[0];
    if !matches!(kind, "log" | "uniform" | "int") || parts.len() == 1 {
        let values: Vec<String> = spec.split(',').map(|v| v.trim().to_string()).collect();
        if values.iter().any(String::is_empty) {
            bail!("an empty value in the list");
        }
        return Ok(Domain::List(values));
    }
    if !(3..=4).contains(&parts.len()) {
        bail!("expected {kind}:LOW:HIGH or {kind}:LOW:HIGH:COUNT");
    }
    let points = parts
        .get(3)
        .map(|n| {
            n.parse::<usize>()
                .ok()
                .filter(|&n| n >= 2)
                .with_context(|| format!("count {n}: must be a whole number of at least 2"))
        })
        .transpose()?;
    if kind == "int" {
        let bound = |t: &str| {
            t.parse::<i64>()
                .map_err(|_| anyhow!("{t}: expected an integer"))
        };
        let (low, high) = (bound(parts[1])?, bound(parts[2])?);
        if low >= high {
            bail!("the low end must be below the high end");
        }
        return Ok(Domain::Int { low, high, points });
    }
    let bound = |t: &str| {
        t.parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| anyhow!("{t}: expected a number"))
    };
    let (low, high) = (bound(parts[1])?, bound(parts[2])?);
    if low >= high {
        bail!("the low end must be below the high end");
    }
    if kind == "log" {
        if low <= 0.0 {
            bail!("a log range needs a positive low end");
        }
        return Ok(Domain::Log { low, high, points });
    }
    Ok(Domain::Uniform { low, high, points })
}

/// A number with 4 significant digits: what a trial records and its configuration uses, so
/// that the summary's values can be typed back as they are.
fn rounded(x: f64) -> f64 {
    if x == 0.0 {
        return 0.0;
    }
    let digits = 3 - x.abs().log10().floor() as i32;
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

fn number(x: f64) -> Value {
    serde_json::Number::from_f64(rounded(x))
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

impl Domain {
    fn draw(&self, rng: &mut ChaCha8Rng) -> Value {
        match self {
            Domain::Log { low, high, .. } => {
                let u: f64 = rng.random();
                number((low.ln() + u * (high.ln() - low.ln())).exp())
            }
            Domain::Uniform { low, high, .. } => {
                let u: f64 = rng.random();
                number(low + u * (high - low))
            }
            Domain::Int { low, high, .. } => Value::from(rng.random_range(*low..=*high)),
            Domain::List(values) => {
                Value::String(values[rng.random_range(0..values.len())].clone())
            }
        }
    }

    /// The grid's values; `None` for a range without a count.
    fn grid(&self) -> Option<Vec<Value>> {
        let spaced = |low: f64, high: f64, n: usize| -> Vec<f64> {
            (0..n)
                .map(|i| low + (high - low) * i as f64 / (n - 1) as f64)
                .collect()
        };
        Some(match self {
            Domain::Log { low, high, points } => spaced(low.ln(), high.ln(), (*points)?)
                .into_iter()
                .map(|x| number(x.exp()))
                .collect(),
            Domain::Uniform { low, high, points } => spaced(*low, *high, (*points)?)
                .into_iter()
                .map(number)
                .collect(),
            Domain::Int { low, high, points } => {
                let mut values: Vec<i64> = spaced(*low as f64, *high as f64, (*points)?)
                    .into_iter()
                    .map(|x| x.round() as i64)
                    .collect();
                values.dedup();
                values.into_iter().map(Value::from).collect()
            }
            Domain::List(values) => values.iter().cloned().map(Value::String).collect(),
        })
    }
}

/// One trial's values, key by key.
pub type TrialValues = BTreeMap<String, Value>;

/// The trials: `trials` random draws (in draw order, so the first N of a longer search are
/// the same trials), or every grid combination (`trials` must then be `None` or the grid's
/// size, so that no combination is silently left out).
pub fn sample(
    axes: &[SearchAxis],
    sampler: Sampler,
    trials: Option<usize>,
) -> Result<Vec<TrialValues>> {
    if axes.is_empty() {
        bail!("--search: give at least one searched key, e.g. --search lambda=log:1e-3:1");
    }
    match sampler {
        Sampler::Random { seed } => {
            let n = trials.context("--trials N is required with --sampler random")?;
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            Ok((0..n)
                .map(|_| {
                    axes.iter()
                        .map(|axis| (axis.key.to_string(), axis.domain.draw(&mut rng)))
                        .collect()
                })
                .collect())
        }
        Sampler::Grid => {
            let mut combinations: Vec<TrialValues> = vec![BTreeMap::new()];
            for axis in axes {
                let values = axis.domain.grid().ok_or_else(|| {
                    anyhow!(
                        "--search {}={}: --sampler grid needs a list or a range with a count (e.g. {}:4)",
                        axis.key,
                        axis.spec,
                        axis.spec
                    )
                })?;
                combinations = combinations
                    .into_iter()
                    .flat_map(|trial| {
                        values.iter().map(move |value| {
                            let mut trial = trial.clone();
                            trial.insert(axis.key.to_string(), value.clone());
                            trial
                        })
                    })
                    .collect();
            }
            if let Some(n) = trials.filter(|&n| n != combinations.len()) {
                bail!(
                    "--trials {n}: the grid has {} combinations; leave --trials out with --sampler grid",
                    combinations.len()
                );
            }
            Ok(combinations)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn specs_parse_into_domains() {
        let axis = parse_axis("lambda=log:1e-3:1").unwrap();
        assert_eq!(axis.key, "lambda");
        assert_eq!(
            axis.domain,
            Domain::Log {
                low: 1e-3,
                high: 1.0,
                points: None
            }
        );
        assert_eq!(
            parse_axis("dim=16,32").unwrap().domain,
            Domain::List(vec!["16".into(), "32".into()])
        );
        assert_eq!(
            parse_axis("batch-size=int:64:512:3").unwrap().domain,
            Domain::Int {
                low: 64,
                high: 512,
                points: Some(3)
            }
        );
        assert_eq!(
            parse_axis("lamda=log:1e-3:1").unwrap_err().to_string(),
            "--search lamda=log:1e-3:1: \"lamda\" is not a configuration key (did you mean lambda?)"
        );
        assert_eq!(
            parse_axis("lambda=log:0:1").unwrap_err().to_string(),
            "--search lambda=log:0:1: a log range needs a positive low end"
        );
        assert!(parse_axis("lambda=uniform:1:0").is_err());
    }

    #[test]
    fn random_draws_are_seeded_within_bounds_and_a_prefix_of_longer_searches() {
        let axes = vec![
            parse_axis("lambda=log:1e-3:1").unwrap(),
            parse_axis("dim=int:4:8").unwrap(),
            parse_axis("optimizer=adam,sgd").unwrap(),
        ];
        let a = sample(&axes, Sampler::Random { seed: 7 }, Some(20)).unwrap();
        let b = sample(&axes, Sampler::Random { seed: 7 }, Some(5)).unwrap();
        assert_eq!(&a[..5], &b[..]);
        let c = sample(&axes, Sampler::Random { seed: 8 }, Some(5)).unwrap();
        assert_ne!(b, c);
        for trial in &a {
            let lambda = trial["lambda"].as_f64().unwrap();
            assert!((1e-3..=1.0).contains(&lambda), "{lambda}");
            let dim = trial["dim"].as_i64().unwrap();
            assert!((4..=8).contains(&dim));
        }
        // Log-uniform: about as many draws below 0.0316 (the log midpoint) as above.
        let many = sample(&axes[..1], Sampler::Random { seed: 1 }, Some(1000)).unwrap();
        let below = many
            .iter()
            .filter(|t| t["lambda"].as_f64().unwrap() < 10f64.powf(-1.5))
            .count();
        assert!((430..570).contains(&below), "{below}");
    }

    #[test]
    fn grid_takes_every_combination_and_refuses_ranges_without_a_count() {
        let axes = vec![
            parse_axis("lambda=log:1e-3:1:4").unwrap(),
            parse_axis("dim=16,32").unwrap(),
        ];
        let trials = sample(&axes, Sampler::Grid, None).unwrap();
        assert_eq!(trials.len(), 8);
        assert_eq!(trials[0]["lambda"], json!(0.001));
        assert_eq!(trials[1]["lambda"], json!(0.001));
        assert_eq!(trials[2]["lambda"], json!(0.01));
        assert_eq!(trials[7]["lambda"], json!(1.0));
        assert_eq!(trials[7]["dim"], json!("32"));
        let error = sample(&[parse_axis("lr=log:1e-3:1").unwrap()], Sampler::Grid, None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "--search lr=log:1e-3:1: --sampler grid needs a list or a range with a count (e.g. log:1e-3:1:4)"
        );
        assert!(sample(&axes, Sampler::Grid, Some(3)).is_err());
    }

    #[test]
    fn values_keep_four_significant_digits() {
        assert_eq!(rounded(0.0123456), 0.01235);
        assert_eq!(rounded(123.456), 123.5);
    }
}

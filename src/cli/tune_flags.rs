//! `regulab tune`'s arguments: its own flags (`--search`, `--trials`, the sampler, the
//! scheduler, `--metric`, `--folds`), then everything `sweep` takes (the trainer, `--out`,
//! `--jobs`, `--executor`, `--overwrite`, the trainer flags as the fixed configuration),
//! parsed by the sweep's own code.

use super::train_flags::{sweep_plan, SweepArgs};
use crate::tune::{parse_axis, Sampler, Scheduler, TunePlan};
use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::Value;

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Examples:\n  regulab tune mf --data ml-100k --folds u1,u2,u3,u4,u5 --val-split 0.1 --model biased --penalty frobenius \\\n    --search lambda=log:1e-3:1 --search dim=32,64,128 --search lr=log:1e-3:3e-2 \\\n    --trials 27 --scheduler asha --min-epochs 2 --max-epochs 54 --out tune/mf\n  regulab tune mf --data ml-100k --split u1 --val-split 0.1 --penalty batch-l2 --sampler grid \\\n    --search lambda=log:1e-3:1:7 --epochs 20 --out tune/grid\nSelection reads validation only (--val-split is required); the chosen trial's test metric is reported once, at the end.\nExit status: 0 when a trial was chosen, 1 when none completed, 128+N when signal N stopped the tune (the same command continues it)."
)]
pub struct TuneArgs {
    /// mf or mlp, --out DIR, --search KEY=SPEC (repeatable; SPEC log:A:B, uniform:A:B,
    /// int:A:B, each with an optional :COUNT for the grid, or a list A,B,C), --trials N
    /// (random), --sampler random|grid (default random), --sampler-seed S (default --seed),
    /// --scheduler none|asha (default none), --min-epochs E (default 1), --max-epochs E
    /// (default --epochs), --reduction ETA (default 3), --metric KEY (rmse, mae, accuracy, ndcg@10, ...; default the
    /// trainer's), --folds u1,u2,... (the validation mean over folds decides); then trainer
    /// flags with single values (the fixed part of every trial), --jobs N, --overwrite,
    /// --executor slurm and the --slurm-* flags as for sweep
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        num_args = 0..,
        value_name = "ARGS"
    )]
    pub args: Vec<String>,
}

/// The single-valued flags given, by name.
type Single = std::collections::BTreeMap<&'static str, String>;

/// Tune's own flags, taken out of the command line before the sweep's parser sees the rest.
#[derive(Default)]
struct TuneFlags {
    search: Vec<String>,
    single: Single,
    rest: Vec<String>,
}

const SINGLE: &[&str] = &[
    "--trials",
    "--sampler",
    "--sampler-seed",
    "--scheduler",
    "--min-epochs",
    "--max-epochs",
    "--reduction",
    "--metric",
    "--folds",
];

fn split_tune_args(args: &[String]) -> Result<TuneFlags> {
    let mut flags = TuneFlags::default();
    let mut tokens = args.iter();
    while let Some(token) = tokens.next() {
        let (name, inline) = match token.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name, Some(value.to_string())),
            _ => (token.as_str(), None),
        };
        let known = SINGLE.iter().find(|f| **f == name).copied();
        if name != "--search" && known.is_none() {
            flags.rest.push(token.clone());
            continue;
        }
        let value = inline
            .or_else(|| tokens.next().cloned())
            .with_context(|| format!("{name} needs a value"))?;
        match known {
            None => flags.search.push(value),
            Some(flag) => {
                if flags.single.insert(flag, value).is_some() {
                    bail!("{flag} given twice");
                }
            }
        }
    }
    Ok(flags)
}

fn count(flag: &str, text: &str) -> Result<usize> {
    text.parse::<usize>()
        .ok()
        .filter(|&n| n >= 1)
        .with_context(|| format!("{flag} {text}: must be a whole number of at least 1"))
}

/// The tune a command line describes.
pub fn tune_plan(args: &TuneArgs) -> Result<TunePlan> {
    let flags = split_tune_args(&args.args)?;
    let given = |flag: &str| flags.single.get(flag).map(String::as_str);
    if flags
        .rest
        .iter()
        .any(|t| t == "--split" || t.starts_with("--split="))
        && given("--folds").is_some()
    {
        bail!("--split: not with --folds (each fold is a split)");
    }
    let sweep = sweep_plan(&SweepArgs {
        args: flags.rest.clone(),
    })?;
    if let Some(axis) = sweep.axes.first() {
        bail!(
            "{}: tune takes one value per trainer flag; search values with --search {}=A,B,...",
            crate::setting::flag_name(axis.key),
            axis.key
        );
    }
    let folds: Vec<String> = match given("--folds") {
        None => Vec::new(),
        Some(list) => {
            let folds: Vec<String> = list.split(',').map(|f| f.trim().to_string()).collect();
            for fold in &folds {
                let mut layer = sweep.base.clone();
                layer
                    .set(
                        "split",
                        Value::String(fold.clone()),
                        crate::config::Origin::Flag,
                    )
                    .map_err(|e| {
                        anyhow::anyhow!("{}", format!("{e:#}").replacen("--split", "--folds", 1))
                    })?;
            }
            folds
        }
    };
    let space = flags
        .search
        .iter()
        .map(|text| parse_axis(text))
        .collect::<Result<Vec<_>>>()?;
    let sampler = sampler(&flags.single, sweep.base.values.seed.unwrap_or(0))?;
    let scheduler = scheduler(&flags.single)?;
    if given("--max-epochs").is_some() && sweep.base.is_given("epochs") {
        bail!("--epochs: not with --max-epochs (a tune's trials train --max-epochs at most)");
    }
    Ok(TunePlan {
        folds,
        space,
        sampler,
        trials: given("--trials")
            .map(|t| count("--trials", t))
            .transpose()?,
        scheduler,
        max_epochs: given("--max-epochs")
            .map(|t| count("--max-epochs", t))
            .transpose()?,
        metric: given("--metric")
            .map(|t| t.parse().map_err(|e| anyhow::anyhow!("--metric {t}: {e}")))
            .transpose()?,
        sweep,
    })
}

/// `--sampler` and `--sampler-seed` (default: the trials' `--seed`).
fn sampler(single: &Single, seed: u64) -> Result<Sampler> {
    let given = |flag: &str| single.get(flag).map(String::as_str);
    Ok(match given("--sampler").unwrap_or("random") {
        "grid" => {
            if given("--sampler-seed").is_some() {
                bail!("--sampler-seed: only with --sampler random");
            }
            Sampler::Grid
        }
        "random" => Sampler::Random {
            seed: match given("--sampler-seed") {
                Some(text) => text
                    .parse()
                    .ok()
                    .with_context(|| format!("--sampler-seed {text}: expected a whole number"))?,
                None => seed,
            },
        },
        other => bail!("--sampler {other}: expected random or grid"),
    })
}

/// `--scheduler`, `--min-epochs` and `--reduction`.
fn scheduler(single: &Single) -> Result<Scheduler> {
    let given = |flag: &str| single.get(flag).map(String::as_str);
    Ok(match given("--scheduler").unwrap_or("none") {
        "none" => {
            for flag in ["--min-epochs", "--reduction"] {
                if given(flag).is_some() {
                    bail!("{flag}: only with --scheduler asha");
                }
            }
            Scheduler::None
        }
        "asha" => Scheduler::Asha {
            min_epochs: given("--min-epochs")
                .map(|t| count("--min-epochs", t))
                .transpose()?
                .unwrap_or(1),
            reduction: given("--reduction")
                .map(|t| count("--reduction", t))
                .transpose()?
                .unwrap_or(3),
        },
        other => bail!("--scheduler {other}: expected none or asha"),
    })
}

//! `regulab sweep mf|mlp [FLAGS] --out DIR`: the trainer's own flags, any of which may take a
//! comma-separated list; every combination runs in turn, each writing its run document into
//! DIR, and `summary.json` / `summary.csv` collect the swept values with the best and final test
//! metric, plus mean and spread over seeds.

use crate::cli::{Cli, Command as CliCommand, MfArgs, MlpArgs};
use crate::report::{write_json_atomic, SCHEMA_VERSION};
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, ValueEnum};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The `kind` of a sweep's summary.json.
pub const SWEEP_KIND: &str = "regulab-sweep";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SweepTarget {
    Mf,
    Mlp,
}

impl SweepTarget {
    fn name(self) -> &'static str {
        match self {
            SweepTarget::Mf => "mf",
            SweepTarget::Mlp => "mlp",
        }
    }
}

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Any trainer flag may take a comma-separated list, e.g.\n  regulab sweep mf --data ml-100k --split u1 --penalty batch-l2 --lambda 0,0.01,0.1 --seed 1,2,3 --out sweeps/lambda\n--hidden takes alternatives separated by '/': --hidden 512,256,128/64,32"
)]
pub struct SweepArgs {
    /// Which trainer to sweep
    #[arg(value_enum)]
    pub target: SweepTarget,
    /// Output folder for the runs and the summary (may also come among the trainer flags)
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The trainer's flags; a comma-separated value is a list of alternatives
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub flags: Vec<String>,
}

/// One flag occurrence: its long name, the alternatives for its value (`None` for switches).
#[derive(Debug, Clone, PartialEq)]
struct FlagValues {
    name: String,
    values: Option<Vec<String>>,
}

/// Splits the trainer flags into occurrences, expanding comma lists. Switches take no value;
/// which flags take one is read from the trainer's own clap definition.
fn parse_flags(target: SweepTarget, flags: &[String]) -> Result<Vec<FlagValues>> {
    let command = match target {
        SweepTarget::Mf => MfArgs::augment_args(clap::Command::new("mf")),
        SweepTarget::Mlp => MlpArgs::augment_args(clap::Command::new("mlp")),
    };
    let takes_value = |name: &str| -> Result<bool> {
        command
            .get_arguments()
            .find(|a| a.get_long() == Some(name))
            .map(|a| a.get_action().takes_values())
            .with_context(|| format!("--{name}: not a flag of `regulab {}`", target.name()))
    };
    let mut parsed = Vec::new();
    let mut tokens = flags.iter();
    while let Some(token) = tokens.next() {
        let Some(flag) = token.strip_prefix("--") else {
            bail!("unexpected argument {token:?}: sweep takes trainer flags (--name value)");
        };
        let (name, inline) = match flag.split_once('=') {
            Some((name, value)) => (name.to_string(), Some(value.to_string())),
            None => (flag.to_string(), None),
        };
        if !takes_value(&name)? {
            if inline.is_some() {
                bail!("--{name} is a switch and takes no value");
            }
            parsed.push(FlagValues { name, values: None });
            continue;
        }
        let value = match inline {
            Some(value) => value,
            None => tokens
                .next()
                .cloned()
                .with_context(|| format!("--{name} needs a value"))?,
        };
        // --hidden is itself a comma list, so its alternatives are separated by '/'.
        let separator = if name == "hidden" { '/' } else { ',' };
        let values: Vec<String> = value
            .split(separator)
            .map(|v| v.trim().to_string())
            .collect();
        if values.iter().any(String::is_empty) {
            bail!("--{name} {value:?}: empty alternative in the list");
        }
        parsed.push(FlagValues {
            name,
            values: Some(values),
        });
    }
    Ok(parsed)
}

/// Every combination of the alternatives, as (argument list, swept values).
fn combinations(flags: &[FlagValues]) -> Vec<(Vec<String>, BTreeMap<String, String>)> {
    let mut combos: Vec<(Vec<String>, BTreeMap<String, String>)> =
        vec![(Vec::new(), BTreeMap::new())];
    for flag in flags {
        let mut next = Vec::new();
        for (args, swept) in &combos {
            match &flag.values {
                None => {
                    let mut args = args.clone();
                    args.push(format!("--{}", flag.name));
                    next.push((args, swept.clone()));
                }
                Some(values) => {
                    for value in values {
                        let mut args = args.clone();
                        args.push(format!("--{}={value}", flag.name));
                        let mut swept = swept.clone();
                        if values.len() > 1 {
                            swept.insert(flag.name.replace('-', "_"), value.clone());
                        }
                        next.push((args, swept));
                    }
                }
            }
        }
        combos = next;
    }
    combos
}

#[derive(Debug, Clone, Serialize)]
struct SweepRun {
    file: String,
    values: BTreeMap<String, serde_json::Value>,
    status: String,
    message: Option<String>,
    best_epoch: Option<u64>,
    best_test: Option<f64>,
    final_test: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
struct SweepGroup {
    /// The swept values other than the seed.
    values: BTreeMap<String, serde_json::Value>,
    runs: usize,
    completed: usize,
    best_test_mean: Option<f64>,
    best_test_std: Option<f64>,
    final_test_mean: Option<f64>,
    final_test_std: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
struct SweepSummary {
    schema_version: u32,
    kind: &'static str,
    command: &'static str,
    metric: &'static str,
    swept: Vec<String>,
    runs: Vec<SweepRun>,
    groups: Vec<SweepGroup>,
}

/// Numbers as JSON numbers, everything else as strings.
fn typed(value: &str) -> serde_json::Value {
    if let Ok(integer) = value.parse::<i64>() {
        return integer.into();
    }
    value
        .parse::<f64>()
        .ok()
        .and_then(|f| serde_json::Number::from_f64(f).map(serde_json::Value::Number))
        .unwrap_or_else(|| value.into())
}

/// Takes `--out DIR` out of the trainer flags (clap hands everything after the first trainer
/// flag to `flags`, so the folder may sit there).
fn sweep_folder(args: &SweepArgs) -> Result<(PathBuf, Vec<String>)> {
    let mut out = args.out.clone();
    let mut rest = Vec::new();
    let mut tokens = args.flags.iter();
    while let Some(token) = tokens.next() {
        let value = if token == "--out" {
            Some(tokens.next().cloned().context("--out needs a folder")?)
        } else {
            token.strip_prefix("--out=").map(str::to_string)
        };
        match value {
            Some(_) if out.is_some() => bail!("--out given twice"),
            Some(value) => out = Some(PathBuf::from(value)),
            None => rest.push(token.clone()),
        }
    }
    let out = out.context("--out DIR is required: the folder for the runs and the summary")?;
    Ok((out, rest))
}

pub fn run_sweep(args: &SweepArgs) -> Result<()> {
    let (out_dir, trainer_flags) = sweep_folder(args)?;
    let flags = parse_flags(args.target, &trainer_flags)?;
    let combos = combinations(&flags);
    let command = args.target.name();
    // Validate every combination before training any, so a typo fails fast.
    for (combo_args, _) in &combos {
        parse_trainer(command, combo_args)?;
    }
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("--out {}: cannot create folder", out_dir.display()))?;
    // Swept flags in command-line order (those given more than one value).
    let mut swept: Vec<String> = Vec::new();
    for flag in &flags {
        let name = flag.name.replace('-', "_");
        if flag.values.as_ref().is_some_and(|v| v.len() > 1) && !swept.contains(&name) {
            swept.push(name);
        }
    }
    let metric = match args.target {
        SweepTarget::Mf => "rmse",
        SweepTarget::Mlp => "accuracy",
    };
    let mut summary = SweepSummary {
        schema_version: SCHEMA_VERSION,
        kind: SWEEP_KIND,
        command,
        metric,
        swept,
        runs: Vec::new(),
        groups: Vec::new(),
    };
    let total = combos.len();
    for (index, (combo_args, values)) in combos.iter().enumerate() {
        let file = format!("run-{index:03}.json");
        let path = out_dir.join(&file);
        let label: Vec<String> = values.iter().map(|(k, v)| format!("{k}={v}")).collect();
        eprintln!(
            "regulab sweep: run {}/{total} {}",
            index + 1,
            label.join(" ")
        );
        let mut run_args = combo_args.clone();
        run_args.push(format!("--out={}", path.display()));
        let result = parse_trainer(command, &run_args).and_then(|cli| match cli.command {
            CliCommand::Mf(a) => crate::experiment::run_mf(&a),
            CliCommand::Mlp(a) => crate::experiment::run_mlp(&a),
            _ => bail!("not a trainer"),
        });
        let record = summarize_run(
            &path,
            &file,
            values,
            metric,
            result.err().map(|e| format!("{e:#}")),
        );
        if record.status != "completed" {
            eprintln!(
                "regulab sweep: run {}/{total} {}: {}",
                index + 1,
                record.status,
                record.message.as_deref().unwrap_or("")
            );
        }
        summary.runs.push(record);
        summary.groups = group_over_seeds(&summary.runs);
        write_summary(&out_dir, &summary)?;
    }
    let completed = summary
        .runs
        .iter()
        .filter(|r| r.status == "completed")
        .count();
    eprintln!(
        "regulab sweep: {completed} of {total} runs completed; summary in {}",
        out_dir.join("summary.json").display()
    );
    Ok(())
}

fn first_line(text: &str) -> String {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .to_string()
}

fn parse_trainer(command: &str, args: &[String]) -> Result<Cli> {
    let argv = std::iter::once("regulab".to_string())
        .chain(std::iter::once(command.to_string()))
        .chain(args.iter().cloned());
    Cli::try_parse_from(argv).map_err(|e| anyhow::anyhow!("{}", first_line(&e.to_string())))
}

fn summarize_run(
    path: &Path,
    file: &str,
    values: &BTreeMap<String, String>,
    metric: &str,
    error: Option<String>,
) -> SweepRun {
    let document: Option<serde_json::Value> = std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    let summary = document.as_ref().map(|d| &d["summary"]);
    let get = |key: &str| summary.and_then(|s| s[key].as_f64());
    SweepRun {
        file: file.to_string(),
        values: values.iter().map(|(k, v)| (k.clone(), typed(v))).collect(),
        status: document
            .as_ref()
            .and_then(|d| d["status"].as_str().map(str::to_string))
            .unwrap_or_else(|| "failed".into()),
        message: error.or_else(|| {
            document
                .as_ref()
                .and_then(|d| d["message"].as_str().map(str::to_string))
        }),
        best_epoch: summary.and_then(|s| s["best_epoch"].as_u64()),
        best_test: get(&format!("best_test_{metric}")),
        final_test: get(&format!("final_test_{metric}")),
    }
}

fn mean_and_std(values: &[f64]) -> (Option<f64>, Option<f64>) {
    if values.is_empty() {
        return (None, None);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    // Sample standard deviation (n - 1); zero for a single seed.
    let std = if values.len() > 1 {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (Some(mean), Some(std))
}

fn group_over_seeds(runs: &[SweepRun]) -> Vec<SweepGroup> {
    let mut groups: Vec<(BTreeMap<String, serde_json::Value>, Vec<&SweepRun>)> = Vec::new();
    for run in runs {
        let mut key = run.values.clone();
        key.remove("seed");
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(run),
            None => groups.push((key, vec![run])),
        }
    }
    groups
        .into_iter()
        .map(|(values, members)| {
            let best: Vec<f64> = members.iter().filter_map(|r| r.best_test).collect();
            let last: Vec<f64> = members.iter().filter_map(|r| r.final_test).collect();
            let (best_test_mean, best_test_std) = mean_and_std(&best);
            let (final_test_mean, final_test_std) = mean_and_std(&last);
            SweepGroup {
                values,
                runs: members.len(),
                completed: members.iter().filter(|r| r.status == "completed").count(),
                best_test_mean,
                best_test_std,
                final_test_mean,
                final_test_std,
            }
        })
        .collect()
}

fn write_summary(dir: &Path, summary: &SweepSummary) -> Result<()> {
    write_json_atomic(&dir.join("summary.json"), summary)?;
    let csv_path = dir.join("summary.csv");
    let temp = dir.join(".summary.csv.tmp");
    let mut writer = csv::Writer::from_path(&temp)
        .with_context(|| format!("{}: cannot write", temp.display()))?;
    let metric = summary.metric;
    let mut header: Vec<String> = vec!["file".into(), "status".into()];
    header.extend(summary.swept.iter().cloned());
    header.extend([
        "best_epoch".to_string(),
        format!("best_test_{metric}"),
        format!("final_test_{metric}"),
        format!("seeds_best_test_{metric}_mean"),
        format!("seeds_best_test_{metric}_std"),
        format!("seeds_final_test_{metric}_mean"),
        format!("seeds_final_test_{metric}_std"),
        "message".into(),
    ]);
    writer.write_record(&header)?;
    let number = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    for run in &summary.runs {
        let mut key = run.values.clone();
        key.remove("seed");
        let group = summary.groups.iter().find(|g| g.values == key);
        let mut row: Vec<String> = vec![run.file.clone(), run.status.clone()];
        for name in &summary.swept {
            row.push(match run.values.get(name) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            });
        }
        row.push(run.best_epoch.map(|e| e.to_string()).unwrap_or_default());
        row.push(number(run.best_test));
        row.push(number(run.final_test));
        row.push(number(group.and_then(|g| g.best_test_mean)));
        row.push(number(group.and_then(|g| g.best_test_std)));
        row.push(number(group.and_then(|g| g.final_test_mean)));
        row.push(number(group.and_then(|g| g.final_test_std)));
        row.push(run.message.clone().unwrap_or_default());
        writer.write_record(&row)?;
    }
    writer.flush()?;
    drop(writer);
    std::fs::rename(&temp, &csv_path)
        .with_context(|| format!("{}: cannot write", csv_path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn comma_lists_expand_into_the_grid() {
        let flags = parse_flags(
            SweepTarget::Mf,
            &strings(&[
                "--lambda",
                "0,0.1",
                "--seed=1,2,3",
                "--penalize-bias",
                "--penalty",
                "batch-l2",
            ]),
        )
        .unwrap();
        let combos = combinations(&flags);
        assert_eq!(combos.len(), 6);
        assert_eq!(
            combos[0].0,
            strings(&[
                "--lambda=0",
                "--seed=1",
                "--penalize-bias",
                "--penalty=batch-l2"
            ])
        );
        assert_eq!(combos[5].1.get("lambda").map(String::as_str), Some("0.1"));
        assert_eq!(combos[5].1.get("seed").map(String::as_str), Some("3"));
        assert!(
            !combos[0].1.contains_key("penalty"),
            "a single value is not swept"
        );
    }

    #[test]
    fn hidden_alternatives_use_slashes() {
        let flags = parse_flags(
            SweepTarget::Mlp,
            &strings(&["--data", "x", "--hidden", "512,256/64"]),
        )
        .unwrap();
        let combos = combinations(&flags);
        assert_eq!(combos.len(), 2);
        assert!(combos[0].0.contains(&"--hidden=512,256".to_string()));
    }

    #[test]
    fn unknown_flags_and_missing_values_are_errors() {
        assert!(parse_flags(SweepTarget::Mf, &strings(&["--lamda", "1"])).is_err());
        assert!(parse_flags(SweepTarget::Mf, &strings(&["--lambda"])).is_err());
        assert!(parse_flags(SweepTarget::Mf, &strings(&["--lambda", "1,,2"])).is_err());
    }

    #[test]
    fn seeds_are_aggregated() {
        let run = |lambda: f64, seed: f64, best: f64| SweepRun {
            file: String::new(),
            values: BTreeMap::from([
                ("lambda".to_string(), lambda.into()),
                ("seed".to_string(), seed.into()),
            ]),
            status: "completed".into(),
            message: None,
            best_epoch: Some(1),
            best_test: Some(best),
            final_test: Some(best),
        };
        let groups =
            group_over_seeds(&[run(0.0, 1.0, 1.0), run(0.0, 2.0, 3.0), run(0.1, 1.0, 5.0)]);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].best_test_mean, Some(2.0));
        assert!((groups[0].best_test_std.unwrap() - 2f64.sqrt()).abs() < 1e-12);
        assert_eq!(groups[1].runs, 1);
    }
}

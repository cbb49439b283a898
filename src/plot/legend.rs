//! Legend labels: each run named by the config values that tell it apart from the others,
//! worded short (`batch-l2 λ=0.1 seed 2`), and the setting it shares with other seeds.

use serde_json::Value;
use std::path::{Path, PathBuf};

use super::document::PlotView;
use crate::schema::RunDocument;

/// Config keys that only say where results go or how chatty a run is: they differ
/// between otherwise identical runs and would only clutter legends.
const LEGEND_IGNORED_KEYS: &[&str] = &[
    "output",
    "out",
    "output_dir",
    "out_dir",
    "quiet",
    "progress",
    "log_every",
    "checkpoint_every",
    "threads",
    "device",
    "force",
    "overwrite",
    "download",
];
/// A run's config as key-value pairs, `command` first.
type ConfigPairs = Vec<(String, Value)>;

/// A run's short label and the setting it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct RunLabel {
    /// What differs between the runs, for people: `batch-l2 λ=0.1 seed 2`; never a path.
    pub label: String,
    /// Runs that differ only in their seed or split share a setting (numbered from 0 in
    /// order of appearance).
    pub setting: usize,
    /// The run's place among its setting's runs (0, 1, ...).
    pub replicate: usize,
    /// How many runs its setting has.
    pub replicates: usize,
}

/// Short labels from the config values that differ between the runs (`λ=0.1 seed 2`, a
/// data set by its folder's name), and the setting each run belongs to. One run, or runs
/// alike in every value, are named by their file names without `.json`.
pub fn short_labels(runs: &[(PathBuf, RunDocument)]) -> Vec<RunLabel> {
    let merged = config_pairs(runs);
    let chosen = if runs.len() > 1 {
        splitting_keys(candidate_keys(runs, &merged), &merged)
    } else {
        Vec::new()
    };
    let stems: Vec<String> = runs
        .iter()
        .map(|(p, _)| {
            p.file_stem()
                .map_or_else(|| file_name(p), |s| s.to_string_lossy().into_owned())
        })
        .collect();
    let mut labels: Vec<String> = merged
        .iter()
        .enumerate()
        .map(|(index, m)| {
            if chosen.is_empty() {
                stems[index].clone()
            } else {
                short_parts(m, &chosen).join(" ")
            }
        })
        .collect();
    // Runs alike in every value a legend compares (an MF flag beside MLP runs) are told
    // apart by their file names.
    for index in 0..labels.len() {
        let same = |l: &String| *l == labels[index];
        if labels.iter().filter(|l| same(l)).count() > 1 {
            let twins: Vec<usize> = (0..labels.len()).filter(|&i| same(&labels[i])).collect();
            let stems_differ = twins.iter().any(|&i| stems[i] != stems[index]);
            for &i in &twins {
                let name = if stems_differ {
                    stems[i].clone()
                } else {
                    format!("{} {}", stems[i], i + 1)
                };
                labels[i] = if chosen.is_empty() {
                    name
                } else {
                    format!("{} ({name})", labels[i])
                };
            }
        }
    }
    for (label, (_, doc)) in labels.iter_mut().zip(runs) {
        if doc.status != crate::schema::RunStatus::Completed {
            *label += &format!(" [{}]", doc.status);
        }
    }
    // A setting is every value but the seed or split and what only says where output goes.
    let settings: Vec<String> = merged
        .iter()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| {
                    !crate::schema::REPLICATE_KEYS.contains(&k.as_str())
                        && !LEGEND_IGNORED_KEYS.contains(&k.as_str())
                })
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("\u{1}")
        })
        .collect();
    let mut order: Vec<&String> = Vec::new();
    for setting in &settings {
        if !order.contains(&setting) {
            order.push(setting);
        }
    }
    labels
        .into_iter()
        .enumerate()
        .map(|(index, label)| {
            let mine = &settings[index];
            RunLabel {
                label,
                setting: order.iter().position(|s| *s == mine).unwrap_or(0),
                replicate: settings[..index].iter().filter(|s| *s == mine).count(),
                replicates: settings.iter().filter(|s| *s == mine).count(),
            }
        })
        .collect()
}

/// The chosen keys' values, worded for a legend: `λ=0.1`, `seed 2`, `adam`, `ml-100k`.
/// A λ beside "no penalty" is left out: it means nothing there.
fn short_parts(m: &[(String, Value)], keys: &[String]) -> Vec<String> {
    let no_penalty = lookup(m, "penalty").is_some_and(|v| v == "none");
    keys.iter()
        .filter_map(|key| {
            let value = lookup(m, key).unwrap_or(Value::Null);
            let text = short_value(&value);
            Some(match key.as_str() {
                "lambda" if no_penalty => return None,
                "penalty" if no_penalty => "no penalty".to_string(),
                "lambda" => format!("λ={text}"),
                "seed" => format!("seed {text}"),
                "weight_decay" => format!("wd={text}"),
                "command" | "penalty" | "optimizer" | "split" | "data" | "model" | "loss"
                | "activation" => text,
                _ => format!("{key}={text}"),
            })
        })
        .collect()
}

/// A config value as short text: numbers without a trailing `.0`, paths by their last
/// component, lists joined with commas.
fn short_value(value: &Value) -> String {
    match value {
        Value::String(s) if s.contains('/') || s.contains('\\') => file_name(Path::new(s)),
        Value::Number(n) => match n.as_f64() {
            Some(x) if n.is_f64() => format!("{x}"),
            _ => n.to_string(),
        },
        Value::Array(items) => items.iter().map(short_value).collect::<Vec<_>>().join(","),
        other => format_value(other),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Every run's config pairs. The command joins the flags: runs of different commands differ
/// in it first.
fn config_pairs(runs: &[(PathBuf, RunDocument)]) -> Vec<ConfigPairs> {
    runs.iter()
        .map(|(_, doc)| {
            let command = Value::String(doc.command.to_string());
            std::iter::once(("command".to_string(), command))
                .chain(
                    doc.config_pairs()
                        .into_iter()
                        .filter(|(k, _)| k != "command"),
                )
                .collect()
        })
        .collect()
}

fn lookup(m: &[(String, Value)], key: &str) -> Option<Value> {
    m.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

/// The keys a legend may name, in first-seen order.
fn candidate_keys(runs: &[(PathBuf, RunDocument)], merged: &[ConfigPairs]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for m in merged {
        for (k, _) in m {
            if !keys.contains(k) && !LEGEND_IGNORED_KEYS.contains(&k.as_str()) {
                keys.push(k.clone());
            }
        }
    }
    let commands: Vec<_> = runs.iter().map(|(_, d)| d.command).collect();
    if commands.iter().any(|c| *c != commands[0]) {
        // Model-specific flags would all "differ"; compare only the shared ones.
        keys.retain(|k| merged.iter().all(|m| lookup(m, k).is_some()));
    }
    keys
}

/// How many groups the runs fall into by their values of `keys`.
fn partition(merged: &[ConfigPairs], keys: &[String]) -> usize {
    let mut seen: Vec<String> = merged
        .iter()
        .map(|m| {
            keys.iter()
                // An absent flag and a null one both mean "not set".
                .map(|k| lookup(m, k).unwrap_or(Value::Null).to_string())
                .collect::<Vec<_>>()
                .join("\u{1}")
        })
        .collect();
    seen.sort();
    seen.dedup();
    seen.len()
}

/// The keys that each split the runs further, in order; once every run is told apart,
/// each further difference (a weight decay next to "no penalty"); and the penalty whenever
/// it differs (a λ means nothing without it).
fn splitting_keys(keys: Vec<String>, merged: &[ConfigPairs]) -> Vec<String> {
    let mut chosen: Vec<String> = Vec::new();
    for key in keys {
        if partition(merged, std::slice::from_ref(&key)) < 2 {
            continue;
        }
        let mut with = chosen.clone();
        with.push(key.clone());
        let groups = partition(merged, &chosen);
        if key == "penalty" || partition(merged, &with) > groups || groups == merged.len() {
            chosen = with;
        }
    }
    chosen
}

fn format_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "none".to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(command: &str, config: &str, status: &str) -> RunDocument {
        let text = format!(
            r#"{{"schema_version": 1, "kind": "regulab-run", "command": "{command}",
                "status": "{status}", "config": {config}, "epochs": []}}"#
        );
        let value: Value = serde_json::from_str(&text).expect("test JSON");
        crate::schema::run_from_value(value).expect("run document")
    }

    fn words(runs: &[(PathBuf, RunDocument)]) -> Vec<String> {
        short_labels(runs).into_iter().map(|l| l.label).collect()
    }

    #[test]
    fn legends_name_the_differing_config_values() {
        let runs = vec![
            (
                PathBuf::from("a.json"),
                run(
                    "mf",
                    r#"{"optimizer": "adam", "lr": 0.01, "penalty": "l2", "lambda": 0.001, "seed": 0, "output": "a"}"#,
                    "completed",
                ),
            ),
            (
                PathBuf::from("b.json"),
                run(
                    "mf",
                    r#"{"optimizer": "sgd", "lr": 0.05, "penalty": "l2", "lambda": 0.001, "seed": 0, "output": "b"}"#,
                    "completed",
                ),
            ),
            (
                PathBuf::from("c.json"),
                run(
                    "mf",
                    r#"{"optimizer": "adam", "lr": 0.01, "penalty": "l2", "lambda": 0.1, "seed": 0, "output": "c"}"#,
                    "diverged",
                ),
            ),
        ];
        // lr follows from the optimizer, output is ignored, seed does not differ.
        assert_eq!(
            words(&runs),
            vec!["adam λ=0.001", "sgd λ=0.001", "adam λ=0.1 [diverged]"]
        );
    }

    #[test]
    fn short_labels_word_the_differences_and_group_seeds_by_setting() {
        let config = |lambda: f64, seed: u32, data: &str| {
            format!(
                r#"{{"penalty": "batch-l2", "lambda": {lambda:?}, "seed": {seed}, "data": "{data}", "out": "x/{seed}"}}"#
            )
        };
        let runs: Vec<(PathBuf, RunDocument)> = [(0.1, 1), (0.1, 2), (1.0, 1), (0.0, 1)]
            .iter()
            .map(|&(lambda, seed)| {
                (
                    PathBuf::from(format!("runs/l{lambda}-s{seed}.json")),
                    run(
                        "mf",
                        &config(lambda, seed, "/data/sets/ml-100k"),
                        "completed",
                    ),
                )
            })
            .collect();
        let labels = short_labels(&runs);
        let words: Vec<&str> = labels.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(
            words,
            vec!["λ=0.1 seed 1", "λ=0.1 seed 2", "λ=1 seed 1", "λ=0 seed 1"]
        );
        let settings: Vec<(usize, usize, usize)> = labels
            .iter()
            .map(|l| (l.setting, l.replicate, l.replicates))
            .collect();
        assert_eq!(settings, vec![(0, 0, 2), (0, 1, 2), (1, 0, 1), (2, 0, 1)]);
        // Data sets by their folder's name; one run by its file name.
        let mut other = runs[..2].to_vec();
        other[1].1 = run("mf", &config(0.1, 1, "/data/sets/ml-1m"), "completed");
        let words: Vec<String> = short_labels(&other).into_iter().map(|l| l.label).collect();
        assert_eq!(words, vec!["ml-100k", "ml-1m"]);
        assert_eq!(short_labels(&runs[..1])[0].label, "l0.1-s1");
    }

    #[test]
    fn legends_keep_independent_differences() {
        let runs = vec![
            (
                PathBuf::from("a.json"),
                run(
                    "mf",
                    r#"{"lambda": 0.05, "penalty": "batch-l2", "weight_decay": 0.0}"#,
                    "completed",
                ),
            ),
            (
                PathBuf::from("b.json"),
                run(
                    "mf",
                    r#"{"lambda": 10.0, "penalty": "frobenius", "weight_decay": 0.0}"#,
                    "completed",
                ),
            ),
            (
                PathBuf::from("c.json"),
                run(
                    "mf",
                    r#"{"lambda": 0.0, "penalty": "none", "weight_decay": 0.0001}"#,
                    "completed",
                ),
            ),
        ];
        assert_eq!(
            words(&runs),
            vec![
                "wd=0 batch-l2 λ=0.05",
                "wd=0 frobenius λ=10",
                "wd=0.0001 no penalty",
            ]
        );
    }

    #[test]
    fn legends_fall_back_to_file_names_and_compare_shared_flags_across_commands() {
        let same = r#"{"penalty": "l1", "lambda": 0.01}"#;
        let runs = vec![
            (PathBuf::from("x/run.json"), run("mf", same, "completed")),
            (PathBuf::from("y/other.json"), run("mf", same, "completed")),
        ];
        assert_eq!(words(&runs), vec!["run", "other"]);
        let runs = vec![
            (PathBuf::from("x/run.json"), run("mf", same, "completed")),
            (PathBuf::from("y/run.json"), run("mf", same, "completed")),
        ];
        // Never a path: the same file name in two folders is numbered.
        assert_eq!(words(&runs), vec!["run 1", "run 2"]);
        let runs = vec![
            (
                PathBuf::from("mf.json"),
                run(
                    "mf",
                    r#"{"data": "x", "dim": 16, "penalty": "l1", "lambda": 0.01}"#,
                    "completed",
                ),
            ),
            (
                PathBuf::from("mlp.json"),
                run(
                    "mlp",
                    r#"{"data": "x", "hidden": [256], "penalty": "l1", "lambda": 0.01}"#,
                    "completed",
                ),
            ),
        ];
        // The trainers' own defaults differ too, and say which trainer ran.
        assert_eq!(
            words(&runs),
            vec![
                "mf lr=0.01 batch_size=1024 epochs=20",
                "mlp lr=0.001 batch_size=128 epochs=10"
            ]
        );
    }
}

//! Legend labels: each run named by the config values that tell it apart from the others.

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
];
const LEGEND_MAX_KEYS: usize = 4;

/// A run's config as key-value pairs, `command` first.
type ConfigPairs = Vec<(String, Value)>;

/// One label per run: the config values that tell the runs apart (`lambda=0.001,
/// optimizer=adam`), else the file name. Mirrors `legend_labels` in plot_curves.py.
pub fn legend_labels(runs: &[(PathBuf, RunDocument)]) -> Vec<String> {
    if runs.len() == 1 {
        return vec![file_name(&runs[0].0)];
    }
    let merged = config_pairs(runs);
    let chosen = telling_keys(candidate_keys(runs, &merged), &merged);
    let shown = &chosen[..chosen.len().min(LEGEND_MAX_KEYS)];
    let names: Vec<String> = runs.iter().map(|(p, _)| file_name(p)).collect();
    runs.iter()
        .zip(&merged)
        .zip(&names)
        .map(|(((path, doc), m), name)| {
            let mut label = if shown.is_empty() {
                // The same file name in different folders: the path tells them apart.
                if names.iter().filter(|n| *n == name).count() > 1 {
                    path.display().to_string()
                } else {
                    name.clone()
                }
            } else {
                let parts: Vec<String> = shown
                    .iter()
                    .filter_map(|k| lookup(m, k).map(|v| format!("{k}={}", format_value(&v))))
                    .collect();
                let mut label = parts.join(", ");
                if chosen.len() > shown.len() {
                    label += ", ...";
                }
                label
            };
            if let Some(status) = Some(doc.status.to_string()).filter(|s| s != "completed") {
                label += &format!(" [{status}]");
            }
            label
        })
        .collect()
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

/// A key whose value follows from the keys already chosen (an optimizer's default lr)
/// tells the reader nothing new. "Follows" needs evidence: runs that share the chosen
/// values and agree on the key. When the chosen keys already tell every run apart,
/// each further difference (penalty next to lambda) is kept.
fn telling_keys(keys: Vec<String>, merged: &[ConfigPairs]) -> Vec<String> {
    let mut chosen: Vec<String> = Vec::new();
    for key in keys {
        if partition(merged, std::slice::from_ref(&key)) < 2 {
            continue;
        }
        let mut with = chosen.clone();
        with.push(key.clone());
        let groups = partition(merged, &chosen);
        if partition(merged, &with) > groups || groups == merged.len() {
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
            legend_labels(&runs),
            vec![
                "optimizer=adam, lambda=0.001",
                "optimizer=sgd, lambda=0.001",
                "optimizer=adam, lambda=0.1 [diverged]",
            ]
        );
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
            legend_labels(&runs),
            vec![
                "weight_decay=0.0, penalty=batch-l2, lambda=0.05",
                "weight_decay=0.0, penalty=frobenius, lambda=10.0",
                "weight_decay=0.0001, penalty=none, lambda=0.0",
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
        assert_eq!(legend_labels(&runs), vec!["run.json", "other.json"]);
        let runs = vec![
            (PathBuf::from("x/run.json"), run("mf", same, "completed")),
            (PathBuf::from("y/run.json"), run("mf", same, "completed")),
        ];
        assert_eq!(legend_labels(&runs), vec!["x/run.json", "y/run.json"]);
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
            legend_labels(&runs),
            vec![
                "command=mf, lr=0.01, batch_size=1024, epochs=20",
                "command=mlp, lr=0.001, batch_size=128, epochs=10"
            ]
        );
    }
}

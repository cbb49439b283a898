//! Ranking metrics (precision@K, recall@K, ndcg@K, hit@K): `regulab eval --metrics` against
//! an independent Python computation from the saved model file
//! (`scripts/reference/ranking_reference.py`), per-epoch recording, selection by a ranking
//! metric, and the errors.

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;

/// Equal up to float64 summation order (the means are sums over a few hundred users).
const TOLERANCE: f64 = 1e-12;

fn eval_json(args: &[&str]) -> Value {
    let output = run_ok(
        regulab()
            .arg("eval")
            .args(args)
            .args(["--json", "--device", "cpu"]),
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn python_reference(model: &Path, split: &str, metrics: &str) -> Value {
    let output = run_ok(
        std::process::Command::new(python())
            .arg(script("scripts/reference/ranking_reference.py"))
            .arg("--model")
            .arg(model)
            .args(["--data", &ml100k(), "--split", split, "--metrics", metrics]),
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Trains on an official split, evaluates with `metrics` and compares every value, the
/// model's and the most-popular baseline's, and the user counts with Python's.
fn assert_matches_reference(name: &str, split: &str, flags: &[&str], metrics: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let data = ml100k();
    let mut args = vec!["mf", "--data", &data, "--split", split];
    args.extend_from_slice(flags);
    let document = train(dir.path(), name, &args);
    let run = dir.path().join(format!("{name}.json"));
    let eval = eval_json(&[run.to_str().unwrap(), "--metrics", metrics]);
    let model = dir.path().join(format!("{name}.final.safetensors"));
    let python = python_reference(&model, split, metrics);
    assert_eq!(eval["ranking"]["users"], python["users"], "{name}: users");
    assert_eq!(
        eval["ranking"]["users_without_relevant"], python["users_without_relevant"],
        "{name}: users without a relevant rating"
    );
    for metric in metrics.split(',') {
        let expected = python["model"][metric].as_f64().unwrap();
        let actual = eval["metrics"][metric].as_f64().unwrap();
        assert_close(actual, expected, TOLERANCE, &format!("{name}: {metric}"));
        let expected = python["most_popular"][metric].as_f64().unwrap();
        let actual = eval["ranking"]["most_popular"][metric].as_f64().unwrap();
        assert_close(
            actual,
            expected,
            TOLERANCE,
            &format!("{name}: most popular {metric}"),
        );
    }
    document
}

#[test]
fn biased_mf_matches_the_python_reference() {
    let metrics = "precision@10,recall@10,ndcg@10,hit@10,ndcg@1,recall@2000";
    let document = assert_matches_reference(
        "biased",
        "u1",
        &["--epochs", "2", "--metrics", "ndcg@10,precision@10"],
        metrics,
    );
    // The last epoch's test ndcg@10 is eval's on the final model (same scores, same ranking).
    let recorded = curve(&document, "test", "ndcg@10");
    assert_eq!(recorded.len(), 2);
    assert!(
        recorded.iter().all(|v| *v > 0.01 && *v < 0.5),
        "{recorded:?}"
    );
    // Training has no ranking metrics: its relevant items are all training items.
    assert!(document["epochs"][0]["train"].get("ndcg@10").is_none());
    assert_eq!(
        document["config"]["metrics"],
        serde_json::json!(["ndcg@10", "precision@10"])
    );
}

#[test]
fn plain_mf_with_ties_and_k_beyond_the_candidates_matches_the_reference() {
    // Plain MF scores untrained items 0 (no bias): many ties, broken by the raw item id.
    // recall@2000 ranks every candidate (K beyond the candidates).
    assert_matches_reference(
        "plain",
        "u2",
        &["--epochs", "1", "--model", "plain", "--dim", "4"],
        "precision@5,recall@20,ndcg@5,hit@1,precision@2000",
    );
}

#[test]
fn recorded_test_ranking_equals_eval_of_the_final_model() {
    let dir = tempfile::tempdir().unwrap();
    let document = train(
        dir.path(),
        "run",
        &[
            "mf",
            "--data",
            &ml100k(),
            "--split",
            "u1",
            "--epochs",
            "2",
            "--metrics",
            "ndcg@10,hit@5",
            // The validation holdout was not trained on: its items stay candidates, in the
            // run and in eval, which holds out the same ratings again.
            "--val-split",
            "0.1",
        ],
    );
    let run = dir.path().join("run.json");
    let eval = eval_json(&[run.to_str().unwrap(), "--metrics", "ndcg@10,hit@5,rmse"]);
    for key in ["ndcg@10", "hit@5", "rmse"] {
        let last = *curve(&document, "test", key).last().unwrap();
        assert_eq!(eval["metrics"][key].as_f64().unwrap(), last, "{key}");
    }
    // Only the asked metrics are printed.
    assert_eq!(eval["metrics"].as_object().unwrap().len(), 3);
}

#[test]
fn a_ranking_metric_selects_epochs_and_stops_early() {
    let dir = tempfile::tempdir().unwrap();
    let document = train(
        dir.path(),
        "select",
        &[
            "mf",
            "--data",
            &ml100k(),
            "--split",
            "u1",
            "--epochs",
            "12",
            "--val-split",
            "0.1",
            "--selection-metric",
            "ndcg@10",
            "--early-stop",
            "2",
        ],
    );
    assert_eq!(document["metric"]["name"], "ndcg@10");
    assert_eq!(document["metric"]["higher_is_better"], true);
    let validation = curve(&document, "validation", "ndcg@10");
    assert!(validation.iter().all(|v| v.is_finite()), "{validation:?}");
    // Without regularization the validation ranking peaks early, and patience runs out.
    assert!(validation.len() < 12, "ran {} epochs", validation.len());
    assert_eq!(document["summary"]["stop_reason"], "early_stop");
    let best = validation
        .iter()
        .enumerate()
        .fold((0, f64::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
    assert_eq!(document["summary"]["selected_epoch"], best.0 + 1);
    // The selection metric is recorded on test too, although --metrics was not given.
    assert_eq!(curve(&document, "test", "ndcg@10").len(), validation.len());
}

#[test]
fn runs_without_ranking_metrics_record_what_they_did() {
    let dir = tempfile::tempdir().unwrap();
    let document = train(
        dir.path(),
        "plain",
        &[
            "mf",
            "--epochs",
            "1",
            "--synthetic-users",
            "50",
            "--synthetic-items",
            "40",
            "--synthetic-ratings",
            "600",
        ],
    );
    let keys: Vec<&String> = document["epochs"][0]["test"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(
        keys,
        ["base_loss", "loss", "mae", "reg_loss", "rmse", "total_loss"]
    );
    assert!(document["config"].get("metrics").is_none());
    assert!(document["config"].get("selection_metric").is_none());
    assert_eq!(document["metric"]["name"], "rmse");
}

#[test]
fn bad_metrics_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    train(
        dir.path(),
        "run",
        &[
            "mf",
            "--epochs",
            "1",
            "--synthetic-users",
            "50",
            "--synthetic-items",
            "40",
            "--synthetic-ratings",
            "600",
        ],
    );
    let run = dir.path().join("run.json");
    let run = run.to_str().unwrap();
    let error = run_err(regulab().args(["eval", run, "--metrics", "ndcg@0"]));
    assert!(
        error.contains("--metrics ndcg@0") && error.contains("at least 1"),
        "{error}"
    );
    let error = run_err(regulab().args(["eval", run, "--metrics", "accuracy"]));
    assert!(error.contains("--metrics accuracy"), "{error}");
    let error = run_err(regulab().args(["eval", run, "--metrics", "ndcg@10", "--data", &ml100k()]));
    assert!(error.contains("training ratings"), "{error}");
    let error = run_err(regulab().args(["mf", "--metrics", "accuracy", "--epochs", "1"]));
    assert!(error.contains("--metrics accuracy"), "{error}");
    let error = run_err(regulab().args(["mf", "--selection-metric", "ndcg", "--epochs", "1"]));
    assert!(error.contains("ndcg@10"), "{error}");
    let error = run_err(regulab().args([
        "mlp",
        "--data",
        "x",
        "--selection-metric",
        "rmse",
        "--epochs",
        "1",
    ]));
    assert!(error.contains("--selection-metric rmse"), "{error}");
}

//! Honest results: validation splits for MF, the reported epoch chosen on validation,
//! early stopping and restoring the best validation weights.

mod common;
use common::*;
use serde_json::Value;

fn argmin(values: &[f64]) -> usize {
    values
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
        .unwrap()
}

fn u1(extra: &[&str]) -> Vec<String> {
    let data = ml100k();
    ["mf", "--data", data.as_str(), "--split", "u1"]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect()
}

fn train_strings(name: &str, args: &[String]) -> (tempfile::TempDir, Value) {
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = train(dir.path(), name, &args);
    (dir, run)
}

#[test]
fn mf_validation_split_chooses_the_reported_epoch() {
    let (_dir, run) = train_strings("val", &u1(&["--val-split", "0.1", "--epochs", "6"]));
    // 10% of u1.base (80000 ratings) is held out; u1.test is untouched.
    assert_eq!(run["dataset"]["validation_ratings"], 8000);
    assert_eq!(run["dataset"]["train_ratings_used"], 72000);
    assert_eq!(run["dataset"]["split"]["test_ratings"], 20000);
    let validation = curve(&run, "validation", "rmse");
    assert_eq!(validation.len(), 6);
    assert!(validation.iter().all(|v| v.is_finite()));
    let summary = &run["summary"];
    assert_eq!(summary["selection"], "validation");
    let selected = argmin(&validation) + 1;
    assert_eq!(summary["selected_epoch"], selected);
    let test = curve(&run, "test", "rmse");
    assert_eq!(
        summary["test_at_selected"]["rmse"].as_f64().unwrap(),
        test[selected - 1]
    );
    assert_eq!(summary["stop_reason"], "epochs");
}

#[test]
fn early_stopping_ends_the_lecture_overfitting_run_and_restores_the_best_weights() {
    // The lecture's overfitting setting: Adam lr 0.01, K 16, no regularization.
    let (_dir, run) = train_strings(
        "early",
        &u1(&[
            "--val-split",
            "0.1",
            "--epochs",
            "100",
            "--early-stop",
            "3",
            "--restore-best",
        ]),
    );
    let epochs = run["epochs"].as_array().unwrap().len();
    assert!(epochs <= 15, "stopped after {epochs} epochs");
    let summary = &run["summary"];
    assert_eq!(run["status"], "completed");
    assert_eq!(summary["stop_reason"], "early_stop");
    let validation = curve(&run, "validation", "rmse");
    let best = argmin(&validation) + 1;
    assert_eq!(summary["selected_epoch"], best);
    assert_eq!(epochs, best + 3, "patience 3 after the best epoch");
    // The restored weights measure exactly as the best epoch did.
    let restored = &summary["restored"];
    assert_eq!(restored["epoch"], best);
    assert_eq!(
        restored["test"]["rmse"],
        run["epochs"][best - 1]["test"]["rmse"]
    );
    assert_eq!(
        restored["validation"]["rmse"],
        run["epochs"][best - 1]["validation"]["rmse"]
    );
}

#[test]
fn schedules_record_the_rate_each_epoch_used() {
    let dir = tempfile::tempdir().unwrap();
    let run = train(
        dir.path(),
        "step",
        &[
            "mf",
            "--synthetic-ratings",
            "20000",
            "--epochs",
            "5",
            "--lr-schedule",
            "step:2:0.5",
        ],
    );
    let rates: Vec<f64> = run["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["lr"].as_f64().unwrap())
        .collect();
    assert_eq!(rates, vec![0.01, 0.01, 0.005, 0.005, 0.0025]);
    assert_eq!(run["config"]["lr_schedule"], "step:2:0.5");
}

#[test]
fn choosing_on_validation_needs_a_validation_split() {
    for flags in [
        &["--early-stop", "3"][..],
        &["--restore-best"],
        &["--lr-schedule", "plateau:2:0.5"],
    ] {
        let line = run_err(regulab().arg("mf").args(flags).arg("--quiet"));
        assert!(
            line.contains("needs a validation split (--val-split F)"),
            "{flags:?}: {line}"
        );
    }
}

#[test]
fn cv_over_the_official_folds_reports_mean_and_std() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("cv");
    let output = run_ok(
        regulab()
            .args(["cv", "mf", "--data", &ml100k(), "--folds", "u1,u2,u3,u4,u5"])
            .args(["--epochs", "2", "--threads", "1", "--quiet", "--out"])
            .arg(&folder),
    );
    let table = String::from_utf8_lossy(&output.stdout);
    // Only folds vary, and the heading says so (issue: cv said "over seeds and folds").
    assert!(table.contains("over folds"), "{table}");
    let summary = read_json(&folder.join("summary.json"));
    let runs = summary["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 5);
    let values: Vec<f64> = runs
        .iter()
        .map(|r| r["test_at_selected"].as_f64().unwrap())
        .collect();
    let groups = summary["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "folds are aggregated, not separate groups");
    let mean = values.iter().sum::<f64>() / 5.0;
    let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 4.0).sqrt();
    assert_close(
        groups[0]["test_at_selected_mean"].as_f64().unwrap(),
        mean,
        1e-12,
        "mean",
    );
    assert_close(
        groups[0]["test_at_selected_std"].as_f64().unwrap(),
        std,
        1e-9,
        "std",
    );
    assert_eq!(groups[0]["runs"], 5);
    // cv compares no settings.
    let line = run_err(
        regulab()
            .args([
                "cv",
                "mf",
                "--folds",
                "u1,u2",
                "--lambda",
                "0,0.1",
                "--penalty",
                "l2",
                "--out",
            ])
            .arg(dir.path().join("x")),
    );
    assert!(line.contains("use `regulab sweep`"), "{line}");
}

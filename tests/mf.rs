//! `regulab mf` end to end: the lecture's phenomena on real and synthetic data, the run
//! document, and runs that diverge or are interrupted.

mod common;
use common::*;

fn u1(extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["mf", "--data", &ml100k(), "--split", "u1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn train_args(dir: &std::path::Path, name: &str, args: &[String]) -> serde_json::Value {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    train(dir, name, &refs)
}

#[test]
fn lecture_setting_overfits_ml100k_u1() {
    // Adam(lr=0.01), K=16, no regularization: train RMSE keeps falling, test RMSE bottoms out early.
    let dir = tempfile::tempdir().unwrap();
    let run = train_args(
        dir.path(),
        "overfit",
        &u1(&["--epochs", "12", "--lr", "0.01", "--dim", "16"]),
    );
    let test = curve(&run, "test", "rmse");
    let train_rmse = curve(&run, "train", "rmse");
    // The curve's own minimum (chosen on test: a description of the curve, not a result).
    let best_epoch = run["summary"]["oracle_best_test"]["epoch"]
        .as_u64()
        .unwrap() as usize;
    assert!(
        best_epoch <= 5,
        "test RMSE minimum at epoch {best_epoch}: {test:?}"
    );
    let best = test[best_epoch - 1];
    assert!(
        test[11] > best + 0.05,
        "test RMSE does not rise after its minimum: {test:?}"
    );
    assert!(
        train_rmse.windows(2).all(|w| w[1] < w[0]),
        "train RMSE should fall every epoch: {train_rmse:?}"
    );
    assert!(train_rmse[11] < 0.7, "{train_rmse:?}");
    // The base loss the gradient saw falls too, and with no penalty the reg term is exactly 0.
    let base = curve(&run, "train", "base_loss");
    assert!(base[11] < base[0] * 0.6, "{base:?}");
    assert!(curve(&run, "train", "reg_loss").iter().all(|&r| r == 0.0));
}

#[test]
fn batch_l2_penalty_reaches_0_935_on_ml100k_u1() {
    let dir = tempfile::tempdir().unwrap();
    let run = train_args(
        dir.path(),
        "regularized",
        &u1(&["--epochs", "10", "--penalty", "batch-l2", "--lambda", "0.1"]),
    );
    // No validation split: the reported figure is the last epoch's.
    let reported = run["summary"]["test_at_selected"]["rmse"].as_f64().unwrap();
    assert!(reported <= 0.935, "test RMSE {reported}");
    // Regularization keeps the test RMSE from running away as in the unregularized run.
    let oracle = run["summary"]["oracle_best_test"]["value"]
        .as_f64()
        .unwrap();
    assert!(
        reported < oracle + 0.01,
        "{reported} vs curve minimum {oracle}"
    );
    // base + reg = total for the means the gradient saw.
    for epoch in run["epochs"].as_array().unwrap() {
        let t = &epoch["train"];
        let sum = t["base_loss"].as_f64().unwrap() + t["reg_loss"].as_f64().unwrap();
        assert_close(sum, t["total_loss"].as_f64().unwrap(), 1e-6, "base + reg");
        assert!(t["reg_loss"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn sgd_weight_decay_equals_the_unscaled_explicit_l2_penalty() {
    // Weight decay w adds w*W to the gradient; the penalty (w/2)*||W||^2 has gradient w*W.
    // Both are applied to every parameter (biases included), so the trajectories coincide.
    let dir = tempfile::tempdir().unwrap();
    let common = [
        "--optimizer",
        "sgd",
        "--lr",
        "0.5",
        "--momentum",
        "0.9",
        "--epochs",
        "3",
    ];
    let decay = train_args(
        dir.path(),
        "decay",
        &u1(&[&common[..], &["--weight-decay", "0.001"]].concat()),
    );
    let penalty = train_args(
        dir.path(),
        "penalty",
        &u1(&[
            &common[..],
            &[
                "--penalty",
                "frobenius",
                "--lambda",
                "0.001",
                "--penalty-scale",
                "none",
                "--penalize-bias",
            ],
        ]
        .concat()),
    );
    let (decay_base, penalty_base) = (
        curve(&decay, "train", "base_loss"),
        curve(&penalty, "train", "base_loss"),
    );
    for (a, b) in decay_base.iter().zip(&penalty_base) {
        assert_close(*a, *b, 1e-4, "train base loss");
    }
    for (a, b) in curve(&decay, "test", "rmse")
        .iter()
        .zip(curve(&penalty, "test", "rmse"))
    {
        assert_close(*a, b, 1e-4, "test rmse");
    }
    // The implied weight-decay term is the same quantity as the explicit penalty's value.
    let implied: Vec<f64> = decay["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["implied_weight_decay_loss"].as_f64().unwrap())
        .collect();
    let explicit = curve(&penalty, "test", "reg_loss");
    for (a, b) in implied.iter().zip(&explicit) {
        assert_close(*a, *b, 1e-3, "implied weight decay vs explicit penalty");
    }
    // And weight decay is reported as coupled, with nothing added to the loss.
    assert_eq!(decay["regularization"]["weight_decay_mode"], "coupled");
    assert!(curve(&decay, "train", "reg_loss").iter().all(|&r| r == 0.0));
}

#[test]
fn synthetic_regularized_run_gets_within_5_percent_of_the_noise_floor() {
    let dir = tempfile::tempdir().unwrap();
    let run = train(
        dir.path(),
        "floor",
        &[
            "mf",
            "--synthetic-users",
            "500",
            "--synthetic-items",
            "500",
            "--synthetic-ratings",
            "120000",
            "--dim",
            "4",
            "--lr",
            "0.005",
            "--penalty",
            "frobenius",
            "--lambda",
            "5",
            "--epochs",
            "20",
        ],
    );
    let floor = run["dataset"]["synthetic"]["noise_floor_rmse"]
        .as_f64()
        .unwrap();
    let best = run["summary"]["test_at_selected"]["rmse"].as_f64().unwrap();
    assert!(
        best >= floor * 0.98,
        "test RMSE {best} below the floor {floor}: the floor is wrong"
    );
    assert!(
        best <= floor * 1.05,
        "test RMSE {best} is more than 5% above the floor {floor}"
    );
}

#[test]
fn synthetic_unregularized_large_k_overfits() {
    let dir = tempfile::tempdir().unwrap();
    let run = train(
        dir.path(),
        "large-k",
        &["mf", "--dim", "64", "--epochs", "12"],
    );
    let test = curve(&run, "test", "rmse");
    let best_epoch = run["summary"]["oracle_best_test"]["epoch"]
        .as_u64()
        .unwrap() as usize;
    assert!(best_epoch < 12, "{test:?}");
    assert!(
        test[11] > test[best_epoch - 1] + 0.05,
        "test RMSE should rise after its minimum: {test:?}"
    );
}

#[test]
fn run_document_has_the_documented_schema() {
    let dir = tempfile::tempdir().unwrap();
    let run = train(
        dir.path(),
        "schema",
        &[
            "mf",
            "--synthetic-ratings",
            "20000",
            "--epochs",
            "2",
            "--batch-size",
            "500",
            "--penalty",
            "l1",
            "--lambda",
            "0.5",
            "--weight-decay",
            "0.01",
            "--optimizer",
            "adamw",
            "--log-every",
            "8",
        ],
    );
    assert_eq!(run["schema_version"], 2);
    assert_eq!(run["kind"], "regulab-run");
    assert_eq!(run["status"], "completed");
    assert_eq!(
        run["metric"],
        serde_json::json!({"name": "rmse", "higher_is_better": false})
    );
    assert_eq!(run["argv"][1], "mf");
    for key in [
        "config",
        "dataset",
        "environment",
        "regularization",
        "epochs",
        "summary",
        "steps",
    ] {
        assert!(!run[key].is_null(), "missing {key}");
    }
    assert_eq!(run["config"]["penalty"], "l1");
    assert_eq!(run["config"]["lr"], 0.01, "the command default is recorded");
    assert!(
        run["config"].get("penalty_scale").is_none(),
        "not given: the form's own"
    );
    assert_eq!(run["regularization"]["scale"], "dataset");
    assert_eq!(run["environment"]["device"], "cpu");
    assert!(run["environment"]["torch_version"]
        .as_str()
        .unwrap()
        .starts_with("2.11.0"));
    assert_eq!(run["regularization"]["divisor"], 16000.0);
    assert_eq!(run["regularization"]["weight_decay_mode"], "decoupled");
    assert!(run["regularization"]["formula"]
        .as_str()
        .unwrap()
        .contains("||W||_1"));
    let epochs = run["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 2);
    for (k, epoch) in epochs.iter().enumerate() {
        assert_eq!(epoch["epoch"], k + 1);
        for key in ["base_loss", "reg_loss", "total_loss", "rmse", "mae"] {
            assert!(epoch["train"][key].is_f64(), "train.{key}");
        }
        for key in ["loss", "rmse", "mae", "reg_loss", "total_loss"] {
            assert!(epoch["test"][key].is_f64(), "test.{key}");
        }
        let norms = epoch["weight_norms"].as_object().unwrap();
        let names: Vec<&str> = norms.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            vec!["item_bias", "item_factors", "user_bias", "user_factors"]
        );
        // implied = wd/2 * sum of squared norms.
        let squares: f64 = norms.values().map(|v| v.as_f64().unwrap().powi(2)).sum();
        assert_close(
            epoch["implied_weight_decay_loss"].as_f64().unwrap(),
            0.01 / 2.0 * squares,
            1e-4,
            "implied wd",
        );
        assert!(epoch["seconds"].as_f64().unwrap() > 0.0);
        assert_eq!(epoch["lr"], 0.01);
    }
    // 32 steps per epoch, logged every 8 steps.
    let steps = run["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 8);
    assert_eq!(steps[0]["step"], 8);
    assert_eq!(steps[7]["epoch"], 2);
    let summary = &run["summary"];
    // No validation split: the last epoch is reported, and the test-chosen figure is
    // kept only under a name that says so.
    assert_eq!(summary["selection"], "last");
    assert_eq!(summary["selected_epoch"], 2);
    assert_eq!(
        summary["test_at_selected"]["rmse"],
        epochs[1]["test"]["rmse"]
    );
    assert_eq!(summary["final_test"]["rmse"], epochs[1]["test"]["rmse"]);
    let oracle = summary["oracle_best_test"]["value"].as_f64().unwrap();
    assert!(curve(&run, "test", "rmse").iter().all(|&r| r >= oracle));
    assert!(summary["total_seconds"].is_f64());
    assert_eq!(summary["epochs_completed"], 2);
    // The recorded config is the resolved one, with the command's defaults.
    assert_eq!(run["config"]["command"], "mf");
    assert_eq!(run["config"]["batch_size"], 500);
    assert_eq!(run["config"]["model"], "biased");
}

#[test]
fn same_seed_same_numbers_and_other_seed_other_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "mf",
        "--synthetic-ratings",
        "20000",
        "--epochs",
        "2",
        "--penalty",
        "batch-l2",
        "--lambda",
        "0.05",
    ];
    let a = train(dir.path(), "a", &args);
    let b = train(dir.path(), "b", &args);
    let c = train(dir.path(), "c", &[&args[..], &["--seed", "1"]].concat());
    for key in ["base_loss", "reg_loss", "total_loss", "rmse"] {
        assert_eq!(curve(&a, "train", key), curve(&b, "train", key), "{key}");
    }
    assert_eq!(curve(&a, "test", "rmse"), curve(&b, "test", "rmse"));
    assert_ne!(
        curve(&a, "train", "base_loss"),
        curve(&c, "train", "base_loss")
    );
}

#[test]
fn plain_model_has_only_factors() {
    let dir = tempfile::tempdir().unwrap();
    let run = train(
        dir.path(),
        "plain",
        &[
            "mf",
            "--model",
            "plain",
            "--synthetic-ratings",
            "20000",
            "--epochs",
            "1",
        ],
    );
    let names: Vec<String> = run["epochs"][0]["weight_norms"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(names, vec!["item_factors", "user_factors"]);
}

#[test]
fn divergence_ends_the_run_as_diverged_with_a_valid_document() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("diverged.json");
    let line = run_err(
        regulab()
            .args([
                "mf",
                "--synthetic-ratings",
                "20000",
                "--epochs",
                "5",
                "--optimizer",
                "sgd",
                "--lr",
                "1e6",
                "--quiet",
                "--out",
            ])
            .arg(&out),
    );
    assert!(line.contains("diverged in epoch 1"), "{line}");
    let run = read_json(&out);
    assert_eq!(run["status"], "diverged");
    assert!(run["message"].as_str().unwrap().contains("diverged"));
    assert_eq!(run["epochs"].as_array().unwrap().len(), 1);
    assert!(
        run["epochs"][0]["train"]["total_loss"].is_null(),
        "NaN is written as null"
    );
}

#[test]
fn ctrl_c_leaves_an_interrupted_document() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("interrupted.json");
    let child = regulab()
        .args([
            "mf",
            "--synthetic-ratings",
            "100000",
            "--epochs",
            "1000",
            "--batch-size",
            "256",
            "--quiet",
            "--threads",
            "1",
            "--out",
        ])
        .arg(&out)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for at least one finished epoch on disk.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        if let Ok(text) = std::fs::read_to_string(&out) {
            if let Ok(run) = serde_json::from_str::<serde_json::Value>(&text) {
                if run["epochs"].as_array().is_some_and(|e| !e.is_empty()) {
                    break;
                }
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no epoch written in time"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let run = read_json(&out);
    assert_eq!(run["status"], "interrupted");
    assert!(run["message"].as_str().unwrap().contains("interrupted"));
    assert!(!run["epochs"].as_array().unwrap().is_empty());
}

#[test]
fn bad_flags_are_one_line_errors() {
    let cases: [(&[&str], &str); 6] = [
        (&["mf", "--lambda", "0.1"], "without --penalty"),
        (&["mf", "--penalty", "l1", "--lambda=-1"], "--lambda -1"),
        (&["mf", "--lr", "0"], "--lr 0"),
        (&["mf", "--epochs", "0"], "--epochs 0: must be at least 1"),
        (&["mf", "--nesterov"], "--nesterov"),
        (
            &[
                "mf",
                "--penalty",
                "batch-l2",
                "--lambda",
                "0.1",
                "--penalty-scale",
                "dataset",
            ],
            "batch-l2",
        ),
    ];
    for (args, want) in cases {
        let line = run_err(regulab().args(args).arg("--quiet"));
        assert!(line.contains(want), "{args:?}: {line}");
    }
    let line = run_err(regulab().args(["mf", "--data", "/no/such/dir", "--quiet"]));
    assert!(
        line.contains("/no/such/dir: no such file or directory"),
        "{line}"
    );
}

//! `regulab mlp` end to end on the real Fashion-MNIST copy.

mod common;
use common::*;

fn mlp(extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec!["mlp".into(), "--data".into(), fashion_mnist()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn train_mlp(dir: &std::path::Path, name: &str, extra: &[&str]) -> serde_json::Value {
    let args = mlp(extra);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = dir.join(format!("{name}.json"));
    // All cores: the full data set takes a while on one thread.
    run_ok(
        regulab()
            .args(&refs)
            .args(["--quiet", "--device", "cpu", "--out"])
            .arg(&out),
    );
    read_json(&out)
}

#[test]
fn default_network_reaches_85_percent_on_fashion_mnist_in_3_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let run = train_mlp(
        dir.path(),
        "default",
        &["--epochs", "3", "--lr", "0.001", "--optimizer", "adam"],
    );
    let accuracy = run["summary"]["test_at_selected"]["accuracy"]
        .as_f64()
        .unwrap();
    assert!(accuracy >= 0.85, "test accuracy {accuracy}");
    assert_eq!(run["metric"]["name"], "accuracy");
    assert_eq!(run["metric"]["higher_is_better"], true);
    // The lecture's 784-512-256-128-10 network, named as PyTorch prints it.
    let names: Vec<String> = run["epochs"][0]["weight_norms"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let expected: Vec<String> = (0..4)
        .flat_map(|l| [format!("l_layers.{l}.bias"), format!("l_layers.{l}.weight")])
        .collect();
    assert_eq!(names, expected);
    assert_eq!(run["config"]["hidden"], serde_json::json!([512, 256, 128]));
    assert_eq!(run["dataset"]["train_used"], 60000);
    assert_eq!(run["dataset"]["test_used"], 10000);
    for key in ["accuracy", "loss", "base_loss", "reg_loss", "total_loss"] {
        assert!(run["epochs"][2]["test"][key].is_f64(), "test.{key}");
    }
    assert!(run["epochs"][2]["train"]["accuracy"].as_f64().unwrap() > 0.85);
}

#[test]
fn sgd_weight_decay_equals_the_unscaled_explicit_l2() {
    let dir = tempfile::tempdir().unwrap();
    let common = [
        "--limit-train",
        "3000",
        "--limit-test",
        "500",
        "--hidden",
        "128,64",
        "--optimizer",
        "sgd",
        "--lr",
        "0.1",
        "--epochs",
        "2",
        "--threads",
        "1",
    ];
    let decay = train_mlp(
        dir.path(),
        "decay",
        &[&common[..], &["--weight-decay", "0.01"]].concat(),
    );
    let penalty = train_mlp(
        dir.path(),
        "penalty",
        &[
            &common[..],
            &[
                "--penalty",
                "l2",
                "--lambda",
                "0.01",
                "--penalty-scale",
                "none",
                "--penalize-bias",
            ],
        ]
        .concat(),
    );
    for (a, b) in
        curve(&decay, "train", "base_loss")
            .iter()
            .zip(curve(&penalty, "train", "base_loss"))
    {
        assert_close(*a, b, 1e-4, "train base loss");
    }
    for (a, b) in curve(&decay, "test", "accuracy")
        .iter()
        .zip(curve(&penalty, "test", "accuracy"))
    {
        assert!((a - b).abs() <= 0.002, "test accuracy {a} vs {b}");
    }
    let implied: Vec<f64> = decay["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["implied_weight_decay_loss"].as_f64().unwrap())
        .collect();
    for (a, b) in implied.iter().zip(curve(&penalty, "test", "reg_loss")) {
        assert_close(*a, b, 1e-3, "implied weight decay vs explicit penalty");
    }
}

#[test]
fn penalty_reported_for_training_and_evaluation_uses_one_divisor() {
    // The quadratic-cost question trained with lambda/n but reported lambda/(2 * test size).
    // Here the evaluation's reg_loss is the same function of the weights as training's, so at
    // the end of an epoch they agree up to the weights' change within the epoch.
    let dir = tempfile::tempdir().unwrap();
    let run = train_mlp(
        dir.path(),
        "divisor",
        &[
            "--limit-train",
            "2000",
            "--limit-test",
            "500",
            "--hidden",
            "64",
            "--loss",
            "mse",
            "--activation",
            "sigmoid",
            "--optimizer",
            "sgd",
            "--lr",
            "1",
            "--penalty",
            "l2",
            "--lambda",
            "5",
            "--epochs",
            "2",
            "--threads",
            "1",
        ],
    );
    assert_eq!(run["regularization"]["divisor"], 2000.0);
    let epoch = &run["epochs"][1];
    let test_reg = epoch["test"]["reg_loss"].as_f64().unwrap();
    assert_eq!(
        test_reg,
        epoch["validation"]["reg_loss"].as_f64().unwrap_or(test_reg)
    );
    let train_reg = epoch["train"]["reg_loss"].as_f64().unwrap();
    assert_close(test_reg, train_reg, 0.05, "evaluation vs training penalty");
    // With weights only, the penalty is lambda/(2n) * sum of squared weight norms.
    let squares: f64 = epoch["weight_norms"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, _)| name.ends_with("weight"))
        .map(|(_, v)| v.as_f64().unwrap().powi(2))
        .sum();
    assert_close(test_reg, 5.0 / (2.0 * 2000.0) * squares, 1e-4, "l2 formula");
}

#[test]
fn validation_split_adds_a_validation_curve() {
    let dir = tempfile::tempdir().unwrap();
    let run = train_mlp(
        dir.path(),
        "val",
        &[
            "--limit-train",
            "2000",
            "--limit-test",
            "500",
            "--hidden",
            "32",
            "--val-split",
            "0.25",
            "--epochs",
            "1",
            "--normalize",
        ],
    );
    assert_eq!(run["dataset"]["train_used"], 1500);
    assert_eq!(run["dataset"]["validation_used"], 500);
    assert!(run["epochs"][0]["validation"]["accuracy"].is_f64());
    // With a validation split the reported epoch is chosen on validation.
    assert_eq!(run["summary"]["selection"], "validation");
    assert_eq!(run["summary"]["selected_epoch"], 1);
    let mean = run["dataset"]["pixel_mean"].as_f64().unwrap();
    assert!(mean > 0.2 && mean < 0.4, "Fashion-MNIST pixel mean {mean}");
}

#[test]
fn bad_mlp_input_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let line = run_err(
        regulab()
            .args(["mlp", "--data"])
            .arg(dir.path())
            .arg("--quiet"),
    );
    assert!(line.contains("not an MNIST-format directory"), "{line}");
    let line = run_err(regulab().args(mlp(&[
        "--penalty",
        "batch-l2",
        "--lambda",
        "0.1",
        "--quiet",
    ])));
    assert!(line.contains("batch-l2"), "{line}");
    let line = run_err(regulab().args(mlp(&["--val-split", "1.5", "--quiet"])));
    assert!(line.contains("--val-split"), "{line}");
    let line = run_err(regulab().args(mlp(&["--hidden", "64,0", "--quiet"])));
    assert!(line.contains("--hidden"), "{line}");
}

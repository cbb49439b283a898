//! Parity with Python PyTorch: the same data, initial weights, batch order and hyper-parameters
//! run through `scripts/reference/*_reference.py` give the same per-epoch losses (relative 1e-5).
//! Both sides run on one CPU thread (reduction order depends on the thread count).

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;

const TOLERANCE: f64 = 1e-5;

/// Runs the Python reference with the same flags and returns its document.
fn reference(dir: &Path, name: &str, script_name: &str, args: &[&str]) -> Value {
    let out = dir.join(format!("{name}-python.json"));
    run_ok(
        std::process::Command::new(python())
            .arg(script(&format!("scripts/reference/{script_name}")))
            .args(args)
            .args(["--threads", "1", "--quiet", "--out"])
            .arg(&out),
    );
    read_json(&out)
}

/// Compares every number the reference reports per epoch with regulab's.
fn assert_parity(rust: &Value, python: &Value, what: &str) {
    let rust_epochs = rust["epochs"].as_array().unwrap();
    let python_epochs = python["epochs"].as_array().unwrap();
    assert_eq!(
        rust_epochs.len(),
        python_epochs.len(),
        "{what}: epoch count"
    );
    let mut compared = 0;
    for (r, p) in rust_epochs.iter().zip(python_epochs) {
        for section in ["train", "test", "weight_norms"] {
            for (key, expected) in p[section].as_object().unwrap() {
                let Some(expected) = expected.as_f64() else {
                    continue;
                };
                let actual = r[section][key]
                    .as_f64()
                    .unwrap_or_else(|| panic!("{what}: regulab lacks {section}.{key}"));
                assert_close(
                    actual,
                    expected,
                    TOLERANCE,
                    &format!("{what}: epoch {} {section}.{key}", r["epoch"]),
                );
                compared += 1;
            }
        }
        let expected = p["implied_weight_decay_loss"].as_f64().unwrap();
        assert_close(
            r["implied_weight_decay_loss"].as_f64().unwrap(),
            expected,
            TOLERANCE,
            &format!("{what}: implied wd"),
        );
    }
    assert!(
        compared >= 10 * rust_epochs.len(),
        "{what}: only {compared} values compared"
    );
}

fn mf_parity(name: &str, flags: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let data = ml100k();
    let base = ["--data", data.as_str(), "--split", "u1", "--epochs", "3"];
    let rust = train(dir.path(), name, &[&["mf"], &base[..], flags].concat());
    let python = reference(
        dir.path(),
        name,
        "mf_reference.py",
        &[&base[..], flags].concat(),
    );
    assert_parity(&rust, &python, name);
}

#[test]
fn mf_adam_with_weight_decay() {
    mf_parity(
        "adam-wd",
        &[
            "--optimizer",
            "adam",
            "--lr",
            "0.01",
            "--weight-decay",
            "1e-4",
        ],
    );
}

#[test]
fn mf_sgd_with_batch_l2() {
    mf_parity(
        "sgd-batch-l2",
        &[
            "--optimizer",
            "sgd",
            "--lr",
            "0.5",
            "--momentum",
            "0.9",
            "--penalty",
            "batch-l2",
            "--lambda",
            "0.05",
        ],
    );
}

#[test]
fn mf_adamw() {
    mf_parity(
        "adamw",
        &[
            "--optimizer",
            "adamw",
            "--lr",
            "0.01",
            "--weight-decay",
            "0.05",
        ],
    );
}

#[test]
fn mf_norm_penalty() {
    mf_parity("norm", &["--penalty", "norm", "--lambda", "0.01"]);
}

#[test]
fn mf_frobenius_penalty_with_biases() {
    mf_parity(
        "frobenius",
        &[
            "--penalty",
            "frobenius",
            "--lambda",
            "20",
            "--penalize-bias",
        ],
    );
}

#[test]
fn mf_l1_rmsprop_plain() {
    mf_parity(
        "l1-rmsprop-plain",
        &[
            "--model",
            "plain",
            "--optimizer",
            "rmsprop",
            "--lr",
            "0.001",
            "--penalty",
            "l1",
            "--lambda",
            "1",
        ],
    );
}

fn mlp_parity(name: &str, flags: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let data = fashion_mnist();
    let base = [
        "--data",
        data.as_str(),
        "--limit-train",
        "2000",
        "--limit-test",
        "500",
        "--epochs",
        "2",
        "--hidden",
        "64,32",
    ];
    let rust = train(dir.path(), name, &[&["mlp"], &base[..], flags].concat());
    let python = reference(
        dir.path(),
        name,
        "mlp_reference.py",
        &[&base[..], flags].concat(),
    );
    assert_parity(&rust, &python, name);
}

#[test]
fn mlp_adam_l2() {
    mlp_parity("adam-l2", &["--penalty", "l2", "--lambda", "5"]);
}

#[test]
fn mlp_sgd_norm() {
    mlp_parity(
        "sgd-norm",
        &[
            "--optimizer",
            "sgd",
            "--lr",
            "0.1",
            "--penalty",
            "norm",
            "--lambda",
            "0.001",
        ],
    );
}

#[test]
fn mlp_adam_weight_decay() {
    mlp_parity("adam-wd", &["--weight-decay", "1e-3"]);
}

#[test]
fn mlp_sgd_weight_decay() {
    mlp_parity(
        "sgd-wd",
        &[
            "--optimizer",
            "sgd",
            "--lr",
            "0.1",
            "--momentum",
            "0.9",
            "--weight-decay",
            "1e-3",
        ],
    );
}

#[test]
fn mlp_quadratic_cost_sigmoid_l2_batch_scale() {
    // The quadratic-cost question's network: sigmoid units, quadratic cost, L2 on the weights.
    mlp_parity(
        "mse-sigmoid",
        &[
            "--loss",
            "mse",
            "--activation",
            "sigmoid",
            "--optimizer",
            "sgd",
            "--lr",
            "3",
            "--penalty",
            "l2",
            "--lambda",
            "5",
            "--penalty-scale",
            "batch",
        ],
    );
}

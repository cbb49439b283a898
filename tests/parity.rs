//! Parity with Python PyTorch: the same data, initial weights, batch order and hyper-parameters
//! run through `scripts/reference/*_reference.py` (plain torch.optim, `foreach=False`) give the
//! same per-epoch numbers. Both sides run on one CPU thread (reduction order depends on the
//! thread count). Every optimizer path is covered: sgd (momentum, dampening, Nesterov, weight
//! decay), adam and adamw (amsgrad, betas, eps), rmsprop (centered, momentum, alpha).
//! Matrix factorization runs through both engines (`--engine autograd` and `fused`).

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;

/// Relative tolerance: none. regulab's optimizer reproduces torch.optim's rounding, and any
/// slack would hide a changed op or scalar: libtorch's C++ Adam, for one, stays within 1e-6
/// of torch.optim on `mlp_adam_l2` yet differs in half of its values.
const TOLERANCE: f64 = 0.0;

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

/// Compares every number the reference reports per epoch with regulab's, and reports how
/// many agree bit for bit and the largest relative difference.
fn assert_parity(rust: &Value, python: &Value, what: &str) {
    let rust_epochs = rust["epochs"].as_array().unwrap();
    let python_epochs = python["epochs"].as_array().unwrap();
    assert_eq!(
        rust_epochs.len(),
        python_epochs.len(),
        "{what}: epoch count"
    );
    let mut pairs = Vec::new();
    for (r, p) in rust_epochs.iter().zip(python_epochs) {
        let epoch = &r["epoch"];
        for section in ["train", "test", "weight_norms"] {
            for (key, expected) in p[section].as_object().unwrap() {
                let Some(expected) = expected.as_f64() else {
                    continue;
                };
                let actual = r[section][key]
                    .as_f64()
                    .unwrap_or_else(|| panic!("{what}: regulab lacks {section}.{key}"));
                pairs.push((format!("epoch {epoch} {section}.{key}"), actual, expected));
            }
        }
        pairs.push((
            format!("epoch {epoch} implied_weight_decay_loss"),
            r["implied_weight_decay_loss"].as_f64().unwrap(),
            p["implied_weight_decay_loss"].as_f64().unwrap(),
        ));
        // The rate each epoch trained with (schedules: torch.optim.lr_scheduler).
        pairs.push((
            format!("epoch {epoch} lr"),
            r["lr"].as_f64().unwrap(),
            p["lr"].as_f64().unwrap(),
        ));
    }
    let exact = pairs.iter().filter(|(_, a, e)| a == e).count();
    let largest = pairs
        .iter()
        .map(|(_, a, e)| ((a - e) / e.abs().max(1e-12)).abs())
        .fold(0.0, f64::max);
    eprintln!(
        "{what}: {} values, {exact} bit-identical, max relative difference {largest:.3e}",
        pairs.len()
    );
    for (name, actual, expected) in &pairs {
        assert_close(*actual, *expected, TOLERANCE, &format!("{what}: {name}"));
    }
    assert!(
        pairs.len() >= 10 * rust_epochs.len(),
        "{what}: only {} values compared",
        pairs.len()
    );
}

/// Matrix factorization through both engines (autograd, the reference, and the fused CPU
/// step), each compared with Python on every recorded number of every epoch.
fn mf_parity(name: &str, flags: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let data = ml100k();
    let base = ["--data", data.as_str(), "--split", "u1", "--epochs", "4"];
    let python = reference(
        dir.path(),
        name,
        "mf_reference.py",
        &[&base[..], flags].concat(),
    );
    for engine in ["autograd", "fused"] {
        let run = format!("{name}-{engine}");
        let engine_flags = ["--engine", engine];
        let rust = train(
            dir.path(),
            &run,
            &[&["mf"], &base[..], flags, &engine_flags].concat(),
        );
        assert_eq!(rust["environment"]["engine"], engine, "{run}");
        assert_parity(&rust, &python, &run);
    }
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

#[test]
fn mf_sgd_momentum_dampening_weight_decay() {
    mf_parity(
        "sgd-dampening-wd",
        &[
            "--optimizer",
            "sgd",
            "--lr",
            "0.5",
            "--momentum",
            "0.9",
            "--dampening",
            "0.3",
            "--weight-decay",
            "1e-4",
        ],
    );
}

#[test]
fn mf_adam_amsgrad_betas_eps_frobenius() {
    mf_parity(
        "adam-amsgrad",
        &[
            "--amsgrad",
            "--betas",
            "0.8,0.99",
            "--eps",
            "1e-6",
            "--penalty",
            "frobenius",
            "--lambda",
            "5",
        ],
    );
}

#[test]
fn mf_rmsprop_centered_momentum() {
    mf_parity(
        "rmsprop-centered",
        &[
            "--optimizer",
            "rmsprop",
            "--lr",
            "0.001",
            "--centered",
            "--momentum",
            "0.9",
            "--alpha",
            "0.95",
            "--eps",
            "1e-6",
            "--weight-decay",
            "1e-4",
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
        "3",
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

#[test]
fn mlp_sgd_nesterov_weight_decay() {
    mlp_parity(
        "sgd-nesterov-wd",
        &[
            "--optimizer",
            "sgd",
            "--lr",
            "0.05",
            "--momentum",
            "0.9",
            "--nesterov",
            "--weight-decay",
            "1e-3",
        ],
    );
}

#[test]
fn mlp_adam_amsgrad_weight_decay() {
    mlp_parity(
        "adam-amsgrad-wd",
        &[
            "--amsgrad",
            "--weight-decay",
            "1e-3",
            "--betas",
            "0.85,0.995",
            "--eps",
            "1e-7",
        ],
    );
}

#[test]
fn mlp_adamw_l1() {
    mlp_parity(
        "adamw-l1",
        &[
            "--optimizer",
            "adamw",
            "--weight-decay",
            "0.05",
            "--penalty",
            "l1",
            "--lambda",
            "1",
        ],
    );
}

#[test]
fn mlp_rmsprop_centered_momentum_weight_decay() {
    mlp_parity(
        "rmsprop-centered-wd",
        &[
            "--optimizer",
            "rmsprop",
            "--lr",
            "0.0005",
            "--centered",
            "--momentum",
            "0.5",
            "--weight-decay",
            "1e-4",
        ],
    );
}

#[test]
fn mlp_rmsprop_plain() {
    mlp_parity("rmsprop", &["--optimizer", "rmsprop", "--lr", "0.0005"]);
}

#[test]
fn mf_step_schedule() {
    mf_parity(
        "step-schedule",
        &[
            "--optimizer",
            "sgd",
            "--lr",
            "0.05",
            "--momentum",
            "0.9",
            "--lr-schedule",
            "step:2:0.5",
        ],
    );
}

#[test]
fn mf_cosine_schedule() {
    mf_parity(
        "cosine-schedule",
        &[
            "--optimizer",
            "adam",
            "--lr",
            "0.01",
            "--lr-schedule",
            "cosine",
        ],
    );
}

#[test]
fn mlp_cosine_schedule() {
    mlp_parity(
        "cosine-schedule",
        &[
            "--optimizer",
            "sgd",
            "--lr",
            "0.1",
            "--lr-schedule",
            "cosine",
        ],
    );
}

// Row-sparse training (`--sparse`) against `nn.Embedding(sparse=True)` tables with
// torch.optim.SGD and torch.optim.SparseAdam: also exact, since regulab issues the same ops
// (embedding/gather backward, coalesce, sparse_mask, dense += sparse).

#[test]
fn mf_sparse_sgd_biased() {
    mf_parity(
        "sparse-sgd-biased",
        &["--sparse", "--optimizer", "sgd", "--lr", "0.5"],
    );
}

#[test]
fn mf_sparse_sgd_plain_batch_l2() {
    mf_parity(
        "sparse-sgd-plain-batch-l2",
        &[
            "--sparse",
            "--model",
            "plain",
            "--optimizer",
            "sgd",
            "--lr",
            "0.5",
            "--penalty",
            "batch-l2",
            "--lambda",
            "0.05",
        ],
    );
}

#[test]
fn mf_sparse_adam_biased_batch_l2_with_biases() {
    mf_parity(
        "sparse-adam-biased-batch-l2",
        &[
            "--sparse",
            "--optimizer",
            "adam",
            "--lr",
            "0.01",
            "--penalty",
            "batch-l2",
            "--lambda",
            "0.05",
            "--penalize-bias",
            "--betas",
            "0.8,0.99",
        ],
    );
}

#[test]
fn mf_sparse_adam_plain() {
    mf_parity(
        "sparse-adam-plain",
        &[
            "--sparse",
            "--model",
            "plain",
            "--optimizer",
            "adam",
            "--lr",
            "0.01",
        ],
    );
}

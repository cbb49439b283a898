//! Saved model files as input: tensors that disagree with their metadata are refused before
//! any computation, naming the file and the tensor; `eval` says when it measures ratings the
//! model trained on; `predict`'s bad requests name the flag or file. Every failure is one
//! line with exit status 1, never a panic or libtorch's C++ frames.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Rewrites a saved model with one tensor changed, keeping its metadata (Python's
/// `safetensors`, as a user editing a file would).
const PYTHON_EDIT: &str = r#"
import sys
from safetensors import safe_open
from safetensors.torch import load_file, save_file
src, dst, action, name = sys.argv[1:5]
weights = load_file(src)
with safe_open(src, framework="pt") as f:
    meta = f.metadata()
if action == "drop-last-row":
    weights[name] = weights[name][:-1].clone()
elif action == "narrow":
    weights[name] = weights[name][:, :-1].clone()
elif action == "remove":
    del weights[name]
elif action == "float64":
    weights[name] = weights[name].double()
save_file(weights, dst, metadata=meta)
"#;

fn edited(model: &Path, dir: &Path, action: &str, tensor: &str) -> PathBuf {
    let out = dir.join(format!("{action}-{tensor}.safetensors"));
    run_ok(
        Command::new(python())
            .arg("-c")
            .arg(PYTHON_EDIT)
            .arg(model)
            .arg(&out)
            .args([action, tensor]),
    );
    out
}

/// Runs a command that must fail with exit status 1 and one plain line; returns the line.
fn fails(command: &mut Command) -> String {
    let output = command.output().expect("command starts");
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    for bad in ["panicked", "frame #", "Exception raised", "RUST_BACKTRACE"] {
        assert!(
            !stderr.contains(bad),
            "{command:?} printed {bad:?}: {stderr}"
        );
    }
    assert_eq!(output.status.code(), Some(1), "{command:?}: {stderr}");
    run_err(command)
}

/// A 1-epoch MF model (dim 16) on ml-100k's u1 split: `DIR/mf.final.safetensors`.
fn mf_model(dir: &Path) -> PathBuf {
    let data = ml100k();
    train(
        dir,
        "mf",
        &[
            "mf", "--data", &data, "--split", "u1", "--epochs", "1", "--dim", "16",
        ],
    );
    dir.join("mf.final.safetensors")
}

fn eval(model: &Path, args: &[&str]) -> Command {
    let mut command = regulab();
    command
        .arg("eval")
        .arg(model)
        .args(["--device", "cpu"])
        .args(args);
    command
}

fn predict(model: &Path, args: &[&str]) -> Command {
    let mut command = regulab();
    command
        .arg("predict")
        .arg(model)
        .args(["--device", "cpu"])
        .args(args);
    command
}

#[test]
fn tensors_that_disagree_with_the_metadata_are_refused_before_use() {
    let dir = tempfile::tempdir().unwrap();
    let model = mf_model(dir.path());
    let expect = |file: &Path, message: &str| {
        let line = format!("regulab: error: {}: {message}", file.display());
        // eval on u1 and predict alike: u1's test users stop below a missing last row, so
        // only a check against the metadata catches it there.
        assert_eq!(fails(&mut eval(file, &[])), line);
        assert_eq!(fails(&mut predict(file, &["--user", "943"])), line);
    };

    let narrow = edited(&model, dir.path(), "narrow", "user_factors");
    expect(
        &narrow,
        "tensor user_factors is [943, 15], the model's metadata needs [943, 16]",
    );
    let fewer_rows = edited(&model, dir.path(), "drop-last-row", "user_factors");
    expect(
        &fewer_rows,
        "tensor user_factors is [942, 16], the model's metadata needs [943, 16]",
    );
    let missing = edited(&model, dir.path(), "remove", "user_bias");
    expect(
        &missing,
        "tensor user_bias is missing, the model's metadata needs [943]",
    );
    let wrong_dtype = edited(&model, dir.path(), "float64", "item_factors");
    expect(
        &wrong_dtype,
        "tensor item_factors is float64, the model's metadata needs float32",
    );

    // The untouched file still works.
    run_ok(&mut predict(&model, &["--user", "943"]));
}

#[test]
fn eval_counts_and_warns_about_ratings_the_model_trained_on() {
    let dir = tempfile::tempdir().unwrap();
    let model = mf_model(dir.path());

    // Its own split: held-out data, no warning, nothing in the training part.
    let output = run_ok(&mut eval(&model, &["--json"]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("warning"), "{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["overlap_with_training"]["count"], 0);
    assert_eq!(report["overlap_with_training"]["fraction"], 0.0);

    // u2.test lies inside u1.base.
    let output = run_ok(&mut eval(&model, &["--split", "u2", "--json"]));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim_end(),
        "regulab eval: warning: every rating of u2.test is in u1.base, which this model trained on: this measures training data, not held-out data"
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["overlap_with_training"]["count"], 20000);
    assert_eq!(report["overlap_with_training"]["fraction"], 1.0);

    // Every rating: u1.base's 80000 of 100000.
    let output = run_ok(&mut eval(&model, &["--split", "none"]));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim_end(),
        "regulab eval: warning: 80000 of the 100000 evaluated ratings (80.0%) are in u1.base, which this model trained on: for those, this measures training data, not held-out data"
    );
}

#[test]
fn eval_reads_ratings_on_another_scale_with_rating_range() {
    let dir = tempfile::tempdir().unwrap();
    let model = mf_model(dir.path());
    // u1.test on a 1..10 scale: ratings doubled.
    let data = dir.path().join("ratings10.csv");
    let test = std::fs::read_to_string(format!("{}/u1.test", ml100k())).unwrap();
    let mut text = String::from("userId,movieId,rating,timestamp\n");
    for line in test.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let rating: f64 = f[2].parse().unwrap();
        text += &format!("{},{},{},{}\n", f[0], f[1], rating * 2.0, f[3]);
    }
    std::fs::write(&data, text).unwrap();
    let data = data.display().to_string();

    let line = fails(&mut eval(&model, &["--data", &data, "--split", "none"]));
    assert!(line.contains("ratings10.csv"), "{line}");
    let output = run_ok(&mut eval(
        &model,
        &[
            "--data",
            &data,
            "--split",
            "none",
            "--rating-range",
            "1,10",
            "--json",
        ],
    ));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["examples"], 20000);

    assert_eq!(
        fails(&mut eval(&model, &["--rating-range", "1-10"])),
        "regulab: error: --rating-range 1-10: rating range \"1-10\" must be MIN,MAX (e.g. 1,10)"
    );
}

#[test]
fn predict_requests_name_their_flag_or_file() {
    let dir = tempfile::tempdir().unwrap();
    let model = mf_model(dir.path());
    assert_eq!(
        fails(&mut predict(&model, &["--user", "1", "--top", "0"])),
        "regulab: error: --top 0: must be at least 1"
    );
    let empty = dir.path().join("pairs.txt");
    std::fs::write(&empty, "# user item\n\n").unwrap();
    assert_eq!(
        fails(&mut predict(&model, &["--pairs", empty.to_str().unwrap()])),
        format!(
            "regulab: error: {}: has no USER ITEM pairs",
            empty.display()
        )
    );

    // An MLP given 10x10 images: the images file is named, not the model.
    train(
        dir.path(),
        "mlp",
        &[
            "mlp",
            "--data",
            &fashion_mnist(),
            "--epochs",
            "1",
            "--hidden",
            "8",
            "--limit-train",
            "200",
            "--limit-test",
            "100",
        ],
    );
    let images = dir.path().join("small-images-idx3-ubyte");
    let mut bytes = vec![0, 0, 8, 3];
    for n in [3u32, 10, 10] {
        bytes.extend_from_slice(&n.to_be_bytes());
    }
    bytes.extend(std::iter::repeat_n(7u8, 300));
    std::fs::write(&images, bytes).unwrap();
    let mlp = dir.path().join("mlp.final.safetensors");
    assert_eq!(
        fails(&mut predict(&mlp, &["--images", images.to_str().unwrap()])),
        format!(
            "regulab: error: {}: images of 10x10 (100 pixels), but the model takes 784 pixels per image",
            images.display()
        )
    );
}

#[test]
fn eval_and_predict_help_show_each_default_once() {
    for command in ["eval", "predict"] {
        let output = run_ok(regulab().args([command, "--help"]));
        let help = String::from_utf8_lossy(&output.stdout);
        for line in help.lines() {
            assert!(
                line.matches("[default:").count() <= 1,
                "{command} --help: {line}"
            );
        }
    }
    let output = run_ok(regulab().args(["eval", "--help"]));
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(!help.contains("--split u2"), "{help}");
}

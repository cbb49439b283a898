//! Runs as data: config files, `regulab run`, `regulab rerun`, sweep files, and the layering
//! that keeps clap out of the library.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

const SMALL: &[&str] = &["--synthetic-ratings", "20000", "--epochs", "2"];

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Every per-epoch number of two runs, for equality checks.
fn epoch_numbers(run: &Value) -> Vec<Value> {
    run["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let mut e = e.clone();
            let object = e.as_object_mut().unwrap();
            object.remove("seconds");
            object.remove("eval_seconds");
            e
        })
        .collect()
}

#[test]
fn a_rerun_repeats_the_recorded_run_number_for_number() {
    let dir = tempfile::tempdir().unwrap();
    let first = train(
        dir.path(),
        "first",
        &[&["mf", "--penalty", "batch-l2", "--lambda", "0.05"], SMALL].concat(),
    );
    assert_eq!(first["schema_version"], 2);
    assert!(first["argv"].as_array().unwrap().len() > 3, "argv recorded");
    let again = dir.path().join("again.json");
    run_ok(
        regulab()
            .args(["rerun", dir.path().join("first.json").to_str().unwrap()])
            .arg("--out")
            .arg(&again),
    );
    let again = read_json(&again);
    assert_eq!(epoch_numbers(&first), epoch_numbers(&again));
    assert_eq!(first["config"]["lambda"], again["config"]["lambda"]);
    // --set overrides one recorded key; the rest stays as recorded.
    let changed = dir.path().join("changed.json");
    run_ok(
        regulab()
            .args(["rerun", dir.path().join("first.json").to_str().unwrap()])
            .args([
                "--set",
                "epochs=1",
                "--set",
                "lambda=0.5",
                "--quiet",
                "--out",
            ])
            .arg(&changed),
    );
    let changed = read_json(&changed);
    assert_eq!(changed["epochs"].as_array().unwrap().len(), 1);
    assert_eq!(changed["config"]["lambda"], 0.5);
    assert_eq!(changed["config"]["penalty"], "batch-l2");
    // The original document is never the re-run's output.
    let original = read_json(&dir.path().join("first.json"));
    assert_eq!(epoch_numbers(&original), epoch_numbers(&first));
}

#[test]
fn a_config_file_runs_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "exp.toml",
        "# comment\ncommand = \"mf\"\npenalty = \"frobenius\"\nlambda = 0.5\nsynthetic-ratings = 20000\nepochs = 2\nthreads = 1\nquiet = true\ndevice = \"cpu\"\n",
    );
    let out = dir.path().join("from-file.json");
    run_ok(
        regulab()
            .args(["run", file.to_str().unwrap(), "--out"])
            .arg(&out),
    );
    let run = read_json(&out);
    assert_eq!(run["config"]["penalty"], "frobenius");
    assert_eq!(run["config"]["lambda"], 0.5);
    assert_eq!(run["epochs"].as_array().unwrap().len(), 2);
    // A flag beats the file; --set beats both.
    let out = dir.path().join("override.json");
    run_ok(
        regulab()
            .args(["mf", "--config", file.to_str().unwrap()])
            .args(["--lambda", "0.25", "--set", "epochs=1", "--out"])
            .arg(&out),
    );
    let run = read_json(&out);
    assert_eq!(run["config"]["lambda"], 0.25);
    assert_eq!(run["config"]["penalty"], "frobenius");
    assert_eq!(run["epochs"].as_array().unwrap().len(), 1);
}

#[test]
fn config_file_errors_name_the_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "bad.toml", "command = \"mf\"\n\nlamda = 0.1\n");
    let line = run_err(regulab().args(["run", file.to_str().unwrap()]));
    assert!(
        line.contains("bad.toml:3: lamda: unknown key (did you mean lambda?)"),
        "{line}"
    );
    let file = write(
        dir.path(),
        "typed.toml",
        "command = \"mf\"\nepochs = \"many\"\n",
    );
    let line = run_err(regulab().args(["run", file.to_str().unwrap()]));
    assert!(
        line.contains("typed.toml:2: epochs many: expected a non-negative integer"),
        "{line}"
    );
    let file = write(dir.path(), "mlp.toml", "command = \"mlp\"\ndata = \"x\"\n");
    let line = run_err(regulab().args(["mf", "--config", file.to_str().unwrap()]));
    assert!(line.contains("describes a `regulab mlp` run"), "{line}");
    let file = write(dir.path(), "nocommand.toml", "lambda = 0.1\n");
    let line = run_err(regulab().args(["run", file.to_str().unwrap()]));
    assert!(line.contains("command = \"mf\" or \"mlp\""), "{line}");
}

#[test]
fn bad_values_fail_before_any_data_is_read() {
    // The data path does not exist: the flag error must come first.
    for (flag, value, want) in [
        (
            "--lambda",
            "-1",
            "--lambda -1: must be a non-negative number",
        ),
        ("--lr", "-1", "--lr -1: must be a positive number"),
        ("--batch-size", "0", "--batch-size 0: must be at least 1"),
        (
            "--epochs",
            "1e3",
            "--epochs 1e3: expected a non-negative integer",
        ),
        (
            "--engine",
            "turbo",
            "--engine turbo: unknown variant `turbo`",
        ),
    ] {
        let line = run_err(
            regulab()
                .args(["mf", "--data", "/no/such/ratings", "--penalty", "l1"])
                .args([flag, value]),
        );
        assert!(line.contains(want), "{flag} {value}: {line}");
    }
    let line = run_err(regulab().args([
        "mf",
        "--data",
        "/no/such/ratings",
        "--engine",
        "fused",
        "--device",
        "cuda",
    ]));
    assert!(
        line.contains("--engine fused: fused runs on the CPU only"),
        "{line}"
    );
    let line = run_err(regulab().args(["mlp", "--data", "/no/such/images", "--set", "dim=4"]));
    assert!(
        line.contains("--set dim 4: applies to `regulab mf` only"),
        "{line}"
    );
}

#[test]
fn every_example_runs() {
    let examples = script("examples");
    let dir = tempfile::tempdir().unwrap();
    let mut ran = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        // Real data from ../shared, one short epoch: the file's own keys must all be valid.
        let (data, limits): (String, &[&str]) = if text.contains("command = \"mlp\"") {
            (
                fashion_mnist(),
                &["--set", "limit_train=2000", "--set", "limit_test=500"],
            )
        } else {
            (ml100k(), &[])
        };
        let out = dir
            .path()
            .join(path.file_name().unwrap())
            .with_extension("json");
        run_ok(
            regulab()
                .arg("run")
                .arg(&path)
                .args(["--set", &format!("data={data}"), "--set", "epochs=1"])
                .args(["--set", "threads=1", "--quiet", "--out"])
                .arg(&out)
                .args(limits),
        );
        let run = read_json(&out);
        assert_eq!(run["status"], "completed", "{}", path.display());
        ran += 1;
    }
    assert!(ran >= 5, "only {ran} examples");
}

fn summary_numbers(summary: &Value) -> Vec<(String, Value)> {
    summary["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["file"].as_str().unwrap().to_string(),
                r["test_at_selected"].clone(),
            )
        })
        .collect()
}

#[test]
fn a_sweep_file_and_the_same_flags_give_the_same_summary() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "sweep.toml",
        "command = \"mf\"\nsynthetic_ratings = 20000\nepochs = 2\npenalty = \"batch-l2\"\nthreads = 1\nquiet = true\ndevice = \"cpu\"\n\n[sweep]\nlambda = [0.0, 0.1]\nseed = [1, 2]\n",
    );
    let from_file = dir.path().join("from-file");
    let output = run_ok(
        regulab()
            .args(["sweep", "--config", file.to_str().unwrap(), "--out"])
            .arg(&from_file),
    );
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        table.contains("lambda") && table.contains("test rmse"),
        "{table}"
    );
    let from_flags = dir.path().join("from-flags");
    run_ok(
        regulab()
            .args([
                "sweep",
                "mf",
                "--synthetic-ratings",
                "20000",
                "--epochs",
                "2",
            ])
            .args([
                "--penalty",
                "batch-l2",
                "--threads",
                "1",
                "--quiet",
                "--device",
                "cpu",
            ])
            .args(["--lambda", "0,0.1", "--seed", "1,2", "--out"])
            .arg(&from_flags),
    );
    let a = read_json(&from_file.join("summary.json"));
    let b = read_json(&from_flags.join("summary.json"));
    assert_eq!(a["schema_version"], 2);
    assert_eq!(a["runs"].as_array().unwrap().len(), 4);
    assert_eq!(
        a["groups"].as_array().unwrap().len(),
        2,
        "seeds are aggregated"
    );
    // Files are named after their values; the numbers agree run for run.
    let (a, b) = (summary_numbers(&a), summary_numbers(&b));
    assert_eq!(a[0].0, "lambda=0.0,seed=1.json");
    assert_eq!(a, b);
    assert!(from_file.join("lambda=0.1,seed=2.json").exists());
}

#[test]
fn only_the_command_line_knows_clap() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offenders = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let relative = path.strip_prefix(&src).unwrap().to_path_buf();
            let allowed = relative.starts_with("cli") || relative == Path::new("main.rs");
            if text.contains("clap") && !allowed {
                offenders.push(relative.display().to_string());
            }
        }
    }
    assert!(offenders.is_empty(), "clap outside the CLI: {offenders:?}");
}

#[test]
fn the_engine_is_recorded_and_leaves_the_run_id_and_numbers_alone() {
    let dir = tempfile::tempdir().unwrap();
    let run = |engine: &str| {
        train(
            dir.path(),
            engine,
            &[
                "mf",
                "--epochs",
                "2",
                "--penalty",
                "batch-l2",
                "--lambda",
                "0.05",
                "--engine",
                engine,
            ],
        )
    };
    let (fused, autograd, auto) = (run("fused"), run("autograd"), run("auto"));
    assert_eq!(fused["environment"]["engine"], "fused");
    assert_eq!(fused["environment"]["engine_choice"], "--engine fused");
    assert_eq!(autograd["environment"]["engine"], "autograd");
    // On the CPU, auto takes the fused step (its self-check passes on the CI machines).
    assert_eq!(auto["environment"]["engine"], "fused");
    assert!(auto["environment"]["engine_choice"]
        .as_str()
        .unwrap()
        .starts_with("auto: "));
    assert_eq!(fused["run_id"], autograd["run_id"]);
    assert_eq!(epoch_numbers(&fused), epoch_numbers(&autograd));
    assert!(!epoch_numbers(&fused).is_empty());
}

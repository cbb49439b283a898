//! Checkpoints and `regulab resume`: a run stopped by SIGINT or killed with SIGKILL and then
//! resumed has, epoch for epoch, the numbers of the same run left alone; every case that
//! cannot be resumed is refused with one line.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MF: &[&str] = &[
    "mf",
    "--split",
    "u1",
    "--epochs",
    "10",
    "--val-split",
    "0.1",
    "--penalty",
    "batch-l2",
    "--lambda",
    "0.05",
    "--lr-schedule",
    "plateau:1:0.5",
    "--log-every",
    "25",
];

const MLP: &[&str] = &[
    "mlp",
    "--limit-train",
    "3000",
    "--limit-test",
    "1000",
    "--hidden",
    "64,32",
    "--epochs",
    "8",
    "--val-split",
    "0.1",
    "--penalty",
    "l2",
    "--lambda",
    "0.001",
    "--restore-best",
];

fn args(base: &[&str], data: &str) -> Vec<String> {
    let mut args: Vec<String> = base.iter().map(|s| s.to_string()).collect();
    args.extend(["--data".into(), data.into(), "--threads".into(), "1".into()]);
    args.extend(["--device".into(), "cpu".into(), "--quiet".into()]);
    args
}

fn spawn(args: &[String], out: &Path) -> Child {
    regulab()
        .args(args)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start regulab")
}

/// Waits until the document records at least `epochs` epochs (and their checkpoint).
fn wait_for_epochs(out: &Path, epochs: usize) {
    wait_for(out, epochs, true);
}

/// Waits until the document records `epochs` epochs, and their checkpoint when `checkpointed`.
fn wait_for(out: &Path, epochs: usize, checkpointed: bool) {
    let checkpoint = out.with_extension("checkpoint.safetensors");
    let deadline = Instant::now() + Duration::from_secs(180);
    while Instant::now() < deadline {
        let recorded = std::fs::read_to_string(out)
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .and_then(|run| run["epochs"].as_array().map(Vec::len));
        if recorded.is_some_and(|n| n >= epochs) && (!checkpointed || checkpoint.exists()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{}: {epochs} epochs not written in time", out.display());
}

fn stop(child: &mut Child, signal: &str) -> Option<i32> {
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    child.wait().expect("wait").code()
}

/// An epoch without its timings (which differ from run to run).
fn numbers(epoch: &Value) -> Value {
    let mut epoch = epoch.clone();
    let object = epoch.as_object_mut().expect("epoch object");
    object.remove("seconds");
    object.remove("eval_seconds");
    epoch
}

fn summary_numbers(run: &Value) -> Value {
    let mut summary = run["summary"].clone();
    summary
        .as_object_mut()
        .expect("summary")
        .remove("total_seconds");
    summary
}

/// Trains `base` uninterrupted and stopped with `signal` after `after` epochs then resumed,
/// and checks the two documents agree on every number.
fn resume_equals_uninterrupted(
    base: &[&str],
    data: &str,
    signal: &str,
    after: usize,
) -> (PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let args = args(base, data);
    let whole = dir.path().join("whole.json");
    run_ok(regulab().args(&args).arg("--out").arg(&whole));

    let stopped = dir.path().join("stopped.json");
    let mut child = spawn(&args, &stopped);
    // Epoch `after`'s checkpoint is written after its document entry and before the next
    // epoch's: one more recorded epoch means it is on disk.
    wait_for_epochs(&stopped, after + 1);
    let code = stop(&mut child, signal);
    let interrupted = read_json(&stopped);
    let expected_status = if signal == "KILL" {
        "running"
    } else {
        "interrupted"
    };
    assert_eq!(interrupted["status"], expected_status, "{interrupted:#}");
    match signal {
        "INT" => assert_eq!(code, Some(130)),
        "TERM" => assert_eq!(code, Some(143)),
        _ => {}
    }
    let checkpoint = stopped.with_extension("checkpoint.safetensors");
    assert!(checkpoint.exists());

    run_ok(regulab().arg("resume").arg(&stopped).arg("--quiet"));
    let whole = read_json(&whole);
    let resumed = read_json(&stopped);
    assert_eq!(resumed["status"], "completed");
    let (a, b) = (
        whole["epochs"].as_array().unwrap(),
        resumed["epochs"].as_array().unwrap(),
    );
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(
            numbers(x),
            numbers(y),
            "epoch {} differs after resuming",
            x["epoch"]
        );
    }
    assert_eq!(whole["steps"], resumed["steps"]);
    assert_eq!(summary_numbers(&whole), summary_numbers(&resumed));
    let from = resumed["resumed"][0]["from_epoch"].as_u64().unwrap() as usize;
    assert!(from >= after, "resumed from epoch {from}");
    assert!(!checkpoint.exists(), "a completed run keeps no checkpoint");
    assert_eq!(
        whole["models"],
        resumed["models"]
            .clone()
            .as_array()
            .map(|models| {
                // Same roles and epochs; file names follow the document's name.
                Value::Array(
                    models
                        .iter()
                        .map(|m| {
                            let mut m = m.clone();
                            m["file"] = Value::String(
                                m["file"].as_str().unwrap().replace("stopped", "whole"),
                            );
                            m
                        })
                        .collect(),
                )
            })
            .unwrap()
    );
    (stopped, dir)
}

#[test]
fn mf_resumed_after_sigint_equals_the_uninterrupted_run() {
    resume_equals_uninterrupted(MF, &ml100k(), "INT", 3);
}

/// Row-sparse training: SparseAdam's lazy moments and integer step go through the checkpoint.
const MF_SPARSE: &[&str] = &[
    "mf",
    "--split",
    "u1",
    "--epochs",
    "10",
    "--val-split",
    "0.1",
    "--penalty",
    "batch-l2",
    "--lambda",
    "0.05",
    "--sparse",
];

#[test]
fn sparse_mf_resumed_after_sigterm_equals_the_uninterrupted_run() {
    resume_equals_uninterrupted(MF_SPARSE, &ml100k(), "TERM", 2);
}

#[test]
fn mlp_resumed_after_sigkill_equals_the_uninterrupted_run() {
    resume_equals_uninterrupted(MLP, &fashion_mnist(), "KILL", 2);
}

#[test]
fn runs_that_cannot_be_resumed_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = ml100k();
    let quick = ["mf", "--split", "u1", "--epochs", "2"];

    // Completed.
    let completed = dir.path().join("completed.json");
    run_ok(
        regulab()
            .args(args(&quick, &data))
            .arg("--out")
            .arg(&completed),
    );
    let error = run_err(regulab().arg("resume").arg(&completed));
    assert!(
        error.contains("completed.json: the run completed; nothing to resume"),
        "{error}"
    );

    // No checkpoints written.
    let mut long = args(&["mf", "--split", "u1", "--epochs", "200"], &data);
    long.extend(["--checkpoint-every".into(), "0".into()]);
    let unsaved = dir.path().join("unsaved.json");
    let mut child = spawn(&long, &unsaved);
    wait_for(&unsaved, 1, false);
    stop(&mut child, "INT");
    let error = run_err(regulab().arg("resume").arg(&unsaved));
    assert!(
        error.contains("has no checkpoint (it ran with --checkpoint-every 0)"),
        "{error}"
    );

    // Checkpoint removed.
    let long = args(&["mf", "--split", "u1", "--epochs", "200"], &data);
    let removed = dir.path().join("removed.json");
    let mut child = spawn(&long, &removed);
    wait_for_epochs(&removed, 1);
    stop(&mut child, "TERM");
    std::fs::remove_file(removed.with_extension("checkpoint.safetensors")).unwrap();
    let error = run_err(regulab().arg("resume").arg(&removed));
    assert!(
        error.contains("removed.checkpoint.safetensors is missing"),
        "{error}"
    );

    // Diverged.
    let diverged = dir.path().join("diverged.json");
    let status = regulab()
        .args(args(
            &[
                "mf",
                "--split",
                "u1",
                "--epochs",
                "3",
                "--optimizer",
                "sgd",
                "--lr",
                "1e12",
            ],
            &data,
        ))
        .arg("--out")
        .arg(&diverged)
        .status()
        .unwrap();
    assert!(!status.success());
    let error = run_err(regulab().arg("resume").arg(&diverged));
    assert!(
        error.contains("the run diverged; resuming would diverge again"),
        "{error}"
    );

    // Not a run document.
    let error = run_err(regulab().arg("resume").arg(dir.path().join("absent.json")));
    assert!(error.contains("absent.json"), "{error}");
}

#[test]
fn changed_data_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ml-100k");
    std::fs::create_dir(&data).unwrap();
    for name in ["u.data", "u1.base", "u1.test", "u.item", "u.user"] {
        let source = shared_data("ml-100k").join(name);
        if source.exists() {
            std::fs::copy(&source, data.join(name)).unwrap();
        }
    }
    let long = args(
        &["mf", "--split", "u1", "--epochs", "200"],
        &data.display().to_string(),
    );
    let out = dir.path().join("run.json");
    let mut child = spawn(&long, &out);
    wait_for_epochs(&out, 1);
    stop(&mut child, "INT");
    // One rating changes its value (the first line of u1.base).
    let base = data.join("u1.base");
    let text = std::fs::read_to_string(&base).unwrap();
    let (first, rest) = text.split_once('\n').unwrap();
    let mut fields: Vec<String> = first.split('\t').map(String::from).collect();
    fields[2] = if fields[2] == "1" {
        "2".into()
    } else {
        "1".into()
    };
    std::fs::write(&base, format!("{}\n{rest}", fields.join("\t"))).unwrap();
    let error = run_err(regulab().arg("resume").arg(&out));
    assert!(
        error.contains(
            "run.json: the data changed since the run started (same sizes, different contents)"
        ),
        "{error}"
    );
}

#[test]
fn resume_takes_the_same_data_from_another_place_and_refuses_other_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ml-100k");
    std::fs::create_dir(&data).unwrap();
    for name in ["u.data", "u1.base", "u1.test"] {
        std::fs::copy(shared_data("ml-100k").join(name), data.join(name)).unwrap();
    }
    let long = args(
        &["mf", "--split", "u1", "--epochs", "200"],
        &data.display().to_string(),
    );
    let out = dir.path().join("run.json");
    let mut child = spawn(&long, &out);
    wait_for_epochs(&out, 1);
    stop(&mut child, "INT");
    let stopped = read_json(&out);
    let moved = dir.path().join("moved");
    std::fs::rename(&data, &moved).unwrap();

    // Other data (one rating changed) is another run: refused in one line.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    for name in ["u.data", "u1.test"] {
        std::fs::copy(moved.join(name), other.join(name)).unwrap();
    }
    let base = std::fs::read_to_string(moved.join("u1.base")).unwrap();
    let (first, rest) = base.split_once('\n').unwrap();
    let mut fields: Vec<&str> = first.split('\t').collect();
    fields[2] = if fields[2] == "1" { "2" } else { "1" };
    std::fs::write(
        other.join("u1.base"),
        format!("{}\n{rest}", fields.join("\t")),
    )
    .unwrap();
    let error = run_err(regulab().arg("resume").arg(&out).arg("--data").arg(&other));
    assert_eq!(
        error,
        format!(
            "regulab: error: --data {}: is not the data {} trained on (same sizes, different contents); resume needs the same data (another place is fine)",
            other.display(),
            out.display()
        )
    );

    // The same data moved: resumed (then stopped again), the new place and threads recorded.
    let done = stopped["epochs"].as_array().unwrap().len();
    let mut child = regulab()
        .arg("resume")
        .arg(&out)
        .arg("--data")
        .arg(&moved)
        .args(["--threads", "2", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start regulab resume");
    wait_for(&out, done + 1, false);
    stop(&mut child, "INT");
    let resumed = read_json(&out);
    assert_eq!(resumed["run_id"], stopped["run_id"]);
    assert_eq!(resumed["resumed"].as_array().map(Vec::len), Some(1));
    assert_eq!(resumed["config"]["data"], moved.display().to_string());
    assert_eq!(resumed["config"]["threads"], 2);
    assert_eq!(resumed["dataset"]["source"], moved.display().to_string());
}

/// Both engines keep the optimizer's state in the same tensors: a checkpoint written by
/// autograd continues in the fused step (the document's `engine` changed before resuming;
/// it is not part of the run id) with the numbers of a fused run left alone.
#[test]
fn a_checkpoint_of_one_engine_resumes_in_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let data = ml100k();
    let with_engine = |engine| args(&[MF, &["--engine", engine]].concat(), &data);
    let whole = dir.path().join("whole.json");
    run_ok(
        regulab()
            .args(with_engine("fused"))
            .arg("--out")
            .arg(&whole),
    );
    let stopped = dir.path().join("stopped.json");
    let mut child = spawn(&with_engine("autograd"), &stopped);
    wait_for_epochs(&stopped, 3);
    assert_eq!(stop(&mut child, "INT"), Some(130));
    let mut document = read_json(&stopped);
    assert_eq!(document["environment"]["engine"], "autograd");
    document["config"]["engine"] = Value::from("fused");
    std::fs::write(&stopped, serde_json::to_string_pretty(&document).unwrap()).unwrap();
    run_ok(regulab().arg("resume").arg(&stopped).arg("--quiet"));
    let (whole, resumed) = (read_json(&whole), read_json(&stopped));
    assert_eq!(resumed["status"], "completed");
    assert_eq!(resumed["environment"]["engine"], "fused");
    let (a, b) = (
        whole["epochs"].as_array().unwrap(),
        resumed["epochs"].as_array().unwrap(),
    );
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(numbers(x), numbers(y), "epoch {} differs", x["epoch"]);
    }
}

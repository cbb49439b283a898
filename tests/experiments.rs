//! Runs with an identity: the output rule (a path holds only this same run's files unless
//! --overwrite), zombie-safe locks, the stale-checkpoint refusal, sweeps that continue after
//! SIGKILL without rewriting finished runs, and `--jobs` giving `--jobs 1`'s numbers.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn mf(out: &Path, extra: &[&str]) -> std::process::Command {
    let mut command = regulab();
    command
        .args([
            "mf",
            "--data",
            "synthetic",
            "--epochs",
            "2",
            "--quiet",
            "--threads",
            "1",
        ])
        .arg("--out")
        .arg(out)
        .args(extra);
    command
}

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A slow MF run (a larger synthetic set) to stop part-way.
fn spawn_slow(out: &Path, seed: &str) -> Child {
    regulab()
        .args(["mf", "--data", "synthetic", "--synthetic-ratings", "400000"])
        .args([
            "--epochs",
            "40",
            "--quiet",
            "--threads",
            "1",
            "--seed",
            seed,
        ])
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while Instant::now() < deadline {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what}: not reached in time");
}

fn epochs_recorded(out: &Path) -> usize {
    std::fs::read_to_string(out)
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|run| run["epochs"].as_array().map(Vec::len))
        .unwrap_or(0)
}

#[test]
fn a_path_holding_anything_but_this_run_is_refused_unless_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.json");
    std::fs::write(&notes, "{\"mine\": true}\n").unwrap();
    let output = mf(&notes, &[]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let message = stderr_of(&output);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        message.contains("notes.json: holds a file that is not this run's document")
            && message.contains("--overwrite"),
        "{message}"
    );
    assert_eq!(
        std::fs::read_to_string(&notes).unwrap(),
        "{\"mine\": true}\n"
    );
    run_ok(&mut mf(&notes, &["--overwrite"]));
    assert_eq!(read(&notes)["status"], "completed");

    // The same run again finds itself completed and keeps its document as it is.
    let run = dir.path().join("run.json");
    run_ok(&mut mf(&run, &[]));
    let before = std::fs::read(&run).unwrap();
    let id = read(&run)["run_id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 16);
    let mut again = regulab();
    again
        .args([
            "mf",
            "--data",
            "synthetic",
            "--epochs",
            "2",
            "--threads",
            "1",
        ])
        .arg("--out")
        .arg(&run);
    let again = run_ok(&mut again);
    assert!(
        stderr_of(&again).contains("already completed"),
        "{}",
        stderr_of(&again)
    );
    assert_eq!(std::fs::read(&run).unwrap(), before);
    // Another run (another seed) on that path is refused, naming the run there.
    let other = mf(&run, &["--seed", "7"]).output().unwrap();
    assert_eq!(other.status.code(), Some(1));
    assert!(stderr_of(&other).contains(&format!("holds another run (id {id})")));
    assert_eq!(std::fs::read(&run).unwrap(), before);
    // A completed run names no checkpoint: it was removed.
    assert!(read(&run).get("checkpoint").is_none());
    // Saved models carry the run's id.
    let header = read_safetensors_metadata(&run.with_extension("final.safetensors"));
    assert!(header.contains(&id), "{header}");
}

fn read_safetensors_metadata(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let size = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    String::from_utf8_lossy(&bytes[8..8 + size]).into_owned()
}

#[test]
fn a_run_killed_and_left_a_zombie_does_not_block_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run.json");
    let mut child = spawn_slow(&out, "1");
    wait_until("first epoch", || epochs_recorded(&out) >= 1);
    // Killed and not reaped: it stays a zombie (this test is its parent) while the next run
    // starts on the same --out.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    std::thread::sleep(Duration::from_millis(300));
    let output = regulab()
        .args(["mf", "--data", "synthetic", "--synthetic-ratings", "400000"])
        .args(["--epochs", "40", "--quiet", "--threads", "1", "--seed", "1"])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let message = stderr_of(&output);
    assert!(!message.contains("is writing it"), "{message}");
    assert!(output.status.success(), "{message}");
    assert_eq!(read(&out)["status"], "completed");
    let _ = child.wait();
}

#[test]
fn resume_refuses_a_checkpoint_of_another_run() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.json");
    let mut child = spawn_slow(&a, "1");
    let checkpoint = a.with_extension("checkpoint.safetensors");
    wait_until("a checkpointed epoch", || {
        epochs_recorded(&a) >= 2 && checkpoint.exists()
    });
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
    // Run B (another seed) stopped after 2 epochs, before its first checkpoint; A's
    // checkpoint then stands where B's would be.
    let b = dir.path().join("b.json");
    run_ok(&mut mf(&b, &["--seed", "2", "--checkpoint-every", "10"]));
    let mut document = read(&b);
    document["status"] = "interrupted".into();
    document["checkpoint"] = serde_json::json!({"file": "b.checkpoint.safetensors", "every": 10});
    std::fs::write(&b, serde_json::to_string_pretty(&document).unwrap()).unwrap();
    std::fs::copy(&checkpoint, b.with_extension("checkpoint.safetensors")).unwrap();
    let output = regulab().arg("resume").arg(&b).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let message = stderr_of(&output);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(message.contains("belongs to another run"), "{message}");
}

fn sweep(out: &Path, extra: &[&str]) -> std::process::Command {
    let mut command = regulab();
    command
        .args([
            "sweep",
            "mf",
            "--data",
            &ml100k(),
            "--split",
            "u1",
            "--epochs",
            "3",
        ])
        .args([
            "--penalty",
            "batch-l2",
            "--lambda",
            "0.01,0.1",
            "--seed",
            "1,2",
        ])
        .args(["--threads", "1", "--quiet", "--out"])
        .arg(out)
        .args(extra);
    command
}

fn run_numbers(summary: &Value) -> Vec<(String, String, Value)> {
    summary["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["file"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
                r["test_at_selected"].clone(),
            )
        })
        .collect()
}

#[test]
fn a_sweep_killed_part_way_continues_to_the_same_summary() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    run_ok(&mut sweep(&whole, &[]));
    let expected = read(&whole.join("summary.json"));

    let cut = dir.path().join("cut");
    let mut child = sweep(&cut, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let first: PathBuf = cut.join("lambda=0.01,seed=1.json");
    wait_until("a finished run", || {
        std::fs::read_to_string(cut.join("summary.json"))
            .ok()
            .is_some_and(|text| text.contains("completed"))
    });
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
    let kept = std::fs::read(&first).unwrap();
    let modified = std::fs::metadata(&first).unwrap().modified().unwrap();
    let output = run_ok(&mut sweep(&cut, &[]));
    assert!(output.status.success());
    assert_eq!(
        std::fs::read(&first).unwrap(),
        kept,
        "a finished run was rewritten"
    );
    assert_eq!(
        std::fs::metadata(&first).unwrap().modified().unwrap(),
        modified
    );
    let summary = read(&cut.join("summary.json"));
    assert_eq!(run_numbers(&summary), run_numbers(&expected));
    assert_eq!(summary["groups"], expected["groups"]);

    // A different sweep into that folder is refused, naming it.
    let other = regulab()
        .args([
            "sweep",
            "mf",
            "--data",
            &ml100k(),
            "--split",
            "u1",
            "--epochs",
            "4",
        ])
        .args([
            "--lambda",
            "0.5,1",
            "--penalty",
            "batch-l2",
            "--quiet",
            "--out",
        ])
        .arg(&cut)
        .output()
        .unwrap();
    assert_eq!(other.status.code(), Some(1));
    assert!(
        stderr_of(&other).contains("holds another sweep"),
        "{}",
        stderr_of(&other)
    );
    assert_eq!(read(&cut.join("summary.json")), summary);
}

#[test]
fn jobs_give_the_numbers_of_one_job() {
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("one");
    let two = dir.path().join("two");
    run_ok(&mut sweep(&one, &[]));
    run_ok(&mut sweep(&two, &["--jobs", "2"]));
    let (a, b) = (
        read(&one.join("summary.json")),
        read(&two.join("summary.json")),
    );
    assert_eq!(run_numbers(&a), run_numbers(&b));
    assert_eq!(a["groups"], b["groups"]);
    for run in b["runs"].as_array().unwrap() {
        assert_eq!(run["run_id"].as_str().map(str::len), Some(16));
    }
    assert!(two.join("plan/lambda=0.1,seed=2.json").is_file());
    assert!(two.join("logs/lambda=0.1,seed=2.log").is_file());
    // A device list spreads the runs, one per device at a time; it is not a swept key.
    let spread = dir.path().join("spread");
    run_ok(&mut sweep(&spread, &["--device", "cpu,cpu"]));
    let c = read(&spread.join("summary.json"));
    assert_eq!(run_numbers(&a), run_numbers(&c));
    assert!(!c["swept"].as_array().unwrap().iter().any(|k| k == "device"));
}

#[test]
fn plot_report_and_rerun_never_write_over_an_input_or_a_foreign_file() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run.json");
    run_ok(&mut mf(&run, &[]));
    let before = std::fs::read(&run).unwrap();
    let refused = |args: &[&std::ffi::OsStr], expected: &str| {
        let output = regulab().args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let message = stderr_of(&output);
        assert_eq!(message.lines().count(), 1, "{message}");
        assert!(message.contains(expected), "{message}");
    };
    let r = run.as_os_str();
    refused(
        &["report".as_ref(), r, "-o".as_ref(), r],
        "is also an input",
    );
    refused(&["plot".as_ref(), r, "-o".as_ref(), r], "is also an input");
    refused(
        &["rerun".as_ref(), r, "--out".as_ref(), r],
        "is the run being repeated",
    );
    assert_eq!(std::fs::read(&run).unwrap(), before);

    let notes = dir.path().join("notes.svg");
    std::fs::write(&notes, "my notes\n").unwrap();
    refused(
        &["plot".as_ref(), r, "-o".as_ref(), notes.as_os_str()],
        "did not write",
    );
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "my notes\n");
    // A figure is replaced by the next one; so is a report.
    let figure = dir.path().join("fig.svg");
    run_ok(regulab().arg("plot").arg(&run).arg("-o").arg(&figure));
    run_ok(regulab().arg("plot").arg(&run).arg("-o").arg(&figure));
    let page = dir.path().join("report.html");
    run_ok(regulab().arg("report").arg(&run).arg("-o").arg(&page));
    run_ok(regulab().arg("report").arg(&run).arg("-o").arg(&page));
    run_ok(
        regulab()
            .arg("plot")
            .arg(&run)
            .arg("-o")
            .arg(&notes)
            .arg("--overwrite"),
    );
}

//! Faults end in a clear error and a complete record: signals at any moment, memory beyond
//! the machine, huge or negative numbers, unsafe outputs, two runs on one document.
//!
//! Every check asserts what a user sees: the exit status, one or two lines on stderr naming
//! the flag or file (never "panicked" or C++ frames), and a run document that parses with a
//! truthful status.

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn assert_clean_stderr(stderr: &str) {
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert!(!stderr.contains("frame #"), "C++ frames: {stderr}");
    assert!(
        !stderr.contains("RUST_BACKTRACE"),
        "backtrace hint: {stderr}"
    );
    assert!(
        !stderr.contains("corrupted") && !stderr.contains("double free"),
        "heap corruption: {stderr}"
    );
}

fn spawn(args: &[&str], out: &Path) -> Child {
    regulab()
        .args(args)
        .args(["--quiet", "--device", "cpu", "--out"])
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start regulab")
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Waits until the document exists and has at least `epochs` epochs.
fn wait_for_epochs(out: &Path, epochs: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(out) {
            if let Ok(run) = serde_json::from_str::<Value>(&text) {
                if run["epochs"].as_array().is_some_and(|e| e.len() >= epochs) {
                    return;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{}: no epoch written in time", out.display());
}

fn wait_for_lock(out: &Path) {
    let name = out.file_name().unwrap().to_string_lossy();
    let lock = out.with_file_name(format!(".{name}.lock"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !lock.exists() && !out.exists() {
        assert!(
            Instant::now() < deadline,
            "{}: never started",
            out.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn finish(child: Child) -> Output {
    child.wait_with_output().expect("wait")
}

const LONG_MF: &[&str] = &[
    "mf",
    "--synthetic-ratings",
    "100000",
    "--epochs",
    "1000",
    "--batch-size",
    "256",
    "--threads",
    "1",
];

#[test]
fn sigterm_and_sighup_end_a_run_like_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    for (name, code) in [("INT", 130), ("TERM", 143), ("HUP", 129)] {
        let out = dir.path().join(format!("{name}.json"));
        let child = spawn(LONG_MF, &out);
        wait_for_epochs(&out, 1);
        signal(&child, name);
        let output = finish(child);
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        assert_eq!(output.status.code(), Some(code), "SIG{name}: {stderr}");
        assert_clean_stderr(&stderr);
        let run = read_json(&out);
        assert_eq!(run["status"], "interrupted", "SIG{name}");
        let message = run["message"].as_str().unwrap();
        assert!(message.contains(&format!("SIG{name}")), "{message}");
        // The epoch in progress is recorded as partial and not counted.
        let epochs = run["epochs"].as_array().unwrap();
        let whole = epochs.iter().filter(|e| e["partial"] != true).count();
        assert_eq!(run["summary"]["epochs_completed"], whole);
        if let Some(last) = epochs.last().filter(|e| e["partial"] == true) {
            assert!(message.contains("partial"), "{message}");
            assert!(run["summary"]["selected_epoch"] != last["epoch"]);
        }
        assert!(!dir.path().join(format!(".{name}.json.lock")).exists());
    }
}

/// Ctrl-C at random moments of short MLP runs, many times: never a crash at exit (heap
/// corruption once showed up about one time in six), always a truthful document.
#[test]
fn repeated_interrupts_never_crash() {
    let dir = tempfile::tempdir().unwrap();
    let data = fashion_mnist();
    let mut seen_training = 0;
    for attempt in 0..12u64 {
        let out = dir.path().join(format!("mlp-{attempt}.json"));
        let child = spawn(
            &[
                "mlp",
                "--data",
                &data,
                "--limit-train",
                "2000",
                "--limit-test",
                "500",
                "--epochs",
                "1000",
                "--threads",
                "1",
            ],
            &out,
        );
        // Once the handlers are in place (the lock appears after them; before, the default
        // action would end the process, as for any program), spread the signals over
        // loading, the first steps and later epochs.
        wait_for_lock(&out);
        std::thread::sleep(Duration::from_millis((attempt * 397) % 2500));
        signal(&child, if attempt % 2 == 0 { "INT" } else { "TERM" });
        let output = finish(child);
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        assert_clean_stderr(&stderr);
        let code = output.status.code();
        assert!(
            code == Some(130) || code == Some(143),
            "attempt {attempt}: exit {:?}: {stderr}",
            output.status
        );
        if out.exists() {
            let run = read_json(&out);
            assert_eq!(run["status"], "interrupted", "attempt {attempt}");
            seen_training += 1;
        }
    }
    assert!(
        seen_training >= 6,
        "only {seen_training} runs got to training"
    );
}

#[test]
fn sigkill_at_any_moment_leaves_a_valid_document_and_a_lock_the_next_run_takes_over() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("killed.json");
    for delay in [700u64, 1300, 2100] {
        let child = spawn(LONG_MF, &out);
        std::thread::sleep(Duration::from_millis(delay));
        signal(&child, "KILL");
        let _ = finish(child);
        if out.exists() {
            let run = read_json(&out);
            assert_eq!(run["status"], "running", "nothing could record the kill");
        }
    }
    // The dead run's lock does not block the next run on the same document (another run:
    // it replaces the killed one's document only with --overwrite).
    let run = train(
        dir.path(),
        "killed",
        &[
            "mf",
            "--synthetic-ratings",
            "20000",
            "--epochs",
            "1",
            "--overwrite",
        ],
    );
    assert_eq!(run["status"], "completed");
}

#[test]
fn a_second_run_on_the_same_document_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("shared.json");
    let first = spawn(LONG_MF, &out);
    wait_for_epochs(&out, 1);
    let line = run_err(
        regulab()
            .args([
                "mf",
                "--synthetic-ratings",
                "20000",
                "--epochs",
                "1",
                "--out",
            ])
            .arg(&out),
    );
    assert!(line.contains("another regulab run"), "{line}");
    assert!(line.contains(&out.display().to_string()), "{line}");
    signal(&first, "INT");
    let output = finish(first);
    assert_eq!(output.status.code(), Some(130));
    assert_eq!(read_json(&out)["status"], "interrupted");
}

#[test]
fn an_interrupted_sweep_writes_its_summary_and_exits_like_its_signal() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("sweep");
    let child = regulab()
        .args([
            "sweep",
            "mf",
            "--synthetic-ratings",
            "100000",
            "--epochs",
            "1000",
        ])
        .args([
            "--lambda",
            "0,0.1,1",
            "--penalty",
            "frobenius",
            "--threads",
            "1",
        ])
        .args(["--quiet", "--device", "cpu", "--out"])
        .arg(&folder)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_epochs(&folder.join("lambda=0.0.json"), 1);
    signal(&child, "TERM");
    let output = finish(child);
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(output.status.code(), Some(143), "{stderr}");
    assert_clean_stderr(&stderr);
    let summary = read_json(&folder.join("summary.json"));
    let runs = summary["runs"].as_array().unwrap();
    assert_eq!(
        runs.len(),
        1,
        "the interrupted run is listed, later ones never started"
    );
    assert_eq!(runs[0]["status"], "interrupted");
    assert!(folder.join("summary.csv").exists());
}

#[test]
fn memory_beyond_the_machine_is_refused_before_allocating() {
    let line = run_err(regulab().args([
        "mf",
        "--data",
        &ml100k(),
        "--split",
        "u1",
        "--dim",
        "2000000",
        "--quiet",
    ]));
    assert!(
        line.contains("memory") && line.contains("--dim") && line.contains("--force"),
        "{line}"
    );
}

#[test]
fn huge_and_negative_numbers_get_their_own_messages() {
    let cases: [(&[&str], &str); 6] = [
        (
            &["--batch-size", "9223372036854775808"],
            "--batch-size 9223372036854775808: is too large",
        ),
        (
            &["--batch-size", "18446744073709551616"],
            "--batch-size 18446744073709551616: expected a non-negative integer",
        ),
        (&["--lr", "-1"], "--lr -1: must be a positive number"),
        (
            &["--penalty", "l1", "--lambda", "-1"],
            "--lambda -1: must be a non-negative number",
        ),
        (
            &["--threads", "-2"],
            "--threads -2: expected a non-negative integer",
        ),
        (
            &["--epochs", "-1"],
            "--epochs -1: expected a non-negative integer",
        ),
    ];
    for (args, want) in cases {
        let line = run_err(regulab().arg("mf").args(args).arg("--quiet"));
        assert!(line.contains(want), "{args:?}: {line}");
    }
}

#[test]
fn too_many_threads_is_a_warning_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_ok(
        regulab()
            .args([
                "mf",
                "--synthetic-ratings",
                "5000",
                "--epochs",
                "1",
                "--threads",
                "1000",
            ])
            .args(["--quiet", "--out"])
            .arg(dir.path().join("t.json")),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning: --threads 1000 is more than"),
        "{stderr}"
    );
}

#[test]
fn unsafe_outputs_are_refused_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    // The data file itself.
    let data = dir.path().join("ratings");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(
        data.join("u.data"),
        "1\t1\t5\t0\n1\t2\t3\t0\n2\t1\t4\t0\n2\t2\t1\t0\n",
    )
    .unwrap();
    let target = data.join("u.data");
    let line = run_err(
        regulab()
            .args(["mf", "--split", "none", "--data"])
            .arg(&data)
            .arg("--out")
            .arg(&target),
    );
    assert!(line.contains("is an input data file"), "{line}");
    assert!(std::fs::read_to_string(&target)
        .unwrap()
        .starts_with("1\t1\t5"));
    // A folder.
    let line = run_err(regulab().args(["mf", "--out"]).arg(dir.path()));
    assert!(line.contains("is a folder"), "{line}");
    // Somewhere that cannot be written: the error names the path given.
    let line = run_err(regulab().args(["mf", "--epochs", "1", "--out", "/proc/regulab-run.json"]));
    assert!(line.contains("/proc/regulab-run.json"), "{line}");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
}

//! The hardening issue: bad input and hostile environments end with one clear line and the
//! documented exit code, never a panic, a backtrace or C++ frames; a run outlives its console.

mod common;

use common::{ml100k, regulab};
use std::process::{Command, Output, Stdio};

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The one line of an error, checked for what must never appear.
fn one_error_line(output: &Output) -> String {
    let text = stderr(output);
    assert!(
        !text.contains("panicked") && !text.contains("frame #") && !text.contains("RUST_BACKTRACE"),
        "{text}"
    );
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {text}");
    lines[0].to_string()
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("regulab-hardening-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn memory_a_huge_synthetic_data_set_is_refused_before_allocating() {
    let dir = temp_dir("synth");
    let huge = [
        "--synthetic-users",
        "4000000",
        "--synthetic-items",
        "4000000",
        "--synthetic-ratings",
        "1000000000000",
    ];
    let output = regulab()
        .args(["data", "synth", "--out"])
        .arg(dir.join("out"))
        .args(huge)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let line = one_error_line(&output);
    assert!(
        line.starts_with("regulab: error: generating the synthetic data needs about")
            && line.contains("--synthetic-ratings"),
        "{line}"
    );
    let output = regulab()
        .args(["mf", "--data", "synthetic", "--epochs", "1", "--out"])
        .arg(dir.join("run"))
        .args(huge)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(one_error_line(&output).contains("generating the synthetic data needs about"));
}

#[test]
fn memory_the_address_space_limit_is_the_one_compared_against() {
    let dir = temp_dir("ulimit");
    let script = format!(
        "ulimit -v 5000000; exec '{}' mf --data '{}' --dim 100000 --epochs 1 --out '{}'",
        env!("CARGO_BIN_EXE_regulab"),
        ml100k(),
        dir.join("run").display()
    );
    let output = Command::new("bash").args(["-c", &script]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let line = one_error_line(&output);
    assert!(
        line.contains("the address-space limit (ulimit -v) of 4.8 GiB")
            && line.contains("--dim")
            && line.contains("--force"),
        "{line}"
    );
}

#[test]
fn penalty_without_a_strength_is_a_usage_error() {
    let output = regulab()
        .args([
            "mf",
            "--data",
            &ml100k(),
            "--penalty",
            "l2",
            "--epochs",
            "1",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        one_error_line(&output),
        "regulab: error: --penalty l2 needs a strength: add --lambda (`lambda` in a config file), e.g. --lambda 0.1"
    );
    let output = regulab()
        .args([
            "mf",
            "--data",
            &ml100k(),
            "--penalty",
            "batch-l2",
            "--lambda",
            "0",
            "--epochs",
            "1",
            "--quiet",
            "--out",
        ])
        .arg(temp_dir("zero-lambda").join("run.json"))
        .output()
        .unwrap();
    // Said on the console, not refused: a sweep's lambda 0 baseline runs the same way.
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stderr).contains(
        "regulab: warning: --penalty batch-l2 with --lambda 0 is no penalty at all: this run is unregularized"
    ));
}

#[test]
fn a_run_outlives_its_console() {
    let dir = temp_dir("pipe");
    let out = dir.join("run.json");
    // Both readers go away at once, as with `regulab mf ... 2>&1 | head -1`.
    let mut child = regulab()
        .args(["mf", "--data", &ml100k(), "--epochs", "3", "--threads", "1"])
        .args(["--device", "cpu", "--out"])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    let run = common::read_json(&out);
    assert_eq!(run["status"], "completed");
    assert_eq!(run["epochs"].as_array().unwrap().len(), 3);
    // A command that only prints ends quietly when its reader is gone.
    let mut child = regulab()
        .args(["data", "info", &ml100k()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stderr(&output), "");
}

/// Runs regulab, expecting a usage error: exit 2 and one line, returned.
fn usage_error(args: &[&str]) -> String {
    let output = regulab().args(args).output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "{args:?}: {}",
        stderr(&output)
    );
    one_error_line(&output)
}

#[test]
fn plot_names_the_missing_argument() {
    assert_eq!(
        usage_error(&["plot", "x.json"]),
        "regulab: error: the following required arguments were not provided: --output <FIG.svg|png> (see --help)"
    );
}

#[test]
fn an_empty_config_file_is_named() {
    let dir = temp_dir("empty");
    let file = dir.join("empty.toml");
    std::fs::write(&file, "\n").unwrap();
    let line = usage_error(&["run", file.to_str().unwrap()]);
    assert_eq!(
        line,
        format!(
            "regulab: error: {}: the config file is empty: it needs at least command = \"mf\" or \"mlp\"",
            file.display()
        )
    );
    let file = dir.join("bad.json");
    std::fs::write(&file, "{\n \"command\": \"mf\",\n \"epochs\": 3,\n}\n").unwrap();
    let line = usage_error(&["run", file.to_str().unwrap()]);
    assert!(
        line.contains("bad.json:4:") && line.contains("line 4 column 1"),
        "{line}"
    );
}

#[test]
fn cv_blames_folds() {
    let line = usage_error(&[
        "cv",
        "mf",
        "--data",
        &ml100k(),
        "--folds",
        "u9",
        "--out",
        "/tmp/regulab-cv-u9",
    ]);
    assert!(
        line.starts_with("regulab: error: --folds u9: unknown split \"u9\""),
        "{line}"
    );
}

#[test]
fn a_misspelled_flag_gets_a_suggestion() {
    assert_eq!(
        usage_error(&["mf", "--lamda", "0.1"]),
        "regulab: error: unexpected argument '--lamda' found (did you mean --lambda?) (see --help)"
    );
}

#[test]
fn a_bad_flag_value_exits_2() {
    let line = usage_error(&["mf", "--data", &ml100k(), "--lr", "-1"]);
    assert_eq!(line, "regulab: error: --lr -1: must be a positive number");
    // A runtime failure stays 1.
    let output = regulab()
        .args(["mf", "--data", "/no/such/ratings", "--epochs", "1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    one_error_line(&output);
}

#[test]
fn sweep_help_cites_an_example_that_exists() {
    let output = regulab().args(["sweep", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("examples/sweeps/mf-lambda.toml"), "{help}");
    assert!(common::script("examples/sweeps/mf-lambda.toml").exists());
}

#[test]
fn cv_speaks_as_cv_and_its_means_count_only_completed_folds() {
    let dir = temp_dir("cv");
    let out = dir.join("cv");
    let output = regulab()
        .args([
            "cv",
            "mf",
            "--data",
            &ml100k(),
            "--folds",
            "u1,u2",
            "--epochs",
            "1",
        ])
        .args(["--threads", "1", "--quiet", "--device", "cpu", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(
        text.contains("regulab cv: run 1/2") && !text.contains("regulab sweep"),
        "{text}"
    );
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        table.contains("\nover folds:\n") && table.contains("left out"),
        "{table}"
    );
    // An interrupted fold is left out of the group's numbers, and counted as left out.
    let path = out.join("summary.json");
    let mut summary: regulab::schema::SweepSummary =
        serde_json::from_value(common::read_json(&path)).unwrap();
    let complete = summary.runs[0].test_at_selected.unwrap();
    summary.runs[1].status = regulab::schema::RunStatus::Interrupted;
    let groups = regulab::sweep::group_over_replicates(&summary.runs);
    assert_eq!(
        (groups[0].runs, groups[0].completed, groups[0].left_out),
        (2, 1, 1)
    );
    assert_eq!(groups[0].test_at_selected_mean, Some(complete));
    summary.groups = groups;
    let table = regulab::sweep::results_table(&summary);
    let row = table.lines().last().unwrap();
    assert!(row.split_whitespace().take(2).eq(["1", "1"]), "{table}");
}

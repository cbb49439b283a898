//! Helpers shared by the integration tests: the built binary, the shared data sets, the
//! project's Python, and reading run documents.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn regulab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_regulab"))
}

/// `../shared/data/NAME` beside the checkout (present on developer machines and in CI).
pub fn shared_data(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: the tests need ../shared/data beside the checkout",
        path.display()
    );
    path
}

pub fn ml100k() -> String {
    shared_data("ml-100k").display().to_string()
}

pub fn fashion_mnist() -> String {
    shared_data("fashion-mnist").display().to_string()
}

/// The project's Python with torch (installed by scripts/setup.sh).
pub fn python() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        path.exists(),
        "{} is missing: run `bash scripts/setup.sh`",
        path.display()
    );
    path
}

pub fn script(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Runs a command, asserting success, and returns its output.
pub fn run_ok(command: &mut Command) -> Output {
    let output = command.output().expect("command starts");
    assert!(
        output.status.success(),
        "{command:?} failed with {:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs a command that must fail with a one-line, panic-free error; returns that line.
pub fn run_err(command: &mut Command) -> String {
    let output = command.output().expect("command starts");
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(
        !output.status.success(),
        "{command:?} unexpectedly succeeded; stderr: {stderr}"
    );
    assert!(
        !stderr.contains("panicked"),
        "{command:?} panicked: {stderr}"
    );
    assert!(
        !stderr.contains("RUST_BACKTRACE"),
        "{command:?} printed a backtrace hint: {stderr}"
    );
    // clap's usage errors end with its standard pointer to --help; the error itself is one line.
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("For more information, try '--help'"))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "{command:?} error is not one line: {stderr}"
    );
    lines[0].to_string()
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The values of `epochs[*].<split>.<key>`.
pub fn curve(run: &Value, split: &str, key: &str) -> Vec<f64> {
    run["epochs"]
        .as_array()
        .expect("epochs array")
        .iter()
        .map(|e| e[split][key].as_f64().unwrap_or(f64::NAN))
        .collect()
}

/// Trains with `regulab <args> --out TMP --quiet --threads 1` and returns the run document.
pub fn train(dir: &Path, name: &str, args: &[&str]) -> Value {
    let out = dir.join(format!("{name}.json"));
    run_ok(
        regulab()
            .args(args)
            .args(["--quiet", "--threads", "1", "--device", "cpu", "--out"])
            .arg(&out),
    );
    read_json(&out)
}

pub fn assert_close(actual: f64, expected: f64, relative: f64, what: &str) {
    let scale = expected.abs().max(1e-12);
    assert!(
        ((actual - expected) / scale).abs() <= relative,
        "{what}: {actual} vs {expected} (relative tolerance {relative})"
    );
}

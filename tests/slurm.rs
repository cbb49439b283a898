//! `--executor slurm` against a real single-node Slurm (never a fake sbatch): the test starts
//! one with `scripts/slurm_single_node.sh` when `sinfo` does not answer and it runs as root;
//! otherwise it says why it skips.

mod common;
use common::*;

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// Whether Slurm answers, starting it when it does not and this is root. `Err` is the reason
/// to skip.
fn slurm() -> Result<(), String> {
    let answers = || {
        Command::new("sinfo")
            .arg("-h")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if answers() {
        return Ok(());
    }
    if unsafe { libc::geteuid() } != 0 {
        return Err(
            "Slurm is not running (sinfo does not answer) and starting it with scripts/slurm_single_node.sh needs root"
                .into(),
        );
    }
    let output = Command::new("bash")
        .arg(script("scripts/slurm_single_node.sh"))
        .output()
        .expect("bash starts");
    assert!(
        output.status.success() && answers(),
        "scripts/slurm_single_node.sh could not start Slurm:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

const SWEEP: &[&str] = &[
    "sweep",
    "mf",
    "--data",
    "synthetic",
    "--epochs",
    "2",
    "--lambda",
    "0,0.1",
    "--penalty",
    "batch-l2",
    "--seed",
    "1,2",
];

fn in_dir(dir: &Path, args: &[&str]) -> Output {
    regulab().current_dir(dir).args(args).output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn runs(summary: &Value) -> Vec<Value> {
    summary["runs"].as_array().unwrap().clone()
}

#[test]
fn a_sweep_as_a_slurm_job_array_equals_the_local_sweep_and_resubmits_only_what_is_missing() {
    if let Err(reason) = slurm() {
        eprintln!("skipping: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let slurm_args: Vec<&str> = SWEEP
        .iter()
        .copied()
        .chain(["--executor", "slurm", "--wait", "--out", "on-slurm"])
        .collect();
    let output = in_dir(dir.path(), &slurm_args);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let folder = dir.path().join("on-slurm");
    let summary = read_json(&folder.join("summary.json"));
    let on_slurm = runs(&summary);
    assert_eq!(on_slurm.len(), 4, "{summary}");
    assert!(
        on_slurm.iter().all(|r| r["status"] == "completed"),
        "{summary}"
    );

    // The same numbers as the same sweep trained here.
    let local_args: Vec<&str> = SWEEP
        .iter()
        .copied()
        .chain(["--jobs", "1", "--quiet", "--out", "here"])
        .collect();
    let local = in_dir(dir.path(), &local_args);
    assert_eq!(local.status.code(), Some(0), "{}", text(&local));
    let here = runs(&read_json(&dir.path().join("here/summary.json")));
    assert_eq!(here.len(), 4);
    for run in &here {
        let twin = on_slurm
            .iter()
            .find(|r| r["file"] == run["file"])
            .unwrap_or_else(|| panic!("{} is not in the Slurm summary", run["file"]));
        for key in ["run_id", "test_at_selected", "final_test", "selected_epoch"] {
            assert_eq!(twin[key], run[key], "{key} of {}", run["file"]);
        }
        assert!(run["final_test"].as_f64().is_some(), "{run}");
    }

    // The job id is recorded with its tasks.
    let jobs = read_json(&folder.join("slurm/jobs.json"));
    let jobs = jobs.as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let job_id = jobs[0]["job_id"].as_str().unwrap();
    assert!(job_id.parse::<u64>().is_ok(), "{job_id}");
    assert_eq!(jobs[0]["tasks"].as_array().unwrap().len(), 4);
    assert!(folder.join(format!("slurm/{job_id}_0.out")).exists());
    assert!(String::from_utf8_lossy(&output.stderr).contains(&format!("job array {job_id}")));

    let status = in_dir(dir.path(), &["status", "on-slurm"]);
    assert!(status.status.success(), "{}", text(&status));
    let table = String::from_utf8_lossy(&status.stdout);
    assert_eq!(table.matches("completed  2/2").count(), 4, "{table}");
    assert!(table.contains("4 runs planned: 4 completed"), "{table}");

    // One run's document gone: summarize says so, the same command trains only that one.
    let gone = on_slurm[2]["file"].as_str().unwrap().to_string();
    std::fs::remove_file(folder.join(&gone)).unwrap();
    let summarized = in_dir(dir.path(), &["summarize", "on-slurm"]);
    assert!(summarized.status.success(), "{}", text(&summarized));
    let said = String::from_utf8_lossy(&summarized.stderr);
    assert!(
        said.contains("3 of 4 planned runs") && said.contains("1 missing"),
        "{said}"
    );
    assert_eq!(runs(&read_json(&folder.join("summary.json"))).len(), 3);

    let again = in_dir(dir.path(), &slurm_args);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let jobs = read_json(&folder.join("slurm/jobs.json"));
    let jobs = jobs.as_array().unwrap();
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert_eq!(jobs[1]["tasks"], serde_json::json!([gone]));
    let summary = read_json(&folder.join("summary.json"));
    let rerun = runs(&summary);
    assert_eq!(rerun.len(), 4, "{summary}");
    assert!(
        rerun.iter().all(|r| r["status"] == "completed"),
        "{summary}"
    );
    assert_eq!(rerun, on_slurm, "the resubmitted run has the same numbers");

    // Nothing pending: nothing submitted, the summary written again.
    let nothing = in_dir(dir.path(), &slurm_args);
    assert_eq!(nothing.status.code(), Some(0), "{}", text(&nothing));
    assert!(
        String::from_utf8_lossy(&nothing.stderr).contains("nothing to submit"),
        "{}",
        text(&nothing)
    );
    assert_eq!(
        read_json(&folder.join("slurm/jobs.json"))
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn slurm_flags_and_folders_fail_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let status = in_dir(dir.path(), &["status", "nowhere"]);
    assert!(!status.status.success());
    assert_eq!(
        String::from_utf8_lossy(&status.stderr).trim(),
        "regulab: error: nowhere: not a sweep or cv folder (it has no plan/)"
    );
    let wait: Vec<&str> = SWEEP
        .iter()
        .copied()
        .chain(["--wait", "--out", "x"])
        .collect();
    let output = in_dir(dir.path(), &wait);
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim(),
        "regulab: error: --wait: only with --executor slurm"
    );
    // sbatch missing from PATH (the binary is started by its absolute path).
    let slurm: Vec<&str> = SWEEP
        .iter()
        .copied()
        .chain(["--executor", "slurm", "--out", "y"])
        .collect();
    let output = regulab()
        .current_dir(dir.path())
        .env("PATH", dir.path())
        .args(&slurm)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim(),
        "regulab: error: --executor slurm: sbatch not found on PATH"
    );
}

//! `regulab sweep`: the grid, the summary files, and failed runs that do not stop the sweep.

mod common;
use common::*;

#[test]
fn sweep_writes_one_row_per_value_and_seed_and_records_failures() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let output = regulab()
        .args([
            "sweep",
            "mf",
            "--synthetic-users",
            "200",
            "--synthetic-items",
            "200",
            "--synthetic-ratings",
            "5000",
        ])
        .args([
            "--epochs",
            "2",
            "--penalty",
            "batch-l2",
            "--lambda",
            "0,0.05",
            "--seed",
            "1,2",
            "--lr",
            "0.01,1e9",
        ])
        .args(["--optimizer", "sgd", "--quiet", "--threads", "1", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    // Some runs diverged: the sweep says so with its exit status, summary written anyway.
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        table.contains("diverged") && table.contains("over seeds"),
        "{table}"
    );
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["kind"], "regulab-sweep");
    assert_eq!(summary["metric"]["name"], "rmse");
    assert_eq!(
        summary["swept"],
        serde_json::json!(["lambda", "seed", "lr"])
    );
    let runs = summary["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 8);
    for run in runs {
        let file = out.join(run["file"].as_str().unwrap());
        assert!(file.exists(), "{}", file.display());
        let diverging = run["values"]["lr"].as_f64().unwrap() > 1.0;
        if diverging {
            assert_eq!(run["status"], "diverged", "{run}");
            assert!(run["message"].as_str().unwrap().contains("diverged"));
        } else {
            assert_eq!(run["status"], "completed", "{run}");
            assert!(run["test_at_selected"].as_f64().unwrap() > 0.3);
        }
    }
    // Groups aggregate over seeds: 2 lambdas x 2 learning rates.
    let groups = summary["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 4);
    let group = groups
        .iter()
        .find(|g| g["values"]["lambda"] == 0.0 && g["values"]["lr"] == 0.01)
        .unwrap();
    assert_eq!(group["runs"], 2);
    let seeds: Vec<f64> = runs
        .iter()
        .filter(|r| r["values"]["lambda"] == 0.0 && r["values"]["lr"] == 0.01)
        .map(|r| r["test_at_selected"].as_f64().unwrap())
        .collect();
    assert_close(
        group["test_at_selected_mean"].as_f64().unwrap(),
        (seeds[0] + seeds[1]) / 2.0,
        1e-12,
        "seed mean",
    );
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let mut lines = csv.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with(
            "file,status,lambda,seed,lr,selection,selected_epoch,test_rmse_at_selected,final_test_rmse"
        ),
        "{header}"
    );
    assert_eq!(lines.count(), 8);
}

#[test]
fn sweep_rejects_unknown_flags_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let line = run_err(
        regulab()
            .args(["sweep", "mf", "--lamda", "0,1", "--out"])
            .arg(dir.path().join("s")),
    );
    assert!(line.contains("--lamda"), "{line}");
    let line = run_err(regulab().args(["sweep", "mf", "--lambda", "0,1"]));
    assert!(line.contains("--out"), "{line}");
    let line = run_err(
        regulab()
            .args(["sweep", "mf", "--optimizer", "sgd,adagrad", "--out"])
            .arg(dir.path().join("s")),
    );
    assert!(line.contains("adagrad"), "{line}");
}

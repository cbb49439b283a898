//! `--sparse` end to end on ml-100k: plain SGD's row-sparse updates give dense SGD's numbers
//! up to the order duplicate rows are added in; SparseAdam differs from Adam by design (lazy
//! moments) yet learns as well; unsupported settings are one-line errors naming the flag.

mod common;
use common::*;

fn mf(dir: &std::path::Path, name: &str, flags: &[&str]) -> serde_json::Value {
    let data = ml100k();
    let base = [
        "mf",
        "--data",
        data.as_str(),
        "--split",
        "u1",
        "--epochs",
        "3",
    ];
    train(dir, name, &[&base[..], flags].concat())
}

#[test]
fn sparse_sgd_matches_dense_sgd() {
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--optimizer", "sgd", "--lr", "0.5"];
    let dense = mf(dir.path(), "dense", &flags);
    let sparse = mf(dir.path(), "sparse", &[&flags[..], &["--sparse"]].concat());
    for (split, key) in [("train", "total_loss"), ("test", "rmse"), ("test", "mae")] {
        let (d, s) = (curve(&dense, split, key), curve(&sparse, split, key));
        for (epoch, (d, s)) in d.iter().zip(&s).enumerate() {
            // Duplicate rows in a batch are added to the weights one at a time rather than
            // summed first, which moves float32 results by a few ulps.
            assert_close(*s, *d, 1e-6, &format!("epoch {} {split}.{key}", epoch + 1));
        }
    }
    assert_eq!(sparse["config"]["sparse"], true);
    assert_eq!(dense["config"]["sparse"], false);
}

#[test]
fn sparse_adam_learns_as_well_as_adam() {
    let dir = tempfile::tempdir().unwrap();
    let dense = mf(dir.path(), "adam", &[]);
    let sparse = mf(dir.path(), "sparse-adam", &["--sparse"]);
    let (d, s) = (
        curve(&dense, "test", "rmse"),
        curve(&sparse, "test", "rmse"),
    );
    assert!(s[2] < s[0] && s[2] < 1.0, "SparseAdam test RMSE {s:?}");
    // Not the same numbers: the moments of rows a batch skips do not decay.
    assert_ne!(s, d);
    assert!((s[2] - d[2]).abs() < 0.03, "adam {d:?} vs sparse {s:?}");
}

#[test]
fn unsupported_settings_name_the_flag() {
    let data = ml100k();
    let cases: [(&[&str], &str); 5] = [
        (
            &["--penalty", "frobenius", "--lambda", "1"],
            "regulab: error: --sparse true: needs a row-local penalty (batch-l2) or none; --penalty frobenius touches every row",
        ),
        (
            &["--penalty", "l1", "--lambda", "1"],
            "regulab: error: --sparse true: needs a row-local penalty (batch-l2) or none; --penalty l1 touches every row",
        ),
        (
            &["--optimizer", "rmsprop"],
            "regulab: error: --sparse true: needs --optimizer sgd or adam (SparseAdam); rmsprop has no row-sparse form",
        ),
        (
            &["--optimizer", "sgd", "--momentum", "0.9"],
            "regulab: error: --sparse true: needs sgd without --momentum (its buffer moves every row)",
        ),
        (
            &["--weight-decay", "1e-4"],
            "regulab: error: --sparse true: needs --weight-decay 0 (it touches every row); --penalty batch-l2 is the row-local L2",
        ),
    ];
    for (flags, message) in cases {
        let error = run_err(
            regulab()
                .args(["mf", "--data", data.as_str(), "--split", "u1", "--sparse"])
                .args(flags)
                .args(["--out", "/nonexistent-dir/never-written.json"]),
        );
        assert_eq!(error, message, "{flags:?}");
    }
    let error = run_err(regulab().args(["mlp", "--data", "fashion-mnist", "--set", "sparse=true"]));
    assert!(
        error.contains("--set sparse true: applies to `regulab mf` only"),
        "{error}"
    );
}

#[test]
fn mf_defaults_to_one_thread_and_records_why() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run.json");
    let data = ml100k();
    run_ok(
        regulab()
            .args([
                "mf",
                "--data",
                data.as_str(),
                "--split",
                "u1",
                "--epochs",
                "1",
            ])
            .args(["--quiet", "--device", "cpu", "--out"])
            .arg(&out),
    );
    let environment = &read_json(&out)["environment"];
    assert_eq!(environment["cpu_threads"], 1);
    let choice = environment["cpu_threads_choice"].as_str().unwrap();
    assert!(choice.starts_with("default for mf: 1,"), "{choice}");
}

//! The foundation: `info`, `data info` on real MovieLens 100K, and clear errors for bad input.

mod common;
use common::*;
use std::io::Write;

#[test]
fn info_json_reports_versions_and_devices() {
    let out = run_ok(regulab().args(["info", "--json"]));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["regulab_version"], env!("CARGO_PKG_VERSION"));
    assert!(
        info["torch_version"]
            .as_str()
            .unwrap()
            .starts_with("2.11.0"),
        "{info}"
    );
    assert!(info["cuda_available"].is_boolean());
    assert!(info["devices"].is_array());
    assert_eq!(
        info["devices"].as_array().unwrap().len() as u64,
        info["cuda_device_count"].as_u64().unwrap()
    );
    assert!(info["cpu_threads"].as_i64().unwrap() >= 1);
    let text = run_ok(regulab().arg("info"));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("torch 2.11.0") && text.contains("CUDA available"),
        "{text}"
    );
}

#[test]
fn ml100k_counts_match_the_published_numbers() {
    let out = run_ok(regulab().args(["data", "info", &ml100k(), "--json"]));
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["users"], 943);
    assert_eq!(stats["items"], 1682);
    assert_eq!(stats["ratings"], 100000);
    assert_close(
        stats["mean_rating"].as_f64().unwrap(),
        3.52986,
        1e-5,
        "mean rating",
    );
    let histogram: Vec<u64> = stats["histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b[1].as_u64().unwrap())
        .collect();
    assert_eq!(histogram, vec![6110, 11370, 27145, 34174, 21201]);
    assert_close(
        stats["density"].as_f64().unwrap(),
        100000.0 / (943.0 * 1682.0),
        1e-12,
        "density",
    );
}

#[test]
fn official_split_u1_has_32_cold_items() {
    let out = run_ok(regulab().args(["data", "info", &ml100k(), "--split", "u1", "--json"]));
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let split = &stats["split"];
    assert_eq!(split["train_ratings"], 80000);
    assert_eq!(split["test_ratings"], 20000);
    assert_eq!(split["cold_test_items"], 32);
    assert_eq!(split["cold_test_users"], 0);
    assert_eq!(split["cold_test_ratings"], 32);
}

#[test]
fn every_official_split_loads_with_the_published_sizes() {
    for (split, train, test) in [
        ("u5", 80000, 20000),
        ("ua", 90570, 9430),
        ("ub", 90570, 9430),
    ] {
        let out = run_ok(regulab().args(["data", "info", &ml100k(), "--split", split, "--json"]));
        let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(stats["split"]["train_ratings"], train, "{split}");
        assert_eq!(stats["split"]["test_ratings"], test, "{split}");
    }
}

#[test]
fn holdout_splits_partition_the_ratings() {
    for split in ["random:0.8", "user:0.8"] {
        let out = run_ok(regulab().args(["data", "info", &ml100k(), "--split", split, "--json"]));
        let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let train = stats["split"]["train_ratings"].as_u64().unwrap();
        let test = stats["split"]["test_ratings"].as_u64().unwrap();
        assert_eq!(train + test, 100000, "{split}");
        assert!((79000..=81000).contains(&train), "{split}: {train}");
    }
    // The per-user holdout keeps every user in training.
    let out = run_ok(regulab().args(["data", "info", &ml100k(), "--split", "user:0.8", "--json"]));
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["split"]["cold_test_users"], 0);
}

#[test]
fn synthetic_default_records_its_noise_floor() {
    let out = run_ok(regulab().args(["data", "info", "--json", "--synthetic-ratings", "50000"]));
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["ratings"], 50000);
    assert_eq!(stats["users"], 1000);
    let floor = stats["synthetic"]["noise_floor_rmse"].as_f64().unwrap();
    assert!(floor > 0.4 && floor <= 0.5, "floor {floor}");
}

fn broken(name: &str, text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let path = path.display().to_string();
    (dir, path)
}

#[test]
fn bad_ratings_files_give_one_line_errors_naming_file_and_line() {
    let cases = [
        (
            "u.data",
            "1\t2\t3\t4\n1\t2\t3\n",
            "u.data:2: expected 4 columns",
        ),
        (
            "u.data",
            "1\t2\tabc\t4\n",
            "u.data:1: rating \"abc\" is not a number",
        ),
        (
            "ratings.dat",
            "1::2::3::4\n1::2::nan::4\n",
            "ratings.dat:2: rating \"nan\" is not finite",
        ),
        (
            "ratings.csv",
            "userId,movieId,rating,timestamp\n1,2,inf,3\n",
            "ratings.csv:2: rating \"inf\" is not finite",
        ),
        (
            "ratings.csv",
            "userId,movieId,rating,timestamp\n",
            "no ratings in file",
        ),
        ("u.data", "", "no ratings in file"),
        ("notes.txt", "hello world\n", "unknown ratings format"),
    ];
    for (name, text, want) in cases {
        let (_dir, path) = broken(name, text);
        let line = run_err(regulab().args(["data", "info", &path]));
        assert!(line.contains(want), "{name}: {line:?} lacks {want:?}");
        assert!(line.starts_with("regulab: error:"), "{line}");
    }
}

#[test]
fn missing_path_bad_split_and_bad_device_are_clear_errors() {
    let line = run_err(regulab().args(["data", "info", "/nonexistent/ratings"]));
    assert!(
        line.contains("/nonexistent/ratings: no such file or directory"),
        "{line}"
    );
    let (_dir, path) = broken("u.data", "1\t2\t3\t4\n");
    let line = run_err(regulab().args(["data", "info", &path, "--split", "u1"]));
    assert!(
        line.contains("official splits ship only with ml-100k") || line.contains("u1.base"),
        "{line}"
    );
    let line = run_err(regulab().args(["data", "info", "--split", "random:2"]));
    assert!(
        line.contains("--split") && line.contains("between 0 and 1"),
        "{line}"
    );
    if !cuda_available() {
        let line = run_err(regulab().args(["mf", "--device", "cuda", "--epochs", "1"]));
        assert!(
            line.contains("--device cuda:0: CUDA is not available"),
            "{line}"
        );
    }
    let line = run_err(regulab().args(["mf", "--device", "tpu"]));
    assert!(line.contains("unknown device"), "{line}");
}

fn cuda_available() -> bool {
    let out = run_ok(regulab().args(["info", "--json"]));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    info["cuda_available"].as_bool().unwrap()
}

#[test]
fn binary_runs_without_library_path_and_links_libtorch_cuda() {
    // The rpath set by build.rs must be enough to start; LD_LIBRARY_PATH is cleared here.
    let out = run_ok(regulab().arg("info").env_remove("LD_LIBRARY_PATH"));
    assert!(!out.stdout.is_empty());
    // Where the wheel ships libtorch_cuda, it must survive --as-needed, or CUDA is never seen.
    let lib =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".libtorch/lib/libtorch_cuda.so");
    if lib.exists() {
        let elf = std::process::Command::new("readelf")
            .args(["-d", env!("CARGO_BIN_EXE_regulab")])
            .output();
        if let Ok(elf) = elf {
            let text = String::from_utf8_lossy(&elf.stdout);
            assert!(
                text.contains("libtorch_cuda.so"),
                "libtorch_cuda is not a NEEDED entry:\n{text}"
            );
            assert!(
                text.contains("RUNPATH") || text.contains("RPATH"),
                "no rpath:\n{text}"
            );
        }
    }
}

/// `--help` takes each trainer's defaults from the configuration, once, per trainer.
#[test]
fn help_shows_each_trainers_own_defaults_once() {
    let help = |command: &str| {
        let output = run_ok(regulab().args([command, "--help"]));
        String::from_utf8(output.stdout).unwrap()
    };
    let line = |text: &str, flag: &str| -> String {
        text.lines()
            .find(|l| l.trim_start().starts_with(flag))
            .unwrap_or_else(|| panic!("no {flag} in help"))
            .to_string()
    };
    let (mf, mlp) = (help("mf"), help("mlp"));
    assert!(line(&mf, "--lr ").ends_with("[default: 0.01]"), "{mf}");
    assert!(line(&mlp, "--lr ").ends_with("[default: 0.001]"), "{mlp}");
    assert!(line(&mf, "--batch-size ").ends_with("[default: 1024]"));
    assert!(line(&mlp, "--hidden ").ends_with("[default: 512,256,128]"));
    assert!(line(&mf, "--split ").ends_with("[default: random:0.8]"));
    for text in [&mf, &mlp] {
        for l in text.lines() {
            assert!(l.matches("[default:").count() <= 1, "{l}");
        }
    }
}

//! Data sets on disk used by name without a download: a folder (here a link) at
//! `$REGULAB_DATA/<name>`, or one registered with `regulab data add NAME PATH`, verified
//! against the registry's per-file checksums; the examples run offline with either; `run`
//! and `rerun` take `--data` and `--threads`, which are not part of a run's identity.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/mf-batch-l2.toml");

/// `regulab` with `$REGULAB_DATA` at `cache`.
fn with_cache(cache: &Path) -> Command {
    let mut command = regulab();
    command.env("REGULAB_DATA", cache);
    command
}

/// The example run for one short epoch on one thread, written to `out`.
fn run_example(cache: &Path, out: &Path, extra: &[&str]) -> serde_json::Value {
    run_ok(
        with_cache(cache)
            .args(["run", EXAMPLE, "--set", "epochs=1"])
            .args(["--threads", "1", "--quiet", "--out"])
            .arg(out)
            .args(extra),
    );
    read_json(out)
}

/// A folder of links to every ml-100k file, with `replace` written instead of a link.
fn linked_ml100k(dir: &Path, replace: Option<(&str, &[u8])>, leave_out: &[&str]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for item in std::fs::read_dir(shared_data("ml-100k")).unwrap() {
        let source = item.unwrap().path();
        let name = source.file_name().unwrap().to_str().unwrap().to_string();
        if leave_out.contains(&name.as_str()) {
            continue;
        }
        match replace {
            Some((file, bytes)) if file == name => std::fs::write(dir.join(&name), bytes).unwrap(),
            _ => std::os::unix::fs::symlink(&source, dir.join(&name)).unwrap(),
        }
    }
    dir.to_path_buf()
}

#[test]
fn a_folder_in_regulab_data_is_used_by_name_and_the_example_runs_offline() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    std::os::unix::fs::symlink(shared_data("ml-100k"), cache.join("ml-100k")).unwrap();
    let run = run_example(&cache, &dir.path().join("a.json"), &[]);
    assert_eq!(run["status"], "completed");
    assert_eq!(run["config"]["data"], "ml-100k");
    assert_eq!(run["config"]["threads"], 1);
    assert_eq!(
        run["dataset"]["source"],
        cache.join("ml-100k").display().to_string()
    );
    assert_eq!(run["dataset"]["split"]["train_ratings"], 80000);
    // Its model's recommendations find the titles through the same name.
    let output = run_ok(
        with_cache(&cache)
            .arg("predict")
            .arg(dir.path().join("a.json"))
            .args(["--user", "1", "--top", "1", "--json", "--device", "cpu"]),
    );
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        answer["titles"],
        cache.join("ml-100k/u.item").display().to_string()
    );
    assert!(answer["items"][0]["title"].is_string(), "{answer}");

    // `data list` shows it as the local folder, verified.
    let output = run_ok(with_cache(&cache).args(["data", "list", "--json"]));
    let listed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let ml = &listed["datasets"][0];
    assert_eq!(ml["name"], "ml-100k");
    assert_eq!(ml["local"], cache.join("ml-100k").display().to_string());
    assert!(ml["cached"].is_null() && ml["problem"].is_null(), "{ml}");

    let output = run_ok(with_cache(&cache).args(["data", "info", "ml-100k"]));
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        text.lines().next(),
        Some(
            format!(
                "data set ml-100k: local folder {}",
                cache.join("ml-100k").display()
            )
            .as_str()
        )
    );

    // A folder there that does not check out is named with its file, not "not cached".
    let broken = tempfile::tempdir().unwrap();
    linked_ml100k(&broken.path().join("ml-100k"), None, &["u.item"]);
    let error = run_err(with_cache(broken.path()).args(["data", "info", "ml-100k"]));
    assert!(
        error.contains(&format!(
            "{}: missing",
            broken.path().join("ml-100k/u.item").display()
        )),
        "{error}"
    );
}

#[test]
fn data_add_verifies_and_registers_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let ml = shared_data("ml-100k");
    let output = run_ok(with_cache(&cache).args(["data", "add", "ml-100k"]).arg(&ml));
    let said = String::from_utf8(output.stdout).unwrap();
    let folder = ml.canonicalize().unwrap();
    assert_eq!(
        said.trim_end(),
        format!(
            "ml-100k: {} (21 files verified by SHA-256), registered in {}",
            folder.display(),
            cache.join("local.json").display()
        )
    );
    let registrations = read_json(&cache.join("local.json"));
    assert_eq!(
        registrations["datasets"]["ml-100k"]["path"],
        folder.display().to_string()
    );
    let run = run_example(&cache, &dir.path().join("b.json"), &[]);
    assert_eq!(run["status"], "completed");
    let output = run_ok(with_cache(&cache).args(["data", "list"]));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains(&format!("registered: {}", folder.display())),
        "{text}"
    );
    let output = run_ok(with_cache(&cache).args(["data", "info", "ml-100k"]));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.starts_with(&format!(
            "data set ml-100k: registered folder {}\n",
            folder.display()
        )),
        "{text}"
    );

    // Fashion-MNIST: the checksums are of the uncompressed files, so recompressed copies
    // verify too.
    let output = run_ok(
        with_cache(&cache)
            .args(["data", "add", "fashion-mnist"])
            .arg(shared_data("fashion-mnist")),
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("(4 files verified by SHA-256)"),
        "{output:?}"
    );

    // Refusals, one line each, naming the name or the file.
    let error = run_err(with_cache(&cache).args(["data", "add", "ml-5k"]).arg(&ml));
    assert!(
        error.starts_with("regulab: error: data add ml-5k: unknown data set; known: ml-100k"),
        "{error}"
    );
    let error = run_err(
        with_cache(&cache)
            .args(["data", "add", "ml-100k"])
            .arg(shared_data("fashion-mnist")),
    );
    assert!(error.contains("u.data: missing"), "{error}");
    let changed = linked_ml100k(
        &dir.path().join("changed"),
        Some(("u1.test", b"1\t1\t5\t874965758\n")),
        &[],
    );
    let error = run_err(
        with_cache(&cache)
            .args(["data", "add", "ml-100k"])
            .arg(&changed),
    );
    assert!(
        error.starts_with(&format!(
            "regulab: error: {}: SHA-256 ",
            changed.join("u1.test").display()
        )) && error.contains(
            "is not ml-100k's 18c6014a4b2c7324f250a63f8904a7b16b2b19f911129e346141507b0cbac950"
        ),
        "{error}"
    );
    // The refused folder did not replace the registered one.
    let registrations = read_json(&cache.join("local.json"));
    assert_eq!(
        registrations["datasets"]["ml-100k"]["path"],
        folder.display().to_string()
    );
}

#[test]
fn a_missing_named_set_suggests_data_and_data_add() {
    let cache = tempfile::tempdir().unwrap();
    let error = run_err(
        with_cache(cache.path())
            .args(["run", EXAMPLE, "--quiet", "--out"])
            .arg(cache.path().join("x.json")),
    );
    assert!(error.contains("regulab data fetch ml-100k"), "{error}");
    assert!(error.contains("--download"), "{error}");
    assert!(error.contains("--data PATH"), "{error}");
    assert!(error.contains("regulab data add ml-100k PATH"), "{error}");
}

#[test]
fn run_and_rerun_take_data_and_threads_which_are_not_identity() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("empty-cache");
    let ml = ml100k();
    let out = dir.path().join("c.json");
    let first = run_example(&cache, &out, &["--data", &ml]);
    assert_eq!(first["config"]["data"], ml.as_str());
    // The same data through a link, other threads: the same run, kept as it is.
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&ml, &link).unwrap();
    let output = run_ok(
        with_cache(&cache)
            .args(["run", EXAMPLE, "--set", "epochs=1"])
            .args(["--threads", "2", "--out"])
            .arg(&out)
            .arg("--data")
            .arg(&link),
    );
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("already completed; kept as it is"), "{said}");

    // rerun with the data elsewhere and two threads: the same run id, the overrides recorded.
    let again = dir.path().join("d.json");
    run_ok(
        with_cache(&cache)
            .arg("rerun")
            .arg(&out)
            .args(["--threads", "2", "--quiet", "--out"])
            .arg(&again)
            .arg("--data")
            .arg(&link),
    );
    let rerun = read_json(&again);
    assert_eq!(rerun["run_id"], first["run_id"]);
    assert_eq!(rerun["config"]["threads"], 2);
    assert_eq!(rerun["config"]["data"], link.display().to_string());

    let error = run_err(
        with_cache(&cache)
            .arg("rerun")
            .arg(&out)
            .args(["--threads", "0", "--out"])
            .arg(dir.path().join("e.json")),
    );
    assert_eq!(error, "regulab: error: --threads 0: must be at least 1");
}

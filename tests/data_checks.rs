//! Ratings data checks through the binary: duplicate pairs, rating scales, the whole u64 id
//! range, files that are clean but untidy, and `data synth` folders that read back the same.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `regulab data info PATH ARGS --json`.
fn info(path: &Path, args: &[&str]) -> Value {
    let out = run_ok(
        regulab()
            .args(["data", "info"])
            .arg(path)
            .args(args)
            .arg("--json"),
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn info_err(path: &Path, args: &[&str]) -> String {
    run_err(regulab().args(["data", "info"]).arg(path).args(args))
}

fn mean(stats: &Value) -> f64 {
    stats["mean_rating"].as_f64().unwrap()
}

const DUPLICATED: &str =
    "userId,movieId,rating,timestamp\n1,1,1.0,0\n5,7,2.0,0\n2,1,3.0,0\n5,7,4.0,0\n";

#[test]
fn ml100k_loads_with_the_default_checks() {
    let dir = shared_data("ml-100k");
    let stats = info(&dir, &[]);
    assert_eq!(
        (&stats["users"], &stats["items"], &stats["ratings"]),
        (&Value::from(943), &Value::from(1682), &Value::from(100000))
    );
    let split = &info(&dir, &["--split", "u1"])["split"];
    assert_eq!(split["train_ratings"], 80000);
    assert_eq!(split["test_ratings"], 20000);
}

#[test]
fn a_duplicate_is_an_error_naming_both_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "ratings.csv", DUPLICATED);
    let line = info_err(&path, &[]);
    assert!(
        line.ends_with("ratings.csv:5: user 5, item 7 rated again (first at line 3); choose --duplicates keep-first|keep-last|mean"),
        "{line}"
    );
}

#[test]
fn duplicate_policies_keep_one_rating_per_pair() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "ratings.csv", DUPLICATED);
    for (policy, want_mean) in [
        ("keep-first", 2.0),
        ("keep-last", 8.0 / 3.0),
        ("mean", 7.0 / 3.0),
    ] {
        let stats = info(&path, &["--duplicates", policy]);
        assert_eq!(stats["ratings"], 3, "{policy}");
        assert_close(mean(&stats), want_mean, 1e-6, policy);
    }
    let line = run_err(
        regulab()
            .args(["data", "info", "--duplicates", "first"])
            .arg(&path),
    );
    assert!(
        line.contains("error, keep-first, keep-last, mean"),
        "{line}"
    );
}

/// An ml-100k folder whose u1 split rates user 3, item 4 in both files.
fn leaky_split(dir: &Path) {
    write_file(dir, "u.data", "1\t2\t5\t0\n3\t4\t1\t0\n5\t6\t2\t0\n");
    write_file(dir, "u1.base", "1\t2\t5\t0\n3\t4\t1\t0\n");
    write_file(dir, "u1.test", "5\t6\t2\t0\n3\t4\t3\t0\n");
}

#[test]
fn a_pair_in_both_split_files_is_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    leaky_split(dir.path());
    let line = info_err(dir.path(), &["--split", "u1"]);
    assert!(
        line.contains("u1.test:2: user 3, item 4 rated again (first at u1.base:2)"),
        "{line}"
    );
    let split =
        |policy| info(dir.path(), &["--split", "u1", "--duplicates", policy])["split"].clone();
    let first = split("keep-first");
    assert_eq!(
        (&first["train_ratings"], &first["test_ratings"]),
        (&Value::from(2), &Value::from(1))
    );
    let last = split("keep-last");
    assert_eq!(
        (&last["train_ratings"], &last["test_ratings"]),
        (&Value::from(1), &Value::from(2))
    );
    assert_close(
        split("mean")["train_mean_rating"].as_f64().unwrap(),
        3.5,
        1e-9,
        "mean of 5 and the averaged (1+3)/2",
    );
}

#[test]
fn mf_checks_duplicates_and_records_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "ratings.csv", DUPLICATED);
    let data = path.display().to_string();
    let args = [
        "mf",
        "--data",
        &data,
        "--split",
        "random:0.67",
        "--epochs",
        "1",
        "--dim",
        "2",
    ];
    let line = run_err(regulab().args(args));
    assert!(line.contains("rated again (first at line 3)"), "{line}");
    let run = train(
        dir.path(),
        "mean",
        &[
            &args[..],
            &["--duplicates", "mean", "--rating-range", "1,4"],
        ]
        .concat(),
    );
    assert_eq!(run["config"]["duplicates"], "mean");
    assert_eq!(run["config"]["rating_range"]["max"], 4.0);
    assert_eq!(run["dataset"]["ratings"], 3);
}

#[test]
fn ratings_outside_the_movielens_scale_are_errors_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(
        dir.path(),
        "u.data",
        "1\t2\t3\t0\n1\t3\t5\t0\n2\t3\t1\t0\n2\t2\t99\t0\n",
    );
    let line = info_err(&path, &[]);
    assert!(
        line.ends_with("u.data:4: rating 99 is outside the MovieLens scale 1..5 (set --rating-range MIN,MAX for other scales)"),
        "{line}"
    );
    let path = write_file(
        dir.path(),
        "ratings.csv",
        "userId,movieId,rating\n1,2,0.5\n1,3,-4\n",
    );
    let line = info_err(&path, &[]);
    assert!(
        line.ends_with("ratings.csv:3: rating -4 is outside the MovieLens scale 0.5..5 (set --rating-range MIN,MAX for other scales)"),
        "{line}"
    );
    let path = write_file(
        dir.path(),
        "ratings.csv",
        "userId,movieId,rating\n1,2,10\n1,3,-4\n",
    );
    let stats = info(&path, &["--rating-range", "-10,10"]);
    assert_close(mean(&stats), 3.0, 1e-12, "mean on a -10..10 scale");
    let line = info_err(&path, &["--rating-range", "0,10"]);
    assert!(
        line.ends_with("ratings.csv:3: rating -4 is outside --rating-range 0,10"),
        "{line}"
    );
    for bad in ["5,1", "1,inf", "1"] {
        let line = info_err(&path, &["--rating-range", bad]);
        assert!(line.contains("--rating-range"), "{bad}: {line}");
    }
}

#[test]
fn ids_span_the_whole_u64_range() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(
        dir.path(),
        "u.data",
        "18446744073709551615\t18446744073709551615\t4\t0\n",
    );
    assert_eq!(info(&path, &[])["users"], 1);
    let path = write_file(dir.path(), "u.data", "1\t2\t3\t0\n-1\t2\t3\t0\n");
    let line = info_err(&path, &[]);
    assert!(
        line.contains("u.data:2: user id \"-1\" is not a non-negative integer"),
        "{line}"
    );
}

#[test]
fn untidy_but_clean_files_load() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("CRLF u.data", "u.data", "1\t1\t4\t0\r\n2\t1\t2\t0\r\n"),
        (
            "CRLF ratings.csv",
            "ratings.csv",
            "userId,movieId,rating,timestamp\r\n1,1,4.0,0\r\n2,1,2.0,0\r\n",
        ),
        (
            "CRLF ratings.dat",
            "ratings.dat",
            "1::1::4::0\r\n2::1::2::0\r\n",
        ),
        (
            "BOM ratings.csv",
            "ratings.csv",
            "\u{feff}userId,movieId,rating,timestamp\n1,1,4,0\n2,1,2,0\n",
        ),
        ("BOM u.data", "u.data", "\u{feff}1\t1\t4\t0\n2\t1\t2\t0\n"),
        (
            "blank lines u.data",
            "u.data",
            "\n1\t1\t4\t0\n\n \t\n2\t1\t2\t0\n\n",
        ),
        (
            "blank lines ratings.csv",
            "ratings.csv",
            "\nuserId,movieId,rating\n\n1,1,4\n  \n2,1,2\n\n",
        ),
        (
            "extra CSV columns",
            "ratings.csv",
            "tag,rating,movieId,timestamp,userId,note\nx,4,1,0,1,\"a, b\"\ny,2,1,0,2,c\n",
        ),
        (
            "trailing whitespace u.data",
            "u.data",
            "1\t1\t4\t0 \t\n2\t1\t2 \t0  \n",
        ),
        (
            "trailing whitespace ratings.csv",
            "ratings.csv",
            "userId,movieId,rating \n1,1,4 \n2,1,2\t\n",
        ),
        (
            "trailing whitespace ratings.dat",
            "ratings.dat",
            "1::1::4::0 \n2::1::2::0\t\n",
        ),
    ];
    for (what, name, text) in cases {
        let path = write_file(dir.path(), name, text);
        let stats = info(&path, &[]);
        assert_eq!(
            (&stats["users"], &stats["ratings"]),
            (&Value::from(2), &Value::from(2)),
            "{what}"
        );
        assert_close(mean(&stats), 3.0, 1e-12, what);
    }
}

const SYNTH: [&str; 6] = [
    "--synthetic-ratings",
    "20000",
    "--synthetic-rank",
    "3",
    "--synthetic-seed",
    "5",
];

/// Users, items, ratings and mean of a data set's statistics.
fn counts(stats: &Value) -> (Value, Value, Value, f64) {
    (
        stats["users"].clone(),
        stats["items"].clone(),
        stats["ratings"].clone(),
        mean(stats),
    )
}

fn synth(out: &Path, format: &str) -> String {
    let output = run_ok(
        regulab()
            .args(["data", "synth", "--out"])
            .arg(out)
            .args(["--format", format])
            .args(SYNTH),
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn synth_folders_read_back_the_same_ratings() {
    let root = tempfile::tempdir().unwrap();
    let generated = counts(&info(Path::new("synthetic"), &SYNTH));
    let ml = root.path().join("ml");
    let said = synth(&ml, "ml-100k");
    assert!(said.starts_with("wrote 20000 ratings to"), "{said}");
    let split = info(&ml, &["--split", "u1"]);
    let (users, items, ratings, mean) = counts(&split);
    assert_eq!(
        (users, items, ratings),
        (
            generated.0.clone(),
            generated.1.clone(),
            generated.2.clone()
        )
    );
    assert_close(mean, generated.3, 1e-12, "ml-100k folder mean");
    assert_eq!(split["split"]["train_ratings"], 16000);
    assert_eq!(counts(&info(&ml, &[])).2, generated.2);
    let csv = root.path().join("csv");
    synth(&csv, "csv");
    let (users, items, ratings, mean) = counts(&info(&csv.join("ratings.csv"), &[]));
    assert_eq!(
        (users, items, ratings),
        (generated.0, generated.1, generated.2)
    );
    assert_close(mean, generated.3, 1e-12, "csv mean");
    let names: Vec<String> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "temporary folders left: {names:?}");
}

#[test]
fn synth_refuses_a_non_empty_folder_and_writes_nothing_on_error() {
    let root = tempfile::tempdir().unwrap();
    let taken = root.path().join("taken");
    std::fs::create_dir(&taken).unwrap();
    write_file(&taken, "notes.txt", "mine");
    let line = run_err(regulab().args(["data", "synth", "--out"]).arg(&taken));
    assert!(
        line.ends_with("taken: folder exists and is not empty; choose a new --out folder"),
        "{line}"
    );
    let fresh = root.path().join("fresh");
    let line = run_err(
        regulab()
            .args(["data", "synth", "--out"])
            .arg(&fresh)
            .args([
                "--synthetic-users",
                "10",
                "--synthetic-items",
                "10",
                "--synthetic-ratings",
                "90",
            ]),
    );
    assert!(line.contains("--synthetic-ratings 90"), "{line}");
    assert!(!fresh.exists());
    assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 1);
}

//! `regulab tune`: ASHA over runs of the experiment store, resumed after a kill with the same
//! result, and a choice that never reads the test data.

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// A small ASHA tune on u1 of `data`: 6 trials, rungs of 1, 2 and 4 epochs, η 2.
fn tune(data: &str, out: &Path) -> Command {
    let mut command = regulab();
    command
        .args([
            "tune",
            "mf",
            "--data",
            data,
            "--split",
            "u1",
            "--val-split",
            "0.1",
        ])
        .args([
            "--dim",
            "4",
            "--threads",
            "1",
            "--penalty",
            "batch-l2",
            "--quiet",
        ])
        .args(["--search", "lambda=log:1e-3:1", "--search", "lr=0.01,0.03"])
        .args([
            "--trials",
            "6",
            "--sampler-seed",
            "3",
            "--scheduler",
            "asha",
        ])
        .args([
            "--min-epochs",
            "1",
            "--max-epochs",
            "4",
            "--reduction",
            "2",
            "--out",
        ])
        .arg(out);
    command
}

/// What selection saw: every trial's values, validation per rung and why it stopped.
fn trials(summary: &Value) -> Value {
    let trials: Vec<Value> = summary["trials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            serde_json::json!([
                t["values"],
                t["validation"],
                t["stopped"],
                t["stopped_at_rung"]
            ])
        })
        .collect();
    Value::Array(trials)
}

#[test]
fn asha_prunes_at_rungs_and_a_killed_tune_resumes_to_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    let output = run_ok(&mut tune(&ml100k(), &whole));
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.contains("chosen on validation"), "{table}");
    let summary = read_json(&whole.join("tune.json"));
    assert_eq!(summary["kind"], "regulab-tune");
    assert_eq!(summary["rungs"], serde_json::json!([1, 2, 4]));
    assert_eq!(summary["state"], "completed");
    let stopped: Vec<&str> = summary["trials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["stopped"].as_str().unwrap())
        .collect();
    // 6 trials: 3 continue after 1 epoch, 1 after 2 epochs, and that one completes.
    assert_eq!(stopped.iter().filter(|s| **s == "pruned").count(), 5);
    assert_eq!(stopped.iter().filter(|s| **s == "completed").count(), 1);
    let choice = &summary["choice"];
    let chosen = &summary["trials"][choice["trial"].as_u64().unwrap() as usize];
    assert_eq!(chosen["stopped"], "completed");
    assert_eq!(chosen["validation"].as_array().unwrap().len(), 3);
    // The completed trial continued one run from its checkpoints: 4 epochs in one document,
    // resumed twice (after the rungs at 1 and 2 epochs).
    let run = read_json(&whole.join(chosen["runs"][0].as_str().unwrap()));
    assert_eq!(run["status"], "completed");
    assert_eq!(run["epochs"].as_array().unwrap().len(), 4);
    assert_eq!(
        run["resumed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["from_epoch"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2]
    );
    // The promoted trial at each rung is the best of the rung's validation values.
    let first_rung: Vec<f64> = summary["trials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["validation"][0].as_f64().unwrap())
        .collect();
    let mut sorted = first_rung.clone();
    sorted.sort_by(f64::total_cmp);
    for t in summary["trials"].as_array().unwrap() {
        let continued = t["validation"].as_array().unwrap().len() > 1;
        assert_eq!(continued, t["validation"][0].as_f64().unwrap() <= sorted[2]);
    }

    // The folder reads back: a figure per searched key, the trials table, the findings.
    let figure = dir.path().join("tune.svg");
    run_ok(regulab().arg("plot").arg(&whole).arg("-o").arg(&figure));
    let svg = std::fs::read_to_string(&figure).unwrap();
    assert!(
        svg.contains("validation rmse against lambda") && svg.contains("lambda (log scale)"),
        "the figure has a log-x panel for lambda"
    );
    let page = dir.path().join("tune.html");
    run_ok(regulab().arg("report").arg(&whole).arg("-o").arg(&page));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("Tune: mf") && html.contains("validation @4"),
        "trials table"
    );
    let explained = run_ok(regulab().args(["explain", "--json"]).arg(&whole));
    let findings: Value = serde_json::from_slice(&explained.stdout).unwrap();
    // lr was searched as the list 0.01,0.03: a choice of either end is at an edge.
    let lr = choice["values"]["lr"].as_f64().unwrap();
    let lr_edge =
        findings[0]["findings"].as_array().unwrap().iter().any(|f| {
            f["kind"] == "search-edge" && f["title"].as_str().unwrap().contains("chosen lr")
        });
    assert!(lr_edge, "lr {lr}: {findings}");

    // Killed once some trials have trained, then the same command: the same result.
    let killed = dir.path().join("killed");
    let mut child = tune(&ml100k(), &killed)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !killed.join("t02.json").exists() && started.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !killed.join("tune.json").exists(),
        "killed before the end, the tune has no summary yet"
    );
    run_ok(&mut tune(&ml100k(), &killed));
    let resumed = read_json(&killed.join("tune.json"));
    assert_eq!(trials(&resumed), trials(&summary));
    assert_eq!(resumed["choice"], summary["choice"]);

    // A different tune in that folder is refused, naming the way out.
    let line = run_err(tune(&ml100k(), &killed).args(["--sampler-seed", "4"]));
    assert!(line.contains("--sampler-seed given twice"), "{line}");
    let mut other = tune(&ml100k(), &killed);
    other.args(["--search", "dim=2,4"]);
    let line = run_err(&mut other);
    assert!(line.contains("holds another tune"), "{line}");
}

#[test]
fn the_choice_never_reads_the_test_data() {
    let dir = tempfile::tempdir().unwrap();
    let source = shared_data("ml-100k");
    let mut folders = Vec::new();
    for (name, flip) in [("same", false), ("flipped", true)] {
        let data = dir.path().join(name);
        std::fs::create_dir(&data).unwrap();
        for file in ["u.data", "u1.base"] {
            std::fs::copy(source.join(file), data.join(file)).unwrap();
        }
        // The same pairs, other ratings: 6 - r turns every test rating around.
        let test = std::fs::read_to_string(source.join("u1.test")).unwrap();
        let test: String = test
            .lines()
            .map(|line| {
                let mut fields: Vec<String> = line.split('\t').map(str::to_string).collect();
                if flip {
                    fields[2] = (6 - fields[2].parse::<i64>().unwrap()).to_string();
                }
                fields.join("\t") + "\n"
            })
            .collect();
        std::fs::write(data.join("u1.test"), test).unwrap();
        let out = dir.path().join(format!("tune-{name}"));
        run_ok(&mut tune(&data.display().to_string(), &out));
        folders.push(read_json(&out.join("tune.json")));
    }
    let (same, flipped) = (&folders[0], &folders[1]);
    assert_eq!(trials(same), trials(flipped));
    assert_eq!(same["choice"]["trial"], flipped["choice"]["trial"]);
    assert_eq!(
        same["choice"]["validation"],
        flipped["choice"]["validation"]
    );
    // The test data did change what is reported: the test result, and only it.
    let test = |s: &Value| s["choice"]["test_mean"].as_f64().unwrap();
    assert!(
        test(flipped) > test(same) + 0.5,
        "{} {}",
        test(same),
        test(flipped)
    );
}

#[test]
fn tune_refuses_what_it_cannot_do_in_one_line() {
    let out = tempfile::tempdir().unwrap();
    let base = |extra: &[&str]| {
        let mut command = regulab();
        command
            .args(["tune", "mf", "--data", &ml100k(), "--split", "u1"])
            .args(extra)
            .arg("--out")
            .arg(out.path().join("t"));
        command
    };
    let line = run_err(&mut base(&[
        "--penalty",
        "batch-l2",
        "--search",
        "lambda=log:1e-3:1",
        "--trials",
        "2",
    ]));
    assert!(line.contains("add --val-split F"), "{line}");
    let line = run_err(&mut base(&[
        "--val-split",
        "0.1",
        "--search",
        "lambda=log:1e-3:1",
        "--sampler",
        "grid",
    ]));
    assert!(
        line.contains("--sampler grid needs a list or a range with a count"),
        "{line}"
    );
    let line = run_err(&mut base(&["--val-split", "0.1", "--lambda", "0.1,0.2"]));
    assert!(
        line.contains("search values with --search lambda="),
        "{line}"
    );
}

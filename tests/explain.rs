//! `regulab explain` and the run document's `diagnostics` on real short runs: the findings
//! that should appear do, with the run's own numbers, and a healthy run raises no warning.

mod common;
use common::*;

use serde_json::Value;
use std::path::Path;

/// `regulab explain --json RUN` for one run: its findings.
fn explain_json(path: &Path) -> Vec<Value> {
    let output = run_ok(regulab().args(["explain", "--json"]).arg(path));
    let parsed: Value = serde_json::from_slice(&output.stdout).expect("explain --json output");
    let runs = parsed.as_array().expect("an array of runs");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["run"], path.display().to_string());
    runs[0]["findings"].as_array().expect("findings").clone()
}

fn finding<'a>(findings: &'a [Value], kind: &str) -> &'a Value {
    findings
        .iter()
        .find(|f| f["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} finding in {findings:#?}"))
}

fn number(finding: &Value, key: &str) -> f64 {
    finding["numbers"][key]
        .as_f64()
        .unwrap_or_else(|| panic!("numbers.{key} missing in {finding:#}"))
}

fn text(finding: &Value) -> String {
    format!(
        "{}\n{}\n{}",
        finding["title"].as_str().unwrap_or_default(),
        finding["evidence"].as_str().unwrap_or_default(),
        finding["advice"].as_str().unwrap_or_default()
    )
}

fn shown(value: f64) -> String {
    regulab::explain::format_number(value)
}

/// Epoch `epoch`'s `split.key` (epochs are numbered from 1 and recorded in order).
fn at(run: &Value, epoch: usize, split: &str, key: &str) -> f64 {
    run["epochs"][epoch - 1][split][key]
        .as_f64()
        .unwrap_or_else(|| panic!("epochs[{epoch}].{split}.{key} missing"))
}

/// The findings stored in the document when the run ended are the ones `regulab explain`
/// prints (the same code on the same curves).
fn assert_stored_matches(run: &Value, findings: &[Value]) {
    let stored = run["diagnostics"].as_array().cloned().unwrap_or_default();
    let key = |f: &Value| (f["kind"].clone(), f["severity"].clone(), f["title"].clone());
    assert_eq!(
        stored.iter().map(key).collect::<Vec<_>>(),
        findings.iter().map(key).collect::<Vec<_>>()
    );
}

#[test]
fn batch_l2_on_u1_explains_the_rising_penalty_with_its_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let ml = ml100k();
    let run = train(
        dir.path(),
        "batch-l2",
        &[
            "mf",
            "--data",
            &ml,
            "--split",
            "u1",
            "--penalty",
            "batch-l2",
            "--lambda",
            "0.1",
            "--epochs",
            "10",
        ],
    );
    let path = dir.path().join("batch-l2.json");
    let findings = explain_json(&path);
    assert_stored_matches(&run, &findings);
    let rises = finding(&findings, "reg-loss-rises-total-falls");
    assert_eq!(rises["severity"], "info");
    // The penalty is lowest where the document says so, and rises to the last epoch.
    let reg = curve(&run, "train", "reg_loss");
    let low =
        reg.iter().enumerate().fold(
            (0, f64::INFINITY),
            |best, (i, &v)| if v < best.1 { (i, v) } else { best },
        );
    let low_epoch = low.0 + 1;
    assert_eq!(number(rises, "low_epoch"), low_epoch as f64);
    assert_eq!(number(rises, "last_epoch"), 10.0);
    for (key, epoch, split_key) in [
        ("reg_at_low", low_epoch, "reg_loss"),
        ("total_at_low", low_epoch, "total_loss"),
        ("base_at_low", low_epoch, "base_loss"),
        ("reg_at_last", 10, "reg_loss"),
        ("total_at_last", 10, "total_loss"),
        ("base_at_last", 10, "base_loss"),
    ] {
        assert_close(
            number(rises, key),
            at(&run, epoch, "train", split_key),
            1e-12,
            key,
        );
    }
    let (reg_low, reg_last) = (
        at(&run, low_epoch, "train", "reg_loss"),
        at(&run, 10, "train", "reg_loss"),
    );
    let (total_low, total_last) = (
        at(&run, low_epoch, "train", "total_loss"),
        at(&run, 10, "train", "total_loss"),
    );
    assert!(reg_last > 1.2 * reg_low && total_last < total_low);
    let share = reg_last / total_last;
    assert_close(number(rises, "share_at_last"), share, 1e-12, "share");
    let words = text(rises);
    for value in [reg_low, reg_last, total_low, total_last] {
        assert!(
            words.contains(&shown(value)),
            "{} not in {words}",
            shown(value)
        );
    }
    assert!(
        words.contains(&format!("{:.1}% (epoch 10)", share * 100.0)),
        "{words}"
    );
    // batch-l2 at 0.1 is the sweep's best λ: nothing here is a warning.
    assert!(
        findings.iter().all(|f| f["severity"] == "info"),
        "{findings:#?}"
    );
    assert!(!words.to_lowercase().contains("seed 0"), "{words}");
}

#[test]
fn unregularized_mf_on_u1_overfits_after_its_best_test_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let ml = ml100k();
    let run = train(
        dir.path(),
        "none",
        &["mf", "--data", &ml, "--split", "u1", "--epochs", "12"],
    );
    let findings = explain_json(&dir.path().join("none.json"));
    assert_stored_matches(&run, &findings);
    let overfitting = finding(&findings, "overfitting");
    assert_eq!(overfitting["severity"], "warning");
    let test = curve(&run, "test", "rmse");
    let (best_index, best) = test.iter().copied().enumerate().fold(
        (0, f64::INFINITY),
        |b, (i, v)| if v < b.1 { (i, v) } else { b },
    );
    let last = test[11];
    assert_eq!(number(overfitting, "best_epoch"), (best_index + 1) as f64);
    assert_close(number(overfitting, "best_value"), best, 1e-12, "best");
    assert_close(number(overfitting, "last_value"), last, 1e-12, "last");
    assert_close(number(overfitting, "worse_by"), last - best, 1e-9, "rise");
    // The same minimum as the summary's test-chosen epoch, and a rise well past the threshold.
    assert_eq!(
        run["summary"]["oracle_best_test"]["epoch"].as_u64(),
        Some(best_index as u64 + 1)
    );
    assert!((last - best) / best > 0.05, "{best} -> {last}");
    let train_rmse = curve(&run, "train", "rmse");
    assert_close(
        number(overfitting, "train_at_last"),
        train_rmse[11],
        1e-12,
        "train",
    );
    assert!(train_rmse[11] < train_rmse[best_index]);
    let title = overfitting["title"].as_str().unwrap();
    assert!(
        title.contains(&format!("after epoch {}", best_index + 1)),
        "{title}"
    );
    assert!(
        title.contains(&format!("{} → {}", shown(best), shown(last))),
        "{title}"
    );
    assert!(
        title.contains(&format!("+{:.1}%", (last - best) / best * 100.0)),
        "{title}"
    );
    // The console form names the same finding.
    let output = run_ok(regulab().arg("explain").arg(dir.path().join("none.json")));
    let console = String::from_utf8_lossy(&output.stdout);
    assert!(
        console.contains("warning: Test RMSE turned up"),
        "{console}"
    );
    assert!(console.contains("[overfitting]"), "{console}");
}

#[test]
fn quadratic_cost_network_shows_the_cost_with_the_evaluation_set_divisor() {
    let dir = tempfile::tempdir().unwrap();
    let fm = fashion_mnist();
    let run = train(
        dir.path(),
        "quadratic",
        &[
            "mlp",
            "--data",
            &fm,
            "--hidden",
            "30",
            "--activation",
            "sigmoid",
            "--loss",
            "mse",
            "--optimizer",
            "sgd",
            "--lr",
            "0.5",
            "--batch-size",
            "10",
            "--penalty",
            "l2",
            "--lambda",
            "5",
            "--limit-train",
            "10000",
            "--limit-test",
            "2000",
            "--epochs",
            "3",
        ],
    );
    let findings = explain_json(&dir.path().join("quadratic.json"));
    assert_stored_matches(&run, &findings);
    let divisor = finding(&findings, "eval-divisor");
    assert_eq!(number(divisor, "train_size"), 10000.0);
    assert_eq!(number(divisor, "eval_size"), 2000.0);
    // The two costs from the recorded weight norms: the weight matrices' Σ‖W‖² (biases are
    // not penalized), λ/(2·10,000) as trained and λ/(2·2,000) as the question computed it.
    let squares = |epoch: usize| -> f64 {
        run["epochs"][epoch - 1]["weight_norms"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(name, _)| name.ends_with("weight"))
            .map(|(_, v)| v.as_f64().unwrap().powi(2))
            .sum()
    };
    let base = |epoch| at(&run, epoch, "test", "base_loss");
    let trained = |epoch| base(epoch) + 5.0 / (2.0 * 10000.0) * squares(epoch);
    let eval = |epoch| base(epoch) + 5.0 / (2.0 * 2000.0) * squares(epoch);
    for (key, expected) in [
        ("squares_at_first", squares(1)),
        ("squares_at_last", squares(3)),
        ("cost_trained_at_first", trained(1)),
        ("cost_trained_at_last", trained(3)),
        ("cost_eval_at_first", eval(1)),
        ("cost_eval_at_last", eval(3)),
    ] {
        assert_close(number(divisor, key), expected, 1e-9, key);
    }
    // The cost as trained is the run's own test total (float32 norms, hence the tolerance).
    for epoch in 1..=3 {
        assert_close(
            trained(epoch),
            at(&run, epoch, "test", "total_loss"),
            1e-4,
            "trained cost vs test.total_loss",
        );
    }
    // As in the question: the evaluation-divisor cost climbs while accuracy rises, and the
    // cost that was trained falls.
    assert!(eval(3) > eval(1), "{} -> {}", eval(1), eval(3));
    assert!(trained(3) < trained(1), "{} -> {}", trained(1), trained(3));
    assert!(at(&run, 3, "test", "accuracy") > at(&run, 1, "test", "accuracy"));
    let title = divisor["title"].as_str().unwrap();
    assert!(
        title.contains(&format!(
            "makes the test cost rise ({} → {}) while the cost as trained falls ({} → {})",
            shown(eval(1)),
            shown(eval(3)),
            shown(trained(1)),
            shown(trained(3))
        )),
        "{title}"
    );
    assert!(
        title.contains("(2,000)") && title.contains("(10,000)"),
        "{title}"
    );
    let words = text(divisor);
    for epoch in 1..=3 {
        assert!(
            words.contains(&format!("epoch {epoch}: Σ‖W‖² {}", shown(squares(epoch)))),
            "{words}"
        );
    }
    assert!(!words.to_lowercase().contains("seed"), "{words}");
    // SGD's coupled weight decay λ/n is this penalty's twin.
    let twin = finding(&findings, "weight-decay-vs-penalty");
    assert_close(
        number(twin, "equivalent_weight_decay"),
        5.0 / 10000.0,
        1e-12,
        "λ/n",
    );
}

#[test]
fn a_healthy_synthetic_run_gets_no_warning_and_prints_its_findings() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("healthy.json");
    // Not quiet: the findings' titles follow the run's final line.
    let output = run_ok(
        regulab()
            .args([
                "mf",
                "--data",
                "synthetic",
                "--penalty",
                "frobenius",
                "--lambda",
                "5",
                "--epochs",
                "10",
                "--threads",
                "1",
                "--device",
                "cpu",
                "--out",
            ])
            .arg(&out),
    );
    let run = read_json(&out);
    let findings = explain_json(&out);
    assert_stored_matches(&run, &findings);
    assert!(!findings.is_empty());
    assert!(
        findings.iter().all(|f| f["severity"] == "info"),
        "{findings:#?}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let findings_line = stderr
        .lines()
        .position(|l| l.starts_with("regulab: findings"))
        .unwrap_or_else(|| panic!("no findings after the run: {stderr}"));
    let final_line = stderr
        .lines()
        .position(|l| l.starts_with("regulab: completed"))
        .expect("final line");
    assert!(findings_line > final_line, "{stderr}");
    for f in &findings {
        assert!(
            stderr.contains(&format!("  note: {}", f["title"].as_str().unwrap())),
            "{stderr}"
        );
    }
}

#[test]
fn explain_refuses_a_file_that_is_not_a_run_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.json");
    std::fs::write(&path, r#"{"foo": 1}"#).unwrap();
    let line = run_err(regulab().arg("explain").arg(&path));
    assert!(line.contains("not a regulab run JSON"), "{line}");
    let missing = run_err(
        regulab()
            .arg("explain")
            .arg(dir.path().join("missing.json")),
    );
    assert!(missing.contains("cannot read"), "{missing}");
}

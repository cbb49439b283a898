//! `regulab report` on real runs (ml-100k, 2 epochs), opened in a real headless Chromium:
//! the page must draw without a script error and with one series per run in every chart,
//! show the sweep's groups with the validation-chosen row marked, and every run's findings.

mod common;

use common::{ml100k, read_json, regulab, run_err, run_ok};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A sweep over lambda and two seeds (validation split, per-step losses) and one
/// unregularized run outside it: five runs, written once per test binary.
fn runs() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = ml100k();
        let mf = [
            "--data",
            data.as_str(),
            "--epochs",
            "2",
            "--val-split",
            "0.1",
        ];
        let common = ["--quiet", "--threads", "1", "--device", "cpu"];
        run_ok(
            regulab()
                .args(["sweep", "mf"])
                .args(mf)
                .args([
                    "--penalty",
                    "batch-l2",
                    "--lambda",
                    "0,0.05",
                    "--seed",
                    "1,2",
                ])
                .args(["--log-every", "20"])
                .args(common)
                .arg("--out")
                .arg(dir.path().join("sweep")),
        );
        run_ok(
            regulab()
                .arg("mf")
                .args(mf)
                .args(common)
                .arg("--out")
                .arg(dir.path().join("plain.json")),
        );
        dir
    })
    .path()
}

fn report(inputs: &[&Path], output: &Path) -> std::process::Output {
    run_ok(regulab().arg("report").args(inputs).arg("-o").arg(output))
}

fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .expect("sh runs");
        if found.status.success() {
            return PathBuf::from(String::from_utf8_lossy(&found.stdout).trim());
        }
    }
    panic!("no chromium found: run `bash scripts/setup.sh` (it installs Debian's chromium)");
}

/// The page's DOM after its scripts ran, from headless Chromium.
fn rendered_dom(page: &Path) -> String {
    let profile = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "file://{}",
        page.canonicalize().expect("page exists").display()
    );
    let output = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1400,1000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--dump-dom", &url])
        .output()
        .expect("chromium starts");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The opening tags that start with `start` (e.g. `<figure class="chart"`).
fn tags<'a>(dom: &'a str, start: &str) -> Vec<&'a str> {
    dom.match_indices(start)
        .map(|(at, _)| {
            let rest = &dom[at..];
            &rest[..rest.find('>').unwrap_or(rest.len())]
        })
        .collect()
}

fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let at = tag.find(&key)? + key.len();
    let end = tag[at..].find('"')?;
    Some(&tag[at..at + end])
}

/// (title, drawn series, drawn points) of every chart, after checking the page reported no
/// error.
fn drawn_charts(dom: &str) -> Vec<(String, usize, usize)> {
    let status = tags(dom, "<div id=\"report-status\"");
    assert_eq!(status.len(), 1, "no status element in the page");
    assert_eq!(
        attribute(status[0], "data-state"),
        Some("done"),
        "{}",
        status[0]
    );
    let errors_at = dom.find("id=\"report-status\"").unwrap();
    assert_eq!(
        attribute(status[0], "data-errors"),
        Some("0"),
        "the page reported errors: {}",
        &dom[errors_at..(errors_at + 2000).min(dom.len())]
    );
    let charts: Vec<(String, usize, usize)> = tags(dom, "<figure class=\"chart\"")
        .iter()
        .map(|tag| {
            let number = |name| {
                attribute(tag, name)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("{name} missing: {tag}"))
            };
            let title = attribute(tag, "data-title").expect("title").to_string();
            (title, number("data-series"), number("data-points"))
        })
        .collect();
    let reported: usize = attribute(status[0], "data-charts")
        .and_then(|v| v.parse().ok())
        .expect("data-charts");
    assert_eq!(charts.len(), reported, "charts in the DOM vs reported");
    charts
}

#[test]
fn a_sweep_folder_and_a_run_draw_one_series_per_run_in_every_chart() {
    let out = tempfile::tempdir().unwrap();
    let page = out.path().join("nested/report.html");
    let sweep = runs().join("sweep");
    let plain = runs().join("plain.json");
    let printed = report(&[&sweep, &plain], &page);
    let said = String::from_utf8_lossy(&printed.stderr);
    assert!(said.contains("5 runs"), "{said}");
    assert!(said.contains("1 sweep table)"), "{said}");

    let html = std::fs::read_to_string(&page).unwrap();
    // Self-contained: nothing is fetched.
    for outside in ["<script src", "<link", "src=\"http", "url(http"] {
        assert!(!html.contains(outside), "the page loads {outside}...");
    }
    assert!(html.contains("var uPlot="), "uPlot is not inlined");

    let dom = rendered_dom(&page);
    let charts = drawn_charts(&dom);
    let titles: Vec<&str> = charts.iter().map(|(t, _, _)| t.as_str()).collect();
    for expected in [
        "train total loss",
        "train regularization loss",
        "penalty&#39;s share of the train total loss",
        "validation rmse",
        "test rmse",
        "weight norm of user_factors",
        "train total loss per logged step (one batch each)",
    ] {
        let expected = expected.replace("&#39;", "'");
        assert!(
            titles.iter().any(|t| t.replace("&#39;", "'") == expected),
            "no chart {expected:?} in {titles:?}"
        );
    }
    for (title, series, points) in &charts {
        assert_eq!(*series, 5, "chart {title}: one series per run");
        assert!(*points > 0, "chart {title} drew no point");
    }
    // Every run has both epochs in the per-epoch charts.
    let total = charts.iter().find(|c| c.0 == "train total loss").unwrap();
    assert_eq!(total.2, 10, "5 runs x 2 epochs");
}

/// Runs in the page: ticks run 1's box off, then moves the mouse over the first chart at
/// the second epoch; records how many charts hid run 1 and what the second chart's legend
/// shows (the cursor is shared).
const INTERACTION_PROBE: &str = r#"<script>(function () {
  var out = {};
  try {
    var plots = window.reportCharts;
    document.querySelector('input.run-toggle[data-run="1"]').click();
    out.hidden = plots.filter(function (p) { return p.series[2].show === false; }).length;
    var first = plots[0], rect = first.over.getBoundingClientRect();
    var at = { clientX: rect.left + first.valToPos(first.data[0][1], "x"), clientY: rect.top + 10, bubbles: true };
    first.over.dispatchEvent(new MouseEvent("mouseenter", at));
    first.over.dispatchEvent(new MouseEvent("mousemove", at));
    out.title = plots[1].root.parentNode.dataset.title;
    out.values = Array.prototype.map.call(
      plots[1].root.querySelectorAll(".u-legend .u-series td.u-value"),
      function (cell) { return cell.textContent; });
  } catch (error) { out.error = String(error); }
  document.body.setAttribute("data-probe", JSON.stringify(out));
})();</script>"#;

#[test]
fn a_toggle_hides_a_run_in_every_chart_and_hover_values_follow_the_cursor_everywhere() {
    let out = tempfile::tempdir().unwrap();
    let page = out.path().join("probe.html");
    let sweep = runs().join("sweep");
    report(&[&sweep], &page);
    let html = std::fs::read_to_string(&page).unwrap();
    std::fs::write(
        &page,
        html.replace("</body>", &format!("{INTERACTION_PROBE}</body>")),
    )
    .unwrap();
    let dom = rendered_dom(&page);
    let charts = drawn_charts(&dom).len();
    let body = tags(&dom, "<body");
    let probe = attribute(body[0], "data-probe").expect("the probe ran");
    let probe: Value = serde_json::from_str(&probe.replace("&quot;", "\"")).unwrap();
    assert!(probe["error"].is_null(), "{probe}");
    assert_eq!(probe["hidden"].as_u64(), Some(charts as u64), "{probe}");
    assert_eq!(probe["title"], "train base loss");
    // The second chart shows epoch 2 and each run's base loss there, from the documents.
    let values: Vec<&str> = probe["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(values[0], "2", "{values:?}");
    let summary = read_json(&sweep.join("summary.json"));
    let files: Vec<&str> = summary["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["file"].as_str().unwrap())
        .collect();
    assert_eq!(values.len(), 1 + files.len(), "{values:?}");
    for (file, shown) in files.iter().zip(&values[1..]) {
        let run = read_json(&sweep.join(file));
        let expected = run["epochs"][1]["train"]["base_loss"].as_f64().unwrap();
        let shown: f64 = shown
            .parse()
            .unwrap_or_else(|_| panic!("{file}: {shown:?}"));
        assert!(
            (shown - expected).abs() <= 1e-3 * expected.abs(),
            "{file}: shows {shown}, the document has {expected}"
        );
    }
}

#[test]
fn the_sweep_table_marks_the_group_chosen_on_validation() {
    let out = tempfile::tempdir().unwrap();
    let page = out.path().join("sweep.html");
    let sweep = runs().join("sweep");
    report(&[&sweep], &page);
    let html = std::fs::read_to_string(&page).unwrap();
    let summary = read_json(&sweep.join("summary.json"));
    let groups = summary["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "lambda 0 and 0.05");
    let best = groups
        .iter()
        .min_by(|a, b| {
            let v = |g: &Value| g["validation_at_selected_mean"].as_f64().unwrap();
            v(a).total_cmp(&v(b))
        })
        .unwrap();
    let rows: Vec<&str> = html.split("<tr").collect();
    let marked: Vec<&&str> = rows
        .iter()
        .filter(|r| r.starts_with(" class=\"best\""))
        .collect();
    assert_eq!(marked.len(), 1, "one marked row");
    let lambda = best["values"]["lambda"].as_f64().unwrap();
    assert!(
        marked[0].starts_with(&format!(" class=\"best\"><td>{lambda:?}</td>")),
        "the marked row is not lambda={lambda}: {}",
        marked[0]
    );
    let mean = best["test_at_selected_mean"].as_f64().unwrap();
    let std = best["test_at_selected_std"].as_f64().unwrap();
    let shown = format!("{} ± {}", explain_number(mean), explain_number(std));
    assert!(marked[0].contains(&shown), "{shown} not in {}", marked[0]);
}

/// How `regulab explain` and the report print a number (4 significant digits).
fn explain_number(value: f64) -> String {
    let magnitude = value.abs();
    if value == 0.0 {
        return "0".into();
    }
    if !(1e-3..1e5).contains(&magnitude) {
        return format!("{value:.3e}");
    }
    let decimals = (3 - magnitude.log10().floor() as i32).max(0) as usize;
    format!("{value:.decimals$}")
}

#[test]
fn a_named_summary_brings_the_runs_it_lists() {
    let out = tempfile::tempdir().unwrap();
    let page = out.path().join("summary.html");
    let printed = report(&[&runs().join("sweep/summary.json")], &page);
    let said = String::from_utf8_lossy(&printed.stderr);
    assert!(said.contains("(4 runs"), "{said}");
    assert!(said.contains("1 sweep table)"), "{said}");
}

#[test]
fn every_runs_findings_are_in_the_page() {
    let out = tempfile::tempdir().unwrap();
    let page = out.path().join("findings.html");
    let sweep = runs().join("sweep");
    let plain = runs().join("plain.json");
    report(&[&sweep, &plain], &page);
    let html = std::fs::read_to_string(&page).unwrap();
    let explained = run_ok(
        regulab()
            .args(["explain", "--json"])
            .arg(sweep.join("lambda=0.05,seed=1.json"))
            .arg(&plain),
    );
    let explained: Value = serde_json::from_slice(&explained.stdout).unwrap();
    let mut titles = 0;
    for run in explained.as_array().unwrap() {
        for finding in run["findings"].as_array().unwrap() {
            let title = finding["title"].as_str().unwrap();
            let escaped = title
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            let escaped = escaped.replace('"', "&quot;").replace('\'', "&#39;");
            assert!(html.contains(&escaped), "finding {title:?} missing");
            titles += 1;
        }
    }
    assert!(titles > 0, "the runs had no findings to look for");
}

#[test]
fn an_unregularized_run_gets_no_regularization_chart() {
    let out = tempfile::tempdir().unwrap();
    let page = out.path().join("plain.html");
    report(&[&runs().join("plain.json")], &page);
    let charts = drawn_charts(&rendered_dom(&page));
    assert!(
        charts.iter().all(|(t, _, _)| !t.contains("regularization")),
        "{charts:?}"
    );
    assert!(charts.iter().all(|(_, series, _)| *series == 1));
}

#[test]
fn bad_inputs_and_outputs_are_one_line_errors_naming_the_path() {
    let out = tempfile::tempdir().unwrap();
    let page = out.path().join("r.html");
    let plain = runs().join("plain.json");

    let missing = out.path().join("missing.json");
    let line = run_err(regulab().arg("report").arg(&missing).arg("-o").arg(&page));
    assert!(line.contains(&missing.display().to_string()), "{line}");

    let foreign = out.path().join("foreign.json");
    std::fs::write(&foreign, r#"{"foo": 1}"#).unwrap();
    let line = run_err(
        regulab()
            .arg("report")
            .arg(&plain)
            .arg(&foreign)
            .arg("-o")
            .arg(&page),
    );
    assert!(line.contains(&foreign.display().to_string()), "{line}");
    assert!(line.contains("not a regulab run JSON"), "{line}");

    let empty = out.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let line = run_err(regulab().arg("report").arg(&empty).arg("-o").arg(&page));
    assert!(line.contains(&empty.display().to_string()), "{line}");
    assert!(line.contains("no run documents found"), "{line}");
    assert!(!page.exists(), "a failed report wrote its output");

    let file = out.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let unwritable = file.join("r.html");
    let line = run_err(
        regulab()
            .arg("report")
            .arg(&plain)
            .arg("-o")
            .arg(&unwritable),
    );
    assert!(line.contains(&file.display().to_string()), "{line}");
}

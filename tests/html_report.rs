//! `regulab report` on real runs (ml-100k, 2 epochs), opened in a real headless Chromium:
//! the page must draw without a script error and with one series per run in every chart,
//! show the sweep's groups with the validation-chosen row marked, and every run's findings.

mod common;

use common::{fashion_mnist, ml100k, read_json, regulab, run_err, run_ok};
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

/// What the page drew of a chart.
#[derive(Debug)]
struct Drawn {
    title: String,
    series: usize,
    /// Distinct runs among the series.
    runs: usize,
    points: usize,
    /// The parts of each run drawn ("train|test"; empty for one series per run).
    parts: String,
}

/// Every chart the page drew, after checking the page reported no error.
fn drawn_charts(dom: &str) -> Vec<Drawn> {
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
    let charts: Vec<Drawn> = tags(dom, "<figure class=\"chart\"")
        .iter()
        .map(|tag| {
            let number = |name| {
                attribute(tag, name)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("{name} missing: {tag}"))
            };
            let title = attribute(tag, "data-title").expect("title");
            Drawn {
                title: title.replace("&#39;", "'"),
                series: number("data-series"),
                runs: number("data-runs"),
                points: number("data-points"),
                parts: attribute(tag, "data-parts").unwrap_or_default().to_string(),
            }
        })
        .collect();
    let reported: usize = attribute(status[0], "data-charts")
        .and_then(|v| v.parse().ok())
        .expect("data-charts");
    assert_eq!(charts.len(), reported, "charts in the DOM vs reported");
    charts
}

#[test]
fn a_sweep_folder_and_a_run_draw_every_run_in_every_chart() {
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
    let titles: Vec<&str> = charts.iter().map(|c| c.title.as_str()).collect();
    // Related quantities share a chart: total and base loss, the metric on every split.
    for (expected, parts) in [
        ("train loss: total and base", "total|base"),
        ("train regularization loss", ""),
        ("penalty's share of the train total loss", ""),
        ("train, validation and test rmse", "train|validation|test"),
        ("weight norm of user_factors", ""),
        (
            "train loss per logged step (one batch each): total, and regularization on the right",
            "total|regularization",
        ),
    ] {
        let chart = charts
            .iter()
            .find(|c| c.title == expected)
            .unwrap_or_else(|| panic!("no chart {expected:?} in {titles:?}"));
        assert_eq!(chart.parts, parts, "{chart:?}");
    }
    for chart in &charts {
        // The plain run logged no steps; every run has every per-epoch chart.
        let runs = if chart.title.contains("per logged step") {
            4
        } else {
            5
        };
        assert_eq!(chart.runs, runs, "{chart:?}");
        assert!(chart.points > 0, "chart {} drew no point", chart.title);
    }
    // Every run has both epochs of both losses.
    let total = charts
        .iter()
        .find(|c| c.title == "train loss: total and base")
        .unwrap();
    assert_eq!(
        (total.series, total.points),
        (10, 20),
        "5 runs x 2 losses x 2 epochs"
    );
}

/// Runs in the page: ticks run 1's box off, then moves the mouse over the second chart at
/// the second epoch; records how many charts hid every series of run 1 and what the first
/// chart's legend shows (the cursor is shared).
const INTERACTION_PROBE: &str = r#"<script>(function () {
  var out = {};
  try {
    var plots = window.reportCharts;
    document.querySelector('input.run-toggle[data-run="1"]').click();
    var hidden = function (p) {
      var mine = p.series.filter(function (s, i) { return i > 0 && p.runOf[i - 1] === 1; });
      return mine.length > 0 && mine.every(function (s) { return s.show === false; });
    };
    out.hidden = plots.filter(hidden).length;
    out.with_run = plots.filter(function (p) { return p.runOf.indexOf(1) >= 0; }).length;
    var second = plots[1], rect = second.over.getBoundingClientRect();
    var at = { clientX: rect.left + second.valToPos(second.data[0][1], "x"), clientY: rect.top + 10, bubbles: true };
    second.over.dispatchEvent(new MouseEvent("mouseenter", at));
    second.over.dispatchEvent(new MouseEvent("mousemove", at));
    out.title = plots[0].root.parentNode.dataset.title;
    out.labels = Array.prototype.map.call(
      plots[0].root.querySelectorAll(".u-legend .u-series th .u-label"),
      function (cell) { return cell.textContent; });
    out.values = Array.prototype.map.call(
      plots[0].root.querySelectorAll(".u-legend .u-series td.u-value"),
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
    drawn_charts(&dom);
    let body = tags(&dom, "<body");
    let probe = attribute(body[0], "data-probe").expect("the probe ran");
    let probe: Value = serde_json::from_str(&probe.replace("&quot;", "\"")).unwrap();
    assert!(probe["error"].is_null(), "{probe}");
    assert!(probe["with_run"].as_u64() > Some(5), "{probe}");
    assert_eq!(probe["hidden"], probe["with_run"], "{probe}");
    assert_eq!(probe["title"], "train loss: total and base");
    // The first chart shows epoch 2 and each run's total and base loss there, from the
    // documents, under each run's short label.
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
    assert_eq!(values.len(), 1 + 2 * files.len(), "{values:?}");
    let labels: Vec<&str> = probe["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for (index, file) in files.iter().enumerate() {
        let run = read_json(&sweep.join(file));
        let lambda = run["config"]["lambda"].as_f64().unwrap();
        let seed = run["config"]["seed"].as_u64().unwrap();
        for (part, key, at) in [("total", "total_loss", 1), ("base", "base_loss", 2)] {
            let expected = run["epochs"][1]["train"][key].as_f64().unwrap();
            let shown = values[2 * index + at];
            let shown: f64 = shown
                .parse()
                .unwrap_or_else(|_| panic!("{file}: {shown:?}"));
            assert!(
                (shown - expected).abs() <= 1e-3 * expected.abs(),
                "{file}: shows {shown}, the document has {expected}"
            );
            assert_eq!(
                labels[2 * index + at],
                format!("λ={lambda} seed {seed} · {part}"),
                "{labels:?}"
            );
        }
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
        charts.iter().all(|c| !c.title.contains("regularization")),
        "{charts:?}"
    );
    assert!(charts.iter().all(|c| c.runs == 1));
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

/// The page's embedded data (runs with labels and colours, charts with series).
fn page_data(html: &str) -> Value {
    let start = html
        .find("<script type=\"application/json\" id=\"report-data\">")
        .expect("report data");
    let rest = &html[start..];
    let body = &rest[rest.find('>').unwrap() + 1..rest.find("</script>").unwrap()];
    serde_json::from_str(body).expect("report data is JSON")
}

#[test]
fn labels_are_short_seeds_share_their_settings_hue_and_the_table_comes_first() {
    let out = tempfile::tempdir().unwrap();
    let page = out.path().join("read.html");
    let sweep = runs().join("sweep");
    let plain = runs().join("plain.json");
    report(&[&sweep, &plain], &page);
    let html = std::fs::read_to_string(&page).unwrap();
    let data = page_data(&html);
    let runs = data["runs"].as_array().unwrap();
    let field = |i: usize, key: &str| runs[i][key].as_str().unwrap().to_string();
    // The summary's order: lambda 0 seeds 1 and 2, lambda 0.05 seeds 1 and 2; then plain.
    let labels: Vec<String> = (0..5).map(|i| field(i, "label")).collect();
    assert_eq!(
        labels[..4],
        [
            "batch-l2 λ=0 seed 1",
            "batch-l2 λ=0 seed 2",
            "batch-l2 λ=0.05 seed 1",
            "batch-l2 λ=0.05 seed 2"
        ],
        "{labels:?}"
    );
    for label in &labels {
        assert!(
            !label.contains('/') && !label.contains("...") && label.len() < 40,
            "not a short label: {label:?}"
        );
    }
    // Seeds of one setting share a hue in their own shades; settings differ in hue.
    assert_eq!(field(0, "hue"), field(1, "hue"));
    assert_eq!(field(2, "hue"), field(3, "hue"));
    assert_ne!(field(0, "hue"), field(2, "hue"));
    assert_ne!(field(4, "hue"), field(0, "hue"));
    assert_ne!(field(4, "hue"), field(2, "hue"));
    assert_ne!(field(2, "color"), field(3, "color"));
    assert_eq!(field(2, "color"), field(2, "hue"));
    // The sweep table first, then the runs, the curves and the findings.
    let at = |marker: &str| html.find(marker).unwrap_or_else(|| panic!("no {marker}"));
    assert!(at("<section class=\"sweep\"") < at("<section id=\"runs\""));
    assert!(at("<section id=\"runs\"") < at("<section id=\"curves\""));
    assert!(at("<section id=\"curves\"") < at("<section id=\"findings\""));
    assert!(html.contains("4 runs in 2 settings"), "plurals");
    // A finding repeated over runs appears once, with the runs it applies to.
    let findings = &html[at("<section id=\"findings\"")..];
    let explained = run_ok(
        regulab()
            .args(["explain", "--json"])
            .args((0..4).map(|i| {
                let file = read_json(&sweep.join("summary.json"))["runs"][i]["file"]
                    .as_str()
                    .unwrap()
                    .to_string();
                sweep.join(file)
            }))
            .arg(&plain),
    );
    let explained: Value = serde_json::from_slice(&explained.stdout).unwrap();
    let mut kinds: Vec<(String, usize)> = Vec::new();
    for run in explained.as_array().unwrap() {
        for finding in run["findings"].as_array().unwrap() {
            let kind = finding["kind"].as_str().unwrap().to_string();
            match kinds.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, n)) => *n += 1,
                None => kinds.push((kind, 1)),
            }
        }
    }
    assert!(
        kinds.iter().any(|(_, n)| *n > 1),
        "no repeated finding: {kinds:?}"
    );
    for (kind, n) in &kinds {
        let shown = format!("<span class=\"kind\">[{kind}]</span>, {n} run");
        assert_eq!(findings.matches(&shown).count(), 1, "{shown} in {findings}");
        if *n > 1 {
            assert!(findings.contains(&format!("{shown}s:")), "{kind}: {n} runs");
        }
    }
    // The rendered legends use the short labels and name the part.
    let dom = rendered_dom(&page);
    drawn_charts(&dom);
    assert!(
        dom.contains("batch-l2 λ=0.05 seed 2 · test"),
        "legend labels"
    );
}

#[test]
fn a_quadratic_cost_mlp_shows_its_cost_as_trained_and_with_the_test_divisor() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("mlp.json");
    run_ok(
        regulab()
            .args(["mlp", "--data", &fashion_mnist()])
            .args(["--limit-train", "1000", "--limit-test", "300"])
            .args(["--hidden", "30", "--activation", "sigmoid", "--loss", "mse"])
            .args(["--optimizer", "sgd", "--lr", "0.5", "--batch-size", "10"])
            .args(["--penalty", "l2", "--lambda", "5", "--epochs", "2"])
            .args(["--quiet", "--threads", "1", "--device", "cpu", "--out"])
            .arg(&run),
    );
    let explained = run_ok(regulab().args(["explain", "--json"]).arg(&run));
    let explained: Value = serde_json::from_slice(&explained.stdout).unwrap();
    let numbers = &explained[0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "eval-divisor")
        .expect("the eval-divisor finding")["numbers"];
    let page = dir.path().join("mlp.html");
    report(&[&run], &page);
    let data = page_data(&std::fs::read_to_string(&page).unwrap());
    let chart = data["charts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["title"].as_str().unwrap().contains("test set's divisor"))
        .expect("the cost chart");
    assert_eq!(chart["y2_label"], "test accuracy");
    let series = |part: &str| {
        chart["series"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["part"] == part)
            .unwrap_or_else(|| panic!("no {part} in {chart}"))
            .clone()
    };
    let values = |part: &str| -> Vec<f64> {
        series(part)["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    let trained = values("test cost as trained");
    let divided = values("test cost with the test set's divisor");
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs();
    assert!(close(
        trained[0],
        numbers["cost_trained_at_first"].as_f64().unwrap()
    ));
    assert!(close(
        trained[1],
        numbers["cost_trained_at_last"].as_f64().unwrap()
    ));
    assert!(close(
        divided[0],
        numbers["cost_eval_at_first"].as_f64().unwrap()
    ));
    assert!(close(
        divided[1],
        numbers["cost_eval_at_last"].as_f64().unwrap()
    ));
    assert_eq!(series("test accuracy")["right"], true);
    let dom = rendered_dom(&page);
    let drawn = drawn_charts(&dom);
    assert!(drawn
        .iter()
        .any(|c| c.parts
            == "test cost as trained|test cost with the test set's divisor|test accuracy"));
}

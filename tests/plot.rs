//! `regulab plot` and `scripts/plot_curves.py` on documents the binary writes (so a renamed
//! field fails here), plus one version 1 document that must keep plotting.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const REGULAB: &str = env!("CARGO_BIN_EXE_regulab");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");

/// Documents written once per test binary by the real trainers on small data: an MF run
/// with per-step losses, a quadratic-cost MLP run with a validation split, a diverged MF
/// run and a sweep.
fn fixture(name: &str) -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        produce(dir.path());
        dir
    });
    if name.starts_with("v1/") {
        return Path::new(ROOT).join("tests/fixtures").join(name);
    }
    dir.path().join(name)
}

fn train(args: &[&str], out: &Path) -> Output {
    Command::new(REGULAB)
        .args(args)
        .args(["--quiet", "--threads", "1", "--device", "cpu", "--out"])
        .arg(out)
        .output()
        .expect("run regulab")
}

fn produce(dir: &Path) {
    let mf = ["mf", "--synthetic-ratings", "20000", "--epochs", "4"];
    let out = train(
        &[
            &mf[..],
            &[
                "--penalty",
                "batch-l2",
                "--lambda",
                "0.05",
                "--log-every",
                "5",
            ],
        ]
        .concat(),
        &dir.join("run-mf.json"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let images = Path::new(ROOT).join("../shared/data/fashion-mnist");
    let out = train(
        &[
            "mlp",
            "--data",
            images.to_str().unwrap(),
            "--limit-train",
            "1000",
            "--limit-test",
            "300",
            "--val-split",
            "0.2",
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
            "--epochs",
            "3",
        ],
        &dir.join("run-mlp.json"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = train(
        &[&mf[..], &["--optimizer", "sgd", "--lr", "1e9"]].concat(),
        &dir.join("run-diverged.json"),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let out = Command::new(REGULAB)
        .args([
            "sweep",
            "mf",
            "--synthetic-ratings",
            "20000",
            "--epochs",
            "2",
        ])
        .args([
            "--penalty",
            "batch-l2",
            "--lambda",
            "0,0.01,0.1",
            "--seed",
            "1,2",
            "--val-split",
            "0.1",
        ])
        .args(["--quiet", "--threads", "1", "--device", "cpu", "--out"])
        .arg(dir.join("sweep"))
        .output()
        .expect("run regulab sweep");
    assert!(out.status.success(), "{}", stderr(&out));
}

fn regulab_plot(runs: &[&Path], output: &Path) -> Output {
    Command::new(REGULAB)
        .arg("plot")
        .args(runs)
        .arg("-o")
        .arg(output)
        .output()
        .expect("run regulab")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A failure must be exactly one line that names `file`, never a panic.
fn assert_one_line_error(output: &Output, file: &Path) {
    let err = stderr(output);
    assert!(!output.status.success(), "expected failure, stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line expected: {err}"
    );
    assert!(
        err.contains(&file.display().to_string()),
        "file not named: {err}"
    );
}

#[test]
fn draws_svg_and_png_from_mf_and_mlp_runs() {
    let dir = tempfile::tempdir().unwrap();
    let runs = [fixture("run-mf.json"), fixture("run-mlp.json")];
    let runs: Vec<&Path> = runs.iter().map(PathBuf::as_path).collect();

    let svg = dir.path().join("fig.svg");
    let out = regulab_plot(&runs, &svg);
    assert!(out.status.success(), "svg: {}", stderr(&out));
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.contains("<svg"), "not an SVG");
    // The legend names the runs by what differs between them, in short words.
    let words = texts(&text);
    assert!(
        words.iter().any(|t| t.starts_with("mf ")) && words.iter().any(|t| t.starts_with("mlp ")),
        "legend missing: {words:?}"
    );

    let png = dir.path().join("nested/fig.png");
    let out = regulab_plot(&runs, &png);
    assert!(out.status.success(), "png: {}", stderr(&out));
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.len() > 1000, "PNG too small: {} bytes", bytes.len());
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
}

#[test]
fn draws_a_diverged_run_with_null_losses() {
    let dir = tempfile::tempdir().unwrap();
    let diverged = fixture("run-diverged.json");
    let text = std::fs::read_to_string(&diverged).unwrap();
    assert!(
        text.contains("\"diverged\"") && text.contains("null"),
        "the diverged run records null losses"
    );
    let out = regulab_plot(
        &[&diverged, &fixture("run-mf.json")],
        &dir.path().join("d.svg"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn version_1_documents_still_plot() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = fixture("v1/run-mf.json");
    let out = regulab_plot(&[&v1, &fixture("run-mf.json")], &dir.path().join("v1.svg"));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = plot_curves(&[
        v1.as_os_str(),
        "-o".as_ref(),
        dir.path().join("v1").as_os_str(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn malformed_and_foreign_json_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let malformed = dir.path().join("malformed.json");
    std::fs::write(
        &malformed,
        "{\"kind\": \"regulab-run\",\n  \"epochs\": [1,\n",
    )
    .unwrap();
    let out = regulab_plot(&[&malformed], &dir.path().join("a.svg"));
    assert_one_line_error(&out, &malformed);
    assert!(stderr(&out).contains("line "), "{}", stderr(&out));

    let foreign = dir.path().join("foreign.json");
    std::fs::write(&foreign, r#"{"foo": 1}"#).unwrap();
    let out = regulab_plot(
        &[&fixture("run-mf.json"), &foreign],
        &dir.path().join("b.svg"),
    );
    assert_one_line_error(&out, &foreign);
    assert!(
        stderr(&out).contains("not a regulab run JSON"),
        "{}",
        stderr(&out)
    );

    // A sweep summary is drawn on its own, never mixed with runs.
    let sweep = fixture("sweep/summary.json");
    let out = regulab_plot(
        &[&fixture("run-mf.json"), &sweep],
        &dir.path().join("c.svg"),
    );
    assert_one_line_error(&out, &sweep);

    let missing = dir.path().join("missing.json");
    let out = regulab_plot(&[&missing], &dir.path().join("d.svg"));
    assert_one_line_error(&out, &missing);
}

fn svg_text(runs: &[&Path], extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("fig.svg");
    let out = Command::new(REGULAB)
        .arg("plot")
        .args(runs)
        .args(extra)
        .arg("-o")
        .arg(&svg)
        .output()
        .expect("run regulab");
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::read_to_string(&svg).unwrap()
}

/// The words of every `<text>` element, in order.
fn texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|part| {
            let start = part.find('>')? + 1;
            let end = part.find("</text>")?;
            let text = part[start..end].trim();
            Some(
                text.replace("&apos;", "'")
                    .replace("&quot;", "\"")
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&amp;", "&"),
            )
        })
        .collect()
}

#[test]
fn titles_come_from_the_config_and_keys_name_every_line_style() {
    let mf = texts(&svg_text(&[&fixture("run-mf.json")], &[]));
    let title = &mf[0];
    for part in [
        "mf on",
        "batch-l2 λ=0.05",
        "no weight decay",
        "adam lr=0.01",
    ] {
        assert!(title.contains(part), "{part:?} not in the title {title:?}");
    }
    assert!(
        !title.contains("run-mf"),
        "the title names the file: {title}"
    );
    for key in [
        "total",
        "base",
        "regularization",
        "train",
        "test",
        "penalty's share of the total",
    ] {
        assert!(
            mf.iter().any(|t| t == key || t.contains(key)),
            "no {key:?} in {mf:?}"
        );
    }
    // No validation split, no validation key; no MLP, no cost-vs-accuracy panel.
    assert!(!mf.iter().any(|t| t == "validation"), "{mf:?}");
    assert!(!mf.iter().any(|t| t.contains("accuracy")), "{mf:?}");

    // Titles name only what is drawn: no validation split, no validation in the title.
    let plain = texts(&svg_text(&[&fixture("sweep/lambda=0.0,seed=1.json")], &[]));
    let unvalidated = texts(&svg_text(&[&fixture("run-mf.json")], &[]));
    assert!(
        !unvalidated.iter().any(|t| t.contains("validation")),
        "{unvalidated:?}"
    );
    assert!(plain.iter().any(|t| t == "validation"), "{plain:?}");

    let mlp = texts(&svg_text(&[&fixture("run-mlp.json")], &[]));
    for key in [
        "validation",
        "test at the best validation epoch",
        "test accuracy (right axis)",
    ] {
        assert!(mlp.iter().any(|t| t == key), "no {key:?} in {mlp:?}");
    }
}

/// The explain finding `kind`'s numbers for a run document.
fn finding_numbers(run: &Path, kind: &str) -> serde_json::Value {
    let out = Command::new(REGULAB)
        .args(["explain", "--json"])
        .arg(run)
        .output()
        .expect("run regulab explain");
    assert!(out.status.success(), "{}", stderr(&out));
    let explained: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    explained[0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} finding: {explained}"))["numbers"]
        .clone()
}

#[test]
fn the_quadratic_cost_mlp_draws_its_cost_as_trained_and_with_the_test_divisor() {
    // 800 training images (1000 less the validation fifth) and 300 test images: the L2
    // term of the test cost divided by 300 instead of 800 is the eval-divisor finding.
    let mlp = fixture("run-mlp.json");
    let numbers = finding_numbers(&mlp, "eval-divisor");
    assert_eq!(numbers["train_size"], 800.0);
    assert_eq!(numbers["eval_size"], 300.0);
    let text = texts(&svg_text(&[&mlp], &[]));
    for key in [
        "test cost, two divisors, vs test accuracy",
        "test cost as trained (penalty ÷ 800)",
        "test cost with the test set's divisor (÷ 300)",
        "test accuracy (right axis)",
        "test accuracy",
    ] {
        assert!(text.iter().any(|t| t == key), "no {key:?} in {text:?}");
    }
    // Two runs name the sizes only in general words; an MF run has no such panel.
    let both = texts(&svg_text(&[&mlp, &fixture("run-mf.json")], &[]));
    assert!(
        both.iter()
            .any(|t| t == "test cost as trained (penalty ÷ 800)"),
        "{both:?}"
    );
    let mf = texts(&svg_text(&[&fixture("run-mf.json")], &[]));
    assert!(!mf.iter().any(|t| t.contains("divisor")), "{mf:?}");
}

#[test]
fn the_regularization_loss_gets_its_own_axis_where_it_is_small() {
    // batch-l2 with λ 0.05 on synthetic ratings: the penalty is a few percent of the total.
    for extra in [&[][..], &["--steps"][..]] {
        let text = texts(&svg_text(&[&fixture("run-mf.json")], extra));
        assert!(
            text.iter().any(|t| t == "regularization (right axis)"),
            "{extra:?}: {text:?}"
        );
        assert!(
            text.iter().any(|t| t == "regularization loss"),
            "{extra:?}: {text:?}"
        );
    }
}

#[test]
fn text_is_at_least_12_px_and_norms_are_told_apart_by_line_style() {
    let svg = svg_text(&[&fixture("run-mlp.json"), &fixture("run-mf.json")], &[]);
    let sizes: Vec<f64> = svg
        .split("font-size=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].parse().unwrap())
        .collect();
    assert!(!sizes.is_empty());
    assert!(
        sizes.iter().all(|&size| size >= 12.0),
        "text below 12 px: {sizes:?}"
    );
    // Two runs: a norms panel each, biases dashed beside their layer's solid weights.
    let text = texts(&svg);
    for title in ["weight norms: mlp", "weight norms: mf"] {
        assert!(
            text.iter().any(|t| t.starts_with(title)),
            "no {title:?} in {text:?}"
        );
    }
}

#[test]
fn an_unregularized_run_draws_no_regularization_curve_or_share_panel() {
    let plain = fixture("sweep/lambda=0.0,seed=1.json");
    let text = texts(&svg_text(&[&plain], &[]));
    assert!(text[0].contains("batch-l2 λ=0"), "{}", text[0]);
    assert!(!text.iter().any(|t| t == "regularization"), "{text:?}");
    assert!(!text.iter().any(|t| t.contains("share")), "{text:?}");
    assert!(text.iter().any(|t| t == "total"), "{text:?}");
}

#[test]
fn steps_draw_the_logged_losses_or_say_how_to_record_them() {
    let text = texts(&svg_text(&[&fixture("run-mf.json")], &["--steps"]));
    assert!(text.iter().any(|t| t == "optimizer step"), "{text:?}");
    assert!(text.iter().any(|t| t.contains("logged steps")), "{text:?}");

    let dir = tempfile::tempdir().unwrap();
    let mlp = fixture("run-mlp.json");
    let out = Command::new(REGULAB)
        .args(["plot", "--steps"])
        .arg(&mlp)
        .arg("-o")
        .arg(dir.path().join("s.svg"))
        .output()
        .unwrap();
    assert_one_line_error(&out, &mlp);
    assert!(stderr(&out).contains("--log-every"), "{}", stderr(&out));
}

#[test]
fn a_sweep_summary_draws_the_metric_against_lambda_with_the_validation_choice() {
    let summary_path = fixture("sweep/summary.json");
    let text = texts(&svg_text(&[&summary_path], &[]));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary_path).unwrap()).unwrap();
    let groups = summary["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 3, "lambda 0, 0.01, 0.1 over two seeds");
    let chosen = groups
        .iter()
        .min_by(|a, b| {
            let v = |g: &serde_json::Value| g["validation_at_selected_mean"].as_f64().unwrap();
            v(a).total_cmp(&v(b))
        })
        .unwrap();
    let lambda = chosen["values"]["lambda"].as_f64().unwrap();
    let title = &text[0];
    assert!(
        title.contains(&format!("chosen on validation: lambda={lambda:?}")),
        "{title}"
    );
    // 0.01 and 0.1 span a decade: a log axis, zero left of a break.
    assert!(
        text.iter()
            .any(|t| t == "lambda (log scale; 0 left of the break)"),
        "{text:?}"
    );
    for tick in ["0.0", "0.01", "0.1"] {
        assert!(text.iter().any(|t| t == tick), "no tick {tick} in {text:?}");
    }
    assert!(text.iter().any(|t| t.contains("mean ± std")), "{text:?}");
}

#[test]
fn unknown_output_extension_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["fig.jpg", "fig"] {
        let output = dir.path().join(name);
        let out = regulab_plot(&[&fixture("run-mf.json")], &output);
        assert_one_line_error(&out, &output);
        assert!(stderr(&out).contains(".svg or .png"), "{}", stderr(&out));
        assert!(!output.exists(), "{name} was written");
    }
}

#[test]
fn a_bad_font_file_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_font = dir.path().join("font.ttf");
    std::fs::write(&not_a_font, "not a font").unwrap();
    let output = dir.path().join("fig.png");
    let out = Command::new(REGULAB)
        .env("REGULAB_FONT", &not_a_font)
        .arg("plot")
        .arg(fixture("run-mf.json"))
        .arg("-o")
        .arg(&output)
        .output()
        .unwrap();
    assert_one_line_error(&out, &not_a_font);
    assert!(stderr(&out).contains("REGULAB_FONT"), "{}", stderr(&out));
    assert!(!output.exists());
}

fn python() -> &'static str {
    assert!(
        Path::new(PYTHON).exists(),
        "{PYTHON} not found: run `bash scripts/setup.sh` first (it creates .venv with matplotlib)"
    );
    PYTHON
}

fn plot_curves(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(python())
        .arg(Path::new(ROOT).join("scripts/plot_curves.py"))
        .args(args)
        .output()
        .expect("run plot_curves.py")
}

fn assert_non_empty(path: &Path) {
    let size = std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .len();
    assert!(size > 0, "{} is empty", path.display());
}

#[test]
fn python_plotter_draws_runs_and_sweeps() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("runs");
    let (mf, mlp) = (fixture("run-mf.json"), fixture("run-mlp.json"));
    let out = plot_curves(&[
        mf.as_os_str(),
        mlp.as_os_str(),
        "-o".as_ref(),
        prefix.as_os_str(),
        "--format".as_ref(),
        "png,svg".as_ref(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    for figure in ["losses", "metric", "norms", "cost-vs-accuracy"] {
        assert_non_empty(&dir.path().join(format!("runs-{figure}.png")));
        let svg = dir.path().join(format!("runs-{figure}.svg"));
        assert_non_empty(&svg);
        assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
    }
    let png = std::fs::read(dir.path().join("runs-losses.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");

    // An MF run alone has no cost-vs-accuracy figure; --steps uses its per-step losses.
    let single = dir.path().join("mf");
    let out = plot_curves(&[
        mf.as_os_str(),
        "--steps".as_ref(),
        "-o".as_ref(),
        single.as_os_str(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_non_empty(&dir.path().join("mf-losses.png"));
    assert!(!dir.path().join("mf-cost-vs-accuracy.png").exists());

    let sweep = dir.path().join("sweep");
    let summary = fixture("sweep/summary.json");
    let out = plot_curves(&[
        "--sweep".as_ref(),
        summary.as_os_str(),
        "-o".as_ref(),
        sweep.as_os_str(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_non_empty(&dir.path().join("sweep-sweep.png"));
}

#[test]
fn python_plotter_rejects_foreign_and_malformed_json() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("foreign.json");
    std::fs::write(&foreign, r#"{"foo": 1}"#).unwrap();
    let malformed = dir.path().join("malformed.json");
    std::fs::write(&malformed, "{\"kind\": ").unwrap();
    let prefix = dir.path().join("out");
    for bad in [&foreign, &malformed] {
        let out = plot_curves(&[bad.as_os_str(), "-o".as_ref(), prefix.as_os_str()]);
        assert_one_line_error(&out, bad);
    }
    let out = plot_curves(&[
        "--sweep".as_ref(),
        foreign.as_os_str(),
        "-o".as_ref(),
        prefix.as_os_str(),
    ]);
    assert_one_line_error(&out, &foreign);
}

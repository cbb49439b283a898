//! The report page as one HTML string: the run table (with the toggles), the chart grid the
//! script fills, the sweep tables and the findings. Everything the page needs is inlined.

use serde::Serialize;
use std::fmt::Write;
use std::path::Path;

use super::charts::Chart;
use super::Inputs;
use crate::explain::explain;
use crate::schema::{Finding, Severity};
use crate::schema::{Selection, SweepSummary, REPLICATE_KEYS};
use crate::util::{count_noun, format_number};

const UPLOT_JS: &str = include_str!("../../assets/uplot/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../../assets/uplot/uPlot.min.css");
const REPORT_JS: &str = include_str!("../../assets/report/report.js");
const REPORT_CSS: &str = include_str!("../../assets/report/report.css");

/// matplotlib's default colours, as `regulab plot` uses them.
const PALETTE: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// Collects errors before any other script runs, so the page can report them (the
/// headless-browser test reads them from `#report-status`).
const ERROR_TRAP: &str = "window.reportErrors=[];\
window.addEventListener('error',function(e){window.reportErrors.push(String(e.message||e));});\
(function(){var log=console.error;console.error=function(){window.reportErrors.push(\
Array.prototype.join.call(arguments,' '));return log.apply(console,arguments);};})();";

/// What the script reads: the runs' labels and colours, and the charts.
#[derive(Serialize)]
struct PageData<'a> {
    runs: Vec<RunEntry>,
    charts: &'a [Chart],
}

#[derive(Serialize)]
struct RunEntry {
    label: String,
    /// The run's own shade of its setting's hue.
    color: String,
    /// The setting's colour, shared by the runs that differ only in seed or split.
    hue: String,
}

pub(super) fn render(inputs: &Inputs, charts: &[Chart]) -> String {
    let short = crate::plot::short_labels(&inputs.runs);
    let labels: Vec<String> = short.iter().map(|l| l.label.clone()).collect();
    let colors: Vec<String> = short.iter().map(shade).collect();
    let data = PageData {
        runs: short
            .iter()
            .zip(&colors)
            .map(|(label, color)| RunEntry {
                label: label.label.clone(),
                color: color.clone(),
                hue: PALETTE[label.setting % PALETTE.len()].to_string(),
            })
            .collect(),
        charts,
    };
    let mut html = String::new();
    html += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
    html += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
    let _ = writeln!(
        html,
        "<title>regulab report: {}</title>",
        escape(&title(inputs))
    );
    let _ = writeln!(html, "<script>{ERROR_TRAP}</script>");
    let _ = writeln!(
        html,
        "<style>\n{UPLOT_CSS}\n{REPORT_CSS}\n</style>\n</head>\n<body>"
    );
    html += &header(inputs);
    // The sweep's or cv's table answers the question the runs were made for: it comes first.
    for (path, summary) in &inputs.tables {
        html += &sweep_table(path, summary);
    }
    for (path, summary) in &inputs.tunes {
        html += &super::tune_table::tune_table(path, summary);
    }
    html += &run_table(inputs, &labels, &colors);
    html += "<section id=\"curves\"><h2>Curves</h2>\n<p class=\"hint\">Hover a chart for the \
             values at an epoch (every chart follows the cursor); untick a run above, or click \
             its name under a chart, to hide it everywhere; drag to zoom, double-click to \
             reset.</p>\n<div id=\"chart-grid\"></div>\n</section>\n";
    html += &findings_section(inputs, &labels, &colors);
    html += "<div id=\"report-status\" data-state=\"loading\"></div>\n";
    let json = serde_json::to_string(&data).unwrap_or_else(|_| "{}".to_string());
    // `<` only occurs inside JSON strings, where \u003c reads back the same; so no
    // `</script>` in the data can end the element early.
    let _ = writeln!(
        html,
        "<script type=\"application/json\" id=\"report-data\">{}</script>",
        json.replace('<', "\\u003c")
    );
    let _ = writeln!(html, "<script>\n{UPLOT_JS}\n</script>");
    let _ = writeln!(html, "<script>\n{REPORT_JS}\n</script>\n</body>\n</html>");
    html
}

fn title(inputs: &Inputs) -> String {
    match inputs.runs.as_slice() {
        [(path, _)] => file_name(path),
        runs => count_noun(runs.len(), "run"),
    }
}

fn header(inputs: &Inputs) -> String {
    let sources: Vec<String> = inputs
        .runs
        .iter()
        .map(|(p, _)| p.display().to_string())
        .collect();
    format!(
        "<header><h1>regulab report: {}</h1>\n<p class=\"meta\">regulab {} wrote this page at \
         {}. Test numbers are at the epoch chosen without the test set (the best validation \
         epoch, else the last); nothing here is chosen on test.</p>\n<details><summary>files\
         </summary><ul>{}</ul></details></header>\n",
        escape(&title(inputs)),
        env!("CARGO_PKG_VERSION"),
        crate::util::now_utc(),
        sources
            .iter()
            .map(|s| format!("<li><code>{}</code></li>", escape(s)))
            .collect::<String>()
    )
}

fn run_table(inputs: &Inputs, labels: &[String], colors: &[String]) -> String {
    let mut html = String::from(
        "<section id=\"runs\"><h2>Runs</h2>\n<table class=\"runs\"><thead><tr><th>show</th>\
         <th>run</th><th>settings</th><th>status</th><th>epochs</th><th>reported epoch</th>\
         <th>validation</th><th>test (headline)</th></tr></thead><tbody>\n",
    );
    for (index, ((path, doc), (label, color))) in inputs
        .runs
        .iter()
        .zip(labels.iter().zip(colors))
        .enumerate()
    {
        let metric = &doc.metric;
        let reported = match (doc.summary.selected_epoch, doc.summary.selection) {
            (Some(epoch), Selection::Validation) => format!("{epoch} (best validation)"),
            (Some(epoch), Selection::Last) => format!("{epoch} (last)"),
            (None, _) => "none".to_string(),
        };
        let mut status = doc.status.to_string();
        if let Some(message) = &doc.message {
            status += &format!(
                ": {}",
                message.split_whitespace().collect::<Vec<_>>().join(" ")
            );
        }
        let _ = writeln!(
            html,
            "<tr><td><input type=\"checkbox\" class=\"run-toggle\" data-run=\"{index}\" \
             checked aria-label=\"show {label_attr}\"></td><td><span class=\"swatch\" \
             style=\"background:{color}\"></span>{label}<br><code class=\"file\">{file}</code>\
             </td><td>{settings}</td><td>{status}</td><td>{epochs}</td><td>{reported}</td>\
             <td>{validation}</td><td><b>{test}</b> {name}</td></tr>",
            label_attr = escape(label),
            label = escape(label),
            file = escape(&file_name(path)),
            settings = escape(&crate::plot::run_title(doc)),
            status = escape(&status),
            epochs = doc.summary.epochs_completed,
            validation = optional(doc.summary.selected_validation(metric)),
            test = optional(doc.summary.selected_test(metric)),
            name = escape(&metric.name),
        );
    }
    html += "</tbody></table>\n</section>\n";
    html
}

/// A sweep's or cross-validation's groups: mean and standard deviation over the runs that
/// differ only in `seed` or fold; the best validation mean is marked (the choice made
/// without the test set).
fn sweep_table(path: &Path, summary: &SweepSummary) -> String {
    let metric = &summary.metric;
    let best = best_group_on_validation(summary);
    // Folds and seeds repeat one setting: that is cross-validation, with nothing to choose.
    let repeats_only = summary
        .swept
        .iter()
        .all(|k| REPLICATE_KEYS.contains(&k.as_str()));
    let (what, guide) = if repeats_only || summary.groups.len() < 2 {
        ("Cross-validation", "mean ± std over the runs.")
    } else {
        (
            "Sweep",
            "Choose by the validation column; the marked row is the best on validation, and \
             its test value is the result.",
        )
    };
    let mut html = format!(
        "<section class=\"sweep\"><h2>{what}: {command}, {metric} ({direction} is better)</h2>\n\
         <p class=\"meta\"><code>{file}</code>: {runs} in {groups}; {guide}</p>\n\
         <table><thead><tr>",
        command = summary.command,
        metric = escape(&metric.name),
        direction = if metric.higher_is_better {
            "higher"
        } else {
            "lower"
        },
        file = escape(&path.display().to_string()),
        runs = count_noun(summary.runs.len(), "run"),
        groups = count_noun(summary.groups.len(), "setting"),
    );
    let keys: Vec<&String> = summary
        .groups
        .first()
        .map(|g| g.values.keys().collect())
        .unwrap_or_default();
    for key in &keys {
        let _ = write!(html, "<th>{}</th>", escape(key));
    }
    html += "<th>runs</th><th>validation mean</th><th>test at reported epoch, mean ± std</th>\
             <th>test at last epoch, mean ± std</th></tr></thead><tbody>\n";
    for (index, group) in summary.groups.iter().enumerate() {
        let class = if Some(index) == best {
            " class=\"best\""
        } else {
            ""
        };
        let _ = write!(html, "<tr{class}>");
        for key in &keys {
            let value = group.values.get(*key).map_or(String::new(), json_text);
            let _ = write!(html, "<td>{}</td>", escape(&value));
        }
        let _ = writeln!(
            html,
            "<td>{} of {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            group.completed,
            group.runs,
            optional(group.validation_at_selected_mean),
            mean_std(group.test_at_selected_mean, group.test_at_selected_std),
            mean_std(group.final_test_mean, group.final_test_std),
        );
    }
    html += "</tbody></table>\n</section>\n";
    html
}

fn best_group_on_validation(summary: &SweepSummary) -> Option<usize> {
    let metric = &summary.metric;
    let mut best: Option<(usize, f64)> = None;
    for (index, group) in summary.groups.iter().enumerate() {
        let Some(value) = group.validation_at_selected_mean.filter(|v| v.is_finite()) else {
            continue;
        };
        if best.is_none_or(|(_, b)| metric.is_better(value, b)) {
            best = Some((index, value));
        }
    }
    best.map(|(index, _)| index)
}

/// Every finding once per kind, with the runs it applies to (warnings first): a finding
/// repeated over many runs would otherwise repeat its explanation for each.
fn findings_section(inputs: &Inputs, labels: &[String], colors: &[String]) -> String {
    let mut kinds: Vec<Vec<(usize, Finding)>> = Vec::new();
    for (run, (_, doc)) in inputs.runs.iter().enumerate() {
        for finding in explain(doc) {
            match kinds.iter_mut().find(|k| k[0].1.kind == finding.kind) {
                Some(kind) => kind.push((run, finding)),
                None => kinds.push(vec![(run, finding)]),
            }
        }
    }
    kinds.sort_by_key(|k| k.iter().map(|(_, f)| f.severity).min());
    let mut html = String::from("<section id=\"findings\"><h2>Findings</h2>\n");
    let quiet = inputs.runs.len() - {
        let mut with: Vec<usize> = kinds.iter().flatten().map(|(r, _)| *r).collect();
        with.sort_unstable();
        with.dedup();
        with.len()
    };
    if kinds.is_empty() {
        html += "<p class=\"none\">No findings: the curves crossed none of the thresholds.</p>\n";
    } else {
        html += "<ul class=\"findings\">\n";
        for kind in &kinds {
            html += &finding_item(kind, labels, colors);
        }
        html += "</ul>\n";
        if quiet > 0 {
            let _ = writeln!(
                html,
                "<p class=\"none\">{} crossed none of the thresholds.</p>",
                count_noun(quiet, "other run")
            );
        }
    }
    html += "</section>\n";
    html
}

/// One kind of finding: its word and kind, the runs with their own titles, the evidence
/// of each run folded, and the advice once when the runs share it.
fn finding_item(kind: &[(usize, Finding)], labels: &[String], colors: &[String]) -> String {
    let worst = kind
        .iter()
        .map(|(_, f)| f.severity)
        .min()
        .unwrap_or(Severity::Info);
    let (class, word) = match worst {
        Severity::Warning => ("warning", "warning"),
        Severity::Info => ("note", "note"),
    };
    let run = |index: usize| {
        format!(
            "<span class=\"swatch\" style=\"background:{}\"></span>{}",
            colors[index],
            escape(&labels[index])
        )
    };
    let first = &kind[0].1;
    let mut html = format!(
        "<li class=\"{class}\"><b>{word}</b> <span class=\"kind\">[{}]</span>, {}:\n<ul class=\"finding-runs\">",
        first.kind.name(),
        count_noun(kind.len(), "run"),
    );
    let shared = kind.iter().all(|(_, f)| f.advice == first.advice);
    for (index, finding) in kind {
        // Advice with the run's own numbers stays with its evidence.
        let own = if shared {
            String::new()
        } else {
            format!("<p><i>What to do:</i> {}</p>", escape(&finding.advice))
        };
        let _ = write!(
            html,
            "<li>{}: <b>{}</b><details><summary>evidence</summary><p>{}</p>{own}</details></li>",
            run(*index),
            escape(&finding.title),
            escape(&finding.evidence),
        );
    }
    html += "</ul>";
    if shared {
        let _ = write!(html, "<p><i>What to do:</i> {}</p>", escape(&first.advice));
    } else {
        let _ = write!(
            html,
            "<p><i>What to do</i> (for {}; each run's own numbers under its evidence): {}</p>",
            escape(&labels[kind[0].0]),
            escape(&first.advice)
        );
    }
    html += "</li>\n";
    html
}

/// A run's shade of its setting's hue: the first run the hue itself, later seeds lighter.
fn shade(label: &crate::plot::RunLabel) -> String {
    let hue = PALETTE[label.setting % PALETTE.len()];
    if label.replicates < 2 {
        return hue.to_string();
    }
    let lighter = 0.55 * label.replicate as f64 / (label.replicates - 1) as f64;
    let channel = |at: usize| {
        let value = u8::from_str_radix(&hue[at..at + 2], 16).unwrap_or(0) as f64;
        (value + (255.0 - value) * lighter).round() as u8
    };
    format!("#{:02x}{:02x}{:02x}", channel(1), channel(3), channel(5))
}

fn mean_std(mean: Option<f64>, std: Option<f64>) -> String {
    match (mean, std) {
        (Some(m), Some(s)) if s.is_finite() => {
            format!("{} ± {}", format_number(m), format_number(s))
        }
        (mean, _) => optional(mean),
    }
}

fn optional(value: Option<f64>) -> String {
    value.map_or("–".to_string(), format_number)
}

fn json_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "none".to_string(),
        other => other.to_string(),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Text safe inside HTML elements and double-quoted attributes.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out += "&amp;",
            '<' => out += "&lt;",
            '>' => out += "&gt;",
            '"' => out += "&quot;",
            '\'' => out += "&#39;",
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
fn group_with(values: &[(&str, f64)], validation: Option<f64>) -> crate::schema::SweepGroup {
    use crate::schema::SweepGroup;
    SweepGroup {
        values: values
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
            .collect(),
        runs: 2,
        completed: 2,
        left_out: 0,
        validation_at_selected_mean: validation,
        test_at_selected_mean: Some(0.9),
        test_at_selected_std: Some(0.01),
        final_test_mean: Some(0.91),
        final_test_std: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::MetricInfo;

    #[test]
    fn text_is_escaped_for_html() {
        assert_eq!(
            escape("<b a=\"x\">&'</b>"),
            "&lt;b a=&quot;x&quot;&gt;&amp;&#39;&lt;/b&gt;"
        );
    }

    #[test]
    fn the_marked_group_is_best_on_validation_not_test() {
        let summary = SweepSummary {
            schema_version: 2,
            kind: crate::schema::SWEEP_KIND.into(),
            command: crate::config::ModelKind::Mf,
            metric: MetricInfo {
                name: "rmse".into(),
                higher_is_better: false,
            },
            swept: vec!["lambda".into()],
            runs: vec![],
            groups: vec![
                group_with(&[("lambda", 0.0)], Some(0.95)),
                group_with(&[("lambda", 0.1)], None),
                group_with(&[("lambda", 0.01)], Some(0.93)),
            ],
        };
        assert_eq!(best_group_on_validation(&summary), Some(2));
        let html = sweep_table(Path::new("s/summary.json"), &summary);
        assert_eq!(html.matches("class=\"best\"").count(), 1);
        assert!(html.contains("0.9000 ± 0.01000"), "{html}");
    }
}

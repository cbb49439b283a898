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
use crate::util::format_number;

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
    color: String,
}

pub(super) fn render(inputs: &Inputs, charts: &[Chart]) -> String {
    let labels = crate::plot::legend_labels(&inputs.runs);
    let colors: Vec<String> = (0..inputs.runs.len())
        .map(|i| PALETTE[i % PALETTE.len()].to_string())
        .collect();
    let data = PageData {
        runs: labels
            .iter()
            .zip(&colors)
            .map(|(label, color)| RunEntry {
                label: label.clone(),
                color: color.clone(),
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
    html += &run_table(inputs, &labels, &colors);
    html += "<section id=\"curves\"><h2>Curves</h2>\n<p class=\"hint\">Hover a chart for the \
             values at an epoch (every chart follows the cursor); untick a run above, or click \
             its name under a chart, to hide it everywhere; drag to zoom, double-click to \
             reset.</p>\n<div id=\"chart-grid\"></div>\n</section>\n";
    for (path, summary) in &inputs.tables {
        html += &sweep_table(path, summary);
    }
    for (path, summary) in &inputs.tunes {
        html += &super::tune_table::tune_table(path, summary);
    }
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
        runs => format!("{} runs", runs.len()),
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
         <p class=\"meta\"><code>{file}</code>: {runs} runs in {groups}; {guide}</p>\n\
         <table><thead><tr>",
        command = summary.command,
        metric = escape(&metric.name),
        direction = if metric.higher_is_better {
            "higher"
        } else {
            "lower"
        },
        file = escape(&path.display().to_string()),
        runs = summary.runs.len(),
        groups = match summary.groups.len() {
            1 => "1 setting".to_string(),
            n => format!("{n} settings"),
        },
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

fn findings_section(inputs: &Inputs, labels: &[String], colors: &[String]) -> String {
    let mut html = String::from("<section id=\"findings\"><h2>Findings</h2>\n");
    for (((_, doc), label), color) in inputs.runs.iter().zip(labels).zip(colors) {
        let _ = writeln!(
            html,
            "<h3><span class=\"swatch\" style=\"background:{color}\"></span>{}</h3>",
            escape(label)
        );
        html += &findings_list(&explain(doc));
    }
    html += "</section>\n";
    html
}

fn findings_list(findings: &[Finding]) -> String {
    if findings.is_empty() {
        return "<p class=\"none\">No findings: the curves crossed none of the thresholds.</p>\n"
            .to_string();
    }
    let mut html = String::from("<ul class=\"findings\">\n");
    for finding in findings {
        let (class, word) = match finding.severity {
            Severity::Warning => ("warning", "warning"),
            Severity::Info => ("note", "note"),
        };
        let _ = writeln!(
            html,
            "<li class=\"{class}\"><b>{word}: {}</b> <span class=\"kind\">[{}]</span>\
             <p>{}</p><p><i>What to do:</i> {}</p></li>",
            escape(&finding.title),
            finding.kind.name(),
            escape(&finding.evidence),
            escape(&finding.advice),
        );
    }
    html += "</ul>\n";
    html
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

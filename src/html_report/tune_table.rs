//! A tune's trials as a table: each trial's values, its validation value at every rung it
//! reached and why it stopped; the chosen row marked, with its test result per fold under
//! the table (the only test numbers a tune reports).

use super::page::escape;
use crate::schema::TuneSummary;
use std::fmt::Write;
use std::path::Path;

fn value_text(value: Option<&serde_json::Value>) -> String {
    match value {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

pub(super) fn tune_table(path: &Path, summary: &TuneSummary) -> String {
    let metric = &summary.metric;
    let mut html = format!(
        "<section class=\"sweep\"><h2>Tune: {command}, validation {name} ({direction} is better)</h2>\n\
         <p class=\"meta\"><code>{file}</code>: {trials} trials, {sampler} sampler, scheduler \
         {scheduler}, rungs at {rungs} epochs{folds}. Trials are chosen by validation only; \
         the marked row is the choice.</p>\n<table><thead><tr><th>trial</th>",
        command = summary.command,
        name = escape(&metric.name),
        direction = if metric.higher_is_better { "higher" } else { "lower" },
        file = escape(&path.display().to_string()),
        trials = summary.trials.len(),
        sampler = escape(&summary.sampler),
        scheduler = escape(&summary.scheduler),
        rungs = summary
            .rungs
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        folds = if summary.folds.is_empty() {
            String::new()
        } else {
            format!("; validation means over {}", escape(&summary.folds.join(", ")))
        },
    );
    for searched in &summary.search {
        let _ = write!(html, "<th>{}</th>", escape(&searched.key));
    }
    for epochs in &summary.rungs {
        let _ = write!(html, "<th>validation @{epochs}</th>");
    }
    html += "<th>stopped</th></tr></thead><tbody>\n";
    let chosen = summary.choice.as_ref().map(|c| c.trial);
    for trial in &summary.trials {
        let class = if Some(trial.index) == chosen {
            " class=\"best\""
        } else {
            ""
        };
        let _ = write!(html, "<tr{class}><td>{}</td>", escape(&trial.name));
        for searched in &summary.search {
            let value = value_text(trial.values.get(&searched.key));
            let _ = write!(html, "<td>{}</td>", escape(&value));
        }
        for rung in 0..summary.rungs.len() {
            let cell = match trial.validation.get(rung) {
                Some(Some(v)) => format!("{v:.5}"),
                Some(None) => "–".into(),
                None => String::new(),
            };
            let _ = write!(html, "<td>{cell}</td>");
        }
        let stopped = match trial.stopped_at_rung {
            Some(k) => format!("{} at rung {k}", trial.stopped),
            None => trial.stopped.clone(),
        };
        let _ = writeln!(html, "<td>{}</td></tr>", escape(&stopped));
    }
    html += "</tbody></table>\n";
    if let Some(choice) = &summary.choice {
        let folds: Vec<String> = choice
            .test
            .iter()
            .map(|t| {
                format!(
                    "{} {} (epoch {})",
                    escape(t.fold.as_deref().unwrap_or(&t.run)),
                    t.value.map(|v| format!("{v:.5}")).unwrap_or_default(),
                    t.epoch
                )
            })
            .collect();
        let _ =
            writeln!(
            html,
            "<p class=\"meta\">Chosen: {} (validation {:.5}). Test {}: {} ± {}, per fold: {}.</p>",
            escape(&summary.trials[choice.trial].name),
            choice.validation,
            escape(&metric.name),
            choice.test_mean.map(|v| format!("{v:.5}")).unwrap_or_default(),
            choice.test_std.map(|v| format!("{v:.5}")).unwrap_or_default(),
            folds.join(", ")
        );
    }
    html += "</section>\n";
    html
}

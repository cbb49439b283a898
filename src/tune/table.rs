//! A tune's summary as plain text: one row per trial (its values, its validation value at
//! each rung, why it stopped), then the choice and its test result per fold.

use crate::schema::TuneSummary;
use crate::sweep::align;
use serde_json::Value;

fn value_text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// Why a trial stopped, in words.
pub fn stopped_text(stopped: &str, rung: Option<usize>, rungs: &[usize]) -> String {
    match rung {
        Some(k) => format!(
            "{stopped} at rung {k} ({})",
            crate::util::count_noun(rungs.get(k).copied().unwrap_or(0), "epoch")
        ),
        None => stopped.to_string(),
    }
}

/// The trials table, then the choice.
pub fn tune_table(summary: &TuneSummary) -> String {
    let metric = &summary.metric.name;
    let keys: Vec<&str> = summary.search.iter().map(|s| s.key.as_str()).collect();
    let mut header: Vec<String> = vec!["trial".into()];
    header.extend(keys.iter().map(|k| k.to_string()));
    header.extend(
        summary
            .rungs
            .iter()
            .map(|epochs| format!("val {metric} @{epochs}")),
    );
    header.push("stopped".into());
    let mut rows = vec![header];
    for trial in &summary.trials {
        let mut row = vec![trial.name.clone()];
        row.extend(keys.iter().map(|k| value_text(trial.values.get(*k))));
        for k in 0..summary.rungs.len() {
            row.push(match trial.validation.get(k) {
                Some(Some(v)) => format!("{v:.5}"),
                Some(None) => "-".into(),
                None => String::new(),
            });
        }
        row.push(stopped_text(
            &trial.stopped,
            trial.stopped_at_rung,
            &summary.rungs,
        ));
        rows.push(row);
    }
    let mut text = align(&rows);
    let Some(choice) = &summary.choice else {
        text += "no trial completed: nothing chosen\n";
        return text;
    };
    let values: Vec<String> = keys
        .iter()
        .map(|k| format!("{k}={}", value_text(choice.values.get(*k))))
        .collect();
    text += &format!(
        "\nchosen on validation: {} ({}), validation {metric} {:.5}\n",
        summary.trials[choice.trial].name,
        values.join(" "),
        choice.validation
    );
    for fold in &choice.test {
        text += &format!(
            "  test {metric} {}: {} (epoch {})\n",
            fold.fold.as_deref().unwrap_or(&fold.run),
            fold.value.map(|v| format!("{v:.5}")).unwrap_or_default(),
            fold.epoch
        );
    }
    if let (Some(mean), Some(std)) = (choice.test_mean, choice.test_std) {
        // A sample std needs two runs; one run's "± 0" would claim a spread never measured.
        let spread = if choice.test.len() > 1 {
            format!(" ± {std:.5}")
        } else {
            String::new()
        };
        text += &format!(
            "test {metric}: {mean:.5}{spread} over {} (reported once; no choice read it)\n",
            crate::util::count_noun(choice.test.len(), "run")
        );
    }
    text
}

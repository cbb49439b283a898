//! What plotting reads from a run document ([`crate::schema::RunDocument`]): curves by
//! split and key, weight norms, the selected epoch, and the config as legend material.

pub use crate::model::Split;
use crate::schema::RunDocument;
use serde_json::Value;

/// Plot-side accessors of a run document.
pub trait PlotView {
    fn metric_name(&self) -> &str;
    fn lower_is_better(&self) -> bool;
    /// (epoch, value) of `split.key` over the epochs that recorded a finite value.
    fn curve(&self, split: Split, key: &str) -> Vec<(f64, f64)>;
    /// Parameter names in the order they first appear.
    fn norm_names(&self) -> Vec<String>;
    fn norm_series(&self, name: &str) -> Vec<(f64, f64)>;
    /// (epoch, test value) at the epoch chosen without the test set.
    fn selected_test(&self) -> Option<(f64, f64)>;
    /// The configuration as (key, value) pairs, for legends.
    fn config_pairs(&self) -> Vec<(String, Value)>;
    fn dataset_name(&self) -> Option<String>;
}

impl PlotView for RunDocument {
    fn metric_name(&self) -> &str {
        &self.metric.name
    }

    fn lower_is_better(&self) -> bool {
        !self.metric.higher_is_better
    }

    fn curve(&self, split: Split, key: &str) -> Vec<(f64, f64)> {
        self.series(split, key)
    }

    fn norm_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for epoch in &self.epochs {
            for name in epoch.weight_norms.keys() {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
        names
    }

    fn norm_series(&self, name: &str) -> Vec<(f64, f64)> {
        self.epochs
            .iter()
            .filter_map(|e| {
                let value = *e.weight_norms.get(name)?;
                value.is_finite().then_some((e.epoch as f64, value))
            })
            .collect()
    }

    fn selected_test(&self) -> Option<(f64, f64)> {
        let epoch = self.summary.selected_epoch?;
        let value = self.summary.selected_test(&self.metric)?;
        Some((epoch as f64, value))
    }

    fn config_pairs(&self) -> Vec<(String, Value)> {
        match serde_json::to_value(&self.config) {
            Ok(Value::Object(map)) => map.into_iter().collect(),
            _ => Vec::new(),
        }
    }

    fn dataset_name(&self) -> Option<String> {
        self.dataset["name"].as_str().map(str::to_string)
    }
}

/// What a run is, from its recorded configuration (never its file name): command, data,
/// penalty and lambda, weight decay, optimizer and learning rate.
pub fn run_title(doc: &RunDocument) -> String {
    let config = &doc.config;
    let data = doc.dataset_name().unwrap_or_else(|| {
        let data = match &config.model {
            crate::config::ModelSpec::Mf(spec) => &spec.data,
            crate::config::ModelSpec::Mlp(spec) => &spec.data,
        };
        std::path::Path::new(data)
            .file_name()
            .map_or_else(|| data.clone(), |n| n.to_string_lossy().into_owned())
    });
    let penalty = match config.penalty.kind {
        crate::regularization::PenaltyKind::None => "no penalty".to_string(),
        kind => format!("{kind} λ={}", config.penalty.lambda),
    };
    let decay = config.optimizer.weight_decay;
    let weight_decay = if decay == 0.0 {
        "no weight decay".to_string()
    } else {
        format!("weight decay {decay}")
    };
    format!(
        "{} on {data} | {penalty} | {weight_decay} | {} lr={}",
        doc.command, config.optimizer.kind, config.optimizer.lr
    )
}

/// The document's `kind` (`regulab-run`, `regulab-sweep`), or `None` when the file is not
/// JSON with a string `kind`: which loader to use, before the loader's own checks.
pub fn document_kind(path: &std::path::Path) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Header {
        kind: String,
    }
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str::<Header>(&text).ok().map(|h| h.kind)
}

//! Run documents for the unit tests: a resolved configuration with hand-made epochs, shaped
//! like the MF and MLP runs the thresholds were set on.

use crate::config::{Layer, Origin};
use crate::explain::{Finding, FindingKind, Severity};
use crate::schema::{
    EpochRecord, MetricInfo, RunDocument, RunStatus, SplitRecord, Summary, RUN_KIND, SCHEMA_VERSION,
};
use serde_json::{json, Value};

/// A document for a configuration given as flag pairs, with the dataset statistics and
/// epochs given.
pub(super) fn document(
    pairs: &[(String, Value)],
    dataset: Value,
    epochs: Vec<EpochRecord>,
) -> RunDocument {
    let mut layer = Layer::default();
    for (key, value) in pairs {
        layer.set(key, value.clone(), Origin::Flag).unwrap();
    }
    let config = layer.resolve().unwrap();
    let n = dataset["split"]["train_ratings"]
        .as_u64()
        .or(dataset["train_used"].as_u64())
        .unwrap_or(1) as usize;
    let penalty = config
        .penalty
        .resolve(n, config.training.batch_size)
        .unwrap();
    let regularization = penalty.record(
        config.optimizer.weight_decay,
        config.optimizer.weight_decay_mode(),
    );
    let trainer = config.model_kind();
    let metric = match trainer {
        crate::config::ModelKind::Mf => MetricInfo {
            name: "rmse".into(),
            higher_is_better: false,
        },
        crate::config::ModelKind::Mlp => MetricInfo {
            name: "accuracy".into(),
            higher_is_better: true,
        },
    };
    let summary = Summary::from_epochs(&epochs, &metric, 1.0);
    RunDocument {
        schema_version: SCHEMA_VERSION,
        kind: RUN_KIND.into(),
        command: trainer,
        run_id: String::new(),
        status: RunStatus::Completed,
        message: None,
        started_at: String::new(),
        updated_at: String::new(),
        argv: Vec::new(),
        config,
        dataset,
        environment: Default::default(),
        regularization,
        metric,
        epochs,
        steps: Vec::new(),
        summary,
        diagnostics: Vec::new(),
        files: Default::default(),
    }
}

pub(super) fn mf_dataset() -> Value {
    json!({"users": 943, "items": 1682, "split": {"train_ratings": 80000, "test_ratings": 20000}})
}

pub(super) fn record(pairs: &[(&str, f64)]) -> SplitRecord {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// An MF epoch: train (base, reg, rmse), test rmse, factor norms (user, item).
pub(super) fn mf_epoch(
    epoch: usize,
    train: (f64, f64, f64),
    test_rmse: f64,
    norms: (f64, f64),
) -> EpochRecord {
    let (base, reg, rmse) = train;
    EpochRecord {
        epoch,
        partial: false,
        train: record(&[
            ("base_loss", base),
            ("reg_loss", reg),
            ("total_loss", base + reg),
            ("rmse", rmse),
        ]),
        validation: None,
        test: Some(record(&[
            ("base_loss", test_rmse * test_rmse),
            ("loss", test_rmse * test_rmse),
            ("reg_loss", reg),
            ("total_loss", test_rmse * test_rmse + reg),
            ("rmse", test_rmse),
        ])),
        weight_norms: [
            ("item_bias".to_string(), 10.0),
            ("item_factors".to_string(), norms.1),
            ("user_bias".to_string(), 8.0),
            ("user_factors".to_string(), norms.0),
        ]
        .into_iter()
        .collect(),
        implied_weight_decay_loss: 0.0,
        lr: 0.01,
        seconds: 0.1,
        eval_seconds: 0.01,
    }
}

pub(super) fn kinds(findings: &[Finding]) -> Vec<(FindingKind, Severity)> {
    findings.iter().map(|f| (f.kind, f.severity)).collect()
}

pub(super) fn find(findings: &[Finding], kind: FindingKind) -> &Finding {
    findings
        .iter()
        .find(|f| f.kind == kind)
        .unwrap_or_else(|| panic!("no {kind:?} in {findings:#?}"))
}

/// Configuration pairs for `command`.
pub(super) fn with(command: &str, pairs: &[(&str, Value)]) -> Vec<(String, Value)> {
    std::iter::once(("command".to_string(), json!(command)))
        .chain(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())))
        .collect()
}

pub(super) fn mf(pairs: &[(&str, Value)]) -> Vec<(String, Value)> {
    with("mf", pairs)
}

/// Unregularized MF: test RMSE turns up after epoch 2, training keeps falling, factors grow.
pub(super) fn overfitting_epochs() -> Vec<EpochRecord> {
    let test = [1.015, 0.968, 0.974, 0.995, 1.016, 1.033];
    (1..=6)
        .map(|e| {
            let train_rmse = 0.95 - 0.06 * e as f64;
            mf_epoch(
                e,
                (train_rmse * train_rmse, 0.0, train_rmse),
                test[e - 1],
                (16.0 + 6.0 * e as f64, 21.0 + 7.0 * e as f64),
            )
        })
        .collect()
}

/// batch-l2 at λ = 0.1: the penalty first falls, then rises; the total falls throughout.
pub(super) fn batch_l2_epochs() -> Vec<EpochRecord> {
    let rows = [
        (1.08, 0.030, 0.96, 1.015, 9.5, 14.9),
        (0.89, 0.020, 0.90, 0.963, 13.8, 20.8),
        (0.80, 0.059, 0.85, 0.939, 19.2, 28.6),
        (0.74, 0.089, 0.82, 0.931, 23.0, 33.9),
        (0.66, 0.135, 0.77, 0.927, 28.3, 40.2),
        (0.59, 0.18, 0.74, 0.9273, 32.5, 44.4),
    ];
    rows.iter()
        .enumerate()
        .map(|(i, &(base, reg, rmse, test, user, item))| {
            mf_epoch(i + 1, (base, reg, rmse), test, (user, item))
        })
        .collect()
}

/// The quadratic-cost network: L2 ÷ 10,000 training images, evaluated on 2,000.
pub(super) fn mlp_doc() -> RunDocument {
    let epochs = (1..=4)
        .map(|e| {
            let w0 = 6.1 + e as f64;
            let w1 = 7.3 + e as f64;
            let squares = w0 * w0 + w1 * w1;
            let reg = 5.0 / (2.0 * 10000.0) * squares;
            let base = 0.21 - 0.02 * e as f64;
            EpochRecord {
                epoch: e,
                partial: false,
                train: record(&[
                    ("base_loss", base),
                    ("reg_loss", reg),
                    ("total_loss", base + reg),
                    ("accuracy", 0.7 + 0.03 * e as f64),
                ]),
                validation: None,
                test: Some(record(&[
                    ("base_loss", base),
                    ("loss", base),
                    ("reg_loss", reg),
                    ("total_loss", base + reg),
                    ("accuracy", 0.7 + 0.03 * e as f64),
                ])),
                weight_norms: [
                    ("l_layers.0.bias".to_string(), 1.0),
                    ("l_layers.0.weight".to_string(), w0),
                    ("l_layers.1.bias".to_string(), 1.5),
                    ("l_layers.1.weight".to_string(), w1),
                ]
                .into_iter()
                .collect(),
                implied_weight_decay_loss: 0.0,
                lr: 0.5,
                seconds: 1.0,
                eval_seconds: 0.1,
            }
        })
        .collect();
    document(
        &with(
            "mlp",
            &[
                ("data", json!("fashion-mnist")),
                ("hidden", json!("30")),
                ("activation", json!("sigmoid")),
                ("loss", json!("mse")),
                ("optimizer", json!("sgd")),
                ("lr", json!("0.5")),
                ("penalty", json!("l2")),
                ("lambda", json!("5")),
                ("batch_size", json!("10")),
            ],
        ),
        json!({"rows": 28, "cols": 28, "classes": 10, "train_used": 10000, "test_used": 2000}),
        epochs,
    )
}

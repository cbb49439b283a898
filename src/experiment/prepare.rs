//! Data and model preparation: each spec loads its data set, holds out its validation part,
//! checks the run fits in memory and builds its model, so that training never depends on
//! which spec it runs.

use super::output::check_not_input;
use crate::config::{MfSpec, MlpSpec, ModelSpec, RunConfig};
use crate::data::fingerprint::{DataFingerprint, Fingerprinter};
use crate::data::{self, mnist, RatingsSourceSpec};
use crate::failure::guarded;
use crate::memory;
use crate::model::mf::{MatrixFactorization, RankingRows, RankingSetup, TrainedRows};
use crate::model::mlp::{ImageSplits, Mlp, PixelScaling};
use crate::model::Model;
use crate::model_file::RowIds;
use crate::ranking::RankingTask;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// A model bound to its data, and what the document says about the data.
pub(super) struct Prepared {
    pub(super) model: Box<dyn Model>,
    pub(super) dataset: serde_json::Value,
    pub(super) train_examples: usize,
    pub(super) fingerprint: DataFingerprint,
    /// What a saved model needs besides its weights.
    pub(super) constants: std::collections::BTreeMap<String, f64>,
    pub(super) ids: Option<RowIds>,
    /// Why the run has the CPU threads it has (recorded in the document).
    pub(super) threads_reason: String,
}

pub(super) fn prepare(config: &RunConfig, out: &Path) -> Result<(Prepared, tch::Device)> {
    let threads = thread_choice(config);
    tch::set_num_threads(threads.threads as i32);
    let device = config.training.device.resolve()?;
    let mut prepared = match &config.model {
        ModelSpec::Mf(spec) => prepare_mf(spec, config, device, out)?,
        ModelSpec::Mlp(spec) => prepare_mlp(spec, config, device, out)?,
    };
    prepared.threads_reason = threads.reason;
    Ok((prepared, device))
}

/// The CPU threads for this run: `--threads`, or the workload's default (src/device.rs).
pub fn thread_choice(config: &RunConfig) -> crate::device::ThreadChoice {
    let workload = match &config.model {
        ModelSpec::Mf(spec) => crate::device::Workload::MatrixFactorization {
            batch_values: config.training.batch_size as u64 * spec.dim.max(1) as u64,
        },
        ModelSpec::Mlp(_) => crate::device::Workload::Mlp,
    };
    crate::device::choose_threads(
        config.training.threads,
        workload,
        crate::device::available_cores(),
    )
}

fn prepare_mf(
    spec: &MfSpec,
    config: &RunConfig,
    device: tch::Device,
    out: &Path,
) -> Result<Prepared> {
    let source = data::ratings_source(&spec.synthetic, &spec.data, spec.download)?;
    if let RatingsSourceSpec::Path(path) = &source {
        check_not_input(out, &input_files(path))?;
    }
    let seed = config.training.seed;
    let mut dataset = data::load_ratings(&source, &spec.split, seed, &spec.load)?;
    let validation = match spec.val_split {
        Some(fraction) => Some(data::split::hold_out_validation(
            &mut dataset,
            fraction,
            seed,
        )?),
        None => None,
    };
    let sizes = memory::MfSizes {
        users: dataset.num_users() as u64,
        items: dataset.num_items() as u64,
        dim: spec.dim as u64,
        ratings: (dataset.train.len() + dataset.test.len()) as u64,
        batch_size: config.training.batch_size as u64,
        eval_chunk: (crate::model::mf::eval_chunk(spec.dim) as u64)
            .min((dataset.train.len() + dataset.test.len()) as u64),
        optimizer_slots: config.optimizer.state_slots(),
    };
    check_memory(
        &memory::estimate_mf(&sizes),
        config,
        device,
        "--dim, --batch-size or the data set",
    )?;
    // torch's generator drives initial weights and batch order (see train.rs); seeding it
    // after loading keeps data preparation (its own seeded generator) out of that sequence.
    tch::manual_seed(seed as i64);
    let selection = config.training.selection_metric;
    let model = guarded("building the model", || {
        let ranking = ranking_setup(spec, selection, &dataset, validation.as_ref(), device);
        MatrixFactorization::new(
            &dataset,
            validation.as_ref(),
            spec.variant,
            spec.dim,
            spec.init_std,
            device,
        )
        .map(|model| {
            model
                .with_sparse_gradients(config.optimizer.sparse)
                .with_ranking(ranking)
                .with_selection(selection)
        })
    })?;
    let mut stats = serde_json::to_value(dataset.stats()).context("data set statistics")?;
    if let (Some(object), Some(validation)) = (stats.as_object_mut(), &validation) {
        object.insert("validation_ratings".into(), validation.len().into());
        object.insert("train_ratings_used".into(), dataset.train.len().into());
    }
    let mut fingerprint = Fingerprinter::default().ratings("train", &dataset.train);
    if let Some(validation) = &validation {
        fingerprint = fingerprint.ratings("validation", validation);
    }
    let fingerprint = fingerprint.ratings("test", &dataset.test).finish();
    // The mean the model computes from its training ratings (same op, same data).
    let global_mean = tch::Tensor::from_slice(&dataset.train.values)
        .mean(tch::Kind::Float)
        .double_value(&[]);
    Ok(Prepared {
        model: Box::new(model),
        dataset: stats,
        train_examples: dataset.train.len(),
        fingerprint,
        constants: [("global_mean".to_string(), global_mean)].into(),
        ids: Some(row_ids(&dataset)),
        threads_reason: String::new(),
    })
}

/// The ranking metrics the run records on validation and test (`metrics`, and the selection
/// metric when it is one); `None` when there are none, so that epochs cost what they did.
fn ranking_setup(
    spec: &MfSpec,
    selection: crate::model::Metric,
    dataset: &data::RatingsDataset,
    validation: Option<&data::Ratings>,
    device: tch::Device,
) -> Option<RankingSetup> {
    let metrics = spec.ranking.recorded(selection);
    if metrics.is_empty() {
        return None;
    }
    let relevance = spec.ranking.relevance;
    let (users, items) = dataset.seen_in_train();
    let rows = RankingRows::new(
        &TrainedRows { users, items },
        dataset.item_ids.raw_ids(),
        device,
    );
    let task = |ratings: &data::Ratings| {
        (!ratings.is_empty()).then(|| RankingTask::new(ratings, &dataset.train, relevance))
    };
    Some(RankingSetup {
        metrics,
        rows,
        validation: validation.and_then(task),
        test: task(&dataset.test),
    })
}

fn row_ids(dataset: &data::RatingsDataset) -> RowIds {
    let (trained_users, trained_items) = dataset.seen_in_train();
    let untrained = |trained: Vec<bool>| {
        (0..trained.len() as u32)
            .filter(|&i| !trained[i as usize])
            .collect()
    };
    RowIds {
        users: dataset.user_ids.raw_ids().to_vec(),
        items: dataset.item_ids.raw_ids().to_vec(),
        untrained_users: untrained(trained_users),
        untrained_items: untrained(trained_items),
    }
}

/// The files a data path stands for (a folder's files, or the file itself).
fn input_files(path: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(path) {
        Ok(entries) => entries.filter_map(|e| Some(e.ok()?.path())).collect(),
        Err(_) => vec![path.to_path_buf()],
    }
}

fn prepare_mlp(
    spec: &MlpSpec,
    config: &RunConfig,
    device: tch::Device,
    out: &Path,
) -> Result<Prepared> {
    let dir = mnist_dir(spec, out)?;
    let dataset = mnist::load(&dir)?;
    let pixels_per_image = dataset.rows * dataset.cols;
    let train_all = dataset.train.first(pixels_per_image, spec.limit_train);
    let test = dataset.test.first(pixels_per_image, spec.limit_test);
    let (train, validation) = match spec.val_split {
        Some(fraction) => {
            let (kept, held_out) = mnist::holdout(&train_all, 1.0 - fraction, config.training.seed);
            if kept.count == 0 || held_out.count == 0 {
                bail!("--val-split {fraction}: leaves an empty training or validation part");
            }
            (kept, Some(held_out))
        }
        None => (train_all, None),
    };
    let scaling = if spec.normalize {
        pixel_statistics(&train.images)
    } else {
        PixelScaling {
            mean: 0.0,
            std: 1.0,
        }
    };
    let mut layer_sizes = vec![pixels_per_image as u64];
    layer_sizes.extend(spec.hidden.iter().map(|&h| h as u64));
    layer_sizes.push(dataset.classes as u64);
    let images = (train.count + test.count + validation.as_ref().map_or(0, |v| v.count)) as u64;
    let sizes = memory::MlpSizes {
        layer_sizes,
        images,
        pixels: pixels_per_image as u64,
        batch_size: config.training.batch_size as u64,
        eval_chunk: 10_000,
        optimizer_slots: config.optimizer.state_slots(),
    };
    check_memory(
        &memory::estimate_mlp(&sizes),
        config,
        device,
        "--hidden, --batch-size or --limit-train",
    )?;
    tch::manual_seed(config.training.seed as i64);
    let splits = ImageSplits {
        train: &train,
        validation: validation.as_ref(),
        test: Some(&test),
        pixels_per_image,
        classes: dataset.classes,
        scaling,
    };
    let model = guarded("building the model", || {
        Mlp::new(&splits, &spec.hidden, spec.activation, spec.loss, device)
    })?;
    let mut stats = serde_json::to_value(dataset.stats()).context("data set statistics")?;
    if let Some(object) = stats.as_object_mut() {
        object.insert("train_used".into(), train.count.into());
        let validation_used = validation.as_ref().map_or(0, |v| v.count);
        object.insert("validation_used".into(), validation_used.into());
        object.insert("test_used".into(), test.count.into());
        object.insert("pixel_mean".into(), scaling.mean.into());
        object.insert("pixel_std".into(), scaling.std.into());
    }
    let mut fingerprint = Fingerprinter::default().images("train", &train);
    if let Some(validation) = &validation {
        fingerprint = fingerprint.images("validation", validation);
    }
    Ok(Prepared {
        model: Box::new(model),
        dataset: stats,
        train_examples: train.count,
        fingerprint: fingerprint.images("test", &test).finish(),
        constants: [
            ("pixel_mean".to_string(), scaling.mean),
            ("pixel_std".to_string(), scaling.std),
            // The first and last layer sizes, so a loaded model's tensors can be checked
            // against what it was trained on before any computation.
            ("pixels_per_image".to_string(), pixels_per_image as f64),
            ("classes".to_string(), dataset.classes as f64),
        ]
        .into(),
        ids: None,
        threads_reason: String::new(),
    })
}

/// The MLP's data folder, checked to be MNIST-format and not the run's output.
fn mnist_dir(spec: &MlpSpec, out: &Path) -> Result<std::path::PathBuf> {
    let dir = data::data_path(&spec.data, spec.download)?;
    if !mnist::is_idx_dir(&dir) {
        bail!(
            "--data {}: not an MNIST-format directory (needs {}, {}, {}, {}, raw or .gz)",
            dir.display(),
            mnist::TRAIN_IMAGES,
            mnist::TRAIN_LABELS,
            mnist::TEST_IMAGES,
            mnist::TEST_LABELS
        );
    }
    check_not_input(out, &input_files(&dir))?;
    Ok(dir)
}

/// Mean and standard deviation of the training pixels on the [0,1] scale (for `normalize`).
fn pixel_statistics(images: &[u8]) -> PixelScaling {
    let n = images.len().max(1) as f64;
    let mean = images.iter().map(|&p| p as f64 / 255.0).sum::<f64>() / n;
    let variance = images
        .iter()
        .map(|&p| (p as f64 / 255.0 - mean).powi(2))
        .sum::<f64>()
        / n;
    PixelScaling {
        mean,
        std: variance.sqrt().max(1e-12),
    }
}

/// Refuses a run that will not fit (CPU memory; a GPU's memory is not checked here).
fn check_memory(
    estimate: &memory::Estimate,
    config: &RunConfig,
    device: tch::Device,
    drivers: &str,
) -> Result<()> {
    let limit = match device {
        tch::Device::Cpu => memory::tightest_limit(),
        _ => None,
    };
    memory::check_against(estimate, limit, config.training.force, drivers)
}

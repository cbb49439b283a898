//! Wires a command's flags into a run: data, model, penalty, optimizer, the run document and
//! the training loop. One path serves every model (`run_model`); each command only builds its
//! data set and model.

use crate::cli::{self, MfArgs, MlpArgs, TrainArgs, TrainDefaults};
use crate::data::{self, mnist};
use crate::device::device_name;
use crate::model::mf::MatrixFactorization;
use crate::model::mlp::{ImageSplits, Mlp, PixelScaling};
use crate::model::Model;
use crate::regularization::{Penalty, PenaltyKind};
use crate::report::{self, Environment, RunDocument, RunStatus, RunWriter, SCHEMA_VERSION};
use crate::train::{self, LoopSettings, Outcome};
use anyhow::{bail, Context, Result};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;

pub const MF_DEFAULTS: TrainDefaults = TrainDefaults {
    lr: 0.01,
    batch_size: 1024,
    epochs: 20,
};

pub const MLP_DEFAULTS: TrainDefaults = TrainDefaults {
    lr: 0.001,
    batch_size: 128,
    epochs: 10,
};

/// Applies settings that must precede any torch work and resolves the device.
fn prepare_torch(args: &TrainArgs) -> Result<tch::Device> {
    if let Some(threads) = args.threads {
        tch::set_num_threads(threads as i32);
    }
    args.device.resolve()
}

pub fn run_mf(args: &MfArgs) -> Result<PathBuf> {
    let train_args = args.train.resolve(MF_DEFAULTS)?;
    let device = prepare_torch(&train_args)?;
    let source = cli::ratings_source(&args.data, &args.synthetic, args.download)?;
    let dataset = data::load_ratings(&source, &args.split, train_args.seed, &args.load.options())?;
    // torch's generator drives initial weights and batch order (see train.rs); seeding it
    // after loading keeps data preparation (its own seeded generator) out of that sequence.
    tch::manual_seed(train_args.seed as i64);
    let model = MatrixFactorization::new(&dataset, args.model, args.dim, args.init_std, device)?;
    let mut config = serde_json::to_value(args).context("serializing the configuration")?;
    merge_resolved(&mut config, &train_args)?;
    let stats = serde_json::to_value(dataset.stats()).context("serializing data set statistics")?;
    run_model(
        "mf",
        &model,
        &train_args,
        config,
        stats,
        dataset.train.len(),
    )
}

pub fn run_mlp(args: &MlpArgs) -> Result<PathBuf> {
    let train_args = args.train.resolve(MLP_DEFAULTS)?;
    if train_args.penalty == PenaltyKind::BatchL2 {
        bail!("--penalty batch-l2 is matrix factorization's per-rating penalty; for the MLP use l2, norm or l1");
    }
    let device = prepare_torch(&train_args)?;
    let dir = &cli::data_path(&args.data, args.download)?;
    if !mnist::is_idx_dir(dir) {
        bail!(
            "--data {}: not an MNIST-format directory (needs {}, {}, {}, {}, raw or .gz)",
            dir.display(),
            mnist::TRAIN_IMAGES,
            mnist::TRAIN_LABELS,
            mnist::TEST_IMAGES,
            mnist::TEST_LABELS
        );
    }
    let dataset = mnist::load(dir)?;
    let pixels_per_image = dataset.rows * dataset.cols;
    let train_all = first_images(
        &dataset.train,
        pixels_per_image,
        args.limit_train,
        "--limit-train",
    )?;
    let test = first_images(
        &dataset.test,
        pixels_per_image,
        args.limit_test,
        "--limit-test",
    )?;
    let (train, validation) = match args.val_split {
        Some(fraction) if !(fraction > 0.0 && fraction < 1.0) => {
            bail!("--val-split {fraction}: must be strictly between 0 and 1")
        }
        Some(fraction) => {
            let (kept, held_out) = mnist::holdout(&train_all, 1.0 - fraction, train_args.seed);
            if kept.count == 0 || held_out.count == 0 {
                bail!("--val-split {fraction}: leaves an empty training or validation part");
            }
            (kept, Some(held_out))
        }
        None => (train_all, None),
    };
    let scaling = if args.normalize {
        pixel_statistics(&train.images)
    } else {
        PixelScaling {
            mean: 0.0,
            std: 1.0,
        }
    };
    tch::manual_seed(train_args.seed as i64);
    let splits = ImageSplits {
        train: &train,
        validation: validation.as_ref(),
        test: Some(&test),
        pixels_per_image,
        classes: dataset.classes,
        scaling,
    };
    let model = Mlp::new(&splits, &args.hidden, args.activation, args.loss, device)?;
    let mut config = serde_json::to_value(args).context("serializing the configuration")?;
    merge_resolved(&mut config, &train_args)?;
    if let Some(object) = config.as_object_mut() {
        object.insert("pixel_mean".into(), scaling.mean.into());
        object.insert("pixel_std".into(), scaling.std.into());
    }
    let mut stats =
        serde_json::to_value(dataset.stats()).context("serializing data set statistics")?;
    if let Some(object) = stats.as_object_mut() {
        object.insert("train_used".into(), train.count.into());
        let validation_used = validation.as_ref().map(|v| v.count).unwrap_or(0);
        object.insert("validation_used".into(), validation_used.into());
        object.insert("test_used".into(), test.count.into());
    }
    run_model("mlp", &model, &train_args, config, stats, train.count)
}

/// The first `limit` images of a split (all of them without a limit).
fn first_images(
    split: &mnist::ImageSplit,
    pixels_per_image: usize,
    limit: Option<usize>,
    flag: &str,
) -> Result<mnist::ImageSplit> {
    let Some(limit) = limit else {
        return Ok(split.clone());
    };
    if limit == 0 {
        bail!("{flag} must be at least 1");
    }
    let count = limit.min(split.count);
    Ok(mnist::ImageSplit {
        images: split.images[..count * pixels_per_image].to_vec(),
        labels: split.labels[..count].to_vec(),
        count,
    })
}

/// Mean and standard deviation of the training pixels on the [0,1] scale (for `--normalize`).
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

/// Records the resolved values of the shared flags (command defaults filled in).
fn merge_resolved(config: &mut serde_json::Value, train_args: &TrainArgs) -> Result<()> {
    let resolved = serde_json::to_value(train_args)?;
    if let (Some(object), Some(resolved)) = (config.as_object_mut(), resolved.as_object()) {
        for (key, value) in resolved {
            object.insert(key.clone(), value.clone());
        }
    }
    Ok(())
}

/// Trains `model` with the shared flags and writes the run document. Returns the run's path.
pub fn run_model(
    command: &str,
    model: &dyn Model,
    args: &TrainArgs,
    mut config: serde_json::Value,
    dataset_stats: serde_json::Value,
    train_examples: usize,
) -> Result<PathBuf> {
    let device = args.device.resolve()?;
    let penalty = Penalty::new(
        args.penalty,
        args.lambda,
        args.penalty_scale,
        args.penalize_bias,
        train_examples,
        args.batch_size(),
    )?;
    let optimizer_settings = args.optimizer_settings();
    let mut optimizer = optimizer_settings.build(model.var_store())?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| report::default_run_path(command));
    if let Some(object) = config.as_object_mut() {
        object.insert("command".into(), command.into());
        object.insert("device".into(), device_name(device).into());
        object.insert("penalty_scale".into(), serde_json::to_value(penalty.scale)?);
        object.insert("out".into(), out.display().to_string().into());
    }
    let document = RunDocument {
        schema_version: SCHEMA_VERSION,
        kind: report::RUN_KIND,
        command: command.to_string(),
        status: RunStatus::Running,
        message: None,
        started_at: report::now_utc(),
        updated_at: report::now_utc(),
        config,
        dataset: dataset_stats,
        environment: Environment::collect(device),
        regularization: penalty.report(args.weight_decay, optimizer_settings.weight_decay_mode()),
        metric: model.headline_metric().key(),
        epochs: Vec::new(),
        steps: Vec::new(),
        summary: Default::default(),
    };
    let mut writer = RunWriter::new(out.clone(), document)?;
    let settings = LoopSettings {
        epochs: args.epochs(),
        batch_size: args.batch_size() as i64,
        log_every: args.log_every,
        device,
        lr: args.lr(),
        weight_decay: args.weight_decay,
        progress: train::progress_wanted(args.quiet),
    };
    // libtorch reports failures (out of memory, a device error) by panicking inside tch;
    // catching them here lets the run document record the failure instead of vanishing.
    let result =
        catch_failures(|| train::train(model, &mut optimizer, &penalty, &settings, &mut writer));
    let outcome = match result {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(error)) => {
            let message = format!("{error:#}");
            writer.finish(RunStatus::Failed, Some(message.clone()))?;
            bail!("{message} (run saved to {})", out.display());
        }
        Err(payload) => {
            let message = panic_message(payload.as_ref());
            writer.finish(RunStatus::Failed, Some(message.clone()))?;
            bail!(
                "training failed: {message} (run saved to {})",
                out.display()
            );
        }
    };
    report_outcome(&outcome, &writer, args.quiet)?;
    Ok(out)
}

thread_local! {
    /// Set while a failure is caught and reported by the caller, so the hook stays quiet.
    static FAILURE_IS_HANDLED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// libtorch reports failures (a CUDA out-of-memory, a driver error) as panics inside tch.
/// Show an uncaught one as a single error line rather than a panic report with a backtrace hint.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        if FAILURE_IS_HANDLED.with(|handled| handled.get()) {
            return;
        }
        eprintln!(
            "regulab: error: internal failure: {}",
            panic_message(info.payload())
        );
    }));
}

fn catch_failures<T>(work: impl FnOnce() -> T) -> std::thread::Result<T> {
    FAILURE_IS_HANDLED.with(|handled| handled.set(true));
    let result = std::panic::catch_unwind(AssertUnwindSafe(work));
    FAILURE_IS_HANDLED.with(|handled| handled.set(false));
    result
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown error".into());
    text.lines().next().unwrap_or("").to_string()
}

fn report_outcome(outcome: &Outcome, writer: &RunWriter, quiet: bool) -> Result<()> {
    let path = writer.path.display();
    let summary = &writer.document.summary;
    let metric = writer.document.metric;
    match outcome.status {
        RunStatus::Completed => {
            if !quiet {
                let best = summary
                    .get(&format!("best_test_{metric}"))
                    .and_then(|v| v.as_f64());
                let best_epoch = summary.get("best_epoch").and_then(|v| v.as_u64());
                match (best, best_epoch) {
                    (Some(best), Some(epoch)) => eprintln!(
                        "regulab: completed {} epochs; best test {metric} {best:.5} at epoch {epoch}; curves in {path}",
                        writer.document.epochs.len()
                    ),
                    _ => eprintln!("regulab: completed {} epochs; curves in {path}", writer.document.epochs.len()),
                }
            }
            Ok(())
        }
        RunStatus::Interrupted => {
            eprintln!(
                "regulab: {}; curves so far in {path}",
                outcome.message.as_deref().unwrap_or("interrupted")
            );
            std::process::exit(130);
        }
        _ => bail!(
            "{} (curves so far in {path})",
            outcome.message.as_deref().unwrap_or("run did not complete")
        ),
    }
}

//! Wires a command's flags into a run: data, model, penalty, optimizer, the run document and
//! the training loop. One path serves every model (`run_model`); each command only builds its
//! data set and model.

use crate::cli::{self, MfArgs, TrainArgs};
use crate::data;
use crate::device::device_name;
use crate::model::mf::MatrixFactorization;
use crate::model::Model;
use crate::regularization::Penalty;
use crate::report::{self, Environment, RunDocument, RunStatus, RunWriter, SCHEMA_VERSION};
use crate::train::{self, LoopSettings, Outcome};
use anyhow::{bail, Context, Result};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;

/// Checks the loop flags every trainer shares.
fn validate_train_args(args: &TrainArgs) -> Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    if args.epochs == 0 {
        bail!("--epochs must be at least 1");
    }
    if args.log_every == Some(0) {
        bail!("--log-every must be at least 1");
    }
    args.optimizer_settings().validate()
}

pub fn run_mf(args: &MfArgs) -> Result<()> {
    validate_train_args(&args.train)?;
    let device = args.train.device.resolve()?;
    let source = cli::ratings_source(&args.data, &args.synthetic);
    let dataset = data::load_ratings(&source, &args.split, args.train.seed)?;
    // torch's generator drives initial weights and batch order (see train.rs); seeding it
    // after loading keeps data preparation out of that sequence.
    tch::manual_seed(args.train.seed as i64);
    let model = MatrixFactorization::new(&dataset, args.model, args.dim, args.init_std, device)?;
    let config = serde_json::to_value(args).context("serializing the configuration")?;
    let stats = serde_json::to_value(dataset.stats()).context("serializing data set statistics")?;
    run_model(
        "mf",
        &model,
        &args.train,
        config,
        stats,
        dataset.train.len(),
    )?;
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
        args.batch_size,
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
        epochs: args.epochs,
        batch_size: args.batch_size as i64,
        log_every: args.log_every,
        device,
        lr: args.lr,
        weight_decay: args.weight_decay,
        progress: train::progress_wanted(args.quiet),
    };
    // libtorch reports failures (out of memory, a device error) by panicking inside tch;
    // catching them here lets the run document record the failure instead of vanishing.
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        train::train(model, &mut optimizer, &penalty, &settings, &mut writer)
    }));
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

//! Runs a [`RunConfig`]: loads its data, builds its model, penalty and optimizer, writes the
//! run document and drives the training loop. One path serves every model; each spec only
//! prepares its data set and model.

mod engine;
mod output;
mod prepare;

pub use crate::failure::install_panic_hook;
pub use prepare::thread_choice;

use crate::failure::{catch_failures, panic_text};
use output::{file_name, output_path, EarlierRun};
use prepare::{prepare, Prepared};

use crate::checkpoint::{self, Checkpoint, Checkpointer};
use crate::config::RunConfig;
use crate::interrupt::{signal_name, Interrupter};
use crate::memory;
use crate::model::Model;
use crate::model_file::{self, ModelHeader};
use crate::optim::Optimizer;
use crate::progress::{Console, ConsoleMode};
use crate::regularization::Penalty;
use crate::run_writer::{self, RunWriter};
use crate::schema::{
    load_run, CheckpointInfo, Environment, MetricInfo, ModelRole, RestoredWeights, ResumeRecord,
    RunDocument, RunFiles, RunStatus, SavedModel, StopReason, Summary, RUN_KIND, SCHEMA_VERSION,
};
use crate::train::{LoopOutcome, LoopSettings, TrainingLoop};
use crate::util::{now_utc, OutputLock};
use anyhow::{anyhow, bail, Result};
use std::path::{Path, PathBuf};

/// What a run needs besides its configuration.
pub struct RunContext<'a> {
    /// The command line, recorded in the document.
    pub argv: Vec<String>,
    pub interrupter: &'a Interrupter,
    /// Replace whatever `--out` holds (another run, another file) instead of refusing.
    pub overwrite: bool,
}

/// How a run ended, for the caller (exit codes, sweep summaries).
#[derive(Debug, Clone)]
pub struct RunResult {
    pub path: PathBuf,
    pub run_id: String,
    pub status: RunStatus,
    pub message: Option<String>,
    /// The signal that interrupted the run.
    pub signal: Option<i32>,
    pub metric: MetricInfo,
    pub summary: Summary,
}

/// A run continued from its checkpoint: the document so far and the checkpoint.
struct Resume {
    document: RunDocument,
    checkpoint: Checkpoint,
}

/// Trains one run. A run that trains and ends (completed, interrupted, diverged) is `Ok`;
/// one that cannot start or fails is `Err`, after saving its document when there is one.
///
/// `--out` may hold this same run's earlier document (same id): a finished one (completed,
/// diverged) is kept and reported, an interrupted or killed one continues from its
/// checkpoint, a failed one trains again. Anything else there is refused unless
/// `context.overwrite`.
pub fn run(config: &RunConfig, context: &RunContext) -> Result<RunResult> {
    let out = output_path(config)?;
    let lock = OutputLock::acquire(&out)?;
    let (prepared, device) = prepare(config, &out)?;
    let run_id = config.run_id(&prepared.fingerprint);
    let resume = match output::earlier_run(&out, &run_id, context.overwrite)? {
        EarlierRun::None => None,
        EarlierRun::Finished(document) => return Ok(kept(&out, *document, config)),
        // Without a checkpoint of its own it starts over.
        EarlierRun::Unfinished(document) => resumable_checkpoint(&out, &document)
            .ok()
            .and_then(|path| Checkpoint::read(&path).ok())
            .filter(|checkpoint| check_belongs(&out, &document, checkpoint).is_ok())
            .map(|checkpoint| Resume {
                checkpoint,
                document: *document,
            }),
    };
    if resume.is_none() {
        output::remove_run_files(&out);
    }
    train_and_record(config, context, prepared, (out, lock), device, resume)
}

/// A finished earlier run of the same id, reported as it is.
fn kept(out: &Path, document: RunDocument, config: &RunConfig) -> RunResult {
    if !config.output.quiet {
        crate::util::erroutln!(
            "regulab: {}: this run (id {}) already {}; kept as it is (`regulab rerun {} --out NEW.json` trains it again)",
            out.display(),
            document.run_id,
            document.status,
            out.display()
        );
    }
    RunResult {
        path: out.to_path_buf(),
        run_id: document.run_id.clone(),
        status: document.status,
        message: document.message.clone(),
        signal: None,
        metric: document.metric.clone(),
        summary: document.summary.clone(),
    }
}

/// What `regulab resume` may change in the recorded configuration: none of it is part of
/// the run's identity.
#[derive(Debug, Clone, Default)]
pub struct ResumeOverrides {
    pub quiet: Option<bool>,
    /// The same data in another place (its fingerprint must equal the checkpoint's).
    pub data: Option<String>,
    pub threads: Option<usize>,
}

/// `regulab resume`: continues an interrupted, killed or failed run from its checkpoint and
/// finishes the same document, with `overrides` applied to the recorded configuration.
pub fn resume(path: &Path, context: &RunContext, overrides: &ResumeOverrides) -> Result<RunResult> {
    let mut document = load_run(path)?;
    let checkpoint_path = resumable_checkpoint(path, &document)?;
    let lock = OutputLock::acquire(path)?;
    let checkpoint = Checkpoint::read(&checkpoint_path)?;
    check_belongs(path, &document, &checkpoint)?;
    let mut config = document.config.clone();
    config.output.out = Some(path.to_path_buf());
    if let Some(quiet) = overrides.quiet {
        config.output.quiet = quiet;
    }
    if let Some(threads) = overrides.threads {
        config.training.threads = Some(threads);
    }
    if let Some(data) = &overrides.data {
        config.set_data(data);
    }
    let (prepared, device) = prepare(&config, path)?;
    if let Some(difference) = checkpoint.data.difference(&prepared.fingerprint) {
        if let Some(data) = &overrides.data {
            bail!(
                "--data {data}: is not the data {} trained on ({difference}); resume needs the same data (another place is fine)",
                path.display()
            );
        }
        bail!(
            "{}: the data changed since the run started ({difference}); start a new run instead",
            path.display()
        );
    }
    // The document records where the data is now and the threads used from here on.
    if overrides.data.is_some() {
        document.config.set_data(config.data());
        document.dataset = prepared.dataset.clone();
    }
    document.config.training.threads = config.training.threads;
    let resume = Resume {
        document,
        checkpoint,
    };
    train_and_record(
        &config,
        context,
        prepared,
        (path.to_path_buf(), lock),
        device,
        Some(resume),
    )
}

/// The checkpoint a run can continue from, or the one-line reason it cannot.
fn resumable_checkpoint(path: &Path, document: &RunDocument) -> Result<PathBuf> {
    let shown = path.display();
    match document.status {
        RunStatus::Completed => bail!(
            "{shown}: the run completed; nothing to resume (`regulab rerun {shown}` trains it again)"
        ),
        RunStatus::Diverged => bail!(
            "{shown}: the run diverged; resuming would diverge again (rerun it with a lower learning rate: `regulab rerun {shown} --set lr=...`)"
        ),
        _ => {}
    }
    let Some(info) = &document.files.checkpoint else {
        bail!("{shown}: has no checkpoint (it ran with --checkpoint-every 0)");
    };
    let checkpoint = RunDocument::beside(path, &info.file);
    if !checkpoint.is_file() {
        bail!(
            "{shown}: its checkpoint {} is missing (the run stopped before its first checkpoint, after epoch {}, or the file was removed)",
            checkpoint.display(),
            info.every
        );
    }
    Ok(checkpoint)
}

/// Refuses a checkpoint of another run (another id) or one ahead of the document (the
/// document never recorded the epochs it holds): continuing from it would mix two runs.
fn check_belongs(path: &Path, document: &RunDocument, checkpoint: &Checkpoint) -> Result<()> {
    let shown = path.display();
    if !document.run_id.is_empty() && checkpoint.run_id != document.run_id {
        bail!(
            "{shown}: its checkpoint {} belongs to another run (id {}, this run is {}); start the run again instead",
            checkpoint.path.display(),
            if checkpoint.run_id.is_empty() { "unknown" } else { &checkpoint.run_id },
            document.run_id
        );
    }
    let recorded = document
        .epochs
        .iter()
        .filter(|e| !e.partial)
        .map(|e| e.epoch)
        .max()
        .unwrap_or(0);
    let at = checkpoint.state.epochs_done;
    if at > recorded {
        bail!(
            "{shown}: its checkpoint {} is at epoch {at}, but the document records {recorded} whole epochs; they are not from one run",
            checkpoint.path.display()
        );
    }
    Ok(())
}

fn metric_info(model: &dyn Model) -> MetricInfo {
    MetricInfo::from(model.headline_metric())
}

/// The document a run starts with: a fresh one, or a resumed run's document with the epochs
/// after its checkpoint (and any partial epoch) dropped, since they will be trained again.
fn starting_document(
    config: &RunConfig,
    context: &RunContext,
    prepared: &Prepared,
    out: &Path,
    device: tch::Device,
    penalty: &Penalty,
    resume: Option<&Resume>,
) -> RunDocument {
    if let Some(resume) = resume {
        let done = resume.checkpoint.state.epochs_done;
        let mut document = resume.document.clone();
        // Not part of the identity: the resumed run records where it pauses now.
        document.config.training.pause_after = config.training.pause_after;
        document.status = RunStatus::Running;
        document.message = None;
        document.epochs.retain(|e| !e.partial && e.epoch <= done);
        document.steps.retain(|s| s.epoch <= done);
        document.diagnostics.clear();
        document.summary = Summary::default();
        document.files.resumed.push(ResumeRecord {
            from_epoch: done,
            at: now_utc(),
        });
        return document;
    }
    let mut recorded = config.clone();
    recorded.output.out = Some(out.to_path_buf());
    let checkpoint = (config.output.checkpoint_every > 0).then(|| CheckpointInfo {
        file: file_name(&checkpoint::path_for(out)),
        every: config.output.checkpoint_every,
    });
    RunDocument {
        schema_version: SCHEMA_VERSION,
        kind: RUN_KIND.into(),
        command: config.model_kind(),
        run_id: config.run_id(&prepared.fingerprint),
        status: RunStatus::Running,
        message: None,
        started_at: now_utc(),
        updated_at: now_utc(),
        argv: context.argv.clone(),
        config: recorded,
        dataset: prepared.dataset.clone(),
        environment: Environment {
            cpu_threads_choice: prepared.threads_reason.clone(),
            ..run_writer::collect_environment(device)
        },
        regularization: penalty.record(
            config.optimizer.weight_decay,
            config.optimizer.weight_decay_mode(),
        ),
        metric: metric_info(prepared.model.as_ref()),
        epochs: Vec::new(),
        steps: Vec::new(),
        summary: Summary::default(),
        diagnostics: Vec::new(),
        files: RunFiles {
            checkpoint,
            data_fingerprint: Some(prepared.fingerprint.clone()),
            ..Default::default()
        },
    }
}

/// Weights named as the model's parameters, with the epoch they belong to.
type NamedWeights = (usize, Vec<(String, tch::Tensor)>);

/// What watches the training loop: the document's writer, the console and the checkpointer.
struct Observers {
    writer: RunWriter,
    console: Console,
    checkpointer: Checkpointer,
}

impl Observers {
    /// Writes the starting document; a resumed run's clock goes on from `prior_seconds`.
    fn start(
        config: &RunConfig,
        prepared: &Prepared,
        out: &Path,
        document: RunDocument,
        lock: OutputLock,
        prior_seconds: f64,
    ) -> Result<Self> {
        let mut writer = RunWriter::create(out.to_path_buf(), document, lock)?;
        let console = Console::new(
            ConsoleMode::detect(config.output.quiet),
            &writer.metric().name.clone(),
        );
        writer.set_prior_seconds(prior_seconds);
        let checkpointer = Checkpointer::new(
            checkpoint::path_for(out),
            config.output.checkpoint_every,
            (
                config.run_id(&prepared.fingerprint),
                prepared.fingerprint.clone(),
            ),
            prior_seconds,
        );
        Ok(Observers {
            writer,
            console,
            checkpointer,
        })
    }
}

/// Builds the penalty, optimizer and document, then trains with the writer, console and
/// checkpointer observing, and records how the run ended.
fn train_and_record(
    config: &RunConfig,
    context: &RunContext,
    prepared: Prepared,
    (out, lock): (PathBuf, OutputLock),
    device: tch::Device,
    resume: Option<Resume>,
) -> Result<RunResult> {
    let model = prepared.model.as_ref();
    let penalty = config
        .penalty
        .resolve(prepared.train_examples, config.training.batch_size)?;
    let mut optimizer = config.optimizer.build(model.var_store())?;
    let mut engine = engine::choose(config, model, &penalty, &optimizer, device)?;
    let mut document = starting_document(
        config,
        context,
        &prepared,
        &out,
        device,
        &penalty,
        resume.as_ref(),
    );
    document.environment.engine = engine.name.into();
    document.environment.engine_choice = std::mem::take(&mut engine.reason);
    let prior_seconds = resume
        .as_ref()
        .map_or(0.0, |r| r.checkpoint.elapsed_seconds);
    let mut observers = Observers::start(config, &prepared, &out, document, lock, prior_seconds)?;
    let settings = loop_settings(config, device);
    // libtorch reports failures (out of memory, a device error) by panicking inside tch;
    // catching them here lets the run document record the failure instead of vanishing.
    let result = catch_failures(|| {
        train_loop(
            model,
            &mut optimizer,
            &penalty,
            &settings,
            context.interrupter,
            resume,
            &mut observers,
            engine.step.as_mut(),
        )
    });
    let (outcome, best_weights) = match result {
        Ok(Ok(ended)) => ended,
        Ok(Err(error)) => {
            // A TchError carries libtorch's C++ frames; the document records its first line.
            let error = crate::failure::one_line(error);
            return fail(&mut observers.writer, format!("{error:#}"));
        }
        Err(payload) => {
            let message = memory::describe_failure(&panic_text(payload.as_ref()), "training");
            return fail(&mut observers.writer, message);
        }
    };
    record_outcome(
        config,
        &prepared,
        out,
        &mut observers,
        outcome,
        best_weights,
    )
}

fn loop_settings(config: &RunConfig, device: tch::Device) -> LoopSettings {
    LoopSettings {
        epochs: config.training.epochs,
        batch_size: config.training.batch_size as i64,
        log_every: config.output.log_every,
        device,
        weight_decay: config.optimizer.weight_decay,
        schedule: config.training.schedule,
        early_stop: config.training.early_stop,
        restore_best: config.training.restore_best,
        pause_after: config.training.pause_after,
    }
}

/// Restores a resumed run's model, optimizer and loop state, then runs the loop.
// The loop's parts are borrowed for its whole run: a struct for them would only rename them.
#[allow(clippy::too_many_arguments)]
fn train_loop<'a>(
    model: &'a dyn Model,
    optimizer: &'a mut Optimizer,
    penalty: &'a Penalty,
    settings: &'a LoopSettings,
    interrupter: &'a Interrupter,
    resume: Option<Resume>,
    observers: &'a mut Observers,
    fused: Option<&'a mut crate::fused_mf::FusedMfStep>,
) -> Result<(LoopOutcome, Option<NamedWeights>)> {
    let restored = match resume {
        Some(resume) => Some(resume.checkpoint.restore(model, optimizer)?),
        None => None,
    };
    let mut training = TrainingLoop::new(model, optimizer, penalty, settings, interrupter);
    if let Some((state, best_weights)) = restored {
        training.resume(state, best_weights)?;
    }
    if let Some(fused) = fused {
        training.use_fused_step(fused);
    }
    training.observe(&mut observers.writer);
    training.observe(&mut observers.console);
    training.observe(&mut observers.checkpointer);
    let outcome = training.run()?;
    Ok((outcome, training.best_weights()))
}

/// Finishes the document as the loop ended; a completed run also saves its models and no
/// longer needs its checkpoint.
fn record_outcome(
    config: &RunConfig,
    prepared: &Prepared,
    out: PathBuf,
    observers: &mut Observers,
    outcome: LoopOutcome,
    best_weights: Option<NamedWeights>,
) -> Result<RunResult> {
    let writer = &mut observers.writer;
    let (status, message, signal) = describe_outcome(&outcome);
    // A quiet run that pauses (a tune's trial waiting at a rung) did what it was asked.
    let quiet_pause = config.output.quiet && matches!(outcome, LoopOutcome::Paused { .. });
    if let LoopOutcome::Completed {
        stopped_early,
        restored,
    } = outcome
    {
        let final_epoch = record_stop(&mut writer.document, stopped_early, restored);
        let saved = final_epoch.map_or(Ok(Vec::new()), |epoch| {
            save_models(config, prepared, &out, epoch, best_weights)
        });
        match saved {
            Ok(models) => writer.document.files.models = models,
            Err(error) => return fail(writer, format!("{error:#}")),
        }
        observers.checkpointer.remove();
        // The document must not name a file that no longer exists.
        writer.document.files.checkpoint = None;
    }
    writer.finish(status, message.clone())?;
    let result = RunResult {
        path: out,
        run_id: writer.document.run_id.clone(),
        status,
        message,
        signal,
        metric: writer.document.metric.clone(),
        summary: writer.document.summary.clone(),
    };
    if !quiet_pause {
        print_ending(config, &result, &writer.document);
    }
    Ok(result)
}

/// Records why a completed run stopped and which weights it kept; returns the epoch its
/// final weights belong to (none when it trained no whole epoch).
fn record_stop(
    document: &mut RunDocument,
    stopped_early: Option<usize>,
    restored: Option<RestoredWeights>,
) -> Option<usize> {
    let final_epoch = restored.as_ref().map(|r| r.epoch).or_else(|| {
        document
            .epochs
            .iter()
            .rev()
            .find(|e| !e.partial)
            .map(|e| e.epoch)
    });
    let summary = &mut document.summary;
    summary.stop_reason = Some(if stopped_early.is_some() {
        StopReason::EarlyStop
    } else {
        StopReason::Epochs
    });
    summary.restored = restored;
    final_epoch
}

/// A quiet run says nothing when it completes, but always says why it did not.
fn print_ending(config: &RunConfig, result: &RunResult, document: &RunDocument) {
    if !config.output.quiet || result.status != RunStatus::Completed {
        crate::util::erroutln!("{}", final_line(result, document));
    }
    // The findings' titles only; `regulab explain` prints their evidence and advice.
    if !config.output.quiet && !document.diagnostics.is_empty() {
        crate::util::errout!(
            "regulab: findings (evidence and advice: regulab explain {}):\n{}",
            result.path.display(),
            crate::explain::render_titles(&document.diagnostics)
        );
    }
}

/// Writes the final weights and, with a validation split, the selected epoch's weights.
fn save_models(
    config: &RunConfig,
    prepared: &Prepared,
    out: &Path,
    final_epoch: usize,
    selected: Option<NamedWeights>,
) -> Result<Vec<SavedModel>> {
    let final_weights: Vec<(String, tch::Tensor)> = prepared
        .model
        .parameters()
        .into_iter()
        .map(|p| (p.name, p.tensor))
        .collect();
    let mut saved = Vec::new();
    let mut models = vec![(ModelRole::Final, final_epoch, final_weights)];
    if let Some((epoch, weights)) = selected {
        models.push((ModelRole::Selected, epoch, weights));
    }
    for (role, epoch, weights) in models {
        let path = model_file::path_for(out, role);
        let header = ModelHeader {
            format_version: model_file::FORMAT_VERSION,
            role,
            epoch,
            run_id: config.run_id(&prepared.fingerprint),
            config: config.clone(),
            constants: prepared.constants.clone(),
            ids: prepared.ids.clone(),
        };
        model_file::write(&path, &weights, &header)?;
        saved.push(SavedModel {
            role,
            file: file_name(&path),
            epoch,
        });
    }
    Ok(saved)
}

fn fail(writer: &mut RunWriter, message: String) -> Result<RunResult> {
    writer.finish(RunStatus::Failed, Some(message.clone()))?;
    Err(anyhow!(
        "{message} (run saved to {})",
        writer.path.display()
    ))
}

fn describe_outcome(outcome: &LoopOutcome) -> (RunStatus, Option<String>, Option<i32>) {
    match *outcome {
        LoopOutcome::Completed { .. } => (RunStatus::Completed, None, None),
        LoopOutcome::Interrupted {
            signal,
            during_epoch,
            steps_done,
        } => {
            let when = if steps_done == 0 {
                format!("before epoch {during_epoch} trained a step")
            } else {
                format!("during epoch {during_epoch} after {steps_done} steps (recorded as a partial epoch)")
            };
            let message = format!("interrupted by {} {when}", signal_name(signal));
            (RunStatus::Interrupted, Some(message), Some(signal))
        }
        LoopOutcome::Paused { epoch } => (
            RunStatus::Interrupted,
            Some(format!(
                "paused after epoch {epoch} (pause_after); the same run with a later pause_after, or none, continues it"
            )),
            None,
        ),
        LoopOutcome::Diverged { epoch, total_loss } => (
            RunStatus::Diverged,
            Some(format!(
                "diverged in epoch {epoch}: total loss is {total_loss}; lower --lr or the penalty strength"
            )),
            None,
        ),
    }
}

/// The line a run ends with: the selected result, never a test-chosen "best".
fn final_line(result: &RunResult, document: &RunDocument) -> String {
    let path = result.path.display();
    let metric = &result.metric.name;
    let summary = &result.summary;
    match result.status {
        RunStatus::Completed => {
            let selected = summary.selected_test(&result.metric);
            let how = match summary.selection {
                crate::schema::Selection::Validation => "best validation epoch",
                crate::schema::Selection::Last => "last epoch",
            };
            match (selected, summary.selected_epoch) {
                (Some(value), Some(epoch)) => format!(
                    "regulab: completed {} epochs; test {metric} {value:.5} at epoch {epoch} ({how}); curves in {path}",
                    document.epochs.len()
                ),
                _ => format!("regulab: completed {} epochs; curves in {path}", document.epochs.len()),
            }
        }
        _ => format!(
            "regulab: {}; curves so far in {path}",
            result.message.as_deref().unwrap_or("run did not complete")
        ),
    }
}

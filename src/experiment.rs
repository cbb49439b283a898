//! Runs a [`RunConfig`]: loads its data, builds its model, penalty and optimizer, writes the
//! run document and drives the training loop. One path serves every model; each task only
//! prepares its data set and model.

use crate::checkpoint::{self, Checkpoint, Checkpointer};
use crate::config::{MfTask, MlpTask, RunConfig, Task};
use crate::data::fingerprint::{DataFingerprint, Fingerprinter};
use crate::data::{self, mnist, RatingsSourceSpec};
use crate::interrupt::{signal_name, Interrupter};
use crate::memory;
use crate::model::mf::MatrixFactorization;
use crate::model::mlp::{ImageSplits, Mlp, PixelScaling};
use crate::model::Model;
use crate::model_file::{self, ModelHeader, RowIds};
use crate::progress::{Console, ConsoleMode};
use crate::report::{self, RunWriter};
use crate::schema::{
    load_run, CheckpointInfo, Environment, MetricInfo, ModelRole, ResumeRecord, RunDocument,
    RunFiles, RunStatus, SavedModel, Summary, RUN_KIND, SCHEMA_VERSION,
};
use crate::train::{LoopOutcome, LoopSettings, Trainer};
use anyhow::{anyhow, bail, Context, Result};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

/// What a run needs besides its configuration.
pub struct RunContext<'a> {
    /// The command line, recorded in the document.
    pub argv: Vec<String>,
    pub interrupter: &'a Interrupter,
}

/// How a run ended, for the caller (exit codes, sweep summaries).
#[derive(Debug, Clone)]
pub struct RunResult {
    pub path: PathBuf,
    pub status: RunStatus,
    pub message: Option<String>,
    /// The signal that interrupted the run.
    pub signal: Option<i32>,
    pub metric: MetricInfo,
    pub summary: Summary,
}

/// A model bound to its data, and what the document says about the data.
struct Prepared {
    model: Box<dyn Model>,
    dataset: serde_json::Value,
    train_examples: usize,
    fingerprint: DataFingerprint,
    /// What a saved model needs besides its weights.
    constants: std::collections::BTreeMap<String, f64>,
    ids: Option<RowIds>,
    /// Why the run has the CPU threads it has (recorded in the document).
    threads_reason: String,
}

/// A run continued from its checkpoint: the document so far and the checkpoint.
struct Resume {
    document: RunDocument,
    checkpoint: Checkpoint,
}

/// Trains one run. A run that trains and ends (completed, interrupted, diverged) is `Ok`;
/// one that cannot start or fails is `Err`, after saving its document when there is one.
pub fn run(config: &RunConfig, context: &RunContext) -> Result<RunResult> {
    let out = output_path(config)?;
    let lock = report::OutputLock::acquire(&out)?;
    let (prepared, device) = prepare(config, &out)?;
    train_and_record(config, context, prepared, (out, lock), device, None)
}

fn prepare(config: &RunConfig, out: &Path) -> Result<(Prepared, tch::Device)> {
    let threads = thread_choice(config);
    tch::set_num_threads(threads.threads as i32);
    let device = config.training.device.resolve()?;
    let mut prepared = match &config.task {
        Task::Mf(task) => prepare_mf(task, config, device, out)?,
        Task::Mlp(task) => prepare_mlp(task, config, device, out)?,
    };
    prepared.threads_reason = threads.reason;
    Ok((prepared, device))
}

/// `regulab resume`: continues an interrupted, killed or failed run from its checkpoint and
/// finishes the same document. `quiet` overrides the recorded setting.
pub fn resume(path: &Path, context: &RunContext, quiet: Option<bool>) -> Result<RunResult> {
    let document = load_run(path)?;
    let checkpoint_path = resumable_checkpoint(path, &document)?;
    let lock = report::OutputLock::acquire(path)?;
    let checkpoint = Checkpoint::read(&checkpoint_path)?;
    let mut config = document.config.clone();
    config.output.out = Some(path.to_path_buf());
    if let Some(quiet) = quiet {
        config.output.quiet = quiet;
    }
    let (prepared, device) = prepare(&config, path)?;
    if let Some(difference) = checkpoint.data.difference(&prepared.fingerprint) {
        bail!(
            "{}: the data changed since the run started ({difference}); start a new run instead",
            path.display()
        );
    }
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

/// The CPU threads for this run: `--threads`, or the workload's default (src/device.rs).
pub fn thread_choice(config: &RunConfig) -> crate::device::ThreadChoice {
    let workload = match &config.task {
        Task::Mf(task) => crate::device::Workload::MatrixFactorization {
            batch_values: config.training.batch_size as u64 * task.dim.max(1) as u64,
        },
        Task::Mlp(_) => crate::device::Workload::Mlp,
    };
    crate::device::choose_threads(
        config.training.threads,
        workload,
        crate::device::available_cores(),
    )
}

/// The run document's path: the configured one or `runs/<time>-<command>.json`, checked
/// before any data is read.
fn output_path(config: &RunConfig) -> Result<PathBuf> {
    let out = config
        .output
        .out
        .clone()
        .unwrap_or_else(|| report::default_run_path(&config.trainer().to_string()));
    if out.is_dir() {
        bail!(
            "--out {}: is a folder; name the run document's file",
            out.display()
        );
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| {
            format!(
                "--out {}: cannot create folder {}",
                out.display(),
                parent.display()
            )
        })?;
    }
    Ok(out)
}

/// Refuses an output that would overwrite the data it reads.
fn check_not_input(out: &Path, inputs: &[PathBuf]) -> Result<()> {
    let Ok(out_real) = out.canonicalize() else {
        return Ok(()); // does not exist yet: cannot be an input
    };
    for input in inputs {
        if input.canonicalize().is_ok_and(|i| i == out_real) {
            bail!(
                "--out {}: is an input data file; name another path for the run document",
                out.display()
            );
        }
    }
    Ok(())
}

/// Resolves a `--data` value: a known data set name through the cache (fetched with
/// `download`), or the value itself as a path.
pub fn data_path(data: &str, download: bool) -> Result<PathBuf> {
    let mut options = data::fetch::FetchOptions::from_env()?;
    options.progress = true;
    Ok(
        data::fetch::resolve_named(data, download, &options)?
            .unwrap_or_else(|| PathBuf::from(data)),
    )
}

/// Where an MF task's ratings come from when read from `data` (`synthetic` means the task's
/// own generator settings).
pub fn ratings_source(task: &MfTask, data: &str, download: bool) -> Result<RatingsSourceSpec> {
    Ok(if data == "synthetic" {
        RatingsSourceSpec::Synthetic(task.synthetic.clone())
    } else {
        RatingsSourceSpec::Path(data_path(data, download)?)
    })
}

fn prepare_mf(
    task: &MfTask,
    config: &RunConfig,
    device: tch::Device,
    out: &Path,
) -> Result<Prepared> {
    let source = ratings_source(task, &task.data, task.download)?;
    if let RatingsSourceSpec::Path(path) = &source {
        check_not_input(out, &input_files(path))?;
    }
    let seed = config.training.seed;
    let mut dataset = data::load_ratings(&source, &task.split, seed, &task.load)?;
    let validation = match task.val_split {
        Some(fraction) => Some(hold_out_validation(&mut dataset, fraction, seed)?),
        None => None,
    };
    let sizes = memory::MfSizes {
        users: dataset.num_users() as u64,
        items: dataset.num_items() as u64,
        dim: task.dim as u64,
        ratings: (dataset.train.len() + dataset.test.len()) as u64,
        batch_size: config.training.batch_size as u64,
        eval_chunk: (crate::model::mf::eval_chunk(task.dim) as u64)
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
    let model = guarded("building the model", || {
        MatrixFactorization::new(
            &dataset,
            validation.as_ref(),
            task.variant,
            task.dim,
            task.init_std,
            device,
        )
        .map(|model| model.with_sparse_gradients(config.optimizer.sparse))
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

/// Moves a seeded `fraction` of the training ratings into a validation part; the test part
/// is never touched. Its own seed stream keeps it independent of a random train/test split.
fn hold_out_validation(
    dataset: &mut data::RatingsDataset,
    fraction: f64,
    seed: u64,
) -> Result<data::Ratings> {
    let validation_seed = seed ^ 0x7661_6c69_6461_7465; // "validate"
    let (kept, held_out) = data::split::holdout(
        &dataset.train,
        &data::SplitSpec::Random(1.0 - fraction),
        validation_seed,
    )?;
    if kept.is_empty() || held_out.is_empty() {
        bail!("--val-split {fraction}: leaves an empty training or validation part");
    }
    dataset.train = kept;
    Ok(held_out)
}

/// The files a data path stands for (a folder's files, or the file itself).
fn input_files(path: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(path) {
        Ok(entries) => entries.filter_map(|e| Some(e.ok()?.path())).collect(),
        Err(_) => vec![path.to_path_buf()],
    }
}

fn prepare_mlp(
    task: &MlpTask,
    config: &RunConfig,
    device: tch::Device,
    out: &Path,
) -> Result<Prepared> {
    let dir = data_path(&task.data, task.download)?;
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
    let dataset = mnist::load(&dir)?;
    let pixels_per_image = dataset.rows * dataset.cols;
    let train_all = dataset.train.first(pixels_per_image, task.limit_train);
    let test = dataset.test.first(pixels_per_image, task.limit_test);
    let (train, validation) = match task.val_split {
        Some(fraction) => {
            let (kept, held_out) = mnist::holdout(&train_all, 1.0 - fraction, config.training.seed);
            if kept.count == 0 || held_out.count == 0 {
                bail!("--val-split {fraction}: leaves an empty training or validation part");
            }
            (kept, Some(held_out))
        }
        None => (train_all, None),
    };
    let scaling = if task.normalize {
        pixel_statistics(&train.images)
    } else {
        PixelScaling {
            mean: 0.0,
            std: 1.0,
        }
    };
    let mut layer_sizes = vec![pixels_per_image as u64];
    layer_sizes.extend(task.hidden.iter().map(|&h| h as u64));
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
        Mlp::new(&splits, &task.hidden, task.activation, task.loss, device)
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
        ]
        .into(),
        ids: None,
        threads_reason: String::new(),
    })
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
    let available = match device {
        tch::Device::Cpu => memory::available_bytes(),
        _ => None,
    };
    memory::check(estimate, available, config.training.force, drivers)
}

/// Runs `work`, turning a libtorch failure (reported as a panic inside tch) into one line.
fn guarded<T>(during: &str, work: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_failures(work) {
        Ok(result) => result,
        Err(payload) => Err(anyhow!(
            "{}",
            memory::describe_failure(&panic_text(payload.as_ref()), during)
        )),
    }
}

fn metric_info(model: &dyn Model) -> MetricInfo {
    let metric = model.headline_metric();
    MetricInfo {
        name: metric.key().into(),
        higher_is_better: metric.higher_is_better(),
    }
}

/// The document a run starts with: a fresh one, or a resumed run's document with the epochs
/// after its checkpoint (and any partial epoch) dropped, since they will be trained again.
fn starting_document(
    config: &RunConfig,
    context: &RunContext,
    prepared: &Prepared,
    out: &Path,
    device: tch::Device,
    penalty: &crate::regularization::Penalty,
    resume: Option<&Resume>,
) -> RunDocument {
    if let Some(resume) = resume {
        let done = resume.checkpoint.state.epochs_done;
        let mut document = resume.document.clone();
        document.status = RunStatus::Running;
        document.message = None;
        document.epochs.retain(|e| !e.partial && e.epoch <= done);
        document.steps.retain(|s| s.epoch <= done);
        document.diagnostics.clear();
        document.summary = Summary::default();
        document.files.resumed.push(ResumeRecord {
            from_epoch: done,
            at: report::now_utc(),
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
        command: config.trainer(),
        status: RunStatus::Running,
        message: None,
        started_at: report::now_utc(),
        updated_at: report::now_utc(),
        argv: context.argv.clone(),
        config: recorded,
        dataset: prepared.dataset.clone(),
        environment: Environment {
            cpu_threads_choice: prepared.threads_reason.clone(),
            ..report::collect_environment(device)
        },
        regularization: penalty.report(
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

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Weights named as the model's parameters, with the epoch they belong to.
type NamedWeights = (usize, Vec<(String, tch::Tensor)>);

/// Builds the penalty, optimizer and document, then trains with the writer, console and
/// checkpointer observing, and records how the run ended.
fn train_and_record(
    config: &RunConfig,
    context: &RunContext,
    prepared: Prepared,
    (out, lock): (PathBuf, report::OutputLock),
    device: tch::Device,
    resume: Option<Resume>,
) -> Result<RunResult> {
    let model = prepared.model.as_ref();
    let penalty = config
        .penalty
        .resolve(prepared.train_examples, config.training.batch_size)?;
    let mut optimizer = config.optimizer.build(model.var_store())?;
    let document = starting_document(
        config,
        context,
        &prepared,
        &out,
        device,
        &penalty,
        resume.as_ref(),
    );
    let mut writer = RunWriter::create(out.clone(), document, lock)?;
    let mut console = Console::new(
        ConsoleMode::detect(config.output.quiet),
        &writer.metric().name.clone(),
    );
    let prior_seconds = resume
        .as_ref()
        .map_or(0.0, |r| r.checkpoint.elapsed_seconds);
    writer.set_prior_seconds(prior_seconds);
    let mut checkpointer = Checkpointer::new(
        checkpoint::path_for(&out),
        config.output.checkpoint_every,
        prepared.fingerprint.clone(),
        prior_seconds,
    );
    let settings = LoopSettings {
        epochs: config.training.epochs,
        batch_size: config.training.batch_size as i64,
        log_every: config.output.log_every,
        device,
        weight_decay: config.optimizer.weight_decay,
        schedule: config.training.schedule,
        early_stop: config.training.early_stop,
        restore_best: config.training.restore_best,
    };
    // libtorch reports failures (out of memory, a device error) by panicking inside tch;
    // catching them here lets the run document record the failure instead of vanishing.
    let result = catch_failures(|| -> Result<(LoopOutcome, Option<NamedWeights>)> {
        let restored = match resume {
            Some(resume) => Some(resume.checkpoint.restore(model, &mut optimizer)?),
            None => None,
        };
        let mut trainer = Trainer::new(
            model,
            &mut optimizer,
            &penalty,
            &settings,
            context.interrupter,
        );
        if let Some((state, best_weights)) = restored {
            trainer.resume(state, best_weights)?;
        }
        trainer.observe(&mut writer);
        trainer.observe(&mut console);
        trainer.observe(&mut checkpointer);
        let outcome = trainer.run()?;
        Ok((outcome, trainer.best_weights()))
    });
    let (outcome, best_weights) = match result {
        Ok(Ok(ended)) => ended,
        Ok(Err(error)) => return fail(&mut writer, format!("{error:#}")),
        Err(payload) => {
            let message = memory::describe_failure(&panic_text(payload.as_ref()), "training");
            return fail(&mut writer, message);
        }
    };
    let (status, message, signal) = describe_outcome(&outcome);
    if let LoopOutcome::Completed {
        stopped_early,
        restored,
    } = outcome
    {
        let final_epoch = restored.as_ref().map(|r| r.epoch).or_else(|| {
            writer
                .document
                .epochs
                .iter()
                .rev()
                .find(|e| !e.partial)
                .map(|e| e.epoch)
        });
        let summary = &mut writer.document.summary;
        summary.stop_reason = Some(
            if stopped_early.is_some() {
                "early_stop"
            } else {
                "epochs"
            }
            .into(),
        );
        summary.restored = restored;
        let saved = final_epoch.map_or(Ok(Vec::new()), |epoch| {
            save_models(config, &prepared, &out, epoch, best_weights)
        });
        match saved {
            Ok(models) => writer.document.files.models = models,
            Err(error) => return fail(&mut writer, format!("{error:#}")),
        }
        checkpointer.remove();
    }
    writer.finish(status, message.clone())?;
    let result = RunResult {
        path: out,
        status,
        message,
        signal,
        metric: writer.document.metric.clone(),
        summary: writer.document.summary.clone(),
    };
    if !config.output.quiet || status != RunStatus::Completed {
        eprintln!("{}", final_line(&result, &writer.document));
    }
    // The findings' titles only; `regulab explain` prints their evidence and advice.
    if !config.output.quiet && !writer.document.diagnostics.is_empty() {
        eprint!(
            "regulab: findings (evidence and advice: regulab explain {}):\n{}",
            result.path.display(),
            crate::explain::render_titles(&writer.document.diagnostics)
        );
    }
    Ok(result)
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

/// The whole text of a panic (a libtorch error includes its C++ frames).
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown error".into())
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    memory::describe_failure(&panic_text(payload), "running")
}

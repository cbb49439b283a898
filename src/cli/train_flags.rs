//! The trainers' flags (`mf`, `mlp`, and `sweep`'s lists of them) and their conversion into
//! configuration layers. Values stay text here: parsing and checking happen in `config`.

use crate::config::{self, Layer, ModelKind, Origin, SweepAxis};
use crate::sweep::{Executor, SlurmOptions, SweepPlan};
use anyhow::{bail, Context, Result};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args};
use serde_json::Value;
use std::path::PathBuf;

/// Flags shared by every trainer: data, optimizer, penalty, loop and output.
#[derive(Debug, Clone, Args)]
pub struct CommonFlags {
    /// Replace what --out holds (another run's document, any other file) instead of refusing;
    /// without it a path may hold only this same run's earlier document
    #[arg(long)]
    pub overwrite: bool,
    /// A config file (TOML or JSON) with these flags as keys; flags given here override it
    #[arg(long, value_name = "FILE.toml")]
    pub config: Option<PathBuf>,
    /// Override a key after the file and the flags: --set lambda=0.1 (repeatable)
    #[arg(long, value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Fetch a named data set that is not cached yet (as `regulab data fetch NAME`)
    #[arg(long)]
    pub download: bool,
    /// Optimizer, torch.optim semantics: sgd, adam, adamw, rmsprop
    #[arg(long, value_name = "NAME")]
    pub optimizer: Option<String>,
    /// Learning rate
    #[arg(long, allow_negative_numbers = true, value_name = "LR")]
    pub lr: Option<String>,
    /// Momentum (sgd, rmsprop)
    #[arg(long, allow_negative_numbers = true, value_name = "M")]
    pub momentum: Option<String>,
    /// Nesterov momentum (sgd)
    #[arg(long)]
    pub nesterov: bool,
    /// Dampening for momentum (sgd)
    #[arg(long, allow_negative_numbers = true, value_name = "D")]
    pub dampening: Option<String>,
    /// Adam/AdamW coefficients of the running averages, B1,B2
    #[arg(long, allow_negative_numbers = true, value_name = "B1,B2")]
    pub betas: Option<String>,
    /// Term added to the denominator (adam, adamw, rmsprop)
    #[arg(long, allow_negative_numbers = true, value_name = "EPS")]
    pub eps: Option<String>,
    /// AMSGrad variant (adam, adamw)
    #[arg(long)]
    pub amsgrad: bool,
    /// Smoothing constant (rmsprop)
    #[arg(long, allow_negative_numbers = true, value_name = "ALPHA")]
    pub alpha: Option<String>,
    /// Centered RMSprop (normalize by the gradient's estimated variance)
    #[arg(long)]
    pub centered: bool,
    /// Optimizer weight decay: coupled L2 for sgd/adam/rmsprop, decoupled for adamw. Adds nothing
    /// to the loss; its implied term (wd/2)*sum||W||^2 is reported as implied_weight_decay_loss
    #[arg(long, allow_negative_numbers = true, value_name = "WD")]
    pub weight_decay: Option<String>,
    /// Penalty added to the minibatch loss: none, batch-l2 (per-batch L2 on the rows used),
    /// frobenius or l2 (L2 over the data set size), norm (unsquared torch.norm), l1
    #[arg(long, value_name = "FORM")]
    pub penalty: Option<String>,
    /// Penalty strength
    #[arg(long = "lambda", allow_negative_numbers = true, value_name = "LAMBDA")]
    pub lambda: Option<String>,
    /// Divisor of the penalty: dataset, batch or none [default: the form's own]
    #[arg(long, value_name = "SCALE")]
    pub penalty_scale: Option<String>,
    /// Apply the penalty to bias vectors too (default: weights/factors only)
    #[arg(long)]
    pub penalize_bias: bool,
    /// Minibatch size
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub batch_size: Option<String>,
    /// Number of epochs
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub epochs: Option<String>,
    /// Seed for initial weights, batch order and random splits
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub seed: Option<String>,
    /// auto (CUDA when available), cpu, cuda or cuda:N
    #[arg(long, value_name = "DEVICE")]
    pub device: Option<String>,
    /// Run JSON path [default: runs/<time>-<command>.json]
    #[arg(long, value_name = "FILE.json")]
    pub out: Option<String>,
    /// Also record base/reg/total loss every N optimizer steps (the `steps` array)
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub log_every: Option<String>,
    /// No progress bar or per-epoch lines
    #[arg(long)]
    pub quiet: bool,
    /// CPU threads for torch [default: mf 1 (batch size x K up to 131072), mlp the cores; the
    /// choice and its reason are recorded as environment.cpu_threads_choice]
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub threads: Option<String>,
    /// Train even when the run's memory estimate exceeds the memory available
    #[arg(long)]
    pub force: bool,
    /// Learning-rate schedule, stepped every epoch as torch.optim.lr_scheduler: constant,
    /// step:EVERY:GAMMA (StepLR), cosine (CosineAnnealingLR over the epochs),
    /// plateau:PATIENCE:FACTOR (ReduceLROnPlateau on the validation metric)
    #[arg(long, value_name = "SCHEDULE")]
    pub lr_schedule: Option<String>,
    /// Stop when the validation metric has not improved for this many epochs (needs --val-split)
    #[arg(long, allow_negative_numbers = true, value_name = "PATIENCE")]
    pub early_stop: Option<String>,
    /// Smallest change of the validation metric that counts as an improvement [default: 0]
    #[arg(long, allow_negative_numbers = true, value_name = "D")]
    pub min_delta: Option<String>,
    /// At the end, put back the best validation epoch's weights and measure them again
    #[arg(long)]
    pub restore_best: bool,
    /// The metric that chooses the reported epoch and drives --early-stop, --restore-best
    /// and plateau schedules: mf rmse, mae or a ranking metric (ndcg@10, ...; recorded on
    /// validation and test); mlp accuracy [default: mf rmse, mlp accuracy]
    #[arg(long, value_name = "METRIC")]
    pub selection_metric: Option<String>,
    /// Write a checkpoint (weights, optimizer state, position) beside the run document every
    /// N epochs, for `regulab resume`; 0 writes none. Removed when the run completes
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub checkpoint_every: Option<String>,
    /// End the run after epoch E as interrupted, with a checkpoint, so that the same command
    /// with a later E (or none) continues it; not part of the run's identity
    #[arg(long, allow_negative_numbers = true, value_name = "E")]
    pub pause_after: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct MfFlags {
    /// `synthetic`, a data set name (ml-100k, ml-1m, ...; see `data list`), a MovieLens
    /// directory or a ratings file
    #[arg(long, value_name = "DATA")]
    pub data: Option<String>,
    /// Train/test split: u1..u5, ua, ub (ml-100k), random:F, user:F, none
    #[arg(long, value_name = "SPLIT")]
    pub split: Option<String>,
    /// Repeated (user, item) ratings: error, keep-first, keep-last or mean
    #[arg(long, value_name = "POLICY")]
    pub duplicates: Option<String>,
    /// Valid ratings, inclusive, MIN,MAX [default: the MovieLens scale, 1..5 for ml-100k,
    /// 0.5..5 for ratings.dat and ratings.csv]
    #[arg(long, value_name = "MIN,MAX", allow_hyphen_values = true)]
    pub rating_range: Option<String>,
    /// biased: mu + b_u + b_i + p_u.q_i; plain: u_i.v_j
    #[arg(long, value_name = "VARIANT")]
    pub model: Option<String>,
    /// Latent dimension K
    #[arg(long, allow_negative_numbers = true, value_name = "K")]
    pub dim: Option<String>,
    /// Standard deviation of the initial factors (biases start at zero)
    #[arg(long, allow_negative_numbers = true, value_name = "STD")]
    pub init_std: Option<String>,
    /// Row-sparse training, as nn.Embedding(sparse=True): gradients and updates only for the
    /// rows a batch uses; sgd (no momentum) or adam as torch.optim.SparseAdam; penalty
    /// batch-l2 or none, no weight decay
    #[arg(long)]
    pub sparse: bool,
    /// How training steps are computed: auto (the fused CPU step where it applies and its
    /// self-check passed, else autograd), autograd (the reference) or fused (one call per
    /// batch, CPU only; refused elsewhere)
    #[arg(long, value_name = "ENGINE")]
    pub engine: Option<String>,
    /// Synthetic: number of users
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub synthetic_users: Option<String>,
    /// Synthetic: number of items
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub synthetic_items: Option<String>,
    /// Synthetic: number of ratings, distinct user-item pairs
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub synthetic_ratings: Option<String>,
    /// Synthetic: rank of the planted model
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub synthetic_rank: Option<String>,
    /// Synthetic: standard deviation of the rating noise, the test RMSE floor
    #[arg(long, allow_negative_numbers = true, value_name = "STD")]
    pub synthetic_noise: Option<String>,
    /// Synthetic: generator seed
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub synthetic_seed: Option<String>,
    /// Hold out this fraction of the training ratings (seeded; of uN.base with official
    /// splits) as a validation curve that chooses the reported epoch; test is never touched
    #[arg(long, allow_negative_numbers = true, value_name = "F")]
    pub val_split: Option<String>,
    /// Ranking metrics recorded on validation and test each epoch, comma separated:
    /// precision@K, recall@K, ndcg@K, hit@K (defined as in `regulab eval --help`; rmse and
    /// mae are always recorded)
    #[arg(long, value_name = "LIST")]
    pub metrics: Option<String>,
    /// Ranking metrics: ratings at or above this are relevant [default: 4]
    #[arg(long, allow_negative_numbers = true, value_name = "R")]
    pub relevance: Option<String>,
    #[command(flatten)]
    pub common: CommonFlags,
}

#[derive(Debug, Clone, Args)]
pub struct MlpFlags {
    /// `mnist`, `fashion-mnist` (from the cache) or an MNIST-format directory
    /// (train-images-idx3-ubyte, ... raw or .gz); required
    #[arg(long, value_name = "DATA")]
    pub data: Option<String>,
    /// Hidden layer sizes, comma separated
    #[arg(long, value_name = "SIZES")]
    pub hidden: Option<String>,
    /// Hidden-layer activation: relu, sigmoid, tanh
    #[arg(long, value_name = "NAME")]
    pub activation: Option<String>,
    /// ce: cross-entropy; mse: the quadratic cost 1/2||sigmoid(z) - onehot(y)||^2
    #[arg(long, value_name = "NAME")]
    pub loss: Option<String>,
    /// Standardize pixels with the training set's mean and standard deviation
    #[arg(long)]
    pub normalize: bool,
    /// Hold out this fraction of the training images (seeded) as a validation curve that
    /// chooses the reported epoch
    #[arg(long, allow_negative_numbers = true, value_name = "F")]
    pub val_split: Option<String>,
    /// Use only the first N training images (quick runs, parity checks)
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub limit_train: Option<String>,
    /// Use only the first N test images
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub limit_test: Option<String>,
    #[command(flatten)]
    pub common: CommonFlags,
}

/// Arguments that steer a command rather than describe the run.
const NOT_CONFIG: &[&str] = &["config", "set", "overwrite"];

/// The flags given on the command line, as a layer (values as typed, as text).
fn flags_layer(matches: &ArgMatches) -> Result<Layer> {
    let mut layer = Layer::default();
    for id in matches.ids() {
        let id = id.as_str();
        // Groups (one per flattened struct) have ids too; only keys are configuration.
        let is_key = config::canonical_key(id).is_some_and(|key| key == id);
        if !is_key || matches.value_source(id) != Some(ValueSource::CommandLine) {
            continue;
        }
        let text = match matches.get_raw(id) {
            Some(mut values) => values
                .next()
                .map(|v| v.to_string_lossy().into_owned())
                .unwrap_or_default(),
            None => continue,
        };
        layer.set(id, Value::String(text), Origin::Flag)?;
    }
    Ok(layer)
}

/// The layer a trainer subcommand describes: its config file, then its flags, then `--set`.
pub fn command_layer(
    trainer: ModelKind,
    common: &CommonFlags,
    matches: &ArgMatches,
) -> Result<Layer> {
    let mut layer = Layer::default();
    if let Some(path) = &common.config {
        layer = run_file_layer(path)?;
        if let Some(named) = layer.values.command.filter(|c| *c != trainer) {
            bail!(
                "{}: describes a `regulab {named}` run, not `regulab {trainer}`",
                path.display()
            );
        }
    }
    layer.set("command", Value::String(trainer.to_string()), Origin::Flag)?;
    layer.overlay(&flags_layer(matches)?);
    apply_sets(&mut layer, &common.set)?;
    Ok(layer)
}

/// A config file describing one run (a file with a `[sweep]` table is for `regulab sweep`).
pub fn run_file_layer(path: &std::path::Path) -> Result<Layer> {
    let file = config::load_file(path)?;
    if !file.sweep.is_empty() {
        bail!(
            "{}: has a [sweep] table; run it with `regulab sweep --config {} --out DIR`",
            path.display(),
            path.display()
        );
    }
    Ok(file.layer)
}

/// `--set key=value` overrides.
pub fn apply_sets(layer: &mut Layer, sets: &[String]) -> Result<()> {
    for assignment in sets {
        let Some((key, value)) = assignment.split_once('=') else {
            bail!("--set {assignment}: expected KEY=VALUE, e.g. --set lambda=0.1");
        };
        layer.set(key.trim(), Value::String(value.trim().into()), Origin::Set)?;
    }
    Ok(())
}

/// `--threads` above the machine's cores slows torch down (threads fight for cores).
pub fn warn_about_threads(config: &config::RunConfig) {
    let cores = crate::device::available_cores();
    if let Some(threads) = config.training.threads.filter(|&t| t > cores) {
        crate::util::erroutln!(
            "regulab: warning: --threads {threads} is more than the {cores} cores of this machine; expect it to be slower, not faster"
        );
    }
}

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Examples:\n  regulab sweep mf --data ml-100k --split u1 --penalty batch-l2 --lambda 0,0.01,0.1 --seed 1,2,3 --out sweeps/lambda\n  regulab sweep --config examples/sweeps/mf-lambda.toml --out sweeps/lambda\nAny trainer flag may take a comma-separated list; --hidden takes alternatives separated by '/': --hidden 512,256,128/64,32.\nA config file's [sweep] table lists values per key (lambda = [0, 0.01, 0.1]); flags override the file.\nExit status: 0 when every run completed, 1 when some failed or diverged, 128+N when signal N stopped the sweep."
)]
pub struct SweepArgs {
    /// [mf|mlp] (optional with --config), --config FILE, --out DIR, then trainer flags whose
    /// values may be comma-separated lists. --jobs N trains N runs at once, each its own
    /// process (--threads per run; jobs x threads may not exceed the cores unless --force).
    /// The same command on the same DIR continues: finished runs are kept, interrupted ones
    /// resume, failed ones train again; a folder holding another sweep is refused unless
    /// --overwrite. --executor slurm submits the runs not yet finished as one Slurm job array
    /// (sbatch) and prints its id; --wait blocks until it ends and writes the summary;
    /// --slurm-partition P, --slurm-time T, --slurm-cpus-per-task N (also the runs' threads),
    /// --slurm-gpus-per-task N, --slurm-arg ARG (repeatable, given to sbatch as is).
    /// `regulab status DIR` follows the runs, `regulab summarize DIR` writes the summary.
    /// --device cuda:0,cuda:1 spreads the runs over those devices, one run per device at a
    /// time
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        num_args = 0..,
        value_name = "ARGS"
    )]
    pub args: Vec<String>,
}

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Examples:\n  regulab cv mf --data ml-100k --folds u1,u2,u3,u4,u5 --penalty batch-l2 --lambda 0.1 --val-split 0.1 --out cv/batch-l2\n  regulab cv mf --data ml-100k --folds random:0.8 --seed 1,2,3 --out cv/random\nEach fold's reported epoch is chosen on its own validation split (--val-split) or is its last epoch; the test split is only measured.\nExit status as for sweep."
)]
pub struct CvArgs {
    /// mf or mlp, --folds LIST (u1,u2,u3,u4,u5; random:F or user:F with --seed LIST),
    /// --out DIR, then trainer flags (single values; --seed may list several); --jobs N,
    /// --overwrite, --executor slurm, --wait, --slurm-partition P, --slurm-time T,
    /// --slurm-cpus-per-task N, --slurm-gpus-per-task N and --slurm-arg ARG as for sweep
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        num_args = 0..,
        value_name = "ARGS"
    )]
    pub args: Vec<String>,
}

/// Cross-validation: one setting trained on every fold (and seed), aggregated.
pub fn cv_plan(args: &CvArgs) -> Result<SweepPlan> {
    let mut rest = Vec::new();
    let mut folds = None;
    let mut tokens = args.args.iter();
    while let Some(token) = tokens.next() {
        let value = if token == "--folds" {
            Some(tokens.next().cloned().context("--folds needs a list")?)
        } else {
            token.strip_prefix("--folds=").map(str::to_string)
        };
        match value {
            Some(_) if folds.is_some() => bail!("--folds given twice"),
            Some(value) => folds = Some(value),
            None => rest.push(token.clone()),
        }
    }
    if folds.is_some() && rest.first().is_some_and(|t| t == "mlp") {
        bail!("--folds: the MLP's images ship one train/test split; repeat over seeds with --seed 1,2,3");
    }
    if rest
        .iter()
        .any(|t| t == "--split" || t.starts_with("--split="))
    {
        bail!("--split: cv takes the splits as --folds LIST");
    }
    if let Some(folds) = &folds {
        rest.push("--split".into());
        rest.push(folds.clone());
    }
    // The folds travel as the split axis; an error about them names the flag the user typed.
    let as_folds = |error: anyhow::Error| match format!("{error:#}").strip_prefix("--split ") {
        Some(rest) => anyhow::anyhow!("--folds {rest}"),
        None => error,
    };
    let plan = sweep_plan(&SweepArgs { args: rest }).map_err(as_folds)?;
    plan.expand().map_err(as_folds)?;
    if let Some(axis) = plan
        .axes
        .iter()
        .find(|axis| !crate::schema::REPLICATE_KEYS.contains(&axis.key))
    {
        bail!(
            "{}: cv trains one setting over folds and seeds; to compare settings use `regulab sweep`",
            crate::setting::flag_name(axis.key)
        );
    }
    if plan.swept().is_empty() {
        bail!("--folds: give at least two folds (u1,u2,u3,u4,u5) or seeds (--seed 1,2,3)");
    }
    Ok(plan)
}

/// Splits `sweep`'s arguments into the target, the config file, the folder and trainer flags.
struct SweepCommandLine {
    trainer: Option<ModelKind>,
    config: Option<PathBuf>,
    folder: Option<PathBuf>,
    overwrite: bool,
    jobs: Option<std::ffi::OsString>,
    executor: Option<String>,
    slurm: SlurmOptions,
    /// The `--slurm-*` and `--wait` flags given, for the error when the executor is local.
    slurm_flags: Vec<&'static str>,
    flags: Vec<String>,
}

fn split_sweep_args(args: &[String]) -> Result<SweepCommandLine> {
    let mut line = SweepCommandLine {
        trainer: None,
        config: None,
        folder: None,
        overwrite: false,
        jobs: None,
        executor: None,
        slurm: SlurmOptions::default(),
        slurm_flags: Vec::new(),
        flags: Vec::new(),
    };
    let mut tokens = args.iter().peekable();
    if let Some(first) = tokens.next_if(|t| !t.starts_with('-')) {
        line.trainer = Some(
            first
                .parse()
                .map_err(|e| anyhow::anyhow!("sweep {first}: {e}"))?,
        );
    }
    while let Some(token) = tokens.next() {
        let (name, inline) = match token.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (token.as_str(), None),
        };
        if name == "--overwrite" && inline.is_none() {
            line.overwrite = true;
            continue;
        }
        if name == "--wait" && inline.is_none() {
            line.slurm.wait = true;
            line.slurm_flags.push("--wait");
            continue;
        }
        if let Some(flag) = SLURM_FLAGS.iter().find(|f| **f == name) {
            let value = inline
                .clone()
                .or_else(|| tokens.next().cloned())
                .with_context(|| format!("{flag} needs a value"))?;
            line.slurm_flags.push(flag);
            set_slurm_flag(&mut line.slurm, flag, value)?;
            continue;
        }
        if name == "--executor" {
            let value = inline.clone().or_else(|| tokens.next().cloned());
            let value = value.context("--executor needs a value: local or slurm")?;
            if line.executor.replace(value).is_some() {
                bail!("--executor given twice");
            }
            continue;
        }
        let slot = match name {
            "--out" => &mut line.folder,
            "--config" => &mut line.config,
            "--jobs" => {
                let value = inline.clone().or_else(|| tokens.next().cloned());
                line.jobs = Some(value.context("--jobs needs a value")?.into());
                continue;
            }
            _ => {
                line.flags.push(token.clone());
                continue;
            }
        };
        let value = match inline {
            Some(value) => value,
            None => tokens
                .next()
                .cloned()
                .with_context(|| format!("{name} needs a value"))?,
        };
        if slot.replace(PathBuf::from(value)).is_some() {
            bail!("{name} given twice");
        }
    }
    Ok(line)
}

/// The sweep a command line describes: a config file's keys and `[sweep]` lists, with the
/// flags (single values or comma lists) on top.
pub fn sweep_plan(args: &SweepArgs) -> Result<SweepPlan> {
    let line = split_sweep_args(&args.args)?;
    let folder = line
        .folder
        .context("--out DIR is required: the folder for the runs and the summary")?;
    let (mut base, mut axes) = match &line.config {
        Some(path) => {
            let file = config::load_file(path)?;
            (file.layer, file.sweep)
        }
        None => (Layer::default(), Vec::new()),
    };
    let trainer = match (line.trainer, base.values.command) {
        (Some(given), Some(named)) if given != named => {
            bail!("sweep {given}: the config file describes `regulab {named}` runs")
        }
        (Some(trainer), _) | (None, Some(trainer)) => trainer,
        (None, None) => bail!("sweep: name the trainer (sweep mf, sweep mlp) or give --config FILE with command = \"mf\" or \"mlp\""),
    };
    base.set("command", Value::String(trainer.to_string()), Origin::Flag)?;
    for (key, values) in parse_sweep_flags(trainer, &line.flags)? {
        match values {
            None => base.set(&key, Value::Bool(true), Origin::Flag)?,
            Some(values) if values.len() == 1 => {
                base.set(&key, Value::String(values[0].clone()), Origin::Flag)?
            }
            Some(values) => {
                let key = config::canonical_key(&key).context("checked by parse_sweep_flags")?;
                axes.retain(|axis| axis.key != key);
                axes.push(SweepAxis {
                    key,
                    values: values.into_iter().map(Value::String).collect(),
                    origin: Origin::Flag,
                });
            }
        }
    }
    let jobs = match &line.jobs {
        None => 1,
        Some(text) => text
            .to_string_lossy()
            .parse::<usize>()
            .ok()
            .filter(|&n| n >= 1)
            .with_context(|| {
                format!(
                    "--jobs {}: must be a whole number of at least 1",
                    text.display()
                )
            })?,
    };
    let devices = device_pool(&mut axes)?;
    // One run per device at a time.
    let jobs = match (devices.len(), line.jobs.is_some()) {
        (0, _) => jobs,
        (n, true) => jobs.min(n),
        (n, false) => n,
    };
    let threads = base.values.threads;
    let executor = match line.executor.as_deref() {
        None | Some("local") => {
            if let Some(flag) = line.slurm_flags.first() {
                bail!("{flag}: only with --executor slurm");
            }
            check_thread_budget(jobs, threads, base.values.force.unwrap_or(false))?;
            Executor::Local
        }
        Some("slurm") => {
            if line.jobs.is_some() {
                bail!(
                    "--jobs: not with --executor slurm (Slurm decides how many tasks run at once)"
                );
            }
            Executor::Slurm(line.slurm)
        }
        Some(other) => bail!("--executor {other}: expected local or slurm"),
    };
    Ok(SweepPlan {
        base,
        axes,
        folder,
        overwrite: line.overwrite,
        jobs,
        devices,
        threads,
        executor,
    })
}

/// `--device cuda:0,cuda:1` in a sweep is not a swept key (the device does not change what a
/// run computes, nor its id) but the devices to spread the runs over.
fn device_pool(axes: &mut Vec<SweepAxis>) -> Result<Vec<String>> {
    let Some(index) = axes.iter().position(|axis| axis.key == "device") else {
        return Ok(Vec::new());
    };
    let axis = axes.remove(index);
    axis.values
        .iter()
        .map(|value| {
            let text = value.as_str().unwrap_or_default().to_string();
            text.parse::<crate::device::DeviceChoice>()
                .map_err(|e| anyhow::anyhow!("--device {text}: {e}"))?;
            Ok(text)
        })
        .collect()
}

/// The `--slurm-*` flags that take a value.
const SLURM_FLAGS: &[&str] = &[
    "--slurm-partition",
    "--slurm-time",
    "--slurm-cpus-per-task",
    "--slurm-gpus-per-task",
    "--slurm-arg",
];

fn set_slurm_flag(options: &mut SlurmOptions, flag: &str, value: String) -> Result<()> {
    let count = |value: &str| {
        value
            .parse::<usize>()
            .ok()
            .filter(|&n| n >= 1)
            .with_context(|| format!("{flag} {value}: must be a whole number of at least 1"))
    };
    let once = |slot: &mut Option<String>, value: String| {
        if slot.replace(value).is_some() {
            bail!("{flag} given twice");
        }
        Ok(())
    };
    match flag {
        "--slurm-partition" => once(&mut options.partition, value)?,
        "--slurm-time" => once(&mut options.time, value)?,
        "--slurm-cpus-per-task" => {
            if options.cpus_per_task.replace(count(&value)?).is_some() {
                bail!("{flag} given twice");
            }
        }
        "--slurm-gpus-per-task" => {
            if options.gpus_per_task.replace(count(&value)?).is_some() {
                bail!("{flag} given twice");
            }
        }
        _ => options.extra.push(value),
    }
    Ok(())
}

/// Parallel runs share the cores: `--jobs` × `--threads` may not exceed them unless `--force`.
fn check_thread_budget(jobs: usize, threads: Option<usize>, force: bool) -> Result<()> {
    let cores = crate::device::available_cores();
    let per_run = threads.unwrap_or(1);
    if jobs > 1 && jobs * per_run > cores && !force {
        bail!(
            "--jobs {jobs}: {jobs} runs x {per_run} threads need {} cores, this machine has {cores}; lower --jobs or --threads, or pass --force",
            jobs * per_run
        );
    }
    Ok(())
}

/// ModelKind flags as (key, alternatives); switches have no value. Which flags take a value is
/// read from the trainer's own flag definitions.
fn parse_sweep_flags(
    trainer: ModelKind,
    flags: &[String],
) -> Result<Vec<(String, Option<Vec<String>>)>> {
    let command = match trainer {
        ModelKind::Mf => MfFlags::augment_args(clap::Command::new("mf")),
        ModelKind::Mlp => MlpFlags::augment_args(clap::Command::new("mlp")),
    };
    let takes_value = |name: &str| -> Result<bool> {
        command
            .get_arguments()
            .find(|a| a.get_long() == Some(name))
            .filter(|a| !NOT_CONFIG.contains(&a.get_id().as_str()))
            .map(|a| a.get_action().takes_values())
            .with_context(|| format!("--{name}: not a flag of `regulab {trainer}`"))
    };
    let mut parsed = Vec::new();
    let mut tokens = flags.iter();
    while let Some(token) = tokens.next() {
        let Some(flag) = token.strip_prefix("--") else {
            bail!("unexpected argument {token:?}: sweep takes trainer flags (--name value)");
        };
        let (name, inline) = match flag.split_once('=') {
            Some((name, value)) => (name.to_string(), Some(value.to_string())),
            None => (flag.to_string(), None),
        };
        if !takes_value(&name)? {
            if inline.is_some() {
                bail!("--{name} is a switch and takes no value");
            }
            parsed.push((name, None));
            continue;
        }
        let value = match inline {
            Some(value) => value,
            None => tokens
                .next()
                .cloned()
                .with_context(|| format!("--{name} needs a value"))?,
        };
        // --hidden, --betas and --metrics are themselves comma lists: alternatives use '/'.
        let separator = if matches!(name.as_str(), "hidden" | "betas" | "metrics") {
            '/'
        } else {
            ','
        };
        let values: Vec<String> = value
            .split(separator)
            .map(|v| v.trim().to_string())
            .collect();
        if values.iter().any(String::is_empty) {
            bail!("--{name} {value:?}: empty alternative in the list");
        }
        parsed.push((name, Some(values)));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn sweep_flags_become_a_base_and_axes() {
        let plan = sweep_plan(&SweepArgs {
            args: strings(&[
                "mf",
                "--lambda",
                "0,0.1",
                "--out",
                "sweeps/x",
                "--seed=1,2,3",
                "--penalize-bias",
                "--penalty",
                "batch-l2",
            ]),
        })
        .unwrap();
        assert_eq!(plan.folder, PathBuf::from("sweeps/x"));
        assert_eq!(plan.axes.len(), 2);
        assert_eq!(plan.axes[1].key, "seed");
        assert_eq!(plan.base.values.penalize_bias, Some(true));
        assert_eq!(plan.expand().unwrap().len(), 6);
    }

    #[test]
    fn slurm_flags_go_with_the_slurm_executor_only() {
        let plan = sweep_plan(&SweepArgs {
            args: strings(&[
                "mf",
                "--lambda",
                "0,0.1",
                "--executor",
                "slurm",
                "--wait",
                "--slurm-arg",
                "--mem=4G",
                "--slurm-cpus-per-task=2",
                "--slurm-partition",
                "gpu",
                "--slurm-arg=--account=lab",
                "--out",
                "s",
            ]),
        })
        .unwrap();
        let Executor::Slurm(options) = plan.executor else {
            panic!("not slurm");
        };
        assert!(options.wait);
        assert_eq!(options.cpus_per_task, Some(2));
        assert_eq!(options.partition.as_deref(), Some("gpu"));
        assert_eq!(options.extra, strings(&["--mem=4G", "--account=lab"]));
        let error = |args: &[&str]| {
            sweep_plan(&SweepArgs {
                args: strings(args),
            })
            .unwrap_err()
            .to_string()
        };
        assert_eq!(
            error(&["mf", "--slurm-time", "1:00:00", "--out", "s"]),
            "--slurm-time: only with --executor slurm"
        );
        assert_eq!(
            error(&["mf", "--executor", "pbs", "--out", "s"]),
            "--executor pbs: expected local or slurm"
        );
    }

    #[test]
    fn hidden_alternatives_use_slashes() {
        let parsed = parse_sweep_flags(
            ModelKind::Mlp,
            &strings(&["--data", "x", "--hidden", "512,256/64"]),
        )
        .unwrap();
        assert_eq!(
            parsed[1],
            ("hidden".to_string(), Some(strings(&["512,256", "64"])))
        );
    }

    #[test]
    fn unknown_flags_and_missing_values_are_errors() {
        assert!(parse_sweep_flags(ModelKind::Mf, &strings(&["--lamda", "1"])).is_err());
        assert!(parse_sweep_flags(ModelKind::Mf, &strings(&["--lambda"])).is_err());
        assert!(parse_sweep_flags(ModelKind::Mf, &strings(&["--lambda", "1,,2"])).is_err());
        assert!(parse_sweep_flags(ModelKind::Mf, &strings(&["--hidden", "1"])).is_err());
    }
}

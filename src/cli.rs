//! Command-line interface: argument definitions and dispatch into the library.

use crate::data::fetch::{self, FetchArgs, ListArgs};
use crate::data::synth::SynthFormat;
use crate::data::{
    self, DuplicatePolicy, LoadOptions, RatingRange, RatingsSourceSpec, SplitSpec, SyntheticConfig,
};
use crate::device::DeviceChoice;
use crate::info::SystemInfo;
use crate::model::mf::MfVariant;
use crate::model::mlp::{Activation, LossKind};
use crate::optim::{OptimizerKind, OptimizerSettings};
use crate::regularization::{PenaltyKind, PenaltyScale};
use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "regulab",
    version,
    about = "Regularization experiments on PyTorch's C++ core: matrix factorization and an MLP, with loss curves in JSON"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Versions, CUDA devices, cuDNN and CPU threads
    Info {
        /// Print a JSON object instead of text
        #[arg(long)]
        json: bool,
    },
    /// Inspect data sets
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Train matrix factorization on ratings and write its curves to JSON
    Mf(MfArgs),
    /// Train the lecture's MLP on MNIST-format images and write its curves to JSON
    Mlp(MlpArgs),
    /// Draw a run's curves (losses, train vs test metric, weight norms) to SVG or PNG
    Plot(crate::plot::PlotArgs),
    /// Run a trainer over a grid of flag values (comma-separated lists) and summarize
    Sweep(crate::sweep::SweepArgs),
}

/// Flags shared by every trainer: optimizer, penalty, loop and output.
#[derive(Debug, Clone, Args, Serialize)]
pub struct TrainArgs {
    /// Optimizer (torch.optim semantics)
    #[arg(long, value_enum, default_value_t = OptimizerKind::Adam)]
    pub optimizer: OptimizerKind,
    /// Learning rate [default: mf 0.01, mlp 0.001]
    #[arg(long)]
    pub lr: Option<f64>,
    /// Momentum (sgd, rmsprop)
    #[arg(long, default_value_t = 0.0)]
    pub momentum: f64,
    /// Nesterov momentum (sgd)
    #[arg(long)]
    pub nesterov: bool,
    /// Optimizer weight decay: coupled L2 for sgd/adam/rmsprop, decoupled for adamw. Adds nothing
    /// to the loss; its implied term (wd/2)*sum||W||^2 is reported as implied_weight_decay_loss
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Penalty added to the minibatch loss (l2 is an alias of frobenius)
    #[arg(long, value_enum, default_value_t = PenaltyKind::None)]
    pub penalty: PenaltyKind,
    /// Penalty strength
    #[arg(long = "lambda", default_value_t = 0.0)]
    pub lambda: f64,
    /// Divisor of the penalty: dataset size, batch size or none (default: the form's own)
    #[arg(long, value_enum)]
    pub penalty_scale: Option<PenaltyScale>,
    /// Apply the penalty to bias vectors too (default: weights/factors only)
    #[arg(long)]
    pub penalize_bias: bool,
    /// Minibatch size [default: mf 1024, mlp 128]
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Number of epochs [default: mf 20, mlp 10]
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Seed for initial weights, batch order and random splits
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// auto (CUDA when available), cpu, cuda or cuda:N
    #[arg(long, default_value_t = DeviceChoice::Auto)]
    #[serde(serialize_with = "serialize_display")]
    pub device: DeviceChoice,
    /// Run JSON path (default runs/<time>-<command>.json)
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also record base/reg/total loss every N optimizer steps (the `steps` array)
    #[arg(long)]
    pub log_every: Option<usize>,
    /// No progress bar or per-epoch lines
    #[arg(long)]
    pub quiet: bool,
    /// CPU threads for torch (default: torch's choice, the number of cores)
    #[arg(long)]
    pub threads: Option<usize>,
}

/// A command's own defaults for the shared flags that differ between models.
#[derive(Debug, Clone, Copy)]
pub struct TrainDefaults {
    pub lr: f64,
    pub batch_size: usize,
    pub epochs: usize,
}

impl TrainArgs {
    /// Fills the command's defaults and checks the values.
    pub fn resolve(&self, defaults: TrainDefaults) -> Result<TrainArgs> {
        let resolved = TrainArgs {
            lr: Some(self.lr.unwrap_or(defaults.lr)),
            batch_size: Some(self.batch_size.unwrap_or(defaults.batch_size)),
            epochs: Some(self.epochs.unwrap_or(defaults.epochs)),
            ..self.clone()
        };
        if resolved.batch_size() == 0 {
            bail!("--batch-size must be at least 1");
        }
        if resolved.epochs() == 0 {
            bail!("--epochs must be at least 1");
        }
        if resolved.log_every == Some(0) {
            bail!("--log-every must be at least 1");
        }
        if resolved.threads == Some(0) {
            bail!("--threads must be at least 1");
        }
        resolved.optimizer_settings().validate()?;
        Ok(resolved)
    }

    pub fn lr(&self) -> f64 {
        self.lr.unwrap_or(f64::NAN)
    }

    pub fn batch_size(&self) -> usize {
        self.batch_size.unwrap_or(0)
    }

    pub fn epochs(&self) -> usize {
        self.epochs.unwrap_or(0)
    }

    pub fn optimizer_settings(&self) -> OptimizerSettings {
        OptimizerSettings {
            kind: self.optimizer,
            lr: self.lr(),
            momentum: self.momentum,
            nesterov: self.nesterov,
            weight_decay: self.weight_decay,
        }
    }
}

fn serialize_display<T: std::fmt::Display, S: serde::Serializer>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

#[derive(Debug, Clone, Args, Serialize)]
pub struct MfArgs {
    /// `synthetic`, a data set name (ml-100k, ml-1m, ...; see `data list`), a MovieLens
    /// directory or a ratings file
    #[arg(long, default_value = "synthetic")]
    pub data: String,
    /// Fetch a named data set that is not cached yet (as `regulab data fetch NAME`)
    #[arg(long)]
    pub download: bool,
    /// Train/test split: u1..u5, ua, ub (ml-100k), random:F, user:F
    #[arg(long, default_value = "random:0.8")]
    #[serde(serialize_with = "serialize_display")]
    pub split: SplitSpec,
    #[command(flatten)]
    #[serde(flatten)]
    pub load: LoadArgs,
    /// biased: mu + b_u + b_i + p_u.q_i; plain: u_i.v_j
    #[arg(long, value_enum, default_value_t = MfVariant::Biased)]
    pub model: MfVariant,
    /// Latent dimension K
    #[arg(long, default_value_t = 16)]
    pub dim: i64,
    /// Standard deviation of the initial factors (biases start at zero)
    #[arg(long, default_value_t = 0.1)]
    pub init_std: f64,
    #[command(flatten)]
    #[serde(flatten)]
    pub train: TrainArgs,
    #[command(flatten)]
    #[serde(flatten)]
    pub synthetic: SyntheticArgs,
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Users, items, ratings, mean, histogram and density of a ratings data set, or image and
    /// class counts of an IDX image directory (MNIST, Fashion-MNIST)
    Info(DataInfoArgs),
    /// Download a known data set into the cache, verify its checksums, unpack it, print its folder
    Fetch(FetchArgs),
    /// Known data sets, their download sizes, and which are cached (and where)
    List(ListArgs),
    /// Write the synthetic ratings (as `--data synthetic` makes them) as a MovieLens folder
    Synth(DataSynthArgs),
}

/// How ratings files are checked while loading.
#[derive(Debug, Clone, Args, Serialize)]
pub struct LoadArgs {
    /// Repeated (user, item) ratings: error, keep-first, keep-last or mean
    #[arg(long, default_value_t = DuplicatePolicy::Error)]
    pub duplicates: DuplicatePolicy,
    /// Valid ratings, inclusive [default: the MovieLens scale, 1..5 for ml-100k, 0.5..5 for
    /// ratings.dat and ratings.csv]
    #[arg(long, value_name = "MIN,MAX", allow_hyphen_values = true)]
    pub rating_range: Option<RatingRange>,
}

impl LoadArgs {
    pub fn options(&self) -> LoadOptions {
        LoadOptions {
            duplicates: self.duplicates,
            rating_range: self.rating_range,
        }
    }
}

#[derive(Debug, Args)]
pub struct DataSynthArgs {
    /// Folder to create (it may exist if empty)
    #[arg(long)]
    pub out: PathBuf,
    /// ml-100k: u.data plus an 80/20 split u1.base/u1.test (seeded by --synthetic-seed);
    /// csv: ratings.csv
    #[arg(long, default_value_t = SynthFormat::Ml100k)]
    pub format: SynthFormat,
    #[command(flatten)]
    pub synthetic: SyntheticArgs,
}

#[derive(Debug, Args)]
pub struct DataInfoArgs {
    /// A MovieLens directory or ratings file, an IDX image directory, or `synthetic`
    #[arg(default_value = "synthetic")]
    pub path: String,
    /// Also report a train/test split: u1..u5, ua, ub, random:F, user:F
    #[arg(long)]
    pub split: Option<SplitSpec>,
    /// Seed for random and per-user splits
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Fetch a named data set that is not cached yet (as `regulab data fetch NAME`)
    #[arg(long)]
    pub download: bool,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub synthetic: SyntheticArgs,
}

#[derive(Debug, Clone, Args, Serialize)]
pub struct MlpArgs {
    /// `mnist`, `fashion-mnist` (from the cache) or an MNIST-format directory
    /// (train-images-idx3-ubyte, ... raw or .gz)
    #[arg(long)]
    pub data: String,
    /// Fetch a named data set that is not cached yet (as `regulab data fetch NAME`)
    #[arg(long)]
    pub download: bool,
    /// Hidden layer sizes, comma separated
    #[arg(long, value_delimiter = ',', default_value = "512,256,128")]
    pub hidden: Vec<i64>,
    /// Hidden-layer activation
    #[arg(long, value_enum, default_value_t = Activation::Relu)]
    pub activation: Activation,
    /// ce: cross-entropy; mse: seed 003's quadratic cost 1/2||sigmoid(z) - onehot(y)||^2
    #[arg(long, value_enum, default_value_t = LossKind::Ce)]
    pub loss: LossKind,
    /// Standardize pixels with the training set's mean and standard deviation
    #[arg(long)]
    pub normalize: bool,
    /// Hold out this fraction of the training images (seeded) as a validation curve
    #[arg(long)]
    pub val_split: Option<f64>,
    /// Use only the first N training images (quick runs, parity checks)
    #[arg(long)]
    pub limit_train: Option<usize>,
    /// Use only the first N test images
    #[arg(long)]
    pub limit_test: Option<usize>,
    #[command(flatten)]
    #[serde(flatten)]
    pub train: TrainArgs,
}

/// Sizes of the synthetic data set (used when the data is `synthetic`).
#[derive(Debug, Clone, Args, Serialize)]
pub struct SyntheticArgs {
    /// Synthetic: number of users
    #[arg(long, default_value_t = SyntheticConfig::default().users)]
    pub synthetic_users: usize,
    /// Synthetic: number of items
    #[arg(long, default_value_t = SyntheticConfig::default().items)]
    pub synthetic_items: usize,
    /// Synthetic: number of ratings (distinct user-item pairs)
    #[arg(long, default_value_t = SyntheticConfig::default().ratings)]
    pub synthetic_ratings: usize,
    /// Synthetic: rank of the planted model
    #[arg(long, default_value_t = SyntheticConfig::default().rank)]
    pub synthetic_rank: usize,
    /// Synthetic: standard deviation of the rating noise (the test RMSE floor)
    #[arg(long, default_value_t = SyntheticConfig::default().noise_std)]
    pub synthetic_noise: f64,
    /// Synthetic: generator seed
    #[arg(long, default_value_t = 0)]
    pub synthetic_seed: u64,
}

impl SyntheticArgs {
    pub fn config(&self) -> SyntheticConfig {
        SyntheticConfig {
            users: self.synthetic_users,
            items: self.synthetic_items,
            ratings: self.synthetic_ratings,
            rank: self.synthetic_rank,
            noise_std: self.synthetic_noise,
            seed: self.synthetic_seed,
        }
    }
}

/// Resolves a `--data` value: `synthetic`, a known data set name (from the cache, or
/// fetched with `download`), or a path.
pub fn ratings_source(
    data: &str,
    synthetic: &SyntheticArgs,
    download: bool,
) -> Result<RatingsSourceSpec> {
    if data == "synthetic" {
        return Ok(RatingsSourceSpec::Synthetic(synthetic.config()));
    }
    Ok(RatingsSourceSpec::Path(data_path(data, download)?))
}

/// A known data set name resolved through the cache, or the value itself as a path.
pub fn data_path(data: &str, download: bool) -> Result<PathBuf> {
    let mut options = data::fetch::FetchOptions::from_env()?;
    options.progress = true;
    Ok(
        data::fetch::resolve_named(data, download, &options)?
            .unwrap_or_else(|| PathBuf::from(data)),
    )
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Info { json } => {
            let info = SystemInfo::collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                print!("{}", info.to_text());
            }
            Ok(())
        }
        Command::Data { command } => match command {
            DataCommand::Info(args) => data_info(&args),
            DataCommand::Fetch(args) => fetch::run_fetch(&args),
            DataCommand::List(args) => fetch::run_list(&args),
            DataCommand::Synth(args) => data_synth(&args),
        },
        Command::Mf(args) => crate::experiment::run_mf(&args).map(drop),
        Command::Mlp(args) => crate::experiment::run_mlp(&args).map(drop),
        Command::Plot(args) => crate::plot::run_plot(&args),
        Command::Sweep(args) => crate::sweep::run_sweep(&args),
    }
}

fn data_info(args: &DataInfoArgs) -> Result<()> {
    let path = if args.path == "synthetic" {
        PathBuf::from(&args.path)
    } else {
        data_path(&args.path, args.download)?
    };
    if data::mnist::is_idx_dir(&path) {
        if let Some(split) = &args.split {
            bail!("--split {split}: IDX image directories ship their own train/test split");
        }
        let stats = data::mnist::load(&path)?.stats();
        if args.json {
            println!("{}", serde_json::to_string_pretty(&stats)?);
        } else {
            print!("{}", format_image_stats(&stats));
        }
        return Ok(());
    }
    let source = match args.path.as_str() {
        "synthetic" => RatingsSourceSpec::Synthetic(args.synthetic.config()),
        _ => RatingsSourceSpec::Path(path),
    };
    let split = args.split.clone().unwrap_or(SplitSpec::None);
    let dataset = data::load_ratings(&source, &split, args.seed, &args.load.options())?;
    let stats = dataset.stats();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        print!("{}", format_stats(&stats));
    }
    Ok(())
}

fn data_synth(args: &DataSynthArgs) -> Result<()> {
    let config = args.synthetic.config();
    let dataset = data::synthetic::generate(&config)?;
    let written = data::synth::write(&dataset, &args.out, args.format, config.seed)?;
    println!("{written}");
    Ok(())
}

fn format_stats(stats: &data::DatasetStats) -> String {
    let mut out = format!(
        "{} ({}, {})\nusers    {}\nitems    {}\nratings  {}\nmean     {:.5}\ndensity  {:.5}\nhistogram\n",
        stats.name, stats.format, stats.source, stats.users, stats.items, stats.ratings, stats.mean_rating, stats.density
    );
    let largest = stats
        .histogram
        .0
        .iter()
        .map(|(_, c)| *c)
        .max()
        .unwrap_or(1)
        .max(1);
    for (bin, count) in &stats.histogram.0 {
        let bar = "#".repeat((40 * count).div_ceil(largest));
        out += &format!("  {bin:>4}  {count:>10}  {bar}\n");
    }
    if let Some(split) = &stats.split {
        out += &format!(
            "split {}: {} train, {} test ratings (train mean {:.5}); cold in test: {} users, {} items, {} ratings\n",
            split.name, split.train_ratings, split.test_ratings, split.train_mean_rating, split.cold_test_users, split.cold_test_items, split.cold_test_ratings
        );
    }
    if let Some(truth) = &stats.synthetic {
        out += &format!(
            "planted rank {}, noise std {}, test RMSE floor {:.5}\n",
            truth.rank, truth.noise_std, truth.noise_floor_rmse
        );
    }
    out
}

fn format_image_stats(stats: &data::mnist::ImageStats) -> String {
    let mut out = format!(
        "{} (IDX images, {})\nimage size  {}x{}\nclasses     {}\n",
        stats.name, stats.source, stats.rows, stats.cols, stats.classes
    );
    for (name, split) in [("train", &stats.train), ("test", &stats.test)] {
        out += &format!(
            "{name:<11} {} images, {} labels\n",
            split.images, split.labels
        );
    }
    out += &format!("{:>5}  {:>9} {:>9}\n", "class", "train", "test");
    for class in 0..stats.classes {
        let count = |counts: &[usize]| counts.get(class).copied().unwrap_or(0);
        out += &format!(
            "{class:>5}  {:>9} {:>9}\n",
            count(&stats.train.class_counts),
            count(&stats.test.class_counts)
        );
    }
    out
}

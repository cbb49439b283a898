//! `regulab data info|fetch|list`.

use crate::data::data_path;
use crate::data::fetch::{self, parse_seconds, AddRequest, FetchRequest, ListRequest};
use crate::data::synth::SynthFormat;
use crate::data::{self, DuplicatePolicy, LoadOptions, RatingRange, RatingsSourceSpec, SplitSpec};
use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Users, items, ratings, mean, histogram and density of a ratings data set, or image and
    /// class counts of an IDX image directory (MNIST, Fashion-MNIST)
    Info(DataInfoArgs),
    /// Download a known data set into the cache, verify its checksums, unpack it, print its folder
    Fetch(FetchArgs),
    /// Register a folder already on disk as a known data set (its files' checksums are
    /// checked), so that `--data NAME` uses it without a download
    Add(AddArgs),
    /// Known data sets, their download sizes, and which are cached, registered or placed in
    /// the cache by hand (and where)
    List(ListArgs),
    /// Write the synthetic ratings (as `--data synthetic` makes them) as a MovieLens folder
    Synth(DataSynthArgs),
}

/// How ratings files are checked while loading.
#[derive(Debug, Clone, Args)]
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

/// Sizes of the synthetic data set (used when the data is `synthetic`).
#[derive(Debug, Clone, Args)]
pub struct SyntheticArgs {
    /// Synthetic: number of users
    #[arg(long, default_value_t = data::SyntheticConfig::default().users)]
    pub synthetic_users: usize,
    /// Synthetic: number of items
    #[arg(long, default_value_t = data::SyntheticConfig::default().items)]
    pub synthetic_items: usize,
    /// Synthetic: number of ratings (distinct user-item pairs)
    #[arg(long, default_value_t = data::SyntheticConfig::default().ratings)]
    pub synthetic_ratings: usize,
    /// Synthetic: rank of the planted model
    #[arg(long, default_value_t = data::SyntheticConfig::default().rank)]
    pub synthetic_rank: usize,
    /// Synthetic: standard deviation of the rating noise (the test RMSE floor)
    #[arg(long, default_value_t = data::SyntheticConfig::default().noise_std)]
    pub synthetic_noise: f64,
    /// Synthetic: generator seed
    #[arg(long, default_value_t = 0)]
    pub synthetic_seed: u64,
}

impl SyntheticArgs {
    pub fn config(&self) -> data::SyntheticConfig {
        data::SyntheticConfig {
            users: self.synthetic_users,
            items: self.synthetic_items,
            ratings: self.synthetic_ratings,
            rank: self.synthetic_rank,
            noise_std: self.synthetic_noise,
            seed: self.synthetic_seed,
        }
    }
}

/// `regulab data fetch NAME`
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// A known data set: ml-100k, ml-1m, ml-10m, ml-20m, ml-25m, ml-32m, ml-latest-small, mnist, fashion-mnist
    pub name: String,
    /// Base URL to download from instead of the publisher's (file names are appended)
    #[arg(long, value_name = "URL")]
    pub mirror: Option<String>,
    /// Cache folder [default: $REGULAB_DATA, else the platform cache folder + /regulab]
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Seconds to wait for a connection or for more data [default: $REGULAB_FETCH_TIMEOUT_SECS, else 30]
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub timeout: Option<Duration>,
}

/// `regulab data add NAME PATH`
#[derive(Debug, Args)]
pub struct AddArgs {
    /// A known data set: ml-100k, ml-1m, ml-10m, ml-20m, ml-25m, ml-32m, ml-latest-small, mnist, fashion-mnist
    pub name: String,
    /// Its unpacked folder (ml-100k: u.data, u.item, the u1..u5/ua/ub splits, ...)
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// Cache folder whose local.json records it [default: $REGULAB_DATA, else the platform
    /// cache folder + /regulab]
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
}

/// `regulab data list`
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Cache folder [default: $REGULAB_DATA, else the platform cache folder + /regulab]
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

pub fn run(command: DataCommand) -> Result<()> {
    match command {
        DataCommand::Info(args) => data_info(&args),
        DataCommand::Fetch(args) => fetch::run_fetch(&FetchRequest {
            name: args.name,
            mirror: args.mirror,
            cache: args.cache,
            timeout: args.timeout,
        }),
        DataCommand::Add(args) => fetch::run_add(&AddRequest {
            name: args.name,
            path: args.path,
            cache: args.cache,
        }),
        DataCommand::List(args) => fetch::run_list(&ListRequest {
            cache: args.cache,
            json: args.json,
        }),
        DataCommand::Synth(args) => data_synth(&args),
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
            crate::util::outln!("{}", serde_json::to_string_pretty(&stats)?);
        } else {
            let found = found_line(&args.path, &path);
            crate::util::out!("{found}{}", format_image_stats(&stats));
        }
        return Ok(());
    }
    let source = match args.path.as_str() {
        "synthetic" => RatingsSourceSpec::Synthetic(args.synthetic.config()),
        _ => RatingsSourceSpec::Path(path.clone()),
    };
    let split = args.split.clone().unwrap_or(SplitSpec::None);
    let dataset = data::load_ratings(&source, &split, args.seed, &args.load.options())?;
    let stats = dataset.stats();
    if args.json {
        crate::util::outln!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        crate::util::out!("{}{}", found_line(&args.path, &path), format_stats(&stats));
    }
    Ok(())
}

/// For a known name: where it was found (`data set ml-100k: registered folder /data/ml-100k`).
fn found_line(value: &str, dir: &std::path::Path) -> String {
    let cache = fetch::cache_dir(None).ok();
    let how = cache.and_then(|cache| fetch::local::how_found(value, dir, &cache));
    match how {
        Some(how) => format!("data set {value}: {how} {}\n", dir.display()),
        None => String::new(),
    }
}

fn data_synth(args: &DataSynthArgs) -> Result<()> {
    let config = args.synthetic.config();
    let dataset = data::synthetic::generate(&config)?;
    let written = data::synth::write(&dataset, &args.out, args.format, config.seed)?;
    crate::util::outln!("{written}");
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

//! Command-line interface: argument definitions and dispatch into the library.

use crate::data::{self, RatingsSourceSpec, SplitSpec, SyntheticConfig};
use crate::info::SystemInfo;
use anyhow::Result;
use clap::{Args, Parser, Subcommand};
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
    /// Draw a run's curves (losses, train vs test metric, weight norms) to SVG or PNG
    Plot(crate::plot::PlotArgs),
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Users, items, ratings, mean, histogram and density of a ratings data set
    Info(DataInfoArgs),
}

#[derive(Debug, Args)]
pub struct DataInfoArgs {
    /// A MovieLens directory or ratings file, or `synthetic`
    #[arg(default_value = "synthetic")]
    pub path: String,
    /// Also report a train/test split: u1..u5, ua, ub, random:F, user:F
    #[arg(long)]
    pub split: Option<SplitSpec>,
    /// Seed for random and per-user splits
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub synthetic: SyntheticArgs,
}

/// Sizes of the synthetic data set (used when the data is `synthetic`).
#[derive(Debug, Clone, Args)]
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

/// `synthetic` or a path.
pub fn ratings_source(data: &str, synthetic: &SyntheticArgs) -> RatingsSourceSpec {
    if data == "synthetic" {
        RatingsSourceSpec::Synthetic(synthetic.config())
    } else {
        RatingsSourceSpec::Path(PathBuf::from(data))
    }
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
        },
        Command::Plot(args) => crate::plot::run_plot(&args),
    }
}

fn data_info(args: &DataInfoArgs) -> Result<()> {
    let source = ratings_source(&args.path, &args.synthetic);
    let split = args.split.clone().unwrap_or(SplitSpec::None);
    let dataset = data::load_ratings(&source, &split, args.seed)?;
    let stats = dataset.stats();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        print!("{}", format_stats(&stats));
    }
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

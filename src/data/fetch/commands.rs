//! The `regulab data fetch` and `regulab data list` commands.

use anyhow::Result;
use clap::Args;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::download::{human_bytes, join_url};
use super::registry::registry;
use super::{cache_dir, cached_path, fetch, parse_seconds, FetchOptions};

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

/// Downloads (unless cached) and prints the data folder on stdout; progress goes to stderr.
pub fn run_fetch(args: &FetchArgs) -> Result<()> {
    let mut options = FetchOptions::from_env()?;
    options.cache_dir = args.cache.clone();
    options.mirror = args.mirror.clone();
    options.progress = true;
    if let Some(timeout) = args.timeout {
        options.timeout = timeout;
    }
    let dir = fetch(&args.name, &options)?;
    println!("{}", dir.display());
    Ok(())
}

#[derive(Debug, Serialize)]
struct ListedDataset {
    name: &'static str,
    description: &'static str,
    download_bytes: Option<u64>,
    urls: Vec<String>,
    cached: Option<PathBuf>,
}

pub fn run_list(args: &ListArgs) -> Result<()> {
    let cache = cache_dir(args.cache.as_deref())?;
    let listed: Vec<ListedDataset> = registry()
        .iter()
        .map(|entry| ListedDataset {
            name: entry.name,
            description: entry.description,
            download_bytes: entry.download_bytes(),
            urls: entry
                .files
                .iter()
                .filter_map(|file| {
                    entry
                        .base_urls
                        .first()
                        .map(|base| join_url(base, file.name))
                })
                .collect(),
            cached: cached_path(entry.name, &cache),
        })
        .collect();
    if args.json {
        let document = serde_json::json!({ "cache": cache, "datasets": listed });
        println!("{}", serde_json::to_string_pretty(&document)?);
    } else {
        print!("{}", format_list(&cache, &listed));
    }
    Ok(())
}

fn format_list(cache: &Path, listed: &[ListedDataset]) -> String {
    let mut out = format!("cache folder: {}\n", cache.display());
    for dataset in listed {
        let size = dataset
            .download_bytes
            .map(human_bytes)
            .unwrap_or_else(|| "?".to_string());
        out += &format!("{:<16} {size:>10}  {}\n", dataset.name, dataset.description);
        let status = match &dataset.cached {
            Some(dir) => format!("cached: {}", dir.display()),
            None => "not cached".to_string(),
        };
        out += &format!("{:<16} {:>10}  {status}\n", "", "");
    }
    out
}

//! The `regulab data fetch` and `regulab data list` commands.

use anyhow::Result;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::download::join_url;
use super::registry::registry;
use super::{cache_dir, cached_path, fetch, FetchOptions};
use crate::util::human_bytes;

/// `regulab data fetch NAME`
#[derive(Debug, Clone)]
pub struct FetchRequest {
    /// A known data set name.
    pub name: String,
    /// Base URL to download from instead of the publisher's.
    pub mirror: Option<String>,
    /// Cache folder; `None` takes `$REGULAB_DATA` or the platform cache folder.
    pub cache: Option<PathBuf>,
    pub timeout: Option<Duration>,
}

/// `regulab data list`
#[derive(Debug, Clone)]
pub struct ListRequest {
    pub cache: Option<PathBuf>,
    pub json: bool,
}

/// Downloads (unless cached) and prints the data folder on stdout; progress goes to stderr.
pub fn run_fetch(args: &FetchRequest) -> Result<()> {
    let mut options = FetchOptions::from_env()?;
    options.cache_dir = args.cache.clone();
    options.mirror = args.mirror.clone();
    options.progress = true;
    if let Some(timeout) = args.timeout {
        options.timeout = timeout;
    }
    let dir = fetch(&args.name, &options)?;
    crate::util::outln!("{}", dir.display());
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

pub fn run_list(args: &ListRequest) -> Result<()> {
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
        crate::util::outln!("{}", serde_json::to_string_pretty(&document)?);
    } else {
        crate::util::out!("{}", format_list(&cache, &listed));
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

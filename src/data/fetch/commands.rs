//! The `regulab data fetch`, `regulab data add` and `regulab data list` commands.

use anyhow::Result;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::download::join_url;
use super::local::{self, LOCAL_REGISTRY};
use super::registry::{registry, DatasetEntry};
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

/// `regulab data add NAME PATH`
#[derive(Debug, Clone)]
pub struct AddRequest {
    pub name: String,
    pub path: PathBuf,
    pub cache: Option<PathBuf>,
}

/// Verifies the folder against the registry's checksums and registers it under the name.
pub fn run_add(args: &AddRequest) -> Result<()> {
    let cache = cache_dir(args.cache.as_deref())?;
    let (folder, check) = local::add(&args.name, &args.path, &cache)?;
    crate::util::outln!(
        "{}: {} ({}), registered in {}",
        args.name,
        folder.display(),
        check.describe(&args.name),
        cache.join(LOCAL_REGISTRY).display()
    );
    Ok(())
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
    /// Fetched into the cache (with the completion marker).
    cached: Option<PathBuf>,
    /// Registered with `regulab data add`.
    registered: Option<PathBuf>,
    /// The verified folder used by name when it is not fetched: the registered one, or a
    /// folder of the data set's name in the cache.
    local: Option<PathBuf>,
    /// Why a registered or hand-placed folder is not used.
    problem: Option<String>,
}

/// Registered and hand-placed folders of one entry: (registered, local, problem).
fn local_status(
    entry: &DatasetEntry,
    cache: &Path,
) -> (Option<PathBuf>, Option<PathBuf>, Option<String>) {
    let registered = local::registered(entry.name, cache).ok().flatten();
    match local::local_folder(entry, cache) {
        Ok(found) => (registered, found.map(|f| f.path().to_path_buf()), None),
        Err(error) => (registered, None, Some(format!("{error:#}"))),
    }
}

pub fn run_list(args: &ListRequest) -> Result<()> {
    let cache = cache_dir(args.cache.as_deref())?;
    let listed: Vec<ListedDataset> = registry()
        .iter()
        .map(|entry| {
            let (registered, local, problem) = local_status(entry, &cache);
            ListedDataset {
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
                registered,
                local,
                problem,
            }
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
        let status = match (&dataset.cached, &dataset.local, &dataset.problem) {
            (Some(dir), _, _) => format!("cached: {}", dir.display()),
            (None, Some(dir), _) if dataset.registered.as_ref() == Some(dir) => {
                format!("registered: {}", dir.display())
            }
            (None, Some(dir), _) => format!("local folder: {}", dir.display()),
            (None, None, Some(problem)) => format!("not usable: {problem}"),
            (None, None, None) => "not cached".to_string(),
        };
        out += &format!("{:<16} {:>10}  {status}\n", "", "");
    }
    out
}

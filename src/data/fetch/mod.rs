//! Data sets on demand: `regulab data fetch NAME` downloads a known data set into a cache
//! folder, verifies its checksums, unpacks it and prints the folder to pass as `--data`.
//!
//! Cache layout (`--cache DIR`, else `$REGULAB_DATA`, else the platform cache folder plus
//! `regulab`, e.g. `~/.cache/regulab`):
//!
//! * `<cache>/<name>/`: the complete data folder. For MovieLens it is the zip's top folder
//!   (`u.data`, `ratings.dat` or `ratings.csv` inside); for MNIST and Fashion-MNIST it holds
//!   the four `.gz` files as published (kept compressed: the MNIST reader reads `.gz`
//!   directly). It only ever appears through one rename of a fully unpacked folder and
//!   carries a `.regulab-complete` marker recording what was verified.
//! * `<cache>/downloads/<name>/`: verified files not yet unpacked, downloads in progress
//!   (`<file>.<pid>-<n>.part`) and unpack staging folders (`.unpack.<pid>-<n>`). Nothing
//!   here is read unless verified. A file saved here by hand under its published name is
//!   verified and used instead of the network.
//! * `<cache>/local.json`: folders registered with `regulab data add NAME PATH` ([`local`]).
//!
//! A data set already on disk is used by name without a download: a registered folder, or a
//! folder (or link) at `<cache>/<name>` with the data set's layout, once its files match the
//! registry's per-file checksums.

mod commands;
mod download;
mod install;
pub mod local;
mod registry;

pub use commands::{run_add, run_fetch, run_list, AddRequest, FetchRequest, ListRequest};
pub use download::join_url;
pub use registry::{known, registry, ArchiveKind, DatasetEntry, LocalFile, RemoteFile};

use anyhow::{anyhow, bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use download::{make_agent, obtain_file};
use install::{clear_unmarked_target, install, remove_if_empty, remove_stale_temporaries};
use registry::{check_entry, known_names};

/// Environment variable naming the cache folder.
pub const CACHE_ENV: &str = "REGULAB_DATA";
/// Environment variable with the network timeout in seconds.
pub const TIMEOUT_ENV: &str = "REGULAB_FETCH_TIMEOUT_SECS";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// File inside a data folder that says it was unpacked completely and verified.
pub const COMPLETE_MARKER: &str = ".regulab-complete";
const DOWNLOADS_FOLDER: &str = "downloads";
const PART_SUFFIX: &str = ".part";
const UNPACK_PREFIX: &str = ".unpack.";

/// Where and how to download.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchOptions {
    /// Cache folder; `None` means `$REGULAB_DATA`, else the platform cache folder.
    pub cache_dir: Option<PathBuf>,
    /// Base URL used instead of the publisher's; file names are appended.
    pub mirror: Option<String>,
    /// Report progress on stderr: a bar when stderr is a terminal, else one line per file.
    pub progress: bool,
    /// Limit on connecting and on each wait for data, not on the whole transfer: a stalled
    /// server ends in an error while a slow but steady download goes on.
    pub timeout: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            cache_dir: None,
            mirror: None,
            progress: false,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl FetchOptions {
    /// The defaults, with the timeout from `$REGULAB_FETCH_TIMEOUT_SECS` when it is set.
    pub fn from_env() -> Result<FetchOptions> {
        let mut options = FetchOptions::default();
        if let Some(value) = std::env::var_os(TIMEOUT_ENV).filter(|value| !value.is_empty()) {
            let text = value.to_string_lossy();
            options.timeout =
                parse_seconds(&text).map_err(|problem| anyhow!("${TIMEOUT_ENV}: {problem}"))?;
        }
        Ok(options)
    }
}

/// Parses a positive number of seconds (fractions allowed).
pub fn parse_seconds(text: &str) -> std::result::Result<Duration, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if seconds.is_nan() || seconds <= 0.0 {
        return Err(format!("{text:?}: expected a positive number of seconds"));
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{text:?}: too many seconds"))
}

/// The cache folder: the override, else `$REGULAB_DATA`, else the platform cache folder
/// plus `regulab`. The folder is not created here.
pub fn cache_dir(override_dir: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = override_dir {
        return Ok(dir.to_path_buf());
    }
    if let Some(dir) = std::env::var_os(CACHE_ENV).filter(|value| !value.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    dirs::cache_dir()
        .map(|dir| dir.join("regulab"))
        .ok_or_else(|| {
            anyhow!("no cache folder: this platform reports none (is $HOME set?); set ${CACHE_ENV} or pass --cache DIR")
        })
}

/// The complete data folder of `name` in `cache`, if it has been fetched.
pub fn cached_path(name: &str, cache: &Path) -> Option<PathBuf> {
    let dir = cache.join(name);
    dir.join(COMPLETE_MARKER).is_file().then_some(dir)
}

/// Fetches a known data set (see [`registry()`]) and returns its data folder.
pub fn fetch(name: &str, options: &FetchOptions) -> Result<PathBuf> {
    let entry = known(name)
        .ok_or_else(|| anyhow!("unknown data set {name:?}; known: {}", known_names()))?;
    fetch_entry(entry, options)
}

/// For train commands' `--data VALUE [--download]`: if VALUE is a known name, returns the
/// cached folder, a registered or hand-placed one (see [`local`]), or fetches it when
/// `download` is true, or else fails naming the ways to get it. Returns `Ok(None)` when VALUE
/// is not a known name, or when a file or folder of that name exists (a local copy wins over
/// the cache); the caller then treats VALUE as a path.
pub fn resolve_named(
    value: &str,
    download: bool,
    options: &FetchOptions,
) -> Result<Option<PathBuf>> {
    let Some(entry) = known(value) else {
        return Ok(None);
    };
    if Path::new(value).exists() {
        return Ok(None);
    }
    let cache = cache_dir(options.cache_dir.as_deref())?;
    if let Some(dir) = present(entry, &cache)? {
        return Ok(Some(dir));
    }
    if download {
        return fetch_entry(entry, options).map(Some);
    }
    let cache_flag = match &options.cache_dir {
        Some(dir) => format!(" --cache {}", dir.display()),
        None => String::new(),
    };
    bail!(
        "data set {value} is not in the cache {}: run `regulab data fetch {value}{cache_flag}` (or add --download), pass a copy's folder as --data PATH, or register one with `regulab data add {value} PATH`",
        cache.display()
    )
}

/// The data set's folder when it is on disk: fetched (with the marker), registered, or
/// placed in the cache by hand (verified).
fn present(entry: &DatasetEntry, cache: &Path) -> Result<Option<PathBuf>> {
    if let Some(dir) = cached_path(entry.name, cache) {
        return Ok(Some(dir));
    }
    Ok(local::local_folder(entry, cache)?.map(|source| source.path().to_path_buf()))
}

/// Fetches any entry: the registry's, or one built by a caller (tests point one at a local
/// server with the fixture's checksums). Returns `<cache>/<entry.name>`.
pub fn fetch_entry(entry: &DatasetEntry, options: &FetchOptions) -> Result<PathBuf> {
    check_entry(entry)?;
    let cache = cache_dir(options.cache_dir.as_deref())?;
    if let Some(dir) = present(entry, &cache)? {
        return Ok(dir);
    }
    let target = cache.join(entry.name);
    clear_unmarked_target(&target)?;
    let downloads = cache.join(DOWNLOADS_FOLDER).join(entry.name);
    fs::create_dir_all(&downloads)
        .with_context(|| format!("{}: cannot create the download folder", downloads.display()))?;
    remove_stale_temporaries(&downloads);
    let outcome = download_and_install(entry, options, &downloads, &target);
    remove_if_empty(&downloads);
    remove_if_empty(&cache.join(DOWNLOADS_FOLDER));
    match outcome {
        Ok(()) => Ok(target),
        // Another process may have installed the same data set while this one worked.
        Err(error) => cached_path(entry.name, &cache).ok_or(error),
    }
}

fn download_and_install(
    entry: &DatasetEntry,
    options: &FetchOptions,
    downloads: &Path,
    target: &Path,
) -> Result<()> {
    let base_urls: Vec<String> = match &options.mirror {
        Some(mirror) => {
            if !(mirror.starts_with("http://") || mirror.starts_with("https://")) {
                bail!("--mirror {mirror}: expected an http:// or https:// URL");
            }
            vec![mirror.clone()]
        }
        None => entry.base_urls.iter().map(|url| url.to_string()).collect(),
    };
    if base_urls.is_empty() {
        bail!(
            "data set {}: no URL to download from; pass --mirror URL",
            entry.name
        );
    }
    let agent = make_agent(options.timeout);
    let mut verified = Vec::with_capacity(entry.files.len());
    for file in entry.files {
        verified.push(obtain_file(
            &agent, entry, file, &base_urls, downloads, options,
        )?);
    }
    install(entry, &verified, downloads, target, options)
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_parse_and_reject() {
        assert_eq!(parse_seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("-3").is_err());
        assert!(parse_seconds("NaN").is_err());
        assert!(parse_seconds("soon").is_err());
        assert!(parse_seconds("1e300").is_err());
    }
}

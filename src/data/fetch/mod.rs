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

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use md5::Md5;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{self, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

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

/// How the downloaded files become the data folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    /// Zip archives whose entries sit under `top_folder`; that folder becomes the data folder.
    Zip { top_folder: &'static str },
    /// Gzip-compressed files kept as they are, gathered into the data folder.
    GzipFiles,
}

/// One published file with what is known about it. At least one checksum is required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    pub name: &'static str,
    pub bytes: Option<u64>,
    pub md5: Option<&'static str>,
    pub sha256: Option<&'static str>,
}

/// A data set that `regulab data fetch` knows how to download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetEntry {
    pub name: &'static str,
    pub description: &'static str,
    /// Publisher base URLs, tried in order; file names are appended.
    pub base_urls: &'static [&'static str],
    pub files: &'static [RemoteFile],
    pub archive: ArchiveKind,
}

impl DatasetEntry {
    /// Total download size, when every file's size is known.
    pub fn download_bytes(&self) -> Option<u64> {
        self.files.iter().map(|file| file.bytes).sum()
    }
}

// GroupLens serves the same files over plain HTTP; it is tried only when HTTPS fails
// (the host's certificate has lapsed before), and the pinned checksums make the transport
// irrelevant to integrity.
const GROUPLENS: &[&str] = &[
    "https://files.grouplens.org/datasets/movielens/",
    "http://files.grouplens.org/datasets/movielens/",
];

// Checksum and size sources:
// * MovieLens MD5: the `<name>.zip.md5` files GroupLens publishes next to each zip. The
//   values for ml-100k, ml-1m, ml-10m, ml-20m and ml-25m are as pinned in
//   github.com/eli-osherovich/papers_with_code `datasets/movielens/dl_config.py`; the ml-32m
//   value is quoted identically by several public loaders (e.g. as a pooch `known_hash`).
// * MovieLens SHA-256 and sizes: tensorflow/datasets
//   `tensorflow_datasets/url_checksums/movielens.txt` (ml-100k, ml-1m, ml-20m, ml-25m,
//   ml-latest-small). ml-latest-small has no stable published MD5 (GroupLens regenerates
//   "latest" releases), so the TFDS SHA-256 of the 2018 release is the pin. The ml-10m and
//   ml-32m sizes are those checked by public download scripts.
// * MNIST and Fashion-MNIST MD5 and mirrors: torchvision `torchvision/datasets/mnist.py`
//   (`MNIST.resources`, `FashionMNIST.resources`); sizes from tensorflow/datasets
//   `url_checksums/mnist.txt` and `url_checksums/fashion_mnist.txt`.
static REGISTRY: &[DatasetEntry] = &[
    DatasetEntry {
        name: "ml-100k",
        description: "MovieLens 100K: 100,000 ratings (1-5) by 943 users on 1,682 movies, with the official u1..u5/ua/ub splits (1998)",
        base_urls: GROUPLENS,
        files: &[RemoteFile {
            name: "ml-100k.zip",
            bytes: Some(4_924_029),
            md5: Some("0e33842e24a9c977be4e0107933c0723"),
            sha256: Some("50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229"),
        }],
        archive: ArchiveKind::Zip { top_folder: "ml-100k" },
    },
    DatasetEntry {
        name: "ml-1m",
        description: "MovieLens 1M: 1,000,209 ratings (1-5) by 6,040 users (2003)",
        base_urls: GROUPLENS,
        files: &[RemoteFile {
            name: "ml-1m.zip",
            bytes: Some(5_917_549),
            md5: Some("c4d9eecfca2ab87c1945afe126590906"),
            sha256: Some("a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20"),
        }],
        archive: ArchiveKind::Zip { top_folder: "ml-1m" },
    },
    DatasetEntry {
        name: "ml-10m",
        description: "MovieLens 10M: 10,000,054 ratings (half stars) by 69,878 users (2009)",
        base_urls: GROUPLENS,
        files: &[RemoteFile {
            name: "ml-10m.zip",
            bytes: Some(65_566_137),
            md5: Some("ce571fd55effeba0271552578f2648bd"),
            sha256: None,
        }],
        archive: ArchiveKind::Zip { top_folder: "ml-10M100K" },
    },
    DatasetEntry {
        name: "ml-20m",
        description: "MovieLens 20M: 20,000,263 ratings (half stars) by 138,493 users (2015)",
        base_urls: GROUPLENS,
        files: &[RemoteFile {
            name: "ml-20m.zip",
            bytes: Some(198_702_078),
            md5: Some("cd245b17a1ae2cc31bb14903e1204af3"),
            sha256: Some("96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3"),
        }],
        archive: ArchiveKind::Zip { top_folder: "ml-20m" },
    },
    DatasetEntry {
        name: "ml-25m",
        description: "MovieLens 25M: 25,000,095 ratings (half stars) by 162,541 users (2019)",
        base_urls: GROUPLENS,
        files: &[RemoteFile {
            name: "ml-25m.zip",
            bytes: Some(261_978_986),
            md5: Some("6b51fb2759a8657d3bfcbfc42b592ada"),
            sha256: Some("8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa"),
        }],
        archive: ArchiveKind::Zip { top_folder: "ml-25m" },
    },
    DatasetEntry {
        name: "ml-32m",
        description: "MovieLens 32M: 32,000,204 ratings (half stars) by 200,948 users (2023)",
        base_urls: GROUPLENS,
        files: &[RemoteFile {
            name: "ml-32m.zip",
            bytes: Some(238_950_008),
            md5: Some("d472be332d4daa821edc399621853b57"),
            sha256: None,
        }],
        archive: ArchiveKind::Zip { top_folder: "ml-32m" },
    },
    DatasetEntry {
        name: "ml-latest-small",
        description: "MovieLens latest small: 100,836 ratings (half stars) by 610 users (2018 release)",
        base_urls: GROUPLENS,
        files: &[RemoteFile {
            name: "ml-latest-small.zip",
            bytes: Some(978_202),
            md5: None,
            sha256: Some("696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436"),
        }],
        archive: ArchiveKind::Zip { top_folder: "ml-latest-small" },
    },
    DatasetEntry {
        name: "mnist",
        description: "MNIST: 70,000 28x28 grayscale handwritten digits (60,000 train, 10,000 test), IDX .gz files",
        base_urls: &[
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ],
        files: &[
            RemoteFile {
                name: "train-images-idx3-ubyte.gz",
                bytes: Some(9_912_422),
                md5: Some("f68b3c2dcbeaaa9fbdd348bbdeb94873"),
                sha256: None,
            },
            RemoteFile {
                name: "train-labels-idx1-ubyte.gz",
                bytes: Some(28_881),
                md5: Some("d53e105ee54ea40749a09fcbcd1e9432"),
                sha256: None,
            },
            RemoteFile {
                name: "t10k-images-idx3-ubyte.gz",
                bytes: Some(1_648_877),
                md5: Some("9fb629c4189551a2d022fa330f9573f3"),
                sha256: None,
            },
            RemoteFile {
                name: "t10k-labels-idx1-ubyte.gz",
                bytes: Some(4_542),
                md5: Some("ec29112dd5afa0611ce80d1b7f02629c"),
                sha256: None,
            },
        ],
        archive: ArchiveKind::GzipFiles,
    },
    DatasetEntry {
        name: "fashion-mnist",
        description: "Fashion-MNIST: 70,000 28x28 grayscale clothing images in 10 classes (60,000 train, 10,000 test), IDX .gz files",
        base_urls: &["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        files: &[
            RemoteFile {
                name: "train-images-idx3-ubyte.gz",
                bytes: Some(26_421_880),
                md5: Some("8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
                sha256: None,
            },
            RemoteFile {
                name: "train-labels-idx1-ubyte.gz",
                bytes: Some(29_515),
                md5: Some("25c81989df183df01b3e8a0aad5dffbe"),
                sha256: None,
            },
            RemoteFile {
                name: "t10k-images-idx3-ubyte.gz",
                bytes: Some(4_422_102),
                md5: Some("bef4ecab320f06d8554ea6380940ec79"),
                sha256: None,
            },
            RemoteFile {
                name: "t10k-labels-idx1-ubyte.gz",
                bytes: Some(5_148),
                md5: Some("bb300cfdad3c16e7a12a480ee83cd310"),
                sha256: None,
            },
        ],
        archive: ArchiveKind::GzipFiles,
    },
];

/// Every known data set, in the order `regulab data list` shows them.
pub fn registry() -> &'static [DatasetEntry] {
    REGISTRY
}

pub fn known(name: &str) -> Option<&'static DatasetEntry> {
    REGISTRY.iter().find(|entry| entry.name == name)
}

fn known_names() -> String {
    REGISTRY
        .iter()
        .map(|entry| entry.name)
        .collect::<Vec<_>>()
        .join(", ")
}

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

/// Fetches a known data set (see [`registry`]) and returns its data folder.
pub fn fetch(name: &str, options: &FetchOptions) -> Result<PathBuf> {
    let entry = known(name)
        .ok_or_else(|| anyhow!("unknown data set {name:?}; known: {}", known_names()))?;
    fetch_entry(entry, options)
}

/// For train commands' `--data VALUE [--download]`: if VALUE is a known name, returns the
/// cached folder, or fetches it when `download` is true, or else fails saying exactly
/// which `regulab data fetch NAME` to run. Returns `Ok(None)` when VALUE is not a known
/// name, or when a file or folder of that name exists (a local copy wins over the cache);
/// the caller then treats VALUE as a path.
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
    if let Some(dir) = cached_path(entry.name, &cache) {
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
        "data set {value} is not in the cache {}: run `regulab data fetch {value}{cache_flag}` first, or add --download",
        cache.display()
    )
}

/// Fetches any entry: the registry's, or one built by a caller (tests point one at a local
/// server with the fixture's checksums). Returns `<cache>/<entry.name>`.
pub fn fetch_entry(entry: &DatasetEntry, options: &FetchOptions) -> Result<PathBuf> {
    check_entry(entry)?;
    let cache = cache_dir(options.cache_dir.as_deref())?;
    if let Some(dir) = cached_path(entry.name, &cache) {
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

fn check_entry(entry: &DatasetEntry) -> Result<()> {
    // Names become path components inside the cache.
    let plain = |name: &str| {
        !name.is_empty()
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if !plain(entry.name) || entry.name == DOWNLOADS_FOLDER {
        bail!(
            "data set name {:?}: use letters, digits, '-', '_' and '.', not starting with '.'",
            entry.name
        );
    }
    if entry.files.is_empty() {
        bail!("data set {}: no files to download", entry.name);
    }
    for file in entry.files {
        if !plain(file.name) {
            bail!("data set {}: bad file name {:?}", entry.name, file.name);
        }
        if file.md5.is_none() && file.sha256.is_none() {
            bail!(
                "data set {}: {} has no checksum to verify",
                entry.name,
                file.name
            );
        }
    }
    Ok(())
}

/// A folder at the target without a marker was not made by a completed fetch (the install
/// step renames whole folders): an empty one is removed, anything else is left to its owner.
fn clear_unmarked_target(target: &Path) -> Result<()> {
    if !target.exists() {
        return Ok(());
    }
    if target.is_dir() && fs::remove_dir(target).is_ok() {
        return Ok(());
    }
    bail!(
        "{} exists but is not a complete fetch (no {COMPLETE_MARKER} marker inside): move it away and fetch again, or pass that folder itself as --data",
        target.display()
    )
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

fn make_agent(timeout: Duration) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .timeout_resolve(Some(timeout))
        .timeout_connect(Some(timeout))
        .timeout_send_request(Some(timeout))
        .timeout_recv_response(Some(timeout))
        .timeout_per_read(Some(timeout))
        .http_status_as_error(false)
        .user_agent(concat!("regulab/", env!("CARGO_PKG_VERSION")))
        .build();
    ureq::Agent::new_with_config(config)
}

pub fn join_url(base: &str, file: &str) -> String {
    format!("{}/{file}", base.trim_end_matches('/'))
}

/// A file in the downloads folder whose checksums matched.
struct VerifiedFile {
    name: &'static str,
    path: PathBuf,
    source: String,
    digests: Digests,
}

#[derive(Debug, Clone)]
struct Digests {
    bytes: u64,
    md5: String,
    sha256: String,
}

struct Hasher {
    md5: Md5,
    sha256: Sha256,
    bytes: u64,
}

impl Hasher {
    fn new() -> Hasher {
        Hasher {
            md5: Md5::new(),
            sha256: Sha256::new(),
            bytes: 0,
        }
    }

    fn update(&mut self, data: &[u8]) {
        self.md5.update(data);
        self.sha256.update(data);
        self.bytes += data.len() as u64;
    }

    fn finish(self) -> Digests {
        Digests {
            bytes: self.bytes,
            md5: hex(&self.md5.finalize()),
            sha256: hex(&self.sha256.finalize()),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn hash_file(path: &Path) -> Result<Digests> {
    let mut reader = BufReader::with_capacity(
        1 << 20,
        File::open(path).with_context(|| format!("{}: cannot open", path.display()))?,
    );
    let mut hasher = Hasher::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let count = reader
            .read(&mut buffer)
            .with_context(|| format!("{}: read error", path.display()))?;
        if count == 0 {
            return Ok(hasher.finish());
        }
        hasher.update(&buffer[..count]);
    }
}

/// Compares the size and every checksum the entry pins; a mismatch reports all of them.
fn verify(file: &RemoteFile, digests: &Digests) -> std::result::Result<(), String> {
    let mut expected = Vec::new();
    let mut got = Vec::new();
    let mut matches = true;
    if let Some(bytes) = file.bytes {
        matches &= bytes == digests.bytes;
        expected.push(format!("{bytes} bytes"));
        got.push(format!("{} bytes", digests.bytes));
    }
    if let Some(md5) = file.md5 {
        matches &= md5.eq_ignore_ascii_case(&digests.md5);
        expected.push(format!("md5 {md5}"));
        got.push(format!("md5 {}", digests.md5));
    }
    if let Some(sha256) = file.sha256 {
        matches &= sha256.eq_ignore_ascii_case(&digests.sha256);
        expected.push(format!("sha256 {sha256}"));
        got.push(format!("sha256 {}", digests.sha256));
    }
    if matches {
        Ok(())
    } else {
        Err(format!(
            "checksum mismatch: expected {}, got {}",
            expected.join(", "),
            got.join(", ")
        ))
    }
}

/// Why one URL did not give a verified file.
enum Failure {
    /// The network or the server: worth a hint on installing by hand.
    Transfer(String),
    /// The bytes arrived but were wrong, or could not be stored.
    Content(String),
}

fn obtain_file(
    agent: &ureq::Agent,
    entry: &DatasetEntry,
    file: &'static RemoteFile,
    base_urls: &[String],
    downloads: &Path,
    options: &FetchOptions,
) -> Result<VerifiedFile> {
    let destination = downloads.join(file.name);
    if destination.is_file() {
        let digests = hash_file(&destination)?;
        match verify(file, &digests) {
            Ok(()) => {
                return Ok(VerifiedFile {
                    name: file.name,
                    source: destination.display().to_string(),
                    path: destination,
                    digests,
                })
            }
            Err(problem) => {
                fs::remove_file(&destination)
                    .with_context(|| format!("{}: cannot remove", destination.display()))?;
                eprintln!(
                    "regulab: {}: {problem}; removed it and downloading again",
                    destination.display()
                );
            }
        }
    }
    let mut failures = Vec::new();
    let mut any_transfer_failure = false;
    for base in base_urls {
        let url = join_url(base, file.name);
        match download_verified(agent, &url, file, downloads, &destination, options) {
            Ok(digests) => {
                return Ok(VerifiedFile {
                    name: file.name,
                    path: destination,
                    source: url,
                    digests,
                })
            }
            Err(Failure::Transfer(message)) => {
                any_transfer_failure = true;
                failures.push(message);
            }
            Err(Failure::Content(message)) => failures.push(message),
        }
    }
    let mut message = failures.join("; ");
    if any_transfer_failure {
        message += &by_hand_hint(entry, &base_urls[0], downloads);
    }
    Err(anyhow!(message))
}

/// Where to put the files when the network fails: the files still missing, by name, in the
/// exact folder that the next fetch verifies and uses.
fn by_hand_hint(entry: &DatasetEntry, base_url: &str, downloads: &Path) -> String {
    let missing: Vec<&str> = entry
        .files
        .iter()
        .filter(|file| !downloads.join(file.name).is_file())
        .map(|file| file.name)
        .collect();
    let what = match missing.as_slice() {
        [only] => format!(
            "download {} and save it as {}",
            join_url(base_url, only),
            downloads.join(only).display()
        ),
        several => format!(
            "download {} from {base_url} into the folder {}",
            several.join(", "),
            downloads.display()
        ),
    };
    format!(
        "; to install it by hand, {what}, then run `regulab data fetch {}` again with the same options",
        entry.name
    )
}

static TEMPORARY_SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// A name no other fetch uses: the process id (which also tells later runs whether the
/// owner still lives) and a counter for fetches within one process.
fn temporary_tag() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        TEMPORARY_SEQUENCE.fetch_add(1, Ordering::Relaxed)
    )
}

fn download_verified(
    agent: &ureq::Agent,
    url: &str,
    file: &RemoteFile,
    downloads: &Path,
    destination: &Path,
    options: &FetchOptions,
) -> std::result::Result<Digests, Failure> {
    let part = downloads.join(format!("{}.{}{PART_SUFFIX}", file.name, temporary_tag()));
    let outcome = download_to(agent, url, &part, file.bytes, options).and_then(|digests| {
        verify(file, &digests)
            .map_err(|problem| {
                Failure::Content(format!("{url}: {problem}; the download was deleted"))
            })
            .map(|()| digests)
    });
    let outcome = outcome.and_then(|digests| {
        fs::rename(&part, destination)
            .map_err(|error| {
                Failure::Content(format!(
                    "{}: cannot move the verified download into place: {error}",
                    destination.display()
                ))
            })
            .map(|()| digests)
    });
    if outcome.is_err() {
        let _ = fs::remove_file(&part);
    }
    outcome
}

fn download_to(
    agent: &ureq::Agent,
    url: &str,
    part: &Path,
    expected_bytes: Option<u64>,
    options: &FetchOptions,
) -> std::result::Result<Digests, Failure> {
    let transfer =
        |reason: String| Failure::Transfer(format!("could not download {url}: {reason}"));
    let response = agent
        .get(url)
        .call()
        .map_err(|error| transfer(describe_http_error(error, options.timeout)))?;
    let status = response.status();
    if !status.is_success() {
        let reason = status.canonical_reason().unwrap_or("");
        return Err(transfer(
            format!("HTTP status {} {reason}", status.as_u16())
                .trim_end()
                .to_string(),
        ));
    }
    let declared = response.body().content_length();
    let mut reader = response.into_body().into_reader();
    let mut output = File::create(part)
        .map_err(|error| Failure::Content(format!("{}: cannot create: {error}", part.display())))?;
    let progress = Progress::start(
        options.progress,
        url,
        file_name_of(url),
        declared.or(expected_bytes),
    );
    let mut hasher = Hasher::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let count = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(count) => count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => {
                progress.finish();
                return Err(transfer(describe_read_error(
                    error,
                    hasher.bytes,
                    declared,
                    options.timeout,
                )));
            }
        };
        hasher.update(&buffer[..count]);
        progress.advance(count as u64);
        output.write_all(&buffer[..count]).map_err(|error| {
            Failure::Content(format!("{}: write error: {error}", part.display()))
        })?;
    }
    progress.finish();
    if let Some(declared) = declared {
        if hasher.bytes != declared {
            return Err(transfer(format!(
                "transfer truncated: the connection closed after {} of {declared} bytes",
                hasher.bytes
            )));
        }
    }
    // On disk before the rename makes it visible as a verified file.
    output
        .sync_all()
        .map_err(|error| Failure::Content(format!("{}: cannot flush: {error}", part.display())))?;
    Ok(hasher.finish())
}

fn file_name_of(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

fn seconds(duration: Duration) -> String {
    format!("{} s", duration.as_secs_f64())
}

fn describe_http_error(error: ureq::Error, timeout: Duration) -> String {
    match error {
        ureq::Error::Timeout(phase) => format!(
            "no answer within {} ({phase} timeout; set {TIMEOUT_ENV} or --timeout to wait longer)",
            seconds(timeout)
        ),
        ureq::Error::HostNotFound => "host not found (no network, or no DNS)".to_string(),
        ureq::Error::ConnectionFailed => "connection failed (no network?)".to_string(),
        ureq::Error::Io(error) => describe_io_error(&error, timeout),
        other => other.to_string(),
    }
}

fn describe_io_error(error: &io::Error, timeout: Duration) -> String {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => {
            "connection refused (no server there, or no network)".to_string()
        }
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => format!(
            "the server sent nothing for {} (set {TIMEOUT_ENV} or --timeout to wait longer)",
            seconds(timeout)
        ),
        _ => error.to_string(),
    }
}

fn describe_read_error(
    error: io::Error,
    received: u64,
    declared: Option<u64>,
    timeout: Duration,
) -> String {
    if error.kind() == io::ErrorKind::UnexpectedEof {
        let of = declared
            .map(|total| format!(" of {total}"))
            .unwrap_or_default();
        return format!("transfer truncated: the connection closed after {received}{of} bytes");
    }
    // ureq wraps its own errors (timeouts included) inside io::Error for the reader.
    let reason = describe_http_error(ureq::Error::from(error), timeout);
    format!("{reason}, after {received} bytes")
}

/// Progress on stderr: a bar on a terminal, a line per file otherwise, nothing when off.
struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    fn start(enabled: bool, url: &str, label: &str, total: Option<u64>) -> Progress {
        if !enabled {
            return Progress { bar: None };
        }
        if !io::stderr().is_terminal() {
            let size = total
                .map(|bytes| format!(" ({})", human_bytes(bytes)))
                .unwrap_or_default();
            eprintln!("downloading {url}{size}");
            return Progress { bar: None };
        }
        let bar = match total {
            Some(total) => ProgressBar::new(total).with_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .map(|style| style.progress_chars("=> "))
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {msg} {bytes} {bytes_per_sec}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        bar.set_message(label.to_string());
        Progress { bar: Some(bar) }
    }

    fn advance(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Bytes in binary units with one decimal, e.g. `4.7 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// What the marker file records.
#[derive(Debug, Serialize)]
struct CompletionRecord<'a> {
    name: &'a str,
    fetched_at: String,
    files: Vec<FileRecord<'a>>,
}

#[derive(Debug, Serialize)]
struct FileRecord<'a> {
    name: &'a str,
    source: &'a str,
    bytes: u64,
    md5: &'a str,
    sha256: &'a str,
}

/// Unpacks into a staging folder next to the downloads, then renames the finished folder
/// into place: the data folder is either absent or complete.
fn install(
    entry: &DatasetEntry,
    verified: &[VerifiedFile],
    downloads: &Path,
    target: &Path,
    options: &FetchOptions,
) -> Result<()> {
    let staging = downloads.join(format!("{UNPACK_PREFIX}{}", temporary_tag()));
    fs::create_dir_all(&staging)
        .with_context(|| format!("{}: cannot create", staging.display()))?;
    let outcome = unpack_and_rename(entry, verified, &staging, target, options);
    let _ = fs::remove_dir_all(&staging);
    outcome?;
    // The data folder holds everything now; the downloads are no longer needed.
    for file in verified {
        let _ = fs::remove_file(&file.path);
    }
    Ok(())
}

fn unpack_and_rename(
    entry: &DatasetEntry,
    verified: &[VerifiedFile],
    staging: &Path,
    target: &Path,
    options: &FetchOptions,
) -> Result<()> {
    let folder = match entry.archive {
        ArchiveKind::Zip { top_folder } => {
            for file in verified {
                if options.progress {
                    eprintln!("unpacking {}", file.path.display());
                }
                unzip(&file.path, staging)?;
            }
            find_top_folder(staging, top_folder)?
        }
        ArchiveKind::GzipFiles => {
            let folder = staging.join(entry.name);
            fs::create_dir_all(&folder)
                .with_context(|| format!("{}: cannot create", folder.display()))?;
            for file in verified {
                let copy = folder.join(file.name);
                fs::copy(&file.path, &copy).with_context(|| {
                    format!("cannot copy {} to {}", file.path.display(), copy.display())
                })?;
            }
            folder
        }
    };
    let record = CompletionRecord {
        name: entry.name,
        fetched_at: chrono::Utc::now().to_rfc3339(),
        files: verified
            .iter()
            .map(|file| FileRecord {
                name: file.name,
                source: &file.source,
                bytes: file.digests.bytes,
                md5: &file.digests.md5,
                sha256: &file.digests.sha256,
            })
            .collect(),
    };
    let marker = folder.join(COMPLETE_MARKER);
    fs::write(&marker, serde_json::to_string_pretty(&record)? + "\n")
        .with_context(|| format!("{}: cannot write", marker.display()))?;
    fs::rename(&folder, target).with_context(|| {
        format!(
            "cannot move {} into place at {}",
            folder.display(),
            target.display()
        )
    })
}

fn unzip(archive_path: &Path, staging: &Path) -> Result<()> {
    let file = File::open(archive_path)
        .with_context(|| format!("{}: cannot open", archive_path.display()))?;
    let mut archive = zip::ZipArchive::new(BufReader::new(file))
        .with_context(|| format!("{}: not a readable zip archive", archive_path.display()))?;
    // `extract` refuses entry names that would land outside `staging`.
    archive.extract(staging).with_context(|| {
        format!(
            "{}: cannot unpack into {}",
            archive_path.display(),
            staging.display()
        )
    })
}

/// The archive's top folder: the expected name, else the only folder there is.
fn find_top_folder(staging: &Path, expected: &str) -> Result<PathBuf> {
    let expected_path = staging.join(expected);
    if expected_path.is_dir() {
        return Ok(expected_path);
    }
    let folders: Vec<PathBuf> = fs::read_dir(staging)
        .with_context(|| format!("{}: cannot list", staging.display()))?
        .filter_map(|item| item.ok().map(|item| item.path()))
        .filter(|path| path.is_dir() && !path.ends_with("__MACOSX"))
        .collect();
    match folders.as_slice() {
        [only] => Ok(only.clone()),
        _ => {
            let names: Vec<String> = folders
                .iter()
                .filter_map(|path| {
                    path.file_name()
                        .map(|name| name.to_string_lossy().into_owned())
                })
                .collect();
            bail!(
                "the archive has no {expected}/ folder (top-level folders: {})",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            )
        }
    }
}

/// Removes downloads and staging folders left by fetches that were interrupted: their
/// process is gone (or, where that cannot be checked, they are over a day old).
fn remove_stale_temporaries(downloads: &Path) {
    let Ok(items) = fs::read_dir(downloads) else {
        return;
    };
    for item in items.flatten() {
        let name = item.file_name().to_string_lossy().into_owned();
        let tag = if let Some(rest) = name.strip_prefix(UNPACK_PREFIX) {
            rest
        } else if let Some(stem) = name.strip_suffix(PART_SUFFIX) {
            stem.rsplit('.').next().unwrap_or("")
        } else {
            continue;
        };
        let Some(pid) = tag
            .split('-')
            .next()
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let stale = match process_running(pid) {
            Some(running) => !running,
            None => item
                .metadata()
                .and_then(|metadata| metadata.modified())
                .ok()
                .and_then(|modified| SystemTime::now().duration_since(modified).ok())
                .is_some_and(|age| age > Duration::from_secs(24 * 3600)),
        };
        if stale {
            let path = item.path();
            let _ = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
        }
    }
}

/// Whether a process id is alive, where the platform tells (`/proc`).
fn process_running(pid: u32) -> Option<bool> {
    let processes = Path::new("/proc");
    if !processes.join("self").exists() {
        return None;
    }
    Some(processes.join(pid.to_string()).exists())
}

fn remove_if_empty(dir: &Path) {
    let _ = fs::remove_dir(dir);
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
    let listed: Vec<ListedDataset> = REGISTRY
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_are_unique_and_checksums_well_formed() {
        let mut names: Vec<&str> = REGISTRY.iter().map(|entry| entry.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), REGISTRY.len());
        for entry in REGISTRY {
            check_entry(entry).expect("valid entry");
            assert!(entry.download_bytes().is_some(), "{}", entry.name);
            for file in entry.files {
                if let Some(md5) = file.md5 {
                    assert_eq!(md5.len(), 32, "{}", file.name);
                    assert!(md5.chars().all(|c| c.is_ascii_hexdigit()));
                }
                if let Some(sha256) = file.sha256 {
                    assert_eq!(sha256.len(), 64, "{}", file.name);
                    assert!(sha256.chars().all(|c| c.is_ascii_hexdigit()));
                }
            }
        }
    }

    #[test]
    fn the_issue_lists_these_names() {
        for name in [
            "ml-100k",
            "ml-1m",
            "ml-10m",
            "ml-20m",
            "ml-25m",
            "ml-32m",
            "ml-latest-small",
            "mnist",
            "fashion-mnist",
        ] {
            assert!(known(name).is_some(), "{name}");
        }
        assert!(known("ml-5k").is_none());
    }

    #[test]
    fn urls_join_with_or_without_a_trailing_slash() {
        assert_eq!(join_url("http://h/a/", "f.zip"), "http://h/a/f.zip");
        assert_eq!(join_url("http://h/a", "f.zip"), "http://h/a/f.zip");
        let ml = known("ml-100k").expect("known");
        assert_eq!(
            join_url(ml.base_urls[0], ml.files[0].name),
            "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
        );
    }

    #[test]
    fn seconds_parse_and_reject() {
        assert_eq!(parse_seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("-3").is_err());
        assert!(parse_seconds("NaN").is_err());
        assert!(parse_seconds("soon").is_err());
        assert!(parse_seconds("1e300").is_err());
    }

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(4_924_029), "4.7 MiB");
        assert_eq!(human_bytes(238_950_008), "227.9 MiB");
    }

    #[test]
    fn digests_of_known_input() {
        let mut hasher = Hasher::new();
        hasher.update(b"abc");
        let digests = hasher.finish();
        assert_eq!(digests.md5, "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            digests.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(digests.bytes, 3);
    }

    #[test]
    fn verification_reports_expected_and_got() {
        let file = RemoteFile {
            name: "f",
            bytes: Some(3),
            md5: Some("00000000000000000000000000000000"),
            sha256: None,
        };
        let mut hasher = Hasher::new();
        hasher.update(b"abc");
        let problem = verify(&file, &hasher.finish()).expect_err("mismatch");
        assert_eq!(
            problem,
            "checksum mismatch: expected 3 bytes, md5 00000000000000000000000000000000, \
             got 3 bytes, md5 900150983cd24fb0d6963f7d28e17f72"
        );
    }

    #[test]
    fn stale_temporaries_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Process ids never exceed 2^22 on Linux, so this one cannot be running.
        let dead = "4294967294-0";
        let stale_part = dir.path().join(format!("f.zip.{dead}.part"));
        let stale_unpack = dir.path().join(format!(".unpack.{dead}"));
        let own_part = dir
            .path()
            .join(format!("f.zip.{}-7.part", std::process::id()));
        let verified = dir.path().join("f.zip");
        fs::write(&stale_part, b"x").expect("write");
        fs::create_dir(&stale_unpack).expect("mkdir");
        fs::write(&own_part, b"x").expect("write");
        fs::write(&verified, b"x").expect("write");
        remove_stale_temporaries(dir.path());
        if process_running(1).is_some() {
            assert!(!stale_part.exists());
            assert!(!stale_unpack.exists());
        }
        assert!(own_part.exists());
        assert!(verified.exists());
    }
}

//! Getting one verified file into the downloads folder: HTTP with timeouts, temporary
//! `.part` files, size and checksum verification, progress on stderr, and one-line
//! descriptions of network failures.

use anyhow::{anyhow, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use md5::Md5;
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{self, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::registry::{DatasetEntry, RemoteFile};
use super::{FetchOptions, PART_SUFFIX, TIMEOUT_ENV};

pub(super) fn make_agent(timeout: Duration) -> ureq::Agent {
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
pub(super) struct VerifiedFile {
    pub(super) name: &'static str,
    pub(super) path: PathBuf,
    pub(super) source: String,
    pub(super) digests: Digests,
}

#[derive(Debug, Clone)]
pub(super) struct Digests {
    pub(super) bytes: u64,
    pub(super) md5: String,
    pub(super) sha256: String,
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

pub(super) fn obtain_file(
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
                crate::util::erroutln!(
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
pub(super) fn temporary_tag() -> String {
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
                .map(|bytes| format!(" ({})", crate::util::human_bytes(bytes)))
                .unwrap_or_default();
            crate::util::erroutln!("downloading {url}{size}");
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::fetch::known;

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
}

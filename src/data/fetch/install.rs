//! Turning verified downloads into the data folder: unpacking into a staging folder, the
//! completion marker, one rename into place, and clearing temporaries that interrupted
//! fetches left behind.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::fs::{self, File};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::download::{temporary_tag, VerifiedFile};
use super::registry::{ArchiveKind, DatasetEntry};
use super::{FetchOptions, COMPLETE_MARKER, PART_SUFFIX, UNPACK_PREFIX};

/// A folder at the target without a marker was not made by a completed fetch (the install
/// step renames whole folders): an empty one is removed, anything else is left to its owner.
pub(super) fn clear_unmarked_target(target: &Path) -> Result<()> {
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
pub(super) fn install(
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
                    crate::util::erroutln!("unpacking {}", file.path.display());
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
pub(super) fn remove_stale_temporaries(downloads: &Path) {
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

pub(super) fn remove_if_empty(dir: &Path) {
    let _ = fs::remove_dir(dir);
}
#[cfg(test)]
mod tests {
    use super::*;

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

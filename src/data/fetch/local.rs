//! Data sets already on disk, used by name without a download: a folder with the right
//! layout at `<cache>/<name>` (placed there by hand or as a link), or any folder registered
//! with `regulab data add NAME PATH`. Either is verified against the registry's per-file
//! SHA-256 ([`LocalFile`]) before it is used. Registrations live in `<cache>/local.json`,
//! written atomically.

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use super::registry::{known, known_names, ArchiveKind, DatasetEntry, LocalFile};

/// The registrations file inside the cache folder.
pub const LOCAL_REGISTRY: &str = "local.json";

/// What the registrations file holds.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Registrations {
    datasets: BTreeMap<String, Registration>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Registration {
    path: PathBuf,
    added_at: String,
}

/// How a folder checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderCheck {
    /// Files whose SHA-256 matched the registry's.
    pub verified: usize,
    /// Files present whose checksum regulab does not know (layout only).
    pub unverified: usize,
}

impl FolderCheck {
    /// `21 files verified by SHA-256`, or what was checked instead.
    pub fn describe(&self, name: &str) -> String {
        match (self.verified, self.unverified) {
            (n, 0) => format!("{n} files verified by SHA-256"),
            (0, n) => format!(
                "layout checked ({n} files); regulab knows no per-file checksums for {name}"
            ),
            (v, u) => format!("{v} files verified by SHA-256, {u} by layout only"),
        }
    }
}

/// Checks that `dir` holds `entry`'s files: the required ones present, every known checksum
/// matching. Errors are one line naming the folder or the file.
pub fn check_folder(entry: &DatasetEntry, dir: &Path) -> Result<FolderCheck> {
    if entry.local_files.is_empty() {
        bail!("data set {}: regulab knows no layout for it", entry.name);
    }
    if !dir.is_dir() {
        bail!("{}: not a folder", dir.display());
    }
    let mut check = FolderCheck {
        verified: 0,
        unverified: 0,
    };
    for file in entry.local_files {
        let Some((path, gzipped)) = find_file(entry, file, dir) else {
            if file.required {
                bail!(
                    "{}: missing, so {} does not have the {} layout",
                    dir.join(file.name).display(),
                    dir.display(),
                    entry.name
                );
            }
            continue;
        };
        let Some(expected) = file.sha256 else {
            check.unverified += 1;
            continue;
        };
        let actual = sha256_of(&path, gzipped)?;
        if actual != expected {
            let what = if gzipped { "uncompressed " } else { "" };
            bail!(
                "{}: {what}SHA-256 {actual} is not {}'s {expected} (a changed or different file)",
                path.display(),
                entry.name
            );
        }
        check.verified += 1;
    }
    Ok(check)
}

/// The file on disk, and whether it is gzip-compressed.
fn find_file(entry: &DatasetEntry, file: &LocalFile, dir: &Path) -> Option<(PathBuf, bool)> {
    if entry.archive == ArchiveKind::GzipFiles {
        let gz = dir.join(format!("{}.gz", file.name));
        if gz.is_file() {
            return Some((gz, true));
        }
    }
    let plain = dir.join(file.name);
    plain.is_file().then_some((plain, false))
}

fn sha256_of(path: &Path, gzipped: bool) -> Result<String> {
    let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut reader: Box<dyn Read> = if gzipped {
        Box::new(flate2::read::GzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = reader
            .read(&mut buffer)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Where a data set lives on disk without a fetch, and how it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalSource {
    /// Registered with `regulab data add`.
    Registered(PathBuf),
    /// A folder of the data set's name in the cache, without a fetch's marker.
    InCache(PathBuf),
}

impl LocalSource {
    pub fn path(&self) -> &Path {
        match self {
            LocalSource::Registered(path) | LocalSource::InCache(path) => path,
        }
    }
}

/// The data set's folder on disk, verified: the registered one, else `<cache>/<name>` when
/// it exists. `Ok(None)` when there is neither; an error (naming the file) when the folder
/// there does not check out.
pub fn local_folder(entry: &DatasetEntry, cache: &Path) -> Result<Option<LocalSource>> {
    if let Some(path) = registered(entry.name, cache)? {
        check_folder(entry, &path).with_context(|| {
            format!(
                "data set {} is registered at {} ({}), but that folder no longer checks out",
                entry.name,
                path.display(),
                cache.join(LOCAL_REGISTRY).display()
            )
        })?;
        return Ok(Some(LocalSource::Registered(path)));
    }
    let dir = cache.join(entry.name);
    if entry.local_files.is_empty() || !dir.is_dir() {
        return Ok(None);
    }
    check_folder(entry, &dir).with_context(|| {
        format!(
            "{} is in the cache without a fetch's marker and does not check out as {}",
            dir.display(),
            entry.name
        )
    })?;
    Ok(Some(LocalSource::InCache(dir)))
}

fn read_registrations(cache: &Path) -> Result<Registrations> {
    let file = cache.join(LOCAL_REGISTRY);
    match std::fs::read_to_string(&file) {
        Ok(text) => serde_json::from_str(&text)
            .with_context(|| format!("{}: not a regulab registrations file", file.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Registrations::default()),
        Err(error) => Err(error).with_context(|| format!("{}: cannot read", file.display())),
    }
}

/// The folder registered for `name`, if any.
pub fn registered(name: &str, cache: &Path) -> Result<Option<PathBuf>> {
    Ok(read_registrations(cache)?
        .datasets
        .get(name)
        .map(|r| r.path.clone()))
}

/// `regulab data add NAME PATH`: verifies the folder and records it (absolute) in
/// `<cache>/local.json`, replacing an earlier registration of the name. Returns the
/// recorded folder and how it checked out.
pub fn add(name: &str, path: &Path, cache: &Path) -> Result<(PathBuf, FolderCheck)> {
    let entry = known(name).ok_or_else(|| {
        anyhow!(
            "data add {name}: unknown data set; known: {}",
            known_names()
        )
    })?;
    let check = check_folder(entry, path)?;
    let absolute = path
        .canonicalize()
        .with_context(|| format!("{}: cannot resolve", path.display()))?;
    let mut registrations = read_registrations(cache)?;
    registrations.datasets.insert(
        name.to_string(),
        Registration {
            path: absolute.clone(),
            added_at: chrono::Utc::now().to_rfc3339(),
        },
    );
    std::fs::create_dir_all(cache)
        .with_context(|| format!("{}: cannot create the cache folder", cache.display()))?;
    crate::util::write_json_atomic(&cache.join(LOCAL_REGISTRY), &registrations)?;
    Ok((absolute, check))
}

/// How a known name resolved to `dir` in `cache`, in words (`data info NAME` says it):
/// `fetched folder`, `registered folder` or `local folder`; `None` for a path.
pub fn how_found(name: &str, dir: &Path, cache: &Path) -> Option<&'static str> {
    known(name)?;
    if super::cached_path(name, cache).as_deref() == Some(dir) {
        return Some("fetched folder");
    }
    if registered(name, cache).ok().flatten().as_deref() == Some(dir) {
        return Some("registered folder");
    }
    (cache.join(name) == dir).then_some("local folder")
}

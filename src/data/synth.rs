//! Writes a ratings data set (typically the synthetic one) as a MovieLens-format folder, so
//! that other tools and the Python references read exactly the ratings regulab trains on.

use super::ratings::{IdMap, Ratings, RatingsDataset};
use super::split::{self, SplitSpec};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The folder layout written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SynthFormat {
    /// `u.data` with every rating plus the split `u1.base`/`u1.test` (80/20, seeded).
    #[default]
    #[serde(rename = "ml-100k")]
    Ml100k,
    /// `ratings.csv` with the `userId,movieId,rating,timestamp` header.
    #[serde(rename = "csv")]
    Csv,
}

impl SynthFormat {
    pub fn name(self) -> &'static str {
        match self {
            SynthFormat::Ml100k => "ml-100k",
            SynthFormat::Csv => "csv",
        }
    }
}

impl FromStr for SynthFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        [SynthFormat::Ml100k, SynthFormat::Csv]
            .into_iter()
            .find(|format| format.name() == text)
            .ok_or_else(|| format!("unknown format {text:?}: use ml-100k or csv"))
    }
}

impl fmt::Display for SynthFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What [`write`] put where.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub dir: PathBuf,
    pub files: Vec<String>,
    pub ratings: usize,
}

impl fmt::Display for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wrote {} ratings to {} ({})",
            self.ratings,
            self.dir.display(),
            self.files.join(", ")
        )
    }
}

/// The training fraction of the `u1` split written with the ml-100k format.
const SPLIT_FRACTION: f64 = 0.8;
/// ml-100k's first timestamp (1997-09-20); rating k gets this plus k seconds, so that time
/// order is the data set's order.
const FIRST_TIMESTAMP: u64 = 874_724_710;

/// Writes every rating of `dataset` (training and test parts) into a new folder `dir`, all or
/// nothing: files go to a temporary folder beside it that is renamed into place at the end.
/// `seed` drives the `u1` split of the ml-100k format. An existing non-empty `dir` is an error.
pub fn write(
    dataset: &RatingsDataset,
    dir: &Path,
    format: SynthFormat,
    seed: u64,
) -> Result<Written> {
    let all = all_ratings(dataset);
    if all.is_empty() {
        bail!(
            "{}: nothing to write, the data set has no ratings",
            dir.display()
        );
    }
    let table = Table {
        ratings: &all,
        users: &dataset.user_ids,
        items: &dataset.item_ids,
    };
    let files = write_atomically(dir, |temp| match format {
        SynthFormat::Ml100k => write_ml100k(&table, temp, seed),
        SynthFormat::Csv => write_csv(&table, temp),
    })?;
    Ok(Written {
        dir: dir.to_path_buf(),
        files,
        ratings: all.len(),
    })
}

fn all_ratings(dataset: &RatingsDataset) -> Ratings {
    let mut all = dataset.train.clone();
    let test = &dataset.test;
    for k in 0..test.len() {
        all.push(test.users[k], test.items[k], test.values[k]);
    }
    all
}

/// Ratings with the raw ids they are written with.
struct Table<'a> {
    ratings: &'a Ratings,
    users: &'a IdMap,
    items: &'a IdMap,
}

impl Table<'_> {
    /// Rating `position` as raw user, raw item, value and timestamp. Values use the shortest
    /// text that reads back as the same f32, so a reloaded data set has the same mean.
    fn row(&self, position: usize, separator: &str) -> Result<String> {
        let r = self.ratings;
        let raw = |ids: &IdMap, index: u32, what: &str| {
            ids.raw_id(index)
                .with_context(|| format!("{what} index {index} has no raw id"))
        };
        Ok(format!(
            "{}{separator}{}{separator}{}{separator}{}",
            raw(self.users, r.users[position], "user")?,
            raw(self.items, r.items[position], "item")?,
            r.values[position],
            FIRST_TIMESTAMP + position as u64
        ))
    }
}

fn write_ml100k(table: &Table, dir: &Path, seed: u64) -> Result<Vec<String>> {
    let all: Vec<usize> = (0..table.ratings.len()).collect();
    let spec = SplitSpec::Random(SPLIT_FRACTION);
    let (mut train, mut test) = split::holdout_positions(table.ratings, &spec, seed)?;
    // In u.data order, as ml-100k's own split files are sorted rather than shuffled.
    train.sort_unstable();
    test.sort_unstable();
    let mut names = Vec::new();
    for (name, positions) in [("u.data", &all), ("u1.base", &train), ("u1.test", &test)] {
        write_rows(&dir.join(name), None, positions, |p| table.row(p, "\t"))?;
        names.push(name.to_string());
    }
    Ok(names)
}

fn write_csv(table: &Table, dir: &Path) -> Result<Vec<String>> {
    let all: Vec<usize> = (0..table.ratings.len()).collect();
    let header = Some("userId,movieId,rating,timestamp");
    write_rows(&dir.join("ratings.csv"), header, &all, |p| {
        table.row(p, ",")
    })?;
    Ok(vec!["ratings.csv".to_string()])
}

fn write_rows(
    path: &Path,
    header: Option<&str>,
    positions: &[usize],
    row: impl Fn(usize) -> Result<String>,
) -> Result<()> {
    let context = || format!("{}: cannot write", path.display());
    let mut out = BufWriter::new(File::create(path).with_context(context)?);
    if let Some(header) = header {
        writeln!(out, "{header}").with_context(context)?;
    }
    for &p in positions {
        writeln!(out, "{}", row(p)?).with_context(context)?;
    }
    // Dropping a BufWriter would swallow a failed final write (a full disk).
    out.into_inner()
        .map_err(|e| e.into_error())
        .and_then(|file| file.sync_all())
        .with_context(context)
}

/// Runs `fill` on a fresh temporary folder beside `dir` and renames it to `dir` when `fill`
/// succeeds; removes it otherwise. Returns what `fill` returned.
fn write_atomically<T>(dir: &Path, fill: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    refuse_existing(dir)?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent)
        .with_context(|| format!("{}: cannot create folder", parent.display()))?;
    let name = dir
        .file_name()
        .with_context(|| format!("{}: not a folder name", dir.display()))?;
    let temp = TempDir::create(parent.join(format!(
        ".{}.partial-{}",
        name.to_string_lossy(),
        std::process::id()
    )))?;
    let value = fill(&temp.0)?;
    if dir.is_dir() {
        // An empty folder was there (checked above); rename replaces only files portably.
        fs::remove_dir(dir).with_context(|| format!("{}: cannot replace", dir.display()))?;
    }
    fs::rename(&temp.0, dir).with_context(|| {
        format!(
            "{}: cannot move {} into place",
            dir.display(),
            temp.0.display()
        )
    })?;
    temp.keep();
    Ok(value)
}

fn refuse_existing(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    if !dir.is_dir() {
        bail!("{}: exists and is not a folder", dir.display());
    }
    let mut entries =
        fs::read_dir(dir).with_context(|| format!("{}: cannot list", dir.display()))?;
    if entries.next().is_some() {
        bail!(
            "{}: folder exists and is not empty; choose a new --out folder",
            dir.display()
        );
    }
    Ok(())
}

/// A folder removed on drop unless kept: nothing half-written survives an error.
struct TempDir(PathBuf);

impl TempDir {
    fn create(path: PathBuf) -> Result<Self> {
        if path.exists() {
            // Left over by a killed run that had the same process id.
            fs::remove_dir_all(&path)
                .with_context(|| format!("{}: cannot remove", path.display()))?;
        }
        fs::create_dir(&path).with_context(|| format!("{}: cannot create", path.display()))?;
        Ok(TempDir(path))
    }

    fn keep(self) {
        std::mem::forget(self);
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{load_ratings, LoadOptions, RatingsSourceSpec, SyntheticConfig};

    fn synthetic() -> RatingsDataset {
        let config = SyntheticConfig {
            users: 50,
            items: 40,
            ratings: 600,
            ..Default::default()
        };
        crate::data::synthetic::generate(&config).unwrap()
    }

    fn load(path: &Path, split: &str) -> RatingsDataset {
        let source = RatingsSourceSpec::Path(path.to_path_buf());
        load_ratings(&source, &split.parse().unwrap(), 0, &LoadOptions::default()).unwrap()
    }

    fn sorted_rows(d: &RatingsDataset) -> Vec<(u64, u64, u32)> {
        let all = all_ratings(d);
        let mut rows: Vec<_> = (0..all.len())
            .map(|k| {
                let user = d.user_ids.raw_id(all.users[k]).unwrap();
                let item = d.item_ids.raw_id(all.items[k]).unwrap();
                (user, item, all.values[k].to_bits())
            })
            .collect();
        rows.sort_unstable();
        rows
    }

    #[test]
    fn ml100k_folder_reads_back_exactly_with_its_u1_split() {
        let dataset = synthetic();
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("synth");
        let written = write(&dataset, &dir, SynthFormat::Ml100k, 3).unwrap();
        assert_eq!(written.files, ["u.data", "u1.base", "u1.test"]);
        assert_eq!(sorted_rows(&load(&dir, "none")), sorted_rows(&dataset));
        let split = load(&dir, "u1");
        assert_eq!((split.train.len(), split.test.len()), (480, 120));
        assert_eq!(sorted_rows(&split), sorted_rows(&dataset));
        let names: Vec<_> = fs::read_dir(root.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary folder is left");
    }

    #[test]
    fn csv_file_reads_back_exactly() {
        let dataset = synthetic();
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("synth");
        write(&dataset, &dir, SynthFormat::Csv, 0).unwrap();
        let text = fs::read_to_string(dir.join("ratings.csv")).unwrap();
        assert!(text.starts_with("userId,movieId,rating,timestamp\n"));
        assert_eq!(
            sorted_rows(&load(&dir.join("ratings.csv"), "none")),
            sorted_rows(&dataset)
        );
    }

    #[test]
    fn refuses_a_non_empty_folder_and_fills_an_empty_one() {
        let dataset = synthetic();
        let root = tempfile::tempdir().unwrap();
        fs::write(root.path().join("keep.txt"), "mine").unwrap();
        let err = write(&dataset, root.path(), SynthFormat::Csv, 0).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("folder exists and is not empty; choose a new --out folder"),
            "{err}"
        );
        assert_eq!(
            fs::read_to_string(root.path().join("keep.txt")).unwrap(),
            "mine"
        );
        let empty = root.path().join("empty");
        fs::create_dir(&empty).unwrap();
        write(&dataset, &empty, SynthFormat::Csv, 0).unwrap();
        assert!(empty.join("ratings.csv").is_file());
    }

    #[test]
    fn a_failure_leaves_nothing_behind() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("out");
        let result: Result<()> = write_atomically(&dir, |temp| {
            fs::write(temp.join("u.data"), "half")?;
            bail!("disk full")
        });
        assert_eq!(result.unwrap_err().to_string(), "disk full");
        assert!(!dir.exists());
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
    }

    #[test]
    fn format_names_round_trip() {
        for format in [SynthFormat::Ml100k, SynthFormat::Csv] {
            assert_eq!(format.to_string().parse::<SynthFormat>(), Ok(format));
            let json = serde_json::to_string(&format).unwrap();
            assert_eq!(json, format!("\"{format}\""));
        }
        assert!("tsv".parse::<SynthFormat>().is_err());
    }
}

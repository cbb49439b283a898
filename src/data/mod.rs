//! Data sources: one file per format, and the entry point that turns a `--data` value
//! and a `--split` into a loaded data set.

pub mod duplicates;
pub mod fetch;
pub mod fingerprint;
pub mod mnist;
pub mod movielens;
pub mod options;
pub mod ratings;
pub mod split;
pub mod synth;
pub mod synthetic;
pub mod titles;

pub use options::{DuplicatePolicy, LoadOptions, RatingRange};
pub use ratings::{DatasetStats, IdMap, Ratings, RatingsDataset};
pub use split::SplitSpec;
pub use synthetic::SyntheticConfig;

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// Where ratings come from.
#[derive(Debug, Clone, PartialEq)]
pub enum RatingsSourceSpec {
    Synthetic(SyntheticConfig),
    Path(PathBuf),
}

/// Loads a ratings data set and splits it. `seed` drives random and per-user holdouts;
/// `options` say how files are checked (synthetic data needs no checks).
pub fn load_ratings(
    source: &RatingsSourceSpec,
    split: &SplitSpec,
    seed: u64,
    options: &LoadOptions,
) -> Result<RatingsDataset> {
    let mut dataset = match source {
        RatingsSourceSpec::Synthetic(config) => synthetic::generate(config)?,
        RatingsSourceSpec::Path(path) => {
            let found = movielens::detect(path)?;
            if let SplitSpec::Official(split_name) = split {
                return load_official(path, &found, split_name, options);
            }
            let files = read_checked([found.file.clone()], found.format, options)?;
            let [all] = files.parts;
            RatingsDataset {
                name: display_name(path),
                source: found.file.display().to_string(),
                format: found.format.name().into(),
                user_ids: files.user_ids,
                item_ids: files.item_ids,
                train: all,
                test: Ratings::default(),
                split: "none".into(),
                synthetic: None,
            }
        }
    };
    if *split != SplitSpec::None {
        apply_holdout(&mut dataset, split, seed)?;
    }
    Ok(dataset)
}

fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// One of ml-100k's shipped splits: two files checked together, so that a pair rated in both
/// the training and the test file counts as a duplicate.
fn load_official(
    path: &Path,
    found: &movielens::RatingsSource,
    split_name: &str,
    options: &LoadOptions,
) -> Result<RatingsDataset> {
    let dir = match (&found.dir, found.format) {
        (Some(dir), movielens::RatingsFormat::Tab) => dir.clone(),
        _ => bail!(
            "--split {split_name}: official splits ship only with ml-100k; {} is not an ml-100k directory",
            path.display()
        ),
    };
    // The training file is read first so that test-only users and items get the highest
    // indices.
    let paths = [
        dir.join(format!("{split_name}.base")),
        dir.join(format!("{split_name}.test")),
    ];
    let files = read_checked(paths, found.format, options)?;
    let [train, test] = files.parts;
    Ok(RatingsDataset {
        name: display_name(path),
        source: dir.display().to_string(),
        format: found.format.name().into(),
        user_ids: files.user_ids,
        item_ids: files.item_ids,
        train,
        test,
        split: split_name.to_string(),
        synthetic: None,
    })
}

/// Ratings of `N` files sharing one id space, after the duplicate check.
struct CheckedFiles<const N: usize> {
    parts: [Ratings; N],
    user_ids: IdMap,
    item_ids: IdMap,
}

fn read_checked<const N: usize>(
    paths: [PathBuf; N],
    format: movielens::RatingsFormat,
    options: &LoadOptions,
) -> Result<CheckedFiles<N>> {
    let (mut user_ids, mut item_ids) = (IdMap::new(), IdMap::new());
    let mut files = Vec::with_capacity(N);
    for path in &paths {
        let range = options.rating_range;
        files.push(movielens::read_ratings(
            path,
            format,
            range,
            &mut user_ids,
            &mut item_ids,
        )?);
    }
    duplicates::resolve(&mut files, options.duplicates, &user_ids, &item_ids)?;
    let mut files = files.into_iter();
    Ok(CheckedFiles {
        parts: std::array::from_fn(|_| files.next().map(|f| f.ratings).unwrap_or_default()),
        user_ids,
        item_ids,
    })
}

fn apply_holdout(dataset: &mut RatingsDataset, split: &SplitSpec, seed: u64) -> Result<()> {
    if let SplitSpec::Official(name) = split {
        bail!(
            "--split {name}: official splits ship only with ml-100k, not with {} data",
            dataset.name
        );
    }
    let (train, test) = split::holdout(&dataset.train, split, seed)?;
    if train.is_empty() || test.is_empty() {
        bail!(
            "--split {split}: leaves an empty training or test part ({} and {} ratings)",
            train.len(),
            test.len()
        );
    }
    dataset.train = train;
    dataset.test = test;
    dataset.split = split.to_string();
    Ok(())
}

/// Resolves a `--data` value: a known data set name through the cache (fetched with
/// `download`), or the value itself as a path.
pub fn data_path(data: &str, download: bool) -> anyhow::Result<std::path::PathBuf> {
    let mut options = fetch::FetchOptions::from_env()?;
    options.progress = true;
    Ok(fetch::resolve_named(data, download, &options)?
        .unwrap_or_else(|| std::path::PathBuf::from(data)))
}

/// Where ratings come from when read from `data`: `synthetic` means the generator with
/// `synthetic`'s settings, anything else a path or a known name.
pub fn ratings_source(
    synthetic: &SyntheticConfig,
    data: &str,
    download: bool,
) -> anyhow::Result<RatingsSourceSpec> {
    Ok(if data == "synthetic" {
        RatingsSourceSpec::Synthetic(synthetic.clone())
    } else {
        RatingsSourceSpec::Path(data_path(data, download)?)
    })
}

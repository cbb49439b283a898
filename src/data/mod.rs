//! Data sources: one file per format, and the entry point that turns a `--data` value
//! and a `--split` into a loaded data set.

pub mod fetch;
pub mod mnist;
pub mod movielens;
pub mod options;
pub mod ratings;
pub mod split;
pub mod synthetic;

pub use options::{DuplicatePolicy, LoadOptions, RatingRange};
pub use ratings::{DatasetStats, IdMap, Ratings, RatingsDataset};
pub use split::SplitSpec;
pub use synthetic::SyntheticConfig;

use anyhow::{bail, Result};
use std::path::PathBuf;

/// Where ratings come from.
#[derive(Debug, Clone, PartialEq)]
pub enum RatingsSourceSpec {
    Synthetic(SyntheticConfig),
    Path(PathBuf),
}

/// Loads a ratings data set and splits it. `seed` drives random and per-user holdouts.
pub fn load_ratings(
    source: &RatingsSourceSpec,
    split: &SplitSpec,
    seed: u64,
) -> Result<RatingsDataset> {
    let mut dataset = match source {
        RatingsSourceSpec::Synthetic(config) => synthetic::generate(config)?,
        RatingsSourceSpec::Path(path) => {
            let found = movielens::detect(path)?;
            let mut user_ids = IdMap::new();
            let mut item_ids = IdMap::new();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string());
            if let SplitSpec::Official(split_name) = split {
                // Official splits ship as two files; the training file is read first so that
                // test-only users and items get the highest indices.
                let dir = match (&found.dir, found.format) {
                    (Some(dir), movielens::RatingsFormat::Tab) => dir.clone(),
                    _ => bail!(
                        "--split {split_name}: official splits ship only with ml-100k; {} is not an ml-100k directory",
                        path.display()
                    ),
                };
                let train_file = dir.join(format!("{split_name}.base"));
                let test_file = dir.join(format!("{split_name}.test"));
                let train = movielens::read_ratings(
                    &train_file,
                    found.format,
                    &mut user_ids,
                    &mut item_ids,
                )?;
                let test = movielens::read_ratings(
                    &test_file,
                    found.format,
                    &mut user_ids,
                    &mut item_ids,
                )?;
                return Ok(RatingsDataset {
                    name,
                    source: dir.display().to_string(),
                    format: found.format.name().into(),
                    user_ids,
                    item_ids,
                    train,
                    test,
                    split: split.to_string(),
                    synthetic: None,
                });
            }
            let all =
                movielens::read_ratings(&found.file, found.format, &mut user_ids, &mut item_ids)?;
            RatingsDataset {
                name,
                source: found.file.display().to_string(),
                format: found.format.name().into(),
                user_ids,
                item_ids,
                train: all,
                test: Ratings::default(),
                split: "none".into(),
                synthetic: None,
            }
        }
    };
    if *split != SplitSpec::None {
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
    }
    Ok(dataset)
}

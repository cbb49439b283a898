//! Ranking metrics of a saved matrix factorization model (`regulab eval --metrics ndcg@10`):
//! the model's training ratings (its recorded data, split, seed and validation holdout), the
//! candidates they leave, and the most-popular baseline ranked over the same candidates.

use crate::config::MfSpec;
use crate::data::{self, IdMap, Ratings, RatingsSourceSpec};
use crate::model::mf::{MatrixFactorization, RankingRows, TrainedRows};
use crate::model::{cutoffs, Metric};
use crate::model_file::SavedModelFile;
use crate::ranking::{self, RankingResult, RankingTask};
use anyhow::{anyhow, Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;

/// Ranking metrics of a model and of the most-popular baseline on the same users.
#[derive(Debug, Clone, Serialize)]
pub struct RankingReport {
    /// Ratings at or above this are relevant.
    pub relevance: f64,
    /// Users with a relevant evaluated rating: the means are over these.
    pub users: usize,
    /// Evaluated users without one (left out).
    pub users_without_relevant: usize,
    /// Items ranked by how many training ratings they have (ties: smaller raw id first).
    pub most_popular: BTreeMap<String, f64>,
    /// The model's values (also in the result's `metrics`).
    #[serde(skip)]
    pub model: BTreeMap<String, f64>,
}

/// The ratings `saved` trained on, in its rows: its recorded data under its split and seed,
/// less the validation holdout. `measured` must be that data (raw ids of other data mean
/// other things).
pub fn training_ratings(
    saved: &SavedModelFile,
    spec: &MfSpec,
    measured: &RatingsSourceSpec,
    same_source: bool,
) -> Result<Ratings> {
    let missing =
        "ranking metrics need the model's training ratings (their items are not candidates)";
    if !same_source {
        return Err(anyhow!(
            "{missing}: the evaluated data is not the data the model trained on ({}); evaluate on --data {}",
            spec.data,
            spec.data
        ));
    }
    let seed = saved.header.config.training.seed;
    let mut dataset = data::load_ratings(measured, &spec.split, seed, &spec.load)
        .with_context(|| format!("{missing}: {}", spec.data))?;
    if let Some(fraction) = spec.val_split {
        data::split::hold_out_validation(&mut dataset, fraction, seed)?;
    }
    let ids = row_ids(saved)?;
    let mut rows = Ratings::with_capacity(dataset.train.len());
    for ((&u, &i), &value) in dataset
        .train
        .users
        .iter()
        .zip(&dataset.train.items)
        .zip(&dataset.train.values)
    {
        let row = |map: &IdMap, model: &IdMap, index: u32| {
            map.raw_id(index).and_then(|raw| model.index_of(raw))
        };
        let (Some(user), Some(item)) = (
            row(&dataset.user_ids, &ids.0, u),
            row(&dataset.item_ids, &ids.1, i),
        ) else {
            return Err(anyhow!(
                "{}: {missing}, but its data has ids the model has no row for",
                saved.path.display()
            ));
        };
        rows.push(user, item, value);
    }
    Ok(rows)
}

/// The model's user and item rows as id maps.
fn row_ids(saved: &SavedModelFile) -> Result<(IdMap, IdMap)> {
    let ids = saved
        .header
        .ids
        .as_ref()
        .ok_or_else(|| anyhow!("{}: has no user and item ids", saved.path.display()))?;
    let map = |raw: &[u64]| {
        IdMap::from_raw_ids(raw)
            .ok_or_else(|| anyhow!("{}: an id repeats in its metadata", saved.path.display()))
    };
    Ok((map(&ids.users)?, map(&ids.items)?))
}

/// The ranking rows of a loaded model: trained rows from its metadata, plus the extra row
/// of unknown users (never trained).
fn ranking_rows(saved: &SavedModelFile, device: tch::Device) -> Result<RankingRows> {
    let ids = saved
        .header
        .ids
        .as_ref()
        .ok_or_else(|| anyhow!("{}: has no user and item ids", saved.path.display()))?;
    let trained = |count: usize, untrained: &[u32]| {
        let mut rows = vec![true; count];
        for &row in untrained {
            if let Some(slot) = rows.get_mut(row as usize) {
                *slot = false;
            }
        }
        rows
    };
    let mut users = trained(ids.users.len(), &ids.untrained_users);
    users.push(false);
    let items = trained(ids.items.len(), &ids.untrained_items);
    Ok(RankingRows::new(
        &TrainedRows { users, items },
        &ids.items,
        device,
    ))
}

/// The ranking metrics among `metrics` of `model` on the evaluated ratings, given with the
/// training ratings (both in the model's rows), and of the most-popular ranking over the
/// same candidates.
pub fn measure(
    saved: &SavedModelFile,
    model: &MatrixFactorization,
    (evaluated, training): (&Ratings, &Ratings),
    metrics: &[Metric],
    relevance: f64,
) -> Result<RankingReport> {
    let metrics: Vec<Metric> = metrics.iter().copied().filter(|m| m.is_ranking()).collect();
    let rows = ranking_rows(saved, model_device(model))?;
    let task = RankingTask::new(evaluated, training, relevance);
    let cutoffs = cutoffs(&metrics);
    let by_model = model.rank(&task, &rows, &cutoffs)?;
    let by_popularity = most_popular(&task, &rows, training, &cutoffs)?;
    let values = |result: &RankingResult| -> BTreeMap<String, f64> {
        metrics
            .iter()
            .filter_map(|m| Some((m.key(), m.value_in(result)?)))
            .collect()
    };
    Ok(RankingReport {
        relevance,
        users: task.users(),
        users_without_relevant: task.users_without_relevant(),
        most_popular: values(&by_popularity),
        model: values(&by_model),
    })
}

fn model_device(model: &MatrixFactorization) -> tch::Device {
    use crate::model::Model;
    model
        .parameters()
        .first()
        .map_or(tch::Device::Cpu, |p| p.tensor.device())
}

/// Every user gets the same scores: each item's number of training ratings.
fn most_popular(
    task: &RankingTask,
    rows: &RankingRows,
    training: &Ratings,
    cutoffs: &[usize],
) -> Result<RankingResult> {
    let count = rows.items();
    let mut popularity = vec![0.0f64; count];
    for &item in &training.items {
        if let Some(slot) = popularity.get_mut(item as usize) {
            *slot += 1.0;
        }
    }
    ranking::measure(task, &rows.item_rows(), cutoffs, &mut |users| {
        Ok(popularity.repeat(users.len()))
    })
}

//! `regulab predict --user U --top N`: a recommendation a person can read. Items carry their
//! titles and genres where the data set ships them; items the user rated in training are
//! left out unless asked; scores are clipped to the rating scale of the training ratings,
//! with the model's raw score kept beside them.

use super::{is_biased, mf_model, Rows};
use crate::config::MfSpec;
use crate::data::titles::{read_titles, Titles};
use crate::data::{self, ratings_source, RatingsSourceSpec};
use crate::model_file::SavedModelFile;
use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use std::collections::HashSet;
use tch::{Device, Kind, Tensor};

/// What `--user` asks for.
#[derive(Debug, Clone)]
pub struct TopItemsQuery {
    pub user: u64,
    pub top: usize,
    /// Keep the items the user rated in training (left out by default).
    pub include_seen: bool,
    /// Where the training ratings (and titles) are [default: the model's recorded data].
    pub data: Option<String>,
}

/// An inclusive rating scale: the lowest and highest rating in the training ratings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Scale {
    pub min: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Recommendation {
    pub rank: usize,
    pub item: u64,
    /// Null when the data set ships no titles (synthetic data, a folder without them).
    pub title: Option<String>,
    /// Null when the data set lists no genres.
    pub genres: Option<Vec<String>>,
    /// The predicted rating clipped to `scale`.
    pub score: f64,
    /// The model's prediction as it is.
    pub raw_score: f64,
    /// With `--include-seen`: whether the user rated the item in training.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seen: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TopItems {
    pub user: u64,
    /// False for a user the model never trained: ranked by the item biases alone.
    pub trained: bool,
    /// Whether the items the user rated in training were left out.
    pub exclude_seen: bool,
    /// How many items the user rated in training (null when the training data was not read).
    pub seen_items: Option<usize>,
    /// The rating scale scores are clipped to (null: not clipped, no training data).
    pub scale: Option<Scale>,
    /// The file the titles come from.
    pub titles: Option<String>,
    pub items: Vec<Recommendation>,
    /// Lines for stderr (titles or the scale missing); not part of the JSON.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// What the training ratings say about the user.
struct Training {
    seen: HashSet<u64>,
    scale: Scale,
}

pub(super) fn top_items(
    saved: &SavedModelFile,
    spec: &MfSpec,
    query: &TopItemsQuery,
    device: Device,
) -> Result<TopItems> {
    let user = query.user;
    let data = query.data.as_deref().unwrap_or(&spec.data);
    let mut warnings = Vec::new();
    // Resolved once: a named data set's folder is verified on every resolution.
    let source = ratings_source(&spec.synthetic, data, false);
    let training = match source
        .as_ref()
        .map_err(|e| anyhow!("{e:#}"))
        .and_then(|source| training(saved, spec, source, data, user))
    {
        Ok(training) => Some(training),
        Err(error) if query.include_seen => {
            warnings.push(format!(
                "scores are not clipped to the rating scale: {error:#}"
            ));
            None
        }
        Err(error) => bail!(
            "--user {user}: cannot leave out the items the user rated in training: {error:#}; give --data PATH (the training data) or --include-seen"
        ),
    };
    let titles = match &source {
        Ok(RatingsSourceSpec::Path(path)) => read_titles(path),
        Ok(RatingsSourceSpec::Synthetic(_)) | Err(_) => Ok(None),
    };
    let titles = match titles {
        Ok(titles) => titles,
        Err(error) => {
            warnings.push(format!("titles are not shown: {error:#}"));
            None
        }
    };
    let empty = HashSet::new();
    let seen = training.as_ref().map_or(&empty, |t| &t.seen);
    let excluded = if query.include_seen { &empty } else { seen };
    let (trained, ranked) = rank(saved, user, excluded, device)?;
    let scale = training.as_ref().map(|t| t.scale);
    let items = ranked
        .into_iter()
        .take(query.top)
        .enumerate()
        .map(|(rank, (item, raw_score))| {
            let info = titles.as_ref().and_then(|t| t.items.get(&item));
            Recommendation {
                rank: rank + 1,
                item,
                title: info.map(|i| i.title.clone()),
                genres: info
                    .filter(|_| titles.as_ref().is_some_and(has_genres))
                    .map(|i| i.genres.clone()),
                score: scale.map_or(raw_score, |s| raw_score.clamp(s.min, s.max)),
                raw_score,
                seen: (query.include_seen && training.is_some()).then(|| seen.contains(&item)),
            }
        })
        .collect();
    Ok(TopItems {
        user,
        trained,
        exclude_seen: !query.include_seen,
        seen_items: training.as_ref().map(|t| t.seen.len()),
        scale,
        titles: titles.map(|t| t.file.display().to_string()),
        items,
        warnings,
    })
}

fn has_genres(titles: &Titles) -> bool {
    titles.items.values().any(|info| !info.genres.is_empty())
}

/// Every trained item but `excluded`, as (raw id, prediction), best first; and whether the
/// user was trained.
fn rank(
    saved: &SavedModelFile,
    user: u64,
    excluded: &HashSet<u64>,
    device: Device,
) -> Result<(bool, Vec<(u64, f64)>)> {
    let rows = Rows::new(saved)?;
    let (row, trained) = rows.user(user);
    if !trained && !is_biased(saved) {
        bail!("--user {user}: the model never trained this user, and plain MF has no biases to predict from");
    }
    let candidates: Vec<u32> = (0..rows.items.len() as u32)
        .filter(|i| !rows.untrained_items.contains(i))
        .filter(|&i| !excluded.contains(&rows.items.raw_id(i).unwrap_or(u64::MAX)))
        .collect();
    let model = mf_model(saved, device)?;
    let n = candidates.len() as i64;
    let items = Tensor::from_slice(&candidates.iter().map(|&i| i as i64).collect::<Vec<_>>())
        .to_device(device);
    let users = Tensor::full([n], row as i64, (Kind::Int64, device));
    let known = Tensor::full([n], trained as u8 as f64, (Kind::Float, device));
    let scores = Vec::<f64>::try_from(
        model
            .predict_pairs(&users, &items, &known)
            .to_kind(Kind::Double),
    )?;
    let mut ranked: Vec<(u64, f64)> = candidates
        .into_iter()
        .map(|row| rows.items.raw_id(row).unwrap_or_default())
        .zip(scores)
        .collect();
    // Ties go to the smaller raw item id, the rule of eval's ranking metrics (src/ranking.rs).
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok((trained, ranked))
}

/// The items `user` rated in the training part of the model's data (its recorded split and
/// seed, read from `data`), and the scale of all training ratings.
fn training(
    saved: &SavedModelFile,
    spec: &MfSpec,
    source: &RatingsSourceSpec,
    data: &str,
    user: u64,
) -> Result<Training> {
    let seed = saved.header.config.training.seed;
    let dataset = data::load_ratings(source, &spec.split, seed, &spec.load)
        .with_context(|| format!("{data}: the model's training data"))?;
    let train = &dataset.train;
    if train.is_empty() {
        bail!("{data}: the model's training data has no ratings");
    }
    let (min, max) = train
        .values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v as f64), hi.max(v as f64))
        });
    let seen = match dataset.user_ids.index_of(user) {
        Some(index) => train
            .users
            .iter()
            .zip(&train.items)
            .filter(|(&u, _)| u == index)
            .filter_map(|(_, &i)| dataset.item_ids.raw_id(i))
            .collect(),
        None => HashSet::new(),
    };
    Ok(Training {
        seen,
        scale: Scale { min, max },
    })
}

impl TopItems {
    /// The table printed without `--json`: what was left out, then rank, item, score and
    /// title, and a footnote when scores were clipped.
    pub fn to_text(&self) -> String {
        let user = self.user;
        let mut text = format!("top {} items for user {user}", self.items.len());
        match (self.exclude_seen, self.seen_items) {
            (true, Some(n)) => {
                text += &format!(", excluding the {n} items user {user} rated in training (--include-seen keeps them)")
            }
            (false, Some(n)) => text += &format!(
                ", including the {n} items user {user} rated in training (marked +)"
            ),
            (_, None) => text += ", including any items the user rated in training",
        }
        if !self.trained {
            text += " (never trained: ranked by item bias)";
        }
        text.push('\n');
        let titled = self.titles.is_some();
        text += &format!("{:>4}  {:>8}  {:>6}", "rank", "item", "score");
        text += if titled { "  title\n" } else { "\n" };
        for r in &self.items {
            let clipped = if r.score != r.raw_score { "*" } else { " " };
            let seen = if r.seen == Some(true) { "+" } else { " " };
            text += &format!(
                "{:>4}  {:>8}{seen} {:>6.3}{clipped}",
                r.rank, r.item, r.score
            );
            if titled {
                let title = r.title.as_deref().unwrap_or("(no title)");
                text += &format!(" {title}");
                if let Some(genres) = r.genres.as_ref().filter(|g| !g.is_empty()) {
                    text += &format!("  [{}]", genres.join(", "));
                }
            }
            text = text.trim_end().to_string() + "\n";
        }
        text += &self.clip_footnote();
        text
    }

    fn clip_footnote(&self) -> String {
        let Some(scale) = self.scale else {
            return String::new();
        };
        let above = self.items.iter().any(|r| r.raw_score > scale.max);
        let below = self.items.iter().any(|r| r.raw_score < scale.min);
        let mut parts = Vec::new();
        if above {
            parts.push(format!("above {0} shown as {0}", scale.max));
        }
        if below {
            parts.push(format!("below {0} shown as {0}", scale.min));
        }
        if parts.is_empty() {
            return String::new();
        }
        format!(
            "* predicted scores {} (the training ratings' scale; --json keeps raw_score)\n",
            parts.join(", ")
        )
    }
}

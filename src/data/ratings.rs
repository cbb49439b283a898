//! In-memory ratings: dense user/item indices, the raw-id mapping, and data set statistics.

use serde::Serialize;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Maps raw ids (as found in the files) to dense indices `0..len` in order of first
/// appearance, and back. Kept so that reports and predictions can speak in raw ids.
#[derive(Debug, Default, Clone)]
pub struct IdMap {
    raw_ids: Vec<u64>,
    index: HashMap<u64, u32, BuildHasherDefault<IdHasher>>,
}

/// A folded 64x64-bit multiply: good spread in the low bits (bucket) and high bits (tag) that
/// the hash table uses, at a fraction of SipHash's cost, which took over half of the time to
/// load a 25M-rating file. Raw ids come from the user's own files, so hash flooding, which
/// SipHash defends against, is no threat here.
#[derive(Debug, Default, Clone, Copy)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, id: u64) {
        let product = u128::from(id ^ self.0) * 0x9E37_79B9_7F4A_7C15;
        self.0 = (product as u64) ^ ((product >> 64) as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl IdMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// Dense index for `raw`, assigning the next free one on first sight.
    pub fn index_or_insert(&mut self, raw: u64) -> u32 {
        let next = self.raw_ids.len() as u32;
        *self.index.entry(raw).or_insert_with(|| {
            self.raw_ids.push(raw);
            next
        })
    }

    pub fn index_of(&self, raw: u64) -> Option<u32> {
        self.index.get(&raw).copied()
    }

    pub fn raw_id(&self, index: u32) -> Option<u64> {
        self.raw_ids.get(index as usize).copied()
    }

    pub fn len(&self) -> usize {
        self.raw_ids.len()
    }

    /// Raw ids in index order.
    pub fn raw_ids(&self) -> &[u64] {
        &self.raw_ids
    }

    /// The map whose index `i` is `raw_ids[i]`; `None` when an id repeats.
    pub fn from_raw_ids(raw_ids: &[u64]) -> Option<Self> {
        let mut map = IdMap::new();
        for (position, &raw) in raw_ids.iter().enumerate() {
            if map.index_or_insert(raw) as usize != position {
                return None;
            }
        }
        Some(map)
    }

    pub fn is_empty(&self) -> bool {
        self.raw_ids.is_empty()
    }
}

/// Ratings as three parallel columns of dense indices and values.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Ratings {
    pub users: Vec<u32>,
    pub items: Vec<u32>,
    pub values: Vec<f32>,
}

impl Ratings {
    pub fn with_capacity(n: usize) -> Self {
        Self {
            users: Vec::with_capacity(n),
            items: Vec::with_capacity(n),
            values: Vec::with_capacity(n),
        }
    }

    pub fn push(&mut self, user: u32, item: u32, value: f32) {
        self.users.push(user);
        self.items.push(item);
        self.values.push(value);
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The ratings at `positions`, in that order.
    pub fn select(&self, positions: &[usize]) -> Ratings {
        let mut out = Ratings::with_capacity(positions.len());
        for &p in positions {
            out.push(self.users[p], self.items[p], self.values[p]);
        }
        out
    }

    /// Removes the ratings at `positions` (ascending, distinct), keeping the order of the rest.
    pub fn remove_sorted(&mut self, positions: &[usize]) {
        if !positions.is_empty() {
            remove_at(&mut self.users, positions);
            remove_at(&mut self.items, positions);
            remove_at(&mut self.values, positions);
        }
    }

    pub fn mean(&self) -> f64 {
        if self.values.is_empty() {
            return f64::NAN;
        }
        self.values.iter().map(|&v| v as f64).sum::<f64>() / self.values.len() as f64
    }
}

fn remove_at<T>(column: &mut Vec<T>, positions: &[usize]) {
    let mut next = positions.iter().peekable();
    let mut position = 0;
    // `retain` visits every element once, in order.
    column.retain(|_| {
        let removed = next.next_if_eq(&&position).is_some();
        position += 1;
        !removed
    });
}

/// A loaded ratings data set, split into training and test parts that share one id space.
#[derive(Debug, Clone)]
pub struct RatingsDataset {
    /// Short name: `ml-100k`, `synthetic`, a file name.
    pub name: String,
    /// Where it came from (path or generator description).
    pub source: String,
    /// `ml-100k`, `movielens-dat`, `movielens-csv`, `synthetic`.
    pub format: String,
    pub user_ids: IdMap,
    pub item_ids: IdMap,
    pub train: Ratings,
    pub test: Ratings,
    /// How the train/test parts were made (`none`, `u1`, `random:0.8`, ...).
    pub split: String,
    /// Planted-model facts for synthetic data.
    pub synthetic: Option<SyntheticTruth>,
}

/// What the synthetic generator planted; `noise_floor_rmse` is the best test RMSE any model
/// can reach (the RMSE of the noiseless planted ratings against the observed ones).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SyntheticTruth {
    pub rank: usize,
    pub noise_std: f64,
    pub noise_floor_rmse: f64,
    pub seed: u64,
}

impl RatingsDataset {
    pub fn num_users(&self) -> usize {
        self.user_ids.len()
    }

    pub fn num_items(&self) -> usize {
        self.item_ids.len()
    }

    /// Flags for users and items that appear in the training part. Test ratings whose user
    /// or item is unseen ("cold") are predicted from the biases and the global mean only.
    pub fn seen_in_train(&self) -> (Vec<bool>, Vec<bool>) {
        let mut users = vec![false; self.num_users()];
        let mut items = vec![false; self.num_items()];
        for (&u, &i) in self.train.users.iter().zip(&self.train.items) {
            users[u as usize] = true;
            items[i as usize] = true;
        }
        (users, items)
    }

    pub fn stats(&self) -> DatasetStats {
        let all_values = self.train.values.iter().chain(&self.test.values);
        let ratings = self.train.len() + self.test.len();
        let sum: f64 = all_values.clone().map(|&v| v as f64).sum();
        let histogram = RatingHistogram::from_values(all_values.copied());
        let (users, items) = (self.num_users(), self.num_items());
        let split = if self.test.is_empty() {
            None
        } else {
            let (seen_users, seen_items) = self.seen_in_train();
            let mut cold_users = std::collections::HashSet::new();
            let mut cold_items = std::collections::HashSet::new();
            let mut cold_ratings = 0usize;
            for (&u, &i) in self.test.users.iter().zip(&self.test.items) {
                let user_cold = !seen_users[u as usize];
                let item_cold = !seen_items[i as usize];
                if user_cold {
                    cold_users.insert(u);
                }
                if item_cold {
                    cold_items.insert(i);
                }
                if user_cold || item_cold {
                    cold_ratings += 1;
                }
            }
            Some(SplitStats {
                name: self.split.clone(),
                train_ratings: self.train.len(),
                test_ratings: self.test.len(),
                train_mean_rating: self.train.mean(),
                cold_test_users: cold_users.len(),
                cold_test_items: cold_items.len(),
                cold_test_ratings: cold_ratings,
            })
        };
        DatasetStats {
            name: self.name.clone(),
            source: self.source.clone(),
            format: self.format.clone(),
            users,
            items,
            ratings,
            mean_rating: if ratings > 0 {
                sum / ratings as f64
            } else {
                f64::NAN
            },
            density: if users * items > 0 {
                ratings as f64 / (users as f64 * items as f64)
            } else {
                0.0
            },
            histogram,
            split,
            synthetic: self.synthetic.clone(),
        }
    }
}

/// Counts per half-star bin (a rating is counted in the bin of its nearest half star).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RatingHistogram(pub Vec<(String, usize)>);

impl RatingHistogram {
    pub fn from_values(values: impl Iterator<Item = f32>) -> Self {
        let mut bins: std::collections::BTreeMap<i64, usize> = Default::default();
        for v in values {
            *bins.entry((v as f64 * 2.0).round() as i64).or_default() += 1;
        }
        RatingHistogram(
            bins.into_iter()
                .map(|(half_stars, count)| (format_half_stars(half_stars), count))
                .collect(),
        )
    }
}

fn format_half_stars(half_stars: i64) -> String {
    if half_stars % 2 == 0 {
        format!("{}", half_stars / 2)
    } else {
        format!("{:.1}", half_stars as f64 / 2.0)
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SplitStats {
    pub name: String,
    pub train_ratings: usize,
    pub test_ratings: usize,
    pub train_mean_rating: f64,
    /// Test users with no training rating.
    pub cold_test_users: usize,
    /// Test items with no training rating.
    pub cold_test_items: usize,
    /// Test ratings whose user or item has no training rating.
    pub cold_test_ratings: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DatasetStats {
    pub name: String,
    pub source: String,
    pub format: String,
    pub users: usize,
    pub items: usize,
    pub ratings: usize,
    pub mean_rating: f64,
    pub density: f64,
    pub histogram: RatingHistogram,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub synthetic: Option<SyntheticTruth>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_map_assigns_dense_indices_in_order_of_first_sight() {
        let mut ids = IdMap::new();
        assert_eq!(ids.index_or_insert(42), 0);
        assert_eq!(ids.index_or_insert(7), 1);
        assert_eq!(ids.index_or_insert(42), 0);
        assert_eq!(ids.len(), 2);
        assert_eq!(ids.raw_id(1), Some(7));
        assert_eq!(ids.index_of(99), None);
    }

    #[test]
    fn remove_sorted_keeps_the_order_of_the_rest() {
        let mut r = Ratings::default();
        for k in 0..6 {
            r.push(k, 10 + k, k as f32);
        }
        r.remove_sorted(&[0, 2, 5]);
        assert_eq!(r.users, vec![1, 3, 4]);
        assert_eq!(r.items, vec![11, 13, 14]);
        assert_eq!(r.values, vec![1.0, 3.0, 4.0]);
    }

    #[test]
    fn id_map_handles_ids_that_share_their_low_bits() {
        let mut ids = IdMap::new();
        let raw: Vec<u64> = (0..5000u64).map(|k| k << 40).chain([u64::MAX, 0]).collect();
        let dense: Vec<u32> = raw.iter().map(|&r| ids.index_or_insert(r)).collect();
        assert_eq!(ids.len(), 5001);
        assert_eq!(dense[5001], 0, "0 was seen first");
        assert!(raw
            .iter()
            .all(|&r| ids.raw_id(ids.index_of(r).unwrap()) == Some(r)));
    }

    #[test]
    fn histogram_uses_half_star_bins() {
        let h = RatingHistogram::from_values([1.0f32, 3.5, 3.5, 5.0, 4.9].into_iter());
        assert_eq!(
            h.0,
            vec![
                ("1".to_string(), 1),
                ("3.5".to_string(), 2),
                ("5".to_string(), 2)
            ]
        );
    }
}

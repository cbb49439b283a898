//! Seeded synthetic ratings from a planted biased low-rank model.
//!
//! r = clip(mu + b_u + b_i + p_u.q_i + noise, 1, 5) with Gaussian noise of standard deviation
//! `noise_std`; users and items are drawn with skewed (Zipf-like) popularity, as in MovieLens.
//! Because the noise is independent of everything a model can learn, the RMSE of the best
//! possible predictor (the planted model's expected clipped rating) is the floor of test RMSE.

use super::ratings::{IdMap, Ratings, RatingsDataset, SyntheticTruth};
use crate::setting::InvalidSetting;
use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

/// Sizes and noise of a synthetic data set. Defaults are MovieLens-100K-like but denser,
/// so that a rank-16 model can get close to the noise floor.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SyntheticConfig {
    pub users: usize,
    pub items: usize,
    pub ratings: usize,
    pub rank: usize,
    pub noise_std: f64,
    pub seed: u64,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self {
            users: 1000,
            items: 1000,
            ratings: 200_000,
            rank: 4,
            noise_std: 0.5,
            seed: 0,
        }
    }
}

const GLOBAL_MEAN: f64 = 3.3;
const USER_BIAS_STD: f64 = 0.25;
const ITEM_BIAS_STD: f64 = 0.3;
/// Standard deviation of the planted interaction term p_u.q_i.
const INTERACTION_STD: f64 = 0.6;
const MIN_RATING: f64 = 1.0;
const MAX_RATING: f64 = 5.0;

impl SyntheticConfig {
    pub fn describe(&self) -> String {
        format!(
            "synthetic(users={}, items={}, ratings={}, rank={}, noise_std={}, seed={})",
            self.users, self.items, self.ratings, self.rank, self.noise_std, self.seed
        )
    }

    /// Checks the sizes before anything is generated; the error names the key to change.
    pub fn check(&self) -> std::result::Result<(), InvalidSetting> {
        for (key, size) in [
            ("synthetic_users", self.users),
            ("synthetic_items", self.items),
            ("synthetic_ratings", self.ratings),
            ("synthetic_rank", self.rank),
        ] {
            if size == 0 {
                return Err(InvalidSetting::new(key, "must be positive"));
            }
        }
        for (key, size) in [
            ("synthetic_users", self.users),
            ("synthetic_items", self.items),
        ] {
            if size > u32::MAX as usize {
                return Err(InvalidSetting::new(key, "must fit in 32 bits"));
            }
        }
        let cells = self.users as f64 * self.items as f64;
        if self.ratings as f64 > 0.5 * cells {
            return Err(InvalidSetting::new(
                "synthetic_ratings",
                format!("is more than half of the {cells} user-item cells; use fewer ratings or more users/items"),
            ));
        }
        if !(self.noise_std.is_finite() && self.noise_std >= 0.0) {
            return Err(InvalidSetting::new(
                "synthetic_noise",
                "must be a non-negative number",
            ));
        }
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        self.check().map_err(|invalid| {
            let value = match invalid.key {
                "synthetic_users" => self.users.to_string(),
                "synthetic_items" => self.items.to_string(),
                "synthetic_ratings" => self.ratings.to_string(),
                "synthetic_rank" => self.rank.to_string(),
                _ => self.noise_std.to_string(),
            };
            let flag = crate::setting::flag_name(invalid.key);
            anyhow::anyhow!("{flag} {value}: {}", invalid.reason)
        })
    }
}

/// Generates the data set; every rating is in the training part (splits come later).
pub fn generate(config: &SyntheticConfig) -> Result<RatingsDataset> {
    config.validate()?;
    // Before anything is drawn: a data set beyond the machine would otherwise abort the
    // process inside the allocator with no word of which flag to change.
    let sizes = crate::memory::SyntheticSizes {
        users: config.users as u64,
        items: config.items as u64,
        ratings: config.ratings as u64,
        rank: config.rank as u64,
    };
    crate::memory::require(
        &crate::memory::estimate_synthetic(&sizes),
        crate::memory::tightest_limit(),
        "generating the synthetic data",
        "--synthetic-ratings, --synthetic-users or --synthetic-items",
    )?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let standard = Normal::new(0.0, 1.0).expect("unit normal");
    let factor_std = (INTERACTION_STD * INTERACTION_STD / config.rank as f64).powf(0.25);
    let mut draw = |n: usize, std: f64| -> Vec<f64> {
        (0..n).map(|_| standard.sample(&mut rng) * std).collect()
    };
    let user_bias = draw(config.users, USER_BIAS_STD);
    let item_bias = draw(config.items, ITEM_BIAS_STD);
    let user_factors = draw(config.users * config.rank, factor_std);
    let item_factors = draw(config.items * config.rank, factor_std);

    let pairs = sample_distinct_pairs(config, &mut rng)?;
    let mut ratings = Ratings::with_capacity(pairs.len());
    let mut squared_floor_error = 0.0;
    for key in pairs {
        let user = (key / config.items as u64) as usize;
        let item = (key % config.items as u64) as usize;
        let interaction: f64 = (0..config.rank)
            .map(|k| user_factors[user * config.rank + k] * item_factors[item * config.rank + k])
            .sum();
        let clean = GLOBAL_MEAN + user_bias[user] + item_bias[item] + interaction;
        let observed =
            (clean + standard.sample(&mut rng) * config.noise_std).clamp(MIN_RATING, MAX_RATING);
        let best_guess = expected_clipped_normal(clean, config.noise_std, MIN_RATING, MAX_RATING);
        squared_floor_error += (observed - best_guess).powi(2);
        ratings.push(user as u32, item as u32, observed as f32);
    }
    let noise_floor_rmse = (squared_floor_error / ratings.len() as f64).sqrt();

    // Dense indices are the generator's own; raw ids are 1-based like MovieLens.
    let mut user_ids = IdMap::new();
    for u in 0..config.users {
        user_ids.index_or_insert(u as u64 + 1);
    }
    let mut item_ids = IdMap::new();
    for i in 0..config.items {
        item_ids.index_or_insert(i as u64 + 1);
    }
    Ok(RatingsDataset {
        name: "synthetic".into(),
        source: config.describe(),
        format: "synthetic".into(),
        user_ids,
        item_ids,
        train: ratings,
        test: Ratings::default(),
        split: "none".into(),
        synthetic: Some(SyntheticTruth {
            rank: config.rank,
            noise_std: config.noise_std,
            noise_floor_rmse,
            seed: config.seed,
        }),
    })
}

/// Distinct (user, item) cells as `user * items + item`, in random order, with Zipf-like
/// popularity on both sides (a few users and items get most ratings).
fn sample_distinct_pairs(config: &SyntheticConfig, rng: &mut ChaCha8Rng) -> Result<Vec<u64>> {
    let user_weights = popularity_cdf(config.users, 0.5, rng);
    let item_weights = popularity_cdf(config.items, 0.9, rng);
    let mut keys: Vec<u64> = Vec::with_capacity(config.ratings + config.ratings / 8);
    for _round in 0..100 {
        let missing = config.ratings.saturating_sub(keys.len());
        if missing == 0 {
            break;
        }
        let draws = missing + missing / 8 + 64;
        for _ in 0..draws {
            let user = sample_cdf(&user_weights, rng) as u64;
            let item = sample_cdf(&item_weights, rng) as u64;
            keys.push(user * config.items as u64 + item);
        }
        keys.sort_unstable();
        keys.dedup();
    }
    if keys.len() < config.ratings {
        bail!(
            "could not draw {} distinct user-item pairs; use fewer --synthetic-ratings",
            config.ratings
        );
    }
    keys.shuffle(rng);
    keys.truncate(config.ratings);
    Ok(keys)
}

/// Cumulative popularity weights 1/(rank + 10)^exponent over a random assignment of ranks.
fn popularity_cdf(n: usize, exponent: f64, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let mut ranks: Vec<usize> = (0..n).collect();
    ranks.shuffle(rng);
    let mut total = 0.0;
    ranks
        .into_iter()
        .map(|rank| {
            total += 1.0 / (rank as f64 + 10.0).powf(exponent);
            total
        })
        .collect()
}

fn sample_cdf(cdf: &[f64], rng: &mut ChaCha8Rng) -> usize {
    let total = *cdf.last().expect("non-empty cdf");
    let target = rng.random::<f64>() * total;
    cdf.partition_point(|&c| c <= target).min(cdf.len() - 1)
}

/// E[clip(X, lo, hi)] for X ~ N(mean, std^2): the best guess of a clipped noisy rating.
pub fn expected_clipped_normal(mean: f64, std: f64, lo: f64, hi: f64) -> f64 {
    if std == 0.0 {
        return mean.clamp(lo, hi);
    }
    let a = (lo - mean) / std;
    let b = (hi - mean) / std;
    let (cdf_a, cdf_b) = (normal_cdf(a), normal_cdf(b));
    lo * cdf_a + hi * (1.0 - cdf_b) + mean * (cdf_b - cdf_a) + std * (normal_pdf(a) - normal_pdf(b))
}

fn normal_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

fn normal_cdf(x: f64) -> f64 {
    0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2))
}

/// Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7), enough for a floor estimate.
fn erf(x: f64) -> f64 {
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    sign * (1.0 - poly * (-x * x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_data_and_requested_size() {
        let config = SyntheticConfig {
            users: 200,
            items: 300,
            ratings: 5000,
            ..Default::default()
        };
        let a = generate(&config).unwrap();
        let b = generate(&config).unwrap();
        assert_eq!(a.train, b.train);
        assert_eq!(a.train.len(), 5000);
        let c = generate(&SyntheticConfig { seed: 1, ..config }).unwrap();
        assert_ne!(a.train, c.train);
        assert!(a.train.values.iter().all(|&v| (1.0..=5.0).contains(&v)));
        let mut keys: Vec<(u32, u32)> = a
            .train
            .users
            .iter()
            .copied()
            .zip(a.train.items.iter().copied())
            .collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 5000, "pairs are distinct");
    }

    #[test]
    fn noise_floor_is_close_to_noise_std_when_clipping_is_rare() {
        let d = generate(&SyntheticConfig::default()).unwrap();
        let floor = d.synthetic.unwrap().noise_floor_rmse;
        assert!((floor - 0.5).abs() < 0.05, "floor {floor}");
        let mean = d.train.mean();
        assert!((mean - 3.3).abs() < 0.2, "mean {mean}");
    }

    #[test]
    fn popularity_is_skewed() {
        let d = generate(&SyntheticConfig::default()).unwrap();
        let mut per_item = vec![0usize; 1000];
        for &i in &d.train.items {
            per_item[i as usize] += 1;
        }
        per_item.sort_unstable_by(|a, b| b.cmp(a));
        let top_decile: usize = per_item[..100].iter().sum();
        assert!(
            top_decile as f64 > 0.25 * 200_000.0,
            "top 10% items have {top_decile}"
        );
    }

    #[test]
    fn expected_clipped_normal_matches_limits() {
        assert!((expected_clipped_normal(3.0, 0.1, 1.0, 5.0) - 3.0).abs() < 1e-6);
        assert!((expected_clipped_normal(10.0, 0.5, 1.0, 5.0) - 5.0).abs() < 1e-6);
        // Symmetric clipping at the mean: E = mean.
        assert!((expected_clipped_normal(3.0, 5.0, 1.0, 5.0) - 3.0).abs() < 1e-6);
    }

    #[test]
    fn rejects_impossible_sizes() {
        let config = SyntheticConfig {
            users: 10,
            items: 10,
            ratings: 80,
            ..Default::default()
        };
        assert!(generate(&config).is_err());
    }
}

//! Train/test splits: the official ml-100k files, a seeded random holdout, a per-user holdout.

use super::ratings::Ratings;
use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq)]
pub enum SplitSpec {
    /// Everything is training data (`none`).
    None,
    /// One of ml-100k's shipped splits: `u1`..`u5`, `ua`, `ub`.
    Official(String),
    /// Seeded random holdout; the fraction is kept for training.
    Random(f64),
    /// Per-user holdout: each user keeps this fraction of their ratings (at least one) for training.
    PerUser(f64),
}

crate::serde_via_text!(SplitSpec);

impl FromStr for SplitSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fraction = |value: &str| -> Result<f64, String> {
            let f: f64 = value
                .parse()
                .map_err(|_| format!("split fraction {value:?} is not a number"))?;
            if !(f > 0.0 && f < 1.0) {
                return Err(format!(
                    "split fraction {value} must be strictly between 0 and 1"
                ));
            }
            Ok(f)
        };
        match text {
            "none" => Ok(SplitSpec::None),
            s if super::movielens::OFFICIAL_SPLITS.contains(&s) => {
                Ok(SplitSpec::Official(s.to_string()))
            }
            s => match s.split_once(':') {
                Some(("random", f)) => Ok(SplitSpec::Random(fraction(f)?)),
                Some(("user", f)) => Ok(SplitSpec::PerUser(fraction(f)?)),
                _ => Err(format!(
                    "unknown split {s:?}: use u1..u5, ua, ub, random:FRACTION, user:FRACTION or none"
                )),
            },
        }
    }
}

impl fmt::Display for SplitSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SplitSpec::None => write!(f, "none"),
            SplitSpec::Official(name) => write!(f, "{name}"),
            SplitSpec::Random(frac) => write!(f, "random:{frac}"),
            SplitSpec::PerUser(frac) => write!(f, "user:{frac}"),
        }
    }
}

/// Moves a seeded `fraction` of the training ratings into a validation part; the test part
/// is never touched (training runs and `regulab eval` hold out the same part). Its own
/// seed stream keeps it independent of a random train/test split.
pub fn hold_out_validation(
    dataset: &mut super::RatingsDataset,
    fraction: f64,
    seed: u64,
) -> Result<Ratings> {
    let validation_seed = seed ^ 0x7661_6c69_6461_7465; // "validate"
    let (kept, held_out) = holdout(
        &dataset.train,
        &SplitSpec::Random(1.0 - fraction),
        validation_seed,
    )?;
    if kept.is_empty() || held_out.is_empty() {
        bail!("--val-split {fraction}: leaves an empty training or validation part");
    }
    dataset.train = kept;
    Ok(held_out)
}

/// Splits `all` into (train, test) by a holdout spec, reproducibly for a given seed.
pub fn holdout(all: &Ratings, spec: &SplitSpec, seed: u64) -> Result<(Ratings, Ratings)> {
    if *spec == SplitSpec::None {
        return Ok((all.clone(), Ratings::default()));
    }
    let (train, test) = holdout_positions(all, spec, seed)?;
    Ok((all.select(&train), all.select(&test)))
}

/// The positions in `all` that [`holdout`] puts into (train, test), in that order.
pub fn holdout_positions(
    all: &Ratings,
    spec: &SplitSpec,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    match spec {
        SplitSpec::None => Ok(((0..all.len()).collect(), Vec::new())),
        SplitSpec::Official(name) => {
            bail!("split {name} is a file split; it needs the ml-100k directory")
        }
        SplitSpec::Random(fraction) => {
            let mut order: Vec<usize> = (0..all.len()).collect();
            order.shuffle(&mut rng);
            let keep = ((all.len() as f64) * fraction).round() as usize;
            let test = order.split_off(keep.min(all.len()));
            Ok((order, test))
        }
        SplitSpec::PerUser(fraction) => Ok(per_user_positions(all, *fraction, &mut rng)),
    }
}

fn per_user_positions(
    all: &Ratings,
    fraction: f64,
    rng: &mut ChaCha8Rng,
) -> (Vec<usize>, Vec<usize>) {
    let users = all.users.iter().map(|&u| u as usize + 1).max().unwrap_or(0);
    let mut by_user: Vec<Vec<usize>> = vec![Vec::new(); users];
    for (position, &u) in all.users.iter().enumerate() {
        by_user[u as usize].push(position);
    }
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for positions in &mut by_user {
        if positions.is_empty() {
            continue;
        }
        positions.shuffle(rng);
        let keep = ((positions.len() as f64 * fraction).ceil() as usize).max(1);
        train.extend_from_slice(&positions[..keep]);
        test.extend_from_slice(&positions[keep..]);
    }
    (train, test)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ratings(n: usize, users: u32) -> Ratings {
        let mut r = Ratings::default();
        for k in 0..n {
            r.push(k as u32 % users, k as u32, (k % 5 + 1) as f32);
        }
        r
    }

    #[test]
    fn parses_every_form() {
        assert_eq!(
            "u3".parse::<SplitSpec>(),
            Ok(SplitSpec::Official("u3".into()))
        );
        assert_eq!(
            "random:0.8".parse::<SplitSpec>(),
            Ok(SplitSpec::Random(0.8))
        );
        assert_eq!("user:0.5".parse::<SplitSpec>(), Ok(SplitSpec::PerUser(0.5)));
        assert!("random:1.5".parse::<SplitSpec>().is_err());
        assert!("u9".parse::<SplitSpec>().is_err());
        assert_eq!(SplitSpec::Random(0.8).to_string(), "random:0.8");
    }

    #[test]
    fn random_holdout_is_seeded_and_complete() {
        let all = ratings(1000, 10);
        let (train, test) = holdout(&all, &SplitSpec::Random(0.8), 7).unwrap();
        assert_eq!((train.len(), test.len()), (800, 200));
        let again = holdout(&all, &SplitSpec::Random(0.8), 7).unwrap();
        assert_eq!(train, again.0);
        let other = holdout(&all, &SplitSpec::Random(0.8), 8).unwrap();
        assert_ne!(train, other.0);
        let mut items: Vec<u32> = train.items.iter().chain(&test.items).copied().collect();
        items.sort();
        assert_eq!(items, (0..1000).collect::<Vec<u32>>());
    }

    #[test]
    fn per_user_holdout_keeps_every_user_in_training() {
        let all = ratings(103, 10);
        let (train, test) = holdout(&all, &SplitSpec::PerUser(0.7), 1).unwrap();
        assert_eq!(train.len() + test.len(), 103);
        for user in 0..10 {
            let n_train = train.users.iter().filter(|&&u| u == user).count();
            let n_all = all.users.iter().filter(|&&u| u == user).count();
            assert_eq!(n_train, (n_all as f64 * 0.7).ceil() as usize);
        }
    }
}

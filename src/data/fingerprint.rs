//! What a run trained on, in a few numbers: the size of each part and a SHA-256 over its
//! contents. `regulab resume` refuses to continue a run whose data changed since it started.

use super::mnist::ImageSplit;
use super::Ratings;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataFingerprint {
    /// Examples per part (`train`, `validation`, `test`).
    pub sizes: BTreeMap<String, u64>,
    /// SHA-256 over every part's contents, in part order, hex.
    pub sha256: String,
}

/// Builds a fingerprint part by part.
#[derive(Default)]
pub struct Fingerprinter {
    sizes: BTreeMap<String, u64>,
    hasher: Sha256,
}

impl Fingerprinter {
    /// Users, items and values of one part of a ratings data set.
    pub fn ratings(mut self, part: &str, ratings: &Ratings) -> Self {
        self.sizes.insert(part.into(), ratings.len() as u64);
        self.hasher.update(part.as_bytes());
        for (&user, (&item, &value)) in ratings
            .users
            .iter()
            .zip(ratings.items.iter().zip(&ratings.values))
        {
            self.hasher.update(user.to_le_bytes());
            self.hasher.update(item.to_le_bytes());
            self.hasher.update(value.to_le_bytes());
        }
        self
    }

    /// Pixels and labels of one part of an image data set.
    pub fn images(mut self, part: &str, split: &ImageSplit) -> Self {
        self.sizes.insert(part.into(), split.count as u64);
        self.hasher.update(part.as_bytes());
        self.hasher.update(&split.images);
        self.hasher.update(&split.labels);
        self
    }

    pub fn finish(self) -> DataFingerprint {
        let digest = self.hasher.finalize();
        DataFingerprint {
            sizes: self.sizes,
            sha256: digest.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }
}

impl DataFingerprint {
    /// How `now` differs from this fingerprint, in words; `None` when they are the same.
    pub fn difference(&self, now: &DataFingerprint) -> Option<String> {
        let parts: std::collections::BTreeSet<&String> =
            self.sizes.keys().chain(now.sizes.keys()).collect();
        let changed: Vec<String> = parts
            .into_iter()
            .filter_map(|part| {
                let (was, is) = (self.sizes.get(part), now.sizes.get(part));
                (was != is).then(|| {
                    let show = |n: Option<&u64>| n.map_or("none".to_string(), u64::to_string);
                    format!("{part} {} -> {}", show(was), show(is))
                })
            })
            .collect();
        if !changed.is_empty() {
            return Some(format!("sizes changed: {}", changed.join(", ")));
        }
        (self.sha256 != now.sha256).then(|| "same sizes, different contents".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ratings(values: &[f32]) -> Ratings {
        Ratings {
            users: (0..values.len() as u32).collect(),
            items: vec![0; values.len()],
            values: values.to_vec(),
        }
    }

    #[test]
    fn a_changed_rating_or_size_is_noticed() {
        let fingerprint = |v: &[f32]| {
            Fingerprinter::default()
                .ratings("train", &ratings(v))
                .finish()
        };
        let original = fingerprint(&[4.0, 3.0]);
        assert_eq!(original.difference(&fingerprint(&[4.0, 3.0])), None);
        assert_eq!(
            original.difference(&fingerprint(&[4.0, 2.0])).unwrap(),
            "same sizes, different contents"
        );
        assert_eq!(
            original.difference(&fingerprint(&[4.0])).unwrap(),
            "sizes changed: train 2 -> 1"
        );
    }
}

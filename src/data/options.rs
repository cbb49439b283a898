//! How ratings files are checked while loading: what to do with repeated (user, item) pairs
//! and which rating scale is valid. Typed and serde-able so that a configuration file and the
//! command line describe a load the same way; the command line parses them with `FromStr`.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Checks applied to ratings read from files (synthetic data needs none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct LoadOptions {
    pub duplicates: DuplicatePolicy,
    /// Replaces the MovieLens format's own scale when set.
    pub rating_range: Option<RatingRange>,
}

/// What to do when a (user, item) pair is rated more than once. Silently keeping both would
/// let a random split put one copy in training and the other in test, leaking the answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DuplicatePolicy {
    /// Stop with an error naming both lines.
    #[default]
    Error,
    /// Keep the earliest rating (in file order; a split's training file comes first).
    KeepFirst,
    /// Keep the latest rating, where it stands (for official splits, possibly in the test file).
    KeepLast,
    /// One rating with the mean value, where the first one stood.
    Mean,
}

impl DuplicatePolicy {
    pub const ALL: [DuplicatePolicy; 4] = [
        DuplicatePolicy::Error,
        DuplicatePolicy::KeepFirst,
        DuplicatePolicy::KeepLast,
        DuplicatePolicy::Mean,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DuplicatePolicy::Error => "error",
            DuplicatePolicy::KeepFirst => "keep-first",
            DuplicatePolicy::KeepLast => "keep-last",
            DuplicatePolicy::Mean => "mean",
        }
    }
}

impl FromStr for DuplicatePolicy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|policy| policy.name() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|p| p.name()).collect();
                format!(
                    "unknown duplicate policy {text:?}: use {}",
                    names.join(", ")
                )
            })
    }
}

impl fmt::Display for DuplicatePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An inclusive rating scale `min..=max`; finite with `min < max` by construction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RangeFields", into = "RangeFields")]
pub struct RatingRange {
    min: f64,
    max: f64,
}

/// The unchecked serde form, so that deserializing validates like `new` does; config files
/// and flags may also give the text form `MIN,MAX`.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum RangeFields {
    Fields { min: f64, max: f64 },
    Text(String),
}

impl RatingRange {
    /// ml-100k and ml-1m: whole stars.
    pub const STARS: RatingRange = RatingRange { min: 1.0, max: 5.0 };
    /// ml-10m and later: half stars.
    pub const HALF_STARS: RatingRange = RatingRange { min: 0.5, max: 5.0 };

    pub fn new(min: f64, max: f64) -> Result<Self, String> {
        if !(min.is_finite() && max.is_finite()) {
            return Err(format!("rating range {min},{max} must be finite"));
        }
        if min >= max {
            return Err(format!(
                "rating range {min},{max}: MIN must be smaller than MAX"
            ));
        }
        Ok(RatingRange { min, max })
    }

    pub fn min(self) -> f64 {
        self.min
    }

    pub fn max(self) -> f64 {
        self.max
    }

    /// Compared at the stored precision (f32), so that a bound written with the same text as
    /// a rating (say 0.3) admits that rating.
    pub fn contains(self, value: f32) -> bool {
        value >= self.min as f32 && value <= self.max as f32
    }
}

impl TryFrom<RangeFields> for RatingRange {
    type Error = String;

    fn try_from(fields: RangeFields) -> Result<Self, Self::Error> {
        match fields {
            RangeFields::Fields { min, max } => RatingRange::new(min, max),
            RangeFields::Text(text) => text.parse(),
        }
    }
}

impl From<RatingRange> for RangeFields {
    fn from(range: RatingRange) -> Self {
        RangeFields::Fields {
            min: range.min,
            max: range.max,
        }
    }
}

impl FromStr for RatingRange {
    type Err = String;

    /// `MIN,MAX`, e.g. `1,10` or `0.5,5`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (min, max) = text
            .split_once(',')
            .ok_or_else(|| format!("rating range {text:?} must be MIN,MAX (e.g. 1,10)"))?;
        let bound = |value: &str| {
            value
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("rating range {text:?}: {value:?} is not a number"))
        };
        RatingRange::new(bound(min)?, bound(max)?)
    }
}

impl fmt::Display for RatingRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.min, self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_policy_names_round_trip() {
        for policy in DuplicatePolicy::ALL {
            let name = policy.name();
            assert_eq!(name.parse::<DuplicatePolicy>(), Ok(policy));
            assert_eq!(policy.to_string(), name);
            let json = serde_json::to_string(&policy).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(
                serde_json::from_str::<DuplicatePolicy>(&json).unwrap(),
                policy
            );
        }
        let err = "first".parse::<DuplicatePolicy>().unwrap_err();
        assert!(err.contains("error, keep-first, keep-last, mean"), "{err}");
    }

    #[test]
    fn rating_range_parses_and_validates() {
        let range: RatingRange = "0.5, 10".parse().unwrap();
        assert_eq!((range.min(), range.max()), (0.5, 10.0));
        assert_eq!(range.to_string(), "0.5,10");
        assert_eq!(range.to_string().parse::<RatingRange>(), Ok(range));
        for bad in ["5", "5,1", "1,1", "a,5", "1,inf", "NaN,5", ""] {
            assert!(bad.parse::<RatingRange>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn rating_range_bounds_are_inclusive_at_f32_precision() {
        let range: RatingRange = "0.1,0.3".parse().unwrap();
        assert!(range.contains("0.3".parse().unwrap()));
        assert!(range.contains("0.1".parse().unwrap()));
        assert!(!range.contains(0.31));
        assert!(RatingRange::STARS.contains(5.0) && !RatingRange::STARS.contains(0.5));
    }

    #[test]
    fn load_options_serde_uses_kebab_case_and_validates() {
        let options = LoadOptions {
            duplicates: DuplicatePolicy::KeepLast,
            rating_range: Some(RatingRange::new(1.0, 10.0).unwrap()),
        };
        let json = serde_json::to_string(&options).unwrap();
        assert_eq!(
            json,
            r#"{"duplicates":"keep-last","rating-range":{"min":1.0,"max":10.0}}"#
        );
        assert_eq!(serde_json::from_str::<LoadOptions>(&json).unwrap(), options);
        assert_eq!(
            serde_json::from_str::<LoadOptions>("{}").unwrap(),
            LoadOptions::default()
        );
        let bad = r#"{"rating-range":{"min":5,"max":1}}"#;
        assert!(serde_json::from_str::<LoadOptions>(bad).is_err());
    }
}

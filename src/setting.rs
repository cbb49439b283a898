//! Leaf helpers shared by every typed setting: the error that names a configuration key, and
//! enum names parsed and printed through serde so that a flag, a config-file value and the
//! run document spell each choice the same way.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;

/// A setting that fails validation: which key, and why. The caller that knows where the
/// value came from (a flag, a file line, `--set`) turns it into the message the user sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSetting {
    /// The configuration key, which is also the long flag name (`lambda`, `weight_decay`).
    pub key: &'static str,
    pub reason: String,
}

impl InvalidSetting {
    pub fn new(key: &'static str, reason: impl Into<String>) -> Self {
        InvalidSetting {
            key,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for InvalidSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", flag_name(self.key), self.reason)
    }
}

impl std::error::Error for InvalidSetting {}

/// `weight_decay` -> `--weight-decay`.
pub fn flag_name(key: &str) -> String {
    format!("--{}", key.replace('_', "-"))
}

/// Parses a unit-variant enum from its serde name (`batch-l2`, `adamw`), listing the
/// accepted names when it is not one of them.
pub fn parse_name<T: DeserializeOwned>(text: &str, choices: &[&str]) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(text.to_string()))
        .map_err(|_| format!("unknown value {text:?}: use {}", choices.join(", ")))
}

/// The serde name of a unit-variant enum value.
pub fn name_of<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => String::new(),
    }
}

/// `FromStr` and `Display` for a unit-variant enum through its serde names.
#[macro_export]
macro_rules! named_enum {
    ($type:ty, [$($name:literal),+ $(,)?]) => {
        impl $type {
            /// Every accepted name.
            pub const NAMES: &'static [&'static str] = &[$($name),+];
        }
        impl std::str::FromStr for $type {
            type Err = String;
            fn from_str(text: &str) -> Result<Self, String> {
                $crate::setting::parse_name(text, <$type>::NAMES)
            }
        }
        impl std::fmt::Display for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&$crate::setting::name_of(self))
            }
        }
    };
}

/// Serialize and Deserialize through `Display` and `FromStr` (for settings such as a split
/// or a device whose text form is their natural one).
#[macro_export]
macro_rules! serde_via_text {
    ($type:ty) => {
        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

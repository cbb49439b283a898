//! The memory a run will need, estimated from its sizes before anything large is allocated,
//! so that a run far beyond the machine is refused with one line instead of swapping for
//! minutes or dying inside libtorch.

use anyhow::{bail, Result};

/// Bytes of one float32 and of one int64.
const F32: u64 = 4;
const I64: u64 = 8;

/// What a run allocates, part by part.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Estimate {
    pub parts: Vec<(&'static str, u64)>,
}

impl Estimate {
    pub fn total(&self) -> u64 {
        self.parts.iter().map(|(_, bytes)| bytes).sum()
    }

    fn add(&mut self, part: &'static str, bytes: u64) {
        self.parts.push((part, bytes));
    }

    /// The largest parts, for the message.
    fn largest(&self) -> String {
        let mut parts = self.parts.clone();
        parts.sort_by_key(|part| std::cmp::Reverse(part.1));
        parts
            .iter()
            .take(3)
            .map(|(name, bytes)| format!("{name} {}", human(*bytes)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Matrix factorization: factor tables with their gradients and optimizer state, the ratings
/// on the device, and the temporaries of a batch and of an evaluation chunk.
pub struct MfSizes {
    pub users: u64,
    pub items: u64,
    pub dim: u64,
    pub ratings: u64,
    pub batch_size: u64,
    pub eval_chunk: u64,
    /// Per-parameter buffers the optimizer keeps (Adam: 2).
    pub optimizer_slots: u64,
}

pub fn estimate_mf(s: &MfSizes) -> Estimate {
    let parameters = (s.users + s.items) * (s.dim + 1) * F32;
    let mut estimate = Estimate::default();
    estimate.add("parameters", parameters);
    estimate.add("gradients", parameters);
    estimate.add("optimizer state", parameters * s.optimizer_slots);
    estimate.add("ratings", s.ratings * (2 * I64 + 2 * F32));
    // A batch gathers a user and an item row per rating, with gradients of both.
    estimate.add("batch", s.batch_size.saturating_mul(s.dim) * F32 * 6);
    estimate.add("evaluation", s.eval_chunk.saturating_mul(s.dim) * F32 * 4);
    estimate
}

/// The MLP: weights with gradients and optimizer state, the images on the device as floats,
/// and the activations of a batch and of an evaluation chunk.
pub struct MlpSizes {
    pub layer_sizes: Vec<u64>,
    pub images: u64,
    pub pixels: u64,
    pub batch_size: u64,
    pub eval_chunk: u64,
    pub optimizer_slots: u64,
}

pub fn estimate_mlp(s: &MlpSizes) -> Estimate {
    let weights: u64 = s
        .layer_sizes
        .windows(2)
        .map(|pair| (pair[0] + 1).saturating_mul(pair[1]))
        .sum::<u64>()
        * F32;
    let activations: u64 = s.layer_sizes.iter().sum::<u64>() * F32;
    let mut estimate = Estimate::default();
    estimate.add("parameters", weights);
    estimate.add("gradients", weights);
    estimate.add("optimizer state", weights * s.optimizer_slots);
    estimate.add("images", s.images.saturating_mul(s.pixels * F32 + I64));
    estimate.add("batch", s.batch_size.saturating_mul(activations) * 3);
    estimate.add("evaluation", s.eval_chunk.saturating_mul(activations) * 2);
    estimate
}

/// Memory the system can give without swapping (MemAvailable), when known.
pub fn available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Refuses a run whose estimate exceeds what is available, naming the flags that drive it,
/// unless forced.
pub fn check(
    estimate: &Estimate,
    available: Option<u64>,
    force: bool,
    drivers: &str,
) -> Result<()> {
    let Some(available) = available else {
        return Ok(());
    };
    let needed = estimate.total();
    if needed > available && !force {
        bail!(
            "this run needs about {} of memory ({}), more than the {} available; reduce {drivers}, or pass --force to try anyway",
            human(needed),
            estimate.largest(),
            human(available)
        );
    }
    Ok(())
}

/// Bytes in binary units, as the rest of regulab prints them.
pub fn human(bytes: u64) -> String {
    crate::util::human_bytes(bytes)
}

/// The first line of a libtorch failure, worded as an out-of-memory when it is one; never
/// the C++ frames that follow it.
pub fn describe_failure(message: &str, during: &str) -> String {
    let first = message.lines().next().unwrap_or("").trim();
    let lower = message.to_ascii_lowercase();
    if lower.contains("out of memory")
        || lower.contains("failed to allocate")
        || lower.contains("alloc") && lower.contains("bytes")
    {
        let needed = first
            .split_whitespace()
            .skip_while(|w| !w.eq_ignore_ascii_case("allocate"))
            .nth(1)
            .and_then(|w| {
                w.trim_matches(|c: char| !c.is_ascii_digit())
                    .parse::<u64>()
                    .ok()
            })
            .map(|bytes| format!(": needed {}", human(bytes)))
            .unwrap_or_default();
        return format!("out of memory while {during}{needed}");
    }
    format!("{first} (while {during})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mf_estimate_grows_with_the_dimension() {
        let sizes = |dim| MfSizes {
            users: 943,
            items: 1682,
            dim,
            ratings: 100_000,
            batch_size: 1024,
            eval_chunk: 1 << 20,
            optimizer_slots: 2,
        };
        let small = estimate_mf(&sizes(16)).total();
        let large = estimate_mf(&sizes(100_000)).total();
        assert!(small < 400 << 20, "{}", human(small));
        assert!(large > 4 << 30, "{}", human(large));
        let error = check(&estimate_mf(&sizes(100_000)), Some(1 << 30), false, "--dim")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("--dim") && error.contains("--force"),
            "{error}"
        );
        assert!(check(&estimate_mf(&sizes(100_000)), Some(1 << 30), true, "--dim").is_ok());
    }

    #[test]
    fn libtorch_failures_become_one_line() {
        let message = "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: you tried to allocate 42949672960 bytes.\nframe #0: c10::ThrowEnforceNotMet(...)\nframe #1: ...";
        let line = describe_failure(message, "training");
        assert_eq!(line, "out of memory while training: needed 40.0 GiB");
        let line = describe_failure(
            "CUDA out of memory. Tried to allocate 2.00 GiB\nframes",
            "building the model",
        );
        assert!(
            line.starts_with("out of memory while building the model"),
            "{line}"
        );
        assert!(!describe_failure("shape mismatch\nframe #0", "x").contains("frame"));
    }
}

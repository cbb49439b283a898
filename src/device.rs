//! `--device auto|cpu|cuda|cuda:N`.

use anyhow::{bail, Result};
use std::fmt;
use std::str::FromStr;
use tch::Device;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// CUDA device 0 when available, else the CPU.
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
}

crate::serde_via_text!(DeviceChoice);

impl FromStr for DeviceChoice {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" => Ok(DeviceChoice::Cuda(0)),
            s => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => Ok(DeviceChoice::Cuda(n)),
                _ => Err(format!(
                    "unknown device {s:?}: use auto, cpu, cuda or cuda:N"
                )),
            },
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Auto => write!(f, "auto"),
            DeviceChoice::Cpu => write!(f, "cpu"),
            DeviceChoice::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl DeviceChoice {
    /// The torch device, or an error when CUDA is asked for and absent.
    pub fn resolve(self) -> Result<Device> {
        match self {
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Auto => Ok(Device::cuda_if_available()),
            DeviceChoice::Cuda(n) => {
                if !tch::Cuda::is_available() {
                    bail!("--device {self}: CUDA is not available on this machine (torch sees no CUDA device); use --device cpu or auto");
                }
                let count = tch::Cuda::device_count() as usize;
                if n >= count {
                    bail!(
                        "--device {self}: only {count} CUDA device(s) (cuda:0..cuda:{})",
                        count - 1
                    );
                }
                Ok(Device::Cuda(n))
            }
        }
    }
}

/// How reports name a device: `cpu`, `cuda:0`.
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cuda(n) => format!("cuda:{n}"),
        Device::Cpu => "cpu".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// What a run trains, as far as the CPU thread count is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Matrix factorization: a step's tensors hold batch size x K values.
    MatrixFactorization { batch_values: u64 },
    /// The MLP: matrix products of batch x layer width.
    Mlp,
}

/// The CPU thread count a run uses, and why (recorded in the run document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadChoice {
    pub threads: usize,
    pub reason: String,
}

/// Below this many values a step's tensors are too small to split: ATen gives an elementwise
/// op one thread per 32768 values (its grain size), so extra threads would only add their
/// wake-up cost, which on a busy machine is large (ml-100k MF epochs 10 to 60 times slower
/// with idle-waiting OpenMP threads, docs/benchmarks.md).
pub const SMALL_STEP_VALUES: u64 = 4 * 32768;

/// `--threads` when given; otherwise 1 thread for matrix factorization with small batches
/// and every core for the MLP's matrix products (and for MF batches large enough to split).
pub fn choose_threads(requested: Option<usize>, workload: Workload, cores: usize) -> ThreadChoice {
    let cores = cores.max(1);
    if let Some(threads) = requested {
        return ThreadChoice {
            threads,
            reason: format!("--threads {threads}"),
        };
    }
    match workload {
        Workload::MatrixFactorization { batch_values } if batch_values <= SMALL_STEP_VALUES => {
            ThreadChoice {
                threads: 1,
                reason: format!(
                    "default for mf: 1, since a step's tensors ({batch_values} values, batch size x K) are too small to split across threads"
                ),
            }
        }
        Workload::MatrixFactorization { batch_values } => ThreadChoice {
            threads: cores,
            reason: format!(
                "default for mf: the {cores} cores, since a step's tensors ({batch_values} values, batch size x K) are large enough to split"
            ),
        },
        Workload::Mlp => ThreadChoice {
            threads: cores,
            reason: format!("default for mlp: the {cores} cores, which split its matrix products"),
        },
    }
}

/// The machine's logical cores as the operating system offers them to this process.
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_follow_the_flag_then_the_workload() {
        let small_mf = Workload::MatrixFactorization {
            batch_values: 1024 * 16,
        };
        assert_eq!(choose_threads(Some(3), small_mf, 8).threads, 3);
        assert_eq!(choose_threads(Some(3), small_mf, 8).reason, "--threads 3");
        assert_eq!(choose_threads(None, small_mf, 8).threads, 1);
        let big_mf = Workload::MatrixFactorization {
            batch_values: 65536 * 64,
        };
        assert_eq!(choose_threads(None, big_mf, 8).threads, 8);
        assert_eq!(choose_threads(None, Workload::Mlp, 8).threads, 8);
        assert_eq!(choose_threads(None, Workload::Mlp, 0).threads, 1);
        assert!(choose_threads(None, small_mf, 8)
            .reason
            .starts_with("default for mf: 1"));
    }
}

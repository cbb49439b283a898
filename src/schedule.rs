//! Learning-rate schedules (`--lr-schedule`) with torch.optim.lr_scheduler's semantics, stepped
//! once per epoch: `step:EVERY:GAMMA` (StepLR), `cosine` (CosineAnnealingLR over the run's
//! epochs, eta_min 0) and `plateau:PATIENCE:FACTOR` (ReduceLROnPlateau on the validation
//! metric, threshold 1e-4 relative, no cooldown). Like PyTorch's, the step and cosine rules
//! update the current rate in chained form, so the rates agree with PyTorch's to the bit.

use std::f64::consts::PI;
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum LrSchedule {
    #[default]
    Constant,
    /// Multiply the rate by `gamma` every `every` epochs.
    Step { every: usize, gamma: f64 },
    /// Cosine annealing from the initial rate to 0 over the run's epochs.
    Cosine,
    /// Multiply the rate by `factor` after `patience` epochs without a validation improvement.
    Plateau { patience: usize, factor: f64 },
}

crate::serde_via_text!(LrSchedule);

impl FromStr for LrSchedule {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split(':').collect();
        let usage = "use constant, step:EVERY:GAMMA, cosine or plateau:PATIENCE:FACTOR";
        let count = |s: &str, what: &str| -> Result<usize, String> {
            s.parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("{what} {s:?} must be a positive integer"))
        };
        let factor = |s: &str, what: &str| -> Result<f64, String> {
            s.parse::<f64>()
                .ok()
                .filter(|f| *f > 0.0 && *f < 1.0)
                .ok_or_else(|| format!("{what} {s:?} must be a number strictly between 0 and 1"))
        };
        match parts.as_slice() {
            ["constant"] => Ok(LrSchedule::Constant),
            ["cosine"] => Ok(LrSchedule::Cosine),
            ["step", every, gamma] => Ok(LrSchedule::Step {
                every: count(every, "EVERY")?,
                gamma: factor(gamma, "GAMMA")?,
            }),
            ["plateau", patience, f] => Ok(LrSchedule::Plateau {
                patience: patience
                    .parse::<usize>()
                    .map_err(|_| format!("PATIENCE {patience:?} must be a non-negative integer"))?,
                factor: factor(f, "FACTOR")?,
            }),
            _ => Err(format!("unknown schedule {text:?}: {usage}")),
        }
    }
}

impl fmt::Display for LrSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LrSchedule::Constant => write!(f, "constant"),
            LrSchedule::Cosine => write!(f, "cosine"),
            LrSchedule::Step { every, gamma } => write!(f, "step:{every}:{gamma}"),
            LrSchedule::Plateau { patience, factor } => write!(f, "plateau:{patience}:{factor}"),
        }
    }
}

impl LrSchedule {
    pub fn needs_validation(self) -> bool {
        matches!(self, LrSchedule::Plateau { .. })
    }
}

/// ReduceLROnPlateau's relative threshold and minimal change.
const PLATEAU_THRESHOLD: f64 = 1e-4;
const PLATEAU_EPS: f64 = 1e-8;

/// A schedule being followed: the current rate and what the rule remembers (saved in
/// checkpoints, so a resumed run continues the same schedule).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scheduler {
    schedule: LrSchedule,
    epochs: usize,
    base_lr: f64,
    lr: f64,
    /// Epochs stepped so far (PyTorch's `last_epoch`).
    last_epoch: usize,
    plateau_best: Option<f64>,
    bad_epochs: usize,
    higher_is_better: bool,
}

impl Scheduler {
    pub fn new(schedule: LrSchedule, lr: f64, epochs: usize, higher_is_better: bool) -> Self {
        Scheduler {
            schedule,
            epochs,
            base_lr: lr,
            lr,
            last_epoch: 0,
            plateau_best: None,
            bad_epochs: 0,
            higher_is_better,
        }
    }

    /// The rate for the next epoch.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// Advances one epoch; `validation` is the epoch's validation metric (plateau only).
    pub fn step(&mut self, validation: Option<f64>) {
        self.last_epoch += 1;
        let t = self.last_epoch;
        match self.schedule {
            LrSchedule::Constant => {}
            LrSchedule::Step { every, gamma } => {
                if t.is_multiple_of(every) {
                    self.lr *= gamma;
                }
            }
            LrSchedule::Cosine => {
                let t_max = self.epochs.max(1) as f64;
                let (t, t_max_i) = (t as i64, self.epochs.max(1) as i64);
                if (t - 1 - t_max_i).rem_euclid(2 * t_max_i) == 0 {
                    self.lr += (self.base_lr - 0.0) * (1.0 - (PI / t_max).cos()) / 2.0;
                } else {
                    self.lr = (1.0 + (PI * t as f64 / t_max).cos())
                        / (1.0 + (PI * (t - 1) as f64 / t_max).cos())
                        * (self.lr - 0.0)
                        + 0.0;
                }
            }
            LrSchedule::Plateau { patience, factor } => {
                let Some(current) = validation.filter(|v| v.is_finite()) else {
                    return;
                };
                // ReduceLROnPlateau compares with a relative threshold (mode min or max).
                let better = match self.plateau_best {
                    None => true,
                    Some(best) if self.higher_is_better => {
                        current > best * (PLATEAU_THRESHOLD + 1.0)
                    }
                    Some(best) => current < best * (1.0 - PLATEAU_THRESHOLD),
                };
                if better {
                    self.plateau_best = Some(current);
                    self.bad_epochs = 0;
                } else {
                    self.bad_epochs += 1;
                }
                if self.bad_epochs > patience {
                    let new_lr = (self.lr * factor).max(0.0);
                    if self.lr - new_lr > PLATEAU_EPS {
                        self.lr = new_lr;
                    }
                    self.bad_epochs = 0;
                }
            }
        }
    }
}

/// Stop when the validation metric has not improved by more than `min_delta` for
/// `patience` epochs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EarlyStop {
    pub patience: usize,
    pub min_delta: f64,
}

impl EarlyStop {
    /// Counts improvements as early stopping does, but never stops: the best epoch is still
    /// tracked (and counted) in runs without early stopping.
    pub const NEVER: EarlyStop = EarlyStop {
        patience: usize::MAX,
        min_delta: 0.0,
    };

    /// Whether `value` improves on `reference` (the last value counted as an improvement)
    /// by more than `min_delta`; the first value always does.
    pub fn improves(self, value: f64, reference: Option<f64>, higher_is_better: bool) -> bool {
        match reference {
            None => true,
            Some(reference) if higher_is_better => value > reference + self.min_delta,
            Some(reference) => value < reference - self.min_delta,
        }
    }

    pub fn patience_ran_out(self, epochs_without_improvement: usize) -> bool {
        epochs_without_improvement >= self.patience
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(schedule: &str, lr: f64, epochs: usize, validation: &[f64]) -> Vec<f64> {
        let mut scheduler = Scheduler::new(schedule.parse().unwrap(), lr, epochs, false);
        (0..epochs)
            .map(|e| {
                let lr = scheduler.lr();
                scheduler.step(validation.get(e).copied());
                lr
            })
            .collect()
    }

    #[test]
    fn step_and_cosine_follow_pytorch() {
        assert_eq!(
            rates("step:2:0.5", 1.0, 5, &[]),
            vec![1.0, 1.0, 0.5, 0.5, 0.25]
        );
        let cosine = rates("cosine", 0.1, 4, &[]);
        assert_eq!(cosine[0], 0.1);
        // (1 + cos(pi/4)) / 2 * 0.1, then chained.
        assert!((cosine[1] - 0.1 * (1.0 + (PI / 4.0).cos()) / 2.0).abs() < 1e-15);
        assert!((cosine[2] - 0.05).abs() < 1e-12, "{cosine:?}");
        assert!(cosine[3] > 0.0 && cosine[3] < 0.02);
    }

    #[test]
    fn plateau_waits_for_patience() {
        let r = rates("plateau:1:0.1", 1.0, 6, &[1.0, 0.9, 0.95, 0.95, 0.95, 0.5]);
        assert_eq!(r[..4], [1.0, 1.0, 1.0, 1.0]);
        assert!((r[4] - 0.1).abs() < 1e-15, "{r:?}");
    }

    #[test]
    fn bad_schedules_are_named() {
        assert!("step:0:0.5"
            .parse::<LrSchedule>()
            .unwrap_err()
            .contains("EVERY"));
        assert!("step:2:2"
            .parse::<LrSchedule>()
            .unwrap_err()
            .contains("GAMMA"));
        assert!("linear"
            .parse::<LrSchedule>()
            .unwrap_err()
            .contains("cosine"));
        assert_eq!(
            "plateau:3:0.5".parse::<LrSchedule>().unwrap().to_string(),
            "plateau:3:0.5"
        );
    }
}

//! The buffers as tensors named as in torch.optim's `state_dict`, and back. Loading builds
//! new buffers, each checked against its parameter, so that a bad state replaces nothing.

use super::{Buffers, OptimizerKind, OptimizerSettings, Slot};
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use tch::Tensor;

impl Buffers {
    /// Copies of the buffers under torch.optim's names; `step` first, as a 0-dim tensor:
    /// float32 as in torch.optim, int64 for SparseAdam (whose count is a Python int).
    pub(super) fn named(&self) -> Result<Vec<(&'static str, Tensor)>> {
        let (step, buffers) = match self {
            Buffers::Sgd { momentum_buffer } => {
                (None, vec![("momentum_buffer", momentum_buffer.as_ref())])
            }
            Buffers::Adam {
                step,
                exp_avg,
                exp_avg_sq,
                max_exp_avg_sq,
            } => (
                Some(Tensor::from(*step)),
                vec![
                    ("exp_avg", Some(exp_avg)),
                    ("exp_avg_sq", Some(exp_avg_sq)),
                    ("max_exp_avg_sq", max_exp_avg_sq.as_ref()),
                ],
            ),
            Buffers::Rmsprop {
                step,
                square_avg,
                momentum_buffer,
                grad_avg,
            } => (
                Some(Tensor::from(*step)),
                vec![
                    ("square_avg", Some(square_avg)),
                    ("momentum_buffer", momentum_buffer.as_ref()),
                    ("grad_avg", grad_avg.as_ref()),
                ],
            ),
            Buffers::SparseAdam {
                step,
                exp_avg,
                exp_avg_sq,
            } => (
                Some(Tensor::from(*step)),
                vec![("exp_avg", Some(exp_avg)), ("exp_avg_sq", Some(exp_avg_sq))],
            ),
        };
        let mut named = Vec::with_capacity(buffers.len() + 1);
        if let Some(step) = step {
            named.push(("step", step));
        }
        for (name, tensor) in buffers {
            if let Some(tensor) = tensor {
                named.push((name, tensor.f_detach_copy()?));
            }
        }
        Ok(named)
    }

    /// The buffers `settings` calls for, taken out of `stored` and copied onto the
    /// parameter's device and dtype.
    pub(super) fn load(
        settings: &OptimizerSettings,
        slot: &Slot,
        stored: &mut BTreeMap<&str, &Tensor>,
    ) -> Result<Self> {
        let optional = |stored: &mut BTreeMap<&str, &Tensor>, wanted: bool, buffer: &str| {
            if wanted {
                required(stored, slot, buffer).map(Some)
            } else {
                Ok(None)
            }
        };
        Ok(match settings.kind {
            OptimizerKind::Sgd => {
                // Absent is a valid state: no step has been taken with momentum yet.
                let momentum_buffer = match take(stored, slot, "momentum_buffer") {
                    Some(_) if settings.momentum == 0.0 => bail!(
                        "optimizer state has {}.momentum_buffer but its settings have no momentum",
                        slot.name
                    ),
                    Some(tensor) => Some(like_param(slot, "momentum_buffer", tensor)?),
                    None => None,
                };
                Buffers::Sgd { momentum_buffer }
            }
            OptimizerKind::Adam if settings.sparse => Buffers::SparseAdam {
                step: load_count(stored, slot)?,
                exp_avg: required(stored, slot, "exp_avg")?,
                exp_avg_sq: required(stored, slot, "exp_avg_sq")?,
            },
            OptimizerKind::Adam | OptimizerKind::Adamw => Buffers::Adam {
                step: load_step(stored, slot)?,
                exp_avg: required(stored, slot, "exp_avg")?,
                exp_avg_sq: required(stored, slot, "exp_avg_sq")?,
                max_exp_avg_sq: optional(stored, settings.amsgrad, "max_exp_avg_sq")?,
            },
            OptimizerKind::Rmsprop => Buffers::Rmsprop {
                step: load_step(stored, slot)?,
                square_avg: required(stored, slot, "square_avg")?,
                momentum_buffer: optional(stored, settings.momentum > 0.0, "momentum_buffer")?,
                grad_avg: optional(stored, settings.centered, "grad_avg")?,
            },
        })
    }
}

fn take<'a>(
    stored: &mut BTreeMap<&str, &'a Tensor>,
    slot: &Slot,
    buffer: &str,
) -> Option<&'a Tensor> {
    stored.remove(format!("{}.{buffer}", slot.name).as_str())
}

fn required(stored: &mut BTreeMap<&str, &Tensor>, slot: &Slot, buffer: &str) -> Result<Tensor> {
    match take(stored, slot, buffer) {
        Some(tensor) => like_param(slot, buffer, tensor),
        None => bail!("optimizer state lacks {}.{buffer}", slot.name),
    }
}

/// The stored `step` as a number (any dtype), checked to be a single value.
fn stored_step(stored: &mut BTreeMap<&str, &Tensor>, slot: &Slot) -> Result<f64> {
    let Some(tensor) = take(stored, slot, "step") else {
        bail!("optimizer state lacks {}.step", slot.name);
    };
    if tensor.numel() != 1 {
        bail!(
            "optimizer state: {}.step has shape {:?}, expected a single number",
            slot.name,
            tensor.size()
        );
    }
    Ok(tensor.f_double_value(&[])?)
}

/// SparseAdam's step count, an integer (2^53 bounds what a double carries exactly).
fn load_count(stored: &mut BTreeMap<&str, &Tensor>, slot: &Slot) -> Result<i64> {
    let value = stored_step(stored, slot)?;
    if !(value >= 0.0 && value.fract() == 0.0 && value <= 2f64.powi(53)) {
        bail!(
            "optimizer state: {}.step {value} is not a step count",
            slot.name
        );
    }
    Ok(value as i64)
}

fn load_step(stored: &mut BTreeMap<&str, &Tensor>, slot: &Slot) -> Result<f32> {
    let value = stored_step(stored, slot)?;
    // torch.optim counts in float32, which holds every count up to 2^24 exactly.
    if !(value >= 0.0 && value.fract() == 0.0 && value <= f64::from(1u32 << 24)) {
        bail!(
            "optimizer state: {}.step {value} is not a step count",
            slot.name
        );
    }
    Ok(value as f32)
}

/// A copy of `stored` with the parameter's shape, dtype and device.
fn like_param(slot: &Slot, buffer: &str, stored: &Tensor) -> Result<Tensor> {
    if stored.size() != slot.param.size() {
        bail!(
            "optimizer state: {}.{buffer} has shape {:?}, the parameter {:?}",
            slot.name,
            stored.size(),
            slot.param.size()
        );
    }
    let mut copy = slot.param.f_zeros_like()?;
    copy.f_copy_(stored)?;
    Ok(copy)
}

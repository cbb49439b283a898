//! Which engine computes a run's training steps (`--engine`): the fused CPU step of matrix
//! factorization, or autograd.

use crate::config::{Engine, ModelSpec, RunConfig, FUSED_ON_CUDA};
use crate::fused_mf::{self, FusedMfStep};
use crate::model::Model;
use crate::optim::Optimizer;
use crate::regularization::Penalty;
use anyhow::{anyhow, bail, Result};

/// The engine a run trains with, and why (both recorded in the document's environment).
pub(super) struct EngineChoice {
    /// The fused step, or `None` for autograd.
    pub step: Option<FusedMfStep>,
    pub name: &'static str,
    pub reason: String,
}

fn autograd(reason: impl Into<String>) -> EngineChoice {
    EngineChoice {
        step: None,
        name: "autograd",
        reason: reason.into(),
    }
}

/// `auto` takes the fused step where it applies (matrix factorization on the CPU, with a
/// passed self-check) and autograd elsewhere; `fused` where it does not apply is an error.
pub(super) fn choose(
    config: &RunConfig,
    model: &dyn Model,
    penalty: &Penalty,
    optimizer: &Optimizer,
    device: tch::Device,
) -> Result<EngineChoice> {
    let requested = match &config.model {
        ModelSpec::Mf(spec) => spec.engine,
        ModelSpec::Mlp(_) => return Ok(autograd("the MLP trains through autograd")),
    };
    if requested == Engine::Autograd {
        return Ok(autograd("--engine autograd"));
    }
    if let Some(why) = fused_mf::not_covered(device) {
        return match requested {
            Engine::Fused if device != tch::Device::Cpu => bail!("--engine fused: {FUSED_ON_CUDA}"),
            Engine::Fused => bail!("--engine fused: {why}; use --engine autograd or auto"),
            _ => Ok(autograd(format!("auto: the fused step {why}"))),
        };
    }
    let mf = model
        .as_matrix_factorization()
        .ok_or_else(|| anyhow!("--engine: the fused step is matrix factorization's"))?;
    let batch_size = config.training.batch_size.min(model_train_len(model));
    let step = FusedMfStep::new(mf, penalty, optimizer, batch_size)?;
    Ok(EngineChoice {
        step: Some(step),
        name: "fused",
        reason: match requested {
            Engine::Fused => "--engine fused".into(),
            _ => "auto: the fused CPU step (its self-check passed)".into(),
        },
    })
}

fn model_train_len(model: &dyn Model) -> usize {
    model.split_len(crate::model::Split::Train).max(1) as usize
}

//! Optimizer choice (`--optimizer`), built on libtorch's own implementations so that the
//! numbers match `torch.optim` (coupled weight decay for SGD/Adam/RMSprop, decoupled for AdamW).

use crate::setting::InvalidSetting;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tch::nn::{self, OptimizerConfig as _};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Sgd,
    Adam,
    Adamw,
    Rmsprop,
}

crate::named_enum!(OptimizerKind, ["sgd", "adam", "adamw", "rmsprop"]);

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OptimizerSettings {
    pub kind: OptimizerKind,
    pub lr: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
}

impl OptimizerSettings {
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        let invalid = InvalidSetting::new;
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(invalid("lr", "must be a positive number"));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(invalid("weight_decay", "must be a non-negative number"));
        }
        if !(self.momentum.is_finite() && self.momentum >= 0.0) {
            return Err(invalid("momentum", "must be a non-negative number"));
        }
        if self.nesterov && !(self.kind == OptimizerKind::Sgd && self.momentum > 0.0) {
            return Err(invalid(
                "nesterov",
                "needs --optimizer sgd with --momentum > 0 (as torch.optim.SGD)",
            ));
        }
        if self.momentum > 0.0 && !matches!(self.kind, OptimizerKind::Sgd | OptimizerKind::Rmsprop)
        {
            return Err(invalid(
                "momentum",
                "applies to sgd and rmsprop only (adam/adamw use betas 0.9, 0.999)",
            ));
        }
        Ok(())
    }

    /// Buffers kept per parameter (momentum, moments), for memory estimates.
    pub fn state_slots(&self) -> u64 {
        let momentum = u64::from(self.momentum > 0.0);
        match self.kind {
            OptimizerKind::Sgd => momentum,
            OptimizerKind::Adam | OptimizerKind::Adamw => 2,
            OptimizerKind::Rmsprop => 1 + momentum,
        }
    }

    /// How weight decay acts: added to the gradient (an L2 penalty in disguise) or applied
    /// to the weights directly, outside the adaptive step.
    pub fn weight_decay_mode(&self) -> &'static str {
        match self.kind {
            OptimizerKind::Adamw => "decoupled",
            _ => "coupled",
        }
    }

    pub fn build(&self, vs: &nn::VarStore) -> Result<nn::Optimizer> {
        self.validate()
            .map_err(|invalid| anyhow::anyhow!("{invalid}"))?;
        let built = match self.kind {
            OptimizerKind::Sgd => nn::Sgd {
                momentum: self.momentum,
                dampening: 0.0,
                wd: self.weight_decay,
                nesterov: self.nesterov,
            }
            .build(vs, self.lr),
            OptimizerKind::Adam => nn::Adam {
                wd: self.weight_decay,
                ..Default::default()
            }
            .build(vs, self.lr),
            OptimizerKind::Adamw => nn::AdamW {
                wd: self.weight_decay,
                ..Default::default()
            }
            .build(vs, self.lr),
            OptimizerKind::Rmsprop => nn::RmsProp {
                wd: self.weight_decay,
                momentum: self.momentum,
                ..Default::default()
            }
            .build(vs, self.lr),
        };
        built.context("building the optimizer")
    }
}

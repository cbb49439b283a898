//! The optimizers' hyper-parameters as flags and config files give them: plain data, which
//! `validate` checks without any tensor, so that a config is checked before an optimizer exists.

use super::Optimizer;
use crate::model::named_parameters;
use crate::regularization::WeightDecayMode;
use crate::setting::InvalidSetting;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use tch::nn;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Sgd,
    Adam,
    Adamw,
    Rmsprop,
}

crate::named_enum!(OptimizerKind, ["sgd", "adam", "adamw", "rmsprop"]);

impl OptimizerKind {
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
            OptimizerKind::Adamw => "adamw",
            OptimizerKind::Rmsprop => "rmsprop",
        }
    }

    fn is_adam(self) -> bool {
        matches!(self, OptimizerKind::Adam | OptimizerKind::Adamw)
    }
}

/// torch.optim.Adam/AdamW's `betas`.
pub const DEFAULT_BETAS: (f64, f64) = (0.9, 0.999);
/// torch.optim's `eps` for Adam, AdamW and RMSprop alike.
pub const DEFAULT_EPS: f64 = 1e-8;
/// torch.optim.RMSprop's `alpha`.
pub const DEFAULT_ALPHA: f64 = 0.99;

/// Every hyper-parameter of the four optimizers; each kind reads its own and `validate`
/// rejects a non-default value for a kind that would ignore it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerSettings {
    pub kind: OptimizerKind,
    pub lr: f64,
    /// sgd, rmsprop
    pub momentum: f64,
    /// sgd
    pub dampening: f64,
    /// sgd
    pub nesterov: bool,
    pub weight_decay: f64,
    /// adam, adamw
    pub betas: (f64, f64),
    /// adam, adamw, rmsprop
    pub eps: f64,
    /// adam, adamw
    pub amsgrad: bool,
    /// rmsprop
    pub alpha: f64,
    /// rmsprop
    pub centered: bool,
    /// Row-sparse gradients: sgd without momentum or weight decay, adam as SparseAdam.
    #[serde(default)]
    pub sparse: bool,
}

/// Parses `--betas B1,B2`.
pub fn parse_betas(text: &str) -> std::result::Result<(f64, f64), String> {
    text.split_once(',')
        .and_then(|(b1, b2)| Some((b1.trim().parse().ok()?, b2.trim().parse().ok()?)))
        .ok_or_else(|| format!("expected two numbers B1,B2 (such as 0.9,0.999), got {text:?}"))
}

impl OptimizerSettings {
    /// torch.optim's defaults for `kind`, with learning rate `lr`; weight decay 0 for every
    /// kind, AdamW included (torch.optim.AdamW's own default is 0.01).
    pub fn new(kind: OptimizerKind, lr: f64) -> Self {
        OptimizerSettings {
            kind,
            lr,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            betas: DEFAULT_BETAS,
            eps: DEFAULT_EPS,
            amsgrad: false,
            alpha: DEFAULT_ALPHA,
            centered: false,
            sparse: false,
        }
    }

    pub fn validate(&self) -> std::result::Result<(), InvalidSetting> {
        self.validate_ranges()?;
        self.validate_applicable()?;
        if self.sparse {
            self.validate_sparse()?;
        }
        Ok(())
    }

    /// Each value in its range. First, so that an out-of-range value is reported as such even
    /// for a kind that ignores it.
    fn validate_ranges(&self) -> std::result::Result<(), InvalidSetting> {
        let invalid = |key: &'static str, reason: &str| Err(InvalidSetting::new(key, reason));
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return invalid("lr", "must be a positive number");
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return invalid("weight_decay", "must be a non-negative number");
        }
        if !(self.momentum.is_finite() && self.momentum >= 0.0) {
            return invalid("momentum", "must be a non-negative number");
        }
        if !(0.0..=1.0).contains(&self.dampening) {
            return invalid("dampening", "must be in [0, 1]");
        }
        let (b1, b2) = self.betas;
        if !((0.0..1.0).contains(&b1) && (0.0..1.0).contains(&b2)) {
            return invalid("betas", "each beta must be in [0, 1)");
        }
        if !(self.eps.is_finite() && self.eps >= 0.0) {
            return invalid("eps", "must be a non-negative number");
        }
        if !(0.0..=1.0).contains(&self.alpha) {
            return invalid("alpha", "must be in [0, 1]");
        }
        Ok(())
    }

    /// No value away from its default for a kind that would ignore it: a flag that changes
    /// nothing would mislead whoever reads the run's settings.
    fn validate_applicable(&self) -> std::result::Result<(), InvalidSetting> {
        let invalid = |key: &'static str, reason: &str| Err(InvalidSetting::new(key, reason));
        let kind = self.kind;
        if self.momentum > 0.0 && !matches!(kind, OptimizerKind::Sgd | OptimizerKind::Rmsprop) {
            return invalid(
                "momentum",
                "applies to sgd and rmsprop only (adam/adamw have --betas)",
            );
        }
        if self.dampening != 0.0 && kind != OptimizerKind::Sgd {
            return invalid("dampening", "applies to sgd only");
        }
        if self.nesterov && !(kind == OptimizerKind::Sgd && self.momentum > 0.0) {
            return invalid(
                "nesterov",
                "needs --optimizer sgd with --momentum > 0 (as torch.optim.SGD)",
            );
        }
        if self.nesterov && self.dampening != 0.0 {
            return invalid("nesterov", "needs --dampening 0 (as torch.optim.SGD)");
        }
        if self.betas != DEFAULT_BETAS && !kind.is_adam() {
            return invalid("betas", "applies to adam and adamw");
        }
        if self.amsgrad && !kind.is_adam() {
            return invalid("amsgrad", "applies to adam and adamw");
        }
        if self.eps != DEFAULT_EPS && kind == OptimizerKind::Sgd {
            return invalid("eps", "applies to adam, adamw and rmsprop");
        }
        if self.alpha != DEFAULT_ALPHA && kind != OptimizerKind::Rmsprop {
            return invalid("alpha", "applies to rmsprop only");
        }
        if self.centered && kind != OptimizerKind::Rmsprop {
            return invalid("centered", "applies to rmsprop only");
        }
        Ok(())
    }

    /// What `--sparse` supports: updates that leave the rows a batch did not use untouched.
    fn validate_sparse(&self) -> std::result::Result<(), InvalidSetting> {
        let invalid = |reason: &str| Err(InvalidSetting::new("sparse", reason));
        match self.kind {
            OptimizerKind::Adamw | OptimizerKind::Rmsprop => {
                return invalid(&format!(
                    "needs --optimizer sgd or adam (SparseAdam); {} has no row-sparse form",
                    self.kind.name()
                ))
            }
            OptimizerKind::Sgd if self.momentum != 0.0 => {
                return invalid("needs sgd without --momentum (its buffer moves every row)")
            }
            OptimizerKind::Adam if self.amsgrad => return invalid("SparseAdam has no --amsgrad"),
            OptimizerKind::Adam if self.eps <= 0.0 => return invalid("SparseAdam needs --eps > 0"),
            _ => {}
        }
        if self.weight_decay != 0.0 {
            return invalid(
                "needs --weight-decay 0 (it touches every row); --penalty batch-l2 is the row-local L2",
            );
        }
        Ok(())
    }

    /// The optimizer's name, with ` --sparse` for the row-sparse forms.
    pub(super) fn describe_kind(&self) -> String {
        let sparse = if self.sparse { " --sparse" } else { "" };
        format!("{}{sparse}", self.kind.name())
    }

    /// Buffers kept per parameter (moments, momentum), for memory estimates.
    pub fn state_slots(&self) -> u64 {
        let momentum = u64::from(self.momentum > 0.0);
        match self.kind {
            OptimizerKind::Sgd => momentum,
            OptimizerKind::Adam | OptimizerKind::Adamw => 2 + u64::from(self.amsgrad),
            OptimizerKind::Rmsprop => 1 + momentum + u64::from(self.centered),
        }
    }

    /// How weight decay acts: added to the gradient (an L2 penalty in disguise) or applied
    /// to the weights directly, outside the adaptive step.
    pub fn weight_decay_mode(&self) -> WeightDecayMode {
        match self.kind {
            OptimizerKind::Adamw => WeightDecayMode::Decoupled,
            _ => WeightDecayMode::Coupled,
        }
    }

    /// The optimizer over the trainable variables of `vs`, in canonical name order.
    pub fn build(&self, vs: &nn::VarStore) -> Result<Optimizer> {
        Optimizer::new(self.clone(), &named_parameters(vs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_settings_name_their_flag() {
        use OptimizerKind::*;
        type Edit = dyn Fn(&mut OptimizerSettings);
        let cases: Vec<(OptimizerKind, &Edit, &str)> = vec![
            (Adam, &|s| s.lr = 0.0, "--lr: must be a positive number"),
            (
                Adam,
                &|s| s.betas = (1.2, 0.9),
                "--betas: each beta must be in [0, 1)",
            ),
            (
                Adam,
                &|s| s.eps = -1.0,
                "--eps: must be a non-negative number",
            ),
            (
                Sgd,
                &|s| s.amsgrad = true,
                "--amsgrad: applies to adam and adamw",
            ),
            (
                Sgd,
                &|s| s.betas = (0.8, 0.9),
                "--betas: applies to adam and adamw",
            ),
            (
                Sgd,
                &|s| s.eps = 1e-6,
                "--eps: applies to adam, adamw and rmsprop",
            ),
            (
                Adam,
                &|s| s.dampening = 0.1,
                "--dampening: applies to sgd only",
            ),
            (
                Sgd,
                &|s| s.dampening = 2.0,
                "--dampening: must be in [0, 1]",
            ),
            (
                Adam,
                &|s| s.momentum = 0.9,
                "--momentum: applies to sgd and rmsprop only (adam/adamw have --betas)",
            ),
            (
                Adamw,
                &|s| s.centered = true,
                "--centered: applies to rmsprop only",
            ),
            (Sgd, &|s| s.alpha = 0.9, "--alpha: applies to rmsprop only"),
            (Rmsprop, &|s| s.alpha = 1.5, "--alpha: must be in [0, 1]"),
            (
                Sgd,
                &|s| s.nesterov = true,
                "--nesterov: needs --optimizer sgd with --momentum > 0 (as torch.optim.SGD)",
            ),
            (
                Sgd,
                &|s| {
                    s.nesterov = true;
                    s.momentum = 0.9;
                    s.dampening = 0.1;
                },
                "--nesterov: needs --dampening 0 (as torch.optim.SGD)",
            ),
        ];
        let sparse_cases: Vec<(OptimizerKind, &Edit, &str)> = vec![
            (
                Rmsprop,
                &|_| {},
                "--sparse: needs --optimizer sgd or adam (SparseAdam); rmsprop has no row-sparse form",
            ),
            (
                Sgd,
                &|s| s.momentum = 0.9,
                "--sparse: needs sgd without --momentum (its buffer moves every row)",
            ),
            (Adam, &|s| s.amsgrad = true, "--sparse: SparseAdam has no --amsgrad"),
            (Adam, &|s| s.eps = 0.0, "--sparse: SparseAdam needs --eps > 0"),
            (
                Sgd,
                &|s| s.weight_decay = 1e-4,
                "--sparse: needs --weight-decay 0 (it touches every row); --penalty batch-l2 is the row-local L2",
            ),
        ];
        for (kind, edit, message) in sparse_cases {
            let mut settings = OptimizerSettings::new(kind, 0.1);
            settings.sparse = true;
            edit(&mut settings);
            assert_eq!(settings.validate().unwrap_err().to_string(), message);
        }
        for (kind, edit, message) in cases {
            let mut settings = OptimizerSettings::new(kind, 0.1);
            edit(&mut settings);
            assert_eq!(settings.validate().unwrap_err().to_string(), message);
        }
        for kind in [Sgd, Adam, Adamw, Rmsprop] {
            OptimizerSettings::new(kind, 0.1).validate().unwrap();
        }
    }

    #[test]
    fn betas_parse_as_two_numbers() {
        assert_eq!(parse_betas("0.9,0.999"), Ok((0.9, 0.999)));
        assert_eq!(parse_betas(" 0.5 , 0.75"), Ok((0.5, 0.75)));
        for bad in ["0.9", "0.9,0.99,0.999", "a,0.9", ""] {
            assert!(parse_betas(bad).is_err(), "{bad}");
        }
    }
}

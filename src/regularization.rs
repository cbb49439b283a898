//! Every regularization form, as data: its formula, its default scaling and how it is computed.
//!
//! A penalty is a term added to the minibatch loss. Weight decay is not a penalty (the optimizer
//! applies it and the loss never sees it); its implied L2 term is reported separately by
//! [`implied_weight_decay_loss`] so that explicit-penalty and weight-decay runs can be compared.

use crate::model::Parameter;
use crate::setting::InvalidSetting;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PenaltyKind {
    /// No penalty term.
    None,
    /// Per-batch L2 on the rows used (the common MovieLens question's loss): lambda * sum over
    /// the batch's (u,i) of (|p_u|^2 + |q_i|^2), divided by |B|.
    BatchL2,
    /// The lecture's L2: lambda/2 * sum of squared Frobenius norms, divided by n (alias `l2`).
    #[serde(alias = "l2")]
    Frobenius,
    /// The lecture's PyTorch snippet `loss + torch.norm(param)`: lambda * sum of unsquared norms.
    Norm,
    /// lambda * sum of absolute values, divided by n.
    L1,
}

/// What the penalty sum is divided by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PenaltyScale {
    /// The number of training examples (ratings or images).
    Dataset,
    /// The configured batch size (for `batch-l2`: the number of examples in the batch).
    Batch,
    /// Not divided.
    None,
}

crate::named_enum!(
    PenaltyKind,
    ["none", "batch-l2", "frobenius", "l2", "norm", "l1"]
);
crate::named_enum!(PenaltyScale, ["dataset", "batch", "none"]);

impl PenaltyKind {
    pub fn formula(self) -> &'static str {
        match self {
            PenaltyKind::None => "0",
            PenaltyKind::BatchL2 => {
                "lambda * sum_{(u,i) in B} (||p_u||^2 + ||q_i||^2) / |B|  (per occurrence in the batch)"
            }
            PenaltyKind::Frobenius => "lambda / 2 * sum_W ||W||_F^2 / divisor",
            PenaltyKind::Norm => "lambda * sum_W ||W||_F / divisor  (unsquared, torch.norm)",
            PenaltyKind::L1 => "lambda * sum_W ||W||_1 / divisor",
        }
    }

    pub fn default_scale(self) -> PenaltyScale {
        match self {
            PenaltyKind::None | PenaltyKind::Norm => PenaltyScale::None,
            PenaltyKind::BatchL2 => PenaltyScale::Batch,
            PenaltyKind::Frobenius | PenaltyKind::L1 => PenaltyScale::Dataset,
        }
    }

    /// The 1/2 of the L2 forms that makes the gradient lambda * W.
    fn half(self) -> f64 {
        match self {
            PenaltyKind::Frobenius => 0.5,
            _ => 1.0,
        }
    }

    /// The per-tensor reduction the form sums over parameters.
    fn reduce(self, tensor: &Tensor) -> Tensor {
        match self {
            PenaltyKind::BatchL2 | PenaltyKind::Frobenius | PenaltyKind::None => {
                tensor.pow_tensor_scalar(2).sum(Kind::Float)
            }
            PenaltyKind::Norm => tensor.norm(),
            PenaltyKind::L1 => tensor.abs().sum(Kind::Float),
        }
    }

    /// Whether the form is computed on the rows a batch uses rather than on whole parameters.
    pub fn is_per_example(self) -> bool {
        self == PenaltyKind::BatchL2
    }
}

/// The penalty a run asks for, before the data set size fixes its divisor.
#[derive(Debug, Clone, PartialEq)]
pub struct PenaltySettings {
    pub kind: PenaltyKind,
    pub lambda: f64,
    /// `None` takes the form's own scale.
    pub scale: Option<PenaltyScale>,
    pub penalize_bias: bool,
}

impl PenaltySettings {
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if !self.lambda.is_finite() || self.lambda < 0.0 {
            return Err(InvalidSetting::new(
                "lambda",
                "must be a non-negative number",
            ));
        }
        if self.kind == PenaltyKind::None && self.lambda != 0.0 {
            return Err(InvalidSetting::new(
                "lambda",
                "given without --penalty: choose a form (batch-l2, frobenius/l2, norm, l1)",
            ));
        }
        let scale = self.scale.unwrap_or(self.kind.default_scale());
        if self.kind == PenaltyKind::BatchL2 && scale != PenaltyScale::Batch {
            return Err(InvalidSetting::new(
                "penalty_scale",
                "batch-l2 is defined per batch (divided by |B|); it takes no other scale",
            ));
        }
        Ok(())
    }

    /// The penalty with its divisor fixed by the training set and batch sizes.
    pub fn resolve(&self, dataset_size: usize, batch_size: usize) -> anyhow::Result<Penalty> {
        Penalty::new(
            self.kind,
            self.lambda,
            self.scale,
            self.penalize_bias,
            dataset_size,
            batch_size,
        )
    }
}

/// A resolved penalty: form, strength and divisor.
#[derive(Debug, Clone, PartialEq)]
pub struct Penalty {
    pub kind: PenaltyKind,
    pub lambda: f64,
    pub scale: PenaltyScale,
    pub penalize_bias: bool,
    /// The divisor the scale stands for (for `batch-l2`, the number of examples at hand).
    divisor: f64,
}

/// How the optimizer applies weight decay: added to the gradient as an L2 term's (coupled:
/// SGD, Adam, RMSprop) or to the weights directly (decoupled: AdamW).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightDecayMode {
    Coupled,
    Decoupled,
    /// No weight decay.
    None,
}

impl std::fmt::Display for WeightDecayMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WeightDecayMode::Coupled => "coupled",
            WeightDecayMode::Decoupled => "decoupled",
            WeightDecayMode::None => "none",
        })
    }
}

/// How a run was regularized, for the JSON report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegularizationRecord {
    pub penalty: PenaltyKind,
    pub lambda: f64,
    pub formula: String,
    pub scale: PenaltyScale,
    /// The number the penalty sum is divided by (`null` for batch-l2: the batch size at hand).
    pub divisor: Option<f64>,
    pub penalize_bias: bool,
    pub weight_decay: f64,
    /// `coupled` (L2 added to the gradient: SGD, Adam, RMSprop), `decoupled` (AdamW) or `none`.
    pub weight_decay_mode: WeightDecayMode,
    pub implied_weight_decay_formula: String,
}

impl Penalty {
    /// `scale` of `None` takes the form's default. `dataset_size` and `batch_size` resolve the divisor.
    pub fn new(
        kind: PenaltyKind,
        lambda: f64,
        scale: Option<PenaltyScale>,
        penalize_bias: bool,
        dataset_size: usize,
        batch_size: usize,
    ) -> anyhow::Result<Self> {
        let settings = PenaltySettings {
            kind,
            lambda,
            scale,
            penalize_bias,
        };
        settings
            .validate()
            .map_err(|invalid| anyhow::anyhow!("{invalid}"))?;
        let scale = scale.unwrap_or(kind.default_scale());
        let divisor = match scale {
            PenaltyScale::Dataset => dataset_size as f64,
            PenaltyScale::Batch => batch_size as f64,
            PenaltyScale::None => 1.0,
        };
        Ok(Penalty {
            kind,
            lambda,
            scale,
            penalize_bias,
            divisor,
        })
    }

    pub fn is_active(&self) -> bool {
        self.kind != PenaltyKind::None && self.lambda != 0.0
    }

    /// Whether the penalty covers `parameter` (weights always, biases with `penalize_bias`).
    pub fn applies_to(&self, parameter: &Parameter) -> bool {
        !parameter.is_bias || self.penalize_bias
    }

    /// The number [`Self::on_parameters`] multiplies the sum of reductions by.
    pub fn parameters_coefficient(&self) -> f64 {
        self.lambda * self.kind.half() / self.divisor
    }

    /// Sum of the form's reductions over the penalized tensors, in the given order.
    fn sum(&self, parameters: &[Parameter]) -> Option<Tensor> {
        parameters
            .iter()
            .filter(|p| self.applies_to(p))
            .map(|p| self.kind.reduce(&p.tensor))
            .reduce(|total, term| total + term)
    }

    fn zero(like: &[Parameter]) -> Tensor {
        let device = like
            .first()
            .map(|p| p.tensor.device())
            .unwrap_or(tch::Device::Cpu);
        Tensor::zeros([], (Kind::Float, device))
    }

    /// The penalty on whole parameters (every form but `batch-l2`).
    pub fn on_parameters(&self, parameters: &[Parameter]) -> Tensor {
        if !self.is_active() || self.kind.is_per_example() {
            return Self::zero(parameters);
        }
        let coefficient = self.parameters_coefficient();
        match self.sum(parameters) {
            Some(total) => total * coefficient,
            None => Self::zero(parameters),
        }
    }

    /// `batch-l2` on the parameter rows used by `examples` examples (one row per occurrence).
    pub fn on_example_rows(&self, rows: &[Parameter], examples: i64) -> Tensor {
        if !self.is_active() || !self.kind.is_per_example() {
            return Self::zero(rows);
        }
        let coefficient = self.lambda / examples as f64;
        match self.sum(rows) {
            Some(total) => total * coefficient,
            None => Self::zero(rows),
        }
    }

    /// The training term for one batch: per-example forms use the batch's rows, others the parameters.
    pub fn training_term(
        &self,
        parameters: &[Parameter],
        batch_rows: &[Parameter],
        batch_len: i64,
    ) -> Tensor {
        if self.kind.is_per_example() {
            self.on_example_rows(batch_rows, batch_len)
        } else {
            self.on_parameters(parameters)
        }
    }

    /// Unscaled sum of the per-example reductions (for evaluation in chunks).
    pub fn example_rows_sum(&self, rows: &[Parameter]) -> f64 {
        if !self.is_active() || !self.kind.is_per_example() {
            return 0.0;
        }
        self.sum(rows).map(|t| t.double_value(&[])).unwrap_or(0.0)
    }

    pub fn record(
        &self,
        weight_decay: f64,
        weight_decay_mode: WeightDecayMode,
    ) -> RegularizationRecord {
        RegularizationRecord {
            penalty: self.kind,
            lambda: self.lambda,
            formula: self.kind.formula().into(),
            scale: self.scale,
            divisor: (!self.kind.is_per_example()).then_some(self.divisor),
            penalize_bias: self.penalize_bias,
            weight_decay,
            weight_decay_mode: if weight_decay == 0.0 {
                WeightDecayMode::None
            } else {
                weight_decay_mode
            },
            implied_weight_decay_formula: "weight_decay / 2 * sum over all parameters of ||W||_F^2"
                .into(),
        }
    }
}

/// The L2 term that weight decay corresponds to: (wd/2) * sum of squared norms of every
/// parameter the optimizer decays (all of them, as torch.optim does by default).
pub fn implied_weight_decay_loss(weight_decay: f64, parameters: &[Parameter]) -> f64 {
    if weight_decay == 0.0 {
        return 0.0;
    }
    let squares: f64 = parameters
        .iter()
        .map(|p| {
            p.tensor
                .pow_tensor_scalar(2)
                .sum(Kind::Double)
                .double_value(&[])
        })
        .sum();
    weight_decay / 2.0 * squares
}

/// Frobenius norm of each parameter, by name.
pub fn weight_norms(parameters: &[Parameter]) -> std::collections::BTreeMap<String, f64> {
    parameters
        .iter()
        .map(|p| (p.name.clone(), p.tensor.norm().double_value(&[])))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Vec<Parameter> {
        vec![
            Parameter::new("item_bias", Tensor::from_slice(&[1.0f32, -1.0])),
            Parameter::new(
                "item_factors",
                Tensor::from_slice(&[3.0f32, 4.0]).view([1, 2]),
            ),
            Parameter::new("user_factors", Tensor::from_slice(&[-2.0f32]).view([1, 1])),
        ]
    }

    fn value(t: Tensor) -> f64 {
        t.double_value(&[])
    }

    #[test]
    fn each_form_has_its_formula_and_scaling() {
        let p = params();
        // Factors only: squares 25 + 4 = 29, norms 5 + 2 = 7, abs 7 + 2 = 9.
        let frob = Penalty::new(PenaltyKind::Frobenius, 0.1, None, false, 10, 4).unwrap();
        assert!((value(frob.on_parameters(&p)) - 0.1 / 2.0 * 29.0 / 10.0).abs() < 1e-7);
        let norm = Penalty::new(PenaltyKind::Norm, 0.1, None, false, 10, 4).unwrap();
        assert!((value(norm.on_parameters(&p)) - 0.7).abs() < 1e-6);
        let l1 = Penalty::new(PenaltyKind::L1, 0.1, None, false, 10, 4).unwrap();
        assert!((value(l1.on_parameters(&p)) - 0.1 * 9.0 / 10.0).abs() < 1e-7);
        let l1_batch = Penalty::new(
            PenaltyKind::L1,
            0.1,
            Some(PenaltyScale::Batch),
            false,
            10,
            4,
        )
        .unwrap();
        assert!((value(l1_batch.on_parameters(&p)) - 0.1 * 9.0 / 4.0).abs() < 1e-7);
        // With biases: squares +2.
        let frob_bias = Penalty::new(
            PenaltyKind::Frobenius,
            1.0,
            Some(PenaltyScale::None),
            true,
            10,
            4,
        )
        .unwrap();
        assert!((value(frob_bias.on_parameters(&p)) - 31.0 / 2.0).abs() < 1e-6);
    }

    #[test]
    fn batch_l2_counts_rows_and_divides_by_batch_size() {
        let rows = params();
        let batch = Penalty::new(PenaltyKind::BatchL2, 0.5, None, false, 10, 4).unwrap();
        assert!((value(batch.on_example_rows(&rows, 3)) - 0.5 * 29.0 / 3.0).abs() < 1e-6);
        // Whole-parameter entry point gives nothing for a per-example form.
        assert_eq!(value(batch.on_parameters(&rows)), 0.0);
    }

    #[test]
    fn invalid_combinations_are_errors() {
        assert!(Penalty::new(PenaltyKind::None, 0.1, None, false, 1, 1).is_err());
        assert!(Penalty::new(PenaltyKind::L1, -1.0, None, false, 1, 1).is_err());
        assert!(Penalty::new(
            PenaltyKind::BatchL2,
            0.1,
            Some(PenaltyScale::Dataset),
            false,
            1,
            1
        )
        .is_err());
    }

    #[test]
    fn implied_weight_decay_is_half_wd_times_squares() {
        let p = params();
        assert!((implied_weight_decay_loss(0.2, &p) - 0.1 * 31.0).abs() < 1e-9);
    }
}

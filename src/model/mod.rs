//! Models, one file each, behind the small trait the training loop needs.

pub mod mf;
pub mod mlp;

use std::collections::BTreeMap;
use tch::Tensor;

/// A named trainable tensor and whether it is a weight or a bias. Penalties apply to weights
/// (MF factor matrices, MLP weight matrices) and to biases only with `--penalize-bias`.
#[derive(Debug)]
pub struct Parameter {
    pub name: String,
    pub tensor: Tensor,
    pub is_bias: bool,
}

impl Parameter {
    pub fn new(name: impl Into<String>, tensor: Tensor) -> Self {
        let name = name.into();
        let is_bias = name.ends_with("bias");
        Parameter {
            name,
            tensor,
            is_bias,
        }
    }
}

/// The trainable variables of a VarStore in canonical order: by name, with numeric path
/// components compared as numbers (`l_layers.2` before `l_layers.10`). Sums over parameters
/// always run in this order so that results do not depend on hash-map iteration.
pub fn named_parameters(vs: &tch::nn::VarStore) -> Vec<Parameter> {
    let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    named.sort_by_key(|(name, _)| natural_key(name));
    named
        .into_iter()
        .map(|(name, tensor)| Parameter::new(name, tensor))
        .collect()
}

fn natural_key(name: &str) -> Vec<(u64, String)> {
    name.split('.')
        .map(|part| match part.parse::<u64>() {
            Ok(n) => (n, String::new()),
            Err(_) => (u64::MAX, part.to_string()),
        })
        .collect()
}

/// The parts of a data set a model is evaluated on: train, validation and test. Every reader
/// of run documents (plot, explain, report) names them with this one type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Validation,
    Test,
}

impl Split {
    /// The name in run documents and metric keys.
    pub fn key(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
            Split::Test => "test",
        }
    }

    /// The word in sentences ("the training loss").
    pub fn noun(self) -> &'static str {
        match self {
            Split::Train => "training",
            Split::Validation => "validation",
            Split::Test => "test",
        }
    }
}

/// The headline metric of a model and which direction is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Lower is better.
    Rmse,
    /// Higher is better.
    Accuracy,
}

impl Metric {
    pub fn key(self) -> &'static str {
        match self {
            Metric::Rmse => "rmse",
            Metric::Accuracy => "accuracy",
        }
    }

    pub fn higher_is_better(self) -> bool {
        self == Metric::Accuracy
    }

    pub fn is_better(self, candidate: f64, best: f64) -> bool {
        match self {
            Metric::Rmse => candidate < best,
            Metric::Accuracy => candidate > best,
        }
    }
}

/// What one training batch produced.
pub struct BatchOutput {
    /// The base loss (mean over the batch) as the gradient sees it.
    pub base_loss: Tensor,
    /// The parameter rows this batch used, one per occurrence (matrix factorization), for
    /// per-example penalties; empty for models without per-example parameters.
    pub example_rows: Vec<Parameter>,
}

/// Base loss and metrics on one split, measured without gradients.
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    pub base_loss: f64,
    /// Sum of the per-example penalty reductions over the split (batch-l2), unscaled.
    pub example_rows_penalty_sum: f64,
    pub examples: i64,
    pub metrics: BTreeMap<String, f64>,
}

/// A trainable model bound to its data on the training device.
pub trait Model {
    /// Trainable parameters in canonical (natural name) order.
    fn parameters(&self) -> Vec<Parameter>;
    fn var_store(&self) -> &tch::nn::VarStore;
    /// Number of examples in a split (0 when absent).
    fn split_len(&self, split: Split) -> i64;
    /// Forward pass on the training examples at `indices` (int64 on the model's device).
    fn batch_loss(&self, indices: &Tensor) -> BatchOutput;
    /// Evaluates a split; `row_penalty` sums a per-example penalty's reduction over the rows
    /// of one evaluation batch (models without per-example rows never call it).
    fn evaluate(&self, split: Split, row_penalty: &dyn Fn(&[Parameter]) -> f64) -> Evaluation;
    fn headline_metric(&self) -> Metric;
    /// The model as matrix factorization, for the fused CPU training step.
    fn as_matrix_factorization(&self) -> Option<&mf::MatrixFactorization> {
        None
    }
}

/// Copies saved weights into a model's variables, by name; every variable must have a saved
/// tensor of its shape (`source` names where they come from, for errors).
pub fn load_weights(
    vs: &tch::nn::VarStore,
    weights: &BTreeMap<String, Tensor>,
    source: &str,
) -> anyhow::Result<()> {
    let _no_grad = tch::no_grad_guard();
    for (name, mut variable) in vs.variables() {
        let Some(saved) = weights.get(&name) else {
            anyhow::bail!("{source}: has no {name} tensor");
        };
        if saved.size() != variable.size() {
            anyhow::bail!(
                "{source}: {name} is {:?}, the model needs {:?}",
                saved.size(),
                variable.size()
            );
        }
        variable.copy_(saved);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_of_layer_names() {
        let mut names = vec!["l_layers.10.weight", "l_layers.2.bias", "l_layers.2.weight"];
        names.sort_by_key(|n| natural_key(n));
        assert_eq!(
            names,
            vec!["l_layers.2.bias", "l_layers.2.weight", "l_layers.10.weight"]
        );
    }
}

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

/// A metric a model is measured by, and which direction is better. Ranking metrics
/// (`precision@K`, `recall@K`, `ndcg@K`, `hit@K`) are defined in [`crate::ranking`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// Root mean squared error of predicted ratings; lower is better.
    Rmse,
    /// Mean absolute error of predicted ratings; lower is better.
    Mae,
    /// Share of images classified correctly; higher is better.
    Accuracy,
    /// Hits in the top K / K.
    Precision(usize),
    /// Hits in the top K / the user's relevant items.
    Recall(usize),
    /// DCG / IDCG of the top K, binary gains.
    Ndcg(usize),
    /// 1 when the top K holds a relevant item.
    Hit(usize),
}

crate::serde_via_text!(Metric);

impl Metric {
    /// The name in run documents, series and flags: `rmse`, `ndcg@10`.
    pub fn key(self) -> String {
        match self.cutoff() {
            Some(k) => format!("{}@{k}", self.family()),
            None => self.family().to_string(),
        }
    }

    /// The name without its cutoff: `ndcg` for `ndcg@10`.
    pub fn family(self) -> &'static str {
        match self {
            Metric::Rmse => "rmse",
            Metric::Mae => "mae",
            Metric::Accuracy => "accuracy",
            Metric::Precision(_) => "precision",
            Metric::Recall(_) => "recall",
            Metric::Ndcg(_) => "ndcg",
            Metric::Hit(_) => "hit",
        }
    }

    /// K of a ranking metric; `None` for the others.
    pub fn cutoff(self) -> Option<usize> {
        match self {
            Metric::Precision(k) | Metric::Recall(k) | Metric::Ndcg(k) | Metric::Hit(k) => Some(k),
            Metric::Rmse | Metric::Mae | Metric::Accuracy => None,
        }
    }

    pub fn is_ranking(self) -> bool {
        self.cutoff().is_some()
    }

    /// A ranking metric's mean in `result` (`None` for the others or a missing cutoff).
    pub fn value_in(self, result: &crate::ranking::RankingResult) -> Option<f64> {
        let at = result.at.get(&self.cutoff()?)?;
        match self {
            Metric::Precision(_) => Some(at.precision),
            Metric::Recall(_) => Some(at.recall),
            Metric::Ndcg(_) => Some(at.ndcg),
            Metric::Hit(_) => Some(at.hit),
            Metric::Rmse | Metric::Mae | Metric::Accuracy => None,
        }
    }

    pub fn higher_is_better(self) -> bool {
        !matches!(self, Metric::Rmse | Metric::Mae)
    }

    pub fn is_better(self, candidate: f64, best: f64) -> bool {
        if self.higher_is_better() {
            candidate > best
        } else {
            candidate < best
        }
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.key())
    }
}

impl std::str::FromStr for Metric {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let usage =
            "use rmse, mae, accuracy, precision@K, recall@K, ndcg@K or hit@K (K at least 1)";
        let text = text.trim();
        let (family, cutoff) = match text.split_once('@') {
            Some((family, k)) => {
                let k = k.parse::<usize>().ok().filter(|&k| k >= 1).ok_or_else(|| {
                    format!("metric {text:?}: K must be an integer of at least 1")
                })?;
                (family, Some(k))
            }
            None => (text, None),
        };
        let family = family.to_ascii_lowercase();
        match (family.as_str(), cutoff) {
            ("rmse", None) => Ok(Metric::Rmse),
            ("mae", None) => Ok(Metric::Mae),
            ("accuracy", None) => Ok(Metric::Accuracy),
            ("precision", Some(k)) => Ok(Metric::Precision(k)),
            ("recall", Some(k)) => Ok(Metric::Recall(k)),
            ("ndcg", Some(k)) => Ok(Metric::Ndcg(k)),
            ("hit", Some(k)) => Ok(Metric::Hit(k)),
            ("precision" | "recall" | "ndcg" | "hit", None) => Err(format!(
                "metric {text:?} needs a cutoff: {text}@K, e.g. {text}@10"
            )),
            ("rmse" | "mae" | "accuracy", Some(_)) => {
                Err(format!("metric {text:?}: {family} takes no @K"))
            }
            _ => Err(format!("unknown metric {text:?}: {usage}")),
        }
    }
}

/// The distinct cutoffs of the ranking metrics among `metrics`, ascending.
pub fn cutoffs(metrics: &[Metric]) -> Vec<usize> {
    let set: std::collections::BTreeSet<usize> =
        metrics.iter().filter_map(|m| m.cutoff()).collect();
    set.into_iter().collect()
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
    fn metric_keys_parse_back() {
        for text in [
            "rmse",
            "mae",
            "accuracy",
            "precision@5",
            "recall@20",
            "ndcg@10",
            "hit@1",
        ] {
            let metric: Metric = text.parse().unwrap();
            assert_eq!(metric.key(), text);
        }
        assert_eq!("NDCG@10".parse::<Metric>(), Ok(Metric::Ndcg(10)));
        assert!(Metric::Ndcg(10).higher_is_better() && !Metric::Mae.higher_is_better());
        assert!(Metric::Rmse.is_better(0.9, 1.0) && Metric::Hit(3).is_better(0.5, 0.4));
        let error = |text: &str| text.parse::<Metric>().unwrap_err();
        assert!(
            error("ndcg@0").contains("at least 1"),
            "{}",
            error("ndcg@0")
        );
        assert!(error("ndcg").contains("ndcg@10"), "{}", error("ndcg"));
        assert!(error("rmse@3").contains("takes no @K"));
        assert!(error("auc").contains("unknown metric \"auc\""));
        assert!(error("recall@x").contains("K must be"));
    }

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

//! Matrix factorization, plain (r = u_i.v_j) and biased (r = mu + b_u + b_i + p_u.q_i).

use super::{named_parameters, Parameter};
use super::{BatchOutput, Evaluation, Metric, Model, Split};
use crate::data::{Ratings, RatingsDataset};
use crate::ranking::{self, ItemRows, RankingResult, RankingTask};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MfVariant {
    /// r = mu + b_u + b_i + p_u.q_i (mu: the training mean, a constant)
    Biased,
    /// r = u_i.v_j
    Plain,
}

crate::named_enum!(MfVariant, ["biased", "plain"]);

/// Evaluation runs in chunks of at most this many ratings so memory stays bounded on
/// ml-25m-sized test sets...
const EVAL_CHUNK: i64 = 1 << 20;
/// ...and of at most this many bytes of gathered factor rows, so that a large K does not
/// turn one chunk into gigabytes (a chunk gathers a user and an item row per rating and
/// multiplies them: about four K-float rows per rating).
pub const EVAL_CHUNK_BYTES: i64 = 256 << 20;

/// Ratings per evaluation chunk for latent dimension `dim`.
pub fn eval_chunk(dim: i64) -> i64 {
    (EVAL_CHUNK_BYTES / (dim.max(1) * 4 * 4)).clamp(1024, EVAL_CHUNK)
}

/// One split's ratings as tensors on the training device.
struct DeviceRatings {
    users: Tensor,
    items: Tensor,
    ratings: Tensor,
    /// 1.0 where both user and item were seen in training, else 0.0: cold pairs get no
    /// factor term and are predicted from the biases and the global mean.
    known: Option<Tensor>,
}

impl DeviceRatings {
    fn new(ratings: &Ratings, device: Device, known: Option<Vec<f32>>) -> Self {
        let to_i64 = |v: &[u32]| {
            Tensor::from_slice(&v.iter().map(|&x| x as i64).collect::<Vec<_>>()).to_device(device)
        };
        DeviceRatings {
            users: to_i64(&ratings.users),
            items: to_i64(&ratings.items),
            ratings: Tensor::from_slice(&ratings.values).to_device(device),
            known: known.map(|k| Tensor::from_slice(&k).to_device(device)),
        }
    }

    fn len(&self) -> i64 {
        self.ratings.size()[0]
    }
}

/// A model's parameter tables and training ratings (int64 users and items, float32 ratings).
pub struct TrainingTensors<'a> {
    pub user_factors: &'a Tensor,
    pub item_factors: &'a Tensor,
    pub user_bias: Option<&'a Tensor>,
    pub item_bias: Option<&'a Tensor>,
    /// The training mean, a 0-dim float32 tensor.
    pub global_mean: &'a Tensor,
    pub users: &'a Tensor,
    pub items: &'a Tensor,
    pub ratings: &'a Tensor,
    /// Row-sparse gradients (`--sparse`).
    pub sparse: bool,
}

pub struct MatrixFactorization {
    vs: nn::VarStore,
    user_factors: Tensor,
    item_factors: Tensor,
    user_bias: Option<Tensor>,
    item_bias: Option<Tensor>,
    /// The training mean, a constant (not learned).
    global_mean: Tensor,
    train: DeviceRatings,
    validation: Option<DeviceRatings>,
    test: Option<DeviceRatings>,
    /// Training batches gather their rows so that the gradient is row-sparse (`--sparse`).
    sparse: bool,
    /// Ranking metrics recorded on validation and test (`metrics`); `None`: rmse and mae only.
    ranking: Option<RankingSetup>,
    /// The metric that selects epochs (`selection_metric`).
    selection: Metric,
}

/// Which rows the model trained: the factor term of a pair counts only when both did (as in
/// prediction, where other pairs are predicted from the biases).
pub struct TrainedRows {
    pub users: Vec<bool>,
    pub items: Vec<bool>,
}

/// How a model ranks items: which rows trained, and each item's place among ties.
pub struct RankingRows {
    /// 1.0 for trained rows, else 0.0 (double, on the model's device).
    user_mask: Tensor,
    item_mask: Tensor,
    tie_order: Vec<u32>,
}

impl RankingRows {
    /// `item_raw_ids[row]` orders ties; every row of `trained` is a candidate item.
    pub fn new(trained: &TrainedRows, item_raw_ids: &[u64], device: Device) -> Self {
        let mask = |rows: &[bool]| {
            let values: Vec<f64> = rows.iter().map(|&t| t as u8 as f64).collect();
            Tensor::from_slice(&values).to_device(device)
        };
        RankingRows {
            user_mask: mask(&trained.users),
            item_mask: mask(&trained.items),
            tie_order: ranking::tie_order(item_raw_ids),
        }
    }

    pub fn items(&self) -> usize {
        self.tie_order.len()
    }

    /// The candidate rows and their tie order, as [`ranking::measure`] takes them.
    pub fn item_rows(&self) -> ItemRows<'_> {
        ItemRows {
            count: self.items(),
            tie_order: &self.tie_order,
        }
    }
}

/// The ranking metrics a training run records each epoch, and on whom.
pub struct RankingSetup {
    /// Ranking metrics only (rmse and mae are always recorded).
    pub metrics: Vec<Metric>,
    pub rows: RankingRows,
    pub validation: Option<RankingTask>,
    pub test: Option<RankingTask>,
}

impl MatrixFactorization {
    /// Builds the model with parameters drawn from torch's generator (seed it first), on the
    /// CPU so that the same seed gives the same initial weights on every device, then moves
    /// them and the data to `device`.
    pub fn new(
        dataset: &RatingsDataset,
        validation: Option<&Ratings>,
        variant: MfVariant,
        dim: i64,
        init_std: f64,
        device: Device,
    ) -> Result<Self> {
        if dim <= 0 {
            bail!("--dim {dim}: must be positive");
        }
        if !(init_std.is_finite() && init_std >= 0.0) {
            bail!("--init-std {init_std}: must be a non-negative number");
        }
        if dataset.train.is_empty() {
            bail!("{}: no training ratings", dataset.name);
        }
        let users = dataset.num_users() as i64;
        let items = dataset.num_items() as i64;
        let mut vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let init = nn::Init::Randn {
            mean: 0.0,
            stdev: init_std,
        };
        // Creation order fixes the random draws: user factors, item factors, then biases.
        let user_factors = root.var("user_factors", &[users, dim], init);
        let item_factors = root.var("item_factors", &[items, dim], init);
        let (user_bias, item_bias) = match variant {
            MfVariant::Biased => (
                Some(root.zeros("user_bias", &[users])),
                Some(root.zeros("item_bias", &[items])),
            ),
            MfVariant::Plain => (None, None),
        };
        // Moves the data behind each variable in place, so the handles above stay valid.
        vs.set_device(device);

        let train = DeviceRatings::new(&dataset.train, device, None);
        let global_mean = train.ratings.mean(Kind::Float);
        let (seen_users, seen_items) = dataset.seen_in_train();
        // Pairs whose user or item training never saw are predicted without factors.
        let held_out = |ratings: &Ratings| {
            (!ratings.is_empty()).then(|| {
                let known = ratings
                    .users
                    .iter()
                    .zip(&ratings.items)
                    .map(|(&u, &i)| (seen_users[u as usize] && seen_items[i as usize]) as u8 as f32)
                    .collect();
                DeviceRatings::new(ratings, device, Some(known))
            })
        };
        let validation = validation.and_then(held_out);
        let test = held_out(&dataset.test);
        Ok(MatrixFactorization {
            vs,
            user_factors,
            item_factors,
            user_bias,
            item_bias,
            global_mean,
            train,
            validation,
            test,
            sparse: false,
            ranking: None,
            selection: Metric::Rmse,
        })
    }

    /// Records `setup`'s ranking metrics on validation and test each epoch.
    pub fn with_ranking(mut self, setup: Option<RankingSetup>) -> Self {
        self.ranking = setup;
        self
    }

    /// Selects epochs (early stopping, `restore_best`, plateau schedules) by `metric`.
    pub fn with_selection(mut self, metric: Metric) -> Self {
        self.selection = metric;
        self
    }

    /// Scores of every item row for the user rows `users`, in double precision:
    /// mu + b_u + b_i + p_u.q_i, the factor term only where both rows trained. One matrix
    /// product per block of users.
    pub fn score_items(&self, users: &[i64], rows: &RankingRows) -> Tensor {
        let _no_grad = tch::no_grad_guard();
        let device = self.user_factors.device();
        let items = rows.items() as i64;
        let users = Tensor::from_slice(users).to_device(device);
        let user_factors = self
            .user_factors
            .index_select(0, &users)
            .to_kind(Kind::Double)
            * rows.user_mask.index_select(0, &users).unsqueeze(1);
        let item_factors = self.item_factors.narrow(0, 0, items).to_kind(Kind::Double)
            * rows.item_mask.unsqueeze(1);
        let scores = user_factors.matmul(&item_factors.tr());
        match (&self.user_bias, &self.item_bias) {
            (Some(user_bias), Some(item_bias)) => {
                let user_bias = user_bias.index_select(0, &users).to_kind(Kind::Double);
                let item_bias = item_bias.narrow(0, 0, items).to_kind(Kind::Double);
                scores
                    + user_bias.unsqueeze(1)
                    + item_bias.unsqueeze(0)
                    + self.global_mean.to_kind(Kind::Double)
            }
            _ => scores,
        }
    }

    /// The ranking metrics at `cutoffs` of this model's scores for `task`.
    pub fn rank(
        &self,
        task: &RankingTask,
        rows: &RankingRows,
        cutoffs: &[usize],
    ) -> Result<RankingResult> {
        ranking::measure(task, &rows.item_rows(), cutoffs, &mut |users| {
            ranking::scores_of(&self.score_items(users, rows))
        })
    }

    /// A trained model's weights bound to ratings to evaluate (`regulab eval`, `predict`):
    /// `weights` by parameter name, `known` 1.0 where the pair's user and item were trained.
    /// The tables get one extra zero row, the row of ids the model never saw.
    pub fn from_weights(
        weights: &std::collections::BTreeMap<String, Tensor>,
        global_mean: f64,
        ratings: &Ratings,
        known: Vec<f32>,
        device: Device,
    ) -> Result<Self> {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let table = |name: &str| -> Result<Option<Tensor>> {
            let Some(saved) = weights.get(name) else {
                return Ok(None);
            };
            let mut shape = saved.size();
            shape[0] = 1;
            let unseen_row = Tensor::zeros(shape.as_slice(), (saved.kind(), Device::Cpu));
            let rows = Tensor::cat(&[saved.shallow_clone(), unseen_row], 0);
            Ok(Some(root.var_copy(name, &rows.to_device(device))))
        };
        let (Some(user_factors), Some(item_factors)) =
            (table("user_factors")?, table("item_factors")?)
        else {
            bail!("not a matrix factorization model (no user_factors and item_factors)");
        };
        let data = DeviceRatings::new(ratings, device, Some(known));
        Ok(MatrixFactorization {
            user_factors,
            item_factors,
            user_bias: table("user_bias")?,
            item_bias: table("item_bias")?,
            global_mean: Tensor::from(global_mean as f32).to_device(device),
            train: DeviceRatings::new(ratings, device, None),
            validation: None,
            test: Some(data),
            vs,
            sparse: false,
            ranking: None,
            selection: Metric::Rmse,
        })
    }

    /// Predicted ratings for (user, item) index pairs; `known` as in [`Self::from_weights`].
    pub fn predict_pairs(&self, users: &Tensor, items: &Tensor, known: &Tensor) -> Tensor {
        let _no_grad = tch::no_grad_guard();
        self.predict(users, items, Some(known), false).0
    }

    /// The tensors a training step reads and writes, for the fused CPU step
    /// (`crate::fused_mf`), which computes what [`Model::batch_loss`] and autograd would.
    pub fn training_tensors(&self) -> TrainingTensors<'_> {
        TrainingTensors {
            user_factors: &self.user_factors,
            item_factors: &self.item_factors,
            user_bias: self.user_bias.as_ref(),
            item_bias: self.item_bias.as_ref(),
            global_mean: &self.global_mean,
            users: &self.train.users,
            items: &self.train.items,
            ratings: &self.train.ratings,
            sparse: self.sparse,
        }
    }

    /// With `sparse`, a training batch's backward pass yields row-sparse gradients (only the
    /// rows the batch used, as `nn.Embedding(sparse=True)`) instead of whole-table ones.
    pub fn with_sparse_gradients(mut self, sparse: bool) -> Self {
        self.sparse = sparse;
        self
    }

    /// The rows of `table` at `indices`. Sparse: factor tables through `embedding(sparse=True)`
    /// (nn.Embedding's op) and bias vectors through `gather(sparse_grad=True)`, whose sparse
    /// gradient holds the same numbers as a one-column sparse embedding's.
    fn rows(table: &Tensor, indices: &Tensor, sparse: bool) -> Tensor {
        match (sparse, table.dim()) {
            (false, _) => table.index_select(0, indices),
            (true, 2) => Tensor::embedding(table, indices, -1, false, true),
            (true, _) => table.gather(0, indices, true),
        }
    }

    /// Predictions for (users, items) and the parameter rows they used, in canonical order.
    fn predict(
        &self,
        users: &Tensor,
        items: &Tensor,
        known: Option<&Tensor>,
        sparse: bool,
    ) -> (Tensor, Vec<Parameter>) {
        let user_rows = Self::rows(&self.user_factors, users, sparse);
        let item_rows = Self::rows(&self.item_factors, items, sparse);
        let mut interaction = (&user_rows * &item_rows).sum_dim_intlist(1, false, Kind::Float);
        if let Some(known) = known {
            interaction *= known;
        }
        let mut rows = Vec::with_capacity(4);
        let prediction = match (&self.user_bias, &self.item_bias) {
            (Some(user_bias), Some(item_bias)) => {
                let user_bias_rows = Self::rows(user_bias, users, sparse);
                let item_bias_rows = Self::rows(item_bias, items, sparse);
                let prediction =
                    &self.global_mean + &user_bias_rows + &item_bias_rows + interaction;
                rows.push(Parameter::new("item_bias", item_bias_rows));
                rows.push(Parameter::new("item_factors", item_rows));
                rows.push(Parameter::new("user_bias", user_bias_rows));
                rows.push(Parameter::new("user_factors", user_rows));
                prediction
            }
            _ => {
                rows.push(Parameter::new("item_factors", item_rows));
                rows.push(Parameter::new("user_factors", user_rows));
                interaction
            }
        };
        (prediction, rows)
    }

    fn split_data(&self, split: Split) -> Option<&DeviceRatings> {
        match split {
            Split::Train => Some(&self.train),
            Split::Test => self.test.as_ref(),
            Split::Validation => self.validation.as_ref(),
        }
    }
}

impl Model for MatrixFactorization {
    fn parameters(&self) -> Vec<Parameter> {
        named_parameters(&self.vs)
    }

    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    fn split_len(&self, split: Split) -> i64 {
        self.split_data(split).map(DeviceRatings::len).unwrap_or(0)
    }

    fn batch_loss(&self, indices: &Tensor) -> BatchOutput {
        let users = self.train.users.index_select(0, indices);
        let items = self.train.items.index_select(0, indices);
        let ratings = self.train.ratings.index_select(0, indices);
        let (prediction, example_rows) = self.predict(&users, &items, None, self.sparse);
        let base_loss = (prediction - ratings)
            .pow_tensor_scalar(2)
            .mean(Kind::Float);
        BatchOutput {
            base_loss,
            example_rows,
        }
    }

    fn evaluate(&self, split: Split, row_penalty: &dyn Fn(&[Parameter]) -> f64) -> Evaluation {
        let Some(data) = self.split_data(split) else {
            return Evaluation::default();
        };
        let _guard = tch::no_grad_guard();
        let n = data.len();
        let device = data.ratings.device();
        let mut squared = Tensor::zeros([], (Kind::Double, device));
        let mut absolute = Tensor::zeros([], (Kind::Double, device));
        let mut squared_float = Tensor::zeros([], (Kind::Float, device));
        let mut rows_penalty_sum = 0.0;
        let mut start = 0;
        while start < n {
            let len = eval_chunk(self.user_factors.size()[1]).min(n - start);
            let users = data.users.narrow(0, start, len);
            let items = data.items.narrow(0, start, len);
            let ratings = data.ratings.narrow(0, start, len);
            let known = data.known.as_ref().map(|k| k.narrow(0, start, len));
            let (prediction, rows) = self.predict(&users, &items, known.as_ref(), false);
            let error = prediction - ratings;
            squared += error
                .to_kind(Kind::Double)
                .pow_tensor_scalar(2)
                .sum(Kind::Double);
            absolute += error.abs().to_kind(Kind::Double).sum(Kind::Double);
            squared_float += error.pow_tensor_scalar(2).sum(Kind::Float);
            rows_penalty_sum += row_penalty(&rows);
            start += len;
        }
        let mean_squared = squared.double_value(&[]) / n as f64;
        let mut metrics = std::collections::BTreeMap::new();
        metrics.insert("rmse".to_string(), mean_squared.sqrt());
        metrics.insert("mae".to_string(), absolute.double_value(&[]) / n as f64);
        self.record_ranking(split, &mut metrics);
        Evaluation {
            base_loss: squared_float.double_value(&[]) / n as f64,
            example_rows_penalty_sum: rows_penalty_sum,
            examples: n,
            metrics,
        }
    }

    fn headline_metric(&self) -> Metric {
        self.selection
    }

    fn as_matrix_factorization(&self) -> Option<&MatrixFactorization> {
        Some(self)
    }
}

impl MatrixFactorization {
    /// Adds the configured ranking metrics of `split` (validation and test: on the training
    /// split every relevant item is a training item, so there is nothing to rank).
    fn record_ranking(&self, split: Split, metrics: &mut std::collections::BTreeMap<String, f64>) {
        let Some(setup) = &self.ranking else {
            return;
        };
        let task = match split {
            Split::Validation => setup.validation.as_ref(),
            Split::Test => setup.test.as_ref(),
            Split::Train => None,
        };
        let Some(task) = task else {
            return;
        };
        let cutoffs = super::cutoffs(&setup.metrics);
        // A failure to read scores back leaves NaN (the document's null), never a wrong number.
        let result = self.rank(task, &setup.rows, &cutoffs).ok();
        for metric in &setup.metrics {
            let value = result.as_ref().and_then(|r| metric.value_in(r));
            metrics.insert(metric.key(), value.unwrap_or(f64::NAN));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{IdMap, Ratings};

    fn dataset() -> RatingsDataset {
        let mut user_ids = IdMap::new();
        let mut item_ids = IdMap::new();
        for raw in 1..=2 {
            user_ids.index_or_insert(raw);
        }
        for raw in 1..=3 {
            item_ids.index_or_insert(raw);
        }
        let mut train = Ratings::default();
        train.push(0, 0, 4.0);
        train.push(1, 1, 2.0);
        let mut test = Ratings::default();
        test.push(0, 1, 3.0); // both seen in training
        test.push(1, 2, 5.0); // item 2 is cold
        RatingsDataset {
            name: "tiny".into(),
            source: "inline".into(),
            format: "inline".into(),
            user_ids,
            item_ids,
            train,
            test,
            split: "inline".into(),
            synthetic: None,
        }
    }

    #[test]
    fn cold_test_pairs_are_predicted_from_biases_and_the_mean() {
        tch::manual_seed(0);
        let model =
            MatrixFactorization::new(&dataset(), None, MfVariant::Biased, 4, 1.0, Device::Cpu)
                .unwrap();
        let _guard = tch::no_grad_guard();
        let user_bias = model.user_bias.as_ref().unwrap();
        let item_bias = model.item_bias.as_ref().unwrap();
        let _ = user_bias.shallow_clone().fill_(0.5);
        let _ = item_bias.shallow_clone().fill_(-0.25);
        let known = model.test.as_ref().unwrap().known.as_ref().unwrap();
        assert_eq!(Vec::<f32>::try_from(known).unwrap(), vec![1.0, 0.0]);
        let users = Tensor::from_slice(&[0i64, 1]);
        let items = Tensor::from_slice(&[1i64, 2]);
        let (prediction, _) = model.predict(&users, &items, Some(known), false);
        let prediction = Vec::<f32>::try_from(&prediction).unwrap();
        // Training mean 3.0; the cold pair gets no factor term, however large the factors.
        assert!(
            (prediction[1] - (3.0 + 0.5 - 0.25)).abs() < 1e-6,
            "{prediction:?}"
        );
        let dot = (model.user_factors.get(0) * model.item_factors.get(1))
            .sum(Kind::Float)
            .double_value(&[]) as f32;
        assert!(
            (prediction[0] - (3.0 + 0.5 - 0.25 + dot)).abs() < 1e-5,
            "{prediction:?}"
        );
        assert!(dot.abs() > 1e-3, "factors are random and non-zero");
    }
}

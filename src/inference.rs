//! `regulab eval` and `regulab predict`: a saved model (a `.safetensors` file, or the run
//! document that lists it) measured on any data, or asked for predictions. Models are
//! rebuilt from their files with the same code that trained them, so `eval` on a run's own
//! test split gives the run's final test metrics.

use crate::config::{MfSpec, MlpSpec, ModelSpec};
use crate::data::{self, mnist, IdMap, LoadOptions, RatingRange, Ratings, SplitSpec};
use crate::data::{data_path, ratings_source, RatingsSourceSpec};
use crate::device::DeviceChoice;
use crate::failure::guarded;
use crate::model::mf::MatrixFactorization;
use crate::model::mlp::{ImageSplits, Mlp, PixelScaling};
use crate::model::{load_weights, Metric, Model, Split};
use crate::model_file::{RowIds, SavedModelFile};
use crate::saved_ranking::{self, RankingReport};
use crate::schema::{load_run, ModelRole, RunDocument};
use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

mod recommend;
pub use recommend::{Recommendation, Scale, TopItems, TopItemsQuery};

/// A model file, or a run document whose model is used (`role`: final unless asked).
pub fn open_model(path: &Path, role: Option<ModelRole>) -> Result<SavedModelFile> {
    let is_document = path.extension().is_some_and(|e| e == "json");
    if !is_document {
        if role.is_some() {
            bail!(
                "--weights: chooses among a run document's models; {} is a model file",
                path.display()
            );
        }
        return SavedModelFile::read(path);
    }
    let document = load_run(path)?;
    let role = role.unwrap_or(ModelRole::Final);
    let Some(saved) = document.files.models.iter().find(|m| m.role == role) else {
        if document.files.models.is_empty() {
            bail!(
                "{}: lists no saved model (the run is {}; models are written when a run completes)",
                path.display(),
                document.status
            );
        }
        bail!(
            "{}: has no {role} model (a selected model needs a validation split, --val-split)",
            path.display()
        );
    };
    SavedModelFile::read(&RunDocument::beside(path, &saved.file))
}

/// What `regulab eval` measures.
#[derive(Debug, Clone)]
pub struct EvalRequest {
    pub model: PathBuf,
    pub weights: Option<ModelRole>,
    /// Default: the data the model was trained on.
    pub data: Option<String>,
    /// Default: the split the model was trained with (its test part is measured).
    pub split: Option<String>,
    /// Only the first N examples (MLP); default: the run's `limit_test` on its own test data.
    pub limit: Option<usize>,
    /// Valid ratings (MF) [default: the scale the model was trained with].
    pub rating_range: Option<RatingRange>,
    /// Only these metrics [default: every metric of the model's kind, no ranking metrics].
    pub metrics: Option<Vec<Metric>>,
    /// Ranking metrics: ratings at or above this are relevant [default: the run's, 4].
    pub relevance: Option<f64>,
    pub device: DeviceChoice,
}

/// How many of the evaluated ratings the model trained on.
#[derive(Debug, Clone, Serialize)]
pub struct Overlap {
    pub count: usize,
    /// Of the evaluated ratings.
    pub fraction: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalResult {
    pub model: String,
    pub role: ModelRole,
    pub epoch: usize,
    pub data: String,
    pub split: String,
    pub examples: usize,
    /// MF: ratings whose user or item the model never trained, predicted from the biases.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cold: Option<usize>,
    /// MF on the data the model trained on: the evaluated ratings that were in its training
    /// part (a leak when not zero).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overlap_with_training: Option<Overlap>,
    /// Lines for stderr (the overlap in words); not part of the JSON.
    #[serde(skip)]
    pub warnings: Vec<String>,
    pub metrics: BTreeMap<String, f64>,
    /// With ranking metrics: who they are over, and the most-popular baseline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranking: Option<RankingReport>,
}

impl EvalResult {
    pub fn to_text(&self) -> String {
        let metrics: Vec<String> = self
            .metrics
            .iter()
            .map(|(k, v)| format!("{k} {v:.5}"))
            .collect();
        let cold = self.cold.map_or(String::new(), |c| {
            format!(" ({c} cold, predicted from the biases)")
        });
        let mut text = format!(
            "{} ({} weights, epoch {}) on {} {}: {} examples{cold}\n  {}\n",
            self.model,
            self.role,
            self.epoch,
            self.data,
            self.split,
            self.examples,
            metrics.join("  ")
        );
        if let Some(ranking) = &self.ranking {
            let baseline: Vec<String> = ranking
                .most_popular
                .iter()
                .map(|(k, v)| format!("{k} {v:.5}"))
                .collect();
            text += &format!(
                "  most popular (baseline): {}\n  ranking over {} users with a rating >= {} ({} without one left out)\n",
                baseline.join("  "),
                ranking.users,
                ranking.relevance,
                ranking.users_without_relevant
            );
        }
        text
    }
}

pub fn eval(request: &EvalRequest) -> Result<EvalResult> {
    let saved = open_model(&request.model, request.weights)?;
    let device = request.device.resolve()?;
    // libtorch fails by panicking inside tch (or with C++ frames in a TchError): one line.
    guarded("evaluating", || eval_model(request, &saved, device))
}

fn eval_model(request: &EvalRequest, saved: &SavedModelFile, device: Device) -> Result<EvalResult> {
    let header = &saved.header;
    let mut overlap = None;
    let mut warnings = Vec::new();
    let mut ranking = None;
    let (data, split, examples, cold, evaluation) = match &header.config.model {
        ModelSpec::Mf(spec) => {
            let data = request.data.clone().unwrap_or_else(|| spec.data.clone());
            let split = match &request.split {
                Some(text) => text
                    .parse::<SplitSpec>()
                    .map_err(|e| anyhow!("--split {text}: {e}"))?,
                None => spec.split.clone(),
            };
            let load = LoadOptions {
                rating_range: request.rating_range.or(spec.load.rating_range),
                ..spec.load
            };
            let bound = mf_on(saved, spec, &data, &split, &load, device)?;
            ranking = mf_ranking(request, saved, spec, &bound)?;
            let (model, ratings, cold) = (bound.model, bound.ratings, bound.cold);
            if let Some(count) = bound.in_training {
                let fraction = count as f64 / ratings.len().max(1) as f64;
                if count > 0 {
                    warnings.push(overlap_warning(spec, &split, count, ratings.len()));
                }
                overlap = Some(Overlap { count, fraction });
            }
            let evaluation = model.evaluate(Split::Test, &|_| 0.0);
            (
                data,
                split.to_string(),
                ratings.len(),
                Some(cold),
                evaluation,
            )
        }
        ModelSpec::Mlp(spec) => {
            if request.rating_range.is_some() || request.relevance.is_some() {
                bail!(
                    "--rating-range, --relevance: apply to ratings; {} is an image classifier",
                    saved.path.display()
                );
            }
            let split = request.split.clone().unwrap_or_else(|| "test".into());
            let own_test = request.data.is_none() && split == "test";
            let limit = request
                .limit
                .or(if own_test { spec.limit_test } else { None });
            let data = request.data.clone().unwrap_or_else(|| spec.data.clone());
            let images = image_split(&data, &split, limit)?;
            let model = mlp_for(saved, spec, &images.0, images.1, device)?;
            let evaluation = model.evaluate(Split::Test, &|_| 0.0);
            (data, split, images.0.count, None, evaluation)
        }
    };
    let mut metrics = evaluation.metrics;
    metrics.insert("loss".into(), evaluation.base_loss);
    if let Some(report) = &ranking {
        metrics.extend(report.model.clone());
    }
    if let Some(asked) = &request.metrics {
        let kept: HashSet<String> = asked.iter().map(|m| m.key()).collect();
        if let Some(missing) = asked.iter().find(|m| !metrics.contains_key(&m.key())) {
            let measures = match header.config.model {
                ModelSpec::Mf(_) => "rmse, mae, precision@K, recall@K, ndcg@K and hit@K",
                ModelSpec::Mlp(_) => "accuracy",
            };
            bail!(
                "--metrics {missing}: {} measures {measures}",
                saved.path.display()
            );
        }
        metrics.retain(|key, _| kept.contains(key));
    }
    Ok(EvalResult {
        model: saved.path.display().to_string(),
        role: header.role,
        epoch: header.epoch,
        data,
        split,
        examples,
        cold,
        overlap_with_training: overlap,
        warnings,
        metrics,
        ranking,
    })
}

/// The ranking metrics `--metrics` asks for, of the model and of the most-popular baseline.
fn mf_ranking(
    request: &EvalRequest,
    saved: &SavedModelFile,
    spec: &MfSpec,
    bound: &BoundMf,
) -> Result<Option<RankingReport>> {
    let asked = request.metrics.as_deref().unwrap_or_default();
    if !asked.iter().any(|m| m.is_ranking()) {
        return Ok(None);
    }
    let same = ratings_source(&spec.synthetic, &spec.data, false)
        .is_ok_and(|trained_on| same_source(&trained_on, &bound.source));
    let training = saved_ranking::training_ratings(saved, spec, &bound.source, same)?;
    let relevance = request.relevance.unwrap_or(spec.ranking.relevance);
    let evaluated = (&bound.ratings, &training);
    saved_ranking::measure(saved, &bound.model, evaluated, asked, relevance).map(Some)
}

/// The warning when evaluated ratings were in the model's training part. Two official
/// ml-100k splits are named by their files: u2.test lies entirely inside u1.base.
fn overlap_warning(spec: &MfSpec, split: &SplitSpec, count: usize, examples: usize) -> String {
    let trained = match &spec.split {
        SplitSpec::Official(name) => format!("{name}.base"),
        SplitSpec::None => format!("all of {}", spec.data),
        other => format!("the training part of split {other}"),
    };
    let leak = "this measures training data, not held-out data";
    if let (SplitSpec::Official(name), true) = (split, count == examples) {
        return format!(
            "every rating of {name}.test is in {trained}, which this model trained on: {leak}"
        );
    }
    let what = match split {
        SplitSpec::Official(name) => format!(" of {name}.test"),
        SplitSpec::None => String::new(),
        other => format!(" of split {other}"),
    };
    format!(
        "{count} of the {examples} evaluated ratings{what} ({:.1}%) are in {trained}, which this model trained on: for those, {leak}",
        100.0 * count as f64 / examples.max(1) as f64
    )
}

/// The rows of the model's tables, as maps from raw ids.
struct Rows {
    users: IdMap,
    items: IdMap,
    untrained_users: HashSet<u32>,
    untrained_items: HashSet<u32>,
}

impl Rows {
    fn new(saved: &SavedModelFile) -> Result<Self> {
        let ids: &RowIds = saved
            .header
            .ids
            .as_ref()
            .ok_or_else(|| anyhow!("{}: has no user and item ids", saved.path.display()))?;
        let map = |raw: &[u64], what: &str| {
            IdMap::from_raw_ids(raw).ok_or_else(|| {
                anyhow!(
                    "{}: a {what} id repeats in its metadata",
                    saved.path.display()
                )
            })
        };
        Ok(Rows {
            users: map(&ids.users, "user")?,
            items: map(&ids.items, "item")?,
            untrained_users: ids.untrained_users.iter().copied().collect(),
            untrained_items: ids.untrained_items.iter().copied().collect(),
        })
    }

    /// The table row of a raw user id and whether it was trained; unknown ids get the extra
    /// (zero) row after the last.
    fn user(&self, raw: u64) -> (u32, bool) {
        match self.users.index_of(raw) {
            Some(row) => (row, !self.untrained_users.contains(&row)),
            None => (self.users.len() as u32, false),
        }
    }

    fn item(&self, raw: u64) -> (u32, bool) {
        match self.items.index_of(raw) {
            Some(row) => (row, !self.untrained_items.contains(&row)),
            None => (self.items.len() as u32, false),
        }
    }
}

/// A model bound to the ratings it is measured on.
struct BoundMf {
    model: MatrixFactorization,
    /// The measured ratings, in the model's rows.
    ratings: Ratings,
    /// Ratings whose user or item the model never trained.
    cold: usize,
    /// Measured ratings that were in the model's training part; None when the measured data
    /// is not the data the model trained on (raw ids of other data sets mean other things).
    in_training: Option<usize>,
    /// Where the measured ratings came from.
    source: RatingsSourceSpec,
}

/// The model bound to the measured part of `data` under `split` (its test part, or every
/// rating for `none`), with ratings in the model's rows.
fn mf_on(
    saved: &SavedModelFile,
    spec: &MfSpec,
    data: &str,
    split: &SplitSpec,
    load: &LoadOptions,
    device: Device,
) -> Result<BoundMf> {
    let seed = saved.header.config.training.seed;
    let source = ratings_source(&spec.synthetic, data, false)?;
    let dataset = data::load_ratings(&source, split, seed, load)?;
    let measured = if dataset.test.is_empty() {
        &dataset.train
    } else {
        &dataset.test
    };
    let rows = Rows::new(saved)?;
    let mut mapped = Ratings::with_capacity(measured.len());
    let mut known = Vec::with_capacity(measured.len());
    for ((&u, &i), &value) in measured
        .users
        .iter()
        .zip(&measured.items)
        .zip(&measured.values)
    {
        let raw = |map: &IdMap, index: u32| map.raw_id(index).unwrap_or(u64::MAX);
        let (user, user_trained) = rows.user(raw(&dataset.user_ids, u));
        let (item, item_trained) = rows.item(raw(&dataset.item_ids, i));
        mapped.users.push(user);
        mapped.items.push(item);
        mapped.values.push(value);
        known.push((user_trained && item_trained) as u8 as f32);
    }
    let cold = known.iter().filter(|&&k| k == 0.0).count();
    let in_training = training_pairs(saved, spec, &source)?.map(|trained| {
        measured
            .users
            .iter()
            .zip(&measured.items)
            .filter(|&(&u, &i)| {
                let user = dataset.user_ids.raw_id(u).unwrap_or(u64::MAX);
                let item = dataset.item_ids.raw_id(i).unwrap_or(u64::MAX);
                trained.contains(&(user, item))
            })
            .count()
    });
    let global_mean = saved.header.constant("global_mean", &saved.path)?;
    let model =
        MatrixFactorization::from_weights(&saved.weights, global_mean, &mapped, known, device)
            .with_context(|| saved.path.display().to_string())?;
    Ok(BoundMf {
        model,
        ratings: mapped,
        cold,
        in_training,
        source,
    })
}

/// The raw (user, item) pairs of the model's training part (its recorded data, split and
/// seed; a validation holdout counts, as it came from there), when `measured` is that data.
fn training_pairs(
    saved: &SavedModelFile,
    spec: &MfSpec,
    measured: &RatingsSourceSpec,
) -> Result<Option<HashSet<(u64, u64)>>> {
    let Ok(trained_on) = ratings_source(&spec.synthetic, &spec.data, false) else {
        return Ok(None);
    };
    if !same_source(&trained_on, measured) {
        return Ok(None);
    }
    let seed = saved.header.config.training.seed;
    let dataset = data::load_ratings(&trained_on, &spec.split, seed, &spec.load)
        .with_context(|| format!("{}: the model's training data", spec.data))?;
    let train = &dataset.train;
    Ok(Some(
        train
            .users
            .iter()
            .zip(&train.items)
            .map(|(&u, &i)| {
                (
                    dataset.user_ids.raw_id(u).unwrap_or(u64::MAX),
                    dataset.item_ids.raw_id(i).unwrap_or(u64::MAX),
                )
            })
            .collect(),
    ))
}

/// Whether two sources are the same data (paths compared after resolving links and `..`).
fn same_source(a: &RatingsSourceSpec, b: &RatingsSourceSpec) -> bool {
    match (a, b) {
        (RatingsSourceSpec::Path(a), RatingsSourceSpec::Path(b)) => {
            a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
        }
        _ => a == b,
    }
}

/// The images of an MNIST-format directory's `split` (test or train), the first `limit`.
fn image_split(
    data: &str,
    split: &str,
    limit: Option<usize>,
) -> Result<(mnist::ImageSplit, usize)> {
    let dir = data_path(data, false)?;
    let dataset = mnist::load(&dir)?;
    let part = match split {
        "test" => dataset.test,
        "train" => dataset.train,
        other => bail!("--split {other}: MNIST-format data has test and train"),
    };
    let pixels = dataset.rows * dataset.cols;
    let images = part.first(pixels, limit);
    Ok((images, pixels))
}

/// The pixel scaling the MLP was trained with.
fn pixel_scaling(saved: &SavedModelFile) -> Result<PixelScaling> {
    Ok(PixelScaling {
        mean: saved.header.constant("pixel_mean", &saved.path)?,
        std: saved.header.constant("pixel_std", &saved.path)?,
    })
}

fn mlp_for(
    saved: &SavedModelFile,
    spec: &MlpSpec,
    images: &mnist::ImageSplit,
    pixels_per_image: usize,
    device: Device,
) -> Result<Mlp> {
    let source = saved.path.display().to_string();
    let first = saved.weight("l_layers.0.weight")?;
    if first.size()[1] != pixels_per_image as i64 {
        bail!(
            "{source}: the model takes {} pixels per image, these images have {pixels_per_image}",
            first.size()[1]
        );
    }
    let last = format!("l_layers.{}.weight", spec.hidden.len());
    let classes = saved.weight(&last)?.size()[0] as usize;
    if images.count == 0 {
        bail!("no images to measure");
    }
    let scaling = pixel_scaling(saved)?;
    let splits = ImageSplits {
        train: images,
        validation: None,
        test: Some(images),
        pixels_per_image,
        classes,
        scaling,
    };
    let model = Mlp::new(&splits, &spec.hidden, spec.activation, spec.loss, device)?;
    load_weights(model.var_store(), &saved.weights, &source)?;
    Ok(model)
}

/// What `regulab predict` answers.
#[derive(Debug, Clone)]
pub enum PredictQuery {
    /// The `top` items with the highest predicted rating for a raw user id.
    TopItems(TopItemsQuery),
    /// Predictions for the (user, item) pairs of a file.
    Pairs(PathBuf),
    /// Classes of the images of an IDX file.
    Images(PathBuf),
}

#[derive(Debug, Clone)]
pub struct PredictRequest {
    pub model: PathBuf,
    pub weights: Option<ModelRole>,
    pub query: PredictQuery,
    pub device: DeviceChoice,
}

#[derive(Debug, Clone, Serialize)]
pub struct PairPrediction {
    pub user: u64,
    pub item: u64,
    pub prediction: f64,
    /// False when the user or item was never trained (predicted from the biases).
    pub trained: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImagePrediction {
    pub image: usize,
    pub class: usize,
    pub probabilities: Vec<f64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Predictions {
    TopItems(TopItems),
    Pairs(Vec<PairPrediction>),
    Images(Vec<ImagePrediction>),
}

pub fn predict(request: &PredictRequest) -> Result<Predictions> {
    if let PredictQuery::TopItems(TopItemsQuery { top: 0, .. }) = request.query {
        bail!("--top 0: must be at least 1");
    }
    let saved = open_model(&request.model, request.weights)?;
    let device = request.device.resolve()?;
    // libtorch fails by panicking inside tch (or with C++ frames in a TchError): one line.
    guarded("predicting", || predict_with(request, &saved, device))
}

fn predict_with(
    request: &PredictRequest,
    saved: &SavedModelFile,
    device: Device,
) -> Result<Predictions> {
    match (&saved.header.config.model, &request.query) {
        (ModelSpec::Mf(spec), PredictQuery::TopItems(query)) => {
            recommend::top_items(saved, spec, query, device).map(Predictions::TopItems)
        }
        (ModelSpec::Mf(_), PredictQuery::Pairs(file)) => pair_predictions(saved, file, device),
        (ModelSpec::Mlp(spec), PredictQuery::Images(file)) => {
            image_predictions(saved, spec, file, device)
        }
        (ModelSpec::Mf(_), PredictQuery::Images(_)) => {
            bail!(
                "--images: {} is a matrix factorization model; use --user or --pairs",
                saved.path.display()
            )
        }
        (ModelSpec::Mlp(_), _) => bail!(
            "{}: is an image classifier; use --images FILE",
            saved.path.display()
        ),
    }
}

/// A matrix factorization model with no ratings bound (predictions only).
fn mf_model(saved: &SavedModelFile, device: Device) -> Result<MatrixFactorization> {
    let global_mean = saved.header.constant("global_mean", &saved.path)?;
    MatrixFactorization::from_weights(
        &saved.weights,
        global_mean,
        &Ratings::default(),
        Vec::new(),
        device,
    )
    .with_context(|| saved.path.display().to_string())
}

fn is_biased(saved: &SavedModelFile) -> bool {
    saved.weights.contains_key("user_bias")
}

/// `USER ITEM` per line (space, tab or comma separated; `#` comments and blank lines skipped).
fn read_pairs(file: &Path) -> Result<Vec<(u64, u64)>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("{}: cannot read", file.display()))?;
    let mut pairs = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|f| !f.is_empty())
            .collect();
        let parsed = match fields.as_slice() {
            [user, item, ..] => user.parse::<u64>().ok().zip(item.parse::<u64>().ok()),
            _ => None,
        };
        match parsed {
            Some(pair) => pairs.push(pair),
            // A header line such as `user,item` is allowed first.
            None if pairs.is_empty() && number == 0 => {}
            None => bail!(
                "{}:{}: expected USER ITEM (raw ids), got {line:?}",
                file.display(),
                number + 1
            ),
        }
    }
    if pairs.is_empty() {
        bail!("{}: has no USER ITEM pairs", file.display());
    }
    Ok(pairs)
}

fn pair_predictions(saved: &SavedModelFile, file: &Path, device: Device) -> Result<Predictions> {
    let pairs = read_pairs(file)?;
    let rows = Rows::new(saved)?;
    let biased = is_biased(saved);
    let mut users = Vec::with_capacity(pairs.len());
    let mut items = Vec::with_capacity(pairs.len());
    let mut known = Vec::with_capacity(pairs.len());
    for &(user, item) in &pairs {
        let (u, user_trained) = rows.user(user);
        let (i, item_trained) = rows.item(item);
        let trained = user_trained && item_trained;
        if !trained && !biased {
            bail!("{}: user {user}, item {item}: never trained, and plain MF has no biases to predict from", file.display());
        }
        users.push(u as i64);
        items.push(i as i64);
        known.push(trained as u8 as f32);
    }
    let model = mf_model(saved, device)?;
    let to = |v: &[i64]| Tensor::from_slice(v).to_device(device);
    let predictions = model.predict_pairs(
        &to(&users),
        &to(&items),
        &Tensor::from_slice(&known).to_device(device),
    );
    let values = Vec::<f64>::try_from(predictions.to_kind(Kind::Double))?;
    Ok(Predictions::Pairs(
        pairs
            .iter()
            .zip(values)
            .zip(known)
            .map(|((&(user, item), prediction), known)| PairPrediction {
                user,
                item,
                prediction,
                trained: known == 1.0,
            })
            .collect(),
    ))
}

fn image_predictions(
    saved: &SavedModelFile,
    spec: &MlpSpec,
    file: &Path,
    device: Device,
) -> Result<Predictions> {
    let (images, (rows, cols)) = mnist::read_images(file)?;
    let pixels = rows * cols;
    // The file loaded (its tensors match its metadata), so the first layer exists; the
    // mismatch is the images file's, and the message names it.
    let takes = saved.weight("l_layers.0.weight")?.size()[1];
    if takes != pixels as i64 {
        bail!(
            "{}: images of {rows}x{cols} ({pixels} pixels), but the model takes {takes} pixels per image",
            file.display()
        );
    }
    if images.count == 0 {
        bail!("{}: has no images", file.display());
    }
    let model = mlp_for(saved, spec, &images, pixels, device)?;
    let scaling = pixel_scaling(saved)?;
    let mut predictions = Vec::with_capacity(images.count);
    for start in (0..images.count).step_by(10_000) {
        let end = (start + 10_000).min(images.count);
        let chunk = Tensor::from_slice(&images.images[start * pixels..end * pixels])
            .view([(end - start) as i64, pixels as i64])
            .to_kind(Kind::Float);
        let probabilities = model
            .probabilities(&chunk, scaling)
            .to_kind(Kind::Double)
            .to_device(Device::Cpu);
        let classes = probabilities.size()[1] as usize;
        let values = Vec::<f64>::try_from(probabilities.flatten(0, 1))?;
        for (offset, row) in values.chunks(classes).enumerate() {
            let class = row
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
                .map_or(0, |(c, _)| c);
            predictions.push(ImagePrediction {
                image: start + offset,
                class,
                probabilities: row.to_vec(),
            });
        }
    }
    Ok(Predictions::Images(predictions))
}

impl Predictions {
    /// Lines for stderr: what could not be shown (titles, the rating scale).
    pub fn warnings(&self) -> &[String] {
        match self {
            Predictions::TopItems(top) => &top.warnings,
            _ => &[],
        }
    }

    /// A table (top items) or CSV (pairs, images), as printed without `--json`.
    pub fn to_text(&self) -> String {
        match self {
            Predictions::TopItems(top) => top.to_text(),
            Predictions::Pairs(pairs) => {
                let mut text = String::from("user,item,prediction,trained\n");
                for p in pairs {
                    text += &format!("{},{},{},{}\n", p.user, p.item, p.prediction, p.trained);
                }
                text
            }
            Predictions::Images(images) => {
                let classes = images.first().map_or(0, |i| i.probabilities.len());
                let mut text = String::from("image,class");
                for c in 0..classes {
                    text += &format!(",p{c}");
                }
                text.push('\n');
                for image in images {
                    text += &format!("{},{}", image.image, image.class);
                    for p in &image.probabilities {
                        text += &format!(",{p}");
                    }
                    text.push('\n');
                }
                text
            }
        }
    }
}

//! The lecture's MNIST classifier: fully connected layers `l_layers.N` (784-512-256-128-10 by
//! default) with cross-entropy, or the quadratic cost on sigmoid outputs.

use super::{named_parameters, Parameter};
use super::{BatchOutput, Evaluation, Metric, Model, Split};
use crate::data::mnist::ImageSplit;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Reduction, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Relu,
    Sigmoid,
    Tanh,
}

crate::named_enum!(Activation, ["relu", "sigmoid", "tanh"]);

impl Activation {
    fn apply(self, x: &Tensor) -> Tensor {
        match self {
            Activation::Relu => x.relu(),
            Activation::Sigmoid => x.sigmoid(),
            Activation::Tanh => x.tanh(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LossKind {
    /// Cross-entropy on the logits (mean over the batch).
    Ce,
    /// Quadratic cost: mean over the batch of 1/2 ||sigmoid(z) - onehot(y)||^2.
    Mse,
}

crate::named_enum!(LossKind, ["ce", "mse"]);

/// Pixel preprocessing applied on the device.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PixelScaling {
    /// Subtracted after scaling to [0,1] (0 without `--normalize`).
    pub mean: f64,
    /// Divided by after subtracting the mean (1 without `--normalize`).
    pub std: f64,
}

/// Evaluation batches bound memory on the 60000-image training set.
const EVAL_CHUNK: i64 = 10_000;

struct DeviceImages {
    pixels: Tensor,
    labels: Tensor,
}

impl DeviceImages {
    fn new(
        split: &ImageSplit,
        pixels_per_image: usize,
        scaling: PixelScaling,
        device: Device,
    ) -> Self {
        let (pixels, labels) = split.to_tensors(pixels_per_image);
        let pixels = if scaling.mean != 0.0 || scaling.std != 1.0 {
            (pixels - scaling.mean) / scaling.std
        } else {
            pixels
        };
        DeviceImages {
            pixels: pixels.to_device(device),
            labels: labels.to_device(device),
        }
    }

    fn len(&self) -> i64 {
        self.labels.size()[0]
    }
}

pub struct Mlp {
    vs: nn::VarStore,
    layers: Vec<(Tensor, Tensor)>,
    activation: Activation,
    loss: LossKind,
    classes: i64,
    train: DeviceImages,
    validation: Option<DeviceImages>,
    test: Option<DeviceImages>,
}

/// The data an MLP is bound to.
pub struct ImageSplits<'a> {
    pub train: &'a ImageSplit,
    pub validation: Option<&'a ImageSplit>,
    pub test: Option<&'a ImageSplit>,
    pub pixels_per_image: usize,
    pub classes: usize,
    pub scaling: PixelScaling,
}

impl Mlp {
    /// Layers are initialized as torch.nn.Linear does (weight, then bias, each uniform in
    /// +-1/sqrt(fan_in)) from torch's generator on the CPU, then moved to `device`.
    pub fn new(
        data: &ImageSplits,
        hidden: &[i64],
        activation: Activation,
        loss: LossKind,
        device: Device,
    ) -> Result<Self> {
        if data.train.count == 0 {
            bail!("no training images");
        }
        if let Some(&bad) = hidden.iter().find(|&&h| h <= 0) {
            bail!("--hidden: layer size {bad} must be positive");
        }
        let classes = data.classes as i64;
        let mut sizes = vec![data.pixels_per_image as i64];
        sizes.extend_from_slice(hidden);
        sizes.push(classes);
        let mut vs = nn::VarStore::new(Device::Cpu);
        let layers_path = vs.root() / "l_layers";
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(index, pair)| {
                let (fan_in, fan_out) = (pair[0], pair[1]);
                let bound = 1.0 / (fan_in as f64).sqrt();
                let init = nn::Init::Uniform {
                    lo: -bound,
                    up: bound,
                };
                let layer = &layers_path / index;
                let weight = layer.var("weight", &[fan_out, fan_in], init);
                let bias = layer.var("bias", &[fan_out], init);
                (weight, bias)
            })
            .collect();
        vs.set_device(device);
        Ok(Mlp {
            vs,
            layers,
            activation,
            loss,
            classes,
            train: DeviceImages::new(data.train, data.pixels_per_image, data.scaling, device),
            validation: data
                .validation
                .map(|s| DeviceImages::new(s, data.pixels_per_image, data.scaling, device)),
            test: data
                .test
                .map(|s| DeviceImages::new(s, data.pixels_per_image, data.scaling, device)),
        })
    }

    /// Class probabilities for raw pixels (one image per row, 0..=255 as floats), scaled as
    /// in training: softmax of the logits (cross-entropy) or the sigmoid outputs normalized
    /// to sum to one (quadratic cost, whose outputs are independent sigmoids).
    pub fn probabilities(&self, pixels: &Tensor, scaling: PixelScaling) -> Tensor {
        let _no_grad = tch::no_grad_guard();
        let device = self.train.pixels.device();
        let scaled = (pixels.to_device(device) / 255.0 - scaling.mean) / scaling.std;
        let logits = self.logits(&scaled);
        match self.loss {
            LossKind::Ce => logits.softmax(1, Kind::Float),
            LossKind::Mse => {
                let outputs = logits.sigmoid();
                let total = outputs.sum_dim_intlist(1, true, Kind::Float);
                outputs / total
            }
        }
    }

    fn logits(&self, pixels: &Tensor) -> Tensor {
        let last = self.layers.len() - 1;
        let mut hidden = pixels.shallow_clone();
        for (index, (weight, bias)) in self.layers.iter().enumerate() {
            let z = hidden.linear(weight, Some(bias));
            hidden = if index < last {
                self.activation.apply(&z)
            } else {
                z
            };
        }
        hidden
    }

    /// The base loss, mean over the examples.
    fn loss(&self, logits: &Tensor, labels: &Tensor) -> Tensor {
        match self.loss {
            LossKind::Ce => {
                logits.cross_entropy_loss::<Tensor>(labels, None, Reduction::Mean, -100, 0.0)
            }
            LossKind::Mse => {
                let targets = labels.one_hot(self.classes).to_kind(Kind::Float);
                (logits.sigmoid() - targets)
                    .pow_tensor_scalar(2)
                    .sum_dim_intlist(1, false, Kind::Float)
                    .mean(Kind::Float)
                    * 0.5
            }
        }
    }

    fn split_data(&self, split: Split) -> Option<&DeviceImages> {
        match split {
            Split::Train => Some(&self.train),
            Split::Validation => self.validation.as_ref(),
            Split::Test => self.test.as_ref(),
        }
    }
}

impl Model for Mlp {
    fn parameters(&self) -> Vec<Parameter> {
        named_parameters(&self.vs)
    }

    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    fn split_len(&self, split: Split) -> i64 {
        self.split_data(split).map(DeviceImages::len).unwrap_or(0)
    }

    fn batch_loss(&self, indices: &Tensor) -> BatchOutput {
        let pixels = self.train.pixels.index_select(0, indices);
        let labels = self.train.labels.index_select(0, indices);
        let logits = self.logits(&pixels);
        BatchOutput {
            base_loss: self.loss(&logits, &labels),
            example_rows: Vec::new(),
        }
    }

    fn evaluate(&self, split: Split, _row_penalty: &dyn Fn(&[Parameter]) -> f64) -> Evaluation {
        let Some(data) = self.split_data(split) else {
            return Evaluation::default();
        };
        let _guard = tch::no_grad_guard();
        let n = data.len();
        let mut loss_sum = 0.0;
        let mut correct = 0i64;
        let mut start = 0;
        while start < n {
            let len = EVAL_CHUNK.min(n - start);
            let pixels = data.pixels.narrow(0, start, len);
            let labels = data.labels.narrow(0, start, len);
            let logits = self.logits(&pixels);
            loss_sum += self.loss(&logits, &labels).double_value(&[]) * len as f64;
            correct += logits
                .argmax(1, false)
                .eq_tensor(&labels)
                .sum(Kind::Int64)
                .int64_value(&[]);
            start += len;
        }
        let mut metrics = std::collections::BTreeMap::new();
        metrics.insert("accuracy".to_string(), correct as f64 / n as f64);
        Evaluation {
            base_loss: loss_sum / n as f64,
            example_rows_penalty_sum: 0.0,
            examples: n,
            metrics,
        }
    }

    fn headline_metric(&self) -> Metric {
        Metric::Accuracy
    }
}

//! The optimizers (`--optimizer`), stepped by regulab on tensors it holds: parameters,
//! gradients, moment buffers and step counts. Each update is torch.optim's single-tensor code
//! (`foreach=False`, `maximize=False`, `differentiable=False`, `capturable=False`) of PyTorch
//! 2.11, op for op, with every hyper-parameter entering libtorch as a double the way a Python
//! float does, so that a run agrees with `torch.optim` bit for bit on the CPU. Weight decay is
//! coupled (added to the gradient) for SGD, Adam and RMSprop, decoupled for AdamW.
//!
//! The state (moment buffers and step counts, named as in torch.optim's `state_dict`) is
//! plain data: [`Optimizer::state`] takes it out and [`Optimizer::load_state`] puts it back.
//!
//! With `sparse` (`--sparse`, matrix factorization's row-sparse gradients, as from
//! `nn.Embedding(sparse=True)`), sgd is torch.optim.SGD's plain update applied to the rows a
//! batch used, and adam is torch.optim.SparseAdam: lazy moments, updated (like the parameter)
//! only on the rows present, with a per-parameter step count for the bias correction.

mod ops;
mod rules;
mod settings;
mod state_file;

pub use rules::sparse_adam_step_size;
pub use settings::{
    parse_betas, OptimizerKind, OptimizerSettings, DEFAULT_ALPHA, DEFAULT_BETAS, DEFAULT_EPS,
};

use crate::model::Parameter;
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, HashSet};
use tch::{Kind, Tensor};

/// The optimizer's state as data: its settings (the learning rate included, as a schedule
/// left it) and its tensors, each named `<parameter>.<buffer>` with torch.optim's buffer names
/// (`step`, `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq`, `square_avg`, `grad_avg`,
/// `momentum_buffer`), in parameter order. `step` is a 0-dim float32 tensor as in torch.optim,
/// except SparseAdam's (`sparse` adam), a 0-dim int64 tensor, as its count is a Python int.
#[derive(Debug)]
pub struct OptimizerState {
    pub settings: OptimizerSettings,
    pub tensors: Vec<(String, Tensor)>,
}

impl OptimizerState {
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }
}

/// Per-parameter state, as torch.optim keeps it in `optimizer.state[p]`.
enum Buffers {
    Sgd {
        /// Absent until the first step: torch.optim starts it as a copy of the gradient, not
        /// as zeros (which would differ with dampening).
        momentum_buffer: Option<Tensor>,
    },
    Adam {
        /// torch.optim's float32 `step` tensor, kept as the same f32 value: its `+= 1` and its
        /// `.item()` are exact on an f32, and a host number saves a tensor op per step.
        step: f32,
        exp_avg: Tensor,
        exp_avg_sq: Tensor,
        max_exp_avg_sq: Option<Tensor>,
    },
    Rmsprop {
        step: f32,
        square_avg: Tensor,
        momentum_buffer: Option<Tensor>,
        grad_avg: Option<Tensor>,
    },
    /// torch.optim.SparseAdam: its `step` is a Python int, counted whenever the parameter
    /// has a gradient; the moments change only on the rows a gradient names.
    SparseAdam {
        step: i64,
        exp_avg: Tensor,
        exp_avg_sq: Tensor,
    },
}

struct Slot {
    name: String,
    /// Shares storage (and the gradient) with the model's variable.
    param: Tensor,
    buffers: Buffers,
}

/// An optimizer over named parameters that regulab steps itself (see the module comment).
pub struct Optimizer {
    settings: OptimizerSettings,
    slots: Vec<Slot>,
}

impl std::fmt::Debug for Optimizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Optimizer")
            .field("settings", &self.settings)
            .field(
                "parameters",
                &self.slots.iter().map(|s| &s.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Optimizer {
    /// An optimizer over `parameters` (stepped in the order given) with fresh state.
    pub fn new(settings: OptimizerSettings, parameters: &[Parameter]) -> Result<Self> {
        settings.validate()?;
        let mut names = HashSet::new();
        let mut slots = Vec::with_capacity(parameters.len());
        for parameter in parameters {
            if !names.insert(parameter.name.as_str()) {
                bail!("parameter {} is given twice", parameter.name);
            }
            let param = parameter.tensor.shallow_clone();
            if !matches!(param.kind(), Kind::Float | Kind::Double) {
                bail!(
                    "parameter {}: {:?} tensors are not supported by the optimizer",
                    parameter.name,
                    param.kind()
                );
            }
            let buffers = Buffers::fresh(&settings, &param)?;
            slots.push(Slot {
                name: parameter.name.clone(),
                param,
                buffers,
            });
        }
        Ok(Optimizer { settings, slots })
    }

    pub fn settings(&self) -> &OptimizerSettings {
        &self.settings
    }

    pub fn lr(&self) -> f64 {
        self.settings.lr
    }

    /// Changes the learning rate for the following steps (as writing `group["lr"]`).
    pub fn set_lr(&mut self, lr: f64) -> Result<()> {
        if !(lr.is_finite() && lr > 0.0) {
            bail!("learning rate {lr}: must be a positive number");
        }
        self.settings.lr = lr;
        Ok(())
    }

    /// Drops every parameter's gradient, as torch.optim's `zero_grad()` (set_to_none=True):
    /// the next backward pass then stores its gradient instead of adding it to zeros.
    pub fn zero_grad(&mut self) -> Result<()> {
        for slot in &self.slots {
            ops::clear_grad(&slot.param)?;
        }
        Ok(())
    }

    /// One update of every parameter that has a gradient.
    pub fn step(&mut self) -> Result<()> {
        let _no_grad = tch::no_grad_guard();
        let settings = &self.settings;
        for slot in &mut self.slots {
            let grad = slot.param.f_grad()?;
            if !grad.defined() {
                continue;
            }
            if grad.is_sparse() != settings.sparse {
                bail!(
                    "optimizer step on {}: a {} gradient, but the optimizer was built {} --sparse",
                    slot.name,
                    if grad.is_sparse() { "sparse" } else { "dense" },
                    if settings.sparse { "with" } else { "without" }
                );
            }
            slot.buffers
                .update(settings, &mut slot.param, &grad)
                .with_context(|| format!("optimizer step on {}", slot.name))?;
        }
        Ok(())
    }

    /// The parameters' names, in the order [`Self::step_with`] takes their gradients.
    pub fn parameter_names(&self) -> Vec<&str> {
        self.slots.iter().map(|s| s.name.as_str()).collect()
    }

    /// One update from gradients given here instead of the parameters' `.grad` (the fused
    /// MF step computes them itself): one per parameter in [`Self::parameter_names`] order,
    /// `None` for a parameter without a gradient. The same rules and state as [`Self::step`],
    /// so either engine continues the other's checkpoint.
    pub fn step_with(&mut self, gradients: &[Option<Tensor>]) -> Result<()> {
        if gradients.len() != self.slots.len() {
            bail!(
                "optimizer step: {} gradients for {} parameters",
                gradients.len(),
                self.slots.len()
            );
        }
        let _no_grad = tch::no_grad_guard();
        let settings = &self.settings;
        for (slot, grad) in self.slots.iter_mut().zip(gradients) {
            let Some(grad) = grad else { continue };
            if grad.is_sparse() != settings.sparse {
                bail!(
                    "optimizer step on {}: gradient layout does not match --sparse",
                    slot.name
                );
            }
            slot.buffers
                .update(settings, &mut slot.param, grad)
                .with_context(|| format!("optimizer step on {}", slot.name))?;
        }
        Ok(())
    }

    /// SparseAdam's state of parameter `index` (in [`Self::parameter_names`] order): its step
    /// count and moments, for the fused MF step, which applies SparseAdam's rule to them
    /// itself (the same state a checkpoint saves). `None` for the other optimizers.
    pub fn sparse_adam_state(&mut self, index: usize) -> Option<(&mut i64, &Tensor, &Tensor)> {
        match &mut self.slots.get_mut(index)?.buffers {
            Buffers::SparseAdam {
                step,
                exp_avg,
                exp_avg_sq,
            } => Some((step, exp_avg, exp_avg_sq)),
            _ => None,
        }
    }

    /// A snapshot of the state: copies, unaffected by later steps.
    pub fn state(&self) -> Result<OptimizerState> {
        let mut tensors = Vec::new();
        for slot in &self.slots {
            for (buffer, tensor) in slot.buffers.named()? {
                tensors.push((format!("{}.{buffer}", slot.name), tensor));
            }
        }
        Ok(OptimizerState {
            settings: self.settings.clone(),
            tensors,
        })
    }

    /// Replaces settings and state with `state`'s (as torch.optim's `load_state_dict`
    /// replaces hyper-parameters and buffers). The kind must match, and every buffer the
    /// settings call for must be present with its parameter's shape; nothing changes on error.
    pub fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        let settings = &state.settings;
        if (settings.kind, settings.sparse) != (self.settings.kind, self.settings.sparse) {
            bail!(
                "optimizer state is for {}, this optimizer is {}",
                settings.describe_kind(),
                self.settings.describe_kind()
            );
        }
        settings
            .validate()
            .context("optimizer state has invalid settings")?;
        let mut stored: BTreeMap<&str, &Tensor> = BTreeMap::new();
        for (name, tensor) in &state.tensors {
            if stored.insert(name.as_str(), tensor).is_some() {
                bail!("optimizer state has {name} twice");
            }
        }
        let mut buffers = Vec::with_capacity(self.slots.len());
        for slot in &self.slots {
            let _no_grad = tch::no_grad_guard();
            buffers.push(Buffers::load(settings, slot, &mut stored)?);
        }
        if let Some(name) = stored.keys().next() {
            bail!("optimizer state has {name}, which matches no parameter and buffer here");
        }
        for (slot, loaded) in self.slots.iter_mut().zip(buffers) {
            slot.buffers = loaded;
        }
        self.settings = settings.clone();
        Ok(())
    }
}

impl Buffers {
    fn fresh(settings: &OptimizerSettings, param: &Tensor) -> Result<Self> {
        let zeros = || param.f_zeros_like();
        let optional = |wanted: bool| -> Result<Option<Tensor>> {
            Ok(if wanted { Some(zeros()?) } else { None })
        };
        Ok(match settings.kind {
            OptimizerKind::Sgd => Buffers::Sgd {
                momentum_buffer: None,
            },
            OptimizerKind::Adam if settings.sparse => Buffers::SparseAdam {
                step: 0,
                exp_avg: zeros()?,
                exp_avg_sq: zeros()?,
            },
            OptimizerKind::Adam | OptimizerKind::Adamw => Buffers::Adam {
                step: 0.0,
                exp_avg: zeros()?,
                exp_avg_sq: zeros()?,
                max_exp_avg_sq: optional(settings.amsgrad)?,
            },
            OptimizerKind::Rmsprop => Buffers::Rmsprop {
                step: 0.0,
                square_avg: zeros()?,
                momentum_buffer: optional(settings.momentum > 0.0)?,
                grad_avg: optional(settings.centered)?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A weight and a bias with fixed values, and a loss whose gradients change every step.
    fn parameters() -> Vec<Parameter> {
        let weight = Tensor::from_slice(&[0.5f32, -0.25, 0.125, 1.0, -0.75, 0.3])
            .view([3, 2])
            .set_requires_grad(true);
        let bias = Tensor::from_slice(&[0.1f32, -0.2]).set_requires_grad(true);
        vec![
            Parameter::new("layer.weight", weight),
            Parameter::new("layer.bias", bias),
        ]
    }

    fn copies(parameters: &[Parameter]) -> Vec<Parameter> {
        parameters
            .iter()
            .map(|p| {
                // Outside autograd: detach_copy has no derivative, so it must not be recorded.
                let copy = tch::no_grad(|| p.tensor.detach_copy());
                Parameter::new(p.name.clone(), copy.set_requires_grad(true))
            })
            .collect()
    }

    fn loss(parameters: &[Parameter]) -> Tensor {
        let x = Tensor::from_slice(&[1.0f32, -2.0, 0.5, 0.25, 1.5, -1.0]).view([2, 3]);
        let y = Tensor::from_slice(&[0.3f32, -0.1, 0.7, 0.2]).view([2, 2]);
        let out = (x.matmul(&parameters[0].tensor) + &parameters[1].tensor).tanh();
        (out - y).pow_tensor_scalar(2).sum(Kind::Float)
    }

    fn train(optimizer: &mut Optimizer, parameters: &[Parameter], steps: usize) {
        for _ in 0..steps {
            optimizer.zero_grad().unwrap();
            loss(parameters).backward();
            optimizer.step().unwrap();
        }
    }

    fn every_path() -> Vec<OptimizerSettings> {
        use OptimizerKind::*;
        let with = |kind, lr, edit: &dyn Fn(&mut OptimizerSettings)| {
            let mut settings = OptimizerSettings::new(kind, lr);
            edit(&mut settings);
            settings
        };
        vec![
            with(Sgd, 0.1, &|_| {}),
            with(Sgd, 0.1, &|s| {
                s.momentum = 0.9;
                s.dampening = 0.3;
                s.weight_decay = 0.01;
            }),
            with(Sgd, 0.1, &|s| {
                s.momentum = 0.8;
                s.nesterov = true;
            }),
            with(Adam, 0.01, &|_| {}),
            with(Adam, 0.01, &|s| {
                s.amsgrad = true;
                s.weight_decay = 0.1;
                s.betas = (0.8, 0.99);
                s.eps = 1e-6;
            }),
            with(Adamw, 0.01, &|s| s.weight_decay = 0.1),
            with(Rmsprop, 0.01, &|_| {}),
            with(Rmsprop, 0.01, &|s| {
                s.centered = true;
                s.momentum = 0.5;
                s.alpha = 0.9;
                s.weight_decay = 0.01;
            }),
        ]
    }

    #[test]
    fn loaded_state_steps_exactly_as_the_original() {
        for settings in every_path() {
            let original = parameters();
            let mut optimizer = Optimizer::new(settings.clone(), &original).unwrap();
            train(&mut optimizer, &original, 3);
            let state = optimizer.state().unwrap();

            // A fresh optimizer with other settings of the same kind takes the saved ones.
            let resumed = copies(&original);
            let mut fresh =
                Optimizer::new(OptimizerSettings::new(settings.kind, 0.5), &resumed).unwrap();
            fresh.load_state(&state).unwrap();
            assert_eq!(fresh.settings(), &settings);

            train(&mut optimizer, &original, 3);
            train(&mut fresh, &resumed, 3);
            for (a, b) in original.iter().zip(&resumed) {
                assert!(
                    a.tensor.equal(&b.tensor),
                    "{settings:?}: {} differs",
                    a.name
                );
            }
            let before = original[0].tensor.detach_copy();
            train(&mut optimizer, &original, 1);
            assert!(
                !original[0].tensor.equal(&before),
                "{settings:?}: no update"
            );
        }
    }

    #[test]
    fn state_is_a_snapshot_named_as_torch_optim() {
        let parameters = parameters();
        let mut settings = OptimizerSettings::new(OptimizerKind::Adam, 0.01);
        settings.amsgrad = true;
        let mut optimizer = Optimizer::new(settings, &parameters).unwrap();
        train(&mut optimizer, &parameters, 2);
        let state = optimizer.state().unwrap();
        let names: Vec<&str> = state.tensors.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "layer.weight.step",
                "layer.weight.exp_avg",
                "layer.weight.exp_avg_sq",
                "layer.weight.max_exp_avg_sq",
                "layer.bias.step",
                "layer.bias.exp_avg",
                "layer.bias.exp_avg_sq",
                "layer.bias.max_exp_avg_sq",
            ]
        );
        let step = state.get("layer.bias.step").unwrap();
        assert_eq!(
            (step.kind(), step.dim(), step.double_value(&[])),
            (Kind::Float, 0, 2.0)
        );
        let exp_avg = state.get("layer.weight.exp_avg").unwrap().detach_copy();
        train(&mut optimizer, &parameters, 1);
        assert!(state.get("layer.weight.exp_avg").unwrap().equal(&exp_avg));
    }

    /// A 4x2 table and a 4-vector, the rows of a matrix factorization's factors and biases.
    fn tables() -> Vec<Parameter> {
        let factors = Tensor::from_slice(&[0.5f32, -0.25, 0.125, 1.0, -0.75, 0.3, 0.2, -0.6])
            .view([4, 2])
            .set_requires_grad(true);
        let bias = Tensor::from_slice(&[0.1f32, -0.2, 0.05, 0.3]).set_requires_grad(true);
        vec![
            Parameter::new("item_bias", bias),
            Parameter::new("item_factors", factors),
        ]
    }

    /// A step whose batch uses rows 0, 2 and 0 again (a duplicate): row-sparse gradients,
    /// as `--sparse` gives them.
    fn sparse_step(optimizer: &mut Optimizer, tables: &[Parameter], round: usize) {
        let rows = Tensor::from_slice(&[0i64, 2, 0]);
        let target = Tensor::from_slice(&[0.3f32, -0.1, 0.7]) * (round as f64 + 1.0);
        optimizer.zero_grad().unwrap();
        let factors = Tensor::embedding(&tables[1].tensor, &rows, -1, false, true);
        let bias = tables[0].tensor.gather(0, &rows, true);
        let prediction = factors.sum_dim_intlist(1, false, Kind::Float) + bias;
        (prediction - target)
            .pow_tensor_scalar(2)
            .sum(Kind::Float)
            .backward();
        assert!(tables[0].tensor.grad().is_sparse() && tables[1].tensor.grad().is_sparse());
        optimizer.step().unwrap();
    }

    fn sparse_adam_settings() -> OptimizerSettings {
        let mut settings = OptimizerSettings::new(OptimizerKind::Adam, 0.05);
        settings.sparse = true;
        settings
    }

    #[test]
    fn sparse_adam_moves_only_the_rows_used_and_its_state_round_trips() {
        let tables = tables();
        let untouched = tables[1].tensor.detach_copy().narrow(0, 1, 1);
        let mut optimizer = Optimizer::new(sparse_adam_settings(), &tables).unwrap();
        for round in 0..3 {
            sparse_step(&mut optimizer, &tables, round);
        }
        assert!(tables[1].tensor.narrow(0, 1, 1).equal(&untouched));
        let state = optimizer.state().unwrap();
        let step = state.get("item_factors.step").unwrap();
        assert_eq!(
            (step.kind(), step.dim(), step.int64_value(&[])),
            (Kind::Int64, 0, 3)
        );
        // Lazy moments: rows 1 and 3 were never in a batch.
        let exp_avg = state.get("item_factors.exp_avg").unwrap();
        assert_eq!(
            exp_avg
                .narrow(0, 1, 1)
                .abs()
                .sum(Kind::Float)
                .double_value(&[]),
            0.0
        );
        assert!(
            exp_avg
                .narrow(0, 0, 1)
                .abs()
                .sum(Kind::Float)
                .double_value(&[])
                > 0.0
        );

        // A copy restored from the state continues exactly as the original.
        let copied = copies(&tables);
        let mut restored = Optimizer::new(sparse_adam_settings(), &copied).unwrap();
        restored.load_state(&state).unwrap();
        for round in 3..5 {
            sparse_step(&mut optimizer, &tables, round);
            sparse_step(&mut restored, &copied, round);
        }
        for (a, b) in tables.iter().zip(&copied) {
            assert!(a.tensor.equal(&b.tensor), "{}", a.name);
        }
        let (a, b) = (optimizer.state().unwrap(), restored.state().unwrap());
        for ((name, x), (_, y)) in a.tensors.iter().zip(&b.tensors) {
            assert!(x.equal(y), "{name}");
        }
        // Dense Adam's float32 step is not a SparseAdam state and vice versa.
        let mut dense =
            Optimizer::new(OptimizerSettings::new(OptimizerKind::Adam, 0.05), &copied).unwrap();
        let error = dense.load_state(&state).unwrap_err();
        assert!(
            format!("{error:#}").contains("optimizer state"),
            "{error:#}"
        );
    }

    #[test]
    fn a_sparse_gradient_needs_a_sparse_optimizer() {
        let tables = tables();
        let mut optimizer =
            Optimizer::new(OptimizerSettings::new(OptimizerKind::Adam, 0.05), &tables).unwrap();
        let rows = Tensor::from_slice(&[1i64]);
        Tensor::embedding(&tables[1].tensor, &rows, -1, false, true)
            .sum(Kind::Float)
            .backward();
        let error = optimizer.step().unwrap_err();
        assert_eq!(
            error.to_string(),
            "optimizer step on item_factors: a sparse gradient, but the optimizer was built without --sparse"
        );
    }

    #[test]
    fn sparse_sgd_equals_dense_sgd_without_duplicate_rows() {
        let sparse_tables = tables();
        let dense_tables = copies(&sparse_tables);
        let mut settings = OptimizerSettings::new(OptimizerKind::Sgd, 0.1);
        settings.sparse = true;
        let mut sparse = Optimizer::new(settings, &sparse_tables).unwrap();
        let mut dense = Optimizer::new(
            OptimizerSettings::new(OptimizerKind::Sgd, 0.1),
            &dense_tables,
        )
        .unwrap();
        let rows = Tensor::from_slice(&[3i64, 1]);
        for (optimizer, tables, is_sparse) in [
            (&mut sparse, &sparse_tables, true),
            (&mut dense, &dense_tables, false),
        ] {
            let factors = Tensor::embedding(&tables[1].tensor, &rows, -1, false, is_sparse);
            (factors.pow_tensor_scalar(2).sum(Kind::Float)
                + tables[0]
                    .tensor
                    .gather(0, &rows, is_sparse)
                    .sum(Kind::Float))
            .backward();
            optimizer.step().unwrap();
        }
        for (a, b) in sparse_tables.iter().zip(&dense_tables) {
            assert!(a.tensor.equal(&b.tensor), "{}", a.name);
        }
        assert!(
            !sparse_tables[0].tensor.equal(&tables()[0].tensor),
            "the step moved something"
        );
    }

    #[test]
    fn sgd_moves_by_lr_times_gradient_and_follows_set_lr() {
        let p = Tensor::from_slice(&[1.0f32, 2.0]).set_requires_grad(true);
        let parameters = vec![Parameter::new("p", p)];
        let c = Tensor::from_slice(&[0.5f32, -0.25]);
        let mut optimizer =
            Optimizer::new(OptimizerSettings::new(OptimizerKind::Sgd, 0.5), &parameters).unwrap();
        let step = |optimizer: &mut Optimizer| {
            optimizer.zero_grad().unwrap();
            (&parameters[0].tensor * &c).sum(Kind::Float).backward();
            optimizer.step().unwrap();
            Vec::<f32>::try_from(&parameters[0].tensor.detach()).unwrap()
        };
        assert_eq!(step(&mut optimizer), [0.75, 2.125]);
        optimizer.set_lr(0.25).unwrap();
        assert_eq!(optimizer.lr(), 0.25);
        assert_eq!(step(&mut optimizer), [0.625, 2.1875]);
        assert!(optimizer.set_lr(0.0).is_err());
    }

    #[test]
    fn adam_first_step_is_lr_times_sign() {
        let parameters = parameters();
        let before: Vec<Tensor> = parameters.iter().map(|p| p.tensor.detach_copy()).collect();
        let mut optimizer = Optimizer::new(
            OptimizerSettings::new(OptimizerKind::Adam, 0.01),
            &parameters,
        )
        .unwrap();
        optimizer.zero_grad().unwrap();
        loss(&parameters).backward();
        let signs: Vec<Tensor> = parameters.iter().map(|p| p.tensor.grad().sign()).collect();
        optimizer.step().unwrap();
        for ((p, b), sign) in parameters.iter().zip(&before).zip(&signs) {
            let moved = (b - &p.tensor.detach()) / 0.01 - sign;
            assert!(moved.abs().max().double_value(&[]) < 1e-4, "{}", p.name);
        }
    }

    #[test]
    fn zero_grad_drops_gradients_and_a_step_without_them_changes_nothing() {
        let parameters = parameters();
        let mut optimizer = Optimizer::new(
            OptimizerSettings::new(OptimizerKind::Adam, 0.01),
            &parameters,
        )
        .unwrap();
        loss(&parameters).backward();
        assert!(parameters[0].tensor.grad().defined());
        optimizer.zero_grad().unwrap();
        assert!(!parameters[0].tensor.grad().defined());
        let before = parameters[0].tensor.detach_copy();
        optimizer.step().unwrap();
        assert!(parameters[0].tensor.equal(&before));
        let state = optimizer.state().unwrap();
        assert_eq!(
            state.get("layer.weight.step").unwrap().double_value(&[]),
            0.0
        );
    }

    #[test]
    fn load_state_rejects_mismatches_and_changes_nothing_then() {
        let parameters = parameters();
        let mut settings = OptimizerSettings::new(OptimizerKind::Rmsprop, 0.01);
        settings.centered = true;
        let mut optimizer = Optimizer::new(settings.clone(), &parameters).unwrap();
        train(&mut optimizer, &parameters, 1);
        let good = optimizer.state().unwrap();
        let edited = |edit: &dyn Fn(&mut OptimizerState)| {
            let mut state = optimizer.state().unwrap();
            edit(&mut state);
            state
        };
        let mut other = Optimizer::new(settings.clone(), &copies(&parameters)).unwrap();
        let cases = [
            (
                edited(&|s| s.settings.kind = OptimizerKind::Adam),
                "optimizer state is for adam, this optimizer is rmsprop",
            ),
            (
                edited(&|s| s.tensors.retain(|(n, _)| n != "layer.bias.grad_avg")),
                "optimizer state lacks layer.bias.grad_avg",
            ),
            (
                edited(&|s| s.tensors[1].1 = Tensor::zeros([2, 3], (Kind::Float, tch::Device::Cpu))),
                "optimizer state: layer.weight.square_avg has shape [2, 3], the parameter [3, 2]",
            ),
            (
                edited(&|s| {
                    let extra = Tensor::zeros([2], (Kind::Float, tch::Device::Cpu));
                    s.tensors.push(("layer.bias.exp_avg".into(), extra))
                }),
                "optimizer state has layer.bias.exp_avg, which matches no parameter and buffer here",
            ),
            (
                edited(&|s| s.tensors[0].1 = Tensor::from(1.5f32)),
                "optimizer state: layer.weight.step 1.5 is not a step count",
            ),
        ];
        let before = other.state().unwrap();
        for (state, message) in cases {
            let error = other.load_state(&state).unwrap_err();
            assert_eq!(format!("{error:#}"), message);
            let after = other.state().unwrap();
            assert_eq!(other.settings(), &settings);
            for ((name, a), (_, b)) in before.tensors.iter().zip(&after.tensors) {
                assert!(a.equal(b), "{name} changed by a rejected load");
            }
        }
        other.load_state(&good).unwrap();
    }
}

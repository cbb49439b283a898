//! The fused CPU training step of matrix factorization (`--engine fused`): one call per batch
//! gathers the rows, predicts, computes the base loss and the penalty, the gradients of the
//! rows used and hands them to the optimizer, with no autograd graph and no ATen call per
//! operation. It computes what the autograd path computes, in the same float32 operations:
//!
//! * prediction `((mu + b_u) + b_i) + sum_k p_uk * q_ik`, the dot in ATen's summation order
//!   ([`sum`]); base loss `sum_b e_b^2` in ATen's order, divided by |B| (ATen's CPU `mean`);
//! * the error's gradient `(1/|B|) * (2 * e_b)` (mean and pow backward), each row's gradient
//!   `g_b * q_i` / `g_b * p_u` / `g_b` (mul and add backward), plus `c * (2 * row)` for
//!   `batch-l2` (c: lambda/|B| as float32), accumulated per row in batch order from zero as
//!   `index_add_` does (dense), or kept per occurrence as `nn.Embedding(sparse=True)`'s
//!   gradient (`--sparse`, a coalesced sum is the optimizer's business as in autograd);
//! * the whole-table forms (frobenius, norm, l1) as the autograd path computes them: their
//!   value with the same ATen ops, their gradient element by element as autograd's formulas;
//! * the update: the run's own [`Optimizer`] ([`Optimizer::step_with`]: the same rules and
//!   state tensors, so checkpoints resume across engines), except `--sparse` Adam, whose
//!   SparseAdam rule the step applies itself on that optimizer's state (`sparse_adam.rs`),
//!   sparing a sparse tensor and a coalesce per table and batch.
//!
//! It runs on one thread: the batch's work is microseconds, smaller than a thread hand-off,
//! and one thread makes the row accumulation order fixed. Buffers are allocated once per run.

mod backward;
mod sparse_adam;
pub mod sum;

use crate::model::mf::MatrixFactorization;
use crate::model::Parameter;
use crate::optim::Optimizer;
use crate::regularization::{Penalty, PenaltyKind};
use crate::train::FusedStep;
use anyhow::{bail, Result};
use tch::{Device, Kind, Tensor};

/// Which ids index a table's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    User = 0,
    Item = 1,
}

/// One parameter table (a factor matrix or a bias vector) and its gradient buffers.
struct Table {
    parameter: Parameter,
    side: Side,
    /// K for a factor matrix, 1 for a bias vector.
    width: usize,
    rows: usize,
    penalized: bool,
    /// Dense: the table's whole gradient. Sparse: one row per occurrence, `[batch, width]`
    /// (`[batch]` for a bias), as `embedding`'s and `gather`'s sparse backward give values.
    gradient: Tensor,
    /// Sparse: the occurrences' rows, `[1, batch]` int64.
    indices: Tensor,
    /// Dense: the rows the last step wrote, zeroed before the next.
    touched: Vec<usize>,
}

/// The fused step of one run: the model's tensors, the penalty and preallocated buffers.
pub struct FusedMfStep {
    tables: Vec<Table>,
    users: Tensor,
    items: Tensor,
    ratings: Tensor,
    n_train: usize,
    dim: usize,
    global_mean: Option<f32>,
    sparse: bool,
    penalty: Penalty,
    lanes: usize,
    threads: usize,
    batch: Batch,
    /// The tables as the penalty takes them (whole-table forms), built once.
    parameters: Vec<Parameter>,
    /// What the optimizer takes, in its order: the dense gradient buffers (set once), or each
    /// step's sparse gradients.
    gradients: Vec<Option<Tensor>>,
    /// `--sparse` Adam: the fused step applies SparseAdam itself ([`Self::sparse_adam`]).
    sparse_adam: bool,
    /// Per side (users, items): the batch's sorted row ids and their order (`sort`'s outputs).
    sorted: [Tensor; 2],
    order: [Tensor; 2],
    /// SparseAdam's per-batch rows: numerators, second moments (a tensor: ATen takes their
    /// square root) and the distinct rows, each sized batch size x K once.
    numer: Vec<f32>,
    second: Tensor,
    unique_rows: Vec<usize>,
}

/// Per-batch buffers, sized for the configured batch size.
struct Batch {
    users: Vec<usize>,
    items: Vec<usize>,
    ratings: Vec<f32>,
    /// The error's gradient per example.
    error_grads: Vec<f32>,
    squares: Vec<f32>,
    row: Vec<f32>,
}

/// Why the fused engine cannot train on `device` here, or `None` when it can.
pub fn not_covered(device: Device) -> Option<&'static str> {
    if device != Device::Cpu {
        return Some("it runs on the CPU only");
    }
    if sum::aten_lanes().is_none() {
        return Some("its self-check failed on this machine (its sums do not reproduce ATen's)");
    }
    None
}

/// A contiguous CPU tensor's elements as a slice.
///
/// The slice's lifetime is the caller's to bound. SAFETY: the caller guarantees `tensor` is a defined, contiguous CPU tensor whose elements
/// are `T` (checked by [`check_layout`] when the step is built, or for the batch's indices,
/// at each step), and that nothing writes it while the slice lives.
unsafe fn elements<'a, T>(tensor: &Tensor) -> &'a [T] {
    let len = tensor.numel();
    if len == 0 {
        return &[];
    }
    std::slice::from_raw_parts(tensor.data_ptr() as *const T, len)
}

/// As [`elements`], writable: the caller also guarantees no other slice of it lives.
unsafe fn elements_mut<'a, T>(tensor: &Tensor) -> &'a mut [T] {
    let len = tensor.numel();
    if len == 0 {
        return &mut [];
    }
    std::slice::from_raw_parts_mut(tensor.data_ptr() as *mut T, len)
}

fn check_layout(name: &str, tensor: &Tensor, kind: Kind) -> Result<()> {
    if tensor.device() != Device::Cpu || tensor.kind() != kind || !tensor.is_contiguous() {
        bail!("fused step: {name} must be a contiguous {kind:?} CPU tensor");
    }
    Ok(())
}

impl FusedMfStep {
    /// The step for `model` with its `penalty`, for batches of at most `batch_size`; checks
    /// that the optimizer steps the model's tables in their canonical order and that every
    /// training rating names a row of the tables (so steps need not check them again).
    pub fn new(
        model: &MatrixFactorization,
        penalty: &Penalty,
        optimizer: &Optimizer,
        batch_size: usize,
    ) -> Result<Self> {
        let Some(lanes) = sum::aten_lanes() else {
            bail!(
                "fused step: {}",
                not_covered(Device::Cpu).unwrap_or_default()
            );
        };
        let tensors = model.training_tensors();
        let dim = tensors.user_factors.size()[1] as usize;
        let mut named = vec![
            ("item_factors", tensors.item_factors, Side::Item),
            ("user_factors", tensors.user_factors, Side::User),
        ];
        if let (Some(user_bias), Some(item_bias)) = (tensors.user_bias, tensors.item_bias) {
            named.push(("item_bias", item_bias, Side::Item));
            named.push(("user_bias", user_bias, Side::User));
        }
        named.sort_by_key(|(name, _, _)| *name);
        let names: Vec<&str> = named.iter().map(|(name, _, _)| *name).collect();
        if optimizer.parameter_names() != names {
            bail!(
                "fused step: the optimizer steps {:?}, the model has {names:?}",
                optimizer.parameter_names()
            );
        }
        let sparse = tensors.sparse;
        let mut tables = Vec::with_capacity(named.len());
        for (name, tensor, side) in named {
            check_layout(name, tensor, Kind::Float)?;
            let parameter = Parameter::new(name, tensor.shallow_clone());
            tables.push(Table::new(parameter, side, penalty, sparse, batch_size));
        }
        for (name, tensor, kind) in [
            ("users", tensors.users, Kind::Int64),
            ("items", tensors.items, Kind::Int64),
            ("ratings", tensors.ratings, Kind::Float),
        ] {
            check_layout(name, tensor, kind)?;
        }
        let global_mean = tensors
            .user_bias
            .map(|_| tensors.global_mean.to_device(Device::Cpu).double_value(&[]) as f32);
        let parameters = tables
            .iter()
            .map(|t: &Table| {
                Parameter::new(t.parameter.name.clone(), t.parameter.tensor.shallow_clone())
            })
            .collect();
        let gradients = tables
            .iter()
            .map(|t| (!sparse).then(|| t.gradient.shallow_clone()))
            .collect();
        let int64 = || Tensor::zeros([batch_size as i64], (Kind::Int64, Device::Cpu));
        let step = FusedMfStep {
            sparse_adam: sparse && optimizer.settings().kind == crate::optim::OptimizerKind::Adam,
            sorted: [int64(), int64()],
            order: [int64(), int64()],
            numer: vec![0.0; batch_size * dim],
            second: Tensor::zeros([(batch_size * dim) as i64], (Kind::Float, Device::Cpu)),
            unique_rows: Vec::with_capacity(batch_size),
            parameters,
            gradients,
            users: tensors.users.shallow_clone(),
            items: tensors.items.shallow_clone(),
            ratings: tensors.ratings.shallow_clone(),
            n_train: tensors.ratings.numel(),
            dim,
            global_mean,
            sparse,
            penalty: penalty.clone(),
            lanes,
            threads: tch::get_num_threads().max(1) as usize,
            batch: Batch::new(batch_size, dim),
            tables,
        };
        step.check_ids()?;
        Ok(step)
    }

    /// Every training user and item id names a row of its tables.
    fn check_ids(&self) -> Result<()> {
        for (side, ids) in [(Side::User, &self.users), (Side::Item, &self.items)] {
            let rows = self
                .tables
                .iter()
                .filter(|t| t.side == side)
                .map(|t| t.rows)
                .min()
                .unwrap_or(0);
            // SAFETY: checked as a contiguous int64 CPU tensor in `new`; only read.
            let ids = unsafe { elements::<i64>(ids) };
            if let Some(bad) = ids.iter().find(|&&id| id < 0 || id as usize >= rows) {
                bail!("fused step: training id {bad} outside the {rows} rows of its table");
            }
        }
        Ok(())
    }

    /// Reads the batch's users, items and ratings (checking the indices once).
    fn gather(&mut self, indices: &Tensor) -> Result<usize> {
        check_layout("the batch's indices", indices, Kind::Int64)?;
        // SAFETY: layouts checked above and in `new`; these tensors are only read here.
        let (indices, users, items, ratings) = unsafe {
            (
                elements::<i64>(indices),
                elements::<i64>(&self.users),
                elements::<i64>(&self.items),
                elements::<f32>(&self.ratings),
            )
        };
        let len = indices.len();
        if len > self.batch.users.len() {
            bail!(
                "fused step: a batch of {len}, more than the {} it was built for",
                self.batch.users.len()
            );
        }
        if let Some(bad) = indices
            .iter()
            .find(|&&i| i < 0 || i as usize >= self.n_train)
        {
            bail!("fused step: example {bad} outside the training set");
        }
        let batch = &mut self.batch;
        for (b, &index) in indices.iter().enumerate() {
            // The examples are in random order: fetch a few ahead (a cache miss each).
            if let Some(&ahead) = indices.get(b + PREFETCH_AHEAD) {
                let ahead = ahead as usize;
                prefetch(&users[ahead]);
                prefetch(&items[ahead]);
                prefetch(&ratings[ahead]);
            }
            let index = index as usize;
            // Ids were checked against the tables when the step was built.
            batch.users[b] = users[index] as usize;
            batch.items[b] = items[index] as usize;
            batch.ratings[b] = ratings[index];
        }
        Ok(len)
    }

    fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.parameter.name == name)
    }

    /// Predictions, errors and the base loss; leaves each error's gradient in the batch.
    fn forward(&mut self, len: usize) -> f32 {
        let (dim, lanes) = (self.dim, self.lanes);
        let table = |name| self.table(name).map(|t| &t.parameter.tensor);
        // SAFETY: float32 contiguous CPU tables (checked in `new`), only read during the
        // forward pass; the optimizer writes them after the slices are gone.
        let (user_factors, item_factors, user_bias, item_bias) = unsafe {
            (
                table("user_factors").map_or(&[][..], |t| elements::<f32>(t)),
                table("item_factors").map_or(&[][..], |t| elements::<f32>(t)),
                table("user_bias").map(|t| elements::<f32>(t)),
                table("item_bias").map(|t| elements::<f32>(t)),
            )
        };
        let batch = &mut self.batch;
        for b in 0..len {
            if b + PREFETCH_AHEAD < len {
                let (u, i) = (
                    batch.users[b + PREFETCH_AHEAD],
                    batch.items[b + PREFETCH_AHEAD],
                );
                prefetch_row(&user_factors[u * dim..(u + 1) * dim]);
                prefetch_row(&item_factors[i * dim..(i + 1) * dim]);
                if let (Some(bu), Some(bi)) = (user_bias, item_bias) {
                    prefetch(&bu[u]);
                    prefetch(&bi[i]);
                }
            }
            let (u, i) = (batch.users[b] * dim, batch.items[b] * dim);
            let (p, q) = (&user_factors[u..u + dim], &item_factors[i..i + dim]);
            let dot = sum::inner_sum(|k| p[k] * q[k], dim, lanes);
            let prediction = match (self.global_mean, user_bias, item_bias) {
                (Some(mean), Some(bu), Some(bi)) => {
                    ((mean + bu[batch.users[b]]) + bi[batch.items[b]]) + dot
                }
                _ => dot,
            };
            let error = prediction - batch.ratings[b];
            batch.squares[b] = error * error;
            batch.error_grads[b] = error;
        }
        // mean backward: 1/|B| per example; pow backward: grad * (2 * e).
        let scale = 1.0f32 / len as f32;
        for grad in &mut batch.error_grads[..len] {
            *grad = scale * (2.0 * *grad);
        }
        let squares = &batch.squares;
        sum::full_sum(|b| squares[b], len, lanes, self.threads) / len as f32
    }

    /// The penalty's value on this batch; `None` for the whole-table forms, whose value
    /// [`Self::whole_table_penalty`] computes.
    fn batch_penalty(&self, len: usize) -> Option<f32> {
        if !self.penalty.is_active() {
            return Some(0.0);
        }
        if self.penalty.kind != PenaltyKind::BatchL2 {
            return None;
        }
        let mut total: Option<f32> = None;
        for table in self.tables.iter().filter(|t| t.penalized) {
            let ids = self.batch.ids(table.side);
            let width = table.width;
            // SAFETY: as in `forward`.
            let values = unsafe { elements::<f32>(&table.parameter.tensor) };
            let squares = sum::full_sum(
                |j| {
                    let x = values[ids[j / width] * width + j % width];
                    x * x
                },
                len * width,
                self.lanes,
                self.threads,
            );
            total = Some(total.map_or(squares, |t| t + squares));
        }
        let coefficient = (self.penalty.lambda / len as f64) as f32;
        Some(total.map_or(0.0, |t| t * coefficient))
    }

    /// frobenius, norm or l1 on the whole tables: the value with the autograd path's ATen
    /// ops; each table's gradient `c * (2 * w)`, `c * (w / ||W||)` (0 where the norm is 0)
    /// or `c * sgn(w)` added to the rows' gradient, as autograd adds the two.
    fn whole_table_penalty(&mut self) -> f32 {
        let _no_grad = tch::no_grad_guard();
        let value = self
            .penalty
            .on_parameters(&self.parameters)
            .double_value(&[]) as f32;
        let coefficient = self.penalty.parameters_coefficient() as f32;
        let kind = self.penalty.kind;
        for table in self.tables.iter().filter(|t| t.penalized) {
            let norm = match kind {
                PenaltyKind::Norm => table.parameter.tensor.norm().double_value(&[]) as f32,
                _ => 0.0,
            };
            // SAFETY: the table is read and its gradient buffer (another tensor) written.
            let (weights, gradient) = unsafe {
                (
                    elements::<f32>(&table.parameter.tensor),
                    elements_mut::<f32>(&table.gradient),
                )
            };
            for (g, &w) in gradient.iter_mut().zip(weights) {
                let term = match kind {
                    PenaltyKind::Frobenius => coefficient * (2.0 * w),
                    PenaltyKind::Norm if norm == 0.0 => coefficient * 0.0,
                    PenaltyKind::Norm => coefficient * (w / norm),
                    _ => coefficient * sgn(w),
                };
                *g += term;
            }
        }
        value
    }
}

/// How many examples ahead the step asks for the memory it will read.
pub(super) const PREFETCH_AHEAD: usize = 12;

/// A hint to fetch `value`'s cache line; no effect on results.
#[inline(always)]
fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint that never faults; the address is a live reference.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(value as *const T as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// [`prefetch`] for every cache line of a row.
#[inline(always)]
pub(super) fn prefetch_row(row: &[f32]) {
    for line in row.chunks(16) {
        prefetch(&line[0]);
    }
}

/// torch's `sgn` on a real number: -1, 0 or 1, NaN stays NaN.
fn sgn(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        x * 0.0
    }
}

impl Batch {
    fn new(batch_size: usize, dim: usize) -> Self {
        Batch {
            users: vec![0; batch_size],
            items: vec![0; batch_size],
            ratings: vec![0.0; batch_size],
            error_grads: vec![0.0; batch_size],
            squares: vec![0.0; batch_size],
            row: vec![0.0; dim.max(1)],
        }
    }

    fn ids(&self, side: Side) -> &[usize] {
        match side {
            Side::User => &self.users,
            Side::Item => &self.items,
        }
    }
}

impl Table {
    fn new(
        parameter: Parameter,
        side: Side,
        penalty: &Penalty,
        sparse: bool,
        batch_size: usize,
    ) -> Self {
        let shape = parameter.tensor.size();
        let rows = shape[0] as usize;
        let width = shape.get(1).copied().unwrap_or(1) as usize;
        let penalized = penalty.is_active() && penalty.applies_to(&parameter);
        let options = (Kind::Float, Device::Cpu);
        let (gradient, indices) = if sparse {
            let mut values_shape = shape.clone();
            values_shape[0] = batch_size as i64;
            (
                Tensor::zeros(values_shape.as_slice(), options),
                Tensor::zeros([1, batch_size as i64], (Kind::Int64, Device::Cpu)),
            )
        } else {
            (
                Tensor::zeros(shape.as_slice(), options),
                Tensor::zeros([0], (Kind::Int64, Device::Cpu)),
            )
        };
        Table {
            parameter,
            side,
            width,
            rows,
            penalized,
            gradient,
            indices,
            touched: Vec::with_capacity(batch_size),
        }
    }
}

impl FusedStep for FusedMfStep {
    fn step(&mut self, indices: &Tensor, optimizer: &mut Optimizer) -> Result<[f32; 3]> {
        let len = self.gather(indices)?;
        if len == 0 {
            return Ok([f32::NAN; 3]);
        }
        let base = self.forward(len);
        let batch_reg = self.batch_penalty(len);
        self.rows_backward(len, batch_reg.is_some());
        let reg = match batch_reg {
            Some(reg) => reg,
            None => self.whole_table_penalty(),
        };
        if self.sparse_adam {
            return self
                .sparse_adam(len, optimizer)
                .map(|()| [base, reg, base + reg]);
        }
        if self.sparse {
            self.sparse_gradients(len)?;
        }
        optimizer.step_with(&self.gradients)?;
        Ok([base, reg, base + reg])
    }
}

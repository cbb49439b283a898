//! The fused step's backward pass: each occurrence's row gradient, accumulated per row
//! (dense, as `index_add_`) or kept per occurrence (sparse), and the gradients as the
//! optimizer takes them.

use super::{elements, elements_mut, FusedMfStep, Side};
use crate::regularization::PenaltyKind;
use anyhow::Result;
use tch::{Device, Kind, Tensor};

impl FusedMfStep {
    /// Writes every table's gradient from the batch's error gradients. `row_local`: the
    /// penalty, if any, is `batch-l2` (its gradient is added per row here); otherwise the
    /// dense gradients start from zero everywhere, for the whole-table penalty to add to.
    pub(super) fn rows_backward(&mut self, len: usize, row_local: bool) {
        let batch_l2 = row_local && self.penalty.is_active();
        let coefficient = (self.penalty.lambda / len as f64) as f32;
        let dim = self.dim;
        let factors = |side: Side| {
            let name = match side {
                Side::User => "user_factors",
                Side::Item => "item_factors",
            };
            let table = self.table(name).map(|t| &t.parameter.tensor);
            // SAFETY: float32 contiguous CPU tables (checked in `new`), only read here; the
            // gradients written below are other tensors.
            table.map_or(&[][..], |t| unsafe { elements::<f32>(t) })
        };
        let (user_factors, item_factors) = (factors(Side::User), factors(Side::Item));
        let kind = self.penalty.kind;
        let sparse = self.sparse;
        let batch = &mut self.batch;
        for table in &mut self.tables {
            // SAFETY: as above; the gradient buffer is this table's own, written only here.
            let (weights, gradient) = unsafe {
                (
                    elements::<f32>(&table.parameter.tensor),
                    elements_mut::<f32>(&table.gradient),
                )
            };
            let (ids, other_ids, other) = match table.side {
                Side::User => (&batch.users, &batch.items, item_factors),
                Side::Item => (&batch.items, &batch.users, user_factors),
            };
            let width = table.width;
            let penalized = batch_l2 && table.penalized && kind == PenaltyKind::BatchL2;
            let row = &mut batch.row[..width];
            if sparse {
                // SAFETY: this table's own int64 index buffer, written only here.
                let indices = unsafe { elements_mut::<i64>(&table.indices) };
                for b in 0..len {
                    occurrence_gradient(
                        row,
                        b,
                        ids[b],
                        other_ids[b],
                        other,
                        weights,
                        &batch.error_grads,
                        table.parameter.is_bias,
                        penalized.then_some(coefficient),
                        dim,
                    );
                    gradient[b * width..(b + 1) * width].copy_from_slice(row);
                    indices[b] = ids[b] as i64;
                }
                continue;
            }
            if row_local {
                for &r in &table.touched {
                    gradient[r * width..(r + 1) * width].fill(0.0);
                }
            } else {
                gradient.fill(0.0);
            }
            table.touched.clear();
            for b in 0..len {
                occurrence_gradient(
                    row,
                    b,
                    ids[b],
                    other_ids[b],
                    other,
                    weights,
                    &batch.error_grads,
                    table.parameter.is_bias,
                    penalized.then_some(coefficient),
                    dim,
                );
                let target = &mut gradient[ids[b] * width..(ids[b] + 1) * width];
                for (g, d) in target.iter_mut().zip(row.iter()) {
                    *g += *d;
                }
                table.touched.push(ids[b]);
            }
        }
    }

    /// The sparse COO gradients of this batch, in the optimizer's parameter order, as
    /// `embedding(sparse=True)` and `gather(sparse_grad=True)` give them (uncoalesced:
    /// indices `[1, |B|]`, values `[|B|, K]` or `[|B|]`).
    pub(super) fn sparse_gradients(&mut self, len: usize) -> Result<()> {
        for (table, gradient) in self.tables.iter().zip(&mut self.gradients) {
            let indices = table.indices.f_narrow(1, 0, len as i64)?;
            let values = table.gradient.f_narrow(0, 0, len as i64)?;
            let size = table.parameter.tensor.size();
            *gradient = Some(Tensor::f_internal_sparse_coo_tensor_unsafe(
                &indices,
                &values,
                size.as_slice(),
                (Kind::Float, Device::Cpu),
                false,
            )?);
        }
        Ok(())
    }
}

/// The gradient of one occurrence's row: `g_b * other row` for a factor row, `g_b` for a
/// bias, plus `c * (2 * w)` when `batch-l2` with coefficient `c` covers the table (autograd
/// adds the two contributions; float addition of two terms is order-free).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn occurrence_gradient(
    row: &mut [f32],
    b: usize,
    id: usize,
    other_id: usize,
    other: &[f32],
    weights: &[f32],
    error_grads: &[f32],
    is_bias: bool,
    batch_l2: Option<f32>,
    dim: usize,
) {
    let g = error_grads[b];
    let width = row.len();
    let own = &weights[id * width..(id + 1) * width];
    if is_bias {
        row[0] = g;
    } else {
        let other_row = &other[other_id * dim..(other_id + 1) * dim];
        for (d, &q) in row.iter_mut().zip(other_row) {
            *d = g * q;
        }
    }
    if let Some(c) = batch_l2 {
        for (d, &w) in row.iter_mut().zip(own) {
            *d += c * (2.0 * w);
        }
    }
}

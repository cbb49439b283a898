//! torch.optim.SparseAdam inside the fused step (`--sparse --optimizer adam`): the rule of
//! `src/optim_ops.cpp`'s fused loop, on the optimizer's own state tensors, without building
//! sparse tensors or allocating per batch. Duplicate rows are summed in the order ATen's
//! `sort` puts the batch's row ids (as `coalesce` does: the same sort, into preallocated
//! tensors), so the sums have the autograd path's bits.

use super::{elements, elements_mut, prefetch_row, FusedMfStep, Side, PREFETCH_AHEAD};
use crate::optim::{sparse_adam_step_size, Optimizer};
use anyhow::{bail, Result};

impl FusedMfStep {
    /// Each side's row ids of this batch in ATen `sort`'s order (`coalesce`'s), into the
    /// preallocated `sorted` and `order` tensors.
    fn sort_ids(&self, len: usize) -> Result<()> {
        for side in [Side::User, Side::Item] {
            let Some(table) = self.tables.iter().find(|t| t.side == side) else {
                continue;
            };
            let ids = table.indices.f_narrow(1, 0, len as i64)?.f_select(0, 0)?;
            let slot = side as usize;
            let _sorted = ids.f_sort_values(
                &self.sorted[slot].f_narrow(0, 0, len as i64)?,
                &self.order[slot].f_narrow(0, 0, len as i64)?,
                0,
                false,
            )?;
        }
        Ok(())
    }

    /// One SparseAdam step of every table from this batch's occurrence gradients.
    pub(super) fn sparse_adam(&mut self, len: usize, optimizer: &mut Optimizer) -> Result<()> {
        let settings = optimizer.settings().clone();
        let (beta1, beta2) = settings.betas;
        let one_minus_beta1 = (1.0 - beta1) as f32;
        let one_minus_beta2 = (1.0 - beta2) as f32;
        let eps = settings.eps as f32;
        self.sort_ids(len)?;
        for (index, table) in self.tables.iter().enumerate() {
            let Some((step, exp_avg, exp_avg_sq)) = optimizer.sparse_adam_state(index) else {
                bail!(
                    "fused step: {} has no SparseAdam state",
                    table.parameter.name
                );
            };
            *step += 1;
            let minus_step_size = (-sparse_adam_step_size(&settings, *step)) as f32;
            let width = table.width;
            // SAFETY: all contiguous CPU tensors of these kinds (checked when built: the
            // tables in `new`, the moments are `zeros_like` them or loaded with their shape,
            // the buffers are ours); `order` and `ids` hold `len` valid positions and rows.
            let (order, ids, values, m, v, p) = unsafe {
                (
                    &elements::<i64>(&self.order[table.side as usize])[..len],
                    &elements::<i64>(&table.indices)[..len],
                    elements::<f32>(&table.gradient),
                    elements_mut::<f32>(exp_avg),
                    elements_mut::<f32>(exp_avg_sq),
                    elements_mut::<f32>(&table.parameter.tensor),
                )
            };
            if m.len() != p.len() || v.len() != p.len() {
                bail!(
                    "fused step: {}'s moments do not match it",
                    table.parameter.name
                );
            }
            // Pass 1: coalesce each row's occurrences, update its moments, keep the numerator
            // and the second moment (ATen takes the square root, below: its CPU sqrt is not
            // always the correctly rounded one, and the bits must be its).
            let (numer, unique_rows) = (&mut self.numer, &mut self.unique_rows);
            unique_rows.clear();
            // SAFETY: our own float buffer of batch size x K, written only here.
            let second = unsafe { elements_mut::<f32>(&self.second) };
            let g = &mut self.batch.row[..width];
            let mut k = 0;
            while k < len {
                if let Some(&ahead) = order.get(k + PREFETCH_AHEAD) {
                    let at = ids[ahead as usize] as usize * width;
                    prefetch_row(&m[at..at + width]);
                    prefetch_row(&v[at..at + width]);
                    prefetch_row(&p[at..at + width]);
                }
                let first = order[k] as usize;
                let row = ids[first];
                g.copy_from_slice(&values[first * width..(first + 1) * width]);
                k += 1;
                while k < len && ids[order[k] as usize] == row {
                    let more = order[k] as usize * width;
                    for (sum, &x) in g.iter_mut().zip(&values[more..more + width]) {
                        *sum += x;
                    }
                    k += 1;
                }
                let (at, e) = (row as usize * width, unique_rows.len() * width);
                unique_rows.push(row as usize);
                for (j, &grad) in g.iter().enumerate() {
                    let old_m = m[at + j];
                    let update_m = (grad - old_m) * one_minus_beta1;
                    m[at + j] = old_m + update_m;
                    let old_v = v[at + j];
                    let update_v = (grad * grad - old_v) * one_minus_beta2;
                    v[at + j] = old_v + update_v;
                    numer[e + j] = update_m + old_m;
                    second[e + j] = update_v + old_v;
                }
            }
            let count = unique_rows.len() * width;
            let _root = self.second.f_narrow(0, 0, count as i64)?.f_sqrt_()?;
            // Pass 2: the parameter rows.
            for (r, &row) in unique_rows.iter().enumerate() {
                let (at, e) = (row * width, r * width);
                for j in 0..width {
                    let denom = second[e + j] + eps;
                    p[at + j] += (numer[e + j] / denom) * minus_step_size;
                }
            }
        }
        Ok(())
    }
}

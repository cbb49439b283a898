//! Float32 sums in the order ATen's CPU `sum` adds (aten/src/ATen/native/cpu/SumKernel.cpp,
//! `cascade_sum`, PyTorch 2.11), so that the fused step's losses and predictions have the
//! autograd path's bits: four interleaved accumulators per row (`row_sum`), cascaded in levels
//! (`multi_row_sum`), over vectors of `lanes` floats when a row is at least one vector long, and
//! for a whole-tensor sum of at least [`GRAIN_SIZE`] elements on several threads, one partial
//! sum per thread (`two_pass_reduction`). The vector width is the machine's (8 with AVX2,
//! 16 with AVX-512): [`aten_lanes`] finds it by comparing with ATen once per process.

use std::sync::OnceLock;
use tch::{Device, Kind, Tensor};

/// ATen's `internal::GRAIN_SIZE`: smaller reductions run on one thread.
pub const GRAIN_SIZE: usize = 32768;
const ILP: usize = 4;
const LEVELS: usize = 4;

fn ceil_log2(x: usize) -> usize {
    if x <= 2 {
        1
    } else {
        64 - ((x - 1) as u64).leading_zeros() as usize
    }
}

/// `multi_row_sum<acc, 4>`: element `k` of row `i` is `load(i * 4 + k)`. Indexed loops as
/// in the C++, whose order of additions this reproduces.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn multi_row_sum(load: &impl Fn(usize) -> f32, size: usize) -> [f32; ILP] {
    let level_power = 4.max(ceil_log2(size) / LEVELS);
    let level_step = 1usize << level_power;
    let level_mask = level_step - 1;
    let mut acc = [[0f32; ILP]; LEVELS];
    let mut i = 0;
    while i + level_step <= size {
        for _ in 0..level_step {
            for (k, a) in acc[0].iter_mut().enumerate() {
                *a += load(i * ILP + k);
            }
            i += 1;
        }
        for j in 1..LEVELS {
            for k in 0..ILP {
                acc[j][k] += acc[j - 1][k];
                acc[j - 1][k] = 0.0;
            }
            if i & (level_mask << (j * level_power)) != 0 {
                break;
            }
        }
    }
    while i < size {
        for (k, a) in acc[0].iter_mut().enumerate() {
            *a += load(i * ILP + k);
        }
        i += 1;
    }
    for j in 1..LEVELS {
        for k in 0..ILP {
            acc[0][k] += acc[j][k];
        }
    }
    acc[0]
}

/// `row_sum`: the sum of `load(0..size)`.
#[inline(always)]
fn row_sum(load: &impl Fn(usize) -> f32, size: usize) -> f32 {
    let size_ilp = size / ILP;
    let mut partial = multi_row_sum(load, size_ilp);
    for i in size_ilp * ILP..size {
        partial[0] += load(i);
    }
    for k in 1..ILP {
        partial[0] += partial[k];
    }
    partial[0]
}

/// The sum of one contiguous row of `size` floats (`vectorized_inner_sum` when the row holds a
/// vector, the scalar `row_sum` otherwise), as stored into a zeroed output.
#[inline(always)]
pub fn inner_sum(load: impl Fn(usize) -> f32, size: usize, lanes: usize) -> f32 {
    if size < lanes {
        return 0.0 + row_sum(&load, size);
    }
    // Lane l of vector t holds element t * lanes + l; the lanes add independently.
    let vec_size = size / lanes;
    let mut total = 0.0f32;
    for k in vec_size * lanes..size {
        total += load(k);
    }
    if vec_size < ILP {
        // A short row (K < 32 with 8 lanes): `row_sum`'s cascade is all zeros, and each
        // lane is the plain sum of its vectors from zero, plus the zero partials (which
        // only turn -0 into +0).
        for lane in 0..lanes {
            let mut partial = 0.0f32;
            for t in 0..vec_size {
                partial += load(t * lanes + lane);
            }
            total += partial + 0.0;
        }
    } else {
        for lane in 0..lanes {
            total += row_sum(&|t| load(t * lanes + lane), vec_size);
        }
    }
    0.0 + total
}

/// The sum of a whole contiguous tensor of `size` floats on `threads` threads: one pass when it
/// is small or there is one thread, otherwise a partial sum per thread's chunk, then the sum of
/// the partials (one per thread, unused ones zero).
pub fn full_sum(load: impl Fn(usize) -> f32, size: usize, lanes: usize, threads: usize) -> f32 {
    if size < GRAIN_SIZE || threads <= 1 {
        return inner_sum(load, size, lanes);
    }
    let used = threads.min(size.div_ceil(GRAIN_SIZE));
    let chunk = size.div_ceil(used);
    let mut partials = vec![0f32; threads];
    for (thread, partial) in partials.iter_mut().enumerate().take(used) {
        let begin = thread * chunk;
        if begin < size {
            let end = size.min(begin + chunk);
            *partial += inner_sum(|i| load(begin + i), end - begin, lanes);
        }
    }
    inner_sum(|i| partials[i], threads, lanes)
}

/// The vector width with which [`inner_sum`] and [`full_sum`] give ATen's bits on this machine
/// and its current thread count, or `None` when no width does (then the fused engine does not
/// run). Checked once per process on sums of many lengths.
pub fn aten_lanes() -> Option<usize> {
    static LANES: OnceLock<Option<usize>> = OnceLock::new();
    *LANES.get_or_init(|| [8, 16, 4].into_iter().find(|&lanes| sums_match(lanes)))
}

fn sums_match(lanes: usize) -> bool {
    let threads = tch::get_num_threads().max(1) as usize;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        // Mixed signs and magnitudes, so that the order of additions shows in the last bits.
        let unit = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
        unit * [1.0f32, 1e-3, 37.0][(state >> 20) as usize % 3]
    };
    let mut lengths: Vec<usize> = (1..=80).collect();
    lengths.extend([127, 1000, 1024, 4099, 16384, 40_000, 100_003]);
    for len in lengths {
        let values: Vec<f32> = (0..len).map(|_| next()).collect();
        let aten = Tensor::from_slice(&values)
            .sum(Kind::Float)
            .double_value(&[]) as f32;
        if aten.to_bits() != full_sum(|i| values[i], len, lanes, threads).to_bits() {
            return false;
        }
    }
    for width in 1..=70usize {
        let rows = 7;
        let values: Vec<f32> = (0..rows * width).map(|_| next()).collect();
        let aten = Tensor::from_slice(&values)
            .view([rows as i64, width as i64])
            .sum_dim_intlist(1, false, Kind::Float);
        let aten = Vec::<f32>::try_from(&aten.to_device(Device::Cpu)).unwrap_or_default();
        for (row, sum) in aten.iter().enumerate() {
            let ours = inner_sum(|k| values[row * width + k], width, lanes);
            if ours.to_bits() != sum.to_bits() {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vector_width_reproduces_aten_sums_here() {
        assert!(
            aten_lanes().is_some(),
            "no vector width matches ATen's sums"
        );
    }

    #[test]
    fn sums_are_sums() {
        let values: Vec<f32> = (0..100_000).map(|i| (i % 7) as f32).collect();
        let exact: f32 = values.iter().map(|&v| v as f64).sum::<f64>() as f32;
        for threads in [1, 2, 3] {
            assert_eq!(full_sum(|i| values[i], values.len(), 8, threads), exact);
        }
        assert_eq!(inner_sum(|i| values[i], 5, 8), 1.0 + 2.0 + 3.0 + 4.0);
    }
}

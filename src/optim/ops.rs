//! The fused Adam and SparseAdam updates and the ATen calls with a Scalar argument that
//! tch's bindings leave out (src/optim_ops.cpp).

use anyhow::Result;
use std::os::raw::c_char;
use tch::Tensor;
use torch_sys::C_tensor;

extern "C" {
    fn regulab_add_(target: *const C_tensor, other: *const C_tensor, alpha: f64) -> *mut c_char;
    fn regulab_add(
        out: *mut *mut C_tensor,
        input: *const C_tensor,
        other: *const C_tensor,
        alpha: f64,
    ) -> *mut c_char;
    fn regulab_addcmul_(
        target: *const C_tensor,
        tensor1: *const C_tensor,
        tensor2: *const C_tensor,
        value: f64,
    ) -> *mut c_char;
    fn regulab_addcmul(
        out: *mut *mut C_tensor,
        input: *const C_tensor,
        tensor1: *const C_tensor,
        tensor2: *const C_tensor,
        value: f64,
    ) -> *mut c_char;
    fn regulab_addcdiv_(
        target: *const C_tensor,
        tensor1: *const C_tensor,
        tensor2: *const C_tensor,
        value: f64,
    ) -> *mut c_char;
    fn regulab_clear_grad(target: *const C_tensor) -> *mut c_char;
    #[allow(clippy::too_many_arguments)]
    fn regulab_adam_(
        param: *const C_tensor,
        grad: *const C_tensor,
        exp_avg: *const C_tensor,
        exp_avg_sq: *const C_tensor,
        max_exp_avg_sq: *const C_tensor,
        beta1: f64,
        beta2: f64,
        eps: f64,
        step_size: f64,
        bias_correction2_sqrt: f64,
        allow_fused: i32,
        fused: *mut i32,
    ) -> *mut c_char;
    fn regulab_sparse_adam_(
        param: *const C_tensor,
        grad: *const C_tensor,
        exp_avg: *const C_tensor,
        exp_avg_sq: *const C_tensor,
        beta1: f64,
        beta2: f64,
        eps: f64,
        step_size: f64,
        allow_fused: i32,
    ) -> *mut c_char;
    #[cfg(test)]
    fn regulab_sparse_adam_fuses(
        param: *const C_tensor,
        grad: *const C_tensor,
        exp_avg: *const C_tensor,
        exp_avg_sq: *const C_tensor,
    ) -> i32;
}

use crate::ffi::{check, owned};

// SAFETY (every call below): the pointers are live tch tensor handles borrowed for the
// call, and the C++ side only reads the handles (in-place ops write tensor data).

/// `target.add_(other, alpha=alpha)`
pub fn add_(target: &Tensor, other: &Tensor, alpha: f64) -> Result<()> {
    check(unsafe { regulab_add_(target.as_ptr(), other.as_ptr(), alpha) })
}

/// `input.add(other, alpha=alpha)`
pub fn add(input: &Tensor, other: &Tensor, alpha: f64) -> Result<Tensor> {
    let mut out = std::ptr::null_mut();
    check(unsafe { regulab_add(&mut out, input.as_ptr(), other.as_ptr(), alpha) })?;
    owned(out)
}

/// `target.addcmul_(tensor1, tensor2, value=value)`
pub fn addcmul_(target: &Tensor, tensor1: &Tensor, tensor2: &Tensor, value: f64) -> Result<()> {
    check(unsafe { regulab_addcmul_(target.as_ptr(), tensor1.as_ptr(), tensor2.as_ptr(), value) })
}

/// `input.addcmul(tensor1, tensor2, value=value)`
pub fn addcmul(input: &Tensor, tensor1: &Tensor, tensor2: &Tensor, value: f64) -> Result<Tensor> {
    let mut out = std::ptr::null_mut();
    check(unsafe {
        regulab_addcmul(
            &mut out,
            input.as_ptr(),
            tensor1.as_ptr(),
            tensor2.as_ptr(),
            value,
        )
    })?;
    owned(out)
}

/// `target.addcdiv_(tensor1, tensor2, value=value)`
pub fn addcdiv_(target: &Tensor, tensor1: &Tensor, tensor2: &Tensor, value: f64) -> Result<()> {
    check(unsafe { regulab_addcdiv_(target.as_ptr(), tensor1.as_ptr(), tensor2.as_ptr(), value) })
}

/// `target.grad = None`
pub fn clear_grad(target: &Tensor) -> Result<()> {
    check(unsafe { regulab_clear_grad(target.as_ptr()) })
}

/// The scalars of one torch.optim.Adam step, as Python computes them.
pub struct AdamScalars {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub step_size: f64,
    pub bias_correction2_sqrt: f64,
    /// Take the fused CPU loop where it applies and this machine's ATen rounds as it does.
    pub fused: bool,
}

/// One torch.optim.Adam update of `param` after weight decay; `max_exp_avg_sq` with
/// amsgrad. Returns whether the fused loop ran.
pub fn adam_(
    param: &Tensor,
    grad: &Tensor,
    exp_avg: &Tensor,
    exp_avg_sq: &Tensor,
    max_exp_avg_sq: Option<&Tensor>,
    scalars: &AdamScalars,
) -> Result<bool> {
    let max = max_exp_avg_sq.map_or(std::ptr::null(), |t| t.as_ptr());
    let mut fused = 0;
    check(unsafe {
        regulab_adam_(
            param.as_ptr(),
            grad.as_ptr(),
            exp_avg.as_ptr(),
            exp_avg_sq.as_ptr(),
            max,
            scalars.beta1,
            scalars.beta2,
            scalars.eps,
            scalars.step_size,
            scalars.bias_correction2_sqrt,
            i32::from(scalars.fused),
            &mut fused,
        )
    })?;
    Ok(fused != 0)
}

/// The scalars of one SparseAdam step.
pub struct SparseAdamScalars {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub step_size: f64,
    /// Take the fused CPU loop where it applies (the ATen op sequence otherwise).
    pub fused: bool,
}

/// Whether [`sparse_adam_`] takes the fused CPU loop for these tensors.
#[cfg(test)]
pub fn sparse_adam_fuses(
    param: &Tensor,
    grad: &Tensor,
    exp_avg: &Tensor,
    exp_avg_sq: &Tensor,
) -> bool {
    unsafe {
        regulab_sparse_adam_fuses(
            param.as_ptr(),
            grad.as_ptr(),
            exp_avg.as_ptr(),
            exp_avg_sq.as_ptr(),
        ) != 0
    }
}

/// One torch.optim.SparseAdam update of `param` from its sparse `grad`.
pub fn sparse_adam_(
    param: &Tensor,
    grad: &Tensor,
    exp_avg: &Tensor,
    exp_avg_sq: &Tensor,
    scalars: &SparseAdamScalars,
) -> Result<()> {
    check(unsafe {
        regulab_sparse_adam_(
            param.as_ptr(),
            grad.as_ptr(),
            exp_avg.as_ptr(),
            exp_avg_sq.as_ptr(),
            scalars.beta1,
            scalars.beta2,
            scalars.eps,
            scalars.step_size,
            i32::from(scalars.fused),
        )
    })
}

#[cfg(test)]
mod tests {
    use crate::optim::ops;
    use crate::optim::rules::python_pow;
    use tch::{Kind, Tensor};

    #[test]
    fn fused_sparse_adam_gives_the_op_sequence_bits() {
        // Many duplicates (600 occurrences over 40 rows), rows of width 16 and 1, 30 steps.
        tch::manual_seed(7);
        let cpu = tch::Device::Cpu;
        for shape in [vec![40i64, 16], vec![40]] {
            let start = Tensor::randn(shape.as_slice(), (Kind::Float, cpu));
            let tables: Vec<[Tensor; 3]> = (0..2)
                .map(|_| [start.copy(), start.zeros_like(), start.zeros_like()])
                .collect();
            for step in 1..=30 {
                let rows = Tensor::randint(40, [1, 600], (Kind::Int64, cpu));
                let mut values_shape = shape.clone();
                values_shape[0] = 600;
                let values = Tensor::randn(values_shape.as_slice(), (Kind::Float, cpu));
                let grad = Tensor::sparse_coo_tensor_indices_size(
                    &rows,
                    &values,
                    shape.as_slice(),
                    (Kind::Float, cpu),
                    false,
                );
                let bias_correction1 = 1.0 - python_pow(0.9, step as f64);
                let bias_correction2 = 1.0 - python_pow(0.999, step as f64);
                let [param, exp_avg, exp_avg_sq] = &tables[0];
                assert!(ops::sparse_adam_fuses(param, &grad, exp_avg, exp_avg_sq));
                for (fused, [param, exp_avg, exp_avg_sq]) in [true, false].into_iter().zip(&tables)
                {
                    let scalars = ops::SparseAdamScalars {
                        beta1: 0.9,
                        beta2: 0.999,
                        eps: 1e-8,
                        step_size: 0.01 * bias_correction2.sqrt() / bias_correction1,
                        fused,
                    };
                    ops::sparse_adam_(param, &grad, exp_avg, exp_avg_sq, &scalars).unwrap();
                }
            }
            for (a, b) in tables[0].iter().zip(&tables[1]) {
                assert!(a.equal(b), "{shape:?}: fused and op-by-op results differ");
            }
            assert!(!tables[0][0].equal(&start));
        }
    }

    #[test]
    fn fused_adam_gives_the_op_sequence_bits() {
        // Lengths around ATen's vector blocks and tails, one just below its parallel grain
        // (larger tensors fuse only on one thread); both forms of lerp (beta1 0.9: weight 0.1;
        // beta1 0.3: weight 0.7); 20 steps.
        tch::manual_seed(11);
        let cpu = tch::Device::Cpu;
        for (len, beta1) in [(1i64, 0.9), (47, 0.9), (1009, 0.3), (32_000, 0.9)] {
            let start = Tensor::randn([len], (Kind::Float, cpu));
            let tables: Vec<[Tensor; 3]> = (0..2)
                .map(|_| [start.copy(), start.zeros_like(), start.zeros_like()])
                .collect();
            for step in 1..=20 {
                let grad = Tensor::randn([len], (Kind::Float, cpu));
                let bias_correction1 = 1.0 - python_pow(beta1, step as f64);
                let bias_correction2 = 1.0 - python_pow(0.999, step as f64);
                for (fused, [param, exp_avg, exp_avg_sq]) in [true, false].into_iter().zip(&tables)
                {
                    let scalars = ops::AdamScalars {
                        beta1,
                        beta2: 0.999,
                        eps: 1e-8,
                        step_size: 0.01 / bias_correction1,
                        bias_correction2_sqrt: python_pow(bias_correction2, 0.5),
                        fused,
                    };
                    let ran_fused =
                        ops::adam_(param, &grad, exp_avg, exp_avg_sq, None, &scalars).unwrap();
                    assert_eq!(ran_fused, fused, "the fused loop applies on this machine");
                }
            }
            for (a, b) in tables[0].iter().zip(&tables[1]) {
                assert!(
                    a.equal(b),
                    "length {len}: fused and op-by-op results differ"
                );
            }
            assert!(!tables[0][0].equal(&start));
        }
    }
}

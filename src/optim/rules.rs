//! The update rules. Each line is the corresponding line of torch/optim/<name>.py's
//! `_single_tensor_<name>` in PyTorch 2.11 (quoted where it helps); the order of operations
//! and the scalars (computed in f64 as Python computes floats) are the same, so the rounding is.
//! tch's in-place ops hand back a second handle to the tensor they changed: `let _ =` drops it.

use super::{ops, Buffers, OptimizerKind, OptimizerSettings};
use anyhow::Result;
use tch::Tensor;

impl Buffers {
    /// One step of the rule the buffers were made for, on `param` from `grad`.
    pub(super) fn update(
        &mut self,
        settings: &OptimizerSettings,
        param: &mut Tensor,
        grad: &Tensor,
    ) -> Result<()> {
        match self {
            Buffers::Sgd { momentum_buffer } => sgd(settings, param, grad, momentum_buffer),
            Buffers::Adam {
                step,
                exp_avg,
                exp_avg_sq,
                max_exp_avg_sq,
            } => adam(
                settings,
                param,
                grad,
                step,
                exp_avg,
                exp_avg_sq,
                max_exp_avg_sq.as_mut(),
            ),
            Buffers::Rmsprop {
                step,
                square_avg,
                momentum_buffer,
                grad_avg,
            } => rmsprop(
                settings,
                param,
                grad,
                step,
                square_avg,
                momentum_buffer.as_mut(),
                grad_avg.as_mut(),
            ),
            Buffers::SparseAdam {
                step,
                exp_avg,
                exp_avg_sq,
            } => sparse_adam(settings, param, grad, step, exp_avg, exp_avg_sq),
        }
    }
}

/// torch.optim.SGD.
fn sgd(
    s: &OptimizerSettings,
    param: &mut Tensor,
    grad: &Tensor,
    momentum_buffer: &mut Option<Tensor>,
) -> Result<()> {
    let decayed;
    let mut grad = grad;
    if s.weight_decay != 0.0 {
        // grad = grad.add(param, alpha=weight_decay)
        decayed = ops::add(grad, param, s.weight_decay)?;
        grad = &decayed;
    }
    let nesterov;
    if s.momentum != 0.0 {
        let buf = match momentum_buffer {
            Some(buf) => {
                // buf.mul_(momentum).add_(grad, alpha=1 - dampening)
                let _ = buf.f_mul_scalar_(s.momentum)?;
                ops::add_(buf, grad, 1.0 - s.dampening)?;
                buf
            }
            // buf = grad.detach().clone()
            None => momentum_buffer.insert(grad.f_detach_copy()?),
        };
        if s.nesterov {
            // grad = grad.add(buf, alpha=momentum)
            nesterov = ops::add(grad, buf, s.momentum)?;
            grad = &nesterov;
        } else {
            grad = buf;
        }
    }
    // param.add_(grad, alpha=-lr)
    ops::add_(param, grad, -s.lr)
}

/// torch.optim.Adam and AdamW (Adam with `decoupled_weight_decay=True` in 2.11).
fn adam(
    s: &OptimizerSettings,
    param: &mut Tensor,
    grad: &Tensor,
    step: &mut f32,
    exp_avg: &mut Tensor,
    exp_avg_sq: &mut Tensor,
    max_exp_avg_sq: Option<&mut Tensor>,
) -> Result<()> {
    let (beta1, beta2) = s.betas;
    // step_t += 1
    *step += 1.0;
    let decayed;
    let mut grad = grad;
    if s.weight_decay != 0.0 {
        if s.kind == OptimizerKind::Adamw {
            // param.mul_(1 - lr * weight_decay)
            let _ = param.f_mul_scalar_(1.0 - s.lr * s.weight_decay)?;
        } else {
            // grad = grad.add(param, alpha=weight_decay)
            decayed = ops::add(grad, param, s.weight_decay)?;
            grad = &decayed;
        }
    }
    // step = _get_value(step_t): the float32 count as a Python float.
    let step = f64::from(*step);
    let bias_correction1 = 1.0 - python_pow(beta1, step);
    let bias_correction2 = 1.0 - python_pow(beta2, step);
    let scalars = ops::AdamScalars {
        beta1,
        beta2,
        eps: s.eps,
        step_size: s.lr / bias_correction1,
        // bias_correction2_sqrt = bias_correction2**0.5
        bias_correction2_sqrt: python_pow(bias_correction2, 0.5),
        fused: true,
    };
    // The moments, the bias-corrected denominator and the update: src/optim_ops.cpp.
    ops::adam_(
        param,
        grad,
        exp_avg,
        exp_avg_sq,
        max_exp_avg_sq.as_deref(),
        &scalars,
    )?;
    Ok(())
}

/// torch.optim.SparseAdam (torch/optim/_functional.py, `sparse_adam`): the scalars here, the
/// tensor ops in src/optim_ops.cpp.
fn sparse_adam(
    s: &OptimizerSettings,
    param: &mut Tensor,
    grad: &Tensor,
    step: &mut i64,
    exp_avg: &mut Tensor,
    exp_avg_sq: &mut Tensor,
) -> Result<()> {
    let (beta1, beta2) = s.betas;
    // state["step"] += 1
    *step += 1;
    let step_size = sparse_adam_step_size(s, *step);
    let scalars = ops::SparseAdamScalars {
        beta1,
        beta2,
        eps: s.eps,
        step_size,
        fused: true,
    };
    ops::sparse_adam_(param, grad, exp_avg, exp_avg_sq, &scalars)
}

/// SparseAdam's step size at step count `step` (the count after this step's `+= 1`).
pub fn sparse_adam_step_size(s: &OptimizerSettings, step: i64) -> f64 {
    let (beta1, beta2) = s.betas;
    // `beta ** step` is C's pow on the int as a double
    let step = step as f64;
    let bias_correction1 = 1.0 - python_pow(beta1, step);
    let bias_correction2 = 1.0 - python_pow(beta2, step);
    // step_size = lr * math.sqrt(bias_correction2) / bias_correction1 (a correctly rounded sqrt)
    s.lr * bias_correction2.sqrt() / bias_correction1
}

/// Python's `base ** exponent` on floats: C's pow(). The exponent goes through black_box
/// because LLVM rewrites pow(x, 0.5) as sqrt(x), and libm's pow(x, 0.5) is not always the
/// correctly rounded square root (it is one ulp off for about 1 x in 2000).
pub(super) fn python_pow(base: f64, exponent: f64) -> f64 {
    base.powf(std::hint::black_box(exponent))
}

/// torch.optim.RMSprop.
fn rmsprop(
    s: &OptimizerSettings,
    param: &mut Tensor,
    grad: &Tensor,
    step: &mut f32,
    square_avg: &mut Tensor,
    momentum_buffer: Option<&mut Tensor>,
    grad_avg: Option<&mut Tensor>,
) -> Result<()> {
    let alpha = s.alpha;
    // step += 1
    *step += 1.0;
    let decayed;
    let mut grad = grad;
    if s.weight_decay != 0.0 {
        // grad = grad.add(param, alpha=weight_decay)
        decayed = ops::add(grad, param, s.weight_decay)?;
        grad = &decayed;
    }
    // square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
    let _ = square_avg.f_mul_scalar_(alpha)?;
    ops::addcmul_(square_avg, grad, grad, 1.0 - alpha)?;
    let mut avg = match grad_avg {
        Some(grad_avg) => {
            // grad_avg.lerp_(grad, 1 - alpha)
            let _ = grad_avg.f_lerp_(grad, 1.0 - alpha)?;
            // avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
            let mut avg = ops::addcmul(square_avg, grad_avg, grad_avg, -1.0)?;
            let _ = avg.f_sqrt_()?;
            avg
        }
        // avg = square_avg.sqrt()
        None => square_avg.f_sqrt()?,
    };
    // avg = avg.add_(eps)
    let _ = avg.f_add_scalar_(s.eps)?;
    match momentum_buffer {
        Some(buf) => {
            // buf.mul_(momentum).addcdiv_(grad, avg)
            let _ = buf.f_mul_scalar_(s.momentum)?;
            let _ = buf.f_addcdiv_(grad, &avg)?;
            // param.add_(buf, alpha=-lr)
            ops::add_(param, buf, -s.lr)
        }
        // param.addcdiv_(grad, avg, value=-lr)
        None => ops::addcdiv_(param, grad, &avg, -s.lr),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bias_correction_uses_pow_as_python_does() {
        // Adam's bias_correction2_sqrt at step 1270 with beta2 0.999: CPython's
        // `(1 - 0.999 ** 1270.0) ** 0.5` is 0.8481431297801916 (glibc pow); the correctly
        // rounded square root, which LLVM would substitute, is 0.8481431297801915.
        let bias_correction2 = 1.0 - python_pow(0.999, 1270.0);
        assert_eq!(bias_correction2, 0.7193467685933388);
        assert_eq!(python_pow(bias_correction2, 0.5), 0.8481431297801916);
    }
}

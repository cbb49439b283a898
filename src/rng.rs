//! torch's default CPU generator state (`torch.get_rng_state()` / `torch.set_rng_state()`),
//! through src/rng_state.cpp since tch does not expose it. Batch orders are drawn from that
//! generator, so a checkpoint saves its state and a resumed run draws the same orders.

use anyhow::{anyhow, Result};
use std::os::raw::c_char;
use tch::Tensor;
use torch_sys::C_tensor;

extern "C" {
    fn regulab_get_cpu_rng_state(out: *mut *mut C_tensor) -> *mut c_char;
    fn regulab_set_cpu_rng_state(state: *const C_tensor) -> *mut c_char;
}

fn check(message: *mut c_char) -> Result<()> {
    crate::ffi::check(message).map_err(|e| anyhow!("torch generator state: {e}"))
}

/// A copy of the CPU generator's state (a uint8 tensor, as in Python).
pub fn cpu_state() -> Result<Tensor> {
    let mut out = std::ptr::null_mut();
    // SAFETY: `out` receives a fresh heap at::Tensor, the type tch's handles point to.
    check(unsafe { regulab_get_cpu_rng_state(&mut out) })?;
    crate::ffi::owned(out)
}

/// Puts a state from [`cpu_state`] back; libtorch rejects a tensor of the wrong size or type.
pub fn set_cpu_state(state: &Tensor) -> Result<()> {
    // SAFETY: a live tch handle, only read for the call.
    check(unsafe { regulab_set_cpu_rng_state(state.as_ptr()) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn a_saved_state_draws_the_same_numbers_again() {
        tch::manual_seed(7);
        let _ = Tensor::randperm(10, (Kind::Int64, Device::Cpu));
        let state = cpu_state().unwrap();
        let first = Tensor::randperm(1000, (Kind::Int64, Device::Cpu));
        let _ = Tensor::randn([100], (Kind::Float, Device::Cpu));
        set_cpu_state(&state).unwrap();
        let again = Tensor::randperm(1000, (Kind::Int64, Device::Cpu));
        assert!(first.equal(&again));
        assert!(set_cpu_state(&Tensor::zeros([3], (Kind::Uint8, Device::Cpu))).is_err());
    }
}

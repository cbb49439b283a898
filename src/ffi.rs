//! The Rust side of regulab's C++ shims (src/optim_ops.cpp, src/rng_state.cpp, whose
//! exceptions become messages through src/ffi_guard.h).

use anyhow::{bail, Result};
use std::ffi::CStr;
use std::os::raw::c_char;
use tch::Tensor;
use torch_sys::C_tensor;

/// Turns a shim's result (null for success, else a malloc'ed message) into a Result.
pub(crate) fn check(message: *mut c_char) -> Result<()> {
    if message.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null result is a NUL-terminated string from strdup, owned by us.
    let text = unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned();
    unsafe { libc::free(message.cast()) };
    // libtorch appends a C++ backtrace after the first line.
    bail!("{}", text.lines().next().unwrap_or("libtorch error"))
}

/// Wraps a tensor a shim allocated; tch frees it on drop.
pub(crate) fn owned(out: *mut C_tensor) -> Result<Tensor> {
    if out.is_null() {
        bail!("libtorch returned no tensor");
    }
    // SAFETY: `out` is a fresh heap at::Tensor, the type tch's handles point to.
    Ok(unsafe { Tensor::from_ptr(out) })
}

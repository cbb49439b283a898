//! libtorch reports failures (out of memory, a device error) by panicking inside tch. A run
//! catches them to record the failure in its document; the hook turns an uncaught one into
//! one error line.

use crate::memory;
use anyhow::{anyhow, Result};
use std::panic::AssertUnwindSafe;

/// Runs `work`, turning a libtorch failure (reported as a panic inside tch) into one line.
pub(super) fn guarded<T>(during: &str, work: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_failures(work) {
        Ok(result) => result,
        Err(payload) => Err(anyhow!(
            "{}",
            memory::describe_failure(&panic_text(payload.as_ref()), during)
        )),
    }
}

thread_local! {
    /// Set while a failure is caught and reported by the caller, so the hook stays quiet.
    static FAILURE_IS_HANDLED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// libtorch reports failures (a CUDA out-of-memory, a driver error) as panics inside tch.
/// Show an uncaught one as a single error line rather than a panic report with a backtrace hint.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        if FAILURE_IS_HANDLED.with(|handled| handled.get()) {
            return;
        }
        crate::util::erroutln!(
            "regulab: error: internal failure: {}",
            panic_message(info.payload())
        );
    }));
}

pub(super) fn catch_failures<T>(work: impl FnOnce() -> T) -> std::thread::Result<T> {
    FAILURE_IS_HANDLED.with(|handled| handled.set(true));
    let result = std::panic::catch_unwind(AssertUnwindSafe(work));
    FAILURE_IS_HANDLED.with(|handled| handled.set(false));
    result
}

/// The whole text of a panic (a libtorch error includes its C++ frames).
pub(super) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown error".into())
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    memory::describe_failure(&panic_text(payload), "running")
}

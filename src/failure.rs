//! libtorch failures as one line. libtorch reports errors (out of memory, a device error, a
//! bad index) by panicking inside tch or as `TchError::Torch`, and either text carries the
//! C++ frames after its first line. Training, model building, `eval` and `predict` all go
//! through these helpers, so a user (and a run document) sees only that first line.

use crate::memory;
use anyhow::{anyhow, Result};
use std::panic::AssertUnwindSafe;

/// Runs `work`, turning a libtorch failure (a panic inside tch, or an error whose text carries
/// C++ frames) into one line that says what was being done.
pub fn guarded<T>(during: &str, work: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_failures(work) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(one_line(error)),
        Err(payload) => Err(anyhow!(
            "{}",
            memory::describe_failure(&panic_text(payload.as_ref()), during)
        )),
    }
}

/// An error whose text carries libtorch's C++ frames ("Exception raised from ...",
/// "frame #0 ...") cut to its first line, in plain words; any other error unchanged.
pub fn one_line(error: anyhow::Error) -> anyhow::Error {
    let text = format!("{error:#}");
    if has_frames(&text) {
        anyhow!("{}", first_line(&text))
    } else {
        error
    }
}

/// A `TchError` (or any error) as one line: for `?` on tch's fallible calls.
pub fn torch(error: impl Into<anyhow::Error>) -> anyhow::Error {
    one_line(error.into())
}

fn has_frames(text: &str) -> bool {
    text.contains("Exception raised from") || text.contains("frame #")
}

/// The first line, without tch's "Internal torch error: " prefix, which says nothing to a user.
pub fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or("libtorch error")
        .replace("Internal torch error: ", "")
        .trim()
        .to_string()
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

/// Runs `work`, catching a panic (libtorch's way of failing inside tch) without the hook
/// printing it: the caller reports it.
pub fn catch_failures<T>(work: impl FnOnce() -> T) -> std::thread::Result<T> {
    let outer = FAILURE_IS_HANDLED.with(|handled| handled.replace(true));
    let result = std::panic::catch_unwind(AssertUnwindSafe(work));
    // Nested guards (eval inside a guarded call) leave the outer one's state as it was.
    FAILURE_IS_HANDLED.with(|handled| handled.set(outer));
    result
}

/// The whole text of a panic (a libtorch error includes its C++ frames).
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown error".into())
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    memory::describe_failure(&panic_text(payload), "running")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torch_errors_lose_their_frames() {
        let text = "Internal torch error: index out of range in self\nException raised from operator() at x.cpp:1\nframe #0: foo";
        let error = one_line(anyhow!("{text}").context("m.safetensors"));
        assert_eq!(
            error.to_string(),
            "m.safetensors: index out of range in self"
        );
        let plain = one_line(anyhow!("a: b"));
        assert_eq!(plain.to_string(), "a: b");
    }

    #[test]
    fn panics_become_one_line() {
        let error = guarded("predicting", || -> Result<()> {
            panic!("shape mismatch\nException raised from x\nframe #0: y")
        })
        .unwrap_err();
        assert_eq!(error.to_string(), "shape mismatch (while predicting)");
    }
}

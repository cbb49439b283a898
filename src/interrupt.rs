//! Stopping a run cleanly: SIGINT (Ctrl-C), SIGTERM (`kill`, `timeout`, docker, Slurm) and
//! SIGHUP (a closed terminal) set a flag that the training loop reads between steps; the run
//! then records its partial epoch, saves its document and returns an interrupted outcome,
//! which `main` turns into exit code 128 + signal. Nothing below `main` exits the process.
//!
//! A second signal while the first is being handled ends the process at once with the same
//! code (`_exit`, so no destructors race with libtorch's threads); the document on disk is
//! then the one saved after the last completed epoch.

use anyhow::{Context, Result};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// The signals that stop a run.
#[cfg(unix)]
pub const STOP_SIGNALS: [i32; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Shared by the signal handlers and every loop that should stop when asked.
#[derive(Debug, Clone, Default)]
pub struct Interrupter {
    requested: Arc<AtomicBool>,
    signal: Arc<AtomicUsize>,
}

impl Interrupter {
    /// An interrupter that only [`Interrupter::request`] triggers (tests, library use).
    pub fn new() -> Self {
        Self::default()
    }

    /// An interrupter wired to SIGINT, SIGTERM and SIGHUP.
    pub fn from_signals() -> Result<Self> {
        let interrupter = Self::new();
        #[cfg(unix)]
        for signal in STOP_SIGNALS {
            use signal_hook::flag;
            flag::register_conditional_shutdown(
                signal,
                128 + signal,
                Arc::clone(&interrupter.requested),
            )
            .context("installing the signal handlers")?;
            flag::register_usize(signal, Arc::clone(&interrupter.signal), signal as usize)
                .context("installing the signal handlers")?;
            flag::register(signal, Arc::clone(&interrupter.requested))
                .context("installing the signal handlers")?;
        }
        Ok(interrupter)
    }

    /// Asks loops to stop as if `signal` had arrived.
    pub fn request(&self, signal: i32) {
        self.signal.store(signal as usize, Ordering::SeqCst);
        self.requested.store(true, Ordering::SeqCst);
    }

    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// The signal that asked for the stop, once one has.
    pub fn signal(&self) -> Option<i32> {
        if !self.is_requested() {
            return None;
        }
        match self.signal.load(Ordering::SeqCst) {
            0 => Some(2),
            signal => Some(signal as i32),
        }
    }
}

/// `SIGINT`, `SIGTERM`, ... for messages.
pub fn signal_name(signal: i32) -> String {
    match signal {
        1 => "SIGHUP".into(),
        2 => "SIGINT".into(),
        15 => "SIGTERM".into(),
        other => format!("signal {other}"),
    }
}

/// The conventional exit code of a process ended by `signal`.
pub fn exit_code(signal: i32) -> u8 {
    (128 + signal).clamp(0, 255) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_names_its_signal() {
        let interrupter = Interrupter::new();
        assert_eq!(interrupter.signal(), None);
        interrupter.clone().request(15);
        assert_eq!(interrupter.signal(), Some(15));
        assert_eq!(signal_name(15), "SIGTERM");
        assert_eq!(exit_code(15), 143);
    }
}

//! Small leaf helpers every layer may use: atomic file writes, the lock beside a run
//! document, time stamps and sizes for people, console output that outlives its console.
//! Nothing here knows regulab's types.

use anyhow::{Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Console output that never ends or fails a run: when the reader of stdout or stderr goes
/// away (`regulab sweep ... | head -5`, a closed terminal), SIGPIPE is ignored (main.rs) and
/// the write's error is dropped here, so training goes on and its documents are written as
/// usual; a command that only prints ends quietly with what it would have printed lost.
/// Every line regulab prints goes through [`out!`], [`outln!`], [`errout!`] and
/// [`erroutln!`] rather than `print!`/`eprintln!`, which panic on such an error.
pub fn write_stdout(args: std::fmt::Arguments) {
    use std::io::Write;
    if !STDOUT_GONE.load(std::sync::atomic::Ordering::Relaxed) {
        let mut stdout = std::io::stdout().lock();
        if stdout.write_fmt(args).is_err() {
            STDOUT_GONE.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// As [`write_stdout`], for stderr.
pub fn write_stderr(args: std::fmt::Arguments) {
    use std::io::Write;
    if !STDERR_GONE.load(std::sync::atomic::Ordering::Relaxed)
        && std::io::stderr().lock().write_fmt(args).is_err()
    {
        STDERR_GONE.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Set after the first failed write: the reader is gone for good, so later output is
/// dropped without another system call.
static STDOUT_GONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static STDERR_GONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `print!` that drops its output when stdout is gone (see [`write_stdout`]).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::util::write_stdout(format_args!($($arg)*))
    };
}

/// `println!` that drops its output when stdout is gone (see [`write_stdout`]).
macro_rules! outln {
    () => {
        $crate::util::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::util::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprint!` that drops its output when stderr is gone (see [`write_stdout`]).
macro_rules! errout {
    ($($arg:tt)*) => {
        $crate::util::write_stderr(format_args!($($arg)*))
    };
}

/// `eprintln!` that drops its output when stderr is gone (see [`write_stdout`]).
macro_rules! erroutln {
    ($($arg:tt)*) => {
        $crate::util::write_stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {errout, erroutln, out, outln};

/// The current UTC time as documents record it (`2026-01-31T12:00:00.000Z`).
pub fn now_utc() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// A lock file beside a run document (`.NAME.lock`, holding the writer's process id), so
/// that two runs never write one document. A lock left by a process that no longer exists
/// (killed with SIGKILL, a power cut) is taken over.
#[derive(Debug)]
pub struct OutputLock {
    path: PathBuf,
}

impl OutputLock {
    pub fn acquire(document: &Path) -> Result<Self> {
        let name = document
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = document.with_file_name(format!(".{name}.lock"));
        for _ in 0..2 {
            let created = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path);
            match created {
                Ok(mut file) => {
                    use std::io::Write;
                    let _ = write!(file, "{}", std::process::id());
                    return Ok(OutputLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|text| text.trim().parse::<i32>().ok());
                    if let Some(pid) = holder.filter(|&pid| process_exists(pid)) {
                        anyhow::bail!(
                            "--out {}: another regulab run (process {pid}) is writing it; wait for it or choose another --out",
                            document.display()
                        );
                    }
                    // Stale: its writer is gone.
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!(
                            "--out {}: cannot create {}",
                            document.display(),
                            path.display()
                        )
                    })
                }
            }
        }
        anyhow::bail!(
            "--out {}: cannot take over the lock {}",
            document.display(),
            path.display()
        )
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn process_exists(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    #[cfg(unix)]
    {
        // Signal 0 checks existence without sending anything; EPERM means it exists.
        let result = unsafe { libc::kill(pid, 0) };
        result == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        true
    }
}

/// Writes `value` as JSON to a temp file beside `path`, then renames it over `path`: readers
/// see the old or the new file, never a half-written one. Errors name `path`; the temp file
/// never survives a failed write.
pub fn write_json_atomic(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).context("serializing the document")?;
    write_atomic(path, (text + "\n").as_bytes())
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "document".into());
    let temp = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    let written = std::fs::write(&temp, bytes).and_then(|()| std::fs::rename(&temp, path));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(error).with_context(|| format!("{}: cannot write", path.display()));
    }
    Ok(())
}

/// Bytes in binary units with one decimal, e.g. `4.7 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A number with 4 significant digits, without exponent between 1e-3 and 1e5: how every
/// value appears in the evidence (tests format expected values the same way).
pub fn format_number(value: f64) -> String {
    if !value.is_finite() {
        return if value.is_nan() {
            "NaN".into()
        } else {
            "inf".into()
        };
    }
    if value == 0.0 {
        return "0".into();
    }
    let magnitude = value.abs();
    if !(1e-3..1e5).contains(&magnitude) {
        return format!("{value:.3e}");
    }
    let decimals = (3 - magnitude.log10().floor() as i32).max(0) as usize;
    format!("{value:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.json");
        write_json_atomic(&path, &serde_json::json!({"a": 1})).unwrap();
        write_json_atomic(&path, &serde_json::json!({"a": 2})).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap()["a"],
            2
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_second_writer_is_refused_and_a_stale_lock_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let document = dir.path().join("run.json");
        let lock = OutputLock::acquire(&document).unwrap();
        let error = OutputLock::acquire(&document).unwrap_err().to_string();
        assert!(error.contains("another regulab run"), "{error}");
        drop(lock);
        // A lock whose process is gone.
        std::fs::write(dir.path().join(".run.json.lock"), "999999999").unwrap();
        let lock = OutputLock::acquire(&document).unwrap();
        drop(lock);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_failed_write_names_the_path_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("taken");
        std::fs::create_dir(&target).unwrap();
        let error = write_json_atomic(&target, &1).unwrap_err();
        assert!(format!("{error:#}").starts_with(&format!("{}: cannot write", target.display())));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(4_924_029), "4.7 MiB");
        assert_eq!(human_bytes(238_950_008), "227.9 MiB");
    }
}

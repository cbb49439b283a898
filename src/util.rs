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

/// A lock beside a run document (`.NAME.lock`), so that two runs never write one document.
/// It is an OS file lock (`flock`): the kernel releases it when its process ends, however it
/// ends (SIGKILL, a power cut, a zombie nobody reaps), so a dead run never blocks the next
/// one. The file holds the writer's process id, only for the message.
#[derive(Debug)]
pub struct OutputLock {
    path: PathBuf,
    file: std::fs::File,
}

impl OutputLock {
    pub fn acquire(document: &Path) -> Result<Self> {
        let name = document
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = document.with_file_name(format!(".{name}.lock"));
        // A lock taken on a file that its holder removed (on release) locks nothing: try again.
        for _ in 0..100 {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .with_context(|| {
                    format!(
                        "--out {}: cannot create {}",
                        document.display(),
                        path.display()
                    )
                })?;
            if !try_lock(&file) {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim();
                let who = if holder.is_empty() {
                    "another regulab run".to_string()
                } else {
                    format!("another regulab run (process {holder})")
                };
                anyhow::bail!(
                    "--out {}: {who} is writing it; wait for it or choose another --out",
                    document.display()
                );
            }
            if same_file(&file, &path) {
                use std::io::{Seek, Write};
                let mut file = file;
                let _ = file.set_len(0);
                let _ = file.rewind();
                let _ = write!(file, "{}", std::process::id());
                return Ok(OutputLock { path, file });
            }
        }
        anyhow::bail!(
            "--out {}: cannot take the lock {}",
            document.display(),
            path.display()
        )
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        // Removed while still held, so nobody can lock this file after it is gone unnoticed.
        let _ = std::fs::remove_file(&self.path);
        let _ = &self.file;
    }
}

#[cfg(unix)]
fn try_lock(file: &std::fs::File) -> bool {
    use std::os::unix::io::AsRawFd;
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

#[cfg(not(unix))]
fn try_lock(_file: &std::fs::File) -> bool {
    true
}

/// Whether `path` still names the open `file` (its holder may have removed it meanwhile).
#[cfg(unix)]
fn same_file(file: &std::fs::File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(open), Ok(named)) => open.ino() == named.ino() && open.dev() == named.dev(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &std::fs::File, _path: &Path) -> bool {
    true
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

/// `n` and the noun, plural unless `n` is 1: "1 run", "5 runs".
pub fn count_noun(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The output rule for a command that writes one file (a figure, a report, a CSV): the file
/// may not be one of the command's inputs (never, even with `overwrite`), and a file already
/// there is replaced only when `replaceable` recognizes it as this command's own kind of
/// output, or with `overwrite`. Errors name the flag and the path.
pub fn check_output_file(
    flag: &str,
    output: &Path,
    inputs: &[PathBuf],
    replaceable: impl Fn(&[u8]) -> bool,
    overwrite: bool,
) -> Result<()> {
    let shown = output.display();
    if output.is_dir() {
        anyhow::bail!("{flag} {shown}: is a folder; name the file to write");
    }
    let Ok(real) = output.canonicalize() else {
        return Ok(()); // nothing there yet
    };
    if inputs
        .iter()
        .any(|input| input.canonicalize().is_ok_and(|i| i == real))
    {
        anyhow::bail!("{flag} {shown}: is also an input; name another file to write");
    }
    let head = std::fs::read(output)
        .map(|bytes| bytes.into_iter().take(4096).collect::<Vec<u8>>())
        .unwrap_or_default();
    if !overwrite && !replaceable(&head) {
        anyhow::bail!(
            "{flag} {shown}: holds a file this command did not write; choose another name, or pass --overwrite to replace it"
        );
    }
    Ok(())
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

//! A sweep's runs as separate processes, up to `jobs` at a time: each is `regulab run` on its
//! plan file (`DIR/plan/NAME.json`) with its own thread budget, its console output in
//! `DIR/logs/NAME.log`, so that lines never interleave. This process prints one line when a
//! run starts or ends, with the total so far; the numbers are those of `--jobs 1`, since each
//! run is the same code on the same configuration.

use super::folder::{missing_run, run_from_document};
use super::{plan_path, SweepPlan, SweepPoint};
use crate::interrupt::Interrupter;
use crate::schema::{load_run, SweepRun};
use anyhow::{Context, Result};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Running {
    index: usize,
    /// Its place in `plan.devices`, when runs are spread over devices.
    device: Option<usize>,
    child: Child,
    started: Instant,
}

/// Threads per run: the given number, or the cores shared out among the jobs.
pub fn threads_per_run(plan: &SweepPlan) -> usize {
    plan.threads
        .unwrap_or_else(|| (crate::device::available_cores() / plan.jobs.max(1)).max(1))
}

/// Trains every point with up to `plan.jobs` processes; `record` receives each finished run.
/// Returns the signal that stopped the sweep (its runs are then stopped too, and recorded
/// as they ended).
pub fn run_all(
    plan: &SweepPlan,
    points: &[SweepPoint],
    interrupter: &Interrupter,
    record: &mut dyn FnMut(SweepRun) -> Result<()>,
) -> Result<Option<i32>> {
    let logs = plan.folder.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| {
        format!(
            "--out {}: cannot create {}",
            plan.folder.display(),
            logs.display()
        )
    })?;
    let threads = threads_per_run(plan);
    // The console lines name the command the user ran (sweep, cv or tune).
    let command = super::command_name(&std::env::args().collect::<Vec<_>>());
    let total = points.len();
    let mut next = 0;
    let mut done = 0;
    let mut running: Vec<Running> = Vec::new();
    let mut signal = None;
    while next < total || !running.is_empty() {
        if signal.is_none() {
            signal = interrupter.signal();
            if let Some(signal) = signal {
                for run in &running {
                    // The runs end between two steps and record how far they got.
                    unsafe { libc::kill(run.child.id() as i32, signal) };
                }
            }
        }
        while signal.is_none() && next < total && running.len() < plan.jobs {
            let point = &points[next];
            let device = (!plan.devices.is_empty()).then(|| {
                (0..plan.devices.len())
                    .find(|d| running.iter().all(|r| r.device != Some(*d)))
                    .unwrap_or(0)
            });
            let device_name = device.map(|d| plan.devices[d].as_str());
            running.push(Running {
                index: next,
                device,
                child: spawn(plan, point, (threads, device_name), &logs)?,
                started: Instant::now(),
            });
            next += 1;
            crate::util::erroutln!(
                "regulab {command}: started {} ({} running, {done} of {total} done)",
                name(point),
                running.len()
            );
        }
        let mut still = Vec::new();
        for mut run in running {
            match run.child.try_wait()? {
                Some(_) => {
                    done += 1;
                    let point = &points[run.index];
                    let result = finished(plan, point, &logs);
                    // A tune's trial that stopped at its rung (no signal here) is paused, not
                    // interrupted: the promoted ones continue it.
                    let paused = command == "tune"
                        && signal.is_none()
                        && result.status == crate::schema::RunStatus::Interrupted;
                    crate::util::erroutln!(
                        "regulab {command}: {} {} after {:.1} s ({done} of {total} done)",
                        name(point),
                        if paused {
                            "paused at its rung".to_string()
                        } else {
                            result.status.to_string()
                        },
                        run.started.elapsed().as_secs_f64()
                    );
                    record(result)?;
                }
                None => still.push(run),
            }
        }
        running = still;
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(signal)
}

fn name(point: &SweepPoint) -> &str {
    point.file.trim_end_matches(".json")
}

fn spawn(
    plan: &SweepPlan,
    point: &SweepPoint,
    (threads, device): (usize, Option<&str>),
    logs: &Path,
) -> Result<Child> {
    let exe = std::env::current_exe().context("cannot find the regulab binary to start runs")?;
    let log_path = logs.join(point.file.replace(".json", ".log"));
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("{}: cannot create", log_path.display()))?;
    let mut command = Command::new(exe);
    command
        .arg("run")
        .arg(plan_path(&plan.folder, &point.file))
        .args(["--quiet", "--set", &format!("threads={threads}")])
        .stdin(Stdio::null())
        // Its own process group: Ctrl-C reaches only the sweep, which passes it on once (a
        // second signal would end a run at once, unrecorded).
        .process_group(0)
        .stdout(log.try_clone()?)
        .stderr(log);
    if plan.overwrite {
        command.arg("--overwrite");
    }
    if let Some(device) = device {
        command.args(["--set", &format!("device={device}")]);
    }
    command
        .spawn()
        .with_context(|| format!("cannot start the run {}", point.file))
}

/// A finished process's run, read from its document; without one, its log's last line says
/// why it failed.
fn finished(plan: &SweepPlan, point: &SweepPoint, logs: &Path) -> SweepRun {
    match load_run(&plan.folder.join(&point.file)) {
        Ok(document) => run_from_document(point, &document),
        Err(_) => {
            let log = std::fs::read_to_string(logs.join(point.file.replace(".json", ".log")))
                .unwrap_or_default();
            let message = log
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("the run ended without a document")
                .to_string();
            missing_run(point, message)
        }
    }
}

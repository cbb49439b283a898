//! `--executor slurm`: a sweep's pending runs as one Slurm job array. The batch script
//! (`DIR/slurm/array.sh`) lists the plan files of this submission and runs
//! `regulab run PLAN --quiet` for `$SLURM_ARRAY_TASK_ID`; each task's output goes to
//! `DIR/slurm/JOBID_TASK.out`, the task list to `DIR/slurm/tasks-JOBID.txt`, and every
//! submission is appended to `DIR/slurm/jobs.json`. Pending means: no document, or one that
//! is neither completed nor diverged, and no task of an earlier array still queued or
//! running for it. `--wait` polls `squeue` until the array has left the queue, then writes
//! the summary from the documents.

use super::folder::{self, document, is_finished, missing_run, run_from_document};
use super::{plan_path, SweepOutcome, SweepPlan, SweepPoint};
use crate::interrupt::Interrupter;
use crate::schema::RunStatus;
use crate::util::{now_utc, write_atomic, write_json_atomic};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The `--slurm-*` flags and `--wait`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    pub time: Option<String>,
    pub cpus_per_task: Option<usize>,
    pub gpus_per_task: Option<usize>,
    /// Passed to sbatch as they are (`--slurm-arg`, repeatable).
    pub extra: Vec<String>,
    /// Block until the array has ended, then write the summary.
    pub wait: bool,
}

/// One submission, as `DIR/slurm/jobs.json` lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub job_id: String,
    pub submitted_at: String,
    /// Plan names (`lambda=0.1,seed=2.json`); task N of the array trains `tasks[N]`.
    pub tasks: Vec<String>,
}

/// What a Slurm sweep did.
pub enum Submitted {
    /// Submitted without `--wait`: the job id and the number of tasks.
    Queued { job_id: String, tasks: usize },
    /// Nothing was pending (and no `--wait`): runs finished, and runs still queued.
    Nothing { finished: usize, queued: usize },
    /// With `--wait`: the summary once the array ended (or at once when nothing was pending).
    Waited(SweepOutcome),
}

fn slurm_dir(folder: &Path) -> PathBuf {
    folder.join("slurm")
}

/// The jobs submitted for this folder so far (none when there is no `jobs.json`).
pub fn jobs(folder: &Path) -> Result<Vec<Job>> {
    let path = slurm_dir(folder).join("jobs.json");
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a list of jobs", path.display()))
}

/// A program on PATH, or the one-line error naming the flag and the program.
fn program(name: &str, flag: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow!("{flag}: {name} not found on PATH"))
}

/// `squeue -h -r -j JOBID -o "%i %T"`: the tasks still in the queue, as (`JOBID_N`, state).
/// A job Slurm no longer knows is an empty list.
fn squeue(squeue: &Path, job_id: &str) -> Result<Vec<(String, String)>> {
    let output = Command::new(squeue)
        .args(["-h", "-r", "-j", job_id, "-o", "%i %T"])
        .output()
        .with_context(|| format!("cannot start {}", squeue.display()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("Invalid job id") {
            return Ok(Vec::new());
        }
        bail!("squeue: {}", first_line(&stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.trim().split_once(' '))
        .map(|(id, state)| (id.to_string(), state.trim().to_string()))
        .collect())
}

fn first_line(text: &str) -> &str {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(no message)")
        .trim()
}

/// Plan names of tasks still queued or running, with their task id and Slurm state; empty
/// without `jobs.json` or without `squeue` on PATH.
pub fn queued_tasks(folder: &Path) -> Result<BTreeMap<String, (String, String)>> {
    let jobs = jobs(folder)?;
    let mut queued = BTreeMap::new();
    if jobs.is_empty() {
        return Ok(queued);
    }
    let Ok(squeue_path) = program("squeue", "squeue") else {
        return Ok(queued);
    };
    for job in &jobs {
        for (id, state) in squeue(&squeue_path, &job.job_id)? {
            let index = id
                .rsplit_once('_')
                .and_then(|(_, n)| n.parse::<usize>().ok());
            if let Some(task) = index.and_then(|n| job.tasks.get(n)) {
                queued.insert(task.clone(), (id, state));
            }
        }
    }
    Ok(queued)
}

/// Quotes a word for bash.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The batch script: task N runs `regulab run` on the N-th plan file.
fn script(exe: &Path, plans: &[PathBuf], threads: usize, overwrite: bool) -> String {
    let mut text = String::from(
        "#!/bin/bash\n# Written by `regulab sweep --executor slurm`: task N of the array trains the N-th plan.\nset -euo pipefail\nplans=(\n",
    );
    for plan in plans {
        text += &format!("  {}\n", quote(&plan.display().to_string()));
    }
    text += ")\n";
    text += &format!(
        "exec {} run \"${{plans[$SLURM_ARRAY_TASK_ID]}}\" --quiet --set threads={threads}{}\n",
        quote(&exe.display().to_string()),
        if overwrite { " --overwrite" } else { "" }
    );
    text
}

/// Submits the plan's pending runs as one job array; with `--wait`, waits and summarizes.
pub fn submit(
    plan: &SweepPlan,
    options: &SlurmOptions,
    points: &[SweepPoint],
    interrupter: &Interrupter,
) -> Result<Submitted> {
    let sbatch = program("sbatch", "--executor slurm")?;
    let squeue_path = if options.wait {
        Some(program("squeue", "--wait")?)
    } else {
        None
    };
    let folder = &plan.folder;
    let queued = queued_tasks(folder)?;
    let mut finished = 0;
    let pending: Vec<&SweepPoint> = points
        .iter()
        .filter(|point| {
            if queued.contains_key(&point.file) {
                return false;
            }
            if !plan.overwrite && is_finished(document(folder, point).as_ref()) {
                finished += 1;
                return false;
            }
            true
        })
        .collect();
    if pending.is_empty() {
        return nothing_pending(
            plan,
            points,
            (finished, queued.len()),
            squeue_path,
            interrupter,
        );
    }
    let dir = slurm_dir(folder);
    std::fs::create_dir_all(&dir).with_context(|| {
        format!(
            "--out {}: cannot create {}",
            folder.display(),
            dir.display()
        )
    })?;
    let cwd = std::env::current_dir().context("--executor slurm: no current directory")?;
    let exe = std::env::current_exe()
        .context("--executor slurm: cannot find the regulab binary for the tasks")?;
    let threads = options.cpus_per_task.or(plan.threads).unwrap_or(1);
    let plans: Vec<PathBuf> = pending.iter().map(|p| plan_path(folder, &p.file)).collect();
    let script_path = cwd.join(dir.join("array.sh"));
    write_atomic(
        &script_path,
        script(&exe, &plans, threads, plan.overwrite).as_bytes(),
    )?;
    let array = ArrayRequest {
        folder,
        cwd: &cwd,
        dir: &dir,
        tasks: pending.len(),
        threads,
        script: &script_path,
    };
    let job_id = sbatch_array(&sbatch, options, &array)?;
    let tasks: Vec<String> = pending.iter().map(|p| p.file.clone()).collect();
    write_atomic(
        &dir.join(format!("tasks-{job_id}.txt")),
        (tasks.join("\n") + "\n").as_bytes(),
    )?;
    let mut all = jobs(folder)?;
    all.push(Job {
        job_id: job_id.clone(),
        submitted_at: now_utc(),
        tasks: tasks.clone(),
    });
    write_json_atomic(&dir.join("jobs.json"), &all)?;
    crate::util::erroutln!(
        "regulab sweep: submitted {} of {} runs as Slurm job array {job_id}; output in {}",
        tasks.len(),
        points.len(),
        dir.join(format!("{job_id}_*.out")).display()
    );
    match &squeue_path {
        None => Ok(Submitted::Queued {
            job_id,
            tasks: tasks.len(),
        }),
        Some(squeue_path) => {
            // Earlier arrays still running count too: the summary waits for them.
            let ids: Vec<String> = all.into_iter().map(|j| j.job_id).collect();
            let signal = wait_for(squeue_path, &ids, interrupter)?;
            Ok(Submitted::Waited(summarize_after(plan, points, signal)?))
        }
    }
}

/// Nothing left to submit: says so, and with `--wait` waits for what is queued and
/// summarizes.
fn nothing_pending(
    plan: &SweepPlan,
    points: &[SweepPoint],
    (finished, queued): (usize, usize),
    squeue_path: Option<PathBuf>,
    interrupter: &Interrupter,
) -> Result<Submitted> {
    let folder = &plan.folder;
    crate::util::erroutln!(
        "regulab sweep: nothing to submit: {finished} of {} runs finished, {} queued in Slurm",
        points.len(),
        queued
    );
    let Some(squeue_path) = &squeue_path else {
        return Ok(Submitted::Nothing { finished, queued });
    };
    let ids: Vec<String> = jobs(folder)?.into_iter().map(|j| j.job_id).collect();
    let signal = wait_for(squeue_path, &ids, interrupter)?;
    Ok(Submitted::Waited(summarize_after(plan, points, signal)?))
}

/// What one `sbatch` call submits.
struct ArrayRequest<'a> {
    folder: &'a Path,
    cwd: &'a Path,
    dir: &'a Path,
    tasks: usize,
    threads: usize,
    script: &'a Path,
}

/// Submits the array with sbatch; returns its job id.
fn sbatch_array(sbatch: &Path, options: &SlurmOptions, array: &ArrayRequest) -> Result<String> {
    let name = array
        .folder
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "sweep".into());
    let mut command = Command::new(sbatch);
    command
        .arg("--parsable")
        .arg(format!("--array=0-{}", array.tasks - 1))
        .arg(format!("--job-name=regulab-{name}"))
        .arg(format!("--chdir={}", array.cwd.display()))
        .arg(format!(
            "--output={}",
            array.cwd.join(array.dir.join("%A_%a.out")).display()
        ))
        .arg(format!("--cpus-per-task={}", array.threads));
    if let Some(partition) = &options.partition {
        command.arg(format!("--partition={partition}"));
    }
    if let Some(time) = &options.time {
        command.arg(format!("--time={time}"));
    }
    if let Some(gpus) = options.gpus_per_task {
        command.arg(format!("--gpus-per-task={gpus}"));
    }
    command.args(&options.extra).arg(array.script);
    let output = command
        .output()
        .with_context(|| format!("--executor slurm: cannot start {}", sbatch.display()))?;
    if !output.status.success() {
        bail!(
            "--executor slurm: {}",
            first_line(&String::from_utf8_lossy(&output.stderr))
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let job_id = first_line(&stdout)
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    if job_id.is_empty() || !job_id.chars().all(|c| c.is_ascii_digit()) {
        bail!(
            "--executor slurm: sbatch printed no job id: {}",
            first_line(&stdout)
        );
    }
    Ok(job_id)
}

/// Polls `squeue` until none of `ids` is queued or running; returns the signal that stopped
/// the waiting (the array keeps running then).
fn wait_for(squeue_path: &Path, ids: &[String], interrupter: &Interrupter) -> Result<Option<i32>> {
    let mut last = String::new();
    loop {
        let mut states: BTreeMap<String, usize> = BTreeMap::new();
        for id in ids {
            for (_, state) in squeue(squeue_path, id)? {
                *states.entry(state).or_default() += 1;
            }
        }
        if states.is_empty() {
            return Ok(None);
        }
        let line: Vec<String> = states.iter().map(|(s, n)| format!("{n} {s}")).collect();
        let line = line.join(", ");
        if line != last {
            crate::util::erroutln!("regulab sweep: waiting for Slurm: {line}");
            last = line;
        }
        for _ in 0..20 {
            if let Some(signal) = interrupter.signal() {
                crate::util::erroutln!(
                    "regulab sweep: stopped waiting; the array keeps running (scancel {} stops it)",
                    ids.join(" ")
                );
                return Ok(Some(signal));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The summary from every planned run's document; a run without one is listed as failed
/// with its task output's last line.
fn summarize_after(
    plan: &SweepPlan,
    points: &[SweepPoint],
    signal: Option<i32>,
) -> Result<SweepOutcome> {
    let folder = &plan.folder;
    let jobs = jobs(folder)?;
    let runs = points
        .iter()
        .map(|point| match document(folder, point) {
            Some(doc) => run_from_document(point, &doc),
            None => missing_run(point, last_output_line(folder, &jobs, &point.file)),
        })
        .collect::<Vec<_>>();
    let summary = folder::write_summary_of(
        folder,
        points[0].config.model_kind(),
        &plan_swept(plan),
        runs,
    )?;
    let unsuccessful = summary
        .runs
        .iter()
        .filter(|r| r.status != RunStatus::Completed)
        .count();
    Ok(SweepOutcome {
        summary,
        unsuccessful,
        signal,
    })
}

fn plan_swept(plan: &SweepPlan) -> Vec<String> {
    plan.swept().iter().map(|k| k.to_string()).collect()
}

/// The last line the task that trained `file` printed (its latest submission).
fn last_output_line(folder: &Path, jobs: &[Job], file: &str) -> String {
    let task = jobs.iter().rev().find_map(|job| {
        let n = job.tasks.iter().position(|t| t == file)?;
        Some(format!("{}_{n}.out", job.job_id))
    });
    let Some(task) = task else {
        return "the run has no document".into();
    };
    let path = slurm_dir(folder).join(&task);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    match text.lines().rev().find(|l| !l.trim().is_empty()) {
        Some(line) => format!("Slurm task {task}: {}", line.trim()),
        None => format!("Slurm task {task} left no document and no output"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_maps_task_ids_to_plans() {
        let text = script(
            Path::new("/opt/regulab"),
            &[
                PathBuf::from("s/plan/a.json"),
                PathBuf::from("s/plan/it's.json"),
            ],
            2,
            false,
        );
        assert!(
            text.contains("  's/plan/a.json'\n  's/plan/it'\\''s.json'\n)"),
            "{text}"
        );
        assert!(text.contains(
            "exec '/opt/regulab' run \"${plans[$SLURM_ARRAY_TASK_ID]}\" --quiet --set threads=2\n"
        ));
    }
}

//! `regulab report`: run documents and sweep summaries as one self-contained HTML page:
//! every run's curves as interactive charts (values on hover, runs toggled together,
//! the cursor's epoch shared by all charts), the sweep or cross-validation table, and each
//! run's `explain` findings.
//!
//! The page needs no network: the chart library (uPlot, MIT, vendored under
//! `assets/uplot/`), the page's own script and style, and the data are all inlined. The
//! curves are computed here ([`charts`]), so the script only draws them.

mod charts;
mod page;
mod tune_table;

use crate::plot::document_kind;
use crate::schema::{
    load_run, load_sweep, load_tune, RunDocument, SweepSummary, TuneSummary, RUN_KIND, SWEEP_KIND,
    TUNE_KIND,
};
use anyhow::{anyhow, bail, Result};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// What to put in the report and where to write it.
#[derive(Debug, Clone)]
pub struct ReportRequest {
    /// Run documents, sweep summaries, and folders holding them.
    pub inputs: Vec<PathBuf>,
    /// The HTML file to write.
    pub output: PathBuf,
}

/// What the written report holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportOutcome {
    pub runs: usize,
    pub tables: usize,
    pub charts: usize,
}

/// The documents a report shows, in the order given (a sweep folder's runs in the
/// summary's order).
#[derive(Debug, Default)]
pub(crate) struct Inputs {
    pub(crate) runs: Vec<(PathBuf, RunDocument)>,
    pub(crate) tables: Vec<(PathBuf, SweepSummary)>,
    /// Tune summaries (`tune.json`): their trials tables.
    pub(crate) tunes: Vec<(PathBuf, TuneSummary)>,
    /// Canonical paths already read, so a file named twice appears once.
    seen: HashSet<PathBuf>,
}

/// `regulab report`: reads every input first (a bad file stops before anything is written),
/// then writes the page atomically.
pub fn run_report(request: &ReportRequest) -> Result<ReportOutcome> {
    let output = &request.output;
    if output.is_dir() {
        bail!(
            "{}: is a folder; name the HTML file to write",
            output.display()
        );
    }
    let inputs = collect_inputs(&request.inputs)?;
    if inputs.runs.is_empty() {
        let names: Vec<String> = request
            .inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        bail!("{}: no run documents found", names.join(", "));
    }
    let charts = charts::build_charts(&inputs.runs);
    let html = page::render(&inputs, &charts);
    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| anyhow!("{}: cannot create the folder: {e}", parent.display()))?;
    }
    crate::util::write_atomic(output, html.as_bytes())
        .map_err(|e| anyhow!("{}: cannot write: {}", output.display(), e.root_cause()))?;
    Ok(ReportOutcome {
        runs: inputs.runs.len(),
        tables: inputs.tables.len(),
        charts: charts.len(),
    })
}

fn collect_inputs(paths: &[PathBuf]) -> Result<Inputs> {
    let mut inputs = Inputs::default();
    for path in paths {
        let metadata =
            std::fs::metadata(path).map_err(|e| anyhow!("{}: cannot read: {e}", path.display()))?;
        if metadata.is_dir() {
            add_folder(path, &mut inputs)?;
        } else {
            add_file(path, &mut inputs)?;
        }
    }
    Ok(inputs)
}

/// A run document, or a sweep summary with the runs it lists; else an error.
fn add_file(path: &Path, inputs: &mut Inputs) -> Result<()> {
    if !inputs.first_time(path) {
        return Ok(());
    }
    if document_kind(path).as_deref() == Some(TUNE_KIND) {
        // With the chosen trial's runs, whose curves the page draws.
        let summary = load_tune(path)?;
        let folder = path.parent().unwrap_or(Path::new(""));
        let chosen: Vec<PathBuf> = summary
            .choice
            .iter()
            .flat_map(|c| summary.trials[c.trial].runs.iter().map(|r| folder.join(r)))
            .collect();
        inputs.tunes.push((path.to_path_buf(), summary));
        for file in chosen.iter().filter(|f| f.is_file()) {
            add_file(file, inputs)?;
        }
    } else if document_kind(path).as_deref() == Some(SWEEP_KIND) {
        let summary = load_sweep(path)?;
        let folder = path.parent().unwrap_or(Path::new(""));
        let files: Vec<PathBuf> = summary.runs.iter().map(|r| folder.join(&r.file)).collect();
        inputs.tables.push((path.to_path_buf(), summary));
        for file in files {
            if file.is_file() {
                add_file(&file, inputs)?;
            } else {
                crate::util::erroutln!(
                    "regulab: warning: {}: listed in {} but missing; skipped",
                    file.display(),
                    path.display()
                );
            }
        }
    } else {
        // load_run names the file and says what is wrong with it.
        inputs.runs.push((path.to_path_buf(), load_run(path)?));
    }
    Ok(())
}

/// Every run document in `folder` (not its subfolders) and its summary.json. Other JSON
/// files are skipped with a warning; a broken run document or summary is an error.
fn add_folder(folder: &Path, inputs: &mut Inputs) -> Result<()> {
    let entries = std::fs::read_dir(folder)
        .map_err(|e| anyhow!("{}: cannot read the folder: {e}", folder.display()))?;
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|e| anyhow!("{}: cannot read the folder: {e}", folder.display()))?;
        let path = entry.path();
        let is_json = path.extension().is_some_and(|e| e == "json");
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if is_json && !hidden && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    let mut kinds: Vec<(PathBuf, Option<String>)> = files
        .into_iter()
        .map(|path| {
            let kind = document_kind(&path);
            (path, kind)
        })
        .collect();
    // The summary first: it adds its runs in the sweep's order (`lambda=10` after
    // `lambda=2`); the other run documents follow by name.
    kinds.sort_by_key(|(_, kind)| kind.as_deref() != Some(SWEEP_KIND));
    // A tune's folder: its trials table and the chosen trial's runs, not every trial's.
    if let Some((path, _)) = kinds.iter().find(|(_, k)| k.as_deref() == Some(TUNE_KIND)) {
        return add_file(path, inputs);
    }
    for (path, kind) in kinds {
        match kind.as_deref() {
            Some(RUN_KIND) | Some(SWEEP_KIND) => add_file(&path, inputs)?,
            _ => crate::util::erroutln!(
                "regulab: warning: {}: not a regulab run or sweep JSON; skipped",
                path.display()
            ),
        }
    }
    Ok(())
}

impl Inputs {
    /// True the first time a file is met (by its canonical path).
    fn first_time(&mut self, path: &Path) -> bool {
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        self.seen.insert(key)
    }
}

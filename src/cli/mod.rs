//! The command line: clap definitions, and turning flags into the library's typed requests.
//! Nothing outside this module and `main.rs` knows clap.
//!
//! ModelKind flags are read as text and set into a configuration [`Layer`], so a flag, a
//! config-file key and `--set key=value` are parsed and validated by the same code
//! (`config`), and every error names what the user typed.

mod data;
mod help;
mod train_flags;
mod tune_flags;

use crate::config::{self, Layer, Origin};
use crate::experiment::{self, RunContext, RunResult};
use crate::info::SystemInfo;
use crate::interrupt::Interrupter;
use crate::schema::RunStatus;
use crate::sweep;
use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

pub use help::command;
pub use train_flags::{MfFlags, MlpFlags};

#[derive(Debug, Parser)]
#[command(
    name = "regulab",
    version,
    about = "Regularization experiments on PyTorch's C++ core: matrix factorization and an MLP, with loss curves in JSON"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// One value per process, parsed once: boxing the large flag sets would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Versions, CUDA devices, cuDNN and CPU threads
    Info {
        /// Print a JSON object instead of text
        #[arg(long)]
        json: bool,
    },
    /// Inspect and fetch data sets
    Data {
        #[command(subcommand)]
        command: data::DataCommand,
    },
    /// Train matrix factorization on ratings and write its curves to JSON
    Mf(MfFlags),
    /// Train the lecture's MLP on MNIST-format images and write its curves to JSON
    Mlp(MlpFlags),
    /// Run the experiment a config file describes (TOML or JSON naming its command)
    Run(RunFileArgs),
    /// Run a recorded run's configuration again (same seed, same numbers on CPU)
    Rerun(RerunArgs),
    /// Continue an interrupted, killed or failed run from its last checkpoint, in the same document
    Resume(ResumeArgs),
    /// Measure a saved model (a .safetensors file or a run document) on any data and split
    Eval(EvalArgs),
    /// Predict with a saved model: top items for a user, ratings for pairs, classes of images
    Predict(PredictArgs),
    /// Train every combination of listed values (flags with comma lists, or a config file's [sweep] table)
    Sweep(train_flags::SweepArgs),
    /// Cross-validate one setting: train it on every fold (u1..u5, or seeded random splits) and report mean and std
    Cv(train_flags::CvArgs),
    /// Search trainer settings (random or grid, with ASHA early stopping) and choose on validation only; the choice's test metric is reported once
    Tune(tune_flags::TuneArgs),
    /// Draw runs' curves (losses, penalty share, train/validation/test metric, cost vs accuracy, weight norms) or a sweep's summary to SVG or PNG
    Plot(PlotArgs),
    /// Explain runs in plain language, with their numbers and what to do (overfitting, penalty, weight norms, divergence)
    Explain(ExplainArgs),
    /// Write one self-contained HTML page: every run's curves as interactive charts, the sweep table, the findings
    Report(ReportArgs),
    /// List a sweep or cv folder's planned runs: status, epochs, elapsed and estimated time left, Slurm's state of queued tasks
    Status(FolderArgs),
    /// Write a sweep or cv folder's summary.json and summary.csv from the run documents it holds
    Summarize(FolderArgs),
}

#[derive(Debug, Args)]
pub struct FolderArgs {
    /// The folder of `regulab sweep` or `regulab cv` (its --out, holding plan/)
    #[arg(value_name = "DIR")]
    pub folder: PathBuf,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Run documents, sweep summaries (with the runs they list), or folders (every run
    /// document in it, and its summary.json when it holds a sweep or cross-validation)
    #[arg(required = true, value_name = "RUN.json|DIR")]
    pub inputs: Vec<PathBuf>,
    /// The HTML file to write (written whole or not at all; it opens without network)
    #[arg(short, long, value_name = "REPORT.html")]
    pub output: PathBuf,
    /// Replace a file at -o that is not a regulab report (an earlier report is replaced
    /// without it)
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Run documents written by `regulab mf`, `mlp`, `run`, `rerun` or a sweep
    #[arg(required = true, value_name = "RUN.json")]
    pub runs: Vec<PathBuf>,
    /// Print the findings as JSON: [{"run", "status", "findings": [...]}]
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RunFileArgs {
    /// The config file (`command = "mf"` or `"mlp"` and any trainer keys)
    #[arg(value_name = "FILE.toml")]
    pub file: PathBuf,
    #[command(flatten)]
    pub overrides: Overrides,
}

/// What `run` and `rerun` may change in the configuration they start from.
#[derive(Debug, Args)]
pub struct Overrides {
    /// The run document [default: the file's `out`; for rerun runs/<time>-<command>.json,
    /// never the recorded one]
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override a key: --set lambda=0.1 (repeatable)
    #[arg(long, value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// The data: a data set name or a path (as --set data=...); not part of the run's
    /// identity, so the same data in another place is the same run
    #[arg(long, value_name = "DATA")]
    pub data: Option<String>,
    /// CPU threads for torch (as --set threads=N); not part of the run's identity
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub threads: Option<String>,
    /// No progress bar or per-epoch lines
    #[arg(long)]
    pub quiet: bool,
    /// Replace what --out holds (another run's document, any other file) instead of refusing;
    /// without it a path may hold only this same run's earlier document
    #[arg(long)]
    pub overwrite: bool,
}

impl Overrides {
    fn apply(&self, layer: &mut Layer) -> Result<()> {
        if let Some(out) = &self.out {
            layer.set("out", out.display().to_string().into(), Origin::Flag)?;
        }
        train_flags::apply_sets(layer, &self.set)?;
        if let Some(data) = &self.data {
            layer.set("data", data.clone().into(), Origin::Flag)?;
        }
        if let Some(threads) = &self.threads {
            layer.set("threads", threads.clone().into(), Origin::Flag)?;
        }
        if self.quiet {
            layer.set("quiet", true.into(), Origin::Flag)?;
        }
        Ok(())
    }
}

#[derive(Debug, Args)]
pub struct RerunArgs {
    /// A run document written by `regulab mf`, `mlp`, `run` or a sweep
    #[arg(value_name = "RUN.json")]
    pub run: PathBuf,
    #[command(flatten)]
    pub overrides: Overrides,
}

#[derive(Debug, Args)]
#[command(
    after_help = "The run continues from the checkpoint its document names (written every --checkpoint-every epochs) \
                  with the recorded configuration, and finishes the same document; on the CPU its epochs \
                  equal those of an uninterrupted run. A completed or diverged run, a missing checkpoint \
                  or changed data is refused; --data may name the same data in another place.\nExit status as for the run: 0 completed, 1 failed or diverged, 128+N stopped by signal N."
)]
pub struct ResumeArgs {
    /// The run document of the run to continue
    #[arg(value_name = "RUN.json")]
    pub run: PathBuf,
    /// No progress bar or per-epoch lines (default: as the run was started)
    #[arg(long)]
    pub quiet: bool,
    /// Where the run's data is now (a data set name or a path) [default: the recorded data];
    /// data with another fingerprint than the run's is refused
    #[arg(long, value_name = "DATA")]
    pub data: Option<String>,
    /// CPU threads for torch [default: as the run was started]
    #[arg(long, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub threads: Option<usize>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  regulab eval runs/mf.json                      # the run's final model on its own held-out test split\n  regulab eval runs/mf.final.safetensors --data new-ratings.csv --split none   # ratings collected after training\n  regulab eval runs/mlp.json --weights selected --json\n  regulab eval runs/mf.json --metrics rmse,ndcg@10,precision@10,recall@10   # with the most-popular baseline\nRatings whose user or item the model never trained are predicted from the biases and the mean (as in training).\nRatings the model trained on (another u1..u5 split of its data, --split none) are counted and warned about: they measure training data."
)]
pub struct EvalArgs {
    /// A saved model (RUN.final.safetensors, RUN.selected.safetensors) or a run document
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,
    /// With a run document: final (the weights the run ended with) or selected (its best validation epoch) [default: final]
    #[arg(long, value_name = "WHICH")]
    pub weights: Option<String>,
    /// Data set name or path [default: the data the model was trained on]
    #[arg(long, value_name = "DATA")]
    pub data: Option<String>,
    /// Ratings: a split whose test part is measured (u1..u5, ua, ub, random:F, user:F; none: every rating);
    /// images: test or train [default: the model's own split; test]
    #[arg(long, value_name = "SPLIT")]
    pub split: Option<String>,
    /// Images: only the first N [default: the run's --limit-test on its own test images]
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Ratings: valid ratings, inclusive, MIN,MAX, for data on another scale
    /// [default: the scale the model was trained with]
    #[arg(long, value_name = "MIN,MAX", allow_hyphen_values = true)]
    pub rating_range: Option<String>,
    /// Only these metrics, comma separated: rmse, mae, precision@K, recall@K, ndcg@K, hit@K
    /// (ratings; K >= 1), accuracy (images). Ranking metrics are means over users with a
    /// relevant rating; a user's candidates are every item the model has a row for except
    /// those the user rated in the model's training ratings; ties go to the smaller item id;
    /// nDCG uses binary gains and 1/log2(rank+1). A most-popular ranking is printed beside
    /// them [default: every metric but the ranking ones]
    #[arg(long, value_name = "LIST")]
    pub metrics: Option<String>,
    /// Ranking metrics: ratings at or above this are relevant [default: the run's relevance, 4]
    #[arg(long, allow_negative_numbers = true, value_name = "R")]
    pub relevance: Option<f64>,
    /// auto, cpu, cuda or cuda:N
    #[arg(long, value_name = "DEVICE", default_value = "auto")]
    pub device: String,
    /// Print a JSON object instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  regulab predict runs/mf.json --user 196 --top 10                   # titles and genres where the data has them\n  regulab predict runs/mf.json --pairs pairs.txt > predictions.csv     # lines: USER ITEM\n  regulab predict runs/mlp.json --images t10k-images-idx3-ubyte.gz > classes.csv\nA user or item the model never trained is predicted from the biases (biased MF); plain MF refuses it."
)]
pub struct PredictArgs {
    /// A saved model (RUN.final.safetensors, RUN.selected.safetensors) or a run document
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,
    /// With a run document: final or selected [default: final]
    #[arg(long, value_name = "WHICH")]
    pub weights: Option<String>,
    /// MF: the raw user id to recommend items for
    #[arg(long, value_name = "RAW_ID", conflicts_with_all = ["pairs", "images"])]
    pub user: Option<u64>,
    /// With --user: how many items
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,
    /// With --user: keep the items the user rated in the training data (left out by default)
    #[arg(long, requires = "user")]
    pub include_seen: bool,
    /// With --user: leave out the items the user rated in training (the default; kept so
    /// that earlier command lines still work)
    #[arg(long, requires = "user", conflicts_with = "include_seen")]
    pub exclude_seen: bool,
    /// MF: a file of USER ITEM pairs (raw ids, one pair per line); prints CSV
    #[arg(long, value_name = "FILE", conflicts_with = "images")]
    pub pairs: Option<PathBuf>,
    /// MLP: an IDX images file (raw or .gz); prints each image's class and probabilities as CSV
    #[arg(long, value_name = "FILE")]
    pub images: Option<PathBuf>,
    /// With --user: where the training ratings (and titles) are [default: the recorded data]
    #[arg(long, value_name = "DATA")]
    pub data: Option<String>,
    /// auto, cpu, cuda or cuda:N
    #[arg(long, value_name = "DEVICE", default_value = "auto")]
    pub device: String,
    /// Print JSON instead of a table or CSV
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Labels use a system sans-serif TrueType/OpenType font (DejaVu Sans, Liberation Sans, ...); \
                  set REGULAB_FONT=/path/to/font.ttf to choose one. Interactive charts of many runs: \
                  regulab report."
)]
pub struct PlotArgs {
    /// Run documents (several are overlaid), or one sweep's summary.json (the metric
    /// against the swept value, mean ± std over seeds or folds)
    #[arg(required = true, value_name = "RUN.json|summary.json")]
    pub runs: Vec<PathBuf>,
    /// Output image: FIG.svg or FIG.png
    #[arg(short, long, value_name = "FIG.svg|png")]
    pub output: PathBuf,
    /// Replace a file at -o that is not a figure (an SVG or PNG is replaced without it)
    #[arg(long)]
    pub overwrite: bool,
    /// Image width in pixels [default: 1350; 1000 for a sweep]
    #[arg(long)]
    pub width: Option<u32>,
    /// Image height in pixels [default: 820 (560 for a sweep), more when a long legend needs room]
    #[arg(long)]
    pub height: Option<u32>,
    /// Draw the train losses at every logged step (recorded with --log-every N) instead of
    /// epoch means
    #[arg(long)]
    pub steps: bool,
}

/// How the process should exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success,
    /// Something did not work out (a run diverged, a sweep had failed runs); already reported.
    Failure,
    /// Stopped by this signal.
    Signal(i32),
}

/// Runs a parsed command line. `matches` holds which flags were given; `argv` is recorded in
/// run documents.
pub fn run(cli: Cli, matches: &clap::ArgMatches, argv: Vec<String>) -> Result<Exit> {
    match cli.command {
        Command::Info { json } => print_info(json).map(|()| Exit::Success),
        Command::Data { command } => data::run(command).map(|()| Exit::Success),
        Command::Mf(flags) => {
            let layer =
                train_flags::command_layer(config::ModelKind::Mf, &flags.common, sub(matches))
                    .map_err(usage)?;
            train(&layer, argv, Fresh::Yes, flags.common.overwrite)
        }
        Command::Mlp(flags) => {
            let layer =
                train_flags::command_layer(config::ModelKind::Mlp, &flags.common, sub(matches))
                    .map_err(usage)?;
            train(&layer, argv, Fresh::Yes, flags.common.overwrite)
        }
        Command::Run(args) => {
            let mut layer = train_flags::run_file_layer(&args.file).map_err(usage)?;
            args.overrides.apply(&mut layer).map_err(usage)?;
            train(&layer, argv, Fresh::Yes, args.overrides.overwrite)
        }
        Command::Rerun(args) => train(
            &rerun_layer(&args)?,
            argv,
            Fresh::Recorded,
            args.overrides.overwrite,
        ),
        Command::Resume(args) => resume(&args, argv),
        Command::Eval(args) => eval(args).map(|()| Exit::Success),
        Command::Predict(args) => predict(args).map(|()| Exit::Success),
        Command::Sweep(args) => run_sweep(train_flags::sweep_plan(&args).map_err(usage)?, argv),
        Command::Cv(args) => run_sweep(train_flags::cv_plan(&args).map_err(usage)?, argv),
        Command::Tune(args) => run_tune(tune_flags::tune_plan(&args).map_err(usage)?, argv),
        Command::Plot(args) => plot(args).map(|()| Exit::Success),
        Command::Explain(args) => explain_runs(&args).map(|()| Exit::Success),
        Command::Report(args) => report(args).map(|()| Exit::Success),
        Command::Status(args) => {
            crate::util::out!("{}", sweep::status_table(&sweep::status(&args.folder)?));
            Ok(Exit::Success)
        }
        Command::Summarize(args) => summarize(&args.folder),
    }
}

/// An error in what the user typed (a flag's value, a config file or key, `--set`), as
/// opposed to one met while running: `main.rs` exits 2 for it, as clap does for the flags
/// it checks itself, and 1 for the rest.
#[derive(Debug)]
pub struct UsageError(pub anyhow::Error);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for UsageError {}

fn usage(error: anyhow::Error) -> anyhow::Error {
    anyhow::Error::new(UsageError(error))
}

/// Whether the configuration was written now (flags, a config file) or recorded by an
/// earlier run (rerun), which may hold settings refused today and must still run.
#[derive(PartialEq)]
enum Fresh {
    Yes,
    Recorded,
}

fn print_info(json: bool) -> Result<()> {
    let info = SystemInfo::collect();
    if json {
        crate::util::outln!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        crate::util::out!("{}", info.to_text());
    }
    Ok(())
}

/// The recorded run's configuration with the overrides applied.
fn rerun_layer(args: &RerunArgs) -> Result<Layer> {
    let document = crate::schema::load_run(&args.run)?;
    let mut layer = document.config.to_layer(Origin::Recorded {
        path: args.run.clone(),
    })?;
    // A re-run never overwrites the run it repeats.
    layer.remove("out")?;
    args.overrides.apply(&mut layer)?;
    if let Some(out) = &args.overrides.out {
        let same = |a: &std::path::Path, b: &std::path::Path| {
            a.canonicalize()
                .ok()
                .is_some_and(|a| b.canonicalize().ok() == Some(a))
        };
        if same(out, &args.run) {
            anyhow::bail!(
                "--out {}: is the run being repeated; a rerun writes a new document (name another --out)",
                out.display()
            );
        }
    }
    Ok(layer)
}

fn resume(args: &ResumeArgs, argv: Vec<String>) -> Result<Exit> {
    let interrupter = Interrupter::from_signals()?;
    let context = RunContext {
        argv,
        interrupter: &interrupter,
        overwrite: false,
    };
    let overrides = experiment::ResumeOverrides {
        quiet: args.quiet.then_some(true),
        data: args.data.clone(),
        threads: args.threads,
    };
    let result = experiment::resume(&args.run, &context, &overrides)?;
    Ok(exit_of(&result))
}

fn eval(args: EvalArgs) -> Result<()> {
    let request = crate::inference::EvalRequest {
        model: args.model,
        weights: parse_flag("--weights", args.weights.as_deref())?,
        data: args.data,
        split: args.split,
        limit: args.limit,
        rating_range: parse_flag("--rating-range", args.rating_range.as_deref())?,
        metrics: args.metrics.as_deref().map(parse_metrics).transpose()?,
        relevance: match args.relevance {
            Some(r) if !r.is_finite() => anyhow::bail!("--relevance {r}: must be a number"),
            r => r,
        },
        device: parse_flag("--device", Some(&args.device))?.unwrap_or_default(),
    };
    let report = crate::inference::eval(&request)?;
    for warning in &report.warnings {
        crate::util::erroutln!("regulab eval: warning: {warning}");
    }
    if args.json {
        crate::util::outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        crate::util::out!("{}", report.to_text());
    }
    Ok(())
}

/// `--metrics rmse,ndcg@10`: each name once, in the given order.
fn parse_metrics(text: &str) -> Result<Vec<crate::model::Metric>> {
    let mut metrics = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let metric = name
            .parse::<crate::model::Metric>()
            .map_err(|e| anyhow::anyhow!("--metrics {text}: {e}"))?;
        if !metrics.contains(&metric) {
            metrics.push(metric);
        }
    }
    if metrics.is_empty() {
        anyhow::bail!("--metrics {text:?}: names no metric");
    }
    Ok(metrics)
}

fn predict(args: PredictArgs) -> Result<()> {
    use crate::inference::PredictQuery;
    let query = match (args.user, args.pairs, args.images) {
        (Some(user), None, None) => PredictQuery::TopItems(crate::inference::TopItemsQuery {
            user,
            top: args.top,
            include_seen: args.include_seen,
            data: args.data,
        }),
        (None, Some(pairs), None) => PredictQuery::Pairs(pairs),
        (None, None, Some(images)) => PredictQuery::Images(images),
        _ => anyhow::bail!(
            "regulab predict: give one of --user RAW_ID, --pairs FILE or --images FILE"
        ),
    };
    let request = crate::inference::PredictRequest {
        model: args.model,
        weights: parse_flag("--weights", args.weights.as_deref())?,
        query,
        device: parse_flag("--device", Some(&args.device))?.unwrap_or_default(),
    };
    let predictions = crate::inference::predict(&request)?;
    for warning in predictions.warnings() {
        crate::util::erroutln!("regulab predict: warning: {warning}");
    }
    if args.json {
        crate::util::outln!("{}", serde_json::to_string_pretty(&predictions)?);
    } else {
        crate::util::out!("{}", predictions.to_text());
    }
    Ok(())
}

fn plot(args: PlotArgs) -> Result<()> {
    let figure = |head: &[u8]| {
        let text = String::from_utf8_lossy(head);
        head.starts_with(b"\x89PNG")
            || text.trim_start().starts_with("<svg")
            || text.trim_start().starts_with("<?xml")
    };
    crate::util::check_output_file("-o", &args.output, &args.runs, figure, args.overwrite)?;
    crate::plot::run_plot(&crate::plot::PlotRequest {
        runs: args.runs,
        output: args.output,
        width: args.width,
        height: args.height,
        steps: args.steps,
    })
}

fn report(args: ReportArgs) -> Result<()> {
    let earlier_report =
        |head: &[u8]| String::from_utf8_lossy(head).contains("<title>regulab report");
    crate::util::check_output_file(
        "-o",
        &args.output,
        &args.inputs,
        earlier_report,
        args.overwrite,
    )?;
    let outcome = crate::html_report::run_report(&crate::html_report::ReportRequest {
        inputs: args.inputs,
        output: args.output.clone(),
    })?;
    let tables = match outcome.tables {
        0 => String::new(),
        1 => ", 1 sweep table".to_string(),
        n => format!(", {n} sweep tables"),
    };
    crate::util::erroutln!(
        "regulab report: wrote {} ({}, {}{tables})",
        args.output.display(),
        crate::util::count_noun(outcome.runs, "run"),
        crate::util::count_noun(outcome.charts, "chart"),
    );
    Ok(())
}

/// Reads every run first (a bad file stops before any output), then prints its findings,
/// recomputed from the curves so that older documents are explained too.
fn explain_runs(args: &ExplainArgs) -> Result<()> {
    if let [path] = args.runs.as_slice() {
        if let Some(tune) = tune_summary_path(path) {
            return explain_tune(&tune, args.json);
        }
    }
    let mut explained = Vec::new();
    for path in &args.runs {
        let document = crate::schema::load_run(path)?;
        let findings = crate::explain::explain(&document);
        explained.push((path, document, findings));
    }
    if args.json {
        let out: Vec<serde_json::Value> = explained
            .iter()
            .map(|(path, document, findings)| {
                serde_json::json!({
                    "run": path.display().to_string(),
                    "status": document.status,
                    "findings": findings,
                })
            })
            .collect();
        crate::util::outln!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    for (index, (path, document, findings)) in explained.iter().enumerate() {
        if index > 0 {
            crate::util::outln!();
        }
        crate::util::outln!(
            "{}: {} run, {}, {} epochs",
            path.display(),
            document.command,
            document.status,
            document.summary.epochs_completed
        );
        crate::util::out!("{}", crate::explain::render(findings));
    }
    Ok(())
}

/// `DIR/tune.json` for a tune's folder, or the path itself when it is a tune's summary.
fn tune_summary_path(path: &std::path::Path) -> Option<PathBuf> {
    let file = if path.is_dir() {
        path.join("tune.json")
    } else {
        path.to_path_buf()
    };
    (crate::plot::document_kind(&file).as_deref() == Some(crate::schema::TUNE_KIND)).then_some(file)
}

/// `regulab explain` on a tune: whether the choice sits at the edge of a searched range.
fn explain_tune(path: &std::path::Path, json: bool) -> Result<()> {
    let summary = crate::schema::load_tune(path)?;
    let findings = crate::explain::explain_tune(&summary);
    if json {
        let out = serde_json::json!([{
            "run": path.display().to_string(),
            "status": summary.state,
            "findings": findings,
        }]);
        crate::util::outln!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    crate::util::outln!(
        "{}: {} tune, {}, {} trials",
        path.display(),
        summary.command,
        summary.state,
        summary.trials.len()
    );
    if findings.is_empty() {
        crate::util::outln!("no findings: the choice sits inside every searched range");
    } else {
        crate::util::out!("{}", crate::explain::render(&findings));
    }
    Ok(())
}

fn sub(matches: &clap::ArgMatches) -> &clap::ArgMatches {
    matches.subcommand().map_or(matches, |(_, sub)| sub)
}

/// Resolves the layer (every check before any data is read) and trains.
fn train(layer: &Layer, argv: Vec<String>, fresh: Fresh, overwrite: bool) -> Result<Exit> {
    let config = layer.resolve().map_err(usage)?;
    if fresh == Fresh::Yes {
        warn_about_zero_strength(layer, &config);
    }
    train_flags::warn_about_threads(&config);
    let interrupter = Interrupter::from_signals()?;
    let context = RunContext {
        argv,
        interrupter: &interrupter,
        overwrite,
    };
    let result = experiment::run(&config, &context)?;
    Ok(exit_of(&result))
}

/// `--penalty l2 --lambda 0` trains with no penalty while the command names one. It is said
/// on the console, not refused: a sweep's baseline (lambda 0 beside the others) runs as
/// `regulab run` on its plan file and must train.
fn warn_about_zero_strength(layer: &Layer, config: &config::RunConfig) {
    if config.penalty.kind != crate::regularization::PenaltyKind::None
        && config.penalty.lambda == 0.0
    {
        crate::util::erroutln!(
            "regulab: warning: {} with {} is no penalty at all: this run is unregularized (give --lambda a positive strength, e.g. --lambda 0.1, to regularize)",
            layer.describe("penalty"),
            layer.describe("lambda")
        );
    }
}

fn exit_of(result: &RunResult) -> Exit {
    match (result.status, result.signal) {
        (RunStatus::Completed, _) => Exit::Success,
        (_, Some(signal)) => Exit::Signal(signal),
        _ => Exit::Failure,
    }
}

fn summarize(folder: &std::path::Path) -> Result<Exit> {
    let done = sweep::summarize(folder)?;
    crate::util::out!("{}", sweep::results_table(&done.summary));
    let missing = match done.missing.len() {
        0 => "none missing".to_string(),
        n => format!(
            "{n} missing (no document: {})",
            done.missing
                .iter()
                .map(|f| f.trim_end_matches(".json"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    crate::util::erroutln!(
        "regulab summarize: {} of {} planned runs in {}; {missing}",
        done.summary.runs.len(),
        done.planned,
        folder.join("summary.json").display()
    );
    Ok(Exit::Success)
}

fn run_sweep(plan: sweep::SweepPlan, argv: Vec<String>) -> Result<Exit> {
    // Every combination is resolved here first, so that a bad value in a list is a usage
    // error (exit 2) like the same value given to one run.
    plan.expand().map_err(usage)?;
    let interrupter = Interrupter::from_signals()?;
    let outcome = match &plan.executor {
        sweep::Executor::Local => sweep::run(&plan, &interrupter, &argv)?,
        sweep::Executor::Slurm(options) => match sweep::submit(&plan, options, &interrupter)? {
            sweep::Submitted::Queued { job_id, tasks } => {
                crate::util::outln!("{job_id}");
                crate::util::erroutln!(
                        "regulab sweep: `regulab status {}` follows its {tasks} runs; `regulab summarize {}` writes the summary when they end",
                        plan.folder.display(),
                        plan.folder.display()
                    );
                return Ok(Exit::Success);
            }
            sweep::Submitted::Nothing { .. } => return Ok(Exit::Success),
            sweep::Submitted::Waited(outcome) => outcome,
        },
    };
    crate::util::out!("{}", sweep::results_table(&outcome.summary));
    let completed = outcome
        .summary
        .runs
        .iter()
        .filter(|r| r.status == RunStatus::Completed)
        .count();
    crate::util::erroutln!(
        "regulab {}: {completed} of {} runs completed; summary in {}",
        sweep::command_name(&argv),
        outcome.summary.runs.len(),
        plan.folder.join("summary.json").display()
    );
    Ok(match (outcome.signal, outcome.unsuccessful) {
        (Some(signal), _) => Exit::Signal(signal),
        (None, 0) => Exit::Success,
        (None, _) => Exit::Failure,
    })
}

fn run_tune(plan: crate::tune::TunePlan, argv: Vec<String>) -> Result<Exit> {
    // Trials are drawn and every configuration resolved first: a bad value is a usage error.
    plan.prepare().map_err(usage)?;
    let interrupter = Interrupter::from_signals()?;
    let outcome = crate::tune::run(&plan, &interrupter, &argv)?;
    crate::util::out!("{}", crate::tune::tune_table(&outcome.summary));
    let folder = plan.sweep.folder.join("tune.json");
    Ok(match (outcome.signal, &outcome.summary.choice) {
        (Some(signal), _) => {
            crate::util::erroutln!(
                "regulab tune: interrupted; the same command continues it (summary so far in {})",
                folder.display()
            );
            Exit::Signal(signal)
        }
        (None, Some(_)) => {
            crate::util::erroutln!("regulab tune: summary in {}", folder.display());
            Exit::Success
        }
        (None, None) => {
            crate::util::erroutln!(
                "regulab tune: no trial completed; summary in {}",
                folder.display()
            );
            Exit::Failure
        }
    })
}

/// A flag's text parsed into a setting type; the error names the flag.
fn parse_flag<T: std::str::FromStr>(flag: &str, text: Option<&str>) -> Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    text.map(|t| {
        t.parse::<T>()
            .map_err(|e| anyhow::anyhow!("{flag} {t}: {e}"))
    })
    .transpose()
}

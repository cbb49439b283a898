//! regulab: regularization experiments (matrix factorization on MovieLens, an MLP on MNIST)
//! on PyTorch's C++ core through `tch`.
//!
//! # Architecture
//!
//! One line per layer, top to bottom: a module uses only modules on lines below its own
//! (so there are no cycles), and only `cli` and `main.rs` see the command-line parser.
//! `tests/architecture.rs` reads this block and every `crate::` path in `src/`, and fails
//! when the two disagree.
//!
//! ```text
//! cli
//! tune
//! sweep
//! experiment
//! checkpoint fused_mf html_report inference progress run_writer
//! saved_ranking
//! model_file plot train
//! explain
//! schema
//! config
//! optim
//! regularization
//! model
//! failure ranking
//! data rng tensor_file
//! memory
//! device ffi info interrupt schedule setting util
//! ```
//!
//! * `cli` — the command-line definitions; turns flags into config layers and typed requests,
//!   maps outcomes to exit codes; `--help` shows the defaults from `config`.
//! * `tune` — `regulab tune`: searched values (`space`: log, uniform, int, lists; random or
//!   grid sampler), successive halving over rungs of epochs (`asha`, rung-synchronous so the
//!   result does not depend on `--jobs`), trials as runs of the sweep's plan and executors,
//!   the choice on validation and its test result once (`tune.json`, the console table).
//! * `sweep` — expands a base config and lists of values into runs; the sweep folder's plan
//!   (`plan_files`); trains them in turn, as parallel processes (`parallel`: `--jobs`,
//!   `--device A,B`) or submits them as a Slurm job array (`--executor slurm`); summary and
//!   table; a folder's status and summary read back from its plan (`regulab status`,
//!   `regulab summarize`).
//! * `experiment` — runs one `RunConfig`: data and model preparation, the output path, the
//!   document, the loop; resumes a run from its checkpoint; saves the finished run's models.
//! * `checkpoint` — what a run needs to continue (weights, optimizer state, position, schedule,
//!   generator state) in one file, written by an observer; read back by `resume`.
//! * `fused_mf` — the fused CPU training step of matrix factorization (`--engine fused`):
//!   forward, penalty and row gradients in one call per batch over raw slices, with the
//!   autograd path's bits; the update through the run's optimizer.
//! * `html_report` — `regulab report`: runs, sweep tables and findings as one self-contained
//!   HTML page with interactive charts (uPlot, vendored under `assets/uplot/`); uses `plot`'s
//!   legend labels and run titles.
//! * `inference` — `regulab eval` and `predict`: saved models on any data.
//! * `saved_ranking` — `eval`'s ranking metrics of a saved MF model: its training ratings
//!   (not candidates) and the most-popular baseline over the same candidates.
//! * `progress` — the console observer (progress bar, or one line per epoch).
//! * `run_writer` — the run document's writer (an observer; atomic writes after each epoch).
//! * `explain` — plain-language findings about a run document, one file per finding, each a
//!   detection (the numbers and thresholds) and a wording; stored in the document when a run
//!   ends and printed by `regulab explain`.
//! * `model_file` — saved models: `.safetensors` with PyTorch's names and the metadata to use them.
//! * `plot` — draws run documents or a sweep summary to SVG/PNG; draws the eval-divisor
//!   finding's two test costs from `explain`.
//! * `train` — the one training loop ([`train::TrainingLoop`]); emits events to observers;
//!   stops on an interrupter.
//! * `schema` — the run document and sweep summary types every reader and writer uses,
//!   findings included, and the one [`schema::Split`] (train, validation, test).
//! * `config` — [`config::RunConfig`], the typed description of a run: [`config::ModelKind`]
//!   (mf or mlp) and its [`config::ModelSpec`], layers from flags, config files (TOML/JSON),
//!   `--set` and recorded runs; defaults and validation in one place.
//! * `optim` — the optimizers regulab steps itself (torch.optim's rules, SparseAdam for
//!   `--sparse`): settings, the optimizer, its state file, the update rules, the C++ kernels.
//! * `regularization` — every penalty form as data (formula, scale, computation); the
//!   weight-decay mode; weight norms; implied weight decay.
//! * `model` — the model trait, its parameters, matrix factorization, the MLP.
//! * `ranking` — ranking metrics (precision@K, recall@K, nDCG@K, hit@K) of scored items
//!   per user, with the exact definitions of relevant items, candidates and ties.
//! * `failure` — libtorch failures (panics inside tch, `TchError`) as one line without C++
//!   frames; the panic hook; used by training, model building, `eval` and `predict`.
//! * `data` — ratings (MovieLens formats, splits, synthetic), MNIST-format images, fetching,
//!   the fingerprint of what a run trained on; resolving `--data`.
//! * `memory` — a run's memory estimate, checked before allocating; out-of-memory messages.
//! * `rng` — torch's CPU generator state (what `torch.get_rng_state()` returns).
//! * `tensor_file` — named tensors and metadata in the `.safetensors` format, written atomically.
//! * `device` — `--device auto|cpu|cuda|cuda:N`; the default CPU thread count per workload.
//! * `ffi` — the Rust side of the C++ shims (their error messages and tensors).
//! * `info` — versions and devices.
//! * `interrupt` — SIGINT/SIGTERM/SIGHUP as a value the loops read.
//! * `schedule` — the per-epoch policies: learning-rate schedules with
//!   torch.optim.lr_scheduler's semantics, and early stopping.
//! * `setting` — the error naming a config key; enum names through serde.
//! * `util` — atomic file writes, the output lock, time stamps, numbers and sizes for people.

pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod data;
pub mod device;
pub mod experiment;
pub mod explain;
pub mod failure;
mod ffi;
pub mod fused_mf;
pub mod html_report;
pub mod inference;
pub mod info;
pub mod interrupt;
pub mod memory;
pub mod model;
pub mod model_file;
pub mod optim;
pub mod plot;
pub mod progress;
pub mod ranking;
pub mod regularization;
pub mod rng;
pub mod run_writer;
pub mod saved_ranking;
pub mod schedule;
pub mod schema;
pub mod setting;
pub mod sweep;
pub mod tensor_file;
pub mod train;
pub mod tune;
pub mod util;

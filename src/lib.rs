//! regulab: regularization experiments (matrix factorization on MovieLens, an MLP on MNIST)
//! on PyTorch's C++ core through `tch`.
//!
//! # Architecture
//!
//! Layers, each depending only on those below it (no cycles; only `cli` and `main.rs` see
//! the command-line parser):
//!
//! ```text
//! main -> cli -> { experiment, inference, sweep, plot, html_report, data::fetch, info }
//!                   -> { config, train, progress, report, checkpoint, model_file, tensor_file,
//!                        explain, schema }
//!                        -> { model, regularization, optim, schedule, data, device, interrupt, memory,
//!                             setting, rng }
//! ```
//!
//! * `cli` — the command-line definitions; turns flags into config layers and typed requests, maps
//!   outcomes to exit codes.
//! * `config` — [`config::RunConfig`], the typed description of a run: layers from flags,
//!   config files (TOML/JSON), `--set` and recorded runs; defaults and validation in one place.
//! * `experiment` — runs one `RunConfig`: data, model, penalty, optimizer, document, loop;
//!   resumes a run from its checkpoint; saves the finished run's models.
//! * `inference` — `regulab eval` and `predict`: saved models on any data.
//! * `sweep` — expands a base config and lists of values into runs; summary and table.
//! * `plot` — draws run documents or a sweep summary to SVG/PNG.
//! * `html_report` — `regulab report`: runs, sweep tables and findings as one self-contained
//!   HTML page with interactive charts (uPlot, vendored under `assets/uplot/`); uses `plot`'s
//!   legend labels and run titles.
//! * `explain` — plain-language findings about a run document (overfitting, the penalty's
//!   share and trade-off, weight norms, divergence, the cost's divisor, weight decay versus
//!   penalty), stored in the document when a run ends and printed by `regulab explain`.
//! * `train` — the one training loop; emits events to observers; stops on an interrupter.
//! * `progress` — the console observer (progress bar, or one line per epoch).
//! * `report` — the run document's writer (an observer; atomic writes).
//! * `checkpoint` — what a run needs to continue (weights, optimizer state, position, schedule,
//!   generator state) in one file, written by an observer; read back by `resume`.
//! * `model_file` — saved models: `.safetensors` with PyTorch's names and the metadata to use them.
//! * `schema` — the run document and sweep summary types every reader and writer uses.
//! * `model` — the model trait, matrix factorization, the MLP.
//! * `regularization` — every penalty form as data (formula, scale, computation).
//! * `optim` — the optimizers regulab steps itself (torch.optim's rules, SparseAdam for
//!   `--sparse`); state as data.
//! * `schedule` — learning-rate schedules with torch.optim.lr_scheduler's semantics.
//! * `data` — ratings (MovieLens formats, splits, synthetic), MNIST-format images, fetching,
//!   the fingerprint of what a run trained on.
//! * `device` — `--device auto|cpu|cuda|cuda:N`; the default CPU thread count per workload.
//! * `interrupt` — SIGINT/SIGTERM/SIGHUP as a value the loops read.
//! * `memory` — a run's memory estimate, checked before allocating; out-of-memory messages.
//! * `setting` — the error naming a config key; enum names through serde.
//! * `tensor_file` — named tensors and metadata in the `.safetensors` format, written atomically.
//! * `ffi` — the Rust side of the C++ shims (their error messages and tensors).
//! * `rng` — torch's CPU generator state (what `torch.get_rng_state()` returns).
//! * `info` — versions and devices.

pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod data;
pub mod device;
pub mod experiment;
pub mod explain;
mod ffi;
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
pub mod regularization;
pub mod rng;
pub mod run_writer;
pub mod schedule;
pub mod schema;
pub mod setting;
pub mod sweep;
pub mod tensor_file;
pub mod train;
pub mod util;

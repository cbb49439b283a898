//! The one training loop, shared by every model.
//!
//! Per epoch: a seeded permutation (drawn on the CPU so that a seed means the same batch order
//! on every device), consecutive `index_select` batches, losses accumulated on the device and
//! read once per epoch (or every `--log-every` steps), then an evaluation under `no_grad`.

use crate::model::{Model, Split};
use crate::optim::Optimizer;
use crate::regularization::{implied_weight_decay_loss, weight_norms, Penalty};
use crate::report::{now_utc, EpochRecord, RunStatus, RunWriter, SplitRecord, StepRecord};
use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

#[derive(Debug, Clone)]
pub struct LoopSettings {
    pub epochs: usize,
    pub batch_size: i64,
    pub log_every: Option<usize>,
    pub device: Device,
    pub lr: f64,
    pub weight_decay: f64,
    /// Progress bar and per-epoch lines (only ever drawn on a terminal).
    pub progress: bool,
}

/// How a training run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: RunStatus,
    pub message: Option<String>,
}

/// Set by Ctrl-C. The loop stops after the current step and the run is saved as interrupted;
/// a second Ctrl-C exits at once (the last epoch's file is already complete on disk).
pub fn interrupt_flag() -> &'static AtomicBool {
    static FLAG: OnceLock<&'static AtomicBool> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
        let _ = ctrlc::set_handler(move || {
            if flag.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
        });
        flag
    })
}

/// Whether progress output may be drawn: on a terminal and not `--quiet`.
pub fn progress_wanted(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

/// Trains `model` for the configured epochs, appending each epoch to `writer` and saving it.
pub fn train(
    model: &dyn Model,
    optimizer: &mut Optimizer,
    penalty: &Penalty,
    settings: &LoopSettings,
    writer: &mut RunWriter,
) -> Result<Outcome> {
    let interrupted = interrupt_flag();
    let n_train = model.split_len(Split::Train);
    let steps_per_epoch = (n_train + settings.batch_size - 1) / settings.batch_size;
    let metric = model.headline_metric();
    let run_start = Instant::now();
    let mut global_step = 0usize;
    let mut best: Option<(usize, f64)> = None;
    let progress_refresh = (steps_per_epoch / 20).max(1);

    for epoch in 1..=settings.epochs {
        let epoch_start = Instant::now();
        let bar = progress_bar(
            settings.progress,
            steps_per_epoch as u64,
            epoch,
            settings.epochs,
        );
        let permutation =
            Tensor::randperm(n_train, (Kind::Int64, Device::Cpu)).to_device(settings.device);
        // base, reg, total: summed in float64 on the device, read once at the end of the epoch.
        let mut sums = Tensor::zeros([3], (Kind::Double, settings.device));
        let mut steps_done = 0i64;
        let mut stopped = false;
        for step in 0..steps_per_epoch {
            if interrupted.load(Ordering::SeqCst) {
                stopped = true;
                break;
            }
            let start = step * settings.batch_size;
            let len = settings.batch_size.min(n_train - start);
            let indices = permutation.narrow(0, start, len);
            let output = model.batch_loss(&indices);
            let parameters = if penalty.kind.is_per_example() {
                Vec::new()
            } else {
                model.parameters()
            };
            let reg_loss = penalty.training_term(&parameters, &output.example_rows, len);
            let total_loss = &output.base_loss + &reg_loss;
            optimizer.zero_grad()?;
            total_loss.backward();
            optimizer.step()?;
            let losses = Tensor::stack(
                &[
                    output.base_loss.detach(),
                    reg_loss.detach(),
                    total_loss.detach(),
                ],
                0,
            );
            sums += losses.to_kind(Kind::Double);
            steps_done += 1;
            global_step += 1;
            bar.inc(1);
            // The bar shows current losses about 20 times an epoch: a host read that often
            // costs nothing measurable, unlike one per step on a GPU.
            if settings.progress && (step + 1) % progress_refresh == 0 {
                let values = Vec::<f64>::try_from(&losses.to_kind(Kind::Double))?;
                bar.set_message(format!(
                    "base {:.4} reg {:.4} total {:.4}",
                    values[0], values[1], values[2]
                ));
            }
            if let Some(every) = settings.log_every {
                if global_step.is_multiple_of(every) {
                    let values = Vec::<f64>::try_from(&losses.to_kind(Kind::Double))?;
                    writer.document.steps.push(StepRecord {
                        epoch,
                        step: global_step,
                        base_loss: values[0],
                        reg_loss: values[1],
                        total_loss: values[2],
                    });
                    if !values[2].is_finite() {
                        bar.finish_and_clear();
                        return diverged(writer, epoch, values[2]);
                    }
                }
            }
        }
        bar.finish_and_clear();
        if steps_done == 0 {
            return finish(
                writer,
                RunStatus::Interrupted,
                Some(format!("interrupted before epoch {epoch} trained a step")),
            );
        }
        let seconds = epoch_start.elapsed().as_secs_f64();
        let means = Vec::<f64>::try_from(&(sums / steps_done as f64))?;
        let mut train_record = SplitRecord::from([
            ("base_loss".to_string(), means[0]),
            ("reg_loss".to_string(), means[1]),
            ("total_loss".to_string(), means[2]),
        ]);
        let eval_start = Instant::now();
        // Everything measured after the epoch is read-only: no autograd graph is needed.
        let _no_grad = tch::no_grad_guard();
        let parameters = model.parameters();
        let weight_reg = penalty.on_parameters(&parameters).double_value(&[]);
        let evaluate = |split: Split| -> Option<SplitRecord> {
            if model.split_len(split) == 0 {
                return None;
            }
            let evaluation = model.evaluate(split, penalty);
            let reg_loss = if penalty.kind.is_per_example() {
                penalty.lambda * evaluation.example_rows_penalty_sum / evaluation.examples as f64
            } else {
                weight_reg
            };
            let mut record = evaluation.metrics;
            record.insert("loss".into(), evaluation.base_loss);
            record.insert("base_loss".into(), evaluation.base_loss);
            record.insert("reg_loss".into(), reg_loss);
            record.insert("total_loss".into(), evaluation.base_loss + reg_loss);
            Some(record)
        };
        if let Some(train_eval) = evaluate(Split::Train) {
            for (key, value) in train_eval {
                if !key.ends_with("loss") {
                    train_record.insert(key, value);
                }
            }
        }
        let validation = evaluate(Split::Validation);
        let test = evaluate(Split::Test);
        let record = EpochRecord {
            epoch,
            train: train_record,
            validation,
            test,
            weight_norms: weight_norms(&parameters),
            implied_weight_decay_loss: implied_weight_decay_loss(
                settings.weight_decay,
                &parameters,
            ),
            lr: settings.lr,
            seconds,
            eval_seconds: eval_start.elapsed().as_secs_f64(),
        };
        if settings.progress {
            eprintln!("{}", epoch_line(&record, settings.epochs, metric.key()));
        }
        if let Some(value) = record
            .test
            .as_ref()
            .and_then(|t| t.get(metric.key()))
            .copied()
        {
            if value.is_finite() && best.is_none_or(|(_, b)| metric.is_better(value, b)) {
                best = Some((epoch, value));
            }
        }
        writer.document.epochs.push(record);
        update_summary(
            writer,
            best,
            metric.key(),
            run_start.elapsed().as_secs_f64(),
        );
        if !means[2].is_finite() {
            return diverged(writer, epoch, means[2]);
        }
        if stopped {
            return finish(writer, RunStatus::Interrupted, Some(format!("interrupted during epoch {epoch} after {steps_done} of {steps_per_epoch} steps")));
        }
        writer.document.updated_at = now_utc();
        writer.save()?;
    }
    finish(writer, RunStatus::Completed, None)
}

fn finish(writer: &mut RunWriter, status: RunStatus, message: Option<String>) -> Result<Outcome> {
    writer.finish(status, message.clone())?;
    Ok(Outcome { status, message })
}

fn diverged(writer: &mut RunWriter, epoch: usize, total: f64) -> Result<Outcome> {
    let message = format!(
        "diverged in epoch {epoch}: total loss is {total}; lower --lr or the penalty strength"
    );
    finish(writer, RunStatus::Diverged, Some(message))
}

fn update_summary(
    writer: &mut RunWriter,
    best: Option<(usize, f64)>,
    metric: &str,
    total_seconds: f64,
) {
    let final_test = writer
        .document
        .epochs
        .last()
        .and_then(|e| e.test.as_ref())
        .and_then(|t| t.get(metric))
        .copied();
    let summary = &mut writer.document.summary;
    summary.insert("best_epoch".into(), best.map(|(e, _)| e).into());
    summary.insert(format!("best_test_{metric}"), best.map(|(_, v)| v).into());
    summary.insert(
        format!("final_test_{metric}"),
        final_test.filter(|v| v.is_finite()).into(),
    );
    summary.insert(
        "epochs_completed".into(),
        writer.document.epochs.len().into(),
    );
    summary.insert("total_seconds".into(), total_seconds.into());
}

fn progress_bar(enabled: bool, steps: u64, epoch: usize, epochs: usize) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(steps);
    bar.set_style(
        ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} steps {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("{epoch}/{epochs}"));
    bar
}

fn epoch_line(record: &EpochRecord, epochs: usize, metric: &str) -> String {
    let get = |r: &SplitRecord, k: &str| r.get(k).copied().unwrap_or(f64::NAN);
    let mut line = format!(
        "epoch {:>3}/{epochs}  train base {:.5} reg {:.5} total {:.5}  {metric} {:.4}",
        record.epoch,
        get(&record.train, "base_loss"),
        get(&record.train, "reg_loss"),
        get(&record.train, "total_loss"),
        get(&record.train, metric),
    );
    for (name, split) in [("val", &record.validation), ("test", &record.test)] {
        if let Some(split) = split {
            line += &format!(
                "  {name} loss {:.5} {metric} {:.4}",
                get(split, "loss"),
                get(split, metric)
            );
        }
    }
    line + &format!("  {:.2}s", record.seconds)
}

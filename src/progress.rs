//! What a run shows on the console while it trains: on a terminal a progress bar with the
//! current losses; elsewhere (nohup, CI, Slurm, a pipe) one plain line per epoch; nothing
//! with `--quiet`.

use crate::schema::{EpochRecord, SplitRecord};
use crate::train::{Event, Observer};
use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleMode {
    /// Progress bar and epoch lines (stderr is a terminal).
    Terminal,
    /// One line per epoch.
    Lines,
    Quiet,
}

impl ConsoleMode {
    pub fn detect(quiet: bool) -> Self {
        if quiet {
            ConsoleMode::Quiet
        } else if std::io::stderr().is_terminal() {
            ConsoleMode::Terminal
        } else {
            ConsoleMode::Lines
        }
    }
}

/// The console observer.
pub struct Console {
    mode: ConsoleMode,
    metric: String,
    epochs: usize,
    bar: ProgressBar,
}

/// The bar shows the losses about this many times an epoch: a host read that often costs
/// nothing measurable, unlike one per step on a GPU.
const REFRESHES_PER_EPOCH: usize = 20;

impl Console {
    pub fn new(mode: ConsoleMode, metric: &str) -> Self {
        Console {
            mode,
            metric: metric.to_string(),
            epochs: 0,
            bar: ProgressBar::hidden(),
        }
    }

    fn start_bar(&mut self, epoch: usize, epochs: usize, steps: usize) {
        self.epochs = epochs;
        if self.mode != ConsoleMode::Terminal {
            return;
        }
        let bar = ProgressBar::new(steps as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "epoch {prefix} [{bar:30}] {pos}/{len} steps, epoch ends in ~{eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("{epoch}/{epochs}"));
        self.bar = bar;
    }
}

impl Observer for Console {
    fn on_event(&mut self, event: &Event) -> Result<()> {
        match event {
            Event::EpochStarted {
                epoch,
                epochs,
                steps,
            } => self.start_bar(*epoch, *epochs, *steps),
            Event::Step { losses, .. } => {
                self.bar.inc(1);
                if let Some([base, reg, total]) = losses {
                    self.bar
                        .set_message(format!("base {base:.4} reg {reg:.4} total {total:.4}"));
                }
            }
            Event::Evaluating { .. } => {
                self.bar
                    .set_message("evaluating train, validation and test");
            }
            Event::EpochEnded(record) => {
                self.bar.finish_and_clear();
                if self.mode != ConsoleMode::Quiet {
                    crate::util::erroutln!("{}", epoch_line(record, self.epochs, &self.metric));
                }
            }
            Event::StepLogged(_) | Event::Resumable(_) => {}
        }
        Ok(())
    }

    fn wants_losses(&self, step_in_epoch: usize, steps: usize) -> bool {
        self.mode == ConsoleMode::Terminal
            && (step_in_epoch + 1).is_multiple_of((steps / REFRESHES_PER_EPOCH).max(1))
    }
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
    if record.partial {
        line += "  (partial epoch)";
    }
    line + &format!("  {:.2}s", record.seconds)
}

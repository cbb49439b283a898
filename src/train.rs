//! The one training loop, shared by every model.
//!
//! Per epoch: a seeded permutation (drawn on the CPU so that a seed means the same batch order
//! on every device), consecutive `index_select` batches, losses accumulated on the device and
//! read once per epoch (or every `log_every` steps), then an evaluation under `no_grad`.
//! The loop reports what happens as [`Event`]s to [`Observer`]s (progress display, the run
//! document's writer) and stops between steps when its [`Interrupter`] asks.
//!
//! After every whole epoch the loop is at a point it can resume from: it announces a
//! [`ResumePoint`] (what a checkpoint saves), and [`TrainingLoop::resume`] continues from one.

use crate::interrupt::Interrupter;
use crate::model::{Model, Split};
use crate::optim::Optimizer;
use crate::regularization::{implied_weight_decay_loss, weight_norms, Penalty};
use crate::schedule::{EarlyStop, LrSchedule, Scheduler};
use crate::schema::{EpochRecord, RestoredWeights, SplitRecord, StepRecord};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

#[derive(Debug, Clone)]
pub struct LoopSettings {
    pub epochs: usize,
    pub batch_size: i64,
    pub log_every: Option<usize>,
    pub device: Device,
    pub weight_decay: f64,
    pub schedule: LrSchedule,
    pub early_stop: Option<EarlyStop>,
    /// Put the best validation epoch's weights back at the end.
    pub restore_best: bool,
    /// End after this epoch (before the last), resumable: [`LoopOutcome::Paused`].
    pub pause_after: Option<usize>,
}

/// What the loop tells its observers.
#[derive(Debug)]
pub enum Event<'a> {
    EpochStarted {
        epoch: usize,
        epochs: usize,
        steps: usize,
    },
    /// After each optimizer step; `losses` (base, reg, total) when some observer asked for
    /// them at this step (reading them costs a device sync).
    Step {
        step_in_epoch: usize,
        losses: Option<[f64; 3]>,
    },
    StepLogged(&'a StepRecord),
    Evaluating {
        epoch: usize,
    },
    EpochEnded(&'a EpochRecord),
    /// A whole epoch is done and recorded: the loop could resume from here.
    Resumable(&'a ResumePoint<'a>),
}

/// What the loop needs, besides the model's and optimizer's tensors, to continue where it
/// stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoopState {
    /// Whole epochs trained.
    pub epochs_done: usize,
    /// Optimizer steps taken.
    pub global_step: usize,
    /// `None` until the first epoch starts.
    pub scheduler: Option<Scheduler>,
    pub best: BestEpoch,
}

/// The best validation epoch so far (the epoch the summary selects, restored by
/// `restore_best` and saved as the selected model) and early stopping's count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BestEpoch {
    pub epoch: Option<usize>,
    pub value: Option<f64>,
    /// The value early stopping last counted as an improvement (by more than min_delta).
    pub reference: Option<f64>,
    pub epochs_without_improvement: usize,
}

/// The loop between two epochs: everything a checkpoint saves.
pub struct ResumePoint<'a> {
    pub state: &'a LoopState,
    pub model: &'a dyn Model,
    pub optimizer: &'a Optimizer,
    /// The best validation epoch's weights, in the model's parameter order (empty without
    /// a validation split).
    pub best_weights: &'a [Tensor],
}

impl std::fmt::Debug for ResumePoint<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResumePoint")
            .field("state", self.state)
            .finish_non_exhaustive()
    }
}

/// Receives the loop's events. Errors (a document that cannot be written) stop the run.
pub trait Observer {
    fn on_event(&mut self, event: &Event) -> Result<()>;

    /// Whether this observer wants the current losses after step `step_in_epoch` (0-based).
    fn wants_losses(&self, _step_in_epoch: usize, _steps: usize) -> bool {
        false
    }
}

/// A model's own per-batch step in place of autograd's (the fused CPU step of matrix
/// factorization): loss, penalty, gradients and the optimizer's update in one call, with the
/// same numbers as [`Model::batch_loss`], the penalty's training term, `backward` and
/// [`Optimizer::step`].
pub trait FusedStep {
    /// Trains on the examples at `indices` (int64, CPU); returns [base, reg, total].
    fn step(&mut self, indices: &Tensor, optimizer: &mut Optimizer) -> Result<[f32; 3]>;
}

/// One step's losses: a device tensor (autograd) or numbers already on the host (fused).
enum StepLosses {
    Device(Tensor),
    Host([f64; 3]),
}

impl StepLosses {
    fn read(&self) -> Result<[f64; 3]> {
        match self {
            StepLosses::Device(losses) => {
                let v = Vec::<f64>::try_from(losses)?;
                Ok([v[0], v[1], v[2]])
            }
            StepLosses::Host(losses) => Ok(*losses),
        }
    }
}

/// How the loop ended.
#[derive(Debug, Clone, PartialEq)]
pub enum LoopOutcome {
    /// Every epoch ran, or early stopping ended the run after `stopped_early` epochs.
    Completed {
        stopped_early: Option<usize>,
        restored: Option<RestoredWeights>,
    },
    /// A signal asked the loop to stop; `during_epoch` had `steps_done` steps.
    Interrupted {
        signal: i32,
        during_epoch: usize,
        steps_done: usize,
    },
    /// A loss became non-finite.
    Diverged { epoch: usize, total_loss: f64 },
    /// `pause_after` was reached: `epoch` epochs are done and the run can continue.
    Paused { epoch: usize },
}

/// Everything one epoch's training produced.
struct EpochTraining {
    /// Mean base, reg and total loss over the steps taken.
    means: [f64; 3],
    steps_done: usize,
    seconds: f64,
    diverged_at: Option<f64>,
}

/// The model, its optimizer and penalty, and where events go.
pub struct TrainingLoop<'a> {
    pub model: &'a dyn Model,
    pub optimizer: &'a mut Optimizer,
    pub penalty: &'a Penalty,
    pub settings: &'a LoopSettings,
    pub observers: Vec<&'a mut dyn Observer>,
    pub interrupter: &'a Interrupter,
    /// Trains each batch instead of autograd when set ([`Self::use_fused_step`]).
    fused: Option<&'a mut dyn FusedStep>,
    state: LoopState,
    best_weights: Vec<Tensor>,
}

impl<'a> TrainingLoop<'a> {
    pub fn new(
        model: &'a dyn Model,
        optimizer: &'a mut Optimizer,
        penalty: &'a Penalty,
        settings: &'a LoopSettings,
        interrupter: &'a Interrupter,
    ) -> Self {
        TrainingLoop {
            model,
            optimizer,
            penalty,
            settings,
            observers: Vec::new(),
            interrupter,
            fused: None,
            state: LoopState {
                epochs_done: 0,
                global_step: 0,
                scheduler: None,
                best: BestEpoch::default(),
            },
            best_weights: Vec::new(),
        }
    }

    /// Continues from a checkpoint's state (the model's and optimizer's tensors are loaded
    /// by the caller); `best_weights` as the checkpoint saved them.
    pub fn resume(&mut self, state: LoopState, best_weights: Vec<Tensor>) -> Result<()> {
        let expected = if state.best.epoch.is_some() && self.keeps_best_weights() {
            self.model.parameters().len()
        } else {
            0
        };
        if best_weights.len() != expected {
            bail!(
                "the checkpoint has {} best-epoch tensors, this model needs {expected}",
                best_weights.len()
            );
        }
        self.state = state;
        self.best_weights = best_weights;
        Ok(())
    }

    /// The best validation epoch and its weights (named as the model's parameters), when
    /// there is a validation split.
    pub fn best_weights(&self) -> Option<(usize, Vec<(String, Tensor)>)> {
        let epoch = self.state.best.epoch?;
        if self.best_weights.is_empty() {
            return None;
        }
        let names = self.model.parameters().into_iter().map(|p| p.name);
        Some((
            epoch,
            names
                .zip(self.best_weights.iter().map(Tensor::shallow_clone))
                .collect(),
        ))
    }

    /// With a validation split the best epoch's weights are kept, to restore them or to save
    /// them as the selected model.
    fn keeps_best_weights(&self) -> bool {
        self.model.split_len(Split::Validation) > 0
    }

    /// Trains every batch with `step` instead of autograd.
    pub fn use_fused_step(&mut self, step: &'a mut dyn FusedStep) {
        self.fused = Some(step);
    }

    pub fn observe(&mut self, observer: &'a mut dyn Observer) {
        self.observers.push(observer);
    }

    fn emit(&mut self, event: Event) -> Result<()> {
        for observer in self.observers.iter_mut() {
            observer.on_event(&event)?;
        }
        Ok(())
    }

    fn steps_per_epoch(&self) -> usize {
        let n = self.model.split_len(Split::Train);
        ((n + self.settings.batch_size - 1) / self.settings.batch_size) as usize
    }

    /// Trains for the configured epochs.
    pub fn run(&mut self) -> Result<LoopOutcome> {
        let metric = self.model.headline_metric();
        let mut scheduler = self.state.scheduler.take().unwrap_or_else(|| {
            Scheduler::new(
                self.settings.schedule,
                self.optimizer.lr(),
                self.settings.epochs,
                metric.higher_is_better(),
            )
        });
        let mut stopped_early = None;
        if let Some(epoch) = self.pause_point(self.state.epochs_done) {
            return Ok(LoopOutcome::Paused { epoch });
        }
        for epoch in self.state.epochs_done + 1..=self.settings.epochs {
            let steps = self.steps_per_epoch();
            self.optimizer.set_lr(scheduler.lr())?;
            self.emit(Event::EpochStarted {
                epoch,
                epochs: self.settings.epochs,
                steps,
            })?;
            let training = self.train_epoch(epoch, steps)?;
            if let Some(total_loss) = training.diverged_at {
                return Ok(LoopOutcome::Diverged { epoch, total_loss });
            }
            let interrupted = self.interrupter.signal();
            if training.steps_done == 0 {
                return Ok(LoopOutcome::Interrupted {
                    signal: interrupted.unwrap_or(2),
                    during_epoch: epoch,
                    steps_done: 0,
                });
            }
            self.emit(Event::Evaluating { epoch })?;
            let record = self.evaluate(epoch, &training, training.steps_done < steps);
            self.emit(Event::EpochEnded(&record))?;
            let validation = record
                .validation
                .as_ref()
                .and_then(|v| v.get(&metric.key()))
                .copied();
            if !training.means[2].is_finite() {
                return Ok(LoopOutcome::Diverged {
                    epoch,
                    total_loss: training.means[2],
                });
            }
            if let Some(signal) = interrupted {
                return Ok(LoopOutcome::Interrupted {
                    signal,
                    during_epoch: epoch,
                    steps_done: training.steps_done,
                });
            }
            scheduler.step(validation);
            let stop = self.track_best(epoch, validation)?;
            self.state.epochs_done = epoch;
            self.state.scheduler = Some(scheduler.clone());
            self.announce_resume_point()?;
            if stop {
                stopped_early = Some(epoch);
                break;
            }
            if let Some(epoch) = self.pause_point(epoch) {
                return Ok(LoopOutcome::Paused { epoch });
            }
        }
        let restored = if self.settings.restore_best {
            self.restore_best()?
        } else {
            None
        };
        Ok(LoopOutcome::Completed {
            stopped_early,
            restored,
        })
    }

    /// `done` when the run pauses there: at or past `pause_after`, before the last epoch.
    fn pause_point(&self, done: usize) -> Option<usize> {
        let pause = self.settings.pause_after?;
        (done >= pause && done > 0 && done < self.settings.epochs).then_some(done)
    }

    fn announce_resume_point(&mut self) -> Result<()> {
        let point = ResumePoint {
            state: &self.state,
            model: self.model,
            optimizer: self.optimizer,
            best_weights: &self.best_weights,
        };
        for observer in self.observers.iter_mut() {
            observer.on_event(&Event::Resumable(&point))?;
        }
        Ok(())
    }

    /// Remembers the best validation epoch (the one the summary selects: strictly better,
    /// earliest on ties) with its weights, and counts epochs without an improvement larger
    /// than min_delta; returns whether early stopping should end the run now.
    fn track_best(&mut self, epoch: usize, validation: Option<f64>) -> Result<bool> {
        let Some(value) = validation.filter(|v| v.is_finite()) else {
            return Ok(false);
        };
        let metric = self.model.headline_metric();
        let keeps_weights = self.keeps_best_weights();
        let best = &mut self.state.best;
        if best.value.is_none_or(|b| metric.is_better(value, b)) {
            best.epoch = Some(epoch);
            best.value = Some(value);
            if keeps_weights {
                let _no_grad = tch::no_grad_guard();
                self.best_weights = self
                    .model
                    .parameters()
                    .iter()
                    .map(|p| p.tensor.detach().copy())
                    .collect();
            }
        }
        let best = &mut self.state.best;
        let early_stop = self.settings.early_stop.unwrap_or(EarlyStop::NEVER);
        if early_stop.improves(value, best.reference, metric.higher_is_better()) {
            best.reference = Some(value);
            best.epochs_without_improvement = 0;
        } else {
            best.epochs_without_improvement += 1;
        }
        Ok(early_stop.patience_ran_out(best.epochs_without_improvement))
    }

    /// Puts the best validation epoch's weights back and measures them again.
    fn restore_best(&mut self) -> Result<Option<RestoredWeights>> {
        let Some(epoch) = self
            .state
            .best
            .epoch
            .filter(|_| !self.best_weights.is_empty())
        else {
            return Ok(None);
        };
        {
            let _no_grad = tch::no_grad_guard();
            for (parameter, saved) in self.model.parameters().iter().zip(&self.best_weights) {
                parameter.tensor.shallow_clone().copy_(saved);
            }
        }
        let _no_grad = tch::no_grad_guard();
        let parameters = self.model.parameters();
        let weight_reg = self.penalty.on_parameters(&parameters).double_value(&[]);
        Ok(Some(RestoredWeights {
            epoch,
            validation: self.evaluate_split(Split::Validation, weight_reg),
            test: self.evaluate_split(Split::Test, weight_reg),
        }))
    }

    /// One pass over a fresh permutation of the training examples (or fewer steps when
    /// interrupted).
    fn train_epoch(&mut self, epoch: usize, steps: usize) -> Result<EpochTraining> {
        let start = Instant::now();
        let device = self.settings.device;
        let n_train = self.model.split_len(Split::Train);
        let batch_size = self.settings.batch_size;
        let permutation = Tensor::randperm(n_train, (Kind::Int64, Device::Cpu)).to_device(device);
        // base, reg, total: summed in float64 on the device, read once at the end (the fused
        // step's are on the host already: the same float64 additions there).
        let mut sums = Tensor::zeros([3], (Kind::Double, device));
        let mut host_sums = [0f64; 3];
        let mut steps_done = 0;
        for step in 0..steps {
            if self.interrupter.is_requested() {
                break;
            }
            let begin = step as i64 * batch_size;
            let indices = permutation.narrow(0, begin, batch_size.min(n_train - begin));
            let losses = match self.fused.as_mut() {
                Some(fused) => {
                    let [base, reg, total] = fused.step(&indices, self.optimizer)?;
                    let losses = [f64::from(base), f64::from(reg), f64::from(total)];
                    for (sum, loss) in host_sums.iter_mut().zip(losses) {
                        *sum += loss;
                    }
                    StepLosses::Host(losses)
                }
                None => {
                    let losses = self.step(&indices)?.to_kind(Kind::Double);
                    sums += &losses;
                    StepLosses::Device(losses)
                }
            };
            steps_done += 1;
            self.state.global_step += 1;
            if let Some(total) = self.after_step(epoch, step, steps, &losses)? {
                return Ok(EpochTraining {
                    means: [f64::NAN; 3],
                    steps_done,
                    seconds: start.elapsed().as_secs_f64(),
                    diverged_at: Some(total),
                });
            }
        }
        let means = if steps_done == 0 {
            [f64::NAN; 3]
        } else if self.fused.is_some() {
            host_sums.map(|sum| sum / steps_done as f64)
        } else {
            let values = Vec::<f64>::try_from(&(sums / steps_done as f64))?;
            [values[0], values[1], values[2]]
        };
        Ok(EpochTraining {
            means,
            steps_done,
            seconds: start.elapsed().as_secs_f64(),
            diverged_at: None,
        })
    }

    /// Forward, penalty, backward and update on one batch; returns [base, reg, total].
    fn step(&mut self, indices: &Tensor) -> Result<Tensor> {
        let output = self.model.batch_loss(indices);
        let parameters = if self.penalty.kind.is_per_example() {
            Vec::new()
        } else {
            self.model.parameters()
        };
        let batch_len = indices.size()[0];
        let reg_loss = self
            .penalty
            .training_term(&parameters, &output.example_rows, batch_len);
        let total_loss = &output.base_loss + &reg_loss;
        self.optimizer.zero_grad()?;
        total_loss.backward();
        self.optimizer.step()?;
        Ok(Tensor::stack(
            &[
                output.base_loss.detach(),
                reg_loss.detach(),
                total_loss.detach(),
            ],
            0,
        ))
    }

    /// Reads the losses when an observer or the step log wants them; returns the total loss
    /// when it has become non-finite.
    fn after_step(
        &mut self,
        epoch: usize,
        step: usize,
        steps: usize,
        losses: &StepLosses,
    ) -> Result<Option<f64>> {
        let log_now = self
            .settings
            .log_every
            .is_some_and(|every| self.state.global_step.is_multiple_of(every));
        let wanted = self.observers.iter().any(|o| o.wants_losses(step, steps));
        let values = if log_now || wanted {
            Some(losses.read()?)
        } else {
            None
        };
        self.emit(Event::Step {
            step_in_epoch: step,
            losses: values,
        })?;
        if let (true, Some([base_loss, reg_loss, total_loss])) = (log_now, values) {
            let record = StepRecord {
                epoch,
                step: self.state.global_step,
                base_loss,
                reg_loss,
                total_loss,
            };
            self.emit(Event::StepLogged(&record))?;
            if !total_loss.is_finite() {
                return Ok(Some(total_loss));
            }
        }
        Ok(None)
    }

    /// Measures every split after an epoch, without autograd.
    fn evaluate(&self, epoch: usize, training: &EpochTraining, partial: bool) -> EpochRecord {
        let start = Instant::now();
        let _no_grad = tch::no_grad_guard();
        let parameters = self.model.parameters();
        let weight_reg = self.penalty.on_parameters(&parameters).double_value(&[]);
        let mut train = SplitRecord::from([
            ("base_loss".to_string(), training.means[0]),
            ("reg_loss".to_string(), training.means[1]),
            ("total_loss".to_string(), training.means[2]),
        ]);
        if let Some(measured) = self.evaluate_split(Split::Train, weight_reg) {
            train.extend(measured.into_iter().filter(|(k, _)| !k.ends_with("loss")));
        }
        EpochRecord {
            epoch,
            partial,
            train,
            validation: self.evaluate_split(Split::Validation, weight_reg),
            test: self.evaluate_split(Split::Test, weight_reg),
            weight_norms: weight_norms(&parameters),
            implied_weight_decay_loss: implied_weight_decay_loss(
                self.settings.weight_decay,
                &parameters,
            ),
            lr: self.optimizer.lr(),
            seconds: training.seconds,
            eval_seconds: start.elapsed().as_secs_f64(),
        }
    }

    /// Loss and metrics on one split; the penalty as in training (per-example forms over the
    /// split's own rows).
    fn evaluate_split(&self, split: Split, weight_reg: f64) -> Option<SplitRecord> {
        if self.model.split_len(split) == 0 {
            return None;
        }
        let penalty = self.penalty;
        let evaluation = self
            .model
            .evaluate(split, &|rows| penalty.example_rows_sum(rows));
        let reg_loss = if self.penalty.kind.is_per_example() {
            self.penalty.lambda * evaluation.example_rows_penalty_sum / evaluation.examples as f64
        } else {
            weight_reg
        };
        let mut record = evaluation.metrics;
        record.insert("loss".into(), evaluation.base_loss);
        record.insert("base_loss".into(), evaluation.base_loss);
        record.insert("reg_loss".into(), reg_loss);
        record.insert("total_loss".into(), evaluation.base_loss + reg_loss);
        Some(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{named_parameters, Parameter};
    use crate::model::{BatchOutput, Evaluation, Metric};
    use crate::optim::{OptimizerKind, OptimizerSettings};
    use crate::regularization::PenaltyKind;
    use std::collections::BTreeMap;
    use tch::nn;

    fn sgd(model: &Line, lr: f64) -> Optimizer {
        OptimizerSettings::new(OptimizerKind::Sgd, lr)
            .build(&model.vs)
            .unwrap()
    }

    /// y = w x on 10 points of y = 2x: small enough to check the loop's arithmetic.
    struct Line {
        vs: nn::VarStore,
        w: Tensor,
        x: Tensor,
        y: Tensor,
    }

    impl Line {
        fn new() -> Self {
            let vs = nn::VarStore::new(Device::Cpu);
            let w = vs.root().zeros("weight", &[1]);
            let x = Tensor::arange(10, (Kind::Float, Device::Cpu)) / 10.0;
            let y = &x * 2.0;
            Line { vs, w, x, y }
        }
    }

    impl Model for Line {
        fn parameters(&self) -> Vec<Parameter> {
            named_parameters(&self.vs)
        }
        fn var_store(&self) -> &nn::VarStore {
            &self.vs
        }
        fn split_len(&self, split: Split) -> i64 {
            match split {
                Split::Train | Split::Test => 10,
                Split::Validation => 0,
            }
        }
        fn batch_loss(&self, indices: &Tensor) -> BatchOutput {
            let x = self.x.index_select(0, indices);
            let y = self.y.index_select(0, indices);
            BatchOutput {
                base_loss: (&x * &self.w - y).square().mean(Kind::Float),
                example_rows: Vec::new(),
            }
        }
        fn evaluate(
            &self,
            _split: Split,
            _row_penalty: &dyn Fn(&[Parameter]) -> f64,
        ) -> Evaluation {
            let mse = (&self.x * &self.w - &self.y)
                .square()
                .mean(Kind::Float)
                .double_value(&[]);
            Evaluation {
                base_loss: mse,
                example_rows_penalty_sum: 0.0,
                examples: 10,
                metrics: BTreeMap::from([("rmse".to_string(), mse.sqrt())]),
            }
        }
        fn headline_metric(&self) -> Metric {
            Metric::Rmse
        }
    }

    #[derive(Default)]
    struct Recorder {
        epochs: Vec<EpochRecord>,
        steps: usize,
    }

    impl Observer for Recorder {
        fn on_event(&mut self, event: &Event) -> Result<()> {
            match event {
                Event::EpochEnded(record) => self.epochs.push((*record).clone()),
                Event::Step { .. } => self.steps += 1,
                _ => {}
            }
            Ok(())
        }
    }

    fn settings(epochs: usize) -> LoopSettings {
        LoopSettings {
            epochs,
            batch_size: 4,
            log_every: None,
            device: Device::Cpu,
            weight_decay: 0.0,
            schedule: LrSchedule::Constant,
            early_stop: None,
            restore_best: false,
            pause_after: None,
        }
    }

    #[test]
    fn the_loop_learns_and_reports_every_epoch() {
        tch::manual_seed(0);
        let model = Line::new();
        let mut optimizer = sgd(&model, 0.5);
        let penalty = Penalty::new(PenaltyKind::None, 0.0, None, false, 10, 4).unwrap();
        let settings = settings(30);
        let interrupter = Interrupter::new();
        let mut recorder = Recorder::default();
        let mut training =
            TrainingLoop::new(&model, &mut optimizer, &penalty, &settings, &interrupter);
        training.observe(&mut recorder);
        assert_eq!(
            training.run().unwrap(),
            LoopOutcome::Completed {
                stopped_early: None,
                restored: None
            }
        );
        assert_eq!(recorder.epochs.len(), 30);
        assert_eq!(recorder.steps, 30 * 3, "ceil(10 / 4) steps an epoch");
        let first = recorder.epochs[0].test.as_ref().unwrap()["rmse"];
        let last = recorder.epochs[29].test.as_ref().unwrap()["rmse"];
        assert!(last < 0.01 && last < first, "{first} -> {last}");
        assert!(!recorder.epochs[0].partial);
    }

    #[test]
    fn an_interrupt_stops_between_steps() {
        let model = Line::new();
        let mut optimizer = sgd(&model, 0.5);
        let penalty = Penalty::new(PenaltyKind::None, 0.0, None, false, 10, 4).unwrap();
        let settings = settings(5);
        let interrupter = Interrupter::new();
        interrupter.request(15);
        let mut training =
            TrainingLoop::new(&model, &mut optimizer, &penalty, &settings, &interrupter);
        assert_eq!(
            training.run().unwrap(),
            LoopOutcome::Interrupted {
                signal: 15,
                during_epoch: 1,
                steps_done: 0
            }
        );
    }

    #[test]
    fn a_huge_learning_rate_diverges() {
        let model = Line::new();
        let mut optimizer = sgd(&model, 1e30);
        let penalty = Penalty::new(PenaltyKind::None, 0.0, None, false, 10, 4).unwrap();
        let settings = settings(50);
        let interrupter = Interrupter::new();
        let mut training =
            TrainingLoop::new(&model, &mut optimizer, &penalty, &settings, &interrupter);
        let outcome = training.run().unwrap();

        assert!(
            matches!(outcome, LoopOutcome::Diverged { .. }),
            "{outcome:?}"
        );
    }
}

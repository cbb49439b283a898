//! Checkpoints: everything a run needs to continue where it stopped, in one `.safetensors`
//! file beside the run document (`RUN.checkpoint.safetensors`), rewritten atomically.
//!
//! Tensors: `model.<parameter>` (weights), `optimizer.<parameter>.<buffer>` (the optimizer's
//! state as torch.optim names it), `best.<parameter>` (the best validation epoch's weights)
//! and `rng.cpu` (torch's CPU generator, which draws the batch orders). Metadata
//! `regulab.checkpoint` (JSON): the loop's position and schedule ([`LoopState`]), the
//! optimizer's settings, the data's fingerprint and the time trained so far.

use crate::data::fingerprint::DataFingerprint;
use crate::model::Model;
use crate::optim::{Optimizer, OptimizerSettings, OptimizerState};
use crate::tensor_file;
use crate::train::{Event, LoopState, Observer, ResumePoint};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::Tensor;

const METADATA_KEY: &str = "regulab.checkpoint";
/// Bumped when the layout changes; older checkpoints are refused with a clear message.
const FORMAT_VERSION: u32 = 1;

/// `runs/x.json` -> `runs/x.checkpoint.safetensors`.
pub fn path_for(document: &Path) -> PathBuf {
    document.with_extension("checkpoint.safetensors")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Header {
    format_version: u32,
    /// The id of the run this checkpoint continues (its document's `run_id`).
    #[serde(default)]
    run_id: String,
    state: LoopState,
    optimizer: OptimizerSettings,
    data: DataFingerprint,
    /// Training time up to this checkpoint, so a resumed run's total stays truthful.
    elapsed_seconds: f64,
}

/// A checkpoint read back.
pub struct Checkpoint {
    pub path: PathBuf,
    pub run_id: String,
    pub state: LoopState,
    pub data: DataFingerprint,
    pub elapsed_seconds: f64,
    tensors: BTreeMap<String, Tensor>,
    optimizer: OptimizerSettings,
}

impl Checkpoint {
    pub fn read(path: &Path) -> Result<Self> {
        let file = tensor_file::read(path)?;
        let header: Header = file.metadata_json(path, METADATA_KEY)?;
        if header.format_version != FORMAT_VERSION {
            bail!(
                "{}: checkpoint format {} is not the one this regulab reads ({FORMAT_VERSION})",
                path.display(),
                header.format_version
            );
        }
        Ok(Checkpoint {
            path: path.to_path_buf(),
            run_id: header.run_id,
            state: header.state,
            data: header.data,
            elapsed_seconds: header.elapsed_seconds,
            tensors: file.tensors.into_iter().collect(),
            optimizer: header.optimizer,
        })
    }

    fn take(&mut self, name: &str, like: &Tensor) -> Result<Tensor> {
        let tensor = self
            .tensors
            .remove(name)
            .ok_or_else(|| anyhow!("{}: has no {name}", self.path.display()))?;
        if tensor.size() != like.size() {
            bail!(
                "{}: {name} is {:?} there but {:?} in this run's model",
                self.path.display(),
                tensor.size(),
                like.size()
            );
        }
        Ok(tensor.to_device(like.device()))
    }

    /// Puts the weights, the optimizer's state and the generator back; returns the best
    /// epoch's weights for the loop.
    pub fn restore(
        mut self,
        model: &dyn Model,
        optimizer: &mut Optimizer,
    ) -> Result<(LoopState, Vec<Tensor>)> {
        let parameters = model.parameters();
        let mut best = Vec::new();
        {
            let _no_grad = tch::no_grad_guard();
            for parameter in &parameters {
                let weights = self.take(&format!("model.{}", parameter.name), &parameter.tensor)?;
                parameter.tensor.shallow_clone().copy_(&weights);
                if self.state.best.epoch.is_some()
                    && self
                        .tensors
                        .contains_key(&format!("best.{}", parameter.name))
                {
                    best.push(self.take(&format!("best.{}", parameter.name), &parameter.tensor)?);
                }
            }
        }
        let device = parameters
            .first()
            .map_or(tch::Device::Cpu, |p| p.tensor.device());
        let prefix = "optimizer.";
        let names: Vec<String> = self
            .tensors
            .keys()
            .filter(|n| n.starts_with(prefix))
            .cloned()
            .collect();
        let mut buffers = Vec::with_capacity(names.len());
        for name in names {
            let tensor = self.tensors.remove(&name).unwrap_or_default();
            // `step` counts stay on the CPU as torch.optim keeps them; moments follow the weights.
            let tensor = if name.ends_with(".step") {
                tensor
            } else {
                tensor.to_device(device)
            };
            buffers.push((name[prefix.len()..].to_string(), tensor));
        }
        let state = OptimizerState {
            settings: self.optimizer.clone(),
            tensors: buffers,
        };
        optimizer
            .load_state(&state)
            .with_context(|| format!("{}: optimizer state", self.path.display()))?;
        let rng = self
            .tensors
            .remove("rng.cpu")
            .ok_or_else(|| anyhow!("{}: has no rng.cpu", self.path.display()))?;
        crate::rng::set_cpu_state(&rng).with_context(|| self.path.display().to_string())?;
        Ok((self.state, best))
    }
}

/// Writes a checkpoint at every `every`-th resumable point (an observer of the loop).
pub struct Checkpointer {
    pub path: PathBuf,
    every: usize,
    run_id: String,
    data: DataFingerprint,
    started: Instant,
    prior_seconds: f64,
}

impl Checkpointer {
    /// `prior_seconds`: time trained before this process (when resuming).
    pub fn new(
        path: PathBuf,
        every: usize,
        (run_id, data): (String, DataFingerprint),
        prior_seconds: f64,
    ) -> Self {
        Checkpointer {
            path,
            every,
            run_id,
            data,
            started: Instant::now(),
            prior_seconds,
        }
    }

    fn write(&self, point: &ResumePoint) -> Result<()> {
        let mut tensors: Vec<(String, Tensor)> = Vec::new();
        let parameters = point.model.parameters();
        for parameter in &parameters {
            tensors.push((
                format!("model.{}", parameter.name),
                parameter.tensor.shallow_clone(),
            ));
        }
        for (parameter, weights) in parameters.iter().zip(point.best_weights) {
            tensors.push((format!("best.{}", parameter.name), weights.shallow_clone()));
        }
        let optimizer = point.optimizer.state()?;
        for (name, tensor) in optimizer.tensors {
            tensors.push((format!("optimizer.{name}"), tensor));
        }
        tensors.push(("rng.cpu".into(), crate::rng::cpu_state()?));
        let header = Header {
            format_version: FORMAT_VERSION,
            run_id: self.run_id.clone(),
            state: point.state.clone(),
            optimizer: optimizer.settings,
            data: self.data.clone(),
            elapsed_seconds: self.prior_seconds + self.started.elapsed().as_secs_f64(),
        };
        let metadata = BTreeMap::from([(
            METADATA_KEY.to_string(),
            serde_json::to_string(&header).context("checkpoint header")?,
        )]);
        tensor_file::write(&self.path, &tensors, &metadata)
    }

    /// Removes the checkpoint once the run no longer needs it (it completed).
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Observer for Checkpointer {
    fn on_event(&mut self, event: &Event) -> Result<()> {
        if let Event::Resumable(point) = event {
            if self.every > 0 && point.state.epochs_done.is_multiple_of(self.every) {
                self.write(point)?;
            }
        }
        Ok(())
    }
}

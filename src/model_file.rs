//! Saved models: a run's weights as `.safetensors` with PyTorch's parameter names
//! (`user_factors`, `item_bias`, `l_layers.0.weight`, ...), so that Python's `safetensors`
//! and `load_state_dict` read them as they are. Metadata `regulab.model` (JSON) holds what a
//! model needs besides its weights: the run's configuration, constants that are not
//! parameters (the training mean of MF, the pixel scaling of the MLP) and, for MF, the raw
//! user and item ids of each row.

use crate::config::RunConfig;
use crate::schema::ModelRole;
use crate::tensor_file;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::Tensor;

const METADATA_KEY: &str = "regulab.model";
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelHeader {
    pub format_version: u32,
    pub role: ModelRole,
    /// The epoch whose weights these are.
    pub epoch: usize,
    /// The id of the run that trained it (its document's `run_id`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run_id: String,
    /// The configuration of the run that trained it.
    pub config: RunConfig,
    /// `global_mean` (MF), `pixel_mean` and `pixel_std` (MLP).
    pub constants: BTreeMap<String, f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<RowIds>,
}

/// Which raw ids the rows of MF's tables stand for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowIds {
    /// Raw user id of row i.
    pub users: Vec<u64>,
    pub items: Vec<u64>,
    /// Rows with no training rating (only in the test part): their factors were never
    /// trained, so they are predicted like unknown ids, from the biases.
    pub untrained_users: Vec<u32>,
    pub untrained_items: Vec<u32>,
}

impl ModelHeader {
    pub fn constant(&self, name: &str, path: &Path) -> Result<f64> {
        match self.constants.get(name) {
            Some(value) => Ok(*value),
            None => bail!("{}: model metadata has no {name}", path.display()),
        }
    }
}

/// `runs/x.json` -> `runs/x.final.safetensors` or `runs/x.selected.safetensors`.
pub fn path_for(document: &Path, role: ModelRole) -> PathBuf {
    document.with_extension(format!("{role}.safetensors"))
}

pub fn write(path: &Path, weights: &[(String, Tensor)], header: &ModelHeader) -> Result<()> {
    let metadata = BTreeMap::from([
        // What Python tools look for to know the tensors are PyTorch's.
        ("format".to_string(), "pt".to_string()),
        (METADATA_KEY.to_string(), serde_json::to_string(header)?),
    ]);
    tensor_file::write(path, weights, &metadata)
}

/// A model file read back.
pub struct SavedModelFile {
    pub path: PathBuf,
    pub header: ModelHeader,
    pub weights: BTreeMap<String, Tensor>,
}

impl SavedModelFile {
    pub fn read(path: &Path) -> Result<Self> {
        let file = tensor_file::read(path)?;
        let header: ModelHeader = file.metadata_json(path, METADATA_KEY)?;
        if header.format_version != FORMAT_VERSION {
            bail!(
                "{}: model format {} is not the one this regulab reads ({FORMAT_VERSION})",
                path.display(),
                header.format_version
            );
        }
        Ok(SavedModelFile {
            path: path.to_path_buf(),
            header,
            weights: file.tensors.into_iter().collect(),
        })
    }

    pub fn weight(&self, name: &str) -> Result<&Tensor> {
        match self.weights.get(name) {
            Some(tensor) => Ok(tensor),
            None => bail!("{}: has no {name} tensor", self.path.display()),
        }
    }
}

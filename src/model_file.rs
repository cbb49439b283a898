//! Saved models: a run's weights as `.safetensors` with PyTorch's parameter names
//! (`user_factors`, `item_bias`, `l_layers.0.weight`, ...), so that Python's `safetensors`
//! and `load_state_dict` read them as they are. Metadata `regulab.model` (JSON) holds what a
//! model needs besides its weights: the run's configuration, constants that are not
//! parameters (the training mean of MF, the pixel scaling of the MLP) and, for MF, the raw
//! user and item ids of each row.

use crate::config::{ModelSpec, RunConfig};
use crate::model::mf::MfVariant;
use crate::schema::ModelRole;
use crate::tensor_file;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

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
        let weights = file.tensors.into_iter().collect();
        check_tensors(path, &header, &weights)?;
        Ok(SavedModelFile {
            path: path.to_path_buf(),
            header,
            weights,
        })
    }

    pub fn weight(&self, name: &str) -> Result<&Tensor> {
        match self.weights.get(name) {
            Some(tensor) => Ok(tensor),
            None => bail!("{}: has no {name} tensor", self.path.display()),
        }
    }
}

/// The tensors (name and shape, all float32) that the model a header describes has.
fn expected_tensors(
    path: &Path,
    header: &ModelHeader,
    weights: &BTreeMap<String, Tensor>,
) -> Result<Vec<(String, Vec<i64>)>> {
    let constant = |name: &str| header.constants.get(name).map(|&v| v as i64);
    match &header.config.model {
        ModelSpec::Mf(spec) => {
            let Some(ids) = &header.ids else {
                bail!(
                    "{}: model metadata has no user and item ids",
                    path.display()
                );
            };
            let (users, items) = (ids.users.len() as i64, ids.items.len() as i64);
            for (what, rows, count) in [
                ("untrained_users", &ids.untrained_users, users),
                ("untrained_items", &ids.untrained_items, items),
            ] {
                if let Some(row) = rows.iter().find(|&&row| row as i64 >= count) {
                    bail!(
                        "{}: model metadata lists row {row} in {what}, but only {count} ids",
                        path.display()
                    );
                }
            }
            let mut expected = vec![
                ("user_factors".to_string(), vec![users, spec.dim]),
                ("item_factors".to_string(), vec![items, spec.dim]),
            ];
            if spec.variant == MfVariant::Biased {
                expected.push(("user_bias".to_string(), vec![users]));
                expected.push(("item_bias".to_string(), vec![items]));
            }
            Ok(expected)
        }
        ModelSpec::Mlp(spec) => {
            // Files from before the sizes were recorded: the outer sizes come from the
            // tensors themselves, and the chain between them is still checked.
            let size = |name: &str, dim: usize| {
                weights
                    .get(name)
                    .and_then(|t| t.size().get(dim).copied())
                    .unwrap_or(0)
            };
            let last = format!("l_layers.{}.weight", spec.hidden.len());
            let mut sizes =
                vec![constant("pixels_per_image").unwrap_or_else(|| size("l_layers.0.weight", 1))];
            sizes.extend_from_slice(&spec.hidden);
            sizes.push(constant("classes").unwrap_or_else(|| size(&last, 0)));
            Ok(sizes
                .windows(2)
                .enumerate()
                .flat_map(|(layer, pair)| {
                    [
                        (format!("l_layers.{layer}.weight"), vec![pair[1], pair[0]]),
                        (format!("l_layers.{layer}.bias"), vec![pair[1]]),
                    ]
                })
                .collect())
        }
    }
}

/// Every tensor's name, dtype and shape against the model the metadata describes (its
/// configuration, its listed ids), before anything computes with them: a wrong shape would
/// otherwise surface as a libtorch index error, or not at all.
fn check_tensors(
    path: &Path,
    header: &ModelHeader,
    weights: &BTreeMap<String, Tensor>,
) -> Result<()> {
    let file = path.display();
    let expected = expected_tensors(path, header, weights)?;
    for (name, shape) in &expected {
        let Some(tensor) = weights.get(name) else {
            bail!("{file}: tensor {name} is missing, the model's metadata needs {shape:?}");
        };
        if tensor.kind() != Kind::Float {
            bail!(
                "{file}: tensor {name} is {}, the model's metadata needs float32",
                dtype_name(tensor.kind())
            );
        }
        if &tensor.size() != shape {
            bail!(
                "{file}: tensor {name} is {:?}, the model's metadata needs {shape:?}",
                tensor.size()
            );
        }
    }
    if let Some(extra) = weights
        .keys()
        .find(|name| !expected.iter().any(|(n, _)| n == *name))
    {
        bail!("{file}: tensor {extra} is not part of the model its metadata describes");
    }
    Ok(())
}

/// The dtype as Python's safetensors and torch name it.
fn dtype_name(kind: Kind) -> String {
    match kind {
        Kind::Float => "float32".into(),
        Kind::Double => "float64".into(),
        Kind::Half => "float16".into(),
        Kind::BFloat16 => "bfloat16".into(),
        Kind::Int64 => "int64".into(),
        Kind::Int => "int32".into(),
        Kind::Uint8 => "uint8".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

//! Named tensors with text metadata in the `.safetensors` format, the file type Python's
//! `safetensors` package and PyTorch read. Checkpoints and saved models are such files;
//! writes are atomic (temp file + rename), so a killed run never leaves half a file.

use crate::util::write_atomic;
use anyhow::{anyhow, bail, Context, Result};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// A file's tensors (in name order) and its metadata.
#[derive(Debug)]
pub struct TensorFile {
    pub tensors: Vec<(String, Tensor)>,
    pub metadata: BTreeMap<String, String>,
}

impl TensorFile {
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// The metadata entry `key` parsed as JSON; an error names the file and key.
    pub fn metadata_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &Path,
        key: &str,
    ) -> Result<T> {
        let text = self
            .metadata
            .get(key)
            .ok_or_else(|| anyhow!("{}: not a regulab file (no {key} metadata)", path.display()))?;
        serde_json::from_str(text)
            .map_err(|e| anyhow!("{}: metadata {key} is not valid: {e}", path.display()))
    }
}

fn dtype(kind: Kind) -> Result<Dtype> {
    Ok(match kind {
        Kind::Uint8 => Dtype::U8,
        Kind::Int => Dtype::I32,
        Kind::Int64 => Dtype::I64,
        Kind::Float => Dtype::F32,
        Kind::Double => Dtype::F64,
        other => bail!("cannot store a {other:?} tensor"),
    })
}

fn kind(dtype: Dtype) -> Result<Kind> {
    Ok(match dtype {
        Dtype::U8 => Kind::Uint8,
        Dtype::I32 => Kind::Int,
        Dtype::I64 => Kind::Int64,
        Dtype::F32 => Kind::Float,
        Dtype::F64 => Kind::Double,
        other => bail!("unsupported tensor type {other:?}"),
    })
}

/// The bytes of a tensor as stored (CPU, contiguous, little-endian as on every machine
/// libtorch supports).
fn tensor_bytes(tensor: &Tensor) -> Result<(Dtype, Vec<usize>, Vec<u8>)> {
    let cpu = tensor.detach().to_device(Device::Cpu).contiguous();
    let numel = cpu.numel();
    let mut bytes = vec![0u8; numel * cpu.kind().elt_size_in_bytes()];
    cpu.f_copy_data_u8(&mut bytes, numel)?;
    let shape = cpu.size().iter().map(|&d| d as usize).collect();
    Ok((dtype(cpu.kind())?, shape, bytes))
}

/// Writes `tensors` and `metadata` to `path` atomically.
pub fn write(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let stored = tensors
        .iter()
        .map(|(name, tensor)| {
            Ok((
                name.clone(),
                tensor_bytes(tensor).with_context(|| format!("{}: {name}", path.display()))?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut views = Vec::with_capacity(stored.len());
    for (name, (dtype, shape, bytes)) in &stored {
        let view = TensorView::new(*dtype, shape.clone(), bytes)
            .map_err(|e| anyhow!("{}: {name}: {e:?}", path.display()))?;
        views.push((name.clone(), view));
    }
    let metadata: HashMap<String, String> = metadata.clone().into_iter().collect();
    let bytes = safetensors::tensor::serialize(views, &Some(metadata))
        .map_err(|e| anyhow!("{}: cannot encode: {e:?}", path.display()))?;
    write_atomic(path, &bytes)
}

/// Reads a whole file; errors name the path (missing, unreadable, not safetensors).
pub fn read(path: &Path) -> Result<TensorFile> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let file = SafeTensors::deserialize(&bytes)
        .map_err(|e| anyhow!("{}: not a .safetensors file ({e:?})", path.display()))?;
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| anyhow!("{}: not a .safetensors file ({e:?})", path.display()))?;
    let metadata = header
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut tensors = Vec::new();
    for (name, view) in file.tensors() {
        let size: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        let kind = kind(view.dtype()).with_context(|| format!("{}: {name}", path.display()))?;
        let tensor = Tensor::f_from_data_size(view.data(), &size, kind)
            .with_context(|| format!("{}: {name}", path.display()))?;
        tensors.push((name, tensor));
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(TensorFile { tensors, metadata })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_and_metadata_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        let weights = Tensor::randn([3, 4], (Kind::Float, Device::Cpu));
        let step = Tensor::from(5.0f32);
        let metadata = BTreeMap::from([("k".to_string(), "[1,2]".to_string())]);
        write(
            &path,
            &[
                ("w".into(), weights.shallow_clone()),
                ("step".into(), step.shallow_clone()),
            ],
            &metadata,
        )
        .unwrap();
        let file = read(&path).unwrap();
        assert!(file.get("w").unwrap().equal(&weights));
        assert!(file.get("step").unwrap().equal(&step));
        assert_eq!(
            file.metadata_json::<Vec<i32>>(&path, "k").unwrap(),
            vec![1, 2]
        );
        let missing = file
            .metadata_json::<Vec<i32>>(&path, "other")
            .unwrap_err()
            .to_string();
        assert!(missing.contains("no other metadata"), "{missing}");
        std::fs::write(&path, b"junk").unwrap();
        assert!(read(&path)
            .unwrap_err()
            .to_string()
            .contains("not a .safetensors file"));
    }
}

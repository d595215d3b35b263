//! Checkpoints: `model.safetensors` (F32, Llama / Mixtral tensor names) and `config.json`,
//! written atomically through the output crate.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::Device;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::config::ModelConfig;
use crate::data::sha256_hex;
use crate::error::{io, Error, Result};
use crate::model::{Model, Values};

/// The weights file of a checkpoint directory.
pub const WEIGHTS: &str = "model.safetensors";
/// The Hugging Face configuration of a checkpoint directory.
pub const CONFIG: &str = "config.json";

/// Write `model` into `dir` (created if missing); returns the weights file's SHA-256.
/// The bytes depend only on the values (tensors in name order, one metadata key).
pub fn save(dir: &Path, model: &Model, replace: bool) -> Result<String> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let values = model.values()?;
    let bytes = encode(&values).map_err(|reason| Error::Checkpoint {
        path: dir.join(WEIGHTS),
        reason,
    })?;
    let path = dir.join(WEIGHTS);
    output::write_atomic(&path, &bytes, replace).map_err(io(&path))?;
    let cfg = dir.join(CONFIG);
    let mut json = serde_json::to_string_pretty(&model.config.hf_config())
        .unwrap_or_default()
        .into_bytes();
    json.push(b'\n');
    output::write_atomic(&cfg, &json, replace).map_err(io(&cfg))?;
    Ok(sha256_hex(&bytes))
}

/// The safetensors bytes of `values` (little-endian F32).
pub fn encode(values: &Values) -> std::result::Result<Vec<u8>, String> {
    let raw: Vec<(&String, &Vec<usize>, Vec<u8>)> = values
        .iter()
        .map(|(n, (shape, v))| (n, shape, v.iter().flat_map(|x| x.to_le_bytes()).collect()))
        .collect();
    let views = raw
        .iter()
        .map(|(n, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.to_vec(), bytes)
                .map(|v| (n.as_str(), v))
                .map_err(|e| format!("tensor {n}: {e}"))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let meta: HashMap<String, String> = [("format".to_string(), "pt".to_string())].into();
    safetensors::tensor::serialize(views, &Some(meta)).map_err(|e| e.to_string())
}

/// Read the checkpoint in `dir` as a model of architecture `config`; every tensor must be
/// present, F32, with its shape, and no other tensor may be.
pub fn load(dir: &Path, config: ModelConfig, device: &Device) -> Result<Model> {
    let path = dir.join(WEIGHTS);
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    let bad = |reason: String| Error::Checkpoint {
        path: path.clone(),
        reason,
    };
    let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
    let mut values = BTreeMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(bad(format!(
                "tensor {name}: {:?}, expected F32",
                view.dtype()
            )));
        }
        let v: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        values.insert(name, (view.shape().to_vec(), v));
    }
    Model::from_values(config, values, device).map_err(|e| match e {
        Error::Checkpoint { reason, .. } => bad(reason),
        other => other,
    })
}

/// SHA-256 of the weights file in `dir`, or `None` when it cannot be read.
pub fn weights_sha256(dir: &Path) -> Option<String> {
    std::fs::read(dir.join(WEIGHTS))
        .ok()
        .map(|b| sha256_hex(&b))
}

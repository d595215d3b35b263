//! Helpers shared by the integration tests: locating the real models `just models` fetches,
//! and writing small safetensors checkpoints.
#![allow(dead_code, unused_imports)]

pub use testkit::zip;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};

pub use testkit::{models_dir, real_model};

/// A deterministic pseudo-random value stream (SplitMix64 → uniform in [-1, 1)).
pub struct Values(u64);

impl Values {
    pub fn new(seed: u64) -> Self {
        Values(seed)
    }
    pub fn next_f32(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    pub fn take(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.next_f32() * scale).collect()
    }
}

/// A tensor to write: name, shape, f32 values (converted to `dtype` on write).
#[derive(Clone)]
pub struct Tensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

pub fn encode(values: &[f32], dtype: Dtype) -> Vec<u8> {
    match dtype {
        Dtype::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        Dtype::F16 => values
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect(),
        Dtype::BF16 => values
            .iter()
            .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
            .collect(),
        Dtype::F64 => values
            .iter()
            .flat_map(|v| (*v as f64).to_le_bytes())
            .collect(),
        other => panic!("test writer does not encode {other:?}"),
    }
}

/// Write `tensors` as one safetensors file.
pub fn write_safetensors(path: &Path, tensors: &[Tensor], dtype: Dtype) {
    let bytes: Vec<Vec<u8>> = tensors.iter().map(|t| encode(&t.values, dtype)).collect();
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| {
            (
                t.name.clone(),
                TensorView::new(dtype, t.shape.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, &None, path).unwrap();
}

/// Write `tensors` as `shards` safetensors files plus `model.safetensors.index.json` in `dir`.
pub fn write_sharded(dir: &Path, tensors: &[Tensor], dtype: Dtype, shards: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let mut weight_map = HashMap::new();
    let per = tensors.len().div_ceil(shards);
    for (i, chunk) in tensors.chunks(per).enumerate() {
        let name = format!("model-{:05}-of-{:05}.safetensors", i + 1, shards);
        write_safetensors(&dir.join(&name), chunk, dtype);
        for t in chunk {
            weight_map.insert(t.name.clone(), name.clone());
        }
    }
    let index = serde_json::json!({"metadata": {"total_size": 0}, "weight_map": weight_map});
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        serde_json::to_vec_pretty(&index).unwrap(),
    )
    .unwrap();
}

/// A small llama-shaped model: `layers` layers of q/k/v/o, MLP and norms, plus embeddings.
pub fn tiny_llama(layers: usize, hidden: usize, seed: u64) -> Vec<Tensor> {
    let mut v = Values::new(seed);
    let mut out = vec![Tensor {
        name: "model.embed_tokens.weight".into(),
        shape: vec![64, hidden],
        values: v.take(64 * hidden, 0.5),
    }];
    for l in 0..layers {
        let s = 0.02 * (1.0 + l as f32);
        for (p, rows) in [
            ("self_attn.q_proj", hidden),
            ("self_attn.k_proj", hidden / 2),
            ("self_attn.v_proj", hidden / 2),
            ("self_attn.o_proj", hidden),
        ] {
            out.push(Tensor {
                name: format!("model.layers.{l}.{p}.weight"),
                shape: vec![rows, hidden],
                values: v.take(rows * hidden, s),
            });
        }
        for (p, shape) in [
            ("mlp.gate_proj", [2 * hidden, hidden]),
            ("mlp.up_proj", [2 * hidden, hidden]),
            ("mlp.down_proj", [hidden, 2 * hidden]),
        ] {
            out.push(Tensor {
                name: format!("model.layers.{l}.{p}.weight"),
                shape: shape.to_vec(),
                values: v.take(shape[0] * shape[1], s),
            });
        }
        for p in ["input_layernorm", "post_attention_layernorm"] {
            out.push(Tensor {
                name: format!("model.layers.{l}.{p}.weight"),
                shape: vec![hidden],
                values: v.take(hidden, 1.0),
            });
        }
    }
    out.push(Tensor {
        name: "model.norm.weight".into(),
        shape: vec![hidden],
        values: v.take(hidden, 1.0),
    });
    out.push(Tensor {
        name: "lm_head.weight".into(),
        shape: vec![64, hidden],
        values: v.take(64 * hidden, 0.5),
    });
    out
}

pub fn llama_config(layers: usize, hidden: usize) -> String {
    serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_hidden_layers": layers,
        "hidden_size": hidden, "num_attention_heads": 4, "num_key_value_heads": 2,
        "intermediate_size": 2 * hidden, "vocab_size": 64
    })
    .to_string()
}

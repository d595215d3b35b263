//! The few configuration facts a fingerprint needs, read from `config.json` (Hugging Face) or
//! from a file's own metadata (GGUF), under the many names architectures use for them.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

/// Largest config.json nullprint will parse.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// Architecture facts of a model. Every field is optional: a file may not say.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigSummary {
    /// `architectures[0]` of config.json, or the GGUF `general.architecture`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// `model_type` of config.json (`llama`, `qwen2`, `bert`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_type: Option<String>,
    /// Transformer layers (decoder layers for encoder-decoder models).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers: Option<u64>,
    /// Encoder layers of an encoder-decoder model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoder_layers: Option<u64>,
    /// Width of the residual stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hidden_size: Option<u64>,
    /// Attention (query) heads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heads: Option<u64>,
    /// Key/value heads (grouped-query or multi-query attention).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kv_heads: Option<u64>,
    /// Per-head dimension when the config states it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<u64>,
    /// MLP hidden width.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intermediate_size: Option<u64>,
    /// Routed experts per MoE layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub experts: Option<u64>,
    /// Experts used per token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub experts_per_token: Option<u64>,
    /// Vocabulary size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vocab_size: Option<u64>,
    /// Falcon's `new_decoder_architecture` (grouped fused q/k/v layout).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_decoder_architecture: Option<bool>,
    /// Falcon's `multi_query` flag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multi_query: Option<bool>,
}

impl ConfigSummary {
    /// Read `config.json` at `path`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if meta.len() > MAX_CONFIG_BYTES {
            return Err(Error::InvalidJson {
                path: path.to_path_buf(),
                reason: format!(
                    "config is {} bytes, over the {} byte cap",
                    meta.len(),
                    MAX_CONFIG_BYTES
                ),
            });
        }
        let text = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let value: Value = serde_json::from_slice(&text).map_err(|e| Error::InvalidJson {
            path: path.to_path_buf(),
            reason: format!("not valid JSON: {e}"),
        })?;
        if !value.is_object() {
            return Err(Error::InvalidJson {
                path: path.to_path_buf(),
                reason: "config.json is not a JSON object".into(),
            });
        }
        Ok(Self::from_json(&value))
    }

    /// Extract the summary from a parsed config.json (nested `text_config` is consulted too).
    pub fn from_json(v: &Value) -> Self {
        let text = v.get("text_config").filter(|t| t.is_object());
        let get = |keys: &[&str]| -> Option<u64> {
            for src in [Some(v), text].into_iter().flatten() {
                for k in keys {
                    if let Some(n) = src.get(*k).and_then(Value::as_u64) {
                        return Some(n);
                    }
                }
            }
            None
        };
        let flag = |k: &str| v.get(k).and_then(Value::as_bool);
        let encoder_layers = get(&["encoder_layers", "num_encoder_layers"]);
        let layers = if encoder_layers.is_some() {
            get(&[
                "decoder_layers",
                "num_decoder_layers",
                "num_hidden_layers",
                "n_layer",
                "num_layers",
            ])
        } else {
            get(&["num_hidden_layers", "n_layer", "num_layers", "n_layers"])
        };
        ConfigSummary {
            architecture: v
                .get("architectures")
                .and_then(|a| a.get(0))
                .and_then(Value::as_str)
                .map(str::to_owned),
            model_type: v
                .get("model_type")
                .and_then(Value::as_str)
                .map(str::to_owned),
            layers,
            encoder_layers,
            hidden_size: get(&["hidden_size", "n_embd", "d_model", "dim"]),
            heads: get(&[
                "num_attention_heads",
                "n_head",
                "encoder_attention_heads",
                "num_heads",
                "n_heads",
            ]),
            kv_heads: get(&[
                "num_key_value_heads",
                "num_kv_heads",
                "n_head_kv",
                "multi_query_group_num",
            ]),
            head_dim: get(&["head_dim", "kv_channels"]),
            intermediate_size: get(&[
                "intermediate_size",
                "n_inner",
                "ffn_dim",
                "ffn_hidden_size",
                "encoder_ffn_dim",
            ]),
            experts: get(&[
                "num_local_experts",
                "num_experts",
                "n_routed_experts",
                "moe_num_experts",
            ]),
            experts_per_token: get(&["num_experts_per_tok", "moe_topk", "num_experts_per_token"]),
            vocab_size: get(&["vocab_size", "padded_vocab_size"]),
            new_decoder_architecture: flag("new_decoder_architecture"),
            multi_query: flag("multi_query"),
        }
    }

    /// Fill every field this summary lacks from `other`.
    pub fn fill_from(&mut self, other: &ConfigSummary) {
        macro_rules! fill {
            ($($f:ident),*) => { $( if self.$f.is_none() { self.$f = other.$f.clone(); } )* };
        }
        fill!(
            architecture,
            model_type,
            layers,
            encoder_layers,
            hidden_size,
            heads,
            kv_heads,
            head_dim,
            intermediate_size,
            experts,
            experts_per_token,
            vocab_size,
            new_decoder_architecture,
            multi_query
        );
    }

    /// Per-head dimension: stated, or hidden size / heads.
    pub fn head_dim(&self) -> Option<u64> {
        self.head_dim
            .or_else(|| Some(self.hidden_size? / self.heads.filter(|&h| h > 0)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_llama_and_gpt2_names() {
        let llama = serde_json::json!({"architectures": ["LlamaForCausalLM"], "model_type": "llama",
            "num_hidden_layers": 32, "hidden_size": 4096, "num_attention_heads": 32,
            "num_key_value_heads": 8, "intermediate_size": 14336});
        let c = ConfigSummary::from_json(&llama);
        assert_eq!(c.layers, Some(32));
        assert_eq!(c.kv_heads, Some(8));
        assert_eq!(c.head_dim(), Some(128));
        let gpt2 =
            serde_json::json!({"model_type": "gpt2", "n_layer": 12, "n_embd": 768, "n_head": 12});
        let c = ConfigSummary::from_json(&gpt2);
        assert_eq!(
            (c.layers, c.hidden_size, c.heads),
            (Some(12), Some(768), Some(12))
        );
    }
}

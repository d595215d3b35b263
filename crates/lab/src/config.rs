//! The architecture of a lab model and its Hugging Face `config.json` (Llama or Mixtral).

use serde::{Deserialize, Serialize};

/// Byte-level tokenizer: one id per byte value, no vocabulary file.
pub const VOCAB: usize = 256;

/// Mixture-of-experts MLP (the dense → MoE upcycled models).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Experts {
    /// Experts per layer.
    pub count: usize,
    /// Experts each token is routed to.
    pub top_k: usize,
}

/// A Llama-style decoder: RMSNorm, rotary attention (grouped-query when `kv_heads < heads`),
/// SwiGLU MLP, untied embeddings, byte vocabulary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Decoder layers.
    pub layers: usize,
    /// Model width.
    pub hidden: usize,
    /// Attention (query) heads.
    pub heads: usize,
    /// Key/value heads (grouped-query attention when fewer than `heads`).
    pub kv_heads: usize,
    /// MLP inner width.
    pub intermediate: usize,
    /// Longest sequence (rotary table size).
    pub seq_len: usize,
    /// Rotary base.
    pub rope_theta: f64,
    /// RMSNorm epsilon.
    pub rms_eps: f64,
    /// Std of the Gaussian initialisation of every matrix (Hugging Face `initializer_range`).
    pub init_std: f64,
    /// MoE MLP instead of the dense one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experts: Option<Experts>,
}

impl ModelConfig {
    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }

    /// Check the shapes fit together; the error names the field.
    pub fn check(&self) -> std::result::Result<(), (String, String)> {
        let bad = |f: &str, r: String| Err((f.to_string(), r));
        if self.layers == 0 {
            return bad("layers", "must be at least 1".into());
        }
        if self.heads == 0 || self.hidden % self.heads != 0 {
            return bad(
                "heads",
                format!("{} does not divide hidden = {}", self.heads, self.hidden),
            );
        }
        if self.head_dim() % 2 != 0 {
            return bad(
                "heads",
                format!("head width {} must be even (rotary pairs)", self.head_dim()),
            );
        }
        if self.kv_heads == 0 || self.heads % self.kv_heads != 0 {
            return bad(
                "kv_heads",
                format!("{} does not divide heads = {}", self.kv_heads, self.heads),
            );
        }
        if self.intermediate == 0 || self.seq_len < 2 {
            return bad(
                "intermediate",
                "intermediate must be >= 1 and seq_len >= 2".into(),
            );
        }
        if !(self.init_std > 0.0 && self.init_std.is_finite()) {
            return bad("init_std", format!("must be > 0, got {}", self.init_std));
        }
        if !(self.rms_eps > 0.0 && self.rope_theta > 1.0) {
            return bad("rms_eps", "rms_eps must be > 0 and rope_theta > 1".into());
        }
        if let Some(e) = self.experts {
            if e.count < 2 || e.top_k == 0 || e.top_k > e.count {
                return bad(
                    "experts",
                    format!(
                        "need 2+ experts and 1 <= top_k <= count, got {} / {}",
                        e.count, e.top_k
                    ),
                );
            }
        }
        Ok(())
    }

    /// Number of parameters.
    pub fn parameters(&self) -> usize {
        let d = self.hidden;
        let kv = self.kv_heads * self.head_dim();
        let attn = 2 * d * d + 2 * kv * d;
        let mlp = match self.experts {
            None => 3 * d * self.intermediate,
            Some(e) => e.count * 3 * d * self.intermediate + e.count * d,
        };
        self.layers * (attn + mlp + 2 * d) + 2 * VOCAB * d + d
    }

    /// The Hugging Face `config.json` (`LlamaForCausalLM`, or `MixtralForCausalLM` with
    /// experts), so every reader of real checkpoints reads a lab model.
    pub fn hf_config(&self) -> serde_json::Value {
        let mut c = serde_json::json!({
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "vocab_size": VOCAB,
            "hidden_size": self.hidden,
            "intermediate_size": self.intermediate,
            "num_hidden_layers": self.layers,
            "num_attention_heads": self.heads,
            "num_key_value_heads": self.kv_heads,
            "head_dim": self.head_dim(),
            "max_position_embeddings": self.seq_len,
            "rms_norm_eps": self.rms_eps,
            "rope_theta": self.rope_theta,
            "hidden_act": "silu",
            "initializer_range": self.init_std,
            "tie_word_embeddings": false,
            "torch_dtype": "float32",
        });
        if let Some(e) = self.experts {
            c["architectures"] = serde_json::json!(["MixtralForCausalLM"]);
            c["model_type"] = serde_json::json!("mixtral");
            c["num_local_experts"] = serde_json::json!(e.count);
            c["num_experts_per_tok"] = serde_json::json!(e.top_k);
        }
        c
    }
}

/// The tensor names of a model, in the Llama / Mixtral layout, with their shapes.
pub fn tensor_shapes(c: &ModelConfig) -> Vec<(String, Vec<usize>)> {
    let d = c.hidden;
    let kv = c.kv_heads * c.head_dim();
    let i = c.intermediate;
    let mut out = vec![("model.embed_tokens.weight".to_string(), vec![VOCAB, d])];
    for l in 0..c.layers {
        let p = format!("model.layers.{l}");
        out.push((format!("{p}.input_layernorm.weight"), vec![d]));
        out.push((format!("{p}.self_attn.q_proj.weight"), vec![d, d]));
        out.push((format!("{p}.self_attn.k_proj.weight"), vec![kv, d]));
        out.push((format!("{p}.self_attn.v_proj.weight"), vec![kv, d]));
        out.push((format!("{p}.self_attn.o_proj.weight"), vec![d, d]));
        out.push((format!("{p}.post_attention_layernorm.weight"), vec![d]));
        match c.experts {
            None => {
                out.push((format!("{p}.mlp.gate_proj.weight"), vec![i, d]));
                out.push((format!("{p}.mlp.up_proj.weight"), vec![i, d]));
                out.push((format!("{p}.mlp.down_proj.weight"), vec![d, i]));
            }
            Some(e) => {
                out.push((
                    format!("{p}.block_sparse_moe.gate.weight"),
                    vec![e.count, d],
                ));
                for x in 0..e.count {
                    let q = format!("{p}.block_sparse_moe.experts.{x}");
                    out.push((format!("{q}.w1.weight"), vec![i, d]));
                    out.push((format!("{q}.w3.weight"), vec![i, d]));
                    out.push((format!("{q}.w2.weight"), vec![d, i]));
                }
            }
        }
    }
    out.push(("model.norm.weight".to_string(), vec![d]));
    out.push(("lm_head.weight".to_string(), vec![VOCAB, d]));
    out
}

/// Whether a tensor is a norm weight (initialised to one, no weight decay).
pub fn is_norm(name: &str) -> bool {
    name.ends_with("layernorm.weight") || name == "model.norm.weight"
}

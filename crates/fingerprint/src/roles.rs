//! Canonical tensor roles across architectures.
//!
//! A tensor name is normalised (`/` becomes `.`, `gamma`/`beta` become `weight`/`bias`), split
//! at its layer index (`layers.N`, `layer.N`, `h.N`, `blocks.N`, `blk.N`, `layer_N`), and the
//! part after the index is looked up in [`LAYER_ROLES`], a flat table that is easy to extend:
//! one line per spelling. Fused projections (GPT-2 `c_attn`, GPT-NeoX/Bloom/Falcon
//! `query_key_value`, Phi-3 `qkv_proj` and `gate_up_proj`, GGUF `attn_qkv`, CTranslate2
//! `linear_0`) are split into element ranges so that each role's statistics equal those of the
//! unfused tensor. MoE experts (`experts.N.`, GGUF 3-D `_exps` stacks) and shared experts get
//! an [`Expert`]. A tensor that matches nothing keeps its own name as an [`Role::Other`].
//!
//! This module knows names and shapes, never bytes.

// A role's share of a tensor is a list of element ranges; a list of one range is the norm.
#![allow(clippy::single_range_in_vec_init)]

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::config::ConfigSummary;

macro_rules! roles {
    ($( $variant:ident => $name:literal, $doc:literal; )*) => {
        /// A canonical role. Bias vectors of a role carry the `_bias` suffix in text form.
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Role {
            $( #[doc = $doc] $variant, )*
            /// The bias vector of a role.
            Bias(Box<Role>),
            /// A tensor no table entry matches, under its own (layer-relative) name.
            Other(String),
        }

        impl Role {
            /// Every named role (not `Bias` or `Other`), in table order.
            pub const NAMED: &'static [Role] = &[$(Role::$variant),*];

            fn base_name(&self) -> Option<&'static str> {
                match self { $( Role::$variant => Some($name), )* _ => None }
            }

            fn from_base(s: &str) -> Option<Role> {
                match s { $( $name => Some(Role::$variant), )* _ => None }
            }
        }
    };
}

roles! {
    Embed => "embed", "Token embedding matrix.";
    EmbedPos => "embed_pos", "Learned position embeddings.";
    EmbedType => "embed_type", "Token-type (segment) embeddings.";
    EmbedNorm => "embed_norm", "Normalisation right after the embeddings.";
    AttnQ => "attn_q", "Attention query projection.";
    AttnK => "attn_k", "Attention key projection.";
    AttnV => "attn_v", "Attention value projection.";
    AttnO => "attn_o", "Attention output projection.";
    AttnQNorm => "attn_q_norm", "Per-head query normalisation (Qwen3, Gemma-3).";
    AttnKNorm => "attn_k_norm", "Per-head key normalisation.";
    AttnNorm => "attn_norm", "Normalisation around self-attention (pre-norm input, or BERT's post-attention LayerNorm).";
    AttnPostNorm => "attn_post_norm", "Normalisation of the attention output (Gemma-2/3 sandwich norm).";
    XattnQ => "xattn_q", "Cross-attention query projection.";
    XattnK => "xattn_k", "Cross-attention key projection.";
    XattnV => "xattn_v", "Cross-attention value projection.";
    XattnO => "xattn_o", "Cross-attention output projection.";
    XattnNorm => "xattn_norm", "Normalisation around cross-attention.";
    MlpGate => "mlp_gate", "MLP gate projection (gated MLPs).";
    MlpUp => "mlp_up", "MLP up projection (first linear).";
    MlpDown => "mlp_down", "MLP down projection (second linear).";
    MlpNorm => "mlp_norm", "Normalisation around the MLP.";
    MlpPostNorm => "mlp_post_norm", "Normalisation of the MLP output (Gemma-2/3).";
    Router => "router", "MoE router (gate over experts).";
    LmHead => "lm_head", "Output (unembedding) matrix.";
    FinalNorm => "final_norm", "Final normalisation before the output.";
}

impl Role {
    /// This role's bias.
    pub fn bias(self) -> Role {
        Role::Bias(Box::new(self))
    }

    /// The four attention projection roles of the published fingerprint.
    pub const ATTENTION: [Role; 4] = [Role::AttnQ, Role::AttnK, Role::AttnV, Role::AttnO];
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::Bias(inner) => write!(f, "{inner}_bias"),
            Role::Other(name) => f.write_str(name),
            named => f.write_str(named.base_name().unwrap_or("?")),
        }
    }
}

impl FromStr for Role {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(r) = Role::from_base(s) {
            return Ok(r);
        }
        if let Some(base) = s.strip_suffix("_bias").and_then(Role::from_base) {
            return Ok(base.bias());
        }
        Ok(Role::Other(s.to_owned()))
    }
}

impl Serialize for Role {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(s.parse().unwrap_or(Role::Other(s)))
    }
}

/// Which stack of an encoder-decoder model a layer belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stack {
    /// The encoder.
    Encoder,
    /// The decoder.
    Decoder,
}

impl fmt::Display for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stack::Encoder => "encoder",
            Stack::Decoder => "decoder",
        })
    }
}

/// A MoE expert: routed by index, or the shared expert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Expert {
    /// Routed expert number.
    Index(u32),
    /// The shared (always active) expert.
    Shared,
}

impl fmt::Display for Expert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expert::Index(i) => write!(f, "{i}"),
            Expert::Shared => f.write_str("shared"),
        }
    }
}

impl Serialize for Expert {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Expert::Index(i) => s.serialize_u32(*i),
            Expert::Shared => s.serialize_str("shared"),
        }
    }
}

impl<'de> Deserialize<'de> for Expert {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u32),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(i) => Ok(Expert::Index(i)),
            Raw::S(s) if s == "shared" => Ok(Expert::Shared),
            Raw::S(s) => s.parse().map(Expert::Index).map_err(|_| {
                serde::de::Error::custom(format!("expert {s:?}: not a number or \"shared\""))
            }),
        }
    }
}

/// Where a tensor (or a slice of one) sits in the model.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoleKey {
    /// Encoder or decoder, for encoder-decoder models only.
    pub stack: Option<Stack>,
    /// Layer index, for per-layer tensors.
    pub layer: Option<u32>,
    /// The role.
    pub role: Role,
    /// The expert, for MoE tensors.
    pub expert: Option<Expert>,
}

/// One role's share of a tensor: the element ranges (row-major, flattened) that hold it.
#[derive(Clone, Debug, PartialEq)]
pub struct Assignment {
    /// Where it sits.
    pub key: RoleKey,
    /// Element ranges, in order; the whole tensor is `[0..numel]`.
    pub ranges: Vec<Range<u64>>,
}

/// How a fused tensor's rows (or columns) divide among roles.
#[derive(Clone, Debug, PartialEq)]
enum Fused {
    /// q, k, v projections: split by [`qkv_layout`].
    Qkv,
    /// k and v stacked by rows (CTranslate2 cross-attention `linear_1`).
    Kv,
    /// gate and up stacked by rows (Phi-3 `gate_up_proj`).
    GateUp,
}

enum Target {
    Role(Role),
    Fused(Fused),
}

/// Layer-relative names (after the layer index, without `.weight`/`.bias`) and their roles.
/// Checked in order; the first exact match wins. Extend by adding lines.
pub const LAYER_ROLES: &[(&str, &str)] = &[
    // attention, separate projections
    ("self_attn.q_proj", "attn_q"),
    ("attention.self.query", "attn_q"),
    ("attention.attn.q", "attn_q"),
    ("attn.q_proj", "attn_q"),
    ("attention.q_proj", "attn_q"),
    ("attention.wq", "attn_q"),
    ("attn_q", "attn_q"),
    ("self_attention.query", "attn_q"),
    ("attn.q", "attn_q"),
    ("mixer.q_proj", "attn_q"),
    ("self_attn.k_proj", "attn_k"),
    ("attention.self.key", "attn_k"),
    ("attention.attn.k", "attn_k"),
    ("attn.k_proj", "attn_k"),
    ("attention.k_proj", "attn_k"),
    ("attention.wk", "attn_k"),
    ("attn_k", "attn_k"),
    ("self_attention.key", "attn_k"),
    ("attn.k", "attn_k"),
    ("mixer.k_proj", "attn_k"),
    ("self_attn.v_proj", "attn_v"),
    ("attention.self.value", "attn_v"),
    ("attention.attn.v", "attn_v"),
    ("attn.v_proj", "attn_v"),
    ("attention.v_proj", "attn_v"),
    ("attention.wv", "attn_v"),
    ("attn_v", "attn_v"),
    ("self_attention.value", "attn_v"),
    ("attn.v", "attn_v"),
    ("mixer.v_proj", "attn_v"),
    ("self_attn.o_proj", "attn_o"),
    ("attention.output.dense", "attn_o"),
    ("attention.attn.o", "attn_o"),
    ("attn.out_proj", "attn_o"),
    ("self_attn.out_proj", "attn_o"),
    ("attention.wo", "attn_o"),
    ("attn.c_proj", "attn_o"),
    ("attention.dense", "attn_o"),
    ("self_attention.dense", "attn_o"),
    ("attn_output", "attn_o"),
    ("attn.o_proj", "attn_o"),
    ("attention.o_proj", "attn_o"),
    ("self_attn.dense", "attn_o"),
    ("self_attention.linear_1", "attn_o"),
    ("attn.o", "attn_o"),
    ("mixer.out_proj", "attn_o"),
    ("attn.out", "attn_o"),
    // attention, fused q/k/v
    ("self_attn.qkv_proj", "fused:qkv"),
    ("attn.c_attn", "fused:qkv"),
    ("attention.query_key_value", "fused:qkv"),
    ("self_attention.query_key_value", "fused:qkv"),
    ("attn_qkv", "fused:qkv"),
    ("attn.Wqkv", "fused:qkv"),
    ("self_attention.linear_0", "fused:qkv"),
    ("attn.qkv_proj", "fused:qkv"),
    ("attn.qkv", "fused:qkv"),
    ("mixer.Wqkv", "fused:qkv"),
    // per-head q/k norms
    ("self_attn.q_norm", "attn_q_norm"),
    ("attn_q_norm", "attn_q_norm"),
    ("self_attn.q_layernorm", "attn_q_norm"),
    ("self_attn.k_norm", "attn_k_norm"),
    ("attn_k_norm", "attn_k_norm"),
    ("self_attn.k_layernorm", "attn_k_norm"),
    // cross-attention
    ("encoder_attn.q_proj", "xattn_q"),
    ("crossattention.self.query", "xattn_q"),
    ("attention.linear_0", "xattn_q"),
    ("encoder_attn.k_proj", "xattn_k"),
    ("crossattention.self.key", "xattn_k"),
    ("encoder_attn.v_proj", "xattn_v"),
    ("crossattention.self.value", "xattn_v"),
    ("attention.linear_1", "fused:kv"),
    ("encoder_attn.out_proj", "xattn_o"),
    ("crossattention.output.dense", "xattn_o"),
    ("attention.linear_2", "xattn_o"),
    ("encoder_attn_layer_norm", "xattn_norm"),
    ("attention.layer_norm", "xattn_norm"),
    ("crossattention.output.LayerNorm", "xattn_norm"),
    // norms
    ("input_layernorm", "attn_norm"),
    ("ln_1", "attn_norm"),
    ("attention.output.LayerNorm", "attn_norm"),
    ("attention_norm", "attn_norm"),
    ("attn_norm", "attn_norm"),
    ("self_attn_layer_norm", "attn_norm"),
    ("layer_norm1", "attn_norm"),
    ("self_attention.layer_norm", "attn_norm"),
    ("ln_attn", "attn_norm"),
    ("attention.LayerNorm", "attn_norm"),
    ("norm1", "attn_norm"),
    ("attention.ln", "attn_norm"),
    ("attn_output_norm", "attn_norm"), // GGUF nomic-bert (post-norm BERT)
    ("attn_post_norm", "attn_post_norm"),
    ("post_attention_norm", "attn_post_norm"),
    ("post_attention_layernorm", "mlp_norm"),
    ("ln_2", "mlp_norm"),
    ("output.LayerNorm", "mlp_norm"),
    ("ffn_norm", "mlp_norm"),
    ("final_layer_norm", "mlp_norm"),
    ("layer_norm2", "mlp_norm"),
    ("ffn.layer_norm", "mlp_norm"),
    ("pre_feedforward_layernorm", "mlp_norm"),
    ("ln_mlp", "mlp_norm"),
    ("norm2", "mlp_norm"),
    ("layer_output_norm", "mlp_norm"), // GGUF nomic-bert
    ("post_feedforward_layernorm", "mlp_post_norm"),
    ("post_ffw_norm", "mlp_post_norm"),
    // MLP
    ("mlp.gate_proj", "mlp_gate"),
    ("feed_forward.w1", "mlp_gate"),
    ("ffn_gate", "mlp_gate"),
    ("gate_proj", "mlp_gate"),
    ("w1", "mlp_gate"),
    ("mlp.up_proj", "mlp_up"),
    ("feed_forward.w3", "mlp_up"),
    ("ffn_up", "mlp_up"),
    ("mlp.c_fc", "mlp_up"),
    ("mlp.fc1", "mlp_up"),
    ("fc1", "mlp_up"),
    ("intermediate.dense", "mlp_up"),
    ("mlp.dense_h_to_4h", "mlp_up"),
    ("mlp.fc_in", "mlp_up"),
    ("ffn.linear_0", "mlp_up"),
    ("up_proj", "mlp_up"),
    ("w3", "mlp_up"),
    ("mlp.down_proj", "mlp_down"),
    ("feed_forward.w2", "mlp_down"),
    ("ffn_down", "mlp_down"),
    ("mlp.c_proj", "mlp_down"),
    ("mlp.fc2", "mlp_down"),
    ("fc2", "mlp_down"),
    ("output.dense", "mlp_down"),
    ("mlp.dense_4h_to_h", "mlp_down"),
    ("mlp.fc_out", "mlp_down"),
    ("ffn.linear_1", "mlp_down"),
    ("down_proj", "mlp_down"),
    ("w2", "mlp_down"),
    ("mlp.gate_up_proj", "fused:gate_up"),
    ("gate_up_proj", "fused:gate_up"),
    // MoE router
    ("mlp.gate", "router"),
    ("block_sparse_moe.gate", "router"),
    ("ffn_gate_inp", "router"),
    ("mlp.router", "router"),
    ("router", "router"),
];

/// Names of tensors outside the layers (matched against the last one or two name segments).
pub const MODEL_ROLES: &[(&str, &str)] = &[
    ("embed_tokens", "embed"),
    ("wte", "embed"),
    ("word_embeddings", "embed"),
    ("tok_embeddings", "embed"),
    ("token_embd", "embed"),
    ("embed_in", "embed"),
    ("decoder.embeddings", "embed"),
    ("shared", "embed"),
    ("wpe", "embed_pos"),
    ("embed_positions", "embed_pos"),
    ("position_embeddings", "embed_pos"),
    ("position_embedding", "embed_pos"),
    ("token_type_embeddings", "embed_type"),
    ("embeddings.LayerNorm", "embed_norm"),
    ("word_embeddings_layernorm", "embed_norm"),
    ("emb_ln", "embed_norm"),
    ("embeddings.layer_norm", "embed_norm"),
    ("lm_head", "lm_head"),
    ("output", "lm_head"),
    ("embed_out", "lm_head"),
    ("projection", "lm_head"),
    ("norm", "final_norm"),
    ("ln_f", "final_norm"),
    ("output_norm", "final_norm"),
    ("final_layer_norm", "final_norm"),
    ("final_layernorm", "final_norm"),
    ("layer_norm", "final_norm"),
    ("norm_f", "final_norm"),
];

/// Segment names that precede a layer index.
const LAYER_CONTAINERS: &[&str] = &["layers", "layer", "h", "blocks", "blk", "block"];

/// A normalised name split at its layer index.
#[derive(Debug, PartialEq)]
struct Parsed<'a> {
    prefix: Vec<&'a str>,
    layer: Option<u32>,
    suffix: Vec<&'a str>,
    bias: bool,
}

fn normalise(name: &str) -> String {
    name.replace('/', ".")
}

fn parse(name: &str) -> Parsed<'_> {
    let mut segs: Vec<&str> = name.split('.').filter(|s| !s.is_empty()).collect();
    let mut bias = false;
    if let Some(last) = segs.last() {
        match *last {
            "weight" | "gamma" | "scale" => {
                segs.pop();
            }
            "bias" | "beta" => {
                bias = true;
                segs.pop();
            }
            _ => {}
        }
    }
    for i in 0..segs.len() {
        // `layer_N` (CTranslate2)
        if let Some(n) = segs[i].strip_prefix("layer_").and_then(|d| d.parse().ok()) {
            return Parsed {
                prefix: segs[..i].to_vec(),
                layer: Some(n),
                suffix: segs[i + 1..].to_vec(),
                bias,
            };
        }
        if i + 1 < segs.len() && LAYER_CONTAINERS.contains(&segs[i]) {
            if let Ok(n) = segs[i + 1].parse::<u32>() {
                return Parsed {
                    prefix: segs[..=i].to_vec(),
                    layer: Some(n),
                    suffix: segs[i + 2..].to_vec(),
                    bias,
                };
            }
        }
    }
    Parsed {
        prefix: segs,
        layer: None,
        suffix: Vec::new(),
        bias,
    }
}

/// Facts role mapping needs beyond the name: the config (for fused splits) and model type.
#[derive(Clone, Debug, Default)]
pub struct MapContext {
    /// The model's configuration.
    pub config: ConfigSummary,
}

impl MapContext {
    fn model_type(&self) -> String {
        let c = &self.config;
        c.model_type
            .clone()
            .or_else(|| c.architecture.clone())
            .unwrap_or_default()
            .to_ascii_lowercase()
    }
}

/// Map one tensor to its role assignment(s). Fused tensors yield several.
///
/// `shape` is outermost-first. Errors (a fused tensor whose size does not fit the config) are
/// returned as a message; the caller adds the file and tensor.
pub fn assign(name: &str, shape: &[u64], ctx: &MapContext) -> Result<Vec<Assignment>, SplitError> {
    let norm = normalise(name);
    let p = parse(&norm);
    let numel: u64 = shape.iter().product();
    let whole = || vec![0..numel];
    let stack = stack_of(&p.prefix);

    let Some(layer) = p.layer else {
        let role = model_role(&p.prefix).unwrap_or_else(|| Role::Other(norm.clone()));
        let role = if p.bias && !matches!(role, Role::Other(_)) {
            role.bias()
        } else {
            role
        };
        return Ok(vec![Assignment {
            key: RoleKey {
                stack,
                layer: None,
                role,
                expert: None,
            },
            ranges: whole(),
        }]);
    };

    // Experts: `experts.N.`, `shared_expert(s).`, GGUF `_exps` / `_shexp`.
    let mut suffix: Vec<&str> = p.suffix.clone();
    let mut expert = None;
    let mut stacked = false;
    if let Some(i) = suffix.iter().position(|s| *s == "experts") {
        if let Some(n) = suffix.get(i + 1).and_then(|s| s.parse::<u32>().ok()) {
            expert = Some(Expert::Index(n));
            suffix.drain(..i + 2);
        }
    } else if let Some(i) = suffix
        .iter()
        .position(|s| *s == "shared_expert" || *s == "shared_experts")
    {
        expert = Some(Expert::Shared);
        suffix.drain(..=i);
    }
    let mut joined = suffix.join(".");
    if let Some(base) = joined.strip_suffix("_exps") {
        joined = base.to_owned();
        stacked = true;
    } else if let Some(base) = joined.strip_suffix("_shexp") {
        joined = base.to_owned();
        expert = Some(Expert::Shared);
    }

    let gemma_sandwich = {
        let t = ctx.model_type();
        t.starts_with("gemma2")
            || t.starts_with("gemma3")
            || t.starts_with("gemma-2")
            || t.starts_with("gemma-3")
    };
    let target = if gemma_sandwich && joined == "post_attention_layernorm" {
        Some(Target::Role(Role::AttnPostNorm))
    } else {
        LAYER_ROLES
            .iter()
            .find(|(k, _)| *k == joined)
            .map(|(_, v)| match *v {
                "fused:qkv" => Target::Fused(Fused::Qkv),
                "fused:kv" => Target::Fused(Fused::Kv),
                "fused:gate_up" => Target::Fused(Fused::GateUp),
                r => Target::Role(r.parse().unwrap_or(Role::Other(r.to_owned()))),
            })
    };
    let with_bias = |r: Role| if p.bias { r.bias() } else { r };
    let key = |role: Role, expert: Option<Expert>| RoleKey {
        stack,
        layer: Some(layer),
        role: with_bias(role),
        expert,
    };

    let parts: Vec<(Role, Vec<Range<u64>>)> = match target {
        None => {
            let own = if p.bias {
                format!("{joined}.bias")
            } else {
                joined.clone()
            };
            return Ok(vec![Assignment {
                key: RoleKey {
                    stack,
                    layer: Some(layer),
                    role: Role::Other(own),
                    expert,
                },
                ranges: whole(),
            }]);
        }
        Some(Target::Role(role)) => vec![(role, whole())],
        Some(Target::Fused(f)) => split_fused(&f, &norm, shape, ctx, stacked)?,
    };

    if stacked {
        // GGUF 3-D expert stack [experts, rows, cols]: one assignment per expert.
        let n_exp = *shape
            .first()
            .ok_or("an expert stack needs a leading expert dimension")?;
        let per = numel / n_exp.max(1);
        let mut out = Vec::new();
        for (role, _) in &parts {
            for e in 0..n_exp {
                out.push(Assignment {
                    key: key(role.clone(), Some(Expert::Index(e as u32))),
                    ranges: vec![e * per..(e + 1) * per],
                });
            }
        }
        return Ok(out);
    }
    Ok(parts
        .into_iter()
        .map(|(role, ranges)| Assignment {
            key: key(role, expert),
            ranges,
        })
        .collect())
}

fn stack_of(prefix: &[&str]) -> Option<Stack> {
    if prefix.contains(&"encoder") {
        Some(Stack::Encoder)
    } else if prefix.contains(&"decoder") {
        Some(Stack::Decoder)
    } else {
        None
    }
}

fn model_role(segs: &[&str]) -> Option<Role> {
    let last = *segs.last()?;
    let last_two = if segs.len() >= 2 {
        format!("{}.{}", segs[segs.len() - 2], last)
    } else {
        String::new()
    };
    MODEL_ROLES
        .iter()
        .find(|(k, _)| *k == last_two)
        .or_else(|| MODEL_ROLES.iter().find(|(k, _)| *k == last))
        .and_then(|(_, v)| v.parse().ok())
}

/// Rows `r` of a tensor whose rows have `cols` elements.
fn rows(r: Range<u64>, cols: u64) -> Range<u64> {
    r.start * cols..r.end * cols
}

/// How the output rows of a fused q/k/v projection are laid out.
#[derive(Clone, Debug, PartialEq)]
pub enum QkvLayout {
    /// All q rows, then all k rows, then all v rows (Phi-3, GGUF, Falcon multi-query,
    /// CTranslate2), with these row counts.
    Sequential {
        /// Rows of q.
        q: u64,
        /// Rows of k.
        k: u64,
        /// Rows of v.
        v: u64,
    },
    /// Repeated groups of `[q_per_group heads of q, 1 head of k, 1 head of v]`
    /// (GPT-NeoX and Bloom: one head per group; Falcon's new decoder architecture: one
    /// group per key/value head).
    Grouped {
        /// Number of groups.
        groups: u64,
        /// Query heads per group.
        q_per_group: u64,
        /// Rows per head.
        head_dim: u64,
    },
}

/// A fused tensor that does not split as the config says (the caller adds the file and tensor).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{reason}")]
pub struct SplitError {
    /// What does not fit.
    pub reason: String,
}

impl SplitError {
    fn new(reason: String) -> Self {
        SplitError { reason }
    }
}

impl From<&str> for SplitError {
    fn from(reason: &str) -> Self {
        SplitError::new(reason.into())
    }
}

/// Decide the fused q/k/v layout from the model type, the config and the fused row count.
pub fn qkv_layout(name: &str, out_rows: u64, ctx: &MapContext) -> Result<QkvLayout, SplitError> {
    let c = &ctx.config;
    let t = ctx.model_type();
    let interleaved = t.contains("neox")
        || t.contains("bloom")
        || t.contains("pythia")
        || name.contains("attention.query_key_value");
    let falcon = t.contains("falcon") || t == "rw" || t.contains("refinedweb");
    if falcon {
        let heads = c
            .heads
            .ok_or("Falcon fused query_key_value needs num_attention_heads in config.json")?;
        let hd = c.head_dim().ok_or("needs hidden_size or head_dim")?;
        if c.new_decoder_architecture == Some(true) {
            let kv = c
                .kv_heads
                .ok_or("new_decoder_architecture needs num_kv_heads")?;
            return Ok(QkvLayout::Grouped {
                groups: kv,
                q_per_group: heads / kv.max(1),
                head_dim: hd,
            });
        }
        if c.multi_query.unwrap_or(true) {
            return Ok(QkvLayout::Sequential {
                q: heads * hd,
                k: hd,
                v: hd,
            });
        }
        return Ok(QkvLayout::Grouped {
            groups: heads,
            q_per_group: 1,
            head_dim: hd,
        });
    }
    if interleaved {
        let heads = c
            .heads
            .ok_or("interleaved query_key_value needs num_attention_heads in config.json")?;
        return Ok(QkvLayout::Grouped {
            groups: heads,
            q_per_group: 1,
            head_dim: out_rows / (3 * heads.max(1)),
        });
    }
    // Sequential: use the config when it fits, else equal thirds.
    if let (Some(h), Some(hd)) = (c.heads, c.head_dim()) {
        let kv = c.kv_heads.unwrap_or(h);
        if (h + 2 * kv) * hd == out_rows {
            return Ok(QkvLayout::Sequential {
                q: h * hd,
                k: kv * hd,
                v: kv * hd,
            });
        }
    }
    if out_rows % 3 == 0 {
        let third = out_rows / 3;
        return Ok(QkvLayout::Sequential {
            q: third,
            k: third,
            v: third,
        });
    }
    Err(SplitError::new(format!(
        "{out_rows} fused rows do not divide into q, k, v with the config's head counts"
    )))
}

/// Each role of a fused tensor with the element ranges that hold it.
type Sections = Vec<(Role, Vec<Range<u64>>)>;

fn split_fused(
    f: &Fused,
    name: &str,
    shape: &[u64],
    ctx: &MapContext,
    stacked: bool,
) -> Result<Sections, SplitError> {
    // Work on one expert's slice when stacked: its shape without the leading expert dim.
    let shape = if stacked { &shape[1..] } else { shape };
    if shape.is_empty() || shape.len() > 2 {
        return Err(SplitError::new(format!(
            "fused tensor of shape {shape:?}: expected 1 or 2 dimensions"
        )));
    }
    // GPT-2 Conv1D stores [in, out]: the fused axis is the columns.
    let gpt2_conv1d = name.ends_with("c_attn.weight");
    let (out, inner) = if gpt2_conv1d && shape.len() == 2 {
        (shape[1], shape[0])
    } else {
        (shape[0], shape.get(1).copied().unwrap_or(1))
    };
    let (q, k, v) = (Role::AttnQ, Role::AttnK, Role::AttnV);
    let sections: Vec<(Role, Vec<Range<u64>>)> = match f {
        Fused::Qkv => match qkv_layout(name, out, ctx)? {
            QkvLayout::Sequential {
                q: nq,
                k: nk,
                v: nv,
            } => {
                if nq + nk + nv != out {
                    return Err(SplitError::new(format!(
                        "q+k+v rows {nq}+{nk}+{nv} != {out}"
                    )));
                }
                vec![
                    (q, vec![0..nq]),
                    (k, vec![nq..nq + nk]),
                    (v, vec![nq + nk..out]),
                ]
            }
            QkvLayout::Grouped {
                groups,
                q_per_group,
                head_dim,
            } => {
                let per = (q_per_group + 2) * head_dim;
                if groups * per != out || head_dim == 0 {
                    return Err(SplitError::new(format!(
                        "{groups} groups × ({q_per_group}+2) heads × {head_dim} != {out} rows"
                    )));
                }
                let mut parts = vec![(q, vec![]), (k, vec![]), (v, vec![])];
                for g in 0..groups {
                    let base = g * per;
                    parts[0].1.push(base..base + q_per_group * head_dim);
                    parts[1]
                        .1
                        .push(base + q_per_group * head_dim..base + (q_per_group + 1) * head_dim);
                    parts[2]
                        .1
                        .push(base + (q_per_group + 1) * head_dim..base + per);
                }
                parts
            }
        },
        Fused::Kv => {
            if out % 2 != 0 {
                return Err(SplitError::new(format!(
                    "{out} rows do not split into k and v halves"
                )));
            }
            vec![
                (Role::XattnK, vec![0..out / 2]),
                (Role::XattnV, vec![out / 2..out]),
            ]
        }
        Fused::GateUp => {
            if out % 2 != 0 {
                return Err(SplitError::new(format!(
                    "{out} rows do not split into gate and up halves"
                )));
            }
            vec![
                (Role::MlpGate, vec![0..out / 2]),
                (Role::MlpUp, vec![out / 2..out]),
            ]
        }
    };
    // Turn row sections into element ranges.
    Ok(sections
        .into_iter()
        .map(|(role, secs)| {
            let ranges = if gpt2_conv1d && shape.len() == 2 {
                // columns `sec` of every row
                let mut r = Vec::with_capacity((inner as usize) * secs.len());
                for row in 0..inner {
                    for s in &secs {
                        r.push(row * out + s.start..row * out + s.end);
                    }
                }
                r
            } else {
                secs.into_iter().map(|s| rows(s, inner)).collect()
            };
            (role, ranges)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(name: &str) -> RoleKey {
        let a = assign(name, &[4, 4], &MapContext::default()).unwrap();
        assert_eq!(a.len(), 1, "{name}");
        a[0].key.clone()
    }

    #[test]
    fn llama_bert_mpnet_gguf_ct2_names() {
        for (name, layer, role) in [
            ("model.layers.3.self_attn.q_proj.weight", 3, "attn_q"),
            ("model.layers.3.self_attn.k_proj.bias", 3, "attn_k_bias"),
            ("encoder.layer.5.attention.self.value.weight", 5, "attn_v"),
            ("encoder.layer.5.attention.output.dense.weight", 5, "attn_o"),
            ("encoder.layer.5.output.dense.weight", 5, "mlp_down"),
            ("encoder.layer.5.intermediate.dense.weight", 5, "mlp_up"),
            ("encoder.layer.2.attention.attn.o.weight", 2, "attn_o"),
            ("blk.7.attn_output.weight", 7, "attn_o"),
            ("blk.7.ffn_norm.weight", 7, "mlp_norm"),
            ("blk.7.attn_output_norm.weight", 7, "attn_norm"),
            ("blk.7.layer_output_norm.bias", 7, "mlp_norm_bias"),
            (
                "encoder/layer_1/self_attention/linear_1/weight",
                1,
                "attn_o",
            ),
            (
                "encoder/layer_1/self_attention/layer_norm/gamma",
                1,
                "attn_norm",
            ),
            ("model.layers.0.mlp.gate.weight", 0, "router"),
            ("transformer.h.11.mlp.c_fc.weight", 11, "mlp_up"),
        ] {
            let k = one(name);
            assert_eq!(
                (k.layer, k.role.to_string()),
                (Some(layer), role.to_string()),
                "{name}"
            );
        }
        assert_eq!(one("model.embed_tokens.weight").role, Role::Embed);
        assert_eq!(one("lm_head.weight").role, Role::LmHead);
        assert_eq!(one("model.norm.weight").role, Role::FinalNorm);
        assert_eq!(one("output_norm.weight").role, Role::FinalNorm);
        assert_eq!(one("token_embd.weight").role, Role::Embed);
        assert_eq!(
            one("embeddings.LayerNorm.bias").role,
            Role::EmbedNorm.bias()
        );
    }

    #[test]
    fn opt_deepseek_qwen3_mixtral_names() {
        for (name, layer, role, expert) in [
            (
                "model.decoder.layers.4.self_attn.out_proj.weight",
                4,
                "attn_o",
                None,
            ),
            ("model.decoder.layers.4.fc1.weight", 4, "mlp_up", None),
            ("model.decoder.layers.4.fc2.bias", 4, "mlp_down_bias", None),
            (
                "model.decoder.layers.4.self_attn_layer_norm.weight",
                4,
                "attn_norm",
                None,
            ),
            (
                "model.decoder.layers.4.final_layer_norm.weight",
                4,
                "mlp_norm",
                None,
            ),
            (
                "model.layers.9.mlp.experts.63.gate_proj.weight",
                9,
                "mlp_gate",
                Some(Expert::Index(63)),
            ),
            (
                "model.layers.9.mlp.shared_experts.down_proj.weight",
                9,
                "mlp_down",
                Some(Expert::Shared),
            ),
            (
                "model.layers.2.self_attn.q_norm.weight",
                2,
                "attn_q_norm",
                None,
            ),
            (
                "model.layers.2.self_attn.k_norm.weight",
                2,
                "attn_k_norm",
                None,
            ),
            (
                "model.layers.1.block_sparse_moe.gate.weight",
                1,
                "router",
                None,
            ),
            (
                "model.layers.1.block_sparse_moe.experts.0.w1.weight",
                1,
                "mlp_gate",
                Some(Expert::Index(0)),
            ),
            (
                "gpt_neox.layers.3.mlp.dense_h_to_4h.weight",
                3,
                "mlp_up",
                None,
            ),
            (
                "transformer.h.3.self_attention.dense.weight",
                3,
                "attn_o",
                None,
            ),
            (
                "roberta.encoder.layer.11.attention.self.key.weight",
                11,
                "attn_k",
                None,
            ),
        ] {
            let k = one(name);
            assert_eq!(
                (k.layer, k.role.to_string(), k.expert),
                (Some(layer), role.to_string(), expert),
                "{name}"
            );
        }
        assert_eq!(
            one("model.decoder.final_layer_norm.weight").role,
            Role::FinalNorm
        );
        assert_eq!(one("gpt_neox.embed_in.weight").role, Role::Embed);
        assert_eq!(one("embed_out.weight").role, Role::LmHead);
    }

    #[test]
    fn unknown_tensors_keep_their_names() {
        let k = one("model.layers.2.mystery.thing.weight");
        assert_eq!(k.role, Role::Other("mystery.thing".into()));
        assert_eq!(k.layer, Some(2));
        assert_eq!(one("weird_global").role, Role::Other("weird_global".into()));
    }

    #[test]
    fn experts_and_shared_experts() {
        let k = one("model.layers.1.block_sparse_moe.experts.6.w2.weight");
        assert_eq!((k.role, k.expert), (Role::MlpDown, Some(Expert::Index(6))));
        let k = one("model.layers.1.mlp.shared_expert.up_proj.weight");
        assert_eq!((k.role, k.expert), (Role::MlpUp, Some(Expert::Shared)));
        let a = assign(
            "blk.2.ffn_up_exps.weight",
            &[4, 8, 16],
            &MapContext::default(),
        )
        .unwrap();
        assert_eq!(a.len(), 4);
        assert_eq!(a[3].key.expert, Some(Expert::Index(3)));
        assert_eq!(a[3].ranges, vec![3 * 128..4 * 128]);
        let k = one("blk.2.ffn_down_shexp.weight");
        assert_eq!((k.role, k.expert), (Role::MlpDown, Some(Expert::Shared)));
    }

    #[test]
    fn gemma_post_attention_norm_is_sandwich() {
        let ctx = MapContext {
            config: ConfigSummary {
                model_type: Some("gemma3_text".into()),
                ..Default::default()
            },
        };
        let a = assign("model.layers.0.post_attention_layernorm.weight", &[8], &ctx).unwrap();
        assert_eq!(a[0].key.role, Role::AttnPostNorm);
        let a = assign(
            "model.layers.0.post_attention_layernorm.weight",
            &[8],
            &MapContext::default(),
        )
        .unwrap();
        assert_eq!(a[0].key.role, Role::MlpNorm);
    }

    #[test]
    fn role_text_round_trips() {
        for r in Role::NAMED {
            assert_eq!(r.to_string().parse::<Role>().unwrap(), *r);
            let b = r.clone().bias();
            assert_eq!(b.to_string().parse::<Role>().unwrap(), b);
        }
    }
}

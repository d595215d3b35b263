//! Which tensors the derived model has, where each one's values come from, and its name.
//!
//! The base's tensors are mapped to canonical role keys by the fingerprint crate's plan (so a
//! GGUF `blk.3.attn_q.weight` and a safetensors `model.layers.3.self_attn.q_proj.weight` are
//! the same thing here). The derived model is named the Hugging Face way: Llama names for
//! dense models, Mixtral names (`block_sparse_moe.experts.E.w1`) for MoE models built from a
//! Llama-style base, Qwen2-MoE names (`mlp.experts.E.gate_proj`) for MoE models built from a
//! Qwen2 base. Only decoder-only models with unfused (or row-split) projections are
//! supported; anything else is refused with the tensor named.

use std::collections::BTreeMap;
use std::path::Path;

use fingerprint::engine::Plan;
use fingerprint::format::TensorInfo;
use fingerprint::roles::{Expert, Role, RoleKey};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::recipe::Recipe;

/// Where an output tensor's values come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// Elements `start .. start + numel` of tensor `index` of base file `file`.
    Base {
        /// Index into the base's files.
        file: usize,
        /// Index of the tensor in that file's reader.
        index: usize,
        /// First element.
        start: u64,
        /// Decoding granularity of the base tensor (its ranges must start at multiples).
        block: u64,
    },
    /// Drawn afresh: Gaussian noise only (an upcycled model's router).
    Fresh,
}

/// One tensor of the derived model.
#[derive(Clone, Debug, PartialEq)]
pub struct OutTensor {
    /// Its name in the derived checkpoint.
    pub name: String,
    /// Shape, outermost first.
    pub shape: Vec<u64>,
    /// Where its values come from.
    pub source: Source,
    /// Noise of this tensor, as a multiple of the reference std (the recipe's `rel`, or 1
    /// for a fresh router).
    pub noise: f64,
}

impl OutTensor {
    /// Number of elements.
    pub fn numel(&self) -> u64 {
        self.shape.iter().product()
    }
}

/// The whole derived model, before any value is read.
#[derive(Clone, Debug)]
pub struct Layout {
    /// Output tensors, in file order.
    pub tensors: Vec<OutTensor>,
    /// Which base layer each output layer copies.
    pub layer_map: Vec<u32>,
    /// The derived model's `config.json` (without the derivation record).
    pub config: Value,
    /// Base tensors left out (not decodable as numbers), with the reason.
    pub skipped: Vec<(String, String)>,
}

/// Naming scheme of the derived model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Style {
    Llama,
    Qwen2,
    Mixtral,
    Qwen2Moe,
}

impl Style {
    fn moe(self) -> bool {
        matches!(self, Style::Mixtral | Style::Qwen2Moe)
    }
}

/// One role slice of a base tensor.
#[derive(Clone, Debug)]
struct Part {
    key: RoleKey,
    shape: Vec<u64>,
    source: Source,
}

/// Plan the derived model. `decodable(file, index)` says whether a base tensor's values can
/// be read (the engine probes it the same way); `paths` are the base's files, for errors.
pub fn plan(
    model: &str,
    base: &Plan,
    paths: &[impl AsRef<Path>],
    recipe: &Recipe,
    decodable: &dyn Fn(usize, usize) -> bool,
) -> Result<Layout> {
    let recipe_err = |reason: String| Error::Recipe {
        model: model.to_owned(),
        reason,
    };
    let mut globals: Vec<Part> = Vec::new();
    let mut layers: BTreeMap<u32, Vec<Part>> = BTreeMap::new();
    let mut skipped = Vec::new();
    let mut base_has_experts = false;
    for t in &base.tensors {
        let path = paths[t.file].as_ref();
        let unsupported = |reason: String| Error::Unsupported {
            path: path.to_path_buf(),
            tensor: t.info.name.clone(),
            reason,
        };
        if !decodable(t.file, t.index) {
            skipped.push((
                t.info.name.clone(),
                format!("dtype {} is not decoded as numbers", t.info.dtype),
            ));
            continue;
        }
        for a in &t.assignments {
            if a.key.stack.is_some() {
                return Err(unsupported(
                    "encoder-decoder models are not supported (decoder-only only)".into(),
                ));
            }
            if matches!(a.key.role, Role::Other(_)) {
                return Err(unsupported(format!(
                    "no canonical role (`nullprint roles` lists the mapping); cannot name it in the derived model{}",
                    a.key.layer.map(|l| format!(" (layer {l})")).unwrap_or_default()
                )));
            }
            let [range] = a.ranges.as_slice() else {
                return Err(unsupported(
                    "a column block of a fused tensor cannot be copied as one tensor".into(),
                ));
            };
            let shape = part_shape(&t.info, range.end - range.start).map_err(&unsupported)?;
            base_has_experts |= a.key.expert.is_some();
            let part = Part {
                key: a.key.clone(),
                shape,
                source: Source::Base {
                    file: t.file,
                    index: t.index,
                    start: range.start,
                    block: t.info.block.max(1),
                },
            };
            match a.key.layer {
                Some(l) => layers.entry(l).or_default().push(part),
                None => globals.push(part),
            }
        }
    }
    let n_layers = match layers.keys().next_back() {
        Some(&last) => last + 1,
        None => return Err(recipe_err("no transformer layers were found".into())),
    };
    if let Some(missing) = (0..n_layers).find(|l| !layers.contains_key(l)) {
        return Err(recipe_err(format!(
            "layer {missing} of 0..{n_layers} has no tensors"
        )));
    }
    let layer_map = recipe.layer_map(n_layers).map_err(recipe_err)?;
    let qwen = [&base.config.model_type, &base.architecture]
        .into_iter()
        .flatten()
        .any(|s| s.to_ascii_lowercase().contains("qwen"));
    let experts = recipe.experts();
    if experts.is_some() && base_has_experts {
        return Err(recipe_err(
            "the base is already a mixture of experts; upcycle takes a dense model".into(),
        ));
    }
    let style = match (experts.is_some() || base_has_experts, qwen) {
        (false, false) => Style::Llama,
        (false, true) => Style::Qwen2,
        (true, false) => Style::Mixtral,
        (true, true) => Style::Qwen2Moe,
    };
    let rel = recipe.rel();
    let mut tensors = Vec::new();
    let name_of = |key: &RoleKey, layer: Option<u32>, path_of: &Part| {
        hf_name(&key.role, layer, key.expert, style).ok_or_else(|| {
            let (path, tensor) = base_tensor(base, paths, &path_of.source);
            Error::Unsupported {
                path,
                tensor,
                reason: format!(
                    "role {} has no name in a {style:?}-style checkpoint",
                    key.role
                ),
            }
        })
    };
    let embeds: Vec<&Part> = globals
        .iter()
        .filter(|p| p.key.role == Role::Embed)
        .collect();
    let finals: Vec<&Part> = globals
        .iter()
        .filter(|p| p.key.role != Role::Embed)
        .collect();
    for p in &embeds {
        tensors.push(OutTensor {
            name: name_of(&p.key, None, p)?,
            shape: p.shape.clone(),
            source: p.source.clone(),
            noise: rel,
        });
    }
    let mut hidden = None;
    for (out_layer, &base_layer) in layer_map.iter().enumerate() {
        let out_layer = out_layer as u32;
        for p in &layers[&base_layer] {
            let is_mlp = is_mlp_projection(&p.key.role);
            if p.key.role == Role::MlpUp {
                hidden = p.shape.get(1).copied();
            }
            let copies: Vec<Option<Expert>> = match experts {
                Some(e) if is_mlp => (0..e).map(|i| Some(Expert::Index(i))).collect(),
                _ => vec![p.key.expert],
            };
            for expert in copies {
                let key = RoleKey {
                    expert,
                    ..p.key.clone()
                };
                tensors.push(OutTensor {
                    name: name_of(&key, Some(out_layer), p)?,
                    shape: p.shape.clone(),
                    source: p.source.clone(),
                    noise: rel,
                });
            }
        }
        if let Some(e) = experts {
            let hidden = hidden.ok_or_else(|| {
                recipe_err(format!(
                    "layer {base_layer} has no mlp_up projection to upcycle"
                ))
            })?;
            let key = RoleKey {
                stack: None,
                layer: Some(out_layer),
                role: Role::Router,
                expert: None,
            };
            tensors.push(OutTensor {
                name: hf_name(&key.role, Some(out_layer), None, style)
                    .expect("every MoE style names its router"),
                shape: vec![u64::from(e), hidden],
                source: Source::Fresh,
                noise: 1.0,
            });
        }
    }
    for p in &finals {
        tensors.push(OutTensor {
            name: name_of(&p.key, None, p)?,
            shape: p.shape.clone(),
            source: p.source.clone(),
            noise: rel,
        });
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(dup) = tensors.iter().find(|t| !seen.insert(t.name.as_str())) {
        return Err(recipe_err(format!(
            "two base tensors map to the same derived name {}",
            dup.name
        )));
    }
    let config = config_json(base, style, layer_map.len() as u64, experts);
    Ok(Layout {
        tensors,
        layer_map,
        config,
        skipped,
    })
}

/// An MLP projection (or its bias): what upcycling copies into experts.
fn is_mlp_projection(role: &Role) -> bool {
    let base = match role {
        Role::Bias(inner) => inner.as_ref(),
        r => r,
    };
    matches!(base, Role::MlpGate | Role::MlpUp | Role::MlpDown)
}

/// The shape of `numel` leading elements (whole rows) of a tensor.
fn part_shape(info: &TensorInfo, numel: u64) -> std::result::Result<Vec<u64>, String> {
    if numel == info.numel() {
        return Ok(info.shape.clone());
    }
    let row: u64 = info.shape.iter().skip(1).product();
    if row == 0 || numel % row != 0 {
        return Err(format!(
            "a role slice of {numel} elements is not a whole number of rows of {row}"
        ));
    }
    let mut shape = info.shape.clone();
    shape[0] = numel / row;
    Ok(shape)
}

fn base_tensor(
    base: &Plan,
    paths: &[impl AsRef<Path>],
    source: &Source,
) -> (std::path::PathBuf, String) {
    match source {
        Source::Base { file, index, .. } => {
            let name = base
                .tensors
                .iter()
                .find(|t| t.file == *file && t.index == *index)
                .map(|t| t.info.name.clone())
                .unwrap_or_default();
            (paths[*file].as_ref().to_path_buf(), name)
        }
        Source::Fresh => (Default::default(), String::new()),
    }
}

/// The Hugging Face name of a role in a checkpoint of `style`.
fn hf_name(
    role: &Role,
    layer: Option<u32>,
    expert: Option<Expert>,
    style: Style,
) -> Option<String> {
    let (base, bias) = match role {
        Role::Bias(inner) => (inner.as_ref(), true),
        r => (r, false),
    };
    let param = if bias { "bias" } else { "weight" };
    let Some(l) = layer else {
        if bias {
            return None;
        }
        return match base {
            Role::Embed => Some("model.embed_tokens.weight".into()),
            Role::FinalNorm => Some("model.norm.weight".into()),
            Role::LmHead => Some("lm_head.weight".into()),
            _ => None,
        };
    };
    let module = match (base, expert) {
        (Role::AttnQ, None) => "self_attn.q_proj".to_owned(),
        (Role::AttnK, None) => "self_attn.k_proj".to_owned(),
        (Role::AttnV, None) => "self_attn.v_proj".to_owned(),
        (Role::AttnO, None) => "self_attn.o_proj".to_owned(),
        (Role::AttnQNorm, None) if !bias => "self_attn.q_norm".to_owned(),
        (Role::AttnKNorm, None) if !bias => "self_attn.k_norm".to_owned(),
        (Role::AttnNorm, None) if !bias => "input_layernorm".to_owned(),
        (Role::MlpNorm, None) if !bias => "post_attention_layernorm".to_owned(),
        (Role::Router, None) if !bias => match style {
            Style::Mixtral => "block_sparse_moe.gate".to_owned(),
            Style::Qwen2Moe => "mlp.gate".to_owned(),
            _ => return None,
        },
        (Role::MlpGate | Role::MlpUp | Role::MlpDown, None) if !style.moe() => {
            let p = match base {
                Role::MlpGate => "gate_proj",
                Role::MlpUp => "up_proj",
                _ => "down_proj",
            };
            format!("mlp.{p}")
        }
        (Role::MlpGate | Role::MlpUp | Role::MlpDown, Some(Expert::Index(e))) => match style {
            Style::Mixtral => {
                let w = match base {
                    Role::MlpGate => "w1",
                    Role::MlpUp => "w3",
                    _ => "w2",
                };
                format!("block_sparse_moe.experts.{e}.{w}")
            }
            Style::Qwen2Moe => {
                let p = match base {
                    Role::MlpGate => "gate_proj",
                    Role::MlpUp => "up_proj",
                    _ => "down_proj",
                };
                format!("mlp.experts.{e}.{p}")
            }
            _ => return None,
        },
        _ => return None,
    };
    Some(format!("model.layers.{l}.{module}.{param}"))
}

/// A `config.json` for the derived model, from the base's configuration.
fn config_json(base: &Plan, style: Style, layers: u64, experts: Option<u32>) -> Value {
    let c = &base.config;
    let (arch, model_type) = match style {
        Style::Llama => ("LlamaForCausalLM", "llama"),
        Style::Qwen2 => ("Qwen2ForCausalLM", "qwen2"),
        Style::Mixtral => ("MixtralForCausalLM", "mixtral"),
        Style::Qwen2Moe => ("Qwen2MoeForCausalLM", "qwen2_moe"),
    };
    let mut v = json!({
        "architectures": [arch],
        "model_type": model_type,
        "num_hidden_layers": layers,
    });
    let obj = v.as_object_mut().expect("a JSON object");
    let mut put = |k: &str, x: Option<u64>| {
        if let Some(x) = x {
            obj.insert(k.into(), json!(x));
        }
    };
    put("hidden_size", c.hidden_size);
    put("num_attention_heads", c.heads);
    put("num_key_value_heads", c.kv_heads);
    put("head_dim", c.head_dim);
    put("intermediate_size", c.intermediate_size);
    put("vocab_size", c.vocab_size);
    if let Some(e) = experts {
        let key = if style == Style::Qwen2Moe {
            "num_experts"
        } else {
            "num_local_experts"
        };
        put(key, Some(u64::from(e)));
        put("num_experts_per_tok", Some(2));
        if style == Style::Qwen2Moe {
            put("moe_intermediate_size", c.intermediate_size);
        }
    } else if let Some(e) = c.experts {
        put("num_local_experts", Some(e));
        put("num_experts_per_tok", c.experts_per_token);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_the_role_table() {
        use fingerprint::config::ConfigSummary;
        use fingerprint::roles::{assign, MapContext};
        let ctx = MapContext {
            config: ConfigSummary::default(),
        };
        let roles = [
            Role::AttnQ,
            Role::AttnK,
            Role::AttnV,
            Role::AttnO,
            Role::AttnQ.bias(),
            Role::AttnQNorm,
            Role::AttnNorm,
            Role::MlpNorm,
            Role::MlpGate,
            Role::MlpUp,
            Role::MlpDown,
        ];
        for style in [Style::Llama, Style::Qwen2, Style::Mixtral, Style::Qwen2Moe] {
            for role in &roles {
                let is_mlp = matches!(role, Role::MlpGate | Role::MlpUp | Role::MlpDown);
                let expert = (style.moe() && is_mlp).then_some(Expert::Index(5));
                let name = hf_name(role, Some(7), expert, style).unwrap();
                let shape = [4u64, 4];
                let got = assign(&name, &shape, &ctx).unwrap();
                assert_eq!(got.len(), 1, "{name}");
                let k = &got[0].key;
                assert_eq!(
                    (&k.role, k.layer, k.expert),
                    (role, Some(7), expert),
                    "{name}"
                );
            }
            if style.moe() {
                let name = hf_name(&Role::Router, Some(2), None, style).unwrap();
                let k = &assign(&name, &[8, 4], &ctx).unwrap()[0].key;
                assert_eq!((&k.role, k.layer), (&Role::Router, Some(2)), "{name}");
            }
        }
        for role in [Role::Embed, Role::FinalNorm, Role::LmHead] {
            let name = hf_name(&role, None, None, Style::Llama).unwrap();
            let k = &assign(&name, &[4, 4], &ctx).unwrap()[0].key;
            assert_eq!((&k.role, k.layer), (&role, None), "{name}");
        }
        assert_eq!(
            hf_name(&Role::AttnPostNorm, Some(0), None, Style::Llama),
            None
        );
        assert_eq!(hf_name(&Role::EmbedPos, None, None, Style::Llama), None);
    }
}

//! Derivations applied to a trained model before it is trained on: dense → MoE upcycling
//! (Komatsuzaki et al., 2023: every expert a copy of the MLP, a fresh router) and depth growth
//! (the controls crate's `insert` layer map: the block of layers ending at the middle layer is
//! duplicated after itself). No noise is added; training is what moves the copies apart.

use controls::Recipe;

use crate::config::{Experts, ModelConfig};
use crate::error::{Error, Result};
use crate::model::init_values;

pub use crate::model::Values;

/// Dense → MoE: each layer's MLP becomes `experts.count` copies; the router of layer `l` is
/// drawn from N(0, init_std) with `seed` (stream `l`).
pub fn upcycle(
    model: &str,
    config: &ModelConfig,
    values: &Values,
    experts: Experts,
    seed: u64,
) -> Result<(ModelConfig, Values)> {
    if config.experts.is_some() {
        return Err(Error::Derive {
            model: model.into(),
            reason: "the base is already a mixture of experts".into(),
        });
    }
    let mut out = Values::new();
    for (name, v) in values {
        let Some((prefix, proj)) = name.split_once(".mlp.") else {
            out.insert(name.clone(), v.clone());
            continue;
        };
        let w = match proj {
            "gate_proj.weight" => "w1",
            "up_proj.weight" => "w3",
            "down_proj.weight" => "w2",
            other => {
                return Err(Error::Derive {
                    model: model.into(),
                    reason: format!("unexpected MLP tensor {prefix}.mlp.{other}"),
                })
            }
        };
        for e in 0..experts.count {
            out.insert(
                format!("{prefix}.block_sparse_moe.experts.{e}.{w}.weight"),
                v.clone(),
            );
        }
    }
    for l in 0..config.layers {
        let name = format!("model.layers.{l}.block_sparse_moe.gate.weight");
        let n = experts.count * config.hidden;
        let router = init_values(&name, n, config.init_std, seed, l as u64);
        out.insert(name, (vec![experts.count, config.hidden], router));
    }
    let mut c = config.clone();
    c.experts = Some(experts);
    Ok((c, out))
}

/// Depth growth by `count` layers, copying layers as the controls crate's `insert(count)`.
pub fn grow(
    model: &str,
    config: &ModelConfig,
    values: &Values,
    count: u32,
) -> Result<(ModelConfig, Values)> {
    let map = Recipe::Insert { count, rel: 0.0 }
        .layer_map(config.layers as u32)
        .map_err(|reason| Error::Derive {
            model: model.into(),
            reason,
        })?;
    let mut out = Values::new();
    for (name, v) in values {
        if !name.starts_with("model.layers.") {
            out.insert(name.clone(), v.clone());
        }
    }
    for (new, &old) in map.iter().enumerate() {
        let from = format!("model.layers.{old}.");
        for (name, v) in values {
            if let Some(rest) = name.strip_prefix(&from) {
                out.insert(format!("model.layers.{new}.{rest}"), v.clone());
            }
        }
    }
    let mut c = config.clone();
    c.layers = map.len();
    Ok((c, out))
}

//! What a positive control does to its base model's weights.
//!
//! Every recipe ends with fine-tuning noise of relative size `rel`: i.i.d. Gaussian noise
//! with one absolute standard deviation `σ = rel · s_ref` for every tensor, where `s_ref` is
//! the median standard deviation of the base's attention projections (q, k, v, o) over all
//! layers. One absolute scale, not one proportional to each tensor, because that is what
//! training does: Adam-style updates have about the same per-element size in every matrix, so
//! matrices with small weights change more in relative terms and the depth profile of the
//! per-layer std bends. (Noise proportional to each tensor's own std multiplies every std by
//! the same `sqrt(1 + rel²)` and leaves a z-scored std curve exactly as it was: a control
//! that no fingerprint could miss.)
//!
//! Written as `kind(key=value, ...)`, e.g. `noise(rel=0.3)`, `upcycle(experts=8, rel=0.05)`,
//! `insert(count=8, rel=0.05)`, `prune(count=6, rel=0.05)`; `rel` defaults to 0 for the
//! structural recipes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Largest number of experts an upcycled model may have.
pub const MAX_EXPERTS: u32 = 256;

/// A derivation of a model's weights.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Recipe {
    /// Fine-tuning-like noise on every tensor.
    Noise {
        /// Noise std relative to the base's median attention std.
        rel: f64,
    },
    /// Dense → MoE sparse upcycling (Komatsuzaki et al., 2023): every MLP projection becomes
    /// `experts` copies, each with its own noise; a router is added, drawn afresh; attention
    /// and everything else is kept, with noise.
    Upcycle {
        /// Experts per layer.
        experts: u32,
        /// Relative noise (per expert, and on every other tensor).
        rel: f64,
    },
    /// Depth up-scaling (as in SOLAR 10.7B): the block of `count` layers that ends at the
    /// middle layer is duplicated after itself, so the model has `count` more layers.
    Insert {
        /// Layers added.
        count: u32,
        /// Relative noise afterwards.
        rel: f64,
    },
    /// `count` interior layers removed at evenly spaced depths (first and last kept).
    Prune {
        /// Layers removed.
        count: u32,
        /// Relative noise afterwards.
        rel: f64,
    },
}

impl Recipe {
    /// The relative noise size.
    pub fn rel(&self) -> f64 {
        match *self {
            Recipe::Noise { rel }
            | Recipe::Upcycle { rel, .. }
            | Recipe::Insert { rel, .. }
            | Recipe::Prune { rel, .. } => rel,
        }
    }

    /// The recipe's kind: `noise`, `upcycle`, `insert` or `prune`.
    pub fn kind(&self) -> &'static str {
        match self {
            Recipe::Noise { .. } => "noise",
            Recipe::Upcycle { .. } => "upcycle",
            Recipe::Insert { .. } => "insert",
            Recipe::Prune { .. } => "prune",
        }
    }

    /// Experts of the derived model's MLP, when it is a MoE made here.
    pub fn experts(&self) -> Option<u32> {
        match *self {
            Recipe::Upcycle { experts, .. } => Some(experts),
            _ => None,
        }
    }

    /// Which base layer each output layer copies, for a base of `layers` layers.
    pub fn layer_map(&self, layers: u32) -> std::result::Result<Vec<u32>, String> {
        if layers == 0 {
            return Err("the base model has no layers".into());
        }
        match *self {
            Recipe::Noise { .. } | Recipe::Upcycle { .. } => Ok((0..layers).collect()),
            Recipe::Insert { count, .. } => {
                let mid = layers / 2;
                if count == 0 || count > mid {
                    return Err(format!(
                        "insert count must be 1..={mid} (half of the base's {layers} layers), got {count}"
                    ));
                }
                Ok((0..mid).chain(mid - count..layers).collect())
            }
            Recipe::Prune { count, .. } => {
                if count == 0 || count + 2 > layers {
                    return Err(format!(
                        "prune count must be 1..={} (the first and last of the base's {layers} layers are kept), got {count}",
                        layers.saturating_sub(2)
                    ));
                }
                let step = f64::from(layers - 1) / f64::from(count + 1);
                let removed: Vec<u32> = (1..=count)
                    .map(|j| (f64::from(j) * step).round() as u32)
                    .collect();
                Ok((0..layers).filter(|l| !removed.contains(l)).collect())
            }
        }
    }

    fn check(&self) -> std::result::Result<(), String> {
        let rel = self.rel();
        if !rel.is_finite() || rel < 0.0 {
            return Err(format!("rel must be a finite number >= 0, got {rel}"));
        }
        if let Recipe::Noise { rel } = *self {
            if rel == 0.0 {
                return Err("noise needs rel > 0".into());
            }
        }
        if let Recipe::Upcycle { experts, .. } = *self {
            if !(2..=MAX_EXPERTS).contains(&experts) {
                return Err(format!(
                    "upcycle needs 2..={MAX_EXPERTS} experts, got {experts}"
                ));
            }
        }
        Ok(())
    }
}

impl fmt::Display for Recipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Recipe::Noise { rel } => write!(f, "noise(rel={rel})"),
            Recipe::Upcycle { experts, rel } => write!(f, "upcycle(experts={experts}, rel={rel})"),
            Recipe::Insert { count, rel } => write!(f, "insert(count={count}, rel={rel})"),
            Recipe::Prune { count, rel } => write!(f, "prune(count={count}, rel={rel})"),
        }
    }
}

impl FromStr for Recipe {
    type Err = crate::Error;

    fn from_str(s: &str) -> std::result::Result<Self, crate::Error> {
        parse_recipe(s).map_err(|reason| crate::Error::Parse {
            what: "recipe",
            reason,
        })
    }
}

fn parse_recipe(s: &str) -> std::result::Result<Recipe, String> {
    let s = s.trim();
    let (kind, args) = match s.split_once('(') {
        Some((k, rest)) => {
            let args = rest
                .strip_suffix(')')
                .ok_or_else(|| format!("recipe {s:?}: missing ')'"))?;
            (k.trim(), args)
        }
        None => (s, ""),
    };
    let mut rel = None;
    let mut count = None;
    let mut experts = None;
    for part in args.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| format!("recipe {s:?}: {part:?} is not key=value"))?;
        let (key, value) = (key.trim(), value.trim());
        let bad = |what: &str| format!("recipe {s:?}: {key}={value:?} is not {what}");
        match key {
            "rel" => rel = Some(value.parse::<f64>().map_err(|_| bad("a number"))?),
            "count" => count = Some(value.parse::<u32>().map_err(|_| bad("a count"))?),
            "experts" => experts = Some(value.parse::<u32>().map_err(|_| bad("a count"))?),
            _ => return Err(format!("recipe {s:?}: unknown parameter {key:?}")),
        }
    }
    let need = |v: Option<u32>, name: &str| {
        v.ok_or_else(|| format!("recipe {s:?}: {kind} needs {name}=N"))
    };
    let unused = |v: Option<u32>, name: &str| match v {
        Some(_) => Err(format!("recipe {s:?}: {kind} takes no {name}")),
        None => Ok(()),
    };
    let recipe = match kind {
        "noise" => {
            unused(count, "count")?;
            unused(experts, "experts")?;
            Recipe::Noise {
                rel: rel.ok_or_else(|| format!("recipe {s:?}: noise needs rel=X"))?,
            }
        }
        "upcycle" => {
            unused(count, "count")?;
            Recipe::Upcycle {
                experts: need(experts, "experts")?,
                rel: rel.unwrap_or(0.0),
            }
        }
        "insert" | "prune" => {
            unused(experts, "experts")?;
            let count = need(count, "count")?;
            let rel = rel.unwrap_or(0.0);
            if kind == "insert" {
                Recipe::Insert { count, rel }
            } else {
                Recipe::Prune { count, rel }
            }
        }
        _ => {
            return Err(format!(
                "recipe {s:?}: unknown kind {kind:?} (noise, upcycle, insert, prune)"
            ))
        }
    };
    recipe.check().map_err(|e| format!("recipe {s:?}: {e}"))?;
    Ok(recipe)
}

impl Serialize for Recipe {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Recipe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_every_kind() {
        for s in [
            "noise(rel=0.3)",
            "upcycle(experts=8, rel=0.05)",
            "insert(count=8, rel=0.05)",
            "prune(count=6, rel=0)",
        ] {
            let r: Recipe = s.parse().unwrap();
            assert_eq!(r.to_string(), s);
        }
        assert_eq!(
            "insert(count=3)".parse::<Recipe>().unwrap(),
            Recipe::Insert { count: 3, rel: 0.0 }
        );
    }

    #[test]
    fn rejects_bad_recipes_with_a_reason() {
        for (s, why) in [
            ("noise", "needs rel"),
            ("noise(rel=0)", "rel > 0"),
            ("noise(rel=-1)", ">= 0"),
            ("noise(rel=nan)", "finite"),
            ("upcycle(rel=0.1)", "needs experts"),
            ("upcycle(experts=1)", "2..="),
            ("insert(count=x)", "not a count"),
            ("insert(count=2, experts=3)", "takes no experts"),
            ("grow(count=2)", "unknown kind"),
            ("noise(rel=0.1", "missing ')'"),
            ("noise(sigma=0.1)", "unknown parameter"),
        ] {
            let e = s.parse::<Recipe>().unwrap_err().to_string();
            assert!(e.contains(why), "{s}: {e}");
        }
    }

    #[test]
    fn layer_maps() {
        let id = Recipe::Noise { rel: 0.1 }.layer_map(4).unwrap();
        assert_eq!(id, vec![0, 1, 2, 3]);
        // 10 layers, mid 5: 0..5, then 3..10.
        let ins = Recipe::Insert { count: 2, rel: 0.0 }.layer_map(10).unwrap();
        assert_eq!(ins, vec![0, 1, 2, 3, 4, 3, 4, 5, 6, 7, 8, 9]);
        let pr = Recipe::Prune { count: 2, rel: 0.0 }.layer_map(10).unwrap();
        assert_eq!(pr, vec![0, 1, 2, 4, 5, 7, 8, 9]);
        // Pruning all but the ends keeps exactly the ends.
        let ends = Recipe::Prune { count: 8, rel: 0.0 }.layer_map(10).unwrap();
        assert_eq!(ends, vec![0, 9]);
        assert!(Recipe::Prune { count: 9, rel: 0.0 }.layer_map(10).is_err());
        assert!(Recipe::Insert { count: 6, rel: 0.0 }.layer_map(10).is_err());
        assert!(Recipe::Noise { rel: 0.1 }.layer_map(0).is_err());
    }
}

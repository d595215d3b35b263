//! Controlled derivations of a model's curves: positive controls for power studies and
//! reports. Each takes a base model's curves and returns what a derived model's curves would
//! look like.
//!
//! * [`Derivation::Noise`] — fine-tuning-like perturbation: every per-layer std is multiplied
//!   by `exp(rel · ξ)`, ξ ~ N(0, 1) independently per role and layer. A weight update δW with
//!   ‖δW‖/‖W‖ = rel changes a matrix's std by at most about rel (when δW is aligned with W) and
//!   by only rel²/2, equally in every layer, when it is isotropic noise (invisible after
//!   z-scoring); the independent per-layer factor is the worst case of fine-tuning at that
//!   magnitude.
//! * [`Derivation::Drift`] — continued training: a smooth multiplicative drift
//!   `exp(rel · d_i)` with d a random walk over depth scaled so that d at the last layer has
//!   unit variance.
//! * [`Derivation::Upcycle`] — dense → MoE upcycling (Komatsuzaki et al. 2023): each MLP role
//!   (keys starting with `mlp_`) becomes `experts` copies of the dense curve, each perturbed as
//!   in `Noise`; the derived model's MLP curve is the per-layer mean over experts (what
//!   `mlp_up@mean` extracts from a real MoE fingerprint). Attention is kept and perturbed by
//!   `rel` (continued training of the MoE). [`upcycle_experts`] returns the per-expert curves.
//! * [`Derivation::Insert`] — depth up-scaling (as in SOLAR): `count` layers inserted in the
//!   middle, either a duplicated block of the `count` layers before the midpoint, or layers
//!   interpolated between neighbours; then `Noise` at `rel`.
//! * [`Derivation::Prune`] — `count` interior layers removed at evenly spaced positions (first
//!   and last layers kept); then `Noise` at `rel`.

use std::collections::BTreeMap;
use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::curves::{Curve, Curves, MIN_LAYERS};
use crate::error::{Error, Result};
use crate::rng::normal;

/// How inserted layers are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InsertMode {
    /// A copy of the block of layers before the midpoint.
    Duplicate,
    /// Averages of neighbouring layers.
    Interpolate,
}

/// A controlled derivation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Derivation {
    /// Independent per-layer multiplicative noise of relative size `rel`.
    Noise {
        /// Relative magnitude.
        rel: f64,
    },
    /// Smooth random-walk drift over depth of relative size `rel`.
    Drift {
        /// Relative magnitude.
        rel: f64,
    },
    /// Dense → MoE upcycling.
    Upcycle {
        /// Number of experts.
        experts: usize,
        /// Relative perturbation of each expert (and of attention).
        rel: f64,
    },
    /// Layer insertion.
    Insert {
        /// Layers inserted.
        count: usize,
        /// How.
        mode: InsertMode,
        /// Noise applied afterwards.
        rel: f64,
    },
    /// Layer pruning.
    Prune {
        /// Layers removed.
        count: usize,
        /// Noise applied afterwards.
        rel: f64,
    },
}

impl fmt::Display for Derivation {
    /// `kind(key=value, ...)`, the spelling of `controls::Recipe` (`noise(rel=0.001)`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Derivation::Noise { rel } => write!(f, "noise(rel={rel})"),
            Derivation::Drift { rel } => write!(f, "drift(rel={rel})"),
            Derivation::Upcycle { experts, rel } => {
                write!(f, "upcycle(experts={experts}, rel={rel})")
            }
            Derivation::Insert { count, mode, rel } => write!(
                f,
                "insert(count={count}, mode={}, rel={rel})",
                match mode {
                    InsertMode::Duplicate => "duplicate",
                    InsertMode::Interpolate => "interpolate",
                }
            ),
            Derivation::Prune { count, rel } => write!(f, "prune(count={count}, rel={rel})"),
        }
    }
}

fn check_rel(rel: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&rel) {
        return Err(Error::invalid("rel", rel, "must lie in [0, 1]"));
    }
    Ok(())
}

fn jitter(v: &[f64], rel: f64, rng: &mut impl Rng) -> Vec<f64> {
    v.iter().map(|x| x * (rel * normal(rng)).exp()).collect()
}

/// Most experts an upcycling derivation makes.
pub const MAX_EXPERTS: usize = 1024;

fn map_curves(
    base: &Curves,
    name: String,
    mut f: impl FnMut(&str, &[f64]) -> Result<Vec<f64>>,
) -> Result<Curves> {
    let mut roles = BTreeMap::new();
    for (k, c) in &base.roles {
        roles.insert(
            k.clone(),
            Curve {
                values: f(k, &c.values)?,
                dtypes: Vec::new(),
                stack: c.stack.clone(),
            },
        );
    }
    let out = Curves {
        model: name,
        family: base.family.clone(),
        ddof: base.ddof,
        nonfinite: base.nonfinite,
        roles,
    };
    out.validate()?;
    Ok(out)
}

/// Evenly spaced interior positions to remove.
fn prune_positions(n: usize, count: usize) -> Vec<usize> {
    (1..=count)
        .map(|k| ((k * (n - 1)) as f64 / (count + 1) as f64).round() as usize)
        .collect()
}

impl Derivation {
    /// Apply to `base`; the result is named `{base}+{derivation}`.
    pub fn apply(&self, base: &Curves, rng: &mut impl Rng) -> Result<Curves> {
        let name = format!("{}+{self}", base.model);
        match *self {
            Derivation::Noise { rel } => {
                check_rel(rel)?;
                map_curves(base, name, |_, v| Ok(jitter(v, rel, rng)))
            }
            Derivation::Drift { rel } => {
                check_rel(rel)?;
                map_curves(base, name, |_, v| {
                    let scale = 1.0 / (v.len() as f64).sqrt();
                    let mut d = 0.0;
                    Ok(v.iter()
                        .map(|x| {
                            d += scale * normal(rng);
                            x * (rel * d).exp()
                        })
                        .collect())
                })
            }
            Derivation::Upcycle { experts, rel } => {
                check_rel(rel)?;
                if !(1..=MAX_EXPERTS).contains(&experts) {
                    return Err(Error::invalid(
                        "experts",
                        experts,
                        &format!("must lie in 1..={MAX_EXPERTS}"),
                    ));
                }
                map_curves(base, name, |k, v| {
                    if !k.starts_with("mlp_") {
                        return Ok(jitter(v, rel, rng));
                    }
                    let mut mean = vec![0.0; v.len()];
                    for _ in 0..experts {
                        for (m, x) in mean.iter_mut().zip(jitter(v, rel, rng)) {
                            *m += x / experts as f64;
                        }
                    }
                    Ok(mean)
                })
            }
            Derivation::Insert { count, mode, rel } => {
                check_rel(rel)?;
                map_curves(base, name, |k, v| {
                    let n = v.len();
                    let mid = n / 2;
                    if count == 0 || count > mid || count >= n {
                        return Err(Error::invalid(
                            "insert count",
                            count,
                            &format!("{k} has {n} layers: at most {mid} can be inserted"),
                        ));
                    }
                    let mut out = Vec::with_capacity(n + count);
                    match mode {
                        InsertMode::Duplicate => {
                            out.extend_from_slice(&v[..mid]);
                            out.extend_from_slice(&v[mid - count..mid]);
                            out.extend_from_slice(&v[mid..]);
                        }
                        InsertMode::Interpolate => {
                            let start = mid - count / 2 - 1;
                            for (i, &x) in v.iter().enumerate() {
                                out.push(x);
                                if i >= start && i < start + count && i + 1 < n {
                                    out.push(0.5 * (x + v[i + 1]));
                                }
                            }
                        }
                    }
                    Ok(jitter(&out, rel, rng))
                })
            }
            Derivation::Prune { count, rel } => {
                check_rel(rel)?;
                map_curves(base, name, |k, v| {
                    let n = v.len();
                    if count == 0 || n < count + MIN_LAYERS || count + 2 > n {
                        return Err(Error::invalid(
                            "prune count",
                            count,
                            &format!("{k} has {n} layers; at least {MIN_LAYERS} must remain"),
                        ));
                    }
                    let drop = prune_positions(n, count);
                    let kept: Vec<f64> = v
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| !drop.contains(i))
                        .map(|(_, &x)| x)
                        .collect();
                    Ok(jitter(&kept, rel, rng))
                })
            }
        }
    }
}

/// The per-expert curves of a dense → MoE upcycling: for each MLP role `mlp_*`, keys
/// `{role}@{e}` for e in 0..experts and `{role}@mean`; attention roles perturbed by `rel`.
pub fn upcycle_experts(
    base: &Curves,
    experts: usize,
    rel: f64,
    rng: &mut impl Rng,
) -> Result<Curves> {
    check_rel(rel)?;
    if !(1..=MAX_EXPERTS).contains(&experts) {
        return Err(Error::invalid(
            "experts",
            experts,
            &format!("must lie in 1..={MAX_EXPERTS}"),
        ));
    }
    let mut roles = BTreeMap::new();
    for (k, c) in &base.roles {
        if !k.starts_with("mlp_") {
            roles.insert(k.clone(), jitter(&c.values, rel, rng));
            continue;
        }
        let mut mean = vec![0.0; c.len()];
        for e in 0..experts {
            let v = jitter(&c.values, rel, rng);
            for (m, x) in mean.iter_mut().zip(&v) {
                *m += x / experts as f64;
            }
            roles.insert(format!("{k}@{e}"), v);
        }
        roles.insert(format!("{k}@mean"), mean);
    }
    Curves::new(format!("{}+moe{experts}", base.model), roles)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{similarity, MeasureOptions};
    use crate::rng::stream;
    use crate::testutil::curves;

    fn base() -> Curves {
        let v: Vec<f64> = (0..12)
            .map(|i| 1.0 + 0.1 * i as f64 + 0.05 * (i % 3) as f64)
            .collect();
        curves("base", &[("attn_q", &v), ("mlp_up", &v)])
    }

    #[test]
    fn small_noise_keeps_the_curve_large_noise_does_not() {
        let b = base();
        let small = Derivation::Noise { rel: 1e-4 }
            .apply(&b, &mut stream(1, 0))
            .unwrap();
        let s = similarity(&b, &small, &MeasureOptions::default()).unwrap();
        assert!(s.score > 0.9999, "{}", s.score);
        let big = Derivation::Noise { rel: 0.3 }
            .apply(&b, &mut stream(1, 0))
            .unwrap();
        let s = similarity(&b, &big, &MeasureOptions::default()).unwrap();
        assert!(s.score < 0.99, "{}", s.score);
        assert!(Derivation::Noise { rel: 1.5 }
            .apply(&b, &mut stream(1, 0))
            .is_err());
        assert!(Derivation::Noise { rel: f64::NAN }
            .apply(&b, &mut stream(1, 0))
            .is_err());
    }

    #[test]
    fn shapes_of_structural_derivations() {
        let b = base();
        let mut r = stream(2, 0);
        let dup = Derivation::Insert {
            count: 2,
            mode: InsertMode::Duplicate,
            rel: 0.0,
        }
        .apply(&b, &mut r)
        .unwrap();
        let v = &b.roles["attn_q"].values;
        let d = &dup.roles["attn_q"].values;
        assert_eq!(d.len(), 14);
        assert_eq!(&d[..6], &v[..6]);
        assert_eq!(&d[6..8], &v[4..6]);
        assert_eq!(&d[8..], &v[6..]);
        let interp = Derivation::Insert {
            count: 3,
            mode: InsertMode::Interpolate,
            rel: 0.0,
        }
        .apply(&b, &mut r)
        .unwrap();
        let iv = &interp.roles["attn_q"].values;
        assert_eq!(iv.len(), 15);
        assert!(iv.windows(2).all(|w| w[1] >= w[0] - 0.2));
        let pruned = Derivation::Prune { count: 3, rel: 0.0 }
            .apply(&b, &mut r)
            .unwrap();
        let p = &pruned.roles["attn_q"].values;
        assert_eq!(p.len(), 9);
        assert_eq!(p[0], v[0]);
        assert_eq!(p[8], v[11]);
        assert_eq!(prune_positions(12, 3), vec![3, 6, 8]);
        assert!(Derivation::Prune {
            count: 10,
            rel: 0.0
        }
        .apply(&b, &mut r)
        .is_err());
        assert!(Derivation::Insert {
            count: 7,
            mode: InsertMode::Duplicate,
            rel: 0.0
        }
        .apply(&b, &mut r)
        .is_err());
    }

    #[test]
    fn upcycling_averages_expert_noise() {
        let b = base();
        let moe = upcycle_experts(&b, 8, 0.05, &mut stream(3, 0)).unwrap();
        assert!(moe.roles.contains_key("mlp_up@7"));
        assert!(moe.roles.contains_key("mlp_up@mean"));
        assert!(moe.roles.contains_key("attn_q"));
        let view = Derivation::Upcycle {
            experts: 8,
            rel: 0.05,
        }
        .apply(&b, &mut stream(3, 0))
        .unwrap();
        assert_eq!(view.roles.len(), 2);
        assert!(Derivation::Upcycle {
            experts: 0,
            rel: 0.1
        }
        .apply(&b, &mut stream(3, 0))
        .is_err());
        let d = Derivation::Drift { rel: 0.01 }
            .apply(&b, &mut stream(4, 0))
            .unwrap();
        assert!(
            similarity(&b, &d, &MeasureOptions::default())
                .unwrap()
                .score
                > 0.95
        );
        assert_eq!(d.model, "base+drift(rel=0.01)");
    }
}

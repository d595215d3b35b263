//! Depth alignment: which layer of model A each layer of model B continues, by dynamic
//! programming over a per-layer similarity (see [`super`]).
//!
//! **Similarity.** Weight-level: for each dense MLP, the Gram matrix `G = Σ_u v_u v_uᵀ` of its
//! unit vectors (up rows and down columns), over a seeded sample of residual coordinates
//! (B's coordinates first aligned to A's as in the matching test). `G` does not change when
//! the units are permuted. Its correlation form `G_ij / √(G_ii G_jj)`, off the diagonal, is the
//! layer's signature, and the similarity of two layers is the Pearson correlation of their
//! signatures. Fingerprint-level: the mean absolute difference `d` of the log stds of the
//! weight roles both models have in every layer.
//!
//! **Scores.** Each similarity becomes a score on one scale, 1 for a sure copy, 0 at the
//! threshold a mapped pair must pass, negative below it. Weights:
//! `(atanh r − atanh r₀) / (atanh 0.99 − atanh r₀)` with `r₀ = min_correlation` (0.9 by
//! default: different layers of one model reach 0.42–0.81 in the models at hand, noisy copies
//! 0.998). Fingerprints: `1 − d / std_tolerance` (0.05 by default: a copied layer keeps every
//! role's std within a few percent). The scale is absolute on purpose: a relative one (z-scores
//! over all layer pairs) is dominated by neighbouring layers in shallow models.
//!
//! **Alignment.** Each B layer is either mapped to an A layer, earning its score, or
//! marked inserted, earning 0. Between consecutive mapped B layers the A index normally moves
//! on by one; staying on the same A layer (a duplicate) costs `duplicate`, skipping A layers
//! costs `drop` per skipped layer (also before the first and after the last mapped layer), and
//! moving back (depth up-scaling repeats a run of layers) is forbidden unless `backward` gives
//! its cost. The best total is found exactly by dynamic programming over (B layer, last mapped
//! A layer), in `O(L_B · L_A²)` time.
//!
//! **Strength.** The best total is compared with the best totals after shuffling B's layers
//! (seeded Monte-Carlo) and after every circular shift of them (exhaustive), as `compare`'s
//! surrogate nulls do. A fingerprint similarity carries every model's depth trend, which these
//! nulls destroy, so unrelated models can look aligned under them; with weights, the mapped
//! pairs are also tested with the neuron-matching test, whose p-value is the result's `p`.

use std::collections::BTreeMap;

use crate::matrices::sample_indices;
use fingerprint::roles::Role;
use fingerprint::Fingerprint;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::csu::{self, residual_map, CsuOptions, CsuResult, ResidualAlign};
use super::weights::{ResidualMap, View};
use super::{Error, LayerId, MlpSite, ModelWeights, Result, CITATION};
use null::nulls::{NullInfo, NullResult, Sampling};
use null::rng;

/// Costs of the alignment, in score units (1 = a sure copy).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Penalties {
    /// Cost of mapping a B layer to the same A layer as the previous one.
    pub duplicate: f64,
    /// Cost per A layer skipped (dropped).
    pub drop: f64,
    /// Cost of moving back to an earlier A layer (`None`: not allowed, a monotone alignment).
    pub backward: Option<f64>,
}

impl Default for Penalties {
    fn default() -> Self {
        Penalties {
            duplicate: 0.25,
            drop: 0.5,
            backward: None,
        }
    }
}

/// Options of the depth alignment.
#[derive(Clone, Debug, PartialEq)]
pub struct AlignOptions {
    /// Alignment costs.
    pub penalties: Penalties,
    /// Gram-signature correlation a mapped pair must exceed (weights).
    pub min_correlation: f64,
    /// Mean |Δ ln std| a mapped pair must stay under (fingerprints).
    pub std_tolerance: f64,
    /// Draws of the layer-shuffle null.
    pub null_draws: usize,
    /// Seed of the coordinate sample and the nulls.
    pub seed: u64,
    /// Residual coordinates sampled for the Gram signatures.
    pub gram_dims: usize,
    /// Residual basis alignment (weights only).
    pub residual: ResidualAlign,
    /// Verify the mapped pairs with the matching test (weights only); `None`: skip.
    pub verify: Option<CsuOptions>,
}

impl Default for AlignOptions {
    fn default() -> Self {
        AlignOptions {
            penalties: Penalties::default(),
            min_correlation: 0.9,
            std_tolerance: 0.05,
            null_draws: 999,
            seed: 0,
            gram_dims: 256,
            residual: ResidualAlign::Auto,
            verify: Some(CsuOptions {
                max_units: 256,
                ..Default::default()
            }),
        }
    }
}

/// What a similarity matrix holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SimilarityKind {
    /// Correlation of Gram signatures, in [−1, 1].
    GramCorrelation,
    /// Mean |Δ ln std| over roles (a distance, ≥ 0).
    StdDistance,
}

/// A per-layer similarity matrix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerSimilarity {
    /// What the values are.
    pub kind: SimilarityKind,
    /// Model A.
    pub model_a: String,
    /// Model B.
    pub model_b: String,
    /// How it was computed.
    pub source: String,
    /// A's layers, in depth order.
    pub layers_a: Vec<LayerId>,
    /// B's layers, in depth order.
    pub layers_b: Vec<LayerId>,
    /// `values[j][i]`: similarity (or distance) of B layer j and A layer i.
    pub values: Vec<Vec<f64>>,
}

/// Where one B layer went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MappedLayer {
    /// The B layer.
    pub b: LayerId,
    /// The A layer it continues (`None`: inserted).
    pub a: Option<LayerId>,
    /// The pair's score (1 = a sure copy, 0 = the threshold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// `first`, `next`, `duplicate`, `skip` (A layers dropped before it), `backward` or
    /// `inserted`.
    pub step: String,
}

/// The depth alignment of two models.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlignResult {
    /// `align`.
    pub test: String,
    /// The method, in a sentence.
    pub method: String,
    /// Source of the verification test.
    pub citation: String,
    /// Model A.
    pub model_a: String,
    /// Model B.
    pub model_b: String,
    /// How the per-layer similarity was computed.
    pub similarity: String,
    /// Every B layer, in order.
    pub mapping: Vec<MappedLayer>,
    /// B layers mapped to no A layer.
    pub inserted: Vec<LayerId>,
    /// A layers continued by more than one B layer.
    pub duplicated: Vec<LayerId>,
    /// A layers continued by no B layer.
    pub dropped: Vec<LayerId>,
    /// The alignment's total score.
    pub score: f64,
    /// The costs used.
    pub penalties: Penalties,
    /// How similarities became scores.
    pub scoring: String,
    /// The score against layer-shuffle and circular-shift nulls.
    pub nulls: Vec<NullResult>,
    /// The matching test on the mapped pairs (weights only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<CsuResult>,
    /// The verification's p-value when there is one, else the shuffle null's.
    pub p: f64,
    /// log10 of `p`.
    pub log10_p: f64,
    /// Which test `p` comes from.
    pub p_from: String,
    /// Caveats.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl AlignResult {
    /// A few lines for a terminal.
    pub fn summary(&self) -> String {
        let map: Vec<String> = self
            .mapping
            .iter()
            .map(|m| match m.a {
                Some(a) => format!("{}→{a}", m.b),
                None => format!("{}→ins", m.b),
            })
            .collect();
        let list = |v: &[LayerId]| {
            v.iter()
                .map(|l| l.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut s = format!(
            "align: {} onto {} ({}): log10 p = {:.1} ({})\n  mapping B→A: {}\n  inserted: [{}]  duplicated: [{}]  dropped: [{}]\n",
            self.model_b,
            self.model_a,
            self.similarity,
            self.log10_p,
            self.p_from,
            map.join(" "),
            list(&self.inserted),
            list(&self.duplicated),
            list(&self.dropped)
        );
        for n in &self.nulls {
            s.push_str(&format!(
                "  null {}: score {:.1}, p = {:.3e} (n = {})\n",
                n.name, n.observed, n.p, n.n
            ));
        }
        s
    }
}

/// Align B's layers to A's from their weights, and verify the mapped pairs.
pub fn align(a: &ModelWeights, b: &ModelWeights, opts: &AlignOptions) -> Result<AlignResult> {
    let sim = similarity_from_weights(a, b, opts)?;
    let mut r = align_similarity(&sim, opts)?;
    if let Some(v) = &opts.verify {
        let pairs: Vec<(LayerId, LayerId)> = r
            .mapping
            .iter()
            .filter_map(|m| m.a.map(|x| (x, m.b)))
            .collect();
        if pairs.is_empty() {
            r.notes
                .push("no B layer was mapped, so there is nothing to verify".into());
        } else {
            let c = csu::csu(
                a,
                b,
                &CsuOptions {
                    pairs: Some(pairs),
                    residual: opts.residual,
                    ..v.clone()
                },
            )?;
            r.p = c.p;
            r.log10_p = c.log10_p;
            r.p_from = "neuron matching on the mapped pairs (Fisher)".into();
            r.verification = Some(c);
        }
    }
    Ok(r)
}

/// Align B's layers to A's from their fingerprints' per-layer role stds.
pub fn align_fingerprints(
    a: &Fingerprint,
    b: &Fingerprint,
    opts: &AlignOptions,
) -> Result<AlignResult> {
    let sim = similarity_from_fingerprints(a, b)?;
    let mut r = align_similarity(&sim, opts)?;
    r.notes.push(
        "fingerprint similarity carries every model's depth trend, which the shuffle and shift \
         nulls destroy: a small p here says the layers are ordered alike, not that they are \
         copied; run align on the weights for a matching test"
            .into(),
    );
    Ok(r)
}

/// Weight roles whose per-layer std enters the fingerprint similarity.
const STD_ROLES: [Role; 7] = [
    Role::AttnQ,
    Role::AttnK,
    Role::AttnV,
    Role::AttnO,
    Role::MlpGate,
    Role::MlpUp,
    Role::MlpDown,
];

/// Per-layer distance from fingerprints: the mean |Δ ln std| over the weight roles
/// present in every layer of both.
pub fn similarity_from_fingerprints(a: &Fingerprint, b: &Fingerprint) -> Result<LayerSimilarity> {
    type Table = BTreeMap<LayerId, BTreeMap<Role, f64>>;
    let table = |fp: &Fingerprint| -> Table {
        let mut t: Table = BTreeMap::new();
        for r in &fp.tensors {
            let (Some(layer), None) = (r.layer, r.expert) else {
                continue;
            };
            if !STD_ROLES.contains(&r.role) {
                continue;
            }
            if let Some(s) = r.stats.std.filter(|s| *s > 0.0 && s.is_finite()) {
                t.entry(LayerId {
                    stack: r.stack,
                    layer,
                })
                .or_default()
                .insert(r.role.clone(), s.ln());
            }
        }
        t
    };
    let (ta, tb) = (table(a), table(b));
    let roles: Vec<Role> = STD_ROLES
        .iter()
        .filter(|r| ta.values().chain(tb.values()).all(|m| m.contains_key(*r)))
        .cloned()
        .collect();
    if ta.is_empty() || tb.is_empty() || roles.is_empty() {
        return Err(Error::NotTestable {
            reason: format!(
                "no weight role has a std in every layer of both {} ({} layers) and {} ({} layers)",
                a.model.name,
                ta.len(),
                b.model.name,
                tb.len()
            ),
        });
    }
    let values = tb
        .values()
        .map(|rb| {
            ta.values()
                .map(|ra| {
                    roles.iter().map(|r| (ra[r] - rb[r]).abs()).sum::<f64>() / roles.len() as f64
                })
                .collect()
        })
        .collect();
    Ok(LayerSimilarity {
        kind: SimilarityKind::StdDistance,
        model_a: a.model.name.clone(),
        model_b: b.model.name.clone(),
        source: format!(
            "fingerprint: mean |Δ ln std| over {}",
            roles
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        layers_a: ta.keys().copied().collect(),
        layers_b: tb.keys().copied().collect(),
        values,
    })
}

/// Per-layer similarity from weights: correlation of unit-permutation-invariant Gram
/// signatures of the dense MLPs.
pub fn similarity_from_weights(
    a: &ModelWeights,
    b: &ModelWeights,
    opts: &AlignOptions,
) -> Result<LayerSimilarity> {
    if opts.gram_dims < 3 {
        return Err(Error::Invalid {
            what: "gram_dims".into(),
            reason: format!("{} is too few (at least 3)", opts.gram_dims),
        });
    }
    let dense = |w: &ModelWeights| -> Vec<MlpSite> {
        w.mlp_sites()
            .0
            .into_iter()
            .filter(|s| s.expert.is_none())
            .collect()
    };
    let (sa, sb) = (dense(a), dense(b));
    let (Some(fa), Some(fb)) = (sa.first(), sb.first()) else {
        return Err(Error::NotTestable {
            reason: format!(
                "{} has {} and {} has {} dense MLP blocks",
                a.name(),
                sa.len(),
                b.name(),
                sb.len()
            ),
        });
    };
    let hidden = fa.hidden;
    if fb.hidden != hidden || sa.iter().chain(&sb).any(|s| s.hidden != hidden) {
        return Err(Error::NotTestable {
            reason: format!(
                "hidden sizes differ ({} vs {}): weight signatures are not comparable; align \
                 the fingerprints instead",
                fa.hidden, fb.hidden
            ),
        });
    }
    let csu_opts = CsuOptions {
        residual: opts.residual,
        seed: opts.seed,
        ..Default::default()
    };
    let (map, residual) = residual_map(a, b, hidden, &csu_opts)?;
    let coords = sample_indices(
        hidden,
        opts.gram_dims.min(hidden),
        rng::child_seed(opts.seed, 7),
    );
    let siga = signatures(a, &sa, None, &coords)?;
    let sigb = signatures(b, &sb, map.as_ref(), &coords)?;
    let values = sigb
        .iter()
        .map(|vb| siga.iter().map(|va| dot(va, vb)).collect())
        .collect();
    Ok(LayerSimilarity {
        kind: SimilarityKind::GramCorrelation,
        model_a: a.name().into(),
        model_b: b.name().into(),
        source: format!(
            "weights: correlation of MLP Gram signatures (up rows and down columns) over {} of \
             {hidden} residual coordinates (ChaCha8 seed {}); residual basis {}",
            coords.len(),
            opts.seed,
            residual.method
        ),
        layers_a: sa.iter().map(|s| s.layer).collect(),
        layers_b: sb.iter().map(|s| s.layer).collect(),
        values,
    })
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Centered, unit-length off-diagonal correlation entries of each site's Gram matrix.
fn signatures(
    w: &ModelWeights,
    sites: &[MlpSite],
    map: Option<&ResidualMap>,
    coords: &[usize],
) -> Result<Vec<Vec<f64>>> {
    let d = coords.len();
    let mut out = Vec::with_capacity(sites.len());
    for s in sites {
        let mut g = ndarray::Array2::<f64>::zeros((d, d));
        for view in [View::Up, View::Down] {
            let v = w.unit_view(s, view, None, map, Some(coords))?;
            let gv = v.t().dot(&v);
            g.zip_mut_with(&gv, |x, &y| *x += y as f64);
        }
        let mut sig = Vec::with_capacity(d * (d - 1) / 2);
        for i in 0..d {
            for j in i + 1..d {
                let den = (g[(i, i)] * g[(j, j)]).sqrt();
                sig.push(if den > 0.0 && den.is_finite() {
                    g[(i, j)] / den
                } else {
                    0.0
                });
            }
        }
        let mean = sig.iter().sum::<f64>() / sig.len().max(1) as f64;
        sig.iter_mut().for_each(|x| *x -= mean);
        let norm = sig.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 0.0 {
            sig.iter_mut().for_each(|x| *x /= norm);
        }
        out.push(sig);
    }
    Ok(out)
}

/// Scores on the common scale (1 = a sure copy, 0 = the threshold), and the rule in words.
fn scores(sim: &LayerSimilarity, opts: &AlignOptions) -> Result<(Vec<Vec<f64>>, String)> {
    if let Some(&v) = sim.values.iter().flatten().find(|v| !v.is_finite()) {
        return Err(null::Error::NonFiniteInput {
            what: "layer similarity".into(),
            value: v,
        }
        .into());
    }
    match sim.kind {
        SimilarityKind::GramCorrelation => {
            let r0 = opts.min_correlation;
            if r0.is_nan() || r0 <= -1.0 || r0 >= 0.99 {
                return Err(Error::Invalid {
                    what: "min_correlation".into(),
                    reason: format!("{r0} must lie in (-1, 0.99)"),
                });
            }
            let unit = 0.99f64.atanh() - r0.atanh();
            let f = |r: f64| (r.clamp(-0.999_999, 0.999_999).atanh() - r0.atanh()) / unit;
            Ok((
                sim.values
                    .iter()
                    .map(|row| row.iter().map(|&r| f(r)).collect())
                    .collect(),
                format!(
                    "(atanh r − atanh {r0}) / (atanh 0.99 − atanh {r0}): 0 at correlation {r0}, \
                     1 at 0.99"
                ),
            ))
        }
        SimilarityKind::StdDistance => {
            let tol = opts.std_tolerance;
            if tol.is_nan() || tol <= 0.0 || tol.is_infinite() {
                return Err(Error::Invalid {
                    what: "std_tolerance".into(),
                    reason: format!("{tol} must be positive"),
                });
            }
            Ok((
                sim.values
                    .iter()
                    .map(|row| row.iter().map(|&d| 1.0 - d / tol).collect())
                    .collect(),
                format!("1 − d / {tol}: 1 for equal stds, 0 at a mean |Δ ln std| of {tol}"),
            ))
        }
    }
}

/// The best alignment score and, per B layer, the A layer index it maps to.
fn best_alignment(z: &[Vec<f64>], la: usize, pen: &Penalties) -> (f64, Vec<Option<usize>>) {
    let ninf = f64::NEG_INFINITY;
    // State s: 0 = nothing mapped yet, i + 1 = last mapped A layer i.
    let trans = |s: usize, i: usize| -> f64 {
        if s == 0 {
            return -pen.drop * i as f64;
        }
        let p = s - 1;
        if i == p + 1 {
            0.0
        } else if i == p {
            -pen.duplicate
        } else if i > p {
            -pen.drop * (i - p - 1) as f64
        } else {
            pen.backward.map_or(ninf, |c| -c)
        }
    };
    let mut v = vec![ninf; la + 1];
    v[0] = 0.0;
    let mut back: Vec<Vec<(usize, bool)>> = Vec::with_capacity(z.len());
    for row in z {
        let mut nv = v.clone();
        let mut bp: Vec<(usize, bool)> = (0..=la).map(|s| (s, false)).collect();
        for (i, &reward) in row.iter().enumerate().take(la) {
            for (s, &vs) in v.iter().enumerate() {
                if vs == ninf {
                    continue;
                }
                let c = vs + trans(s, i) + reward;
                if c > nv[i + 1] {
                    nv[i + 1] = c;
                    bp[i + 1] = (s, true);
                }
            }
        }
        v = nv;
        back.push(bp);
    }
    let mut best = (ninf, 0usize);
    for (s, &vs) in v.iter().enumerate() {
        let trailing = if s == 0 { la } else { la - s };
        let total = vs - pen.drop * trailing as f64;
        if total > best.0 {
            best = (total, s);
        }
    }
    let mut map = vec![None; z.len()];
    let mut s = best.1;
    for j in (0..z.len()).rev() {
        let (prev, mapped) = back[j][s];
        if mapped {
            map[j] = Some(s - 1);
        }
        s = prev;
    }
    (best.0, map)
}

/// Align a similarity matrix and test the alignment's score against layer-shuffle and
/// circular-shift nulls.
pub fn align_similarity(sim: &LayerSimilarity, opts: &AlignOptions) -> Result<AlignResult> {
    let (la, lb) = (sim.layers_a.len(), sim.layers_b.len());
    if la == 0 || lb == 0 || sim.values.len() != lb || sim.values.iter().any(|r| r.len() != la) {
        return Err(Error::Invalid {
            what: "layer similarity".into(),
            reason: format!("expected {lb} rows of {la} values"),
        });
    }
    if opts.null_draws == 0 {
        return Err(Error::Invalid {
            what: "null_draws".into(),
            reason: "at least one draw is needed".into(),
        });
    }
    let pen = &opts.penalties;
    if ![pen.duplicate, pen.drop]
        .iter()
        .all(|v| v.is_finite() && *v >= 0.0)
        || pen.backward.is_some_and(|b| !b.is_finite())
    {
        return Err(Error::Invalid {
            what: "penalties".into(),
            reason: "must be finite and non-negative".into(),
        });
    }
    let (z, scoring) = scores(sim, opts)?;
    let (score, map) = best_alignment(&z, la, pen);

    // Nulls: shuffled and circularly shifted B layers.
    let shuffled: Vec<f64> = (0..opts.null_draws as u64)
        .map(|d| {
            let mut order: Vec<usize> = (0..lb).collect();
            order.shuffle(&mut rng::stream(opts.seed, d));
            let zz: Vec<Vec<f64>> = order.iter().map(|&j| z[j].clone()).collect();
            best_alignment(&zz, la, pen).0
        })
        .collect();
    let shifted: Vec<f64> = (1..lb)
        .map(|k| {
            let zz: Vec<Vec<f64>> = (0..lb).map(|j| z[(j + k) % lb].clone()).collect();
            best_alignment(&zz, la, pen).0
        })
        .collect();
    let mut nulls = vec![NullResult::from_scores(
        &NullInfo {
            name: "shuffle".into(),
            preserves: "each B layer's score against every A layer".into(),
            destroys: "the order of B's layers".into(),
        },
        score,
        &shuffled,
        Some(opts.seed),
        Sampling::MonteCarlo,
    )?];
    if !shifted.is_empty() {
        nulls.push(NullResult::from_scores(
            &NullInfo {
                name: "circular".into(),
                preserves: "each B layer's score against every A layer and their cyclic order"
                    .into(),
                destroys: "where B's sequence of layers starts".into(),
            },
            score,
            &shifted,
            None,
            Sampling::Exhaustive,
        )?);
    }

    // Describe the mapping.
    let mut mapping = Vec::with_capacity(lb);
    let mut uses = vec![0usize; la];
    let mut prev: Option<usize> = None;
    for (j, m) in map.iter().enumerate() {
        let (a, zval, step) = match *m {
            None => (None, None, "inserted"),
            Some(i) => {
                uses[i] += 1;
                let step = match prev {
                    None => "first",
                    Some(p) if i == p + 1 => "next",
                    Some(p) if i == p => "duplicate",
                    Some(p) if i > p => "skip",
                    Some(_) => "backward",
                };
                prev = Some(i);
                (Some(sim.layers_a[i]), Some(z[j][i]), step)
            }
        };
        mapping.push(MappedLayer {
            b: sim.layers_b[j],
            a,
            score: zval,
            step: step.into(),
        });
    }
    let inserted = mapping
        .iter()
        .filter(|m| m.a.is_none())
        .map(|m| m.b)
        .collect();
    let duplicated = (0..la)
        .filter(|&i| uses[i] > 1)
        .map(|i| sim.layers_a[i])
        .collect();
    let dropped = (0..la)
        .filter(|&i| uses[i] == 0)
        .map(|i| sim.layers_a[i])
        .collect();
    let (p, log10_p) = (nulls[0].p, nulls[0].log10_p);
    Ok(AlignResult {
        test: "align".into(),
        method: "B's layers aligned to A's by dynamic programming over per-layer similarity \
                 scores (match, duplicate, insert, drop), tested against layer-shuffle and \
                 circular-shift nulls"
            .into(),
        citation: CITATION.into(),
        model_a: sim.model_a.clone(),
        model_b: sim.model_b.clone(),
        similarity: sim.source.clone(),
        mapping,
        inserted,
        duplicated,
        dropped,
        score,
        penalties: pen.clone(),
        scoring,
        nulls,
        verification: None,
        p,
        log10_p,
        p_from: "layer-shuffle null".into(),
        notes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim(values: Vec<Vec<f64>>) -> LayerSimilarity {
        LayerSimilarity {
            kind: SimilarityKind::GramCorrelation,
            model_a: "a".into(),
            model_b: "b".into(),
            source: "test".into(),
            layers_a: (0..values[0].len() as u32).map(LayerId::new).collect(),
            layers_b: (0..values.len() as u32).map(LayerId::new).collect(),
            values,
        }
    }

    /// A noisy background with 1.0 wherever B layer j copies A layer `truth[j]`.
    fn planted(la: usize, truth: &[Option<usize>]) -> LayerSimilarity {
        let mut r = rng::stream(3, 0);
        use rand::Rng;
        let values = truth
            .iter()
            .map(|t| {
                (0..la)
                    .map(|i| {
                        if *t == Some(i) {
                            0.995
                        } else {
                            r.gen_range(0.0..0.8)
                        }
                    })
                    .collect()
            })
            .collect();
        sim(values)
    }

    #[test]
    fn recovers_duplicates_insertions_and_drops() {
        let truth = vec![
            Some(0),
            Some(1),
            Some(1),
            Some(2),
            None,
            Some(3),
            Some(5),
            Some(6),
            Some(7),
        ];
        let r = align_similarity(&planted(8, &truth), &AlignOptions::default()).unwrap();
        let got: Vec<Option<usize>> = r
            .mapping
            .iter()
            .map(|m| m.a.map(|l| l.layer as usize))
            .collect();
        assert_eq!(got, truth);
        assert_eq!(r.duplicated, vec![LayerId::new(1)]);
        assert_eq!(r.dropped, vec![LayerId::new(4)]);
        assert_eq!(r.inserted, vec![LayerId::new(4)]);
        assert_eq!(r.mapping[2].step, "duplicate");
        assert_eq!(r.mapping[6].step, "skip");
        assert!(r.nulls[0].p < 0.01, "{:?}", r.nulls[0]);
    }

    #[test]
    fn backward_moves_need_permission() {
        // Depth up-scaling: A's layers 0..6 then 2..8.
        let truth: Vec<Option<usize>> = (0..6).chain(2..8).map(Some).collect();
        let mono = align_similarity(&planted(8, &truth), &AlignOptions::default()).unwrap();
        let got: Vec<Option<usize>> = mono
            .mapping
            .iter()
            .map(|m| m.a.map(|l| l.layer as usize))
            .collect();
        assert_ne!(got, truth);
        let opts = AlignOptions {
            penalties: Penalties {
                backward: Some(1.0),
                ..Default::default()
            },
            ..Default::default()
        };
        let dus = align_similarity(&planted(8, &truth), &opts).unwrap();
        let got: Vec<Option<usize>> = dus
            .mapping
            .iter()
            .map(|m| m.a.map(|l| l.layer as usize))
            .collect();
        assert_eq!(got, truth);
        assert_eq!(dus.mapping[6].step, "backward");
    }

    #[test]
    fn rejects_bad_input() {
        let mut s = planted(3, &[Some(0), Some(1)]);
        s.values[1].pop();
        assert!(align_similarity(&s, &AlignOptions::default()).is_err());
        let bad = AlignOptions {
            min_correlation: 0.995,
            ..Default::default()
        };
        assert!(align_similarity(&planted(3, &[Some(0)]), &bad).is_err());
        let mut s = planted(3, &[Some(0), Some(1)]);
        s.values[0][0] = f64::NAN;
        assert!(align_similarity(&s, &AlignOptions::default()).is_err());
    }
}

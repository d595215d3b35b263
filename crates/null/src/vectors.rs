//! Vector measures: similarity of two models' per-layer vectors of one role (normalisation
//! weights kept by `nullprint fingerprint --vectors`), and the arithmetic of claims built on it.
//!
//! * [`VectorMeasure::Cosine`]: the raw cosine `a·b / (|a| |b|)`, as published claims use it.
//!   Normalisation weights are positive vectors with a large common mean (gains near 1), so
//!   the raw cosine of any two of them is high whatever their lineage.
//! * [`VectorMeasure::Centred`]: the cosine after subtracting each vector's mean, i.e. the
//!   Pearson correlation of the two vectors' elements. It compares the pattern across
//!   dimensions, which is what shared weights would share.
//!
//! [`same_layer`] gives the per-layer values and their mean (the claims' summary);
//! [`layer_matrix`] every layer pair; [`within_model`] a model's own layers against each other
//! (the claims' "within-model baseline"); [`claim_sigma`] reproduces the "n sigma" arithmetic,
//! `(same-layer mean − baseline mean) / baseline sd`, which treats the spread of a handful of
//! within-model values as the null's spread. [`crate::nulls::permutation`] gives the null that
//! actually decides whether two vectors share their dimensions.
//!
//! All arithmetic is in f64, sums left to right: results do not depend on threads.

use std::collections::BTreeMap;

use fingerprint::roles::{Role, Stack};
use fingerprint::Fingerprint;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A similarity of two vectors of equal length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VectorMeasure {
    /// Raw cosine similarity.
    Cosine,
    /// Cosine of the mean-centred vectors (Pearson correlation of the elements).
    CentredCosine,
}

impl VectorMeasure {
    /// Both measures, raw first.
    pub const ALL: [VectorMeasure; 2] = [VectorMeasure::Cosine, VectorMeasure::CentredCosine];

    /// The measure of `a` and `b` (same length, each with non-zero norm, after centring for
    /// the centred cosine).
    pub fn of(self, a: &[f64], b: &[f64]) -> Result<f64> {
        match self {
            VectorMeasure::Cosine => cosine(a, b),
            VectorMeasure::CentredCosine => centred_cosine(a, b),
        }
    }

    /// Its name as experiment files spell it.
    pub fn name(self) -> &'static str {
        match self {
            VectorMeasure::Cosine => "cosine",
            VectorMeasure::CentredCosine => "centred-cosine",
        }
    }

    /// A short description for reports.
    pub fn describe(self) -> &'static str {
        match self {
            VectorMeasure::Cosine => "raw cosine",
            VectorMeasure::CentredCosine => "centred cosine (Pearson r)",
        }
    }
}

impl std::fmt::Display for VectorMeasure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn check_pair(a: &[f64], b: &[f64]) -> Result<()> {
    if a.len() != b.len() {
        return Err(Error::invalid(
            "vector length",
            b.len() as f64,
            &format!(
                "the two vectors must have the same length ({} here)",
                a.len()
            ),
        ));
    }
    if a.is_empty() {
        return Err(Error::TooFewValues {
            what: "vector".into(),
            n: 0,
            needed: 1,
        });
    }
    if let Some(&value) = a.iter().chain(b).find(|x| !x.is_finite()) {
        return Err(Error::NonFiniteInput {
            what: "vector".into(),
            value,
        });
    }
    Ok(())
}

fn dot_cosine(a: &[f64], b: &[f64], what: &str) -> Result<f64> {
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        return Err(Error::invalid(what, 0.0, "a vector has zero norm"));
    }
    Ok((ab / (aa.sqrt() * bb.sqrt())).clamp(-1.0, 1.0))
}

/// Raw cosine similarity of two vectors of equal length.
pub fn cosine(a: &[f64], b: &[f64]) -> Result<f64> {
    check_pair(a, b)?;
    dot_cosine(a, b, "cosine")
}

/// Cosine of the mean-centred vectors: the Pearson correlation of their elements.
pub fn centred_cosine(a: &[f64], b: &[f64]) -> Result<f64> {
    check_pair(a, b)?;
    let centre = |v: &[f64]| {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        v.iter().map(|x| x - m).collect::<Vec<f64>>()
    };
    dot_cosine(&centre(a), &centre(b), "centred cosine")
}

/// One model's vectors of one role (and stack), by layer.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerVectors {
    /// The model's name.
    pub model: String,
    /// The role.
    pub role: Role,
    /// Layer index and values, ascending by layer.
    pub layers: Vec<(u32, Vec<f64>)>,
}

impl LayerVectors {
    /// The per-layer vectors of `role` in `stack` kept in `fp` (`--vectors`); each vector's
    /// length and hash are checked. Errors when there are none.
    pub fn from_fingerprint(fp: &Fingerprint, role: &Role, stack: Option<Stack>) -> Result<Self> {
        let mut layers = BTreeMap::new();
        for v in &fp.vectors {
            let Some(layer) = v.layer else { continue };
            if &v.role != role || v.stack != stack {
                continue;
            }
            let values = v.values().map_err(|e| Error::Fingerprint {
                path: fp.model.name.clone().into(),
                reason: e.to_string(),
            })?;
            if layers
                .insert(layer, values.into_iter().map(f64::from).collect())
                .is_some()
            {
                return Err(Error::Fingerprint {
                    path: fp.model.name.clone().into(),
                    reason: format!("two {role} vectors at layer {layer}"),
                });
            }
        }
        if layers.is_empty() {
            return Err(Error::Fingerprint {
                path: fp.model.name.clone().into(),
                reason: format!(
                    "no {role} vectors{} (fingerprint it with `--vectors norms`)",
                    stack.map(|s| format!(" in the {s}")).unwrap_or_default()
                ),
            });
        }
        Ok(LayerVectors {
            model: fp.model.name.clone(),
            role: role.clone(),
            layers: layers.into_iter().collect(),
        })
    }

    /// The vectors' common length (their width); `None` when they differ.
    pub fn width(&self) -> Option<usize> {
        let w = self.layers.first()?.1.len();
        self.layers.iter().all(|(_, v)| v.len() == w).then_some(w)
    }
}

/// A measure at the layers two models share.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SameLayer {
    /// The measure.
    pub measure: VectorMeasure,
    /// Layer indices present in both models, ascending.
    pub layers: Vec<u32>,
    /// The measure at each of them.
    pub values: Vec<f64>,
    /// Their mean (the claims' summary).
    pub mean: f64,
}

/// The measure of `a`'s and `b`'s vectors at every layer index both have (the published
/// method compares layer i with layer i).
pub fn same_layer(a: &LayerVectors, b: &LayerVectors, m: VectorMeasure) -> Result<SameLayer> {
    let bmap: BTreeMap<u32, &Vec<f64>> = b.layers.iter().map(|(l, v)| (*l, v)).collect();
    let mut layers = Vec::new();
    let mut values = Vec::new();
    for (l, va) in &a.layers {
        if let Some(vb) = bmap.get(l) {
            layers.push(*l);
            values.push(m.of(va, vb)?);
        }
    }
    if values.is_empty() {
        return Err(Error::TooFewValues {
            what: format!("layers shared by {} and {}", a.model, b.model),
            n: 0,
            needed: 1,
        });
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    Ok(SameLayer {
        measure: m,
        layers,
        values,
        mean,
    })
}

/// The measure for every layer pair: row i is `a`'s i-th layer, column j `b`'s j-th.
pub fn layer_matrix(a: &LayerVectors, b: &LayerVectors, m: VectorMeasure) -> Result<Vec<Vec<f64>>> {
    a.layers
        .iter()
        .map(|(_, va)| b.layers.iter().map(|(_, vb)| m.of(va, vb)).collect())
        .collect()
}

/// Which within-model layer pairs form the "baseline".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Baseline {
    /// The first layer against every other (the published claim: layer 0 against 10, 20,
    /// 30, 40).
    FirstLayer,
    /// Every pair of distinct layers.
    AllPairs,
}

impl Baseline {
    /// Both, the published one first.
    pub const ALL: [Baseline; 2] = [Baseline::FirstLayer, Baseline::AllPairs];

    /// A few words for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Baseline::FirstLayer => "first layer vs every other layer",
            Baseline::AllPairs => "every pair of distinct layers",
        }
    }
}

/// The measure between distinct layers of one model.
pub fn within_model(v: &LayerVectors, m: VectorMeasure, baseline: Baseline) -> Result<Vec<f64>> {
    let n = v.layers.len();
    let mut out = Vec::new();
    for i in 0..n {
        for j in i + 1..n {
            if baseline == Baseline::FirstLayer && i != 0 {
                break;
            }
            out.push(m.of(&v.layers[i].1, &v.layers[j].1)?);
        }
    }
    Ok(out)
}

/// The claims' "sigma": how many baseline standard deviations the same-layer mean lies above
/// the within-model baseline mean.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClaimSigma {
    /// The measure.
    pub measure: VectorMeasure,
    /// Which within-model pairs.
    pub baseline: Baseline,
    /// Mean over shared layers of the cross-model measure.
    pub same_layer_mean: f64,
    /// Number of shared layers.
    pub same_layer_n: usize,
    /// Mean of the within-model values (both models pooled).
    pub baseline_mean: f64,
    /// Their sample standard deviation (ddof 1).
    pub baseline_sd: f64,
    /// Number of within-model values.
    pub baseline_n: usize,
    /// `(same_layer_mean − baseline_mean) / baseline_sd`.
    pub sigma: f64,
}

/// `(same-layer mean − baseline mean) / baseline sd`, with the within-model values of both
/// models pooled and the sd taken with ddof 1. This is the claims' yardstick, reproduced to
/// show what it measures: the spread of a few within-model values says nothing about how far
/// unrelated models' values spread.
pub fn claim_sigma(
    a: &LayerVectors,
    b: &LayerVectors,
    m: VectorMeasure,
    baseline: Baseline,
) -> Result<ClaimSigma> {
    let same = same_layer(a, b, m)?;
    let mut base = within_model(a, m, baseline)?;
    base.extend(within_model(b, m, baseline)?);
    if base.len() < 2 {
        return Err(Error::TooFewValues {
            what: "within-model baseline values".into(),
            n: base.len(),
            needed: 2,
        });
    }
    let mean = base.iter().sum::<f64>() / base.len() as f64;
    let sd = (base.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (base.len() - 1) as f64)
        .sqrt();
    if !(sd > 0.0) {
        return Err(Error::invalid(
            "within-model baseline sd",
            sd,
            "is zero: the sigma is undefined",
        ));
    }
    Ok(ClaimSigma {
        measure: m,
        baseline,
        same_layer_mean: same.mean,
        same_layer_n: same.values.len(),
        baseline_mean: mean,
        baseline_sd: sd,
        baseline_n: base.len(),
        sigma: (same.mean - mean) / sd,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lv(name: &str, layers: Vec<Vec<f64>>) -> LayerVectors {
        LayerVectors {
            model: name.into(),
            role: Role::AttnNorm,
            layers: layers
                .into_iter()
                .enumerate()
                .map(|(i, v)| (i as u32, v))
                .collect(),
        }
    }

    #[test]
    fn cosines_by_hand() {
        let a = [1.0, 2.0, 3.0];
        let b = [2.0, 4.0, 6.5];
        // 1*2 + 2*4 + 3*6.5 = 29.5; |a| = sqrt(14); |b| = sqrt(62.25) = 7.89...
        let want = 29.5 / (14f64.sqrt() * 62.25f64.sqrt());
        assert!((cosine(&a, &b).unwrap() - want).abs() < 1e-15);
        // centred: a - 2 = [-1, 0, 1]; b - 4.1667 = [-2.1667, -0.1667, 2.3333]
        let r = centred_cosine(&a, &b).unwrap();
        let bm = [-2.0 - 1.0 / 6.0, -1.0 / 6.0, 2.0 + 1.0 / 3.0];
        let want = (-bm[0] + bm[2]) / (2f64.sqrt() * bm.iter().map(|x| x * x).sum::<f64>().sqrt());
        assert!((r - want).abs() < 1e-12, "{r} {want}");
        // a shared offset makes the raw cosine high and leaves the centred one alone
        let u = [1.0 + 0.01, 1.0 - 0.01, 1.0 + 0.02, 1.0 - 0.02];
        let v = [1.0 - 0.01, 1.0 + 0.02, 1.0 - 0.01, 1.0 + 0.0];
        assert!(cosine(&u, &v).unwrap() > 0.999);
        assert!(centred_cosine(&u, &v).unwrap() < 0.0);
    }

    #[test]
    fn undefined_cases_are_errors() {
        assert!(cosine(&[1.0, 2.0], &[1.0]).is_err());
        assert!(cosine(&[], &[]).is_err());
        assert!(cosine(&[0.0, 0.0], &[1.0, 2.0]).is_err());
        assert!(centred_cosine(&[3.0, 3.0], &[1.0, 2.0]).is_err());
        assert!(cosine(&[f64::NAN, 1.0], &[1.0, 2.0]).is_err());
    }

    #[test]
    fn same_layer_matrix_baseline_and_sigma() {
        let a = lv(
            "a",
            vec![
                vec![1.0, 2.0, 3.0],
                vec![3.0, 1.0, 2.0],
                vec![2.0, 3.0, 1.0],
            ],
        );
        let b = lv("b", vec![vec![1.0, 2.0, 3.1], vec![3.0, 1.1, 2.0]]);
        let s = same_layer(&a, &b, VectorMeasure::CentredCosine).unwrap();
        assert_eq!(s.layers, vec![0, 1]);
        assert!(s.values.iter().all(|&x| x > 0.99));
        let m = layer_matrix(&a, &b, VectorMeasure::CentredCosine).unwrap();
        assert_eq!((m.len(), m[0].len()), (3, 2));
        assert_eq!(m[0][0], s.values[0]);
        // within a: layers 0-1, 0-2 (first layer) and 1-2 (all pairs)
        let first = within_model(&a, VectorMeasure::CentredCosine, Baseline::FirstLayer).unwrap();
        let all = within_model(&a, VectorMeasure::CentredCosine, Baseline::AllPairs).unwrap();
        assert_eq!((first.len(), all.len()), (2, 3));
        assert_eq!(&all[..2], &first[..]);
        let sig = claim_sigma(&a, &b, VectorMeasure::CentredCosine, Baseline::AllPairs).unwrap();
        let mut base = all.clone();
        base.extend(within_model(&b, VectorMeasure::CentredCosine, Baseline::AllPairs).unwrap());
        let mean = base.iter().sum::<f64>() / base.len() as f64;
        let sd =
            (base.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (base.len() - 1) as f64).sqrt();
        assert_eq!(sig.baseline_n, 4);
        assert!((sig.sigma - (s.mean - mean) / sd).abs() < 1e-12);
    }
}

//! How much the sampling error of sampled fingerprints (`fingerprint --sample N`) moves a
//! curve and a similarity score.
//!
//! Every sampled row carries the standard error of its std (see `fingerprint::sample`). The
//! error is propagated by Monte Carlo through the same curve extraction and measure as the
//! real comparison: each draw adds `N(0, se)` to every sampled row's std, rebuilds the curves
//! ([`Curves::from_fingerprint`]) and rescores the pair. The spread of the draws' scores is the
//! score's sampling error; the root-mean-square shift of the curve points against the spread of
//! the curve over layers says whether the sampling is negligible for the curves' shape.

use rand::Rng;
use serde::Serialize;

use crate::curves::{CurveOptions, Curves};
use crate::error::Result;
use crate::measure::{similarity, MeasureOptions};
use fingerprint::Fingerprint;

/// Monte-Carlo draws of the sampling error: the score's standard error is then known to about
/// `1/sqrt(2·200)` = 5% of itself, enough to say whether it matters.
pub const DRAWS: usize = 200;

/// Sampling is negligible for the curves when the points move by less than this share of the
/// curve's own spread over layers (RMS shift / SD over layers): a 5% blur of the shape cannot
/// change which curves look alike.
pub const NEGLIGIBLE_SHARE: f64 = 0.05;

/// The effect of sampling on one comparison.
#[derive(Clone, Debug, Serialize)]
pub struct SamplingEffect {
    /// The models whose fingerprints were sampled.
    pub sampled: Vec<String>,
    /// Largest RMS shift of a curve's points, as a share of that curve's SD over layers.
    pub curve_share: f64,
    /// Standard deviation of the score over the draws: its sampling error.
    pub score_se: f64,
    /// Draws.
    pub draws: usize,
    /// Seed of the draws.
    pub seed: u64,
    /// `curve_share < NEGLIGIBLE_SHARE`.
    pub negligible: bool,
}

/// A copy of `fp` whose sampled rows' std moved by one draw of their standard error.
fn perturbed(fp: &Fingerprint, rng: &mut impl Rng) -> Fingerprint {
    let mut out = fp.clone();
    for r in &mut out.tensors {
        if let (Some(s), Some(se)) = (r.stats.std, r.se.and_then(|e| e.std)) {
            r.stats.std = Some((s + se * crate::rng::normal(rng)).max(0.0));
        }
    }
    out
}

/// The RMS shift of `moved`'s points from `base`'s, as a share of each curve's SD over layers
/// (the largest over roles).
fn curve_shift(base: &Curves, moved: &[Curves]) -> f64 {
    let mut worst: f64 = 0.0;
    for (role, c) in &base.roles {
        let n = c.values.len() as f64;
        if n < 2.0 {
            continue;
        }
        let mean = c.values.iter().sum::<f64>() / n;
        let sd = (c.values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        let mut ss = 0.0;
        let mut k = 0.0;
        for m in moved {
            if let Some(mc) = m.roles.get(role) {
                for (a, b) in c.values.iter().zip(&mc.values) {
                    ss += (a - b).powi(2);
                    k += 1.0;
                }
            }
        }
        if k > 0.0 && sd > 0.0 {
            worst = worst.max((ss / k).sqrt() / sd);
        }
    }
    worst
}

/// The sampling effect on comparing `a` and `b` (`None` when neither was sampled).
pub fn sampling_effect(
    a: &Fingerprint,
    b: &Fingerprint,
    curves: &CurveOptions,
    measure: &MeasureOptions,
    seed: u64,
) -> Result<Option<SamplingEffect>> {
    let sampled: Vec<String> = [a, b]
        .iter()
        .filter(|f| f.sampling.is_some())
        .map(|f| f.model.name.clone())
        .collect();
    if sampled.is_empty() {
        return Ok(None);
    }
    let ca = Curves::from_fingerprint(a, curves)?;
    let cb = Curves::from_fingerprint(b, curves)?;
    let mut rng = crate::rng::stream(seed, 0);
    let (mut ma, mut mb, mut scores) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..DRAWS {
        let pa = Curves::from_fingerprint(&perturbed(a, &mut rng), curves)?;
        let pb = Curves::from_fingerprint(&perturbed(b, &mut rng), curves)?;
        scores.push(similarity(&pa, &pb, measure)?.score);
        ma.push(pa);
        mb.push(pb);
    }
    let n = scores.len() as f64;
    let mean = scores.iter().sum::<f64>() / n;
    let score_se = (scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let curve_share = curve_shift(&ca, &ma).max(curve_shift(&cb, &mb));
    Ok(Some(SamplingEffect {
        sampled,
        curve_share,
        score_se,
        draws: DRAWS,
        seed,
        negligible: curve_share < NEGLIGIBLE_SHARE,
    }))
}

/// The largest curve shift of one sampled panel model (for `null --panel`): `None` when `fp`
/// was not sampled.
pub fn panel_member_shift(
    fp: &Fingerprint,
    curves: &CurveOptions,
    seed: u64,
) -> Result<Option<f64>> {
    if fp.sampling.is_none() {
        return Ok(None);
    }
    let base = Curves::from_fingerprint(fp, curves)?;
    let mut rng = crate::rng::stream(seed, 0);
    let moved = (0..DRAWS)
        .map(|_| Curves::from_fingerprint(&perturbed(fp, &mut rng), curves))
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(curve_shift(&base, &moved)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{fingerprint, row};
    use fingerprint::roles::Role;
    use fingerprint::sample::{SampleInfo, StatErrors};

    /// A 12-layer model whose q, k, v and o stds follow `f`, sampled with relative error `rel`.
    fn model(name: &str, f: impl Fn(u32) -> f64, rel: Option<f64>) -> Fingerprint {
        let rows = (0..12)
            .flat_map(|l| [Role::AttnQ, Role::AttnK, Role::AttnV, Role::AttnO].map(|r| (l, r)))
            .map(|(l, r)| {
                let mut t = row(None, l, r, None, f(l));
                t.se = rel.map(|rel| StatErrors {
                    clusters: 10,
                    population: 100,
                    elements: 2560,
                    mean: Some(0.0),
                    std: Some(rel * f(l)),
                    abs_mean: Some(0.0),
                    l2: Some(0.0),
                });
                t
            })
            .collect();
        let mut fp = fingerprint(name, rows);
        fp.sampling = rel.map(|_| SampleInfo {
            blocks: 10,
            seed: 0,
            estimator: "test".into(),
        });
        fp
    }

    #[test]
    fn small_errors_are_negligible_and_large_ones_are_not() {
        let curves = CurveOptions::default();
        let m = MeasureOptions::default();
        let shape = |l: u32| 0.02 + 0.001 * l as f64;
        let other = |l: u32| 0.03 - 0.0008 * l as f64 + 0.0004 * (l % 3) as f64;
        let exact = model("b", other, None);
        assert!(
            sampling_effect(&model("a", shape, None), &exact, &curves, &m, 1)
                .unwrap()
                .is_none()
        );
        let small = sampling_effect(&model("a", shape, Some(1e-4)), &exact, &curves, &m, 1)
            .unwrap()
            .unwrap();
        assert!(small.negligible && small.score_se > 0.0, "{small:?}");
        let large = sampling_effect(&model("a", shape, Some(0.1)), &exact, &curves, &m, 1)
            .unwrap()
            .unwrap();
        assert!(
            !large.negligible && large.score_se > small.score_se,
            "{large:?}"
        );
        assert_eq!(large.sampled, ["a"]);
    }
}

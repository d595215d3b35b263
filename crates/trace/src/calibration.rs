//! Calibration summaries of the matching test over layer pairs known to be unrelated: the size
//! of each null at given levels, with Clopper–Pearson intervals, and a tail-sensitive count of
//! large coincidence counts against the null's expectation (a KS test of the p-values alone
//! does not see a heavy upper tail).

use serde::{Deserialize, Serialize};

use super::csu::{csu, CsuOptions, LayerTest};
use super::{exact, Error, LayerId, ModelWeights, Result};

/// Levels at which the size is reported.
pub const LEVELS: [f64; 2] = [0.01, 0.05];

/// Coincidence count whose upper tail is checked: under the exact law `K` is close to
/// Poisson(units/candidates ≤ 1), so `P(K ≥ 4)` is at most 1.9% and a heavy tail shows up
/// there first (the AntiBERTy × Whisper count was 7 against 1.8 expected).
pub const TAIL_K: u64 = 4;

/// Confidence of the intervals.
pub const CONFIDENCE: f64 = 0.95;

/// Rejections at one level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Size {
    /// The level α.
    pub alpha: f64,
    /// Layer pairs whose randomized p-value is at most α.
    pub rejections: u64,
    /// Layer pairs.
    pub n: u64,
    /// `rejections / n`.
    pub rate: f64,
    /// Clopper–Pearson interval of the rate.
    pub interval: (f64, f64),
}

/// The count of layer pairs with `K ≥ TAIL_K`, against what a null expects.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tail {
    /// `TAIL_K`.
    pub k: u64,
    /// Layer pairs with at least `k` coincidences.
    pub observed: u64,
    /// Expected under the rotation null as the test models it: Σ over layer pairs of
    /// `P(Poisson(λ) ≥ k)`, λ the pair's pooled mean `(K + Σ K_d) / (1 + draws)` (its estimate
    /// under the null, where the observed count is one more exchangeable draw).
    pub expected_rotation: f64,
    /// Layer pairs whose rotation draws reached `k` at least once, and the total of such draws
    /// (the raw Monte-Carlo evidence behind `expected_rotation`).
    pub draws_at_or_above: (u64, u64),
    /// Expected under the exact law of independent matchings.
    pub expected_exact_law: f64,
    /// `P(Poisson(expected_rotation) ≥ observed)`: is the observed count too large for the
    /// rotation null (a sum of rare, nearly independent events is nearly Poisson)?
    pub p_rotation: f64,
}

/// The calibration of one set of unrelated layer pairs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// What was compared.
    pub name: String,
    /// Layer pairs.
    pub pairs: u64,
    /// Units matched per pair (the largest).
    pub units: usize,
    /// Draws per null and pair.
    pub draws: usize,
    /// Σ K.
    pub sum_k: u64,
    /// Σ of the rotation null's mean K.
    pub sum_null_mean: f64,
    /// Σ of the exact law's mean K.
    pub sum_exact_mean: f64,
    /// Size of the rotation null (the reported `p`), at [`LEVELS`].
    pub rotation: Vec<Size>,
    /// Size of the exact law (reference).
    pub exact_law: Vec<Size>,
    /// The upper tail of K.
    pub tail: Tail,
}

fn sizes(log10_ps: &[f64]) -> Result<Vec<Size>> {
    let n = log10_ps.len() as u64;
    LEVELS
        .iter()
        .map(|&alpha| {
            let rejections = log10_ps.iter().filter(|&&l| l <= alpha.log10()).count() as u64;
            Ok(Size {
                alpha,
                rejections,
                n,
                rate: rejections as f64 / n.max(1) as f64,
                interval: null::stats::clopper_pearson(rejections, n, CONFIDENCE)?,
            })
        })
        .collect()
}

/// Summarize layer tests of pairs that are unrelated by construction.
pub fn summarize(name: &str, layers: &[LayerTest]) -> Result<Calibration> {
    if layers.is_empty() {
        return Err(Error::Invalid {
            what: "calibration".into(),
            reason: format!("{name}: no layer pairs"),
        });
    }
    let observed = layers.iter().filter(|l| l.coincidences >= TAIL_K).count() as u64;
    let expected_rotation: f64 = layers
        .iter()
        .map(|l| {
            let total = l.coincidences + l.basis.coincidences.iter().sum::<u64>();
            poisson_sf(total as f64 / (1 + l.basis.draws) as f64, TAIL_K)
        })
        .sum();
    let at_or_above = |l: &LayerTest| {
        l.basis
            .coincidences
            .iter()
            .filter(|&&k| k >= TAIL_K)
            .count() as u64
    };
    let draws_at_or_above = (
        layers.iter().filter(|l| at_or_above(l) > 0).count() as u64,
        layers.iter().map(at_or_above).sum(),
    );
    let p_rotation = poisson_sf(expected_rotation, observed);
    let col = |f: &dyn Fn(&LayerTest) -> f64| layers.iter().map(f).collect::<Vec<f64>>();
    Ok(Calibration {
        name: name.into(),
        pairs: layers.len() as u64,
        units: layers.iter().map(|l| l.units).max().unwrap_or(0),
        draws: layers[0].basis.draws,
        sum_k: layers.iter().map(|l| l.coincidences).sum(),
        sum_null_mean: layers.iter().map(|l| l.basis.mean).sum(),
        sum_exact_mean: layers.iter().map(|l| l.expected).sum(),
        rotation: sizes(&col(&|l| l.log10_p_randomized))?,
        exact_law: sizes(&col(&|l| l.exact_law.log10_p_randomized))?,
        tail: Tail {
            k: TAIL_K,
            observed,
            expected_rotation,
            draws_at_or_above,
            expected_exact_law: layers
                .iter()
                .map(|l| exact::ln_sf(l.units as u64, l.candidates as u64, TAIL_K).exp())
                .sum(),
            p_rotation,
        },
    })
}

/// `P(X ≥ k)` for `X ~ Poisson(mean)`.
fn poisson_sf(mean: f64, k: u64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if mean <= 0.0 {
        return 0.0;
    }
    let below: f64 = (0..k)
        .map(|j| {
            (j as f64 * mean.ln() - mean - statrs::function::gamma::ln_gamma(j as f64 + 1.0)).exp()
        })
        .sum();
    // For small means the complement loses precision: sum the upper tail directly instead.
    if mean < k as f64 {
        let upper: f64 = (k..k + 200)
            .map(|j| {
                (j as f64 * mean.ln() - mean - statrs::function::gamma::ln_gamma(j as f64 + 1.0))
                    .exp()
            })
            .sum();
        return upper.min(1.0);
    }
    (1.0 - below).max(0.0)
}

/// Run the matching test on every given layer pair of two unrelated models and summarize it.
pub fn calibrate(
    name: &str,
    a: &ModelWeights,
    b: &ModelWeights,
    pairs: Vec<(LayerId, LayerId)>,
    opts: &CsuOptions,
) -> Result<Calibration> {
    let r = csu(
        a,
        b,
        &CsuOptions {
            pairs: Some(pairs),
            ..opts.clone()
        },
    )?;
    summarize(name, &r.layers)
}

impl Calibration {
    /// The header of [`Calibration::markdown_row`].
    pub fn markdown_header() -> String {
        "| pairs | units × draws | ΣK (rotation-null mean; exact law) | rotation size 0.01 | \
         0.05 | exact-law size 0.01 | 0.05 | K ≥ 4: observed (rotation null; exact law), p \
         |\n|---|---|---|---|---|---|---|---|"
            .into()
    }

    /// One table row: sizes as `rejections/n = rate [interval]`.
    pub fn markdown_row(&self) -> String {
        let s = |v: &[Size], i: usize| {
            v.get(i).map_or(String::new(), |s| {
                format!(
                    "{}/{} = {:.3} [{:.3}, {:.3}]",
                    s.rejections, s.n, s.rate, s.interval.0, s.interval.1
                )
            })
        };
        format!(
            "| {} ({}) | {} × {} | {} ({:.1}; {:.1}) | {} | {} | {} | {} | {} ({:.1}; {:.1}), \
             p = {:.3} |",
            self.pairs,
            self.name,
            self.units,
            self.draws,
            self.sum_k,
            self.sum_null_mean,
            self.sum_exact_mean,
            s(&self.rotation, 0),
            s(&self.rotation, 1),
            s(&self.exact_law, 0),
            s(&self.exact_law, 1),
            self.tail.observed,
            self.tail.expected_rotation,
            self.tail.expected_exact_law,
            self.tail.p_rotation
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_tail() {
        assert_eq!(poisson_sf(1.0, 0), 1.0);
        assert!((poisson_sf(1.0, 1) - (1.0 - (-1.0f64).exp())).abs() < 1e-12);
        assert!((poisson_sf(2.0, 3) - 0.323_323_583_816_936_5).abs() < 1e-12);
        assert_eq!(poisson_sf(0.0, 2), 0.0);
        // Small mean, far tail: e^{-0.01} 0.01^4 / 4! (1 + 0.01/5 + …).
        let want = (-0.01f64).exp() * 1e-8 / 24.0 * (1.0 + 0.01 / 5.0 + 1e-4 / 30.0);
        assert!((poisson_sf(0.01, 4) / want - 1.0).abs() < 1e-6);
    }

    #[test]
    fn sizes_count_at_each_level() {
        let s = sizes(&[-3.0, -1.5, -0.5, 0.0]).unwrap();
        assert_eq!((s[0].rejections, s[1].rejections, s[0].n), (1, 2, 4));
        assert!(s[0].interval.0 < 0.25 && s[0].interval.1 > 0.25);
    }
}

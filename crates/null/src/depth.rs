//! A depth model: how the unrelated same-depth null changes with depth, and what it predicts at
//! a depth no panel covers (the claim's 48 vs 48 layers).
//!
//! **Model-based, not measured.** Panels hold few unrelated pairs of equal depth beyond a
//! handful of depths, so the chance of a score at a deep pair is extrapolated:
//! * **Exceedance rate.** For each threshold t, the rate of unrelated same-depth pairs scoring
//!   at or above t is fitted by a binomial logistic regression on ln(depth):
//!   `logit P(score >= t) = b0 + b1 ln L`, one binomial point per (panel, depth). Assumptions:
//!   the log-odds are linear in ln L (a smooth monotone trend; nothing in the data proves it
//!   beyond the fitted depths); pairs of one depth are exchangeable across panels and
//!   architectures; and pairs sharing a model are dependent, so each point counts
//!   `min(pairs, floor(models / 2))` *effective* pairs (the most disjoint pairs its models
//!   allow), its exceedances scaled alike ([`effective_pairs`]). A half exceedance and a half
//!   non-exceedance are added per point ([`CONTINUITY`]) so a depth with none does not drive the
//!   fit to infinity.
//! * **Interval.** Parametric bootstrap: [`BOOTSTRAP_REPLICATES`] replicates draw each point's
//!   effective exceedances from the fitted binomial, refit, and predict; the 2.5% and 97.5%
//!   quantiles of the predicted rate form the interval (ChaCha8 stream i of the seed for
//!   replicate i). It covers parameter uncertainty under the model, not the model's error: that
//!   is what the leave-one-depth-out check measures.
//! * **Leave one depth out.** Every depth is dropped in turn (all its points), the model refitted
//!   on the rest and its prediction compared with the observed rate there.
//! * **Score distribution.** The median and 95th percentile of each point's unrelated
//!   same-depth scores are fitted by least squares in ln L on Fisher's z (atanh) scale, with a
//!   t prediction interval, and checked by leaving each depth out.

use std::collections::{BTreeMap, BTreeSet};

use rand_distr::{Binomial, Distribution};
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::error::{Error, Result};
use crate::labels::Relation;
use crate::rng;
use crate::stats::quantile_sorted;
use crate::table::PairTable;

/// The thresholds of the published claim's discussion: 0.7 ("normal is below 0.7"), 0.9, and the
/// published 0.927.
pub const DEPTH_THRESHOLDS: [f64; 3] = [0.7, 0.9, 0.927];

/// Pseudo-counts added to each point's exceedances and non-exceedances (Haldane–Anscombe).
pub const CONTINUITY: f64 = 0.5;

/// Parametric bootstrap replicates of the rate interval.
pub const BOOTSTRAP_REPLICATES: usize = 2000;

/// Bootstrap replicates of each leave-one-depth-out fold.
pub const LODO_REPLICATES: usize = 500;

/// Coverage of every interval.
pub const COVERAGE: f64 = 0.95;

/// Iteration cap of the logistic fit (IRLS converges in under 20 on real strata).
pub const MAX_IRLS_ITERATIONS: usize = 100;

/// The label every depth-model figure carries.
pub const MODEL_BASED: &str = "model-based: extrapolated by a fitted depth trend, not measured";

/// Unrelated same-depth pairs of one panel at one depth.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DepthPoint {
    /// The panel.
    pub source: String,
    /// Number of layers of both models.
    pub depth: usize,
    /// Unrelated same-depth pairs.
    pub pairs: u64,
    /// Models in those pairs.
    pub models: u64,
    /// Pairs at or above each threshold, in threshold order.
    pub exceed: Vec<u64>,
    /// Median score.
    pub median: f64,
    /// 95th percentile of the scores.
    pub p95: f64,
}

impl DepthPoint {
    /// Observed rate at threshold index `i`.
    pub fn rate(&self, i: usize) -> f64 {
        self.exceed[i] as f64 / self.pairs as f64
    }
}

/// The effective number of independent pairs of a point: `min(pairs, floor(models / 2))`, at
/// least 1.
pub fn effective_pairs(p: &DepthPoint) -> u64 {
    p.pairs.min(p.models / 2).max(1)
}

/// The unrelated same-depth pairs of `table`, one point per depth.
pub fn same_depth_points(table: &PairTable, thresholds: &[f64]) -> Result<Vec<DepthPoint>> {
    let mut by_depth: BTreeMap<usize, (Vec<f64>, BTreeSet<usize>)> = BTreeMap::new();
    for p in &table.pairs {
        if p.relation != Relation::Unrelated {
            continue;
        }
        let (a, b) = (&table.models[p.a], &table.models[p.b]);
        if let (Some(x), Some(y)) = (a.layers, b.layers) {
            if x == y {
                let e = by_depth.entry(x).or_default();
                e.0.push(p.score);
                e.1.insert(p.a);
                e.1.insert(p.b);
            }
        }
    }
    let mut out = Vec::new();
    for (depth, (mut scores, models)) in by_depth {
        scores.sort_by(f64::total_cmp);
        out.push(DepthPoint {
            source: table.source.clone(),
            depth,
            pairs: scores.len() as u64,
            models: models.len() as u64,
            exceed: thresholds
                .iter()
                .map(|&t| scores.iter().filter(|&&s| s >= t).count() as u64)
                .collect(),
            median: quantile_sorted(&scores, 0.5)?,
            p95: quantile_sorted(&scores, 0.95)?,
        });
    }
    Ok(out)
}

/// `logit p = b0 + b1 ln L`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Logistic {
    /// Intercept.
    pub b0: f64,
    /// Slope per unit of ln(depth).
    pub b1: f64,
}

impl Logistic {
    /// The modelled rate at `depth`.
    pub fn rate(&self, depth: f64) -> f64 {
        1.0 / (1.0 + (-(self.b0 + self.b1 * depth.ln())).exp())
    }
}

/// Fit by iteratively reweighted least squares on `(depth, exceedances, trials)` with
/// [`CONTINUITY`] added.
pub fn fit_logistic(points: &[(f64, f64, f64)]) -> Result<Logistic> {
    let depths: BTreeSet<u64> = points.iter().map(|p| p.0.to_bits()).collect();
    if depths.len() < 2 {
        return Err(Error::TooFewValues {
            what: "depth model: distinct depths".into(),
            n: depths.len(),
            needed: 2,
        });
    }
    let data: Vec<(f64, f64, f64)> = points
        .iter()
        .map(|&(d, k, n)| (d.ln(), k + CONTINUITY, n + 2.0 * CONTINUITY))
        .collect();
    let (mut b0, mut b1) = (0.0f64, 0.0f64);
    for _ in 0..MAX_IRLS_ITERATIONS {
        // Newton step: solve (X'WX) delta = X'(y - n p).
        let (mut s00, mut s01, mut s11, mut g0, mut g1) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for &(x, k, n) in &data {
            let p = 1.0 / (1.0 + (-(b0 + b1 * x)).exp());
            let w = n * p * (1.0 - p);
            s00 += w;
            s01 += w * x;
            s11 += w * x * x;
            g0 += k - n * p;
            g1 += (k - n * p) * x;
        }
        let det = s00 * s11 - s01 * s01;
        if !(det.abs() > 0.0) || !det.is_finite() {
            return Err(Error::invalid(
                "depth model",
                det,
                "singular information matrix (no spread in depth or rates at 0/1)",
            ));
        }
        let d0 = (s11 * g0 - s01 * g1) / det;
        let d1 = (s00 * g1 - s01 * g0) / det;
        b0 += d0;
        b1 += d1;
        if d0.abs().max(d1.abs()) < 1e-10 {
            return Ok(Logistic { b0, b1 });
        }
    }
    Err(Error::invalid(
        "depth model",
        MAX_IRLS_ITERATIONS,
        "the logistic fit did not converge within this many iterations",
    ))
}

/// The observed and predicted rate at one left-out depth.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LodoPoint {
    /// The depth left out.
    pub depth: usize,
    /// Its pooled observed value (rate, or median / p95 score).
    pub observed: f64,
    /// The prediction of the model fitted without it.
    pub predicted: f64,
    /// The prediction's interval.
    pub interval: (f64, f64),
}

/// Leave-one-depth-out summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lodo {
    /// Each fold.
    pub folds: Vec<LodoPoint>,
    /// Mean absolute error of the predictions.
    pub mean_abs_error: f64,
    /// Folds whose observed value lies in the interval.
    pub covered: usize,
}

fn lodo_summary(folds: Vec<LodoPoint>) -> Lodo {
    let n = folds.len().max(1) as f64;
    Lodo {
        mean_abs_error: folds
            .iter()
            .map(|f| (f.predicted - f.observed).abs())
            .sum::<f64>()
            / n,
        covered: folds
            .iter()
            .filter(|f| f.interval.0 <= f.observed && f.observed <= f.interval.1)
            .count(),
        folds,
    }
}

/// The modelled exceedance rate at one threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RatePrediction {
    /// Threshold.
    pub threshold: f64,
    /// The fit.
    pub fit: Logistic,
    /// Depth predicted.
    pub depth: usize,
    /// Modelled rate there.
    pub rate: f64,
    /// Parametric-bootstrap interval of the rate.
    pub interval: (f64, f64),
    /// Leave-one-depth-out check.
    pub lodo: Lodo,
}

/// The modelled median or 95th percentile of the same-depth scores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScorePrediction {
    /// `median` or `p95`.
    pub statistic: String,
    /// Intercept and slope on the atanh scale per unit of ln(depth).
    pub fit: (f64, f64),
    /// Depth predicted.
    pub depth: usize,
    /// Predicted value.
    pub value: f64,
    /// t prediction interval.
    pub interval: (f64, f64),
    /// Leave-one-depth-out check.
    pub lodo: Lodo,
}

/// The depth model of a set of same-depth points.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DepthModel {
    /// [`MODEL_BASED`].
    pub label: String,
    /// The points fitted.
    pub points: Vec<DepthPoint>,
    /// Thresholds.
    pub thresholds: Vec<f64>,
    /// Rates at each threshold.
    pub rates: Vec<RatePrediction>,
    /// Median and p95 of the scores.
    pub scores: Vec<ScorePrediction>,
    /// Bootstrap seed.
    pub seed: u64,
    /// Assumptions and caveats.
    pub notes: Vec<String>,
}

fn rate_points(points: &[&DepthPoint], i: usize) -> Vec<(f64, f64, f64)> {
    points
        .iter()
        .map(|p| {
            let e = effective_pairs(p) as f64;
            (p.depth as f64, p.exceed[i] as f64 * e / p.pairs as f64, e)
        })
        .collect()
}

fn quantile_pair(mut v: Vec<f64>) -> Result<(f64, f64)> {
    v.sort_by(f64::total_cmp);
    let a = (1.0 - COVERAGE) / 2.0;
    Ok((quantile_sorted(&v, a)?, quantile_sorted(&v, 1.0 - a)?))
}

/// Predict the rate at `depth` from `points` (threshold index `i`) with a bootstrap interval.
fn predict_rate(
    points: &[&DepthPoint],
    i: usize,
    depth: usize,
    replicates: usize,
    seed: u64,
) -> Result<(Logistic, f64, (f64, f64))> {
    let data = rate_points(points, i);
    let fit = fit_logistic(&data)?;
    let mut boot = Vec::with_capacity(replicates);
    for r in 0..replicates {
        let mut g = rng::stream(seed, r as u64);
        let sample: Vec<(f64, f64, f64)> = data
            .iter()
            .map(|&(d, _, n)| {
                let trials = n.round() as u64;
                let p = fit.rate(d);
                let k = Binomial::new(trials, p)
                    .map(|b| b.sample(&mut g) as f64)
                    .unwrap_or(0.0);
                (d, k, trials as f64)
            })
            .collect();
        // A replicate whose fit fails (all depths identical cannot happen here) is skipped.
        if let Ok(f) = fit_logistic(&sample) {
            boot.push(f.rate(depth as f64));
        }
    }
    if boot.is_empty() {
        return Err(Error::EmptyNull {
            name: "depth model bootstrap".into(),
            reason: "no replicate could be fitted".into(),
        });
    }
    Ok((fit, fit.rate(depth as f64), quantile_pair(boot)?))
}

/// A least-squares fit (intercept, slope), its prediction and the prediction's interval.
type LineFit = ((f64, f64), f64, (f64, f64));

/// Least squares of atanh(y) on ln(depth); prediction and t interval at `depth`.
fn predict_score(xy: &[(f64, f64)], depth: usize) -> Result<LineFit> {
    let n = xy.len();
    if n < 3 {
        return Err(Error::TooFewValues {
            what: "depth model: score points".into(),
            n,
            needed: 3,
        });
    }
    let pts: Vec<(f64, f64)> = xy
        .iter()
        .map(|&(d, y)| (d.ln(), y.clamp(-0.999_999, 0.999_999).atanh()))
        .collect();
    let nf = n as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / nf;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / nf;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if !(sxx > 0.0) {
        return Err(Error::invalid(
            "depth model",
            sxx,
            "all points at one depth",
        ));
    }
    let b1 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>() / sxx;
    let b0 = my - b1 * mx;
    let rss: f64 = pts.iter().map(|p| (p.1 - b0 - b1 * p.0).powi(2)).sum();
    let s = (rss / (nf - 2.0)).sqrt();
    let x0 = (depth as f64).ln();
    let se = s * (1.0 + 1.0 / nf + (x0 - mx).powi(2) / sxx).sqrt();
    let t = StudentsT::new(0.0, 1.0, nf - 2.0)
        .map_err(|e| Error::invalid("depth model t", nf - 2.0, &e.to_string()))?
        .inverse_cdf(1.0 - (1.0 - COVERAGE) / 2.0);
    let y0 = b0 + b1 * x0;
    Ok((
        (b0, b1),
        y0.tanh(),
        ((y0 - t * se).tanh(), (y0 + t * se).tanh()),
    ))
}

/// Fit the depth model on `points` and predict at `depth`.
pub fn fit(
    points: &[DepthPoint],
    thresholds: &[f64],
    depth: usize,
    seed: u64,
) -> Result<DepthModel> {
    if points
        .iter()
        .any(|p| p.exceed.len() != thresholds.len() || p.pairs == 0)
    {
        return Err(Error::invalid(
            "depth model",
            points.len(),
            "every point needs pairs and one count per threshold",
        ));
    }
    let all: Vec<&DepthPoint> = points.iter().collect();
    let depths: BTreeSet<usize> = points.iter().map(|p| p.depth).collect();
    let mut rates = Vec::new();
    for (i, &t) in thresholds.iter().enumerate() {
        let (fit, rate, interval) = predict_rate(&all, i, depth, BOOTSTRAP_REPLICATES, seed)?;
        let mut folds = Vec::new();
        for (f, &d) in depths.iter().enumerate() {
            let rest: Vec<&DepthPoint> = all.iter().copied().filter(|p| p.depth != d).collect();
            let held: Vec<&DepthPoint> = all.iter().copied().filter(|p| p.depth == d).collect();
            let Ok((_, pred, iv)) = predict_rate(
                &rest,
                i,
                d,
                LODO_REPLICATES,
                rng::child_seed(seed, (i * 1000 + f) as u64),
            ) else {
                continue;
            };
            let (k, n) = held
                .iter()
                .fold((0u64, 0u64), |a, p| (a.0 + p.exceed[i], a.1 + p.pairs));
            folds.push(LodoPoint {
                depth: d,
                observed: k as f64 / n as f64,
                predicted: pred,
                interval: iv,
            });
        }
        rates.push(RatePrediction {
            threshold: t,
            fit,
            depth,
            rate,
            interval,
            lodo: lodo_summary(folds),
        });
    }
    let mut scores = Vec::new();
    for stat in ["median", "p95"] {
        let value = |p: &DepthPoint| if stat == "median" { p.median } else { p.p95 };
        let xy: Vec<(f64, f64)> = points.iter().map(|p| (p.depth as f64, value(p))).collect();
        let Ok((fit, v, iv)) = predict_score(&xy, depth) else {
            continue;
        };
        let mut folds = Vec::new();
        for &d in &depths {
            let rest: Vec<(f64, f64)> = points
                .iter()
                .filter(|p| p.depth != d)
                .map(|p| (p.depth as f64, value(p)))
                .collect();
            let held: Vec<f64> = points.iter().filter(|p| p.depth == d).map(value).collect();
            if let Ok((_, pv, piv)) = predict_score(&rest, d) {
                folds.push(LodoPoint {
                    depth: d,
                    observed: held.iter().sum::<f64>() / held.len() as f64,
                    predicted: pv,
                    interval: piv,
                });
            }
        }
        scores.push(ScorePrediction {
            statistic: stat.into(),
            fit,
            depth,
            value: v,
            interval: iv,
            lodo: lodo_summary(folds),
        });
    }
    Ok(DepthModel {
        label: MODEL_BASED.into(),
        points: points.to_vec(),
        thresholds: thresholds.to_vec(),
        rates,
        scores,
        seed,
        notes: vec![
            "logit of the exceedance rate linear in ln(depth); points pooled across panels and \
             architectures; each point counts min(pairs, floor(models/2)) effective pairs, with \
             a half exceedance and half non-exceedance added"
                .into(),
            "the rate interval is a parametric bootstrap under the fitted model: it does not \
             include the model's own error, which the leave-one-depth-out check measures"
                .into(),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(depth: usize, pairs: u64, models: u64, rate: f64) -> DepthPoint {
        DepthPoint {
            source: "t".into(),
            depth,
            pairs,
            models,
            exceed: vec![(rate * pairs as f64).round() as u64],
            median: (0.1 * (depth as f64).ln()).tanh(),
            p95: (0.2 + 0.1 * (depth as f64).ln()).tanh(),
        }
    }

    #[test]
    fn logistic_recovers_a_known_trend() {
        // Rates from logit p = -6 + 1.5 ln L with very many trials.
        let truth = Logistic { b0: -6.0, b1: 1.5 };
        let data: Vec<(f64, f64, f64)> = [4.0, 6.0, 12.0, 24.0, 32.0]
            .iter()
            .map(|&d| (d, truth.rate(d) * 1e7, 1e7))
            .collect();
        let f = fit_logistic(&data).unwrap();
        assert!(
            (f.b0 + 6.0).abs() < 1e-3 && (f.b1 - 1.5).abs() < 1e-3,
            "{f:?}"
        );
        assert!(fit_logistic(&[(6.0, 1.0, 10.0), (6.0, 2.0, 10.0)]).is_err());
    }

    #[test]
    fn model_predicts_with_interval_and_lodo() {
        let truth = Logistic { b0: -6.0, b1: 1.5 };
        let pts: Vec<DepthPoint> = [4, 6, 12, 24, 32]
            .iter()
            .map(|&d| point(d, 4000, 200, truth.rate(d as f64)))
            .collect();
        let m = fit(&pts, &[0.9], 48, 1).unwrap();
        let r = &m.rates[0];
        let want = truth.rate(48.0);
        assert!(r.interval.0 < r.rate && r.rate < r.interval.1);
        assert!(
            r.interval.0 < want && want < r.interval.1,
            "{r:?} vs {want}"
        );
        assert_eq!(r.lodo.folds.len(), 5);
        assert!(r.lodo.mean_abs_error < 0.05);
        // Scores exactly on a line in ln L (atanh scale) are predicted exactly.
        let med = &m.scores[0];
        assert!((med.value - (0.1 * 48f64.ln()).tanh()).abs() < 1e-9);
        assert!(med.lodo.mean_abs_error < 1e-9);
        assert_eq!(m.label, MODEL_BASED);
        // Reproducible for a seed.
        assert_eq!(m, fit(&pts, &[0.9], 48, 1).unwrap());
        // Effective pairs: 200 models allow 100 disjoint pairs.
        assert_eq!(effective_pairs(&pts[0]), 100);
    }
}

//! Empirical p-values, their log10 and Monte-Carlo error, and rates above thresholds with
//! Clopper–Pearson intervals.
//!
//! The p-value of an observed score against n null values, `exceed` of which are at least the
//! observed one, is `(1 + exceed) / (1 + n)`: the observed value counts as one more member of
//! the null, so p is never 0 and the test is valid (exact under exchangeability) at every
//! level (North, Curtis & Sham 2002, Am. J. Hum. Genet. 71; Davison & Hinkley 1997, §4.2).
//! Its log10 is computed as `log10(1 + exceed) - log10(1 + n)`, so it never underflows.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::stats::clopper_pearson;

/// Confidence of every interval this crate reports.
pub const CONFIDENCE: f64 = 0.95;

/// How every interval of a rate or p-value in this crate is computed.
pub const INTERVAL_METHOD: &str = "Clopper-Pearson";

/// `(1 + exceed) / (1 + n)`.
pub fn empirical_p(exceed: u64, n: u64) -> Result<f64> {
    if exceed > n {
        return Err(Error::invalid("exceed", exceed, "exceeds the null size"));
    }
    Ok((1.0 + exceed as f64) / (1.0 + n as f64))
}

/// `log10((1 + exceed) / (1 + n))`, without forming the ratio.
pub fn log10_empirical_p(exceed: u64, n: u64) -> f64 {
    (1.0 + exceed as f64).log10() - (1.0 + n as f64).log10()
}

/// Binomial standard error `sqrt(p (1 - p) / n)` of a p-value estimated from `n` draws; 0 for
/// `n = 0`.
pub fn mc_error(p: f64, n: u64) -> f64 {
    if n == 0 {
        return 0.0;
    }
    (p * (1.0 - p) / n as f64).max(0.0).sqrt()
}

/// How many of a set of scores lie at or above (or at or below) a threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    /// The threshold.
    pub threshold: f64,
    /// Scores counted.
    pub count: u64,
    /// All scores.
    pub n: u64,
    /// `count / n`.
    pub rate: f64,
    /// Clopper–Pearson 95% interval of the rate.
    pub interval: (f64, f64),
}

impl Rate {
    /// A rate from counts.
    pub fn new(threshold: f64, count: u64, n: u64) -> Result<Self> {
        Ok(Rate {
            threshold,
            count,
            n,
            rate: count as f64 / n as f64,
            interval: clopper_pearson(count, n, CONFIDENCE)?,
        })
    }
}

fn check_scores(what: &str, scores: &[f64]) -> Result<()> {
    if scores.is_empty() {
        return Err(Error::TooFewValues {
            what: what.into(),
            n: 0,
            needed: 1,
        });
    }
    if let Some(&value) = scores.iter().find(|x| !x.is_finite()) {
        return Err(Error::NonFiniteInput {
            what: what.into(),
            value,
        });
    }
    Ok(())
}

/// The fraction of `scores` at or above each threshold (e.g. the false-positive rate of the
/// rule "related if score >= t" among unrelated pairs).
pub fn rates_at_or_above(scores: &[f64], thresholds: &[f64]) -> Result<Vec<Rate>> {
    check_scores("rate above threshold", scores)?;
    thresholds
        .iter()
        .map(|&t| {
            if !t.is_finite() {
                return Err(Error::invalid("threshold", t, "must be finite"));
            }
            let c = scores.iter().filter(|&&s| s >= t).count() as u64;
            Rate::new(t, c, scores.len() as u64)
        })
        .collect()
}

/// The fraction of `values` at or below each level (e.g. the rejection rate of p-values at
/// alpha).
pub fn rates_at_or_below(values: &[f64], levels: &[f64]) -> Result<Vec<Rate>> {
    check_scores("rate below level", values)?;
    levels
        .iter()
        .map(|&t| {
            if !t.is_finite() {
                return Err(Error::invalid("level", t, "must be finite"));
            }
            let c = values.iter().filter(|&&s| s <= t).count() as u64;
            Rate::new(t, c, values.len() as u64)
        })
        .collect()
}

/// A null distribution held as sorted scores, for fast exceedance counts.
#[derive(Clone, Debug, PartialEq)]
pub struct EmpiricalNull {
    sorted: Vec<f64>,
}

impl EmpiricalNull {
    /// Sort the null scores (all must be finite).
    pub fn new(mut scores: Vec<f64>) -> Result<Self> {
        check_scores("null", &scores)?;
        scores.sort_by(f64::total_cmp);
        Ok(EmpiricalNull { sorted: scores })
    }

    /// Number of null values.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Never true for a constructed null.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The scores, ascending.
    pub fn sorted(&self) -> &[f64] {
        &self.sorted
    }

    /// Null values at or above `observed`.
    pub fn exceed(&self, observed: f64) -> u64 {
        (self.sorted.len() - self.sorted.partition_point(|&s| s < observed)) as u64
    }

    /// `(1 + exceed) / (1 + n)`.
    pub fn p(&self, observed: f64) -> f64 {
        (1.0 + self.exceed(observed) as f64) / (1.0 + self.sorted.len() as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empirical_p_and_log() {
        assert_eq!(empirical_p(0, 99).unwrap(), 0.01);
        assert_eq!(empirical_p(99, 99).unwrap(), 1.0);
        assert!(empirical_p(5, 4).is_err());
        // 1 / (1 + 1e300) underflows nowhere in log10.
        let l = log10_empirical_p(0, u64::MAX);
        assert!((l + 19.265_919_722_494_8).abs() < 1e-9, "{l}");
        assert!((log10_empirical_p(9, 99) + 1.0).abs() < 1e-15);
    }

    #[test]
    fn exceedance_counts_ties_as_exceeding() {
        let n = EmpiricalNull::new(vec![0.3, 0.9, 0.5, 0.5, 0.1]).unwrap();
        assert_eq!(n.exceed(0.5), 3);
        assert_eq!(n.exceed(0.95), 0);
        assert_eq!(n.exceed(-1.0), 5);
        assert_eq!(n.p(0.95), 1.0 / 6.0);
        assert!(EmpiricalNull::new(vec![]).is_err());
        assert!(EmpiricalNull::new(vec![f64::NAN]).is_err());
    }

    #[test]
    fn rates_and_intervals() {
        let r = rates_at_or_above(&[0.1, 0.7, 0.8, 0.95], &[0.7, 0.927]).unwrap();
        assert_eq!((r[0].count, r[0].n), (3, 4));
        assert_eq!(r[1].count, 1);
        assert!(r[1].interval.0 < 0.25 && r[1].interval.1 > 0.25);
        let b = rates_at_or_below(&[0.001, 0.02, 0.5], &[0.01]).unwrap();
        assert_eq!(b[0].count, 1);
        assert!(rates_at_or_above(&[], &[0.5]).is_err());
        assert!(rates_at_or_above(&[0.5], &[f64::NAN]).is_err());
        assert_eq!(mc_error(0.5, 100), 0.05);
        assert_eq!(mc_error(0.5, 0), 0.0);
    }
}

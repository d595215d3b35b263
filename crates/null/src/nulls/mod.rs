//! Null distributions: what similarity scores look like when the models are unrelated.
//!
//! * [`panel`]: the unrelated pairs of a labelled panel of fingerprints, or of a published
//!   similarity matrix ([`published`]); lineage labels come from [`crate::labels`].
//! * [`surrogate`]: Monte-Carlo nulls for a single pair (layer shuffle, circular shift, block
//!   bootstrap, trend + AR(1) residual surrogate), for when no panel is at hand.
//!
//! Every null reports a [`NullResult`]: what it preserves and destroys, its size, seed,
//! exceedance count, p-value (linear and log10), a Clopper–Pearson interval and the
//! Monte-Carlo standard error.

pub mod panel;
pub mod permutation;
pub mod published;
pub mod surrogate;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::pvalue::{empirical_p, log10_empirical_p, mc_error, CONFIDENCE};
use crate::stats::clopper_pearson;

/// What a null is, in words.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NullInfo {
    /// Short name (`panel`, `shuffle`, `circular`, `block`, `trend-ar`, ...).
    pub name: String,
    /// What structure of real curves the null keeps.
    pub preserves: String,
    /// What it destroys (the signal it tests for, and anything else it loses).
    pub destroys: String,
}

/// How the null values were obtained, which decides what `mc_error` means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sampling {
    /// Random Monte-Carlo draws: `mc_error` is the Monte-Carlo standard error of p.
    MonteCarlo,
    /// Every member of a finite set was enumerated: no Monte-Carlo error.
    Exhaustive,
    /// Pairs of a panel: `mc_error` is the binomial error if pairs were independent, which
    /// they are not (it understates the uncertainty).
    Panel,
}

/// The test of one observed score against one null.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NullResult {
    /// Short name of the null.
    pub name: String,
    /// What the null keeps.
    pub preserves: String,
    /// What the null destroys.
    pub destroys: String,
    /// The observed score.
    pub observed: f64,
    /// Null values used.
    pub n: u64,
    /// Monte-Carlo seed (`None` for deterministic nulls).
    pub seed: Option<u64>,
    /// Null values at or above the observed score.
    pub exceed: u64,
    /// `(1 + exceed) / (1 + n)`.
    pub p: f64,
    /// log10 of `p`, exact even where `p` would underflow.
    pub log10_p: f64,
    /// Clopper–Pearson 95% interval of the exceedance probability P(null >= observed).
    pub interval: (f64, f64),
    /// Standard error `sqrt(p (1 - p) / n)` of p (see [`Sampling`]).
    pub mc_error: f64,
    /// How the null values were obtained.
    pub sampling: Sampling,
    /// Null draws discarded because the measure was undefined on them (e.g. zero spread).
    #[serde(default)]
    pub discarded: u64,
    /// Caveats.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl NullResult {
    /// Test `observed` against `n` null values of which `exceed` are at or above it.
    pub fn from_counts(
        info: &NullInfo,
        observed: f64,
        exceed: u64,
        n: u64,
        seed: Option<u64>,
        sampling: Sampling,
    ) -> Result<Self> {
        if !observed.is_finite() {
            return Err(Error::invalid("observed score", observed, "must be finite"));
        }
        if n == 0 {
            return Err(Error::EmptyNull {
                name: info.name.clone(),
                reason: "no null values to compare with".into(),
            });
        }
        let p = empirical_p(exceed, n)?;
        let mut notes = Vec::new();
        if exceed == 0 {
            notes.push(format!(
                "the observed score exceeds all {n} null values: p = 1/(n+1) is the smallest \
                 p-value this null can give"
            ));
        }
        Ok(NullResult {
            name: info.name.clone(),
            preserves: info.preserves.clone(),
            destroys: info.destroys.clone(),
            observed,
            n,
            seed,
            exceed,
            p,
            log10_p: log10_empirical_p(exceed, n),
            interval: clopper_pearson(exceed, n, CONFIDENCE)?,
            mc_error: match sampling {
                Sampling::Exhaustive => 0.0,
                _ => mc_error(p, n),
            },
            sampling,
            discarded: 0,
            notes,
        })
    }

    /// Test `observed` against the given null values (all finite).
    pub fn from_scores(
        info: &NullInfo,
        observed: f64,
        scores: &[f64],
        seed: Option<u64>,
        sampling: Sampling,
    ) -> Result<Self> {
        if let Some(&value) = scores.iter().find(|s| !s.is_finite()) {
            return Err(Error::NonFiniteInput {
                what: format!("null {}", info.name),
                value,
            });
        }
        let exceed = scores.iter().filter(|&&s| s >= observed).count() as u64;
        Self::from_counts(info, observed, exceed, scores.len() as u64, seed, sampling)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> NullInfo {
        NullInfo {
            name: "t".into(),
            preserves: "p".into(),
            destroys: "d".into(),
        }
    }

    #[test]
    fn result_fields() {
        let r = NullResult::from_scores(
            &info(),
            0.9,
            &[0.1, 0.95, 0.9, 0.2],
            Some(3),
            Sampling::MonteCarlo,
        )
        .unwrap();
        assert_eq!((r.exceed, r.n), (2, 4));
        assert_eq!(r.p, 0.6);
        assert!((r.log10_p - 0.6f64.log10()).abs() < 1e-15);
        assert!((r.mc_error - (0.6f64 * 0.4 / 4.0).sqrt()).abs() < 1e-15);
        assert!(r.interval.0 < 0.5 && r.interval.1 > 0.5);
        let j = serde_json::to_value(&r).unwrap();
        for k in [
            "name",
            "preserves",
            "n",
            "seed",
            "p",
            "log10_p",
            "interval",
            "mc_error",
        ] {
            assert!(j.get(k).is_some(), "{k}");
        }
        let e = NullResult::from_scores(&info(), 0.9, &[0.1], None, Sampling::Exhaustive).unwrap();
        assert_eq!(e.mc_error, 0.0);
        assert!(!e.notes.is_empty());
        assert!(matches!(
            NullResult::from_scores(&info(), 0.9, &[], None, Sampling::Panel),
            Err(Error::EmptyNull { .. })
        ));
        assert!(NullResult::from_scores(&info(), f64::NAN, &[0.1], None, Sampling::Panel).is_err());
        assert!(
            NullResult::from_scores(&info(), 0.5, &[f64::INFINITY], None, Sampling::Panel).is_err()
        );
    }
}

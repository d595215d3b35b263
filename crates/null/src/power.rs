//! Power: how often a derived model is detected at level α, per derivation, measure and null.
//!
//! Each replicate takes a base model (cycling through `bases`: real fingerprints' curves, or
//! simulated ones), derives a model from it with a [`Derivation`] drawn from stream r of the
//! seed, scores the pair with every measure and tests the score against every null: the
//! panel null (the unrelated pairs of `panel` under `labels`) or a surrogate null of the pair
//! (the derived model resampled). Power is the fraction of replicates with p <= α, with a
//! Clopper–Pearson interval. `min_p` reports the smallest p-value the null can produce; when it
//! exceeds α (e.g. a circular-shift null over fewer than 1/α layers) the power is 0 by
//! construction, not for lack of signal.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::curves::Curves;
use crate::derivation::Derivation;
use crate::error::{Error, Result};
use crate::labels::{Labels, Relation};
use crate::measure::{score, Measure, Prepared, Scratch};
use crate::nulls::surrogate::{test_prepared, SurrogateKind, SurrogateOptions};
use crate::pvalue::{EmpiricalNull, CONFIDENCE};
use crate::rng::{child_seed, stream};
use crate::stats::{clopper_pearson, median};
use crate::table::PairTable;

/// A null used in a power study.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum PowerNull {
    /// The unrelated pairs of the panel.
    Panel,
    /// A surrogate null of the pair.
    Surrogate {
        /// Which.
        surrogate: SurrogateKind,
        /// Monte-Carlo samples.
        samples: usize,
    },
}

impl PowerNull {
    /// The null's name.
    pub fn name(&self) -> String {
        match self {
            PowerNull::Panel => "panel".into(),
            PowerNull::Surrogate { surrogate, .. } => surrogate.to_string(),
        }
    }
}

/// A power study.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PowerConfig {
    /// Derivations to test.
    pub derivations: Vec<Derivation>,
    /// Measures.
    pub measures: Vec<Measure>,
    /// Nulls.
    pub nulls: Vec<PowerNull>,
    /// Level.
    pub alpha: f64,
    /// Derived models per derivation.
    pub replicates: usize,
    /// Seed.
    pub seed: u64,
}

/// Power of one (derivation, measure, null).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PowerRow {
    /// The derivation.
    pub derivation: Derivation,
    /// Its name.
    pub derivation_name: String,
    /// The measure.
    pub measure: Measure,
    /// The null.
    pub null: String,
    /// The level.
    pub alpha: f64,
    /// Replicates tested.
    pub n: u64,
    /// Replicates with p <= alpha.
    pub rejected: u64,
    /// `rejected / n`.
    pub power: f64,
    /// Clopper–Pearson 95% interval of the power.
    pub interval: (f64, f64),
    /// Median similarity of base and derived model.
    pub median_score: f64,
    /// Smallest p-value the null produced bounds for (1/(n_null + 1)), over replicates.
    pub min_p: f64,
    /// Replicates that failed (degenerate curves).
    pub failed: u64,
}

/// Run a power study (see the module docs).
pub fn power(
    bases: &[Curves],
    panel: &[Curves],
    labels: &Labels,
    cfg: &PowerConfig,
) -> Result<Vec<PowerRow>> {
    if bases.is_empty() {
        return Err(Error::invalid(
            "bases",
            0,
            "at least one base model is needed",
        ));
    }
    if !(cfg.alpha > 0.0 && cfg.alpha < 1.0) {
        return Err(Error::invalid("alpha", cfg.alpha, "must lie in (0, 1)"));
    }
    if !(1..=crate::calibrate::MAX_REPLICATES).contains(&cfg.replicates) {
        return Err(Error::invalid(
            "replicates",
            cfg.replicates,
            "must be at least 1",
        ));
    }
    let bases_p: Vec<Prepared> = bases.iter().map(Prepared::new).collect::<Result<_>>()?;
    // Panel nulls per measure.
    let mut panel_nulls: BTreeMap<Measure, EmpiricalNull> = BTreeMap::new();
    if cfg.nulls.contains(&PowerNull::Panel) {
        for &m in &cfg.measures {
            let t = PairTable::from_curves(panel, labels, m)?;
            panel_nulls.insert(m, EmpiricalNull::new(t.scores(Relation::Unrelated))?);
        }
    }
    let mut rows = Vec::new();
    for (di, d) in cfg.derivations.iter().enumerate() {
        let dseed = child_seed(cfg.seed, di as u64);
        // Per replicate: per (measure, null): Ok((score, p, min_p)) or Err.
        type Cell = std::result::Result<(f64, f64, f64), ()>;
        let per_rep: Vec<Vec<Cell>> = (0..cfg.replicates)
            .into_par_iter()
            .map_init(Scratch::default, |scratch, r| {
                let k = r % bases.len();
                let derived = d
                    .apply(&bases[k], &mut stream(dseed, r as u64))
                    .and_then(|c| Prepared::new(&c));
                let mut cells = Vec::with_capacity(cfg.measures.len() * cfg.nulls.len());
                for &m in &cfg.measures {
                    let obs = derived
                        .as_ref()
                        .ok()
                        .and_then(|dp| score(&bases_p[k], dp, m, scratch).ok());
                    for (ni, null) in cfg.nulls.iter().enumerate() {
                        let cell = match (obs, &derived) {
                            (Some(s), Ok(dp)) => match null {
                                PowerNull::Panel => {
                                    let e = &panel_nulls[&m];
                                    Ok((s, e.p(s), 1.0 / (e.len() as f64 + 1.0)))
                                }
                                PowerNull::Surrogate { surrogate, samples } => {
                                    let o = SurrogateOptions {
                                        kind: *surrogate,
                                        measure: m,
                                        samples: *samples,
                                        seed: child_seed(dseed, (r * 64 + ni) as u64),
                                    };
                                    test_prepared(&bases_p[k], dp, &o)
                                        .map(|res| (s, res.p, 1.0 / (res.n as f64 + 1.0)))
                                        .map_err(|_| ())
                                }
                            },
                            _ => Err(()),
                        };
                        cells.push(cell);
                    }
                }
                cells
            })
            .collect();
        for (mi, &m) in cfg.measures.iter().enumerate() {
            for (ni, null) in cfg.nulls.iter().enumerate() {
                let idx = mi * cfg.nulls.len() + ni;
                let ok: Vec<(f64, f64, f64)> = per_rep.iter().filter_map(|c| c[idx].ok()).collect();
                let failed = (per_rep.len() - ok.len()) as u64;
                let n = ok.len() as u64;
                let rejected = ok.iter().filter(|c| c.1 <= cfg.alpha).count() as u64;
                let scores: Vec<f64> = ok.iter().map(|c| c.0).collect();
                rows.push(PowerRow {
                    derivation: *d,
                    derivation_name: d.to_string(),
                    measure: m,
                    null: null.name(),
                    alpha: cfg.alpha,
                    n,
                    rejected,
                    power: if n > 0 {
                        rejected as f64 / n as f64
                    } else {
                        0.0
                    },
                    interval: if n > 0 {
                        clopper_pearson(rejected, n, CONFIDENCE)?
                    } else {
                        (0.0, 1.0)
                    },
                    median_score: if scores.is_empty() {
                        0.0
                    } else {
                        median(&scores)?
                    },
                    min_p: ok.iter().map(|c| c.2).fold(1.0, f64::min),
                    failed,
                });
            }
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_checked() {
        let cfg = PowerConfig {
            derivations: vec![],
            measures: vec![Measure::HonestAgi],
            nulls: vec![PowerNull::Panel],
            alpha: 0.01,
            replicates: 1,
            seed: 0,
        };
        assert!(power(&[], &[], &Labels::empty(), &cfg).is_err());
        let bad = PowerConfig { alpha: 1.5, ..cfg };
        let b = crate::testutil::curves("b", &[("r", &[1.0, 2.0, 4.0])]);
        assert!(power(&[b], &[], &Labels::empty(), &bad).is_err());
    }
}

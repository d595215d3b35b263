//! Calibration: under a true null hypothesis, are the p-values uniform?
//!
//! A valid p-value satisfies P(p <= α) <= α for every α; an exact one is uniform. Each check
//! here collects p-values of pairs that are unrelated by construction and reports the
//! one-sample Kolmogorov–Smirnov test against U(0, 1), the rejection rates at α = 0.01, 0.05,
//! 0.1 with Clopper–Pearson intervals, and QQ data (expected uniform quantile vs observed
//! p-value) for a plot.
//!
//! * [`simulate`]: independent random-walk-plus-trend models ([`crate::sim::NullModel`]). Each
//!   replicate draws a fresh pair, and for the panel null a fresh panel of independent models;
//!   for a surrogate null, its own Monte-Carlo seed. Replicates are independent, so the KS test
//!   applies as stated.
//! * [`leave_one_out`]: a real panel (fingerprints or a published matrix). Each unrelated pair
//!   is tested against the unrelated pairs that share no model with it. Uniformity holds if
//!   unrelated pairs are exchangeable; departures show the family structure of the panel
//!   (these p-values are dependent, so the KS p-value is only indicative).
//! * [`surrogate_on_panel`]: a surrogate null applied to the unrelated pairs of a real panel:
//!   the real-curve test of whether a surrogate null is calibrated.
//! * [`run_full`]: every measure and null at full size, for `just calibrate`.
//!
//! Discrete p-values `(1 + k)/(1 + n)` are slightly conservative: the KS distance to the
//! uniform includes up to 1/(n + 1) of discreteness, negligible for n >= 99 at the sizes used.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::all_pairs::{report, MatrixNull};
use crate::curves::Curves;
use crate::error::{Error, Result};
use crate::labels::{Labels, Relation};
use crate::measure::{score, Measure, Prepared, Scratch};
use crate::nulls::surrogate::{test_prepared, SurrogateKind, SurrogateOptions};
use crate::pvalue::{rates_at_or_below, EmpiricalNull, Rate};
use crate::rng::{child_seed, stream};
use crate::sim::NullModel;
use crate::stats::{ks_uniform, Ks};
use crate::table::PairTable;

/// Levels at which rejection rates are reported.
pub const LEVELS: [f64; 3] = [0.01, 0.05, 0.1];

/// Most QQ points kept (evenly thinned beyond this).
pub const QQ_POINTS: usize = 1000;

/// Most replicates of one simulation.
pub const MAX_REPLICATES: usize = 1_000_000;

/// One point of a QQ plot against U(0, 1).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct QqPoint {
    /// Expected uniform quantile (i − ½)/n.
    pub expected: f64,
    /// Observed p-value of that rank.
    pub observed: f64,
}

/// The calibration of one null with one measure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// What was simulated or which panel was used.
    pub name: String,
    /// The null's name.
    pub null: String,
    /// The measure.
    pub measure: Measure,
    /// Number of p-values.
    pub n: usize,
    /// KS test of the p-values against U(0, 1).
    pub ks: Ks,
    /// Fraction of p-values at or below each of [`LEVELS`].
    pub rejection: Vec<Rate>,
    /// QQ data.
    pub qq: Vec<QqPoint>,
    /// Seed, for simulations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// p-values that could not be computed (degenerate pairs).
    #[serde(default)]
    pub failed: u64,
    /// Caveats.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Calibration {
    /// Summarise p-values.
    pub fn from_pvalues(
        name: &str,
        null: &str,
        measure: Measure,
        seed: Option<u64>,
        ps: &[f64],
    ) -> Result<Self> {
        let ks = ks_uniform(ps)?;
        let mut sorted = ps.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let step = n.div_ceil(QQ_POINTS).max(1);
        let qq = sorted
            .iter()
            .enumerate()
            .filter(|(i, _)| i % step == 0 || *i == n - 1)
            .map(|(i, &p)| QqPoint {
                expected: (i as f64 + 0.5) / n as f64,
                observed: p,
            })
            .collect();
        Ok(Calibration {
            name: name.to_owned(),
            null: null.to_owned(),
            measure,
            n,
            ks,
            rejection: rates_at_or_below(ps, &LEVELS)?,
            qq,
            seed,
            failed: 0,
            notes: Vec::new(),
        })
    }

    /// The rejection rate at `alpha` (one of [`LEVELS`]).
    pub fn rejection_at(&self, alpha: f64) -> Option<&Rate> {
        self.rejection.iter().find(|r| r.threshold == alpha)
    }
}

/// Which null a simulation calibrates.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum SimNull {
    /// A panel of independent models (all pairs are null pairs).
    Panel {
        /// Models per panel.
        models: usize,
    },
    /// A surrogate null.
    Surrogate {
        /// Which.
        surrogate: SurrogateKind,
        /// Monte-Carlo samples.
        samples: usize,
    },
}

impl SimNull {
    /// The null's name.
    pub fn name(&self) -> String {
        match self {
            SimNull::Panel { models } => format!("panel({models} models)"),
            SimNull::Surrogate { surrogate, .. } => surrogate.to_string(),
        }
    }
}

/// A simulated calibration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimCalibration {
    /// The null.
    pub null: SimNull,
    /// The measure.
    pub measure: Measure,
    /// The curve generator.
    pub model: NullModel,
    /// Independent replicates (p-values).
    pub replicates: usize,
    /// Seed.
    pub seed: u64,
}

fn panel_p(
    model: &NullModel,
    panel_models: usize,
    measure: Measure,
    rng_seed: u64,
    rep: usize,
    scratch: &mut Scratch,
) -> Result<f64> {
    let mut r = stream(rng_seed, rep as u64);
    let a = Prepared::new(&model.draw("a", &mut r)?)?;
    let b = Prepared::new(&model.draw("b", &mut r)?)?;
    let panel: Vec<Prepared> = model
        .panel("m", panel_models, &mut r)?
        .iter()
        .map(Prepared::new)
        .collect::<Result<_>>()?;
    let mut null = Vec::with_capacity(panel_models * panel_models.saturating_sub(1) / 2);
    for i in 0..panel.len() {
        for j in i + 1..panel.len() {
            null.push(score(&panel[i], &panel[j], measure, scratch)?);
        }
    }
    let observed = score(&a, &b, measure, scratch)?;
    Ok(EmpiricalNull::new(null)?.p(observed))
}

/// Simulate `replicates` null pairs and calibrate the chosen null (see the module docs).
pub fn simulate(cfg: &SimCalibration) -> Result<Calibration> {
    cfg.model.validate()?;
    if !(1..=MAX_REPLICATES).contains(&cfg.replicates) {
        return Err(Error::invalid(
            "replicates",
            cfg.replicates,
            &format!("must lie in 1..={MAX_REPLICATES}"),
        ));
    }
    let results: Vec<Result<f64>> = match cfg.null {
        SimNull::Panel { models } => {
            if models < 3 {
                return Err(Error::invalid("panel models", models, "need at least 3"));
            }
            (0..cfg.replicates)
                .into_par_iter()
                .map_init(Scratch::default, |s, rep| {
                    panel_p(&cfg.model, models, cfg.measure, cfg.seed, rep, s)
                })
                .collect()
        }
        SimNull::Surrogate { surrogate, samples } => (0..cfg.replicates)
            .into_par_iter()
            .map(|rep| {
                let mut r = stream(cfg.seed, rep as u64);
                let a = Prepared::new(&cfg.model.draw("a", &mut r)?)?;
                let b = Prepared::new(&cfg.model.draw("b", &mut r)?)?;
                let opts = SurrogateOptions {
                    kind: surrogate,
                    measure: cfg.measure,
                    samples,
                    seed: child_seed(cfg.seed, rep as u64),
                };
                Ok(test_prepared(&a, &b, &opts)?.p)
            })
            .collect(),
    };
    collect(
        &format!(
            "simulated random-walk-plus-trend pairs ({} layers)",
            cfg.model.layers
        ),
        &cfg.null.name(),
        cfg.measure,
        Some(cfg.seed),
        results,
    )
}

fn collect(
    name: &str,
    null: &str,
    measure: Measure,
    seed: Option<u64>,
    results: Vec<Result<f64>>,
) -> Result<Calibration> {
    let mut ps = Vec::with_capacity(results.len());
    let mut failed = 0u64;
    let mut first_error = None;
    for r in results {
        match r {
            Ok(p) => ps.push(p),
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    if ps.is_empty() {
        return Err(first_error.unwrap_or(Error::EmptyNull {
            name: null.into(),
            reason: "no p-values".into(),
        }));
    }
    let mut c = Calibration::from_pvalues(name, null, measure, seed, &ps)?;
    c.failed = failed;
    if let Some(e) = first_error {
        c.notes
            .push(format!("{failed} replicates failed; the first: {e}"));
    }
    Ok(c)
}

/// Leave-one-pair-out calibration of a real panel's own null (see the module docs).
pub fn leave_one_out(table: &PairTable) -> Result<Calibration> {
    table.validate()?;
    let rep = report(table, &MatrixNull::LeaveModelsOut)?;
    let ps: Vec<f64> = rep
        .rows
        .iter()
        .filter(|r| r.relation == Relation::Unrelated && r.n > 0)
        .map(|r| r.p)
        .collect();
    if ps.is_empty() {
        return Err(Error::EmptyNull {
            name: "panel-leave-models-out".into(),
            reason: format!("{} has no unrelated pair with a null left", table.source),
        });
    }
    let mut c = Calibration::from_pvalues(
        &table.source,
        "panel-leave-models-out",
        table.measure.unwrap_or(Measure::HonestAgi),
        None,
        &ps,
    )?;
    c.notes.push(
        "p-values of pairs sharing models are dependent: the KS p-value is indicative only".into(),
    );
    if table.measure.is_none() {
        c.notes
            .push("scores from a published matrix; the measure field is nominal".into());
    }
    Ok(c)
}

/// A surrogate null applied to the unrelated pairs of a real panel (at most `max_pairs` of
/// them, in table order; the second model of each pair is resampled).
pub fn surrogate_on_panel(
    curves: &[Curves],
    labels: &Labels,
    opts: &SurrogateOptions,
    max_pairs: usize,
) -> Result<Calibration> {
    let table = PairTable::from_curves(curves, labels, opts.measure)?;
    let pairs: Vec<(usize, usize)> = table
        .pairs
        .iter()
        .filter(|p| p.relation == Relation::Unrelated)
        .map(|p| (p.a, p.b))
        .take(max_pairs)
        .collect();
    let mut c = surrogate_on_pairs(
        curves,
        &pairs,
        &format!("unrelated pairs of {}", table.source),
        opts,
    )?;
    c.notes.push(
        "pairs share models, so their p-values are dependent: the KS p-value is indicative only"
            .into(),
    );
    Ok(c)
}

/// A surrogate null applied to the given pairs of `curves` (indices; the second model of each
/// pair is resampled; pair k uses the child seed k). With disjoint pairs the p-values are
/// independent, so the size and its Clopper–Pearson interval are exact binomial statements.
pub fn surrogate_on_pairs(
    curves: &[Curves],
    pairs: &[(usize, usize)],
    name: &str,
    opts: &SurrogateOptions,
) -> Result<Calibration> {
    let prepared: Vec<Option<Prepared>> = curves.iter().map(|c| Prepared::new(c).ok()).collect();
    let results: Vec<Result<f64>> = pairs
        .par_iter()
        .enumerate()
        .map(|(k, &(i, j))| {
            let (Some(Some(a)), Some(Some(b))) = (prepared.get(i), prepared.get(j)) else {
                return Err(Error::EmptyNull {
                    name: opts.kind.to_string(),
                    reason: "a model could not be prepared".into(),
                });
            };
            let o = SurrogateOptions {
                seed: child_seed(opts.seed, k as u64),
                ..*opts
            };
            Ok(test_prepared(a, b, &o)?.p)
        })
        .collect();
    collect(
        name,
        &opts.kind.to_string(),
        opts.measure,
        Some(opts.seed),
        results,
    )
}

/// Sizes of the full calibration run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FullCalibration {
    /// Replicates per (measure, null).
    pub replicates: usize,
    /// Monte-Carlo samples per surrogate null.
    pub samples: usize,
    /// Models per simulated panel.
    pub panel_models: usize,
    /// Seed.
    pub seed: u64,
    /// The curve generator.
    pub model: NullModel,
    /// Measures.
    pub measures: Vec<Measure>,
    /// Surrogate nulls.
    pub surrogates: Vec<SurrogateKind>,
}

impl Default for FullCalibration {
    fn default() -> Self {
        FullCalibration {
            replicates: 2000,
            samples: 999,
            panel_models: 40,
            seed: 20_250_704,
            model: NullModel::default(),
            measures: Measure::ALL.to_vec(),
            surrogates: SurrogateKind::ALL.to_vec(),
        }
    }
}

/// Calibrate every measure against the panel null and every surrogate null. At the default
/// sizes this scores about 90 million pairs: roughly 2–5 minutes on 2 cores in a release build.
pub fn run_full(cfg: &FullCalibration) -> Result<Vec<Calibration>> {
    let mut out = Vec::new();
    for (mi, &measure) in cfg.measures.iter().enumerate() {
        let mut nulls = vec![SimNull::Panel {
            models: cfg.panel_models,
        }];
        nulls.extend(cfg.surrogates.iter().map(|&s| SimNull::Surrogate {
            surrogate: s,
            samples: cfg.samples,
        }));
        for (ni, null) in nulls.into_iter().enumerate() {
            out.push(simulate(&SimCalibration {
                null,
                measure,
                model: cfg.model.clone(),
                replicates: cfg.replicates,
                seed: child_seed(cfg.seed, (mi * 64 + ni) as u64),
            })?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_pvalues_summaries() {
        let ps: Vec<f64> = (0..2500).map(|i| (i as f64 + 0.5) / 2500.0).collect();
        let c = Calibration::from_pvalues("grid", "x", Measure::HonestAgi, None, &ps).unwrap();
        assert_eq!(c.n, 2500);
        assert!(c.qq.len() <= QQ_POINTS + 1);
        assert_eq!(c.qq.last().unwrap().observed, ps[2499]);
        let r = c.rejection_at(0.05).unwrap();
        assert_eq!(r.count, 125);
        assert!(c.ks.p > 0.99);
        assert!(Calibration::from_pvalues("e", "x", Measure::HonestAgi, None, &[]).is_err());
    }

    #[test]
    fn surrogate_on_a_panel_tests_unrelated_pairs_only() {
        let model = NullModel::default();
        let panel = model.panel("m", 6, &mut stream(2, 0)).unwrap();
        // m0 and m1 related: their pair is not a null pair.
        let mut labels: std::collections::BTreeMap<String, crate::labels::ModelLabel> = panel
            .iter()
            .map(|c| {
                (
                    c.model.clone(),
                    crate::labels::ModelLabel {
                        root: Some(c.model.clone()),
                        ..Default::default()
                    },
                )
            })
            .collect();
        labels.get_mut("m1").unwrap().root = Some("m0".into());
        let labels = Labels::new(labels, vec![]).unwrap();
        let opts = SurrogateOptions {
            kind: SurrogateKind::TrendDct(2),
            measure: Measure::HonestAgi,
            samples: 49,
            seed: 3,
        };
        let c = surrogate_on_panel(&panel, &labels, &opts, 100).unwrap();
        assert_eq!(c.n, 14);
        assert_eq!(c, surrogate_on_panel(&panel, &labels, &opts, 100).unwrap());
        let c5 = surrogate_on_panel(&panel, &labels, &opts, 5).unwrap();
        assert_eq!(c5.n, 5);
    }

    #[test]
    fn simulation_arguments_are_checked() {
        let bad = SimCalibration {
            null: SimNull::Panel { models: 2 },
            measure: Measure::HonestAgi,
            model: NullModel::default(),
            replicates: 10,
            seed: 1,
        };
        assert!(simulate(&bad).is_err());
        let bad = SimCalibration {
            replicates: 0,
            null: SimNull::Panel { models: 5 },
            ..bad
        };
        assert!(simulate(&bad).is_err());
    }
}

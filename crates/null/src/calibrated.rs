//! Calibrated single-pair p-values: a surrogate null's p referred to its own distribution over
//! real unrelated pairs.
//!
//! A surrogate null's p is a statistic of the pair. On real curves, which share depth trends,
//! it is far from uniform: the report's size tables show the trend-dct null rejecting about one
//! real unrelated pair in eight at p ≤ 0.01. Its raw p therefore cannot be read as a
//! probability of chance. Referred to a [`Reference`] (the same null's p-values on the real
//! unrelated pairs of a panel, computed with the same draws per pair), it becomes one:
//! `p_cal = (1 + #{reference p ≤ p}) / (1 + n)`, the share of real unrelated pairs that look at
//! least as related to this null. It keeps what real unrelated models share (as the panel
//! holds it) and destroys lineage (related pairs are excluded by the labels).
//!
//! A pair is never calibrated against pairs that share one of its models: [`Reference::calibrate`]
//! takes the models to leave out, and [`Reference::held_out`] calibrates every reference pair
//! against the pairs that share no model with it, which is how calibration is checked (those
//! p-values should be uniform).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::curves::Curves;
use crate::error::{Error, Result};
use crate::labels::{Labels, Relation};
use crate::measure::Prepared;
use crate::nulls::surrogate::{test_prepared, SurrogateOptions};
use crate::nulls::{NullInfo, NullResult, Sampling};
use crate::pvalue::Rate;
use crate::rng::{child_seed, stream};
use crate::table::PairTable;
use rand::Rng;

/// One real unrelated pair of a reference and the null's p for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReferencePair {
    /// First model (id).
    pub a: String,
    /// Second model (id): the one the surrogate resamples.
    pub b: String,
    /// The null's p for this pair.
    pub p: f64,
}

/// A surrogate null's p-values over the real unrelated pairs of a panel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    /// The surrogate null (its name).
    pub null: String,
    /// Where the pairs come from.
    pub source: String,
    /// Draws per pair (the same as the pair to be calibrated should use).
    pub samples: usize,
    /// Master seed: reference pair `k` drew from child stream `k`.
    pub seed: u64,
    /// The pairs, in table order.
    pub pairs: Vec<ReferencePair>,
}

impl Reference {
    /// The surrogate null of `opts` applied to every unrelated pair of `curves` (labelled by
    /// `labels`), in table order; pair `k` draws from child stream `k` of `opts.seed`, so the
    /// p-values are those of [`crate::calibrate::surrogate_on_panel`] with the same options.
    pub fn build(
        curves: &[Curves],
        labels: &Labels,
        opts: &SurrogateOptions,
        source: &str,
    ) -> Result<Self> {
        let table = PairTable::from_curves(curves, labels, opts.measure)?;
        let unrelated: Vec<(usize, usize)> = table
            .pairs
            .iter()
            .filter(|p| p.relation == Relation::Unrelated)
            .map(|p| (p.a, p.b))
            .collect();
        if unrelated.is_empty() {
            return Err(Error::EmptyNull {
                name: format!("{} calibrated", opts.kind),
                reason: format!("{source} has no unrelated pair"),
            });
        }
        let prepared: Vec<Prepared> = curves.iter().map(Prepared::new).collect::<Result<_>>()?;
        let ps: Vec<Result<f64>> = unrelated
            .par_iter()
            .enumerate()
            .map(|(k, &(i, j))| {
                let o = SurrogateOptions {
                    seed: child_seed(opts.seed, k as u64),
                    ..*opts
                };
                Ok(test_prepared(&prepared[i], &prepared[j], &o)?.p)
            })
            .collect();
        let mut pairs = Vec::with_capacity(unrelated.len());
        for (&(i, j), p) in unrelated.iter().zip(ps) {
            pairs.push(ReferencePair {
                a: curves[i].model.clone(),
                b: curves[j].model.clone(),
                p: p?,
            });
        }
        Ok(Reference {
            null: opts.kind.to_string(),
            source: source.to_owned(),
            samples: opts.samples,
            seed: opts.seed,
            pairs,
        })
    }

    /// The share of reference pairs this null rejects at `alpha` (its size on real unrelated
    /// pairs), with its Clopper–Pearson interval.
    pub fn size_at(&self, alpha: f64) -> Result<Rate> {
        let k = self.pairs.iter().filter(|r| r.p <= alpha).count() as u64;
        Rate::new(alpha, k, self.pairs.len() as u64)
    }

    /// The smallest p the reference's draws can give: 1/(samples + 1). A raw p computed with
    /// more draws is coarsened to it before calibration, so a finer resolution cannot look
    /// more extreme than the reference could ever be.
    pub fn floor(&self) -> f64 {
        1.0 / (self.samples as f64 + 1.0)
    }

    /// Refer `raw` (this null's p for a pair) to the reference pairs that involve none of
    /// `exclude` (the pair's own models, by id). The result is a [`NullResult`] whose
    /// `observed` is the raw p and whose `exceed` counts reference pairs with p at or below it.
    pub fn calibrate(&self, raw: &NullResult, exclude: &[&str]) -> Result<NullResult> {
        let ps: Vec<f64> = self
            .pairs
            .iter()
            .filter(|r| !exclude.contains(&r.a.as_str()) && !exclude.contains(&r.b.as_str()))
            .map(|r| r.p)
            .collect();
        self.refer(raw.p, &ps, exclude.len())
    }

    /// Every reference pair calibrated against the reference pairs that share no model with it
    /// (leave its two models out): the calibrated p-values of real unrelated pairs, valid
    /// (P(p ≤ α) ≤ α) if the calibration holds.
    ///
    /// With `randomise_ties = Some(seed)`, ties between a pair's raw p and its reference's are
    /// broken by a uniform draw (pair `k` from child stream `k` of the seed): `(#{r < p} +
    /// U·(1 + #{r = p})) / (n + 1)`, exactly uniform when the pairs are exchangeable. Raw
    /// surrogate p-values tie often (every pair beyond all draws has p = 1/(draws + 1)), which
    /// makes the unrandomised p-values conservative and lumpy, so a KS test of uniformity needs
    /// the randomised ones; the answers use the unrandomised (conservative) ones.
    pub fn held_out(&self, randomise_ties: Option<u64>) -> Result<Vec<f64>> {
        self.pairs
            .iter()
            .enumerate()
            .map(|(k, pair)| {
                let ps: Vec<f64> = self
                    .pairs
                    .iter()
                    .filter(|r| !shares_model(r, pair))
                    .map(|r| r.p)
                    .collect();
                match randomise_ties {
                    None => Ok(self.refer(pair.p, &ps, 2)?.p),
                    Some(seed) => {
                        if ps.is_empty() {
                            return Err(Error::EmptyNull {
                                name: format!("{} calibrated", self.null),
                                reason: format!(
                                    "every reference pair shares a model with {} vs {}",
                                    pair.a, pair.b
                                ),
                            });
                        }
                        let p = pair.p.max(self.floor());
                        let below = ps.iter().filter(|&&r| r < p).count() as f64;
                        let ties = ps.iter().filter(|&&r| r == p).count() as f64;
                        let u: f64 = stream(seed, k as u64).gen();
                        Ok((below + u * (1.0 + ties)) / (ps.len() as f64 + 1.0))
                    }
                }
            })
            .collect()
    }

    fn refer(&self, raw_p: f64, reference: &[f64], excluded: usize) -> Result<NullResult> {
        if !(raw_p > 0.0 && raw_p <= 1.0) {
            return Err(Error::invalid("p to calibrate", raw_p, "must be in (0, 1]"));
        }
        let p = raw_p.max(self.floor());
        let exceed = reference.iter().filter(|&&r| r <= p).count() as u64;
        let info = self.info(reference.len());
        let mut r = NullResult::from_counts(
            &info,
            raw_p,
            exceed,
            reference.len() as u64,
            None,
            Sampling::Panel,
        )?;
        if r.exceed == 0 {
            // from_counts words this for scores; say it for p-values.
            r.notes.clear();
            r.notes.push(format!(
                "no real unrelated pair of the reference has a {} p this small: p = 1/(n+1) is \
                 the smallest calibrated p it can give",
                self.null
            ));
        }
        if excluded > 0 {
            r.notes.push(format!(
                "reference pairs involving the compared models are left out ({} of {} kept)",
                reference.len(),
                self.pairs.len()
            ));
        }
        r.notes.push(REFERENCE_DEPENDENCE.to_owned());
        Ok(r)
    }

    fn info(&self, n: usize) -> NullInfo {
        NullInfo {
            name: format!("{} calibrated", self.null),
            preserves: format!(
                "the distribution of the {} null's p over real unrelated pairs ({n} pairs of \
                 {}, {} draws each, seed {})",
                self.null, self.source, self.samples, self.seed
            ),
            destroys: "lineage: related and unknown pairs are excluded by the labels".to_owned(),
        }
    }
}

/// Why a calibrated p's interval is optimistic.
pub const REFERENCE_DEPENDENCE: &str = "reference pairs share models, so their p-values are \
     dependent: the interval (computed as if they were independent) understates the uncertainty";

fn shares_model(x: &ReferencePair, y: &ReferencePair) -> bool {
    x.a == y.a || x.a == y.b || x.b == y.a || x.b == y.b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::Measure;
    use crate::nulls::surrogate::SurrogateKind;
    use crate::sim::NullModel;
    use crate::stats::ks_uniform;

    fn reference(models: usize, samples: usize) -> Reference {
        let model = NullModel::default();
        let mut r = stream(11, 0);
        let panel = model.panel("m", models, &mut r).unwrap();
        let labels = Labels::singletons(panel.iter().map(|c| c.model.as_str())).unwrap();
        let opts = SurrogateOptions {
            kind: SurrogateKind::Shuffle,
            measure: Measure::HonestAgi,
            samples,
            seed: 5,
        };
        Reference::build(&panel, &labels, &opts, "simulated").unwrap()
    }

    fn raw(p: f64) -> NullResult {
        let info = NullInfo {
            name: "shuffle".into(),
            preserves: String::new(),
            destroys: String::new(),
        };
        // A null result whose p is exactly `p`: exceed k of n with (1+k)/(1+n) = p.
        let n = 999u64;
        let k = (p * 1000.0).round() as u64 - 1;
        NullResult::from_counts(&info, 0.5, k, n, Some(1), Sampling::MonteCarlo).unwrap()
    }

    #[test]
    fn calibrated_p_counts_reference_pairs_at_or_below() {
        let mut reference = reference(6, 99);
        for (i, r) in reference.pairs.iter_mut().enumerate() {
            r.p = (i + 1) as f64 / 100.0; // 0.01, 0.02, ..., 0.15
        }
        let c = reference.calibrate(&raw(0.02), &[]).unwrap();
        assert_eq!((c.exceed, c.n), (2, 15));
        assert!((c.p - 3.0 / 16.0).abs() < 1e-15);
        assert_eq!(c.observed, 0.02);
        // Pairs involving an excluded model are left out.
        let m = reference.pairs[0].a.clone();
        let c = reference.calibrate(&raw(0.02), &[m.as_str()]).unwrap();
        assert!(c.n < 15);
        // A raw p finer than the reference's floor is coarsened to it (0.001 < 1/100).
        let c = reference.calibrate(&raw(0.001), &[]).unwrap();
        assert_eq!(c.exceed, 1);
    }

    #[test]
    fn held_out_calibrated_p_values_are_uniform_on_independent_models() {
        // Simulated independent models: the shuffle null is itself roughly calibrated here,
        // and after calibration the held-out p-values must not be far from uniform.
        let reference = reference(14, 199);
        let held = reference.held_out(Some(3)).unwrap();
        assert_eq!(held.len(), 91);
        let ks = ks_uniform(&held).unwrap();
        assert!(ks.p > 0.001, "KS p {}", ks.p);
        // The unrandomised ones are valid: no more than their level below each level (with
        // binomial room for 91 dependent pairs).
        let plain = reference.held_out(None).unwrap();
        for alpha in [0.05, 0.1, 0.2] {
            let k = plain.iter().filter(|&&p| p <= alpha).count() as f64;
            assert!(k / 91.0 <= alpha + 0.1, "{alpha}: {k}");
        }
        // Every held-out pair is referred to the 66 pairs that share none of its 2 models.
        let size = reference.size_at(0.05).unwrap();
        assert_eq!(size.n, 91);
    }

    #[test]
    fn same_options_same_reference_at_any_thread_count() {
        let a = reference(8, 99);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let b = pool.install(|| reference(8, 99));
        assert_eq!(a, b);
    }
}

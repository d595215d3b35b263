//! Many comparisons: every pair of a set of models with a p-value against a null, and
//! Benjamini–Hochberg q-values and Holm-adjusted p-values over all pairs.
//!
//! Scores come from a [`PairTable`] (computed on precomputed z-curves in parallel; 1,000
//! fingerprints take well under a second in a release build). Each pair's p-value comes from
//! a [`MatrixNull`]:
//! * [`MatrixNull::LeaveModelsOut`]: the table's own unrelated pairs that share no model with
//!   the pair tested, so a pair is never judged against itself or its own models' other pairs;
//! * [`MatrixNull::External`]: one fixed null for every pair (e.g. a baseline panel's unrelated
//!   pairs, or a published matrix's).
//!
//! p-values of pairs in one table are dependent (they share models), so BH q-values control
//! the false discovery rate only under positive dependence; Holm's control of the family-wise
//! error holds under any dependence.

use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::labels::Relation;
use crate::measure::Measure;
use crate::multiple::bh_and_holm;
use crate::nulls::NullInfo;
use crate::pvalue::{log10_empirical_p, EmpiricalNull};
use crate::table::{PairEntry, PairFailure, PairTable};

/// The null each pair is tested against.
#[derive(Clone, Debug)]
pub enum MatrixNull<'a> {
    /// The table's unrelated pairs sharing no model with the tested pair.
    LeaveModelsOut,
    /// One null for every pair.
    External {
        /// The null scores.
        null: &'a EmpiricalNull,
        /// What it is.
        info: NullInfo,
    },
}

/// One pair of the matrix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MatrixRow {
    /// First model (shared by every row of that model: half a million rows need no copies).
    pub a: Arc<str>,
    /// Second model.
    pub b: Arc<str>,
    /// Lineage relation from the labels.
    pub relation: Relation,
    /// Similarity.
    pub score: f64,
    /// Null values used for this pair.
    pub n: u64,
    /// Null values at or above the score.
    pub exceed: u64,
    /// `(1 + exceed) / (1 + n)` (1 when n = 0).
    pub p: f64,
    /// log10 of p.
    pub log10_p: f64,
    /// Benjamini–Hochberg q-value over all rows.
    pub q_bh: f64,
    /// Holm-adjusted p-value over all rows.
    pub p_holm: f64,
}

impl MatrixRow {
    /// The row of pair `p` with `exceed` of `n` null values at or above its score (adjusted
    /// values are filled in later by [`adjust`]).
    fn new(names: &[Arc<str>], p: &PairEntry, n: u64, exceed: u64) -> Self {
        MatrixRow {
            a: names[p.a].clone(),
            b: names[p.b].clone(),
            relation: p.relation,
            score: p.score,
            n,
            exceed,
            p: (1.0 + exceed as f64) / (1.0 + n as f64),
            log10_p: log10_empirical_p(exceed, n),
            q_bh: 1.0,
            p_holm: 1.0,
        }
    }
}

/// All pairs with p-values and adjustments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MatrixReport {
    /// Where the scores came from.
    pub source: String,
    /// The measure, when computed here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure: Option<Measure>,
    /// The null.
    pub null: NullInfo,
    /// One row per scored pair, in table order.
    pub rows: Vec<MatrixRow>,
    /// Pairs that could not be scored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<PairFailure>,
    /// Caveats.
    pub notes: Vec<String>,
}

/// For every query, the number of values of `sorted` (ascending by `total_cmp`, finite) at or
/// above it: `sorted.len() - sorted.partition_point(|&x| x < q)`, for all queries in one merge
/// after sorting them (a binary search per query misses the cache on every step).
fn counts_at_or_above(sorted: &[f64], queries: &[f64]) -> Vec<u64> {
    let mut order: Vec<(f64, u32)> = queries.iter().copied().zip(0..).collect();
    if order.len() > 1 << 14 {
        order.par_sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    } else {
        order.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    }
    let mut out = vec![0; queries.len()];
    let mut below = 0;
    for (q, i) in order {
        while below < sorted.len() && sorted[below] < q {
            below += 1;
        }
        out[i as usize] = (sorted.len() - below) as u64;
    }
    out
}

/// Fill `q_bh` and `p_holm` from the rows' `p`.
pub fn adjust(rows: &mut [MatrixRow]) -> Result<()> {
    let ps: Vec<f64> = rows.iter().map(|r| r.p).collect();
    let (q, h) = bh_and_holm(&ps)?;
    for ((r, q), h) in rows.iter_mut().zip(q).zip(h) {
        r.q_bh = q;
        r.p_holm = h;
    }
    Ok(())
}

/// p-values for every pair of `table` against `null`, with BH and Holm adjustments.
pub fn report(table: &PairTable, null: &MatrixNull<'_>) -> Result<MatrixReport> {
    table.validate()?;
    let names: Vec<Arc<str>> = (0..table.models.len())
        .map(|i| Arc::from(table.models[i].id.as_str()))
        .collect();
    let mut rows = Vec::with_capacity(table.pairs.len());
    let mut empty = 0u64;
    let info = match null {
        MatrixNull::External { null, info } => {
            for p in &table.pairs {
                let exceed = null.exceed(p.score);
                let n = null.len() as u64;
                rows.push(MatrixRow::new(&names, p, n, exceed));
            }
            info.clone()
        }
        MatrixNull::LeaveModelsOut => {
            let models = table.models.len();
            let mut all = Vec::new();
            let mut per_model: Vec<Vec<f64>> = vec![Vec::new(); models];
            // The pairs each model takes part in (indices into the table's pairs).
            let mut pairs_of: Vec<Vec<u32>> = vec![Vec::new(); models];
            for (i, p) in table.pairs.iter().enumerate() {
                pairs_of[p.a].push(i as u32);
                pairs_of[p.b].push(i as u32);
                if p.relation == Relation::Unrelated {
                    all.push(p.score);
                    per_model[p.a].push(p.score);
                    per_model[p.b].push(p.score);
                }
            }
            all.par_sort_unstable_by(f64::total_cmp);
            per_model
                .par_iter_mut()
                .for_each(|v| v.sort_unstable_by(f64::total_cmp));
            let scores: Vec<f64> = table.pairs.iter().map(|p| p.score).collect();
            let above_all = counts_at_or_above(&all, &scores);
            // Null values at or above each pair's score among its own models' unrelated
            // pairs: the sum over its two models.
            let per: Vec<Vec<u64>> = pairs_of
                .par_iter()
                .zip(&per_model)
                .map(|(ps, null)| {
                    let q: Vec<f64> = ps.iter().map(|&i| scores[i as usize]).collect();
                    counts_at_or_above(null, &q)
                })
                .collect();
            let mut above_own = vec![0u64; table.pairs.len()];
            for (ps, counts) in pairs_of.iter().zip(&per) {
                for (&i, &c) in ps.iter().zip(counts) {
                    above_own[i as usize] += c;
                }
            }
            let unrelated = all.len() as u64;
            rows = table
                .pairs
                .par_iter()
                .enumerate()
                .map(|(i, p)| {
                    let own = p.relation == Relation::Unrelated;
                    // Pair (a, b) itself, when unrelated, is in both models' lists: add it
                    // back once before subtracting both (unsigned arithmetic).
                    let n = (unrelated + own as u64)
                        - per_model[p.a].len() as u64
                        - per_model[p.b].len() as u64;
                    let exceed = (above_all[i] + own as u64) - above_own[i];
                    MatrixRow::new(&names, p, n, exceed)
                })
                .collect();
            empty = rows.iter().filter(|r| r.n == 0).count() as u64;
            NullInfo {
                name: "panel-leave-models-out".into(),
                preserves: format!(
                    "what unrelated models of {} share, from the unrelated pairs that involve \
                     neither model of the tested pair",
                    table.source
                ),
                destroys: "lineage: related and unknown pairs are excluded by the labels".into(),
            }
        }
    };
    adjust(&mut rows)?;
    let mut notes = vec![
        crate::nulls::panel::DEPENDENCE_NOTE.to_string(),
        "p-values of pairs sharing models are dependent: BH q-values assume positive \
         dependence; Holm-adjusted p-values hold under any dependence"
            .to_string(),
    ];
    if empty > 0 {
        notes.push(format!(
            "{empty} pairs had no null pairs left (p = 1): label more models"
        ));
    }
    Ok(MatrixReport {
        source: table.source.clone(),
        measure: table.measure,
        null: info,
        rows,
        failures: table.failures.clone(),
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{ModelMeta, PairEntry};

    #[test]
    fn matrix_is_identical_at_any_thread_count() {
        use crate::labels::{Labels, ModelLabel};
        use crate::testutil::curves;
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        // 40 models of 3 depths (interpolated pairs too), in 8 families.
        let cs: Vec<_> = (0..40)
            .map(|i| {
                let n = [12, 16, 24][i % 3];
                let q: Vec<f64> = (0..n).map(|t| t as f64 * 0.1 + next()).collect();
                let k: Vec<f64> = (0..n).map(|t| (t as f64 * 0.3).sin() + next()).collect();
                curves(&format!("m{i:02}"), &[("attn_q", &q), ("attn_k", &k)])
            })
            .collect();
        let labels = Labels::new(
            (0..40)
                .map(|i| {
                    (
                        format!("m{i:02}"),
                        ModelLabel {
                            root: Some(format!("r{}", i % 8)),
                            ..Default::default()
                        },
                    )
                })
                .collect(),
            vec![],
        )
        .unwrap();
        for m in Measure::ALL {
            let run = |threads| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap()
                    .install(|| {
                        let t = PairTable::from_curves(&cs, &labels, m).unwrap();
                        report(&t, &MatrixNull::LeaveModelsOut).unwrap()
                    })
            };
            let one = run(1);
            assert_eq!(one.rows.len(), 40 * 39 / 2, "{m}");
            assert!(one.rows.iter().any(|r| r.relation == Relation::Related));
            let bits = |r: &MatrixReport| {
                r.rows
                    .iter()
                    .map(|x| (x.score.to_bits(), x.n, x.exceed, x.p_holm.to_bits()))
                    .collect::<Vec<_>>()
            };
            for threads in [2, 3] {
                let other = run(threads);
                assert_eq!(one, other, "{m} at {threads} threads");
                assert_eq!(bits(&one), bits(&other), "{m} at {threads} threads");
            }
        }
    }

    #[test]
    fn merged_counts_equal_binary_searches() {
        let mut sorted = vec![0.5, -0.0, 0.0, 0.25, 0.25, 0.25, -1.0, 1.0, 0.75];
        sorted.sort_by(f64::total_cmp);
        let queries = [0.25, -0.0, 0.0, 2.0, -2.0, 0.5, 0.3, 0.25, 1.0, -1.0, 0.0];
        let got = counts_at_or_above(&sorted, &queries);
        for (q, g) in queries.iter().zip(got) {
            let want = (sorted.len() - sorted.partition_point(|&x| x < *q)) as u64;
            assert_eq!(g, want, "query {q}");
        }
        // Large enough for the parallel sort.
        let big: Vec<f64> = (0..40_000)
            .map(|i| ((i * 7919) % 1000) as f64 / 999.0)
            .collect();
        let mut sorted = big[..30_000].to_vec();
        sorted.sort_by(f64::total_cmp);
        let got = counts_at_or_above(&sorted, &big);
        for (q, g) in big.iter().zip(got).step_by(97) {
            assert_eq!(
                g,
                (sorted.len() - sorted.partition_point(|&x| x < *q)) as u64
            );
        }
    }

    #[test]
    fn leave_models_out_counts() {
        use Relation::*;
        let models = (0..4)
            .map(|i| ModelMeta {
                id: format!("m{i}"),
                root: None,
                block: format!("m{i}"),
                family: None,
                layers: None,
            })
            .collect();
        let pairs = [
            (0, 1, 0.9, Related),
            (0, 2, 0.5, Unrelated),
            (0, 3, 0.6, Unrelated),
            (1, 2, 0.7, Unrelated),
            (1, 3, 0.8, Unrelated),
            (2, 3, 0.4, Unrelated),
        ]
        .iter()
        .map(|&(a, b, score, relation)| PairEntry {
            a,
            b,
            score,
            relation,
        })
        .collect();
        let t = PairTable {
            source: "t".into(),
            measure: None,
            models,
            pairs,
            failures: vec![],
        };
        let r = report(&t, &MatrixNull::LeaveModelsOut).unwrap();
        // (0,1): the only unrelated pair avoiding m0 and m1 is (2,3) = 0.4 < 0.9.
        assert_eq!((r.rows[0].n, r.rows[0].exceed), (1, 0));
        assert_eq!(r.rows[0].p, 0.5);
        // (0,2) = 0.5: null pairs avoiding m0, m2: (1,3) = 0.8 >= 0.5.
        assert_eq!((r.rows[1].n, r.rows[1].exceed), (1, 1));
        assert_eq!(r.rows[1].p, 1.0);
        assert!(r.rows.iter().all(|x| x.q_bh >= x.p && x.p_holm >= x.p));
        let ext = EmpiricalNull::new(vec![0.1, 0.2, 0.95]).unwrap();
        let info = NullInfo {
            name: "x".into(),
            preserves: String::new(),
            destroys: String::new(),
        };
        let r = report(&t, &MatrixNull::External { null: &ext, info }).unwrap();
        assert_eq!((r.rows[0].n, r.rows[0].exceed), (3, 1));
    }
}

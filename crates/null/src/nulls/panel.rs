//! The panel null: how often unrelated models of a real panel reach the observed score.
//!
//! Input is a [`PairTable`]: every pair of a labelled panel of fingerprints
//! ([`PairTable::from_curves`]) or of a published similarity matrix
//! ([`PairTable::from_matrix`]). The null is the set of **unrelated** pairs; related pairs are
//! excluded and listed, unknown pairs and pairs the measure could not score are excluded and
//! counted, and pairs involving models named in [`PanelOptions::exclude`] (typically the two
//! models under test) are left out. The p-value is `(1 + #{null >= observed}) / (1 + n)`.
//!
//! Reported alongside:
//! * **strata** by depth match (same / different number of layers) and architecture family
//!   (same / different), where the panel knows them, and the stratum matching the observed
//!   pair ([`ObservedContext`]). Depth match dominates the published measure: same-depth
//!   unrelated pairs score far higher than pairs whose curves had to be interpolated.
//! * the **family-block view**: one score per pair of roots (block roots, see
//!   [`crate::labels`]), the median of the unrelated pairs between the two families (or a
//!   seeded random one of them), so that a family of many quantized and fine-tuned copies
//!   counts once.
//! * the **false-positive rate** among unrelated pairs at each threshold (e.g. the published
//!   0.927, and 0.7, the "normal is below 0.7" claim).
//!
//! Pairs in a panel are not independent ([`DEPENDENCE_NOTE`]), and every report says so. The
//! dependence also costs a little validity in small panels: on simulated independent
//! random-walk-plus-trend models (24 layers, 6,000 replicates, [`crate::calibrate`]) the
//! `honestagi` panel null rejects at α = 0.05 in 6.2% of null pairs with 15 models, 5.9% with
//! 25, 5.4% with 40 and 5.3% with 80 (the empirical quantile of a panel whose pairs share
//! models fluctuates more than that of independent pairs); `detrended` stays at 4.6–5.1%.
//! Panels with fewer than [`SMALL_PANEL`] models get a note.

use std::collections::BTreeMap;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::labels::Relation;
use crate::measure::Measure;
use crate::nulls::{NullInfo, NullResult, Sampling};
use crate::pvalue::{rates_at_or_above, Rate};
use crate::rng;
use crate::stats::quantile_sorted;
use crate::table::PairTable;

/// The caveat every panel result carries.
pub const DEPENDENCE_NOTE: &str = "pairs in a panel are not independent: each model appears in \
    many pairs and families of quantized and fine-tuned copies share weights, so the effective \
    number of null pairs is smaller than n and the interval and mc_error (computed as if pairs \
    were independent) understate the uncertainty; see the family-block view";

/// Strata with fewer null pairs than this get a note: their p-values are coarse.
pub const SMALL_STRATUM: u64 = 20;

/// Depths within this fraction of the larger depth form the `depth: within 10%` stratum.
///
/// 10%: the published measure interpolates the shorter curve onto the longer grid; within 10%
/// the stretch moves no point by more than a tenth of a layer spacing per ten layers, so the
/// curves are compared almost point by point, while beyond it the interpolation smooths the
/// shorter curve visibly (a 24- against a 48-layer model halves its resolution).
pub const DEPTH_NEAR_FRACTION: f64 = 0.10;

/// Caveat of the `depth: same` stratum.
pub const SAME_DEPTH_NOTE: &str = "same depth: curves are compared layer by layer, with no \
    interpolation; the stratum that matches a claim between two models of equal depth";
/// Caveat of the `depth: within 10%` stratum.
pub const NEAR_DEPTH_NOTE: &str = "depths differ by at most 10%: the shorter curve is \
    interpolated onto the longer grid, a small stretch";
/// Caveat of the `depth: other` stratum.
pub const OTHER_DEPTH_NOTE: &str = "depths differ by more than 10%: the shorter curve is \
    stretched by interpolation, which smooths it; these scores run lower and say little about \
    pairs of equal depth";
/// Caveat of the kind strata.
pub const KIND_NOTE: &str = "kind (encoder or decoder) as read from the stack and module names \
    of the panel; models whose names do not say are in no kind stratum";

/// Panels whose null pairs involve fewer models than this get a note (mild anti-conservatism,
/// see the module docs).
pub const SMALL_PANEL: usize = 30;

/// How the family-block view picks one score per pair of roots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum BlockRepresentative {
    /// The median of the unrelated pairs between the two families (deterministic).
    #[default]
    Median,
    /// One of them at random (stream = the block's index in root order).
    Random {
        /// Seed.
        seed: u64,
    },
}

/// What is known about the observed pair, to pick its stratum.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ObservedContext {
    /// Depths of the two models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<(usize, usize)>,
    /// Architecture families of the two models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub families: Option<(String, String)>,
    /// Kinds (`encoder`, `decoder`) of the two models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<(String, String)>,
}

/// Options of a panel test.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PanelOptions {
    /// Thresholds at which to report the false-positive rate.
    pub thresholds: Vec<f64>,
    /// Thresholds at which to report the matched stratum's rate at or above
    /// ([`PanelReport::matched_curve`]); none when empty.
    pub matched_grid: Vec<f64>,
    /// The observed pair's depths and families.
    pub context: ObservedContext,
    /// Models whose pairs are left out of the null (e.g. the pair under test).
    pub exclude: Vec<String>,
    /// Family-block representative.
    pub block: BlockRepresentative,
    /// Also report the depth strata `depth: same` / `depth: within 10%` / `depth: other`, the
    /// kind strata `kind: a/b` and their crossing `depth: same, kind: a/b`, each with its caveat.
    pub depth_strata: bool,
    /// Kind (`encoder`, `decoder`) of each model id, for the kind strata.
    pub kinds: BTreeMap<String, String>,
}

/// The depth stratum of a pair of depths: `same`, `within 10%` or `other`.
pub fn depth_class(x: usize, y: usize) -> &'static str {
    let (lo, hi) = (x.min(y), x.max(y));
    if lo == hi {
        "same"
    } else if (hi - lo) as f64 <= DEPTH_NEAR_FRACTION * hi as f64 {
        "within 10%"
    } else {
        "other"
    }
}

fn ordered_pair(a: &str, b: &str) -> String {
    if a <= b {
        format!("{a}/{b}")
    } else {
        format!("{b}/{a}")
    }
}

/// A named pair and its score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairScore {
    /// First model.
    pub a: String,
    /// Second model.
    pub b: String,
    /// Score.
    pub score: f64,
}

/// What was left out of the null.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Excluded {
    /// Related pairs (listed in `related_pairs`).
    pub related: u64,
    /// Pairs of unknown relation.
    pub unknown: u64,
    /// Pairs (or models, counted once each) the measure could not score.
    pub failed: u64,
    /// Unrelated pairs involving an excluded model.
    pub by_request: u64,
    /// The related pairs, highest score first.
    pub related_pairs: Vec<PairScore>,
}

/// Distribution summary of the null scores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NullSummary {
    /// Median.
    pub median: f64,
    /// 95th percentile (linear interpolation).
    pub p95: f64,
    /// Maximum, and the pair that reaches it.
    pub max: PairScore,
}

/// The null restricted to one stratum.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stratum {
    /// Stratum name, e.g. `same depth`.
    pub name: String,
    /// The test within it.
    pub result: NullResult,
}

/// The result of testing one observed score against a panel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PanelReport {
    /// Where the panel's scores came from.
    pub source: String,
    /// The measure (when the scores were computed here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure: Option<Measure>,
    /// The observed score.
    pub observed: f64,
    /// The test against all unrelated pairs.
    pub null: NullResult,
    /// Distribution of the unrelated pairs.
    pub summary: NullSummary,
    /// What was excluded.
    pub excluded: Excluded,
    /// Strata by depth match and family.
    pub strata: Vec<Stratum>,
    /// The stratum that matches the observed pair, when the context names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched_stratum: Option<String>,
    /// The matched stratum's rate at or above each threshold of
    /// [`PanelOptions::matched_grid`] (the distribution a claim is read against).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matched_curve: Vec<Rate>,
    /// The family-block view (one score per pair of roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_block: Option<NullResult>,
    /// False-positive rate among unrelated pairs at each threshold.
    pub fpr: Vec<Rate>,
    /// Caveats.
    pub notes: Vec<String>,
}

/// The description of a panel null (or one of its strata) built from `source`: one wording for
/// every report and command.
pub fn panel_info(source: &str, stratum: Option<&str>) -> NullInfo {
    NullInfo {
        name: match stratum {
            Some(s) => format!("panel[{s}]"),
            None => "panel".into(),
        },
        preserves: format!(
            "everything real unrelated models share (depth trends, architecture conventions, \
             initialisation and training recipes, quantization patterns), as found in {source}"
        ),
        destroys: "lineage: related and unknown pairs are excluded by the labels".into(),
    }
}

fn block_info(source: &str, block: BlockRepresentative) -> NullInfo {
    NullInfo {
        name: "panel-family-block".into(),
        preserves: format!(
            "what unrelated families share, as found in {source}, with one score per pair of \
             roots ({})",
            match block {
                BlockRepresentative::Median => "the median of the pairs between the two families",
                BlockRepresentative::Random { .. } =>
                    "one pair between the two families, chosen at random",
            }
        ),
        destroys: "lineage, and the weight of large families of copies".into(),
    }
}

/// Test `observed` against the unrelated pairs of `table`.
pub fn test(table: &PairTable, observed: f64, opts: &PanelOptions) -> Result<PanelReport> {
    crate::measure::check_score("observed score", observed)?;
    table.validate()?;
    let excluded_idx: Vec<usize> = opts
        .exclude
        .iter()
        .filter_map(|id| table.index(id))
        .collect();
    let mut excluded = Excluded {
        failed: table.failures.len() as u64,
        ..Default::default()
    };
    let mut null = Vec::new();
    for p in &table.pairs {
        match p.relation {
            Relation::Related => {
                excluded.related += 1;
                let (a, b) = table.ids(p);
                excluded.related_pairs.push(PairScore {
                    a: a.into(),
                    b: b.into(),
                    score: p.score,
                });
            }
            Relation::Unknown => excluded.unknown += 1,
            Relation::Unrelated => {
                if excluded_idx.contains(&p.a) || excluded_idx.contains(&p.b) {
                    excluded.by_request += 1;
                } else {
                    null.push(*p);
                }
            }
        }
    }
    excluded
        .related_pairs
        .sort_by(|x, y| y.score.total_cmp(&x.score));
    let source = &table.source;
    if null.is_empty() {
        return Err(Error::EmptyNull {
            name: "panel".into(),
            reason: format!(
                "{source} has no unrelated pairs ({} related, {} unknown, {} failed, {} excluded \
                 by request): label the models",
                excluded.related, excluded.unknown, excluded.failed, excluded.by_request
            ),
        });
    }
    let scores: Vec<f64> = null.iter().map(|p| p.score).collect();
    let mut result = NullResult::from_scores(
        &panel_info(source, None),
        observed,
        &scores,
        None,
        Sampling::Panel,
    )?;
    result.notes.push(DEPENDENCE_NOTE.into());

    let mut sorted = scores.clone();
    sorted.sort_by(f64::total_cmp);
    let top = null
        .iter()
        .max_by(|x, y| x.score.total_cmp(&y.score))
        .copied()
        .ok_or_else(|| Error::EmptyNull {
            name: "panel".into(),
            reason: "no unrelated pairs".into(),
        })?;
    let (ta, tb) = table.ids(&top);
    let summary = NullSummary {
        median: quantile_sorted(&sorted, 0.5)?,
        p95: quantile_sorted(&sorted, 0.95)?,
        max: PairScore {
            a: ta.into(),
            b: tb.into(),
            score: top.score,
        },
    };

    // Strata.
    let mut groups: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let ctx_depth = opts.context.layers.map(|(a, b)| (a.min(b), a.max(b)));
    let ctx_family = opts.context.families.as_ref().map(|(a, b)| {
        if a <= b {
            (a.clone(), b.clone())
        } else {
            (b.clone(), a.clone())
        }
    });
    for p in &null {
        let (ma, mb) = (&table.models[p.a], &table.models[p.b]);
        let mut keys = Vec::new();
        let depth_same = match (ma.layers, mb.layers) {
            (Some(x), Some(y)) => {
                if ctx_depth == Some((x.min(y), x.max(y))) {
                    keys.push(format!("depth {}/{}", x.min(y), x.max(y)));
                }
                let same = x == y;
                keys.push(
                    if same {
                        "same depth"
                    } else {
                        "different depth"
                    }
                    .to_string(),
                );
                Some(same)
            }
            _ => None,
        };
        if opts.depth_strata {
            let kind = match (opts.kinds.get(&ma.id), opts.kinds.get(&mb.id)) {
                (Some(x), Some(y)) => Some(ordered_pair(x, y)),
                _ => None,
            };
            if let (Some(x), Some(y)) = (ma.layers, mb.layers) {
                let class = depth_class(x, y);
                keys.push(format!("depth: {class}"));
                if let Some(k) = &kind {
                    keys.push(format!("depth: {class}, kind: {k}"));
                }
            }
            if let Some(k) = &kind {
                keys.push(format!("kind: {k}"));
            }
        }
        if let (Some(x), Some(y)) = (&ma.family, &mb.family) {
            let pair = if x <= y {
                (x.clone(), y.clone())
            } else {
                (y.clone(), x.clone())
            };
            if ctx_family.as_ref() == Some(&pair) {
                keys.push(format!("families {}/{}", pair.0, pair.1));
            }
            let same = x == y;
            keys.push(
                if same {
                    "same family"
                } else {
                    "different family"
                }
                .to_string(),
            );
            if depth_same == Some(true) && same {
                keys.push("same depth, same family".into());
            }
        }
        for k in keys {
            groups.entry(k).or_default().push(p.score);
        }
    }
    let mut strata = Vec::new();
    for (name, s) in &groups {
        let mut r = NullResult::from_scores(
            &panel_info(source, Some(name)),
            observed,
            s,
            None,
            Sampling::Panel,
        )?;
        if opts.depth_strata {
            if name.starts_with("depth: same") {
                r.notes.push(SAME_DEPTH_NOTE.into());
            } else if name.starts_with("depth: within") {
                r.notes.push(NEAR_DEPTH_NOTE.into());
            } else if name.starts_with("depth: other") {
                r.notes.push(OTHER_DEPTH_NOTE.into());
            }
            if name.contains("kind: ") {
                r.notes.push(KIND_NOTE.into());
            }
        }
        if r.n < SMALL_STRATUM {
            r.notes.push(format!(
                "only {} null pairs in this stratum: p cannot go below 1/{}",
                r.n,
                r.n + 1
            ));
        }
        strata.push(Stratum {
            name: name.clone(),
            result: r,
        });
    }
    let matched_stratum = {
        let mut candidates = Vec::new();
        if let (true, Some((x, y))) = (opts.depth_strata, ctx_depth) {
            let class = depth_class(x, y);
            if let Some((a, b)) = &opts.context.kinds {
                candidates.push(format!("depth: {class}, kind: {}", ordered_pair(a, b)));
            }
        }
        if let Some((x, y)) = ctx_depth {
            candidates.push(format!("depth {x}/{y}"));
            candidates.push(
                if x == y {
                    "same depth"
                } else {
                    "different depth"
                }
                .to_string(),
            );
        }
        if let Some((x, y)) = &ctx_family {
            candidates.push(format!("families {x}/{y}"));
        }
        candidates.into_iter().find(|c| groups.contains_key(c))
    };
    let matched_curve = match matched_stratum.as_ref().and_then(|m| groups.get(m)) {
        Some(s) if !opts.matched_grid.is_empty() => rates_at_or_above(s, &opts.matched_grid)?,
        _ => Vec::new(),
    };

    // Family blocks.
    let mut blocks: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    let mut same_block = 0u64;
    for p in &null {
        let (x, y) = (&table.models[p.a].block, &table.models[p.b].block);
        if x == y {
            same_block += 1;
            continue;
        }
        let key = if x <= y {
            (x.clone(), y.clone())
        } else {
            (y.clone(), x.clone())
        };
        blocks.entry(key).or_default().push(p.score);
    }
    let mut block_scores = Vec::with_capacity(blocks.len());
    for (i, s) in blocks.values_mut().enumerate() {
        s.sort_by(f64::total_cmp);
        block_scores.push(match opts.block {
            BlockRepresentative::Median => quantile_sorted(s, 0.5)?,
            BlockRepresentative::Random { seed } => {
                let k = rng::stream(seed, i as u64).gen_range(0..s.len());
                s[k]
            }
        });
    }
    let family_block = if block_scores.is_empty() {
        None
    } else {
        let seed = match opts.block {
            BlockRepresentative::Random { seed } => Some(seed),
            BlockRepresentative::Median => None,
        };
        let mut r = NullResult::from_scores(
            &block_info(source, opts.block),
            observed,
            &block_scores,
            seed,
            Sampling::Panel,
        )?;
        if same_block > 0 {
            r.notes.push(format!(
                "{same_block} unrelated pairs whose models fall in one block (contradictory \
                 labels) were left out of this view"
            ));
        }
        Some(r)
    };

    let fpr = if opts.thresholds.is_empty() {
        Vec::new()
    } else {
        rates_at_or_above(&scores, &opts.thresholds)?
    };
    let mut notes = vec![DEPENDENCE_NOTE.to_string()];
    let mut in_null: Vec<usize> = null.iter().flat_map(|p| [p.a, p.b]).collect();
    in_null.sort_unstable();
    in_null.dedup();
    if in_null.len() < SMALL_PANEL {
        notes.push(format!(
            "the null pairs involve only {} models: with pairs sharing models, small panels are \
             mildly anti-conservative (simulation: 6% rejections at 5% with 15 models)",
            in_null.len()
        ));
    }
    if excluded.failed > 0 {
        notes.push(format!(
            "{} pairs or models could not be scored and are not in the null",
            excluded.failed
        ));
    }
    if excluded.unknown > 0 {
        notes.push(format!(
            "{} pairs of unknown relation were excluded",
            excluded.unknown
        ));
    }
    Ok(PanelReport {
        source: source.clone(),
        measure: table.measure,
        observed,
        null: result,
        summary,
        excluded,
        strata,
        matched_stratum,
        matched_curve,
        family_block,
        fpr,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::{Labels, ModelLabel};
    use crate::table::{ModelMeta, PairEntry};

    /// Six models in three families; same-depth pairs score high.
    fn table() -> PairTable {
        let models = [
            ("a1", "A", 32),
            ("a2", "A", 32),
            ("b1", "B", 32),
            ("b2", "B", 28),
            ("c1", "C", 28),
            ("c2", "C", 28),
        ];
        let labels = Labels::new(
            models
                .iter()
                .map(|(m, r, l)| {
                    (
                        m.to_string(),
                        ModelLabel {
                            root: Some(r.to_string()),
                            family: Some(if *r == "C" { "bert" } else { "llama" }.into()),
                            layers: Some(*l),
                            ..Default::default()
                        },
                    )
                })
                .collect(),
            vec![],
        )
        .unwrap();
        let metas: Vec<ModelMeta> = models
            .iter()
            .map(|(m, _, l)| ModelMeta {
                id: m.to_string(),
                root: labels.root(m).map(String::from),
                block: labels.block_root(m),
                family: labels.family(m).map(String::from),
                layers: Some(*l),
            })
            .collect();
        let mut pairs = Vec::new();
        for i in 0..6 {
            for j in i + 1..6 {
                let same_depth = models[i].2 == models[j].2;
                let score = if same_depth { 0.8 } else { 0.3 } + 0.01 * (i + j) as f64;
                pairs.push(PairEntry {
                    a: i,
                    b: j,
                    score,
                    relation: labels.relation(models[i].0, models[j].0),
                });
            }
        }
        PairTable {
            source: "test panel".into(),
            measure: Some(Measure::HonestAgi),
            models: metas,
            pairs,
            failures: vec![],
        }
    }

    #[test]
    fn panel_p_value_exclusions_and_strata() {
        let t = table();
        let opts = PanelOptions {
            thresholds: vec![0.7, 0.927],
            context: ObservedContext {
                layers: Some((32, 32)),
                families: None,
                kinds: None,
            },
            ..Default::default()
        };
        let r = test(&t, 0.85, &opts).unwrap();
        // 15 pairs, 3 related (a1-a2, b1-b2, c1-c2), 12 unrelated.
        assert_eq!(r.excluded.related, 3);
        assert_eq!(r.excluded.related_pairs.len(), 3);
        assert_eq!(r.null.n, 12);
        // Unrelated same-depth pairs: (a1,b1)=0.82, (a2,b1)=0.83, (b2,c1)=0.87, (b2,c2)=0.88.
        assert_eq!(r.null.exceed, 2);
        assert_eq!(r.null.p, 3.0 / 13.0);
        assert!(r.null.notes.iter().any(|n| n.contains("not independent")));
        let same = r.strata.iter().find(|s| s.name == "same depth").unwrap();
        assert_eq!(same.result.n, 4);
        assert_eq!(r.matched_stratum.as_deref(), Some("depth 32/32"));
        let d32 = r.strata.iter().find(|s| s.name == "depth 32/32").unwrap();
        assert_eq!((d32.result.n, d32.result.exceed), (2, 0));
        assert!(r.strata.iter().any(|s| s.name == "different family"));
        // Three roots: three blocks.
        let fb = r.family_block.as_ref().unwrap();
        assert_eq!(fb.n, 3);
        assert_eq!(r.fpr.len(), 2);
        assert_eq!(r.fpr[0].count, 4);
        assert_eq!(r.summary.max.score, 0.88);
        // Excluding b2 removes its unrelated pairs.
        let r2 = test(
            &t,
            0.85,
            &PanelOptions {
                exclude: vec!["b2".into()],
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(r2.excluded.by_request, 4);
        assert_eq!(r2.null.n, 8);
        // A seeded random block representative is reproducible.
        let ro = PanelOptions {
            block: BlockRepresentative::Random { seed: 9 },
            ..Default::default()
        };
        assert_eq!(
            test(&t, 0.85, &ro).unwrap().family_block,
            test(&t, 0.85, &ro).unwrap().family_block
        );
    }

    #[test]
    fn depth_and_kind_strata() {
        assert_eq!(depth_class(48, 48), "same");
        assert_eq!(depth_class(44, 48), "within 10%");
        assert_eq!(depth_class(43, 48), "other");
        assert_eq!(depth_class(28, 32), "other");
        let t = table();
        let kinds: BTreeMap<String, String> = ["a1", "a2", "b1", "b2", "c1", "c2"]
            .iter()
            .map(|m| {
                let k = if m.starts_with('c') {
                    "encoder"
                } else {
                    "decoder"
                };
                (m.to_string(), k.to_string())
            })
            .collect();
        let opts = PanelOptions {
            context: ObservedContext {
                layers: Some((32, 32)),
                kinds: Some(("decoder".into(), "decoder".into())),
                families: None,
            },
            depth_strata: true,
            kinds,
            ..Default::default()
        };
        let r = test(&t, 0.85, &opts).unwrap();
        let get = |n: &str| r.strata.iter().find(|s| s.name == n).map(|s| &s.result);
        // Unrelated: 12 pairs; same depth 4, other 8 (28 vs 32), none within 10%.
        assert_eq!(get("depth: same").unwrap().n, 4);
        assert_eq!(get("depth: other").unwrap().n, 8);
        assert!(get("depth: within 10%").is_none());
        // Same depth, both decoders: (a1,b1), (a2,b1).
        let sd = get("depth: same, kind: decoder/decoder").unwrap();
        assert_eq!((sd.n, sd.exceed), (2, 0));
        assert!(sd.notes.iter().any(|n| n.contains("layer by layer")));
        assert!(sd.notes.iter().any(|n| n.contains("kind (encoder")));
        // (b2,c1), (b2,c2) are same-depth decoder/encoder pairs.
        assert_eq!(get("depth: same, kind: decoder/encoder").unwrap().n, 2);
        assert_eq!(
            r.matched_stratum.as_deref(),
            Some("depth: same, kind: decoder/decoder")
        );
        assert!(r.matched_curve.is_empty(), "no grid, no curve");
        // With a grid: the matched stratum's own scores (0.82 and 0.83), counted at or above
        // each threshold.
        let grid = [0.0, 0.825, 0.9];
        let with_grid = test(
            &t,
            0.85,
            &PanelOptions {
                matched_grid: grid.to_vec(),
                ..opts.clone()
            },
        )
        .unwrap();
        let c = &with_grid.matched_curve;
        assert_eq!(c.len(), 3);
        assert!(c.iter().all(|x| x.n == 2));
        let counts: Vec<u64> = c.iter().map(|x| x.count).collect();
        assert_eq!(counts, [2, 1, 0]);
        // Off by default: the strata of earlier reports are unchanged.
        let plain = test(&t, 0.85, &PanelOptions::default()).unwrap();
        assert!(plain.strata.iter().all(|s| !s.name.starts_with("depth:")));
        assert!(plain.matched_curve.is_empty());
    }

    #[test]
    fn empty_null_is_an_error() {
        let mut t = table();
        for p in &mut t.pairs {
            p.relation = Relation::Unknown;
        }
        assert!(matches!(
            test(&t, 0.9, &PanelOptions::default()),
            Err(Error::EmptyNull { .. })
        ));
        assert!(test(&table(), f64::NAN, &PanelOptions::default()).is_err());
    }
}

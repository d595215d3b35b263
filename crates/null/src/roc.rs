//! How well a measure separates related from unrelated pairs: ROC curve and AUC, and a
//! decision threshold judged on pairs it was not fitted on.
//!
//! * [`roc`]: the rule "related if score >= t" at every distinct score; AUC as the Mann–Whitney
//!   probability P(related > unrelated) + ½ P(tie) (the trapezoid area under those points),
//!   counted exactly in integers.
//! * [`held_out`]: leave-one-out threshold. For each model (or each root, [`Grouping`]), the
//!   threshold is chosen ([`ThresholdRule`]) on the labelled pairs that do not involve it and
//!   applied to the pairs that do. The pooled false-positive and true-positive rates over all
//!   folds are honest estimates of how the rule does on a new model, unlike a threshold fitted
//!   on the same scores it is judged on. Each pair belongs to the test set of the fold of each
//!   of its two members (two folds for unrelated pairs; for related pairs one fold under
//!   [`Grouping::Root`]), so pooled counts count most pairs twice. Leaving out a whole root is
//!   stricter: with [`Grouping::Model`] the held-out model's siblings still inform the
//!   threshold.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::labels::Relation;
use crate::pvalue::Rate;
use crate::stats::{median, next_up};
use crate::table::{PairEntry, PairTable};

/// One point of a ROC curve.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RocPoint {
    /// Scores at or above this are called related.
    pub threshold: f64,
    /// False-positive rate among unrelated pairs.
    pub fpr: f64,
    /// True-positive rate among related pairs.
    pub tpr: f64,
}

/// A ROC curve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Roc {
    /// Related pairs.
    pub n_related: u64,
    /// Unrelated pairs.
    pub n_unrelated: u64,
    /// Area under the curve.
    pub auc: f64,
    /// Points from (0, 0) to (1, 1), thresholds descending.
    pub points: Vec<RocPoint>,
}

fn check(what: &str, xs: &[f64]) -> Result<()> {
    if xs.is_empty() {
        return Err(Error::TooFewValues {
            what: what.into(),
            n: 0,
            needed: 1,
        });
    }
    if let Some(&value) = xs.iter().find(|x| !x.is_finite()) {
        return Err(Error::NonFiniteInput {
            what: what.into(),
            value,
        });
    }
    Ok(())
}

/// ROC curve and AUC of scores of related versus unrelated pairs.
pub fn roc(related: &[f64], unrelated: &[f64]) -> Result<Roc> {
    check("roc: related scores", related)?;
    check("roc: unrelated scores", unrelated)?;
    let mut all: Vec<(f64, bool)> = related
        .iter()
        .map(|&s| (s, true))
        .chain(unrelated.iter().map(|&s| (s, false)))
        .collect();
    all.sort_by(|x, y| y.0.total_cmp(&x.0));
    let (nr, nu) = (related.len() as f64, unrelated.len() as f64);
    let mut points = vec![RocPoint {
        threshold: next_up(all[0].0),
        fpr: 0.0,
        tpr: 0.0,
    }];
    let (mut tp, mut fp) = (0u64, 0u64);
    // Twice the Mann-Whitney U, in exact integer arithmetic: each related score counts 2 per
    // unrelated score below it and 1 per tie.
    let mut u2: u128 = 0;
    let nu_count = unrelated.len() as u128;
    let mut i = 0;
    while i < all.len() {
        let v = all[i].0;
        let (tp0, fp0) = (tp, fp);
        while i < all.len() && all[i].0 == v {
            if all[i].1 {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        let (tg, fg) = ((tp - tp0) as u128, (fp - fp0) as u128);
        u2 += 2 * tg * (nu_count - fp as u128) + tg * fg;
        points.push(RocPoint {
            threshold: v,
            fpr: fp as f64 / nu,
            tpr: tp as f64 / nr,
        });
    }
    Ok(Roc {
        n_related: related.len() as u64,
        n_unrelated: unrelated.len() as u64,
        auc: u2 as f64 / (2.0 * nr * nu),
        points,
    })
}

/// ROC of a table's related versus unrelated pairs.
pub fn roc_table(table: &PairTable) -> Result<Roc> {
    roc(
        &table.scores(Relation::Related),
        &table.scores(Relation::Unrelated),
    )
}

/// How a threshold is chosen on training pairs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "rule", content = "alpha")]
pub enum ThresholdRule {
    /// The smallest observed score t whose training false-positive rate (unrelated pairs at or
    /// above t) is at most alpha.
    Fpr(f64),
    /// The observed score maximising TPR − FPR (Youden's J); ties go to the higher threshold.
    Youden,
}

/// What is held out in each fold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grouping {
    /// One model at a time.
    Model,
    /// One root (all models of a family) at a time.
    Root,
}

/// One fold of a held-out threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fold {
    /// The model or root held out.
    pub held_out: String,
    /// Threshold chosen without it.
    pub threshold: f64,
    /// Training unrelated pairs.
    pub train_unrelated: u64,
    /// Training related pairs.
    pub train_related: u64,
    /// Held-out unrelated pairs.
    pub test_unrelated: u64,
    /// Held-out unrelated pairs at or above the threshold.
    pub false_positives: u64,
    /// Held-out related pairs.
    pub test_related: u64,
    /// Held-out related pairs at or above the threshold.
    pub true_positives: u64,
}

/// A threshold evaluated out of sample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeldOut {
    /// The rule.
    pub rule: ThresholdRule,
    /// The grouping.
    pub grouping: Grouping,
    /// Median of the fold thresholds.
    pub median_threshold: f64,
    /// Pooled held-out false-positive rate.
    pub fpr: Rate,
    /// Pooled held-out true-positive rate (when there are held-out related pairs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpr: Option<Rate>,
    /// The folds.
    pub folds: Vec<Fold>,
    /// Groups without a usable fold (no training pairs of a needed kind, or no test pairs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    /// Caveats.
    pub notes: Vec<String>,
}

/// The threshold the rule picks on `train` (labelled pairs, sorted by descending score).
fn choose(train: &[&PairEntry], n_rel: u64, n_unrel: u64, rule: ThresholdRule) -> f64 {
    let mut best = (f64::NEG_INFINITY, next_up(train[0].score));
    let (mut tp, mut fp) = (0u64, 0u64);
    let mut accepted = None;
    let mut i = 0;
    while i < train.len() {
        let v = train[i].score;
        while i < train.len() && train[i].score == v {
            match train[i].relation {
                Relation::Related => tp += 1,
                _ => fp += 1,
            }
            i += 1;
        }
        match rule {
            ThresholdRule::Fpr(alpha) => {
                if fp as f64 <= alpha * n_unrel as f64 {
                    accepted = Some(v);
                } else {
                    break;
                }
            }
            ThresholdRule::Youden => {
                let j = tp as f64 / n_rel as f64 - fp as f64 / n_unrel as f64;
                if j > best.0 {
                    best = (j, v);
                }
            }
        }
    }
    match rule {
        ThresholdRule::Fpr(_) => accepted.unwrap_or(best.1),
        ThresholdRule::Youden => best.1,
    }
}

/// Leave-one-model-out (or leave-one-root-out) threshold; see the module docs.
pub fn held_out(table: &PairTable, rule: ThresholdRule, grouping: Grouping) -> Result<HeldOut> {
    table.validate()?;
    if let ThresholdRule::Fpr(a) = rule {
        if !(0.0..1.0).contains(&a) {
            return Err(Error::invalid("alpha", a, "must lie in [0, 1)"));
        }
    }
    let mut labelled: Vec<&PairEntry> = table
        .pairs
        .iter()
        .filter(|p| p.relation != Relation::Unknown)
        .collect();
    if let Some(p) = labelled.iter().find(|p| !p.score.is_finite()) {
        return Err(Error::NonFiniteInput {
            what: "held-out threshold".into(),
            value: p.score,
        });
    }
    labelled.sort_by(|x, y| y.score.total_cmp(&x.score));
    let group_of = |i: usize| -> &str {
        match grouping {
            Grouping::Model => &table.models[i].id,
            Grouping::Root => &table.models[i].block,
        }
    };
    let mut groups: Vec<&str> = table
        .models
        .iter()
        .enumerate()
        .map(|(i, _)| group_of(i))
        .collect();
    groups.sort_unstable();
    groups.dedup();
    let folds: Vec<std::result::Result<Fold, String>> = groups
        .par_iter()
        .map(|&g| {
            let held = |p: &PairEntry| group_of(p.a) == g || group_of(p.b) == g;
            let train: Vec<&PairEntry> = labelled.iter().copied().filter(|p| !held(p)).collect();
            let test: Vec<&PairEntry> = labelled.iter().copied().filter(|p| held(p)).collect();
            let count =
                |v: &[&PairEntry], r: Relation| v.iter().filter(|p| p.relation == r).count() as u64;
            let (tr_r, tr_u) = (
                count(&train, Relation::Related),
                count(&train, Relation::Unrelated),
            );
            let (te_r, te_u) = (
                count(&test, Relation::Related),
                count(&test, Relation::Unrelated),
            );
            let needs_related = matches!(rule, ThresholdRule::Youden);
            if tr_u == 0 || (needs_related && tr_r == 0) || te_r + te_u == 0 {
                return Err(g.to_owned());
            }
            let t = choose(&train, tr_r, tr_u, rule);
            let above = |r: Relation| {
                test.iter()
                    .filter(|p| p.relation == r && p.score >= t)
                    .count() as u64
            };
            Ok(Fold {
                held_out: g.to_owned(),
                threshold: t,
                train_unrelated: tr_u,
                train_related: tr_r,
                test_unrelated: te_u,
                false_positives: above(Relation::Unrelated),
                test_related: te_r,
                true_positives: above(Relation::Related),
            })
        })
        .collect();
    let mut ok = Vec::new();
    let mut skipped = Vec::new();
    for f in folds {
        match f {
            Ok(f) => ok.push(f),
            Err(g) => skipped.push(g),
        }
    }
    if ok.is_empty() {
        return Err(Error::EmptyNull {
            name: "held-out threshold".into(),
            reason: "no fold has both training and held-out labelled pairs".into(),
        });
    }
    let thresholds: Vec<f64> = ok.iter().map(|f| f.threshold).collect();
    let (fp, nu): (u64, u64) = ok.iter().fold((0, 0), |a, f| {
        (a.0 + f.false_positives, a.1 + f.test_unrelated)
    });
    let (tp, nr): (u64, u64) = ok.iter().fold((0, 0), |a, f| {
        (a.0 + f.true_positives, a.1 + f.test_related)
    });
    let median_threshold = median(&thresholds)?;
    Ok(HeldOut {
        rule,
        grouping,
        median_threshold,
        fpr: Rate::new(median_threshold, fp, nu.max(1))?,
        tpr: if nr > 0 {
            Some(Rate::new(median_threshold, tp, nr)?)
        } else {
            None
        },
        folds: ok,
        skipped,
        notes: vec![
            "each pair is held out in the fold of each of its members, so pooled counts count \
             most pairs twice; the rates' intervals treat them as independent"
                .into(),
            "rates are pooled over folds, each with its own threshold; threshold in the rates \
             is the median fold threshold"
                .into(),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::ModelMeta;

    #[test]
    fn auc_is_mann_whitney_with_ties() {
        let r = roc(&[0.9, 0.8, 0.5], &[0.5, 0.3, 0.2, 0.1]).unwrap();
        // Pairs (rel > unrel): 0.9 beats 4, 0.8 beats 4, 0.5 beats 3 and ties 1: (11 + 0.5)/12.
        assert!((r.auc - 11.5 / 12.0).abs() < 1e-15, "{}", r.auc);
        assert_eq!(r.points.first().unwrap().fpr, 0.0);
        let last = r.points.last().unwrap();
        assert_eq!((last.fpr, last.tpr), (1.0, 1.0));
        assert_eq!(roc(&[1.0], &[0.0]).unwrap().auc, 1.0);
        assert_eq!(roc(&[0.0], &[1.0]).unwrap().auc, 0.0);
        assert!(roc(&[], &[0.0]).is_err());
        assert!(roc(&[f64::NAN], &[0.0]).is_err());
    }

    fn table(scores: &[(usize, usize, f64, Relation)], n: usize) -> PairTable {
        PairTable {
            source: "t".into(),
            measure: None,
            models: (0..n)
                .map(|i| ModelMeta {
                    id: format!("m{i}"),
                    root: None,
                    block: format!("r{}", i / 2),
                    family: None,
                    layers: None,
                })
                .collect(),
            pairs: scores
                .iter()
                .map(|&(a, b, score, relation)| PairEntry {
                    a,
                    b,
                    score,
                    relation,
                })
                .collect(),
            failures: vec![],
        }
    }

    #[test]
    fn held_out_threshold_never_sees_its_own_pairs() {
        use Relation::*;
        // Models m0..m3; related: (0,1), (2,3). m3's unrelated pairs score very high, so a
        // threshold fitted with them is high; held out, m3's pairs are judged by a threshold
        // fitted on the others.
        let t = table(
            &[
                (0, 1, 0.95, Related),
                (2, 3, 0.97, Related),
                (0, 2, 0.40, Unrelated),
                (0, 3, 0.90, Unrelated),
                (1, 2, 0.50, Unrelated),
                (1, 3, 0.92, Unrelated),
            ],
            4,
        );
        let h = held_out(&t, ThresholdRule::Fpr(0.0), Grouping::Model).unwrap();
        let f3 = h.folds.iter().find(|f| f.held_out == "m3").unwrap();
        // Without m3: training pairs (0,1) related, (0,2), (1,2) unrelated: FPR 0 at t = 0.95,
        // the smallest accepted training score is 0.95 (0.50 would admit a false positive).
        assert_eq!(f3.threshold, 0.95);
        assert_eq!((f3.test_unrelated, f3.false_positives), (2, 0));
        assert_eq!((f3.test_related, f3.true_positives), (1, 1));
        let f0 = h.folds.iter().find(|f| f.held_out == "m0").unwrap();
        // Without m0: training (2,3) related 0.97, (1,2) 0.50, (1,3) 0.92 unrelated: t = 0.97.
        assert_eq!(f0.threshold, 0.97);
        assert_eq!((f0.test_related, f0.true_positives), (1, 0));
        let y = held_out(&t, ThresholdRule::Youden, Grouping::Model).unwrap();
        assert!(y.folds.iter().all(|f| f.train_related > 0));
        assert_eq!(y.folds.len(), 4);
        // Leaving out a whole root leaves no unrelated training pair in this tiny panel.
        assert!(matches!(
            held_out(&t, ThresholdRule::Fpr(0.01), Grouping::Root),
            Err(Error::EmptyNull { .. })
        ));
        assert!(held_out(&t, ThresholdRule::Fpr(1.5), Grouping::Model).is_err());
    }
}

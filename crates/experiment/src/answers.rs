//! How often the answer rule ([`null::answer`]) gives each answer on real labelled pairs: its
//! error rates, measured.
//!
//! Every pair is held out from its own reference: it is tested against the unrelated panel
//! pairs that involve neither of its models (a positive control: neither its base), so no pair
//! is judged against itself or a copy of itself. Unrelated pairs measure the false accusations
//! ("consistent with shared weights" for models that share none); related pairs and positive
//! controls built from real weights measure the misses ("not distinguishable from unrelated
//! models" for models that do share weights) and the power.

use null::answer::{classify, Answer};
use null::labels::Relation;
use null::nulls::panel::panel_info;
use null::nulls::{NullResult, Sampling};
use null::pvalue::CONFIDENCE;
use null::stats::clopper_pearson;
use null::table::PairTable;

use crate::error::{Error, Result};
use crate::positive_controls::Scored;

/// The share of one group's items given one answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Share {
    /// The answer.
    pub answer: Answer,
    /// Items given it.
    pub count: u64,
    /// Items in the group.
    pub n: u64,
    /// `count / n`.
    pub rate: f64,
    /// Clopper–Pearson 95% interval of the rate.
    pub interval: (f64, f64),
}

/// The answers given to one group of labelled items.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupAnswers {
    /// The group ("unrelated panel pairs", ...).
    pub group: &'static str,
    /// Do its items share weights?
    pub share_weights: bool,
    /// One share per answer, in [`Answer::ALL`] order.
    pub shares: Vec<Share>,
}

impl GroupAnswers {
    /// The share given `answer`.
    pub fn share(&self, answer: Answer) -> &Share {
        &self.shares[Answer::ALL.iter().position(|&a| a == answer).unwrap_or(0)]
    }
}

/// Group names, as the report prints them.
pub const UNRELATED: &str = "unrelated panel pairs";
/// ...
pub const RELATED: &str = "related panel pairs";
/// ...
pub const CONTROLS: &str = "positive controls from real weights";

/// The answer rule at `alpha` on every unrelated and related pair of `table` and on every
/// positive control, each held out from its reference. Groups without items are left out.
pub fn measure(table: &PairTable, controls: &[Scored], alpha: f64) -> Result<Vec<GroupAnswers>> {
    let unrelated: Vec<_> = table
        .pairs
        .iter()
        .filter(|p| p.relation == Relation::Unrelated)
        .collect();
    let answer_for = |score: f64, out: &[usize]| -> Result<Answer> {
        let reference: Vec<f64> = unrelated
            .iter()
            .filter(|p| !out.contains(&p.a) && !out.contains(&p.b))
            .map(|p| p.score)
            .collect();
        if reference.is_empty() {
            return Ok(Answer::CannotTell);
        }
        let r = NullResult::from_scores(
            &panel_info(&table.source, None),
            score,
            &reference,
            None,
            Sampling::Panel,
        )
        .map_err(Error::statistic("held-out panel p"))?;
        Ok(classify(Some(&r), alpha).answer)
    };
    let mut groups = Vec::new();
    for (group, relation) in [
        (UNRELATED, Relation::Unrelated),
        (RELATED, Relation::Related),
    ] {
        let answers = table
            .pairs
            .iter()
            .filter(|p| p.relation == relation)
            .map(|p| answer_for(p.score, &[p.a, p.b]))
            .collect::<Result<Vec<_>>>()?;
        groups.extend(tally(group, relation == Relation::Related, &answers)?);
    }
    let answers = controls
        .iter()
        .map(|c| {
            let base = table
                .models
                .iter()
                .position(|m| m.id == c.control.base)
                .ok_or_else(|| Error::Statistic {
                    what: format!("positive control {}", c.control.id),
                    source: null::Error::EmptyNull {
                        name: "held-out panel".into(),
                        reason: format!("its base {} is not in the panel", c.control.base),
                    },
                })?;
            answer_for(c.scores[0].1, &[base])
        })
        .collect::<Result<Vec<_>>>()?;
    groups.extend(tally(CONTROLS, true, &answers)?);
    Ok(groups)
}

fn tally(
    group: &'static str,
    share_weights: bool,
    answers: &[Answer],
) -> Result<Option<GroupAnswers>> {
    if answers.is_empty() {
        return Ok(None);
    }
    let n = answers.len() as u64;
    let shares = Answer::ALL
        .iter()
        .map(|&answer| {
            let count = answers.iter().filter(|&&a| a == answer).count() as u64;
            Ok(Share {
                answer,
                count,
                n,
                rate: count as f64 / n as f64,
                interval: clopper_pearson(count, n, CONFIDENCE)
                    .map_err(Error::statistic("answer rates"))?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(GroupAnswers {
        group,
        share_weights,
        shares,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use null::labels::Labels;
    use null::measure::Measure;
    use null::rng::stream;
    use null::sim::NullModel;

    #[test]
    fn a_large_panel_of_independent_models_is_rarely_accused() {
        let model = NullModel::default();
        let mut r = stream(21, 0);
        let curves = model.panel("m", 24, &mut r).unwrap();
        let labels = Labels::singletons(curves.iter().map(|c| c.model.as_str())).unwrap();
        let table = PairTable::from_curves(&curves, &labels, Measure::HonestAgi).unwrap();
        let groups = measure(&table, &[], 0.05).unwrap();
        assert_eq!(groups.len(), 1);
        let g = &groups[0];
        assert_eq!(g.group, UNRELATED);
        assert_eq!(g.shares.iter().map(|s| s.count).sum::<u64>(), 276);
        // 231 held-out pairs per reference: the rule can reject, and does so near its level.
        let accused = g.share(Answer::SharedWeights);
        assert!(accused.rate <= 0.1, "{accused:?}");
        assert!(g.share(Answer::CannotTell).count == 0);
    }

    #[test]
    fn a_small_panel_abstains_instead_of_accusing() {
        let model = NullModel::default();
        let mut r = stream(22, 0);
        let curves = model.panel("m", 6, &mut r).unwrap();
        let labels = Labels::singletons(curves.iter().map(|c| c.model.as_str())).unwrap();
        let table = PairTable::from_curves(&curves, &labels, Measure::HonestAgi).unwrap();
        // 6 pairs per reference: 0.01 cannot be reached.
        let g = &measure(&table, &[], 0.01).unwrap()[0];
        assert_eq!(g.share(Answer::SharedWeights).count, 0);
        assert!(g.share(Answer::CannotTell).count > 0);
    }
}

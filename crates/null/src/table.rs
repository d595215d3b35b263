//! A table of pairwise similarity scores with lineage relations: the common input of panel
//! nulls, multiple testing, ROC analysis and calibration.
//!
//! It is built either from curves ([`PairTable::from_curves`]: every pair of a set of
//! fingerprints, computed in parallel on precomputed z-curves) or from a published similarity
//! matrix ([`PairTable::from_matrix`]).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::curves::Curves;
use crate::error::{Error, Result};
use crate::labels::{Labels, Relation};
use crate::measure::{score, score_same_keys, Measure, Prepared, Scratch};
use crate::nulls::published::SimilarityMatrix;

/// Most models in one table (about 50 million pairs).
pub const MAX_MODELS: usize = 10_000;

/// What is known about one model of a table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// Model id.
    pub id: String,
    /// Root, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// Block root for the family-block view (see [`Labels::block_root`]).
    pub block: String,
    /// Architecture family, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Depth (longest curve, or the labels' `layers`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<usize>,
}

/// One scored pair (indices into [`PairTable::models`], `a < b`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairEntry {
    /// First model.
    pub a: usize,
    /// Second model.
    pub b: usize,
    /// Similarity score.
    pub score: f64,
    /// Lineage relation.
    pub relation: Relation,
}

/// A pair (or, with `b` empty, a whole model) the measure could not score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairFailure {
    /// First model.
    pub a: String,
    /// Second model; empty when the failure concerns model `a` alone (all its pairs).
    pub b: String,
    /// Why.
    pub reason: String,
}

/// Pairwise scores of a set of models.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairTable {
    /// Where the scores come from.
    pub source: String,
    /// The measure, when the scores were computed here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure: Option<Measure>,
    /// The models.
    pub models: Vec<ModelMeta>,
    /// Scored pairs, in row-major upper-triangle order.
    pub pairs: Vec<PairEntry>,
    /// Pairs (or models) that could not be scored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<PairFailure>,
}

fn meta(id: &str, labels: &Labels, family: Option<String>, layers: Option<usize>) -> ModelMeta {
    let label = labels.model(id);
    ModelMeta {
        id: id.to_owned(),
        root: labels.root(id).map(str::to_owned),
        block: labels.block_root(id),
        family: label.and_then(|l| l.family.clone()).or(family),
        layers: label.and_then(|l| l.layers).or(layers),
    }
}

fn check_ids<'a>(ids: impl Iterator<Item = &'a str>) -> Result<usize> {
    let mut seen = std::collections::BTreeSet::new();
    for id in ids {
        if !seen.insert(id) {
            return Err(Error::Labels {
                reason: format!("model id {id:?} appears twice in the set"),
            });
        }
    }
    if seen.len() > MAX_MODELS {
        return Err(Error::TooLarge {
            what: "models in a pair table".into(),
            n: seen.len() as u64,
            max: MAX_MODELS as u64,
        });
    }
    Ok(seen.len())
}

impl PairTable {
    /// Score every pair of `curves` with `measure` (in parallel; the result does not depend on
    /// the thread count) and label each pair from `labels`. A model whose curves cannot be
    /// z-scored, and a pair the measure cannot score, are recorded in `failures`.
    pub fn from_curves(curves: &[Curves], labels: &Labels, measure: Measure) -> Result<Self> {
        check_ids(curves.iter().map(|c| c.model.as_str()))?;
        let prepared: Vec<std::result::Result<Prepared, String>> = curves
            .par_iter()
            .map(|c| Prepared::new(c).map_err(|e| e.to_string()))
            .collect();
        let mut failures: Vec<PairFailure> = prepared
            .iter()
            .zip(curves)
            .filter_map(|(p, c)| {
                p.as_ref().err().map(|reason| PairFailure {
                    a: c.model.clone(),
                    b: String::new(),
                    reason: reason.clone(),
                })
            })
            .collect();
        let n = curves.len();
        let ids: Vec<&str> = curves.iter().map(|c| c.model.as_str()).collect();
        let relations = labels.index(&ids);
        // Models with the same role keys (nearly always all of them) need no key check per
        // pair: number each distinct key list.
        let mut classes: Vec<&[String]> = Vec::new();
        let class: Vec<usize> = prepared
            .iter()
            .map(|p| {
                let keys = p.as_ref().map_or(&[][..], |p| p.keys());
                classes.iter().position(|k| *k == keys).unwrap_or_else(|| {
                    classes.push(keys);
                    classes.len() - 1
                })
            })
            .collect();
        let rows: Vec<(Vec<PairEntry>, Vec<PairFailure>)> = (0..n)
            .into_par_iter()
            .map_init(Scratch::default, |scratch, i| {
                let mut ok = Vec::with_capacity(n - i - 1);
                let mut bad = Vec::new();
                let Ok(pa) = &prepared[i] else {
                    return (ok, bad);
                };
                for j in i + 1..n {
                    let Ok(pb) = &prepared[j] else { continue };
                    let s = if class[i] == class[j] {
                        score_same_keys(pa, pb, measure, scratch)
                    } else {
                        score(pa, pb, measure, scratch)
                    };
                    match s {
                        Ok(s) => ok.push(PairEntry {
                            a: i,
                            b: j,
                            score: s,
                            relation: if labels.is_empty() {
                                Relation::Unknown
                            } else {
                                relations.relation(i, j)
                            },
                        }),
                        Err(e) => bad.push(PairFailure {
                            a: curves[i].model.clone(),
                            b: curves[j].model.clone(),
                            reason: e.to_string(),
                        }),
                    }
                }
                (ok, bad)
            })
            .collect();
        let mut pairs = Vec::with_capacity(n * n.saturating_sub(1) / 2);
        for (ok, bad) in rows {
            pairs.extend(ok);
            failures.extend(bad);
        }
        Ok(PairTable {
            source: format!("{n} fingerprints"),
            measure: Some(measure),
            models: curves
                .iter()
                .map(|c| meta(&c.model, labels, c.family.clone(), Some(c.max_layers())))
                .collect(),
            pairs,
            failures,
        })
    }

    /// The upper triangle of a published similarity matrix, labelled from `labels`.
    pub fn from_matrix(m: &SimilarityMatrix, labels: &Labels) -> Result<Self> {
        check_ids(m.ids().iter().map(String::as_str))?;
        let ids = m.ids();
        let n = ids.len();
        let mut pairs = Vec::with_capacity(n * n.saturating_sub(1) / 2);
        for i in 0..n {
            for j in i + 1..n {
                pairs.push(PairEntry {
                    a: i,
                    b: j,
                    score: m.get(i, j),
                    relation: labels.relation(&ids[i], &ids[j]),
                });
            }
        }
        Ok(PairTable {
            source: m.source().to_owned(),
            measure: None,
            models: ids.iter().map(|id| meta(id, labels, None, None)).collect(),
            pairs,
            failures: Vec::new(),
        })
    }

    /// Check that every pair names two distinct models of the table (`a < b`) and has a finite
    /// score: tables read back from JSON are not trusted.
    pub fn validate(&self) -> Result<()> {
        let n = self.models.len();
        for p in &self.pairs {
            if !(p.a < p.b && p.b < n) {
                return Err(Error::invalid(
                    "pair table",
                    format!("pair ({}, {})", p.a, p.b),
                    &format!("indices must satisfy a < b < {n}"),
                ));
            }
            if !p.score.is_finite() {
                return Err(Error::NonFiniteInput {
                    what: format!("pair table {}", self.source),
                    value: p.score,
                });
            }
        }
        Ok(())
    }

    /// Scores of the pairs with the given relation, in table order.
    pub fn scores(&self, relation: Relation) -> Vec<f64> {
        self.pairs
            .iter()
            .filter(|p| p.relation == relation)
            .map(|p| p.score)
            .collect()
    }

    /// Pair counts: (related, unrelated, unknown).
    pub fn counts(&self) -> (u64, u64, u64) {
        let mut c = (0, 0, 0);
        for p in &self.pairs {
            match p.relation {
                Relation::Related => c.0 += 1,
                Relation::Unrelated => c.1 += 1,
                Relation::Unknown => c.2 += 1,
            }
        }
        c
    }

    /// Index of a model id.
    pub fn index(&self, id: &str) -> Option<usize> {
        self.models.iter().position(|m| m.id == id)
    }

    /// Model ids of a pair.
    pub fn ids(&self, p: &PairEntry) -> (&str, &str) {
        (&self.models[p.a].id, &self.models[p.b].id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::ModelLabel;
    use crate::testutil::curves;

    #[test]
    fn all_pairs_with_labels_and_failures() {
        let cs = vec![
            curves("a", &[("r", &[1.0, 2.0, 4.0, 3.0])]),
            curves("a-ft", &[("r", &[1.0, 2.1, 4.0, 3.0])]),
            curves("b", &[("r", &[4.0, 2.0, 1.0, 3.0])]),
            curves("flat", &[("r", &[1.0, 1.0, 1.0, 1.0])]),
        ];
        let labels = Labels::new(
            [("a", "a"), ("a-ft", "a"), ("b", "b")]
                .into_iter()
                .map(|(m, r)| {
                    (
                        m.to_string(),
                        ModelLabel {
                            root: Some(r.into()),
                            ..Default::default()
                        },
                    )
                })
                .collect(),
            vec![],
        )
        .unwrap();
        let t = PairTable::from_curves(&cs, &labels, Measure::HonestAgi).unwrap();
        assert_eq!(t.pairs.len(), 3);
        assert_eq!(t.counts(), (1, 2, 0));
        assert_eq!(t.failures.len(), 1);
        assert_eq!(t.failures[0].a, "flat");
        assert_eq!(t.models[2].layers, Some(4));
        assert!(t.validate().is_ok());
        let mut bad = t.clone();
        bad.pairs[0].b = 99;
        assert!(bad.validate().is_err());
        let dup = vec![cs[0].clone(), cs[0].clone()];
        assert!(PairTable::from_curves(&dup, &labels, Measure::HonestAgi).is_err());
    }
}

//! One comparison of two models, as `nullprint compare` reports it (the command renders this): the similarity, and its
//! test against every requested null (surrogate nulls of the pair, and a panel when given).
//!
//! The serialised [`Comparison`] carries the similarity's fields at top level (`measure`,
//! `per_role` keyed `attn_q`..., `score`, `rescaled`, `flags`), then `nulls`: one
//! [`NullResult`] per null (`name`, `preserves`, `destroys`, `n`, `seed`, `exceed`, `p`,
//! `log10_p`, `interval`, `mc_error`, ...), and `panel`, the full panel report, when a panel
//! was used.

use serde::{Deserialize, Serialize};

use crate::curves::Curves;
use crate::error::{Error, Result};
use crate::measure::{similarity, MeasureOptions, Prepared, Similarity};
use crate::nulls::panel::{self, ObservedContext, PanelOptions, PanelReport};
use crate::nulls::surrogate::{self, SurrogateKind, SurrogateOptions, DEFAULT_SAMPLES};
use crate::nulls::NullResult;
use crate::rng::child_seed;
use crate::table::PairTable;

/// What to compute.
#[derive(Clone, Debug, PartialEq)]
pub struct CompareOptions {
    /// Measure and flag threshold.
    pub measure: MeasureOptions,
    /// Surrogate nulls to run, in order.
    pub surrogates: Vec<SurrogateKind>,
    /// Monte-Carlo samples per surrogate null.
    pub samples: usize,
    /// Master seed: surrogate null `i` draws from its child stream `i`.
    pub seed: u64,
    /// Thresholds for the panel's false-positive rates.
    pub thresholds: Vec<f64>,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            measure: MeasureOptions::default(),
            surrogates: Vec::new(),
            samples: DEFAULT_SAMPLES,
            seed: 0,
            thresholds: Vec::new(),
        }
    }
}

/// A similarity with its nulls.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The similarity.
    #[serde(flatten)]
    pub similarity: Similarity,
    /// One result per null: the panel's first (when given), then the surrogates in order.
    pub nulls: Vec<NullResult>,
    /// The full panel report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub panel: Option<PanelReport>,
}

/// Compare `a` and `b` and test the score against the requested nulls. A panel must have been
/// scored with the same measure; pairs involving `a` or `b` are left out of its null, and its
/// matching depth stratum is reported.
pub fn compare(
    a: &Curves,
    b: &Curves,
    opts: &CompareOptions,
    panel: Option<&PairTable>,
) -> Result<Comparison> {
    let s = similarity(a, b, &opts.measure)?;
    let mut nulls = Vec::new();
    let mut report = None;
    if let Some(table) = panel {
        if table.measure != Some(opts.measure.measure) {
            return Err(Error::invalid(
                "panel measure",
                table.measure.map_or("none".to_string(), |m| m.to_string()),
                &format!("the panel must be scored with {}", opts.measure.measure),
            ));
        }
        let families = match (&a.family, &b.family) {
            (Some(x), Some(y)) => Some((x.clone(), y.clone())),
            _ => None,
        };
        let r = panel::test(
            table,
            s.score,
            &PanelOptions {
                thresholds: opts.thresholds.clone(),
                context: ObservedContext {
                    layers: Some(s.layers),
                    families,
                    kinds: None,
                },
                exclude: vec![a.model.clone(), b.model.clone()],
                ..Default::default()
            },
        )?;
        nulls.push(r.null.clone());
        report = Some(r);
    }
    if !opts.surrogates.is_empty() {
        let (pa, pb) = (Prepared::new(a)?, Prepared::new(b)?);
        for (i, &kind) in opts.surrogates.iter().enumerate() {
            nulls.push(surrogate::test_prepared(
                &pa,
                &pb,
                &SurrogateOptions {
                    kind,
                    measure: opts.measure.measure,
                    samples: opts.samples,
                    seed: child_seed(opts.seed, i as u64),
                },
            )?);
        }
    }
    Ok(Comparison {
        similarity: s,
        nulls,
        panel: report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Labels;
    use crate::measure::Measure;
    use crate::rng::stream;
    use crate::sim::NullModel;

    #[test]
    fn comparison_json_has_the_documented_keys() {
        let model = NullModel::default();
        let mut r = stream(8, 0);
        let a = model.draw("a", &mut r).unwrap();
        let b = model.draw("b", &mut r).unwrap();
        let panel = model.panel("p", 12, &mut r).unwrap();
        let labels = Labels::singletons(panel.iter().map(|c| c.model.as_str())).unwrap();
        let table = PairTable::from_curves(&panel, &labels, Measure::HonestAgi).unwrap();
        let opts = CompareOptions {
            surrogates: vec![SurrogateKind::Shuffle, SurrogateKind::TrendDct(2)],
            samples: 99,
            seed: 4,
            thresholds: vec![0.7],
            ..Default::default()
        };
        let c = compare(&a, &b, &opts, Some(&table)).unwrap();
        assert_eq!(c.nulls.len(), 3);
        assert_eq!(c.nulls[0].name, "panel");
        assert_eq!(c.nulls[0].n, 66);
        let j = serde_json::to_value(&c).unwrap();
        assert_eq!(j["measure"], "honestagi");
        for role in ["attn_q", "attn_k", "attn_v", "attn_o"] {
            assert!(j["per_role"][role].is_f64(), "{role}");
        }
        assert!(j["score"].is_f64());
        for n in j["nulls"].as_array().unwrap() {
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
                assert!(n.get(k).is_some(), "{k}");
            }
        }
        assert_eq!(j["nulls"][1]["seed"], child_seed(4, 0));
        assert_eq!(j["nulls"][2]["seed"], child_seed(4, 1));
        // Round trip.
        let back: Comparison = serde_json::from_value(j).unwrap();
        assert_eq!(back, c);
        // A panel scored with another measure is refused.
        let other = PairTable::from_curves(&panel, &labels, Measure::Diff).unwrap();
        assert!(compare(&a, &b, &opts, Some(&other)).is_err());
    }
}

//! One comparison of two models, as `nullprint compare` reports it (the command renders this):
//! the answer, the similarity, and its test against every requested null (surrogate nulls of
//! the pair, and a panel of real models when given).
//!
//! With a panel, the pair is first taken out of it (panel members with the same name or the
//! same curves as either model), the panel null tests the score against the real unrelated
//! pairs that remain, and every surrogate null's p is also referred to that null's p-values
//! over the same real unrelated pairs ([`crate::calibrated`]): the raw p carries its measured
//! size next to it, the calibrated p follows it. The [`Answer`] rests on the panel p alone.
//!
//! The serialised [`Comparison`] carries `answer` (the class, the p it rests on, the reason),
//! the similarity's fields at top level (`measure`, `per_role` keyed `attn_q`..., `score`,
//! `rescaled`, `flags`), then `nulls`: one [`NullResult`] per null (`name`, `preserves`,
//! `destroys`, `n`, `seed`, `exceed`, `p`, `log10_p`, `interval`, `mc_error`, `notes`, ...),
//! and `panel`, the full panel report, when a panel was used.

use serde::{Deserialize, Serialize};

use crate::answer::{classify, Answer, Classified};
use crate::calibrated::Reference;
use crate::curves::Curves;
use crate::error::{Error, Result};
use crate::labels::Labels;
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
    /// Level of the answer, and at which each surrogate null's size is stated.
    pub alpha: f64,
}

/// Level of the answer when none is given: the level lineage claims are usually read at.
pub const DEFAULT_ALPHA: f64 = 0.01;

/// Seeds of the surrogate references: surrogate null `i`'s reference pairs draw from child
/// stream `i` of this child of the master seed (the pair itself draws from child `i`).
pub const REFERENCE_SEED_STREAM: u64 = 1 << 32;

/// A panel of real models to test against.
#[derive(Clone, Copy, Debug)]
pub struct PanelInput<'a> {
    /// Their curves (model names are the panel ids).
    pub curves: &'a [Curves],
    /// Their lineage labels.
    pub labels: &'a Labels,
    /// All their pairs, scored with the comparison's measure.
    pub table: &'a PairTable,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            measure: MeasureOptions::default(),
            surrogates: Vec::new(),
            samples: DEFAULT_SAMPLES,
            seed: 0,
            thresholds: Vec::new(),
            alpha: DEFAULT_ALPHA,
        }
    }
}

/// A similarity with its nulls.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The answer and the one number it rests on (the panel p; without a panel: cannot tell).
    pub answer: Classified,
    /// Panel members taken out as the compared models themselves (same name or same curves).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_from_panel: Vec<String>,
    /// The similarity.
    #[serde(flatten)]
    pub similarity: Similarity,
    /// One result per null: the panel's first (when given), then the surrogates in order, each
    /// followed by its calibrated p when a panel was given.
    pub nulls: Vec<NullResult>,
    /// The full panel report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub panel: Option<PanelReport>,
}

/// Compare `a` and `b` and test the score against the requested nulls. A panel must have been
/// scored with the same measure; its members that are `a` or `b` (same name or same curves)
/// are left out, its matching depth stratum is reported, and each surrogate null is calibrated
/// on its unrelated pairs.
pub fn compare(
    a: &Curves,
    b: &Curves,
    opts: &CompareOptions,
    panel: Option<PanelInput<'_>>,
) -> Result<Comparison> {
    if !(opts.alpha > 0.0 && opts.alpha < 1.0) {
        return Err(Error::invalid("alpha", opts.alpha, "must be in (0, 1)"));
    }
    let s = similarity(a, b, &opts.measure)?;
    let mut nulls = Vec::new();
    let mut report = None;
    let mut excluded = Vec::new();
    if let Some(p) = panel {
        let table = p.table;
        if table.measure != Some(opts.measure.measure) {
            return Err(Error::invalid(
                "panel measure",
                table.measure.map_or("none".to_string(), |m| m.to_string()),
                &format!("the panel must be scored with {}", opts.measure.measure),
            ));
        }
        excluded = p
            .curves
            .iter()
            .filter(|m| is_same_model(m, a) || is_same_model(m, b))
            .map(|m| m.model.clone())
            .collect();
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
                exclude: excluded.clone(),
                ..Default::default()
            },
        )?;
        nulls.push(r.null.clone());
        report = Some(r);
    }
    if !opts.surrogates.is_empty() {
        let (pa, pb) = (Prepared::new(a)?, Prepared::new(b)?);
        let exclude: Vec<&str> = excluded.iter().map(String::as_str).collect();
        for (i, &kind) in opts.surrogates.iter().enumerate() {
            let sopts = SurrogateOptions {
                kind,
                measure: opts.measure.measure,
                samples: opts.samples,
                seed: child_seed(opts.seed, i as u64),
            };
            let mut raw = surrogate::test_prepared(&pa, &pb, &sopts)?;
            let calibrated = match panel {
                Some(p) => {
                    let reference = Reference::build(
                        p.curves,
                        p.labels,
                        &SurrogateOptions {
                            seed: child_seed(
                                child_seed(opts.seed, REFERENCE_SEED_STREAM),
                                i as u64,
                            ),
                            ..sopts
                        },
                        &p.table.source,
                    )?;
                    let size = reference.size_at(opts.alpha)?;
                    raw.notes.push(size_note(&size, opts.alpha));
                    Some(reference.calibrate(&raw, &exclude)?)
                }
                None => {
                    raw.notes.push(
                        "uncalibrated: this null's size on real unrelated pairs was not measured \
                         here (give a panel), and surrogate nulls reject real unrelated pairs far \
                         more often than their level"
                            .to_owned(),
                    );
                    None
                }
            };
            nulls.push(raw);
            nulls.extend(calibrated);
        }
    }
    let answer = classify(report.as_ref().map(|r| &r.null), opts.alpha);
    Ok(Comparison {
        answer,
        excluded_from_panel: excluded,
        similarity: s,
        nulls,
        panel: report,
    })
}

/// The measured size of a surrogate null, as the note printed next to its raw p.
fn size_note(size: &crate::pvalue::Rate, alpha: f64) -> String {
    let verdict = if size.rate > alpha {
        "exceeds its level: this raw p overstates the evidence; read the calibrated p below it"
    } else {
        "within its level on this panel"
    };
    format!(
        "size on real unrelated pairs: rejects {}/{} ({:.1}%, 95% CI {:.1}-{:.1}%) at p ≤ {alpha}, \
         which {verdict}",
        size.count,
        size.n,
        100.0 * size.rate,
        100.0 * size.interval.0,
        100.0 * size.interval.1,
    )
}

/// Is panel member `m` the compared model `x`: the same name, or the same curves (the same
/// fingerprint under another file name)?
fn is_same_model(m: &Curves, x: &Curves) -> bool {
    m.model == x.model || (m.roles == x.roles && !m.roles.is_empty())
}

impl Comparison {
    /// The answer's class.
    pub fn class(&self) -> Answer {
        self.answer.answer
    }
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
        let input = PanelInput {
            curves: &panel,
            labels: &labels,
            table: &table,
        };
        let c = compare(&a, &b, &opts, Some(input)).unwrap();
        // panel, then each surrogate followed by its calibrated p.
        assert_eq!(c.nulls.len(), 5);
        assert_eq!(c.nulls[2].name, "shuffle calibrated");
        assert!(c.nulls[1]
            .notes
            .iter()
            .any(|n| n.contains("size on real unrelated pairs")));
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
        assert_eq!(j["nulls"][3]["seed"], child_seed(4, 1));
        assert!(j["answer"]["answer"].is_string());
        // Round trip.
        let back: Comparison = serde_json::from_value(j).unwrap();
        assert_eq!(back, c);
        // A panel scored with another measure is refused.
        let other = PairTable::from_curves(&panel, &labels, Measure::Diff).unwrap();
        let input = PanelInput {
            table: &other,
            ..input
        };
        assert!(compare(&a, &b, &opts, Some(input)).is_err());
    }

    #[test]
    fn a_compared_model_inside_the_panel_is_left_out() {
        let model = NullModel::default();
        let mut r = stream(9, 0);
        let panel = model.panel("p", 8, &mut r).unwrap();
        let labels = Labels::singletons(panel.iter().map(|c| c.model.as_str())).unwrap();
        let table = PairTable::from_curves(&panel, &labels, Measure::HonestAgi).unwrap();
        // The same curves under other names (a file path instead of the panel id).
        let mut a = panel[0].clone();
        a.model = "some/dir/a.json".into();
        let mut b = panel[1].clone();
        b.model = "b.json".into();
        let input = PanelInput {
            curves: &panel,
            labels: &labels,
            table: &table,
        };
        let c = compare(&a, &b, &CompareOptions::default(), Some(input)).unwrap();
        assert_eq!(c.excluded_from_panel.len(), 2);
        // 8 models, 2 left out: 15 pairs remain.
        assert_eq!(c.nulls[0].n, 15);
        // Without a panel the answer abstains.
        let c = compare(&a, &b, &CompareOptions::default(), None).unwrap();
        assert_eq!(c.class(), Answer::CannotTell);
    }
}

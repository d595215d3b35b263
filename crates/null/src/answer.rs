//! The answer to "do these two models share weights?", in one of three classes, and the rule
//! that picks it from one calibrated p-value.
//!
//! The rule rests on a p that is calibrated against real unrelated pairs (a panel null, or a
//! surrogate null referred to its panel distribution by [`crate::calibrated`]); raw surrogate
//! p-values are never used, since on real curves they reject unrelated pairs far more often
//! than their level.
//!
//! * [`Answer::SharedWeights`]: p ≤ α. Fewer than a share α of real unrelated pairs look this
//!   related: the score is consistent with shared weights (not proof of them).
//! * [`Answer::NotDistinguishable`]: p > α and at least one real unrelated pair of the reference is as
//!   extreme: the pair is not distinguishable from models that share no weights.
//! * [`Answer::CannotTell`]: the reference cannot reach α at all (its smallest p, 1/(n + 1), is
//!   above α) and the observed value is beyond all of it; or there is no calibrated reference.
//!   Abstaining is the honest answer: more unrelated pairs are needed.
//!
//! The error rates of this rule on real labelled pairs are measured in the report (unrelated
//! pairs against related pairs and positive controls, each held out from its reference).

use serde::{Deserialize, Serialize};

use crate::nulls::NullResult;

/// One of the three answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// Consistent with shared weights.
    SharedWeights,
    /// Not distinguishable from unrelated models.
    NotDistinguishable,
    /// Cannot tell (abstain).
    CannotTell,
}

impl Answer {
    /// Every answer, in display order.
    pub const ALL: [Answer; 3] = [
        Answer::SharedWeights,
        Answer::NotDistinguishable,
        Answer::CannotTell,
    ];

    /// The answer in words.
    pub fn phrase(self) -> &'static str {
        match self {
            Answer::SharedWeights => "consistent with shared weights",
            Answer::NotDistinguishable => "not distinguishable from unrelated models",
            Answer::CannotTell => "cannot tell",
        }
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.phrase())
    }
}

/// An answer with the one number it rests on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Classified {
    /// The answer.
    pub answer: Answer,
    /// The level it was decided at.
    pub alpha: f64,
    /// The null whose calibrated p decided it (`None`: no calibrated reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rests_on: Option<String>,
    /// That p.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p: Option<f64>,
    /// Its log10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log10_p: Option<f64>,
    /// Reference pairs at least as extreme, and the reference's size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exceed_of: Option<(u64, u64)>,
    /// Why, in one sentence.
    pub reason: String,
}

/// Decide the answer from a calibrated null result at level `alpha`.
pub fn classify(calibrated: Option<&NullResult>, alpha: f64) -> Classified {
    let Some(r) = calibrated else {
        return Classified {
            answer: Answer::CannotTell,
            alpha,
            rests_on: None,
            p: None,
            log10_p: None,
            exceed_of: None,
            reason: "no reference of real unrelated pairs was given, so no p-value here is \
                     calibrated"
                .to_owned(),
        };
    };
    let min_p = 1.0 / (r.n as f64 + 1.0);
    let (answer, reason) = if r.p <= alpha {
        (
            Answer::SharedWeights,
            format!(
                "{} of {} real unrelated pairs are at least as extreme (p = {} ≤ α = {alpha})",
                r.exceed,
                r.n,
                fmt_p(r.p)
            ),
        )
    } else if r.exceed == 0 && min_p > alpha {
        (
            Answer::CannotTell,
            format!(
                "beyond all {} real unrelated pairs of the reference, but with {} pairs the \
                 smallest possible p is {} > α = {alpha}: more unrelated pairs are needed",
                r.n,
                r.n,
                fmt_p(min_p)
            ),
        )
    } else {
        (
            Answer::NotDistinguishable,
            format!(
                "{} of {} real unrelated pairs are at least as extreme (p = {} > α = {alpha})",
                r.exceed,
                r.n,
                fmt_p(r.p)
            ),
        )
    };
    Classified {
        answer,
        alpha,
        rests_on: Some(r.name.clone()),
        p: Some(r.p),
        log10_p: Some(r.log10_p),
        exceed_of: Some((r.exceed, r.n)),
        reason,
    }
}

/// Three significant digits (the reason sentence is plain text; reports format p themselves).
fn fmt_p(p: f64) -> String {
    if p >= 1e-3 {
        format!("{p:.3}")
    } else {
        format!("{p:.2e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nulls::{NullInfo, Sampling};

    fn result(exceed: u64, n: u64) -> NullResult {
        let info = NullInfo {
            name: "panel".into(),
            preserves: String::new(),
            destroys: String::new(),
        };
        NullResult::from_counts(&info, 0.9, exceed, n, None, Sampling::Panel).unwrap()
    }

    #[test]
    fn the_three_answers() {
        // 0 of 199: p = 0.005 ≤ 0.01.
        assert_eq!(
            classify(Some(&result(0, 199)), 0.01).answer,
            Answer::SharedWeights
        );
        // 0 of 42: p = 1/43 > 0.01, and 0.01 cannot be reached.
        let c = classify(Some(&result(0, 42)), 0.01);
        assert_eq!(c.answer, Answer::CannotTell);
        assert!(c.reason.contains("more unrelated pairs"), "{}", c.reason);
        // 3 of 42 reach it.
        let c = classify(Some(&result(3, 42)), 0.01);
        assert_eq!(c.answer, Answer::NotDistinguishable);
        assert_eq!(c.exceed_of, Some((3, 42)));
        // 0 of 42 at α = 0.05: p = 0.023 ≤ 0.05.
        assert_eq!(
            classify(Some(&result(0, 42)), 0.05).answer,
            Answer::SharedWeights
        );
        // No reference: abstain.
        assert_eq!(classify(None, 0.01).answer, Answer::CannotTell);
    }

    #[test]
    fn answers_serialise_in_snake_case() {
        let j = serde_json::to_value(classify(Some(&result(3, 42)), 0.01)).unwrap();
        assert_eq!(j["answer"], "not_distinguishable");
        assert_eq!(j["rests_on"], "panel");
    }
}

//! The verdict's wording: what the claim was, what the nulls say, what they cannot say, and the
//! one-line headline the command prints. Every number is read from the [`Analysis`]; the rules
//! that decide which sentences appear are in [`crate::policy`].

use std::collections::{BTreeMap, BTreeSet};

use null::answer::Answer;
use null::nulls::surrogate::SurrogateKind;
use null::nulls::NullResult;
use report::model as rm;

use crate::analysis::Analysis;
use crate::assemble::pair_label;
use crate::policy;
use crate::positive_controls::Scored;

/// A p-value in prose, in the one format every table of the report uses.
pub fn p(r: &NullResult) -> String {
    report::fmt::p_value(Some(r.p), Some(r.log10_p))
}

/// A library note as a sentence: capitalised, one final period.
pub fn sentence(note: &str) -> String {
    let mut chars = note.chars();
    match chars.next() {
        Some(first) => format!(
            "{}{}.",
            first.to_uppercase(),
            chars.as_str().trim_end_matches('.')
        ),
        None => String::new(),
    }
}

/// The smallest and largest of some scores.
pub fn min_max(v: impl Iterator<Item = f64>) -> (f64, f64) {
    v.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    })
}

/// One line for the terminal: the observed value against the panel null.
pub fn headline(a: &Analysis) -> String {
    let n = &a.panel.null;
    format!(
        "{}: observed {:.3} vs {} unrelated real pairs: {} at or above (p = {:.4}, 95% CI {:.4}-{:.4}); median {:.3}, max {:.3} ({} vs {})",
        a.exp.experiment.id,
        a.observed,
        n.n,
        n.exceed,
        n.p,
        n.interval.0,
        n.interval.1,
        a.panel.summary.median,
        a.panel.summary.max.score,
        a.panel.summary.max.a,
        a.panel.summary.max.b
    )
}

/// One caution for every surrogate null that is liberal on real curves (name, rejected, pairs
/// at [`policy::SIZE_LEVEL`]), or nothing when none is.
pub fn caution_sentence(liberal: &[(String, u64, u64)]) -> Option<String> {
    if liberal.is_empty() {
        return None;
    }
    let names: Vec<&str> = liberal.iter().map(|(n, _, _)| n.as_str()).collect();
    let counts: Vec<String> = liberal
        .iter()
        .map(|(n, k, total)| format!("{n} {k}/{total}"))
        .collect();
    Some(format!(
        " Caution: the {} {} reject{} real unrelated pairs at p ≤ {} ({}), so on real curves {} p-values are far too small and cannot tell related from unrelated models.",
        join_and(&names),
        if names.len() == 1 { "null" } else { "nulls" },
        if names.len() == 1 { "s" } else { "" },
        policy::SIZE_LEVEL,
        counts.join(", "),
        if names.len() == 1 { "its" } else { "their" },
    ))
}

/// The sentence a panel too small to reject at `alpha` needs, or nothing.
pub fn min_p_sentence(n: u64, alpha: f64) -> Option<String> {
    (!policy::panel_can_reject(n, alpha)).then(|| {
        format!(
            " With {n} null pairs the panel's smallest attainable p is {:.3}, above α = {alpha}: the panel alone cannot reject at that level, whatever the score.",
            policy::min_attainable_p(n)
        )
    })
}

fn join_and(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).into(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The surrogate nulls that are liberal on the real panel.
fn liberal_nulls(a: &Analysis) -> Vec<(String, u64, u64)> {
    a.surrogate_size
        .iter()
        .filter_map(|cal| {
            let r = cal
                .rejection
                .iter()
                .find(|r| r.threshold == policy::SIZE_LEVEL)?;
            policy::is_liberal(r.rate).then(|| (cal.null.clone(), r.count, r.n))
        })
        .collect()
}

/// The verdict box.
pub fn verdict(a: &Analysis, headline: Option<&str>) -> rm::Verdict {
    let exp = &a.exp;
    let n = &a.panel.null;
    let claimed = match (&exp.claim.model_a, &exp.claim.model_b) {
        (Some(x), Some(y)) => format!(
            "{x} and {y} were reported to have a fingerprint similarity of {} ({}), read as evidence that {}",
            exp.claim.value,
            a.measure.name(),
            exp.claim.conclusion.trim_end_matches('.')
        ),
        _ => format!("{} Claimed: {}", exp.claim.description, exp.claim.conclusion),
    };
    let fpr: Vec<String> = a
        .panel
        .fpr
        .iter()
        .map(|r| {
            format!(
                "{}/{} unrelated pairs ({:.0}%, 95% CI {:.0}-{:.0}%) reach {}",
                r.count,
                r.n,
                100.0 * r.rate,
                100.0 * r.interval.0,
                100.0 * r.interval.1,
                r.threshold
            )
        })
        .collect();
    let roots: BTreeSet<&str> = a.members.iter().map(|m| m.entry.root.as_str()).collect();
    let mut says = format!(
        "Against {} pairs of real models that share no weights (panel of {} models from {} roots), {} reach the {} value {:.3}: p = {} (Clopper-Pearson 95% CI of the exceedance rate {:.3}-{:.3}). {}. The unrelated pairs' median is {:.3}, their 95th percentile {:.3}, their maximum {:.3} ({} vs {}).",
        n.n,
        a.members.len(),
        roots.len(),
        n.exceed,
        if a.recomputed.is_some() { "recomputed" } else { "claimed" },
        a.observed,
        p(n),
        n.interval.0,
        n.interval.1,
        fpr.join("; "),
        a.panel.summary.median,
        a.panel.summary.p95,
        a.panel.summary.max.score,
        a.panel.summary.max.a,
        a.panel.summary.max.b
    );
    if let Some(s) = a.surrogates.iter().find(|s| s.kind == SurrogateKind::TREND) {
        let liberal = liberal_nulls(a)
            .iter()
            .any(|(name, _, _)| *name == s.kind.to_string());
        says.push_str(&format!(
            " A surrogate null that keeps each curve's depth trend and autocorrelation ({}, {} draws) gives the comparable real pair ({}) a score of {:.3} with p = {}, and puts the claimed {} at p = {}{}.",
            s.kind,
            s.of_pair.n,
            pair_label(a),
            s.pair_score,
            p(&s.of_pair),
            exp.claim.value,
            p(&s.of_claim),
            if liberal { " (p-values of a null that is not calibrated on real curves: see the caution below)" } else { "" }
        ));
    }
    if let Some(c) = caution_sentence(&liberal_nulls(a)) {
        says.push_str(&c);
    }
    if let Some(s) = min_p_sentence(n.n, exp.nulls.alpha) {
        says.push_str(&s);
    }
    says.push_str(&controls_sentence(
        &a.real_controls,
        &exp.nulls.thresholds,
        exp.claim.value,
    ));
    let detected: Vec<String> = a
        .power
        .iter()
        .filter(|r| r.measure == a.measure && r.null != "panel")
        .map(|r| format!("{} {:.2}", r.derivation_name, r.power))
        .collect();
    if !detected.is_empty() {
        says.push_str(&format!(
            " Simulated positive controls derived from a real fingerprint, tested with the trend-preserving surrogate null at α = {}, are detected with power: {} (read against that null's rejection rate on unrelated pairs, above).",
            exp.nulls.alpha,
            detected.join(", ")
        ));
    }
    let same_depth = a
        .panel
        .strata
        .iter()
        .find(|s| s.name == "same depth")
        .map(|s| s.result.n)
        .unwrap_or(0);
    let depth_note = match exp.claim.layers {
        Some([la, lb]) if la == lb => format!(
            " The claimed models have the same depth ({la} layers). A published matrix of this similarity finds that unrelated same-depth decoders score far higher than pairs of different depth (see the published figures); this panel has only {same_depth} unrelated same-depth {}, so it cannot measure that stratum itself.",
            pairs_word(same_depth)
        ),
        _ => String::new(),
    };
    let depth_note = depth_note
        + &published_sentence(a)
        + &a.lab
            .as_ref()
            .and_then(crate::seed_lab::power_sentence)
            .unwrap_or_default();
    let cannot = format!(
        "{}{depth_note} The panel is small ({} pairs) and its pairs are not independent (a model enters many pairs), so the p-value is coarse (its smallest possible value is {:.3}) and its interval understates the uncertainty. A score below the null's bulk would not prove independence, and a score within it does not prove it either: a per-tensor std is blind to permutations and most weight edits, so derived models can score low and unrelated ones high. Only weight-level tests (`nullprint trace`) can decide lineage; this report tests whether the published number is evidence at all.",
        if a.recomputed.is_some() {
            "The claimed models were fingerprinted from the weights on this machine."
        } else {
            "The claimed models' weights are not public here: their curves are not recomputed and the claimed value is taken as published."
        },
        n.n,
        policy::min_attainable_p(n.n)
    );
    rm::Verdict {
        answer: answer_sentence(a),
        findings: findings(a, headline),
        figure: headline.map(String::from),
        claimed,
        nulls_say: says,
        cannot_say: cannot,
    }
}

/// The answer in one sentence: its class, then the number it rests on.
pub fn answer_sentence(a: &Analysis) -> String {
    let c = &a.answer;
    let n = &a.panel.null;
    let value = if a.recomputed.is_some() {
        format!("the recomputed {:.3}", a.observed)
    } else {
        format!("the claimed {}", a.exp.claim.value)
    };
    let rest = match c.answer {
        Answer::CannotTell => format!(
            "{value} is above all {} real unrelated pairs of the panel, but {} pairs cannot reach α = {} (the smallest p they can give is {:.3})",
            n.n,
            n.n,
            c.alpha,
            policy::min_attainable_p(n.n)
        ),
        _ => format!(
            "{} of {} real unrelated pairs of the panel reach {value} (p = {}, α = {})",
            n.exceed,
            n.n,
            p(n),
            c.alpha
        ),
    };
    let same_depth = same_depth_pairs(a);
    let depth = match a.exp.claim.layers {
        Some([la, lb]) if la == lb && !policy::panel_can_reject(same_depth, c.alpha) => format!(
            "; nor does the panel measure the claim's stratum: it has {same_depth} unrelated {} of equal depth, the claim compares {la} vs {lb} layers",
            pairs_word(same_depth)
        ),
        _ => String::new(),
    };
    format!("{}: {rest}{depth}.", capitalised(c.answer.phrase()))
}

/// Unrelated panel pairs of equal depth.
pub(crate) fn same_depth_pairs(a: &Analysis) -> u64 {
    a.panel
        .strata
        .iter()
        .find(|s| s.name == "same depth")
        .map_or(0, |s| s.result.n)
}

/// "pair" or "pairs".
fn pairs_word(n: u64) -> &'static str {
    if n == 1 {
        "pair"
    } else {
        "pairs"
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// At most [`rm::MAX_FINDINGS`] findings, each with its number and the table or figure
/// behind it.
pub fn findings(a: &Analysis, headline: Option<&str>) -> Vec<rm::Finding> {
    let mut out = Vec::new();
    let n = &a.panel.null;
    let sm = &a.panel.summary;
    out.push(finding(
        format!(
            "Chance: {} of {} pairs of real models that share no weights reach {:.3}; their median is {:.3}, their highest {:.3} ({} vs {}).",
            n.exceed, n.n, a.observed, sm.median, sm.max.score, sm.max.a, sm.max.b
        ),
        "fig-null-distributions",
        "null distributions",
    ));
    if let Some([la, lb]) = a.exp.claim.layers.filter(|l| l[0] == l[1]) {
        let published_same_depth = a
            .exp
            .published
            .iter()
            .find(|p| p.label.contains("same depth") && p.label.contains("median"));
        let own = same_depth_pairs(a);
        let mut text = format!(
            "Depth: the claim compares two {la}-layer models; this panel has {own} unrelated {} of equal depth.",
            pairs_word(own)
        );
        let _ = lb;
        if let (Some((name, r)), crate::analysis::PublishedOutcome::Present(study)) =
            (matched_published(a), &a.published_panel)
        {
            let none_at_claim = study.curves_by_depth.get(&la).copied().unwrap_or(0) < 2;
            text.push_str(&format!(
                " Published panel (GraphNet), stratum \"{name}\": {}/{} unrelated pairs reach {:.3} ({:.2}%){}.",
                r.exceed,
                r.n,
                a.observed,
                100.0 * r.exceed as f64 / r.n as f64,
                if none_at_claim {
                    format!(", none at {la} layers")
                } else {
                    String::new()
                }
            ));
        } else if let Some(pb) = published_same_depth {
            text.push_str(&format!(
                " Published: unrelated same-depth decoders have a median of {} in TensorLock's matrix, so equal depth alone raises the score.",
                pb.value
            ));
        }
        let lab = a
            .lab
            .as_ref()
            .and_then(|l| crate::seed_lab::depth_sentence(l, la));
        if let Some(lab) = &lab {
            text.push(' ');
            text.push_str(lab);
        }
        out.push(match (headline, lab) {
            (Some(h), _) => finding(text, &format!("fig-{h}"), "Figure 1"),
            (None, Some(_)) => finding(text, "table-seed-lab-null", "seed lab"),
            (None, None) => finding(text, "published", "published figures"),
        });
    }
    if let Some(s) = a.surrogates.iter().find(|s| s.kind == SurrogateKind::TREND) {
        let size = a
            .surrogate_size
            .iter()
            .find(|c| c.null == s.kind.to_string())
            .and_then(|c| c.rejection_at(policy::SIZE_LEVEL));
        let cal = a
            .calibrated
            .iter()
            .find(|c| c.kind == s.kind)
            .and_then(|c| c.of_pair.as_ref());
        if let (Some(size), Some(cal)) = (size, cal) {
            out.push(finding(
                format!(
                    "Surrogates: the {} null gives the comparable real pair p = {}, but it rejects {}/{} real unrelated pairs at p ≤ {}; calibrated on them, its p is {} (n = {}).",
                    s.kind,
                    p(&s.of_pair),
                    size.count,
                    size.n,
                    policy::SIZE_LEVEL,
                    p(cal),
                    cal.n
                ),
                "table-calibrated-surrogates",
                "calibrated p-values",
            ));
        }
    }
    if !a.real_controls.is_empty() {
        let (lo, hi) = min_max(a.real_controls.iter().map(|s| s.scores[0].1));
        let reach = a
            .real_controls
            .iter()
            .filter(|s| s.scores[0].1 >= a.exp.claim.value)
            .count();
        out.push(finding(
            format!(
                "Derived models: {} checkpoints derived from real weights score {lo:.3}–{hi:.3} against their bases; {reach} of them reach {}.",
                a.real_controls.len(),
                a.exp.claim.value
            ),
            "table-positive-controls",
            "positive controls",
        ));
    }
    if let Some(u) = a
        .answer_rates
        .iter()
        .find(|g| g.group == crate::answers::UNRELATED)
    {
        let accused = u.share(Answer::SharedWeights);
        let mut text = format!(
            "Error rates of this answer on real pairs, each held out: {}/{} unrelated pairs called consistent with shared weights (95% CI {:.0}–{:.0}%)",
            accused.count,
            accused.n,
            100.0 * accused.interval.0,
            100.0 * accused.interval.1
        );
        let positives: Vec<String> = a
            .answer_rates
            .iter()
            .filter(|g| g.share_weights)
            .map(|g| {
                let hit = g.share(Answer::SharedWeights);
                let abstain = g.share(Answer::CannotTell);
                format!(
                    "{}/{} {} detected, {} abstained",
                    hit.count, hit.n, g.group, abstain.count
                )
            })
            .collect();
        if !positives.is_empty() {
            text.push_str(&format!("; {}", positives.join("; ")));
        }
        text.push('.');
        out.push(finding(text, "table-answer-rates", "answer rates"));
    }
    out.truncate(rm::MAX_FINDINGS);
    out
}

pub(crate) fn finding(text: String, anchor: &str, label: &str) -> rm::Finding {
    rm::Finding {
        text,
        anchor: Some(anchor.to_owned()),
        anchor_label: Some(label.to_owned()),
    }
}

/// The published panel's stratum matching the claim and its test, when the panel was used.
fn matched_published(a: &Analysis) -> Option<(&str, &null::nulls::NullResult)> {
    let crate::analysis::PublishedOutcome::Present(study) = &a.published_panel else {
        return None;
    };
    let p = &study.panel;
    let name = p.matched_stratum.as_ref()?;
    let s = p.strata.iter().find(|s| &s.name == name)?;
    Some((&s.name, &s.result))
}

/// What the published panel's stratum matching the claim shows, when the panel was used.
fn published_sentence(a: &Analysis) -> String {
    let crate::analysis::PublishedOutcome::Present(study) = &a.published_panel else {
        return String::new();
    };
    let p = &study.panel;
    let matched = matched_published(a);
    let claim_depth = a.exp.claim.layers.map(|l| l[0].max(l[1]));
    let at_claim_depth = study
        .depth_model
        .points
        .iter()
        .any(|pt| Some(pt.depth) == claim_depth);
    let mut out = match matched {
        Some((name, r)) => format!(
            " In the published panel ({} unrelated pairs), the stratum closest to the claim is \"{}\"{}: {} of {} unrelated pairs reach the observed score (p = {:.2e}).",
            p.null.n,
            name,
            match (claim_depth, at_claim_depth) {
                (Some(d), false) => format!(" (equal depths, but none at the claim's {d} layers)"),
                _ => String::new(),
            },
            r.exceed,
            r.n,
            r.p
        ),
        None => " The published panel has no stratum matching the claim.".into(),
    };
    if let Some(r) = study
        .depth_model
        .rates
        .iter()
        .find(|r| r.threshold == 0.927)
    {
        out.push_str(&format!(
            " A model-based extrapolation of the same-depth rate at or above 0.927 to {} layers gives {:.2} (95% interval {:.2}–{:.2}), leaving each depth out, it misses by {:.2} on average and {} of {} held-out depths fall inside their interval{}",
            r.depth,
            r.rate,
            r.interval.0,
            r.interval.1,
            r.lodo.mean_abs_error,
            r.lodo.covered,
            r.lodo.folds.len(),
            if r.lodo.covered * 2 < r.lodo.folds.len() {
                ", so the extrapolation fails its own check: a guess, not a measurement."
            } else {
                ": a model-based estimate, not a measurement."
            }
        ));
    }
    out
}

/// What the positive controls built from real weights show, computed.
fn controls_sentence(scored: &[Scored], thresholds: &[f64], claimed: f64) -> String {
    if scored.is_empty() {
        return String::new();
    }
    let mut by_kind: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for s in scored {
        by_kind
            .entry(s.control.recipe.kind())
            .or_default()
            .push(s.scores[0].1);
    }
    let parts: Vec<String> = ["noise", "upcycle", "insert", "prune"]
        .iter()
        .filter_map(|k| {
            let v = by_kind.get(k)?;
            let (lo, hi) = min_max(v.iter().copied());
            let what = match *k {
                "noise" => "fine-tuning noise",
                "upcycle" => "dense → MoE upcycling",
                "insert" => "inserted (duplicated) layers",
                _ => "pruned layers",
            };
            Some(format!("{what} {lo:.3}–{hi:.3} (n = {})", v.len()))
        })
        .collect();
    let below = scored.iter().filter(|s| s.scores[0].1 < claimed).count();
    let rules: Vec<String> = thresholds
        .iter()
        .map(|&t| {
            let hit = scored.iter().filter(|s| s.scores[0].1 >= t).count();
            format!("{hit}/{} reach {t}", scored.len())
        })
        .collect();
    let bases: BTreeSet<&str> = scored.iter().map(|s| s.control.base.as_str()).collect();
    format!(
        " Positive controls built from real weights ({} checkpoints derived from {} real models: {}) score against their bases: {}. {} of them score below the claimed {claimed}; {}. These are edits nullprint can make (Gaussian noise, copies, cuts); long continued training changes weights in ways they do not model, so they show that derivation can be detected, not how far real continued training moves a fingerprint.",
        scored.len(),
        bases.len(),
        bases.iter().copied().collect::<Vec<_>>().join(", "),
        parts.join("; "),
        below,
        rules.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liberal_nulls_share_one_caution() {
        assert_eq!(caution_sentence(&[]), None);
        let one = caution_sentence(&[("shuffle".into(), 11, 42)]).unwrap();
        assert!(one.contains("the shuffle null rejects"), "{one}");
        assert!(
            one.contains("shuffle 11/42") && one.contains("its p-values"),
            "{one}"
        );
        let three = caution_sentence(&[
            ("shuffle".into(), 11, 42),
            ("block".into(), 6, 42),
            ("trend-dct".into(), 5, 42),
        ])
        .unwrap();
        assert_eq!(three.matches("Caution").count(), 1, "{three}");
        assert!(
            three.contains("the shuffle, block and trend-dct nulls reject"),
            "{three}"
        );
        assert!(three.contains("block 6/42"), "{three}");
    }

    #[test]
    fn a_panel_that_cannot_reject_says_so() {
        let s = min_p_sentence(42, 0.01).unwrap();
        assert!(s.contains("0.023") && s.contains("cannot reject"), "{s}");
        assert_eq!(min_p_sentence(199, 0.01), None);
    }

    #[test]
    fn notes_become_sentences() {
        assert_eq!(
            sentence("only 1 null pair in this stratum."),
            "Only 1 null pair in this stratum."
        );
        assert_eq!(sentence(""), "");
    }

    #[test]
    fn prose_p_values_use_the_table_format() {
        let info = null::NullInfo {
            name: "x".into(),
            preserves: "a".into(),
            destroys: "b".into(),
        };
        let draws: Vec<f64> = (0..9999).map(|i| i as f64 / 10_000.0).collect();
        let r = NullResult::from_scores(
            &info,
            2.0,
            &draws,
            Some(1),
            null::nulls::Sampling::MonteCarlo,
        )
        .unwrap();
        assert_eq!(p(&r), report::fmt::p_value(Some(r.p), Some(r.log10_p)));
        assert!(p(&r).contains("log₁₀"), "{}", p(&r));
    }
}

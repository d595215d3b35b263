//! Lineage labels for a published panel, by written rules.
//!
//! A published table says which model each curve belongs to, not how models descend from each
//! other. Each rule below gives a curve's model a root, or declines; the first rule that decides
//! wins, and a model no rule decides has an unknown root, so all its pairs are `unknown` and
//! stay out of the null. Two curves of one model always share its root (they are one set of
//! weights: encoder, decoder and cross-attention of one checkpoint are not independent).
//!
//! The rules, in order ([`Rule`]):
//! 1. **opus-mt language pairs are separate trainings (assumption).** Helsinki-NLP's opus-mt
//!    models are trained with one Marian recipe, one model per language pair, each from scratch
//!    according to the OPUS-MT description; nothing in the table proves it, so this is an
//!    assumption and is reported as one. Root = the sample (GraphNet's `hf_model_name` is its own
//!    match and often names the reverse pair; the sample is the identity used).
//! 2. **Sizes of one family pretrained separately do not share a root.** Google's T5-efficient
//!    variants (Tay et al. 2021, "Scale Efficiently") were each pretrained from scratch:
//!    root = the hub name.
//! 3. **Fine-tunes of one base share its root.** SigLIP / SigLIP 2 checkpoints of one size and
//!    patch that differ only in input resolution continue one base's training: root = family,
//!    size and patch (`google/siglip2-so400m-patch16`). Different sizes, patches and the two
//!    families are taken as separate pretraining runs.
//! 4. Anything else: unknown.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::labels::{Labels, ModelLabel, Relation};
use crate::published_panel::PublishedCurve;

/// The rule that gave a model its root (or declined).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Rule 1 (an assumption): each opus-mt language pair trained from scratch.
    OpusMtPairAssumed,
    /// Rule 2: sizes of one family pretrained separately.
    SeparateSizes,
    /// Rule 3: resolution variants fine-tuned from one base share its root.
    FineTunesShareBase,
    /// No rule decides: root unknown.
    Unknown,
}

impl Rule {
    /// The rule as written in the report.
    pub fn text(&self) -> &'static str {
        match self {
            Rule::OpusMtPairAssumed => {
                "opus-mt: each language pair trained separately with one recipe (an assumption)"
            }
            Rule::SeparateSizes => {
                "T5-efficient: sizes of one family pretrained separately do not share a root"
            }
            Rule::FineTunesShareBase => {
                "SigLIP/SigLIP 2: resolution variants fine-tuned from one base share its root"
            }
            Rule::Unknown => "no rule decides: unknown",
        }
    }
}

/// The root a rule gives one model (`None` with [`Rule::Unknown`]).
pub fn root_of(model: &str, hub_name: Option<&str>) -> (Rule, Option<String>) {
    let base = model.rsplit('/').next().unwrap_or(model);
    if base.starts_with("opus-mt-") {
        return (Rule::OpusMtPairAssumed, Some(model.to_owned()));
    }
    let hub = hub_name.unwrap_or("");
    if hub.starts_with("google/t5-efficient-") {
        return (Rule::SeparateSizes, Some(hub.to_owned()));
    }
    if let Some(rest) = hub
        .strip_prefix("google/siglip2-")
        .map(|r| ("siglip2", r))
        .or_else(|| hub.strip_prefix("google/siglip-").map(|r| ("siglip", r)))
    {
        let (family, rest) = rest;
        // size[-opt]-patchN-resolution[-suffix]
        if let Some(i) = rest.find("-patch") {
            let after = &rest[i + 1..];
            let patch = after.split('-').next().unwrap_or(after);
            return (
                Rule::FineTunesShareBase,
                Some(format!("google/{family}-{}-{patch}", &rest[..i])),
            );
        }
    }
    (Rule::Unknown, None)
}

/// Labels of a published panel and how many pairs each rule labelled.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleLabels {
    /// The labels (curve ids as model names).
    pub labels: Labels,
    /// Rule of each curve id.
    pub rule: BTreeMap<String, Rule>,
}

/// Pair counts per (rule of a, rule of b, relation), rules ordered.
pub type RuleCounts = BTreeMap<(Rule, Rule, Relation), u64>;

/// Label every curve of a published panel by the rules.
pub fn label(curves: &[PublishedCurve]) -> Result<RuleLabels> {
    let mut models = BTreeMap::new();
    let mut rule = BTreeMap::new();
    // Curves of a model no rule decides: related to each other, unknown to everything else.
    let mut unknown_models: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for c in curves {
        let (r, root) = root_of(&c.model, c.hub_name.as_deref());
        rule.insert(c.curves.model.clone(), r);
        if root.is_none() {
            unknown_models
                .entry(c.model.as_str())
                .or_default()
                .push(c.curves.model.as_str());
        }
        let label = ModelLabel {
            root,
            layers: Some(c.layers()),
            ..Default::default()
        };
        models.insert(c.curves.model.clone(), label);
    }
    let mut pairs = Vec::new();
    for ids in unknown_models.values() {
        for (i, a) in ids.iter().enumerate() {
            for b in &ids[i + 1..] {
                pairs.push((a.to_string(), b.to_string(), Relation::Related));
            }
        }
    }
    Ok(RuleLabels {
        labels: Labels::new(models, pairs)?,
        rule,
    })
}

/// Count the pairs of `ids` by the two rules that decided them and the resulting relation.
pub fn count_pairs(rl: &RuleLabels, ids: &[&str]) -> RuleCounts {
    let index = rl.labels.index(ids);
    let rules: Vec<Rule> = ids
        .iter()
        .map(|id| rl.rule.get(*id).copied().unwrap_or(Rule::Unknown))
        .collect();
    let mut out = RuleCounts::new();
    for i in 0..ids.len() {
        for j in i + 1..ids.len() {
            let (a, b) = (rules[i].min(rules[j]), rules[i].max(rules[j]));
            *out.entry((a, b, index.relation(i, j))).or_default() += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::curves::Curves;
    use crate::published_panel::Kind;

    fn pc(model: &str, hub: Option<&str>, stack: &str) -> PublishedCurve {
        PublishedCurve {
            curves: Curves::new(
                format!("{model}:{stack}"),
                BTreeMap::from([("attn_q".to_string(), vec![1.0, 2.0, 4.0])]),
            )
            .unwrap(),
            model: model.into(),
            hub_name: hub.map(String::from),
            stack: stack.into(),
            kind: Kind::Encoder,
        }
    }

    #[test]
    fn rules_decide_roots() {
        assert_eq!(
            root_of("t/opus-mt-en-de", Some("Helsinki-NLP/opus-mt-de-en")),
            (Rule::OpusMtPairAssumed, Some("t/opus-mt-en-de".into()))
        );
        assert_eq!(
            root_of("t/x", Some("google/siglip2-so400m-patch16-384")).1,
            Some("google/siglip2-so400m-patch16".into())
        );
        assert_eq!(
            root_of("t/x", Some("google/siglip-so400m-patch16-256-i18n")).1,
            Some("google/siglip-so400m-patch16".into())
        );
        assert_eq!(
            root_of("t/x", Some("google/t5-efficient-base-nl48")).0,
            Rule::SeparateSizes
        );
        assert_eq!(root_of("t/bert", Some("google/bert")).0, Rule::Unknown);
    }

    #[test]
    fn relations_and_counts() {
        let cs = vec![
            pc("t/opus-mt-en-de", None, "enc"),
            pc("t/opus-mt-en-de", None, "dec"),
            pc("t/opus-mt-en-fr", None, "enc"),
            pc("t/bert", None, "enc"),
            pc("t/bert", None, "dec"),
            pc("t/a", Some("google/siglip2-base-patch16-256"), "v"),
            pc("t/b", Some("google/siglip2-base-patch16-384"), "v"),
        ];
        let rl = label(&cs).unwrap();
        let l = &rl.labels;
        let id = |i: usize| cs[i].curves.model.as_str();
        assert_eq!(l.relation(id(0), id(1)), Relation::Related);
        assert_eq!(l.relation(id(0), id(2)), Relation::Unrelated);
        assert_eq!(l.relation(id(0), id(3)), Relation::Unknown);
        assert_eq!(l.relation(id(3), id(4)), Relation::Related);
        assert_eq!(l.relation(id(5), id(6)), Relation::Related);
        assert_eq!(l.relation(id(2), id(6)), Relation::Unrelated);
        let ids: Vec<&str> = cs.iter().map(|c| c.curves.model.as_str()).collect();
        let counts = count_pairs(&rl, &ids);
        assert_eq!(counts.values().sum::<u64>(), 21);
        assert_eq!(
            counts[&(
                Rule::OpusMtPairAssumed,
                Rule::OpusMtPairAssumed,
                Relation::Unrelated
            )],
            2
        );
    }
}

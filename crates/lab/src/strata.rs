//! A lab's fingerprints as labelled strata for the analysis: the same-recipe null per family
//! (every pair of independently seeded models: scores, and the share at or above a threshold
//! with its Clopper–Pearson 95% interval) and the derived families' power curves (score against
//! the base vs continued-training steps).
//!
//! The pairs of one family share models (each of k models is in k − 1 pairs), so they are not
//! independent draws; the interval treats them as if they were, and the number of models is
//! reported next to the number of pairs so a reader can judge the effective sample size.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use null::pvalue::{rates_at_or_above, Rate};
use null::{similarity, CurveOptions, Curves, MeasureOptions};
use serde::Serialize;

use crate::error::{io, Error, Result};
use crate::record::Record;
use crate::spec::{Derivation, Kind};

/// One scored pair of a seed family.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Pair {
    /// First model.
    pub a: String,
    /// Second model.
    pub b: String,
    /// Similarity under the measure.
    pub score: f64,
}

/// A family of models trained from scratch with one recipe and different seeds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SeedStratum {
    /// Family name.
    pub family: String,
    /// What the seeds vary (`independent`, `same-init`, `same-data`).
    pub kind: Kind,
    /// Depth of its models.
    pub layers: usize,
    /// Hidden width of its models.
    pub width: usize,
    /// Models in the family.
    pub models: usize,
    /// Every pair, in name order.
    pub pairs: Vec<Pair>,
    /// Share of pairs at or above the threshold, with its Clopper–Pearson interval.
    pub at_or_above: Rate,
    /// Median score of the pairs.
    pub median: f64,
    /// Highest score of the pairs.
    pub highest: f64,
    /// Mean final training loss of its models (nats per byte), to show they were trained.
    pub mean_final_loss: f64,
}

/// One snapshot of a derived family, scored against its base.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PowerPoint {
    /// Family name.
    pub family: String,
    /// The derivation before training.
    pub derivation: Derivation,
    /// The snapshot's model.
    pub model: String,
    /// The base model.
    pub base: String,
    /// Continued-training steps as a fraction of the base's steps.
    pub fraction: f64,
    /// Continued-training steps.
    pub steps: usize,
    /// Depth of the snapshot.
    pub layers: usize,
    /// Similarity to the base under the measure.
    pub score: f64,
}

/// The training loss of one family, to show its models were trained.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LossCurve {
    /// Family name.
    pub family: String,
    /// What the family is (`independent`, `same-init`, `same-data`, `continued`).
    pub kind: Kind,
    /// Depth of its models.
    pub layers: usize,
    /// Models averaged: every seed of a seed family; one run (its longest snapshot) of a
    /// derived family, whose snapshots are prefixes of one run.
    pub models: usize,
    /// Training steps before the first loss: 0 from scratch, the base's steps when derived.
    pub start_step: usize,
    /// Mean training loss per step (nats per byte), over the steps every model ran.
    pub losses: Vec<f64>,
}

/// A lab's strata.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Strata {
    /// The directory read (`baselines/lab/NAME`).
    pub dir: PathBuf,
    /// The threshold of `at_or_above` (the claim's score).
    pub threshold: f64,
    /// Seed families, in name order.
    pub seeds: Vec<SeedStratum>,
    /// Derived snapshots, by family then fraction.
    pub derived: Vec<PowerPoint>,
    /// Training-loss curves, seed families then derived families, in name order.
    pub losses: Vec<LossCurve>,
    /// Every model's curves, by model name, as read from its fingerprint (for further tests of
    /// the same models without reading them again).
    #[serde(skip)]
    pub curves: BTreeMap<String, Curves>,
}

/// Read every `<model>.lab.json` and its `<model>.json` fingerprint in `dir` and score the
/// strata under `measure` (curves of `curves`).
pub fn load(
    dir: &Path,
    curves: &CurveOptions,
    measure: &MeasureOptions,
    threshold: f64,
) -> Result<Strata> {
    let mut records = BTreeMap::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".lab.json"))
        .collect();
    entries.sort();
    for side in entries {
        let text = std::fs::read_to_string(&side).map_err(io(&side))?;
        let r: Record = serde_json::from_str(&text).map_err(|e| Error::Checkpoint {
            path: side.clone(),
            reason: format!("not a lab record: {e}"),
        })?;
        let fp_path = dir.join(format!("{}.json", r.model));
        let fp_text = std::fs::read_to_string(&fp_path).map_err(io(&fp_path))?;
        let fp = fingerprint::Fingerprint::from_json(&fp_text).map_err(Error::from)?;
        let c = Curves::from_fingerprint(&fp, curves).map_err(|e| bad(&fp_path, e))?;
        records.insert(r.model.clone(), (r, c, fp_path));
    }
    let mut families: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (name, (r, _, _)) in &records {
        if r.kind != Kind::Continued {
            families.entry(r.family.clone()).or_default().push(name);
        }
    }
    let mut seeds = Vec::new();
    for (family, members) in &families {
        let mut pairs = Vec::new();
        for (i, a) in members.iter().enumerate() {
            for b in &members[i + 1..] {
                let (_, ca, pa) = &records[*a];
                let s = similarity(ca, &records[*b].1, measure).map_err(|e| bad(pa, e))?;
                pairs.push(Pair {
                    a: a.to_string(),
                    b: b.to_string(),
                    score: s.score,
                });
            }
        }
        let first = &records[members[0]].0;
        if pairs.is_empty() {
            continue;
        }
        let scores: Vec<f64> = pairs.iter().map(|p| p.score).collect();
        let at_or_above = rates_at_or_above(&scores, &[threshold])
            .map_err(|e| bad(dir, e))?
            .remove(0);
        let median = null::stats::median(&scores).map_err(|e| bad(dir, e))?;
        let highest = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let losses: Vec<f64> = members
            .iter()
            .filter_map(|m| records[*m].0.losses.last().map(|&l| f64::from(l)))
            .collect();
        seeds.push(SeedStratum {
            family: family.clone(),
            kind: first.kind,
            layers: first.config.layers,
            width: first.config.hidden,
            models: members.len(),
            pairs,
            at_or_above,
            median,
            highest,
            mean_final_loss: losses.iter().sum::<f64>() / losses.len().max(1) as f64,
        });
    }
    let mut derived = Vec::new();
    for (name, (r, c, path)) in &records {
        let Some(l) = &r.lineage else { continue };
        let Some((_, base, _)) = records.get(&l.base) else {
            return Err(Error::Checkpoint {
                path: path.clone(),
                reason: format!(
                    "its base {} has no fingerprint in {}",
                    l.base,
                    dir.display()
                ),
            });
        };
        let s = similarity(c, base, measure).map_err(|e| bad(path, e))?;
        derived.push(PowerPoint {
            family: r.family.clone(),
            derivation: l.derivation,
            model: name.clone(),
            base: l.base.clone(),
            fraction: l.fraction,
            steps: r.steps,
            layers: r.config.layers,
            score: s.score,
        });
    }
    derived.sort_by(|a, b| {
        a.family
            .cmp(&b.family)
            .then(a.fraction.total_cmp(&b.fraction))
    });
    let mut losses: Vec<LossCurve> = seeds
        .iter()
        .map(|s| {
            let runs: Vec<&[f32]> = families[&s.family]
                .iter()
                .map(|m| records[*m].0.losses.as_slice())
                .collect();
            LossCurve {
                family: s.family.clone(),
                kind: s.kind,
                layers: s.layers,
                models: runs.len(),
                start_step: 0,
                losses: mean_curve(&runs),
            }
        })
        .collect();
    let mut longest: BTreeMap<&str, &PowerPoint> = BTreeMap::new();
    for p in &derived {
        let e = longest.entry(p.family.as_str()).or_insert(p);
        if p.steps > e.steps {
            *e = p;
        }
    }
    for p in longest.values().filter(|p| p.steps > 0) {
        let (r, _, _) = &records[&p.model];
        losses.push(LossCurve {
            family: p.family.clone(),
            kind: r.kind,
            layers: p.layers,
            models: 1,
            start_step: records[&p.base].0.steps,
            losses: mean_curve(&[r.losses.as_slice()]),
        });
    }
    Ok(Strata {
        dir: dir.to_path_buf(),
        threshold,
        seeds,
        derived,
        losses,
        curves: records.into_iter().map(|(m, (_, c, _))| (m, c)).collect(),
    })
}

/// Elementwise mean of loss curves over the steps all of them ran.
fn mean_curve(runs: &[&[f32]]) -> Vec<f64> {
    let steps = runs.iter().map(|r| r.len()).min().unwrap_or(0);
    (0..steps)
        .map(|i| runs.iter().map(|r| f64::from(r[i])).sum::<f64>() / runs.len() as f64)
        .collect()
}

fn bad(path: &Path, source: null::Error) -> Error {
    Error::Analysis {
        path: path.to_path_buf(),
        source: Box::new(source),
    }
}

//! The seed lab in the analysis: models trained by `nullprint lab run` with one recipe and
//! different seeds (a null stratum with lineage known by construction) and models derived from
//! one of them then trained on (power against continued training). Read from the lab's
//! committed fingerprints; kept next to the real panel, never mixed into it.

use std::path::Path;

use fingerprint::hash::sha256_bytes;
use lab::spec::Kind;
use lab::strata::{PowerPoint, SeedStratum, Strata};
use lab::weight_tests::{WeightTest, WeightTests};
use null::calibrated::Reference;
use null::depth::{DepthModel, DepthPoint};
use null::measure::{Prepared, Scratch};
use null::nulls::surrogate::{self, SurrogateOptions};
use null::nulls::{NullResult, Sampling};
use null::pvalue::{rates_at_or_above, EmpiricalNull, Rate};
use null::rng::child_seed;
use null::{CurveOptions, MeasureOptions};
use report::model as rm;

use crate::error::{Error, Result};
use crate::inputs::Inputs;

/// Description of the lab's entry in the report's inputs.
pub const LAB_INPUT: &str = "seed-lab fingerprints and records (one entry: SHA-256 over the \
    sorted `sha256  file` lines of every *.json in the directory)";

/// The lab's strata with the p-values of its derived snapshots.
#[derive(Clone, Debug)]
pub struct LabStudy {
    /// Seed families, derived snapshots and loss curves.
    pub strata: Strata,
    /// Per derived snapshot (aligned with `strata.derived`): its score's p against the real
    /// panel's unrelated pairs, `(1 + count ≥ score) / (1 + n)`.
    pub panel_p: Vec<f64>,
    /// Per derived snapshot: its score's p against the independent seed family at its base's
    /// depth (index into `strata.seeds`), when the lab has one.
    pub recipe_p: Vec<Option<(usize, f64)>>,
    /// The published panel's depth model refitted with the lab's independent seed families as
    /// further points, when the published panel is in the analysis ([`depth_with_lab`]).
    pub depth_model: Option<DepthModel>,
    /// The weight-level tests of the lab's pairs (`trace.json`), when `nullprint lab run`
    /// wrote them.
    pub weight_tests: Option<WeightTests>,
    /// Per seed family (aligned with `strata.seeds`): the same-recipe null's size on its own
    /// pairs, each held out ([`held_out_size`]), at each of [`RECIPE_SIZE_LEVELS`].
    pub recipe_size: Vec<Vec<Rate>>,
    /// Per derived snapshot: the trend-dct surrogate null's p of its score against its base,
    /// raw and calibrated on the panel's real unrelated pairs ([`calibrate_snapshots`]).
    pub calibrated: Vec<SnapshotCalibration>,
}

/// The levels at which the same-recipe null's held-out size is reported.
pub const RECIPE_SIZE_LEVELS: [f64; 2] = [0.01, 0.05];

/// The same-recipe null's size on its own pairs: each pair's p against the family's pairs that
/// share no model with it, `(1 + count ≥ score)/(1 + n)`, and the share of pairs at or below
/// each level. Exchangeable seeds make this at most the level up to ties; with `m` models the
/// smallest held-out p is 1/(1 + (m−2)(m−3)/2), so small families cannot reach small levels;
/// with fewer than four models no pair has a reference and the result is empty.
pub fn held_out_size(f: &SeedStratum, levels: &[f64]) -> Result<Vec<Rate>> {
    let err = || Error::statistic(format!("seed family {}: held-out size", f.family));
    let mut ps = Vec::with_capacity(f.pairs.len());
    for q in &f.pairs {
        let rest: Vec<f64> = f
            .pairs
            .iter()
            .filter(|r| r.a != q.a && r.a != q.b && r.b != q.a && r.b != q.b)
            .map(|r| r.score)
            .collect();
        if rest.is_empty() {
            continue;
        }
        let null = EmpiricalNull::new(rest).map_err(err())?;
        ps.push(null.p(q.score));
    }
    if ps.is_empty() {
        return Ok(Vec::new());
    }
    levels
        .iter()
        .map(|&l| {
            let k = ps.iter().filter(|&&p| p <= l).count() as u64;
            Rate::new(l, k, ps.len() as u64).map_err(err())
        })
        .collect()
}

/// "k/n at 0.01, k/n at 0.05", or why there is no held-out size.
fn size_text(rates: &[Rate]) -> String {
    if rates.is_empty() {
        return "not measurable (fewer than four models)".into();
    }
    rates
        .iter()
        .map(|r| format!("{}/{} at {}", r.count, r.n, r.threshold))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One snapshot's surrogate p, raw and calibrated.
#[derive(Clone, Debug)]
pub struct SnapshotCalibration {
    /// The surrogate null of the snapshot against its base.
    pub raw: NullResult,
    /// `raw` referred to the same null's p-values over the panel's real unrelated pairs.
    pub calibrated: NullResult,
}

/// Each derived snapshot's surrogate null against its base (`opts`, one seed sub-stream per
/// snapshot from `opts.seed`), calibrated on `reference`: the panel's real unrelated pairs'
/// p-values under the same null and draw count. The lab's models are not in the reference.
pub fn calibrate_snapshots(
    study: &LabStudy,
    reference: &Reference,
    opts: &SurrogateOptions,
) -> Result<Vec<SnapshotCalibration>> {
    let curves = |name: &str| {
        study.strata.curves.get(name).ok_or_else(|| {
            Error::invalid(
                &study.strata.dir,
                "lab",
                format!("no curves of {name} (its fingerprint was not read)"),
            )
        })
    };
    study
        .strata
        .derived
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let what = format!("seed-lab snapshot {} vs {}", p.model, p.base);
            let base = Prepared::new(curves(&p.base)?).map_err(Error::statistic(what.clone()))?;
            let snap = Prepared::new(curves(&p.model)?).map_err(Error::statistic(what.clone()))?;
            let score = null::measure::score(&base, &snap, opts.measure, &mut Scratch::default())
                .map_err(Error::statistic(what.clone()))?;
            let o = SurrogateOptions {
                seed: child_seed(opts.seed, i as u64),
                ..*opts
            };
            let draws = surrogate::surrogate_scores(&base, &snap, &o)
                .map_err(Error::statistic(what.clone()))?;
            let raw = NullResult::from_scores(
                &o.kind.info(),
                score,
                &draws.scores,
                Some(o.seed),
                Sampling::MonteCarlo,
            )
            .map_err(Error::statistic(what.clone()))?;
            let calibrated = reference
                .calibrate(&raw, &[])
                .map_err(Error::statistic(what))?;
            Ok(SnapshotCalibration { raw, calibrated })
        })
        .collect()
}

/// Do two models of a family of this kind share no weights? Seeds that change the
/// initialisation give unrelated models; one initialisation is shared initial weights.
fn shares_no_weights(kind: Kind) -> bool {
    matches!(kind, Kind::Independent | Kind::SameData)
}

/// The levels at which the weight-level test's size on same-recipe pairs is reported.
pub const WEIGHT_TEST_LEVELS: [f64; 2] = [0.01, 0.05];

/// How often the weight-level test rejects at `level` among `tests` (pairs not testable left
/// out): `(rejections, tested)`.
fn rejections(tests: &[&WeightTest], level: f64) -> (u64, u64) {
    let lg = level.log10();
    let tested: Vec<f64> = tests.iter().filter_map(|t| t.log10_p).collect();
    (
        tested.iter().filter(|&&l| l <= lg).count() as u64,
        tested.len() as u64,
    )
}

/// Source name of the lab's points in a depth model.
pub const LAB_DEPTH_SOURCE: &str = "seed lab: same recipe, different seeds (small models)";

/// The depth model `published` refitted on its own points plus one point per independent seed
/// family of the lab (same thresholds, predicted at `depth`): how much the extrapolation to the
/// claim's depth moves when models trained here at that depth are added. Small models trained
/// briefly, so a second fit next to the published one, never a replacement.
pub fn depth_with_lab(
    study: &LabStudy,
    published: &DepthModel,
    depth: usize,
    seed: u64,
) -> Result<DepthModel> {
    let mut points = published.points.clone();
    for f in study
        .strata
        .seeds
        .iter()
        .filter(|f| f.kind == Kind::Independent)
    {
        let mut scores: Vec<f64> = f.pairs.iter().map(|p| p.score).collect();
        scores.sort_by(f64::total_cmp);
        let q = |x| {
            null::stats::quantile_sorted(&scores, x)
                .map_err(Error::statistic(format!("seed family {}", f.family)))
        };
        points.push(DepthPoint {
            source: LAB_DEPTH_SOURCE.into(),
            depth: f.layers,
            pairs: scores.len() as u64,
            models: f.models as u64,
            exceed: published
                .thresholds
                .iter()
                .map(|&t| scores.iter().filter(|&&s| s >= t).count() as u64)
                .collect(),
            median: q(0.5)?,
            p95: q(0.95)?,
        });
    }
    null::depth::fit(&points, &published.thresholds, depth, seed)
        .map_err(Error::statistic("the depth model with the seed lab"))
}

impl LabStudy {
    /// The weight-level test of `base` against `model`, when it was run.
    pub fn weight_test(&self, base: &str, model: &str) -> Option<&WeightTest> {
        self.weight_tests
            .as_ref()?
            .tests
            .iter()
            .find(|t| t.a == base && t.b == model)
    }

    /// The weight-level tests of pairs that share no weights (the null): the seed families
    /// whose models differ in their initialisation. Same-initialisation pairs share their
    /// initial weights, and derived snapshots their base: both are related.
    pub fn weight_null(&self) -> Vec<&WeightTest> {
        self.weight_seed_tests()
            .into_iter()
            .filter(|t| shares_no_weights(t.kind))
            .collect()
    }

    /// The weight-level tests of every seed family's pairs, related or not.
    fn weight_seed_tests(&self) -> Vec<&WeightTest> {
        self.weight_tests.as_ref().map_or_else(Vec::new, |w| {
            w.tests
                .iter()
                .filter(|t| t.kind != Kind::Continued)
                .collect()
        })
    }

    /// "it rejects k/n same-recipe pairs at 0.01 and k/n at 0.05": the measured size of the
    /// weight-level test's null on models that share no weights, for every place that prints
    /// its p-values. None without weight tests.
    pub fn weight_size_sentence(&self) -> Option<String> {
        let null = self.weight_null();
        if null.is_empty() {
            return None;
        }
        let parts: Vec<String> = WEIGHT_TEST_LEVELS
            .iter()
            .map(|&l| {
                let (k, n) = rejections(&null, l);
                let Ok(r) = Rate::new(l, k, n) else {
                    return format!("{k}/{n} at {l}");
                };
                let judged = if r.interval.0 > l {
                    ", above that level"
                } else if r.rate > l {
                    ", above that level in its point estimate (the interval includes it)"
                } else {
                    ""
                };
                format!(
                    "{k}/{n} ({:.1}%, 95% CI {:.1}–{:.1}%) at {l}{judged}",
                    100.0 * r.rate,
                    100.0 * r.interval.0,
                    100.0 * r.interval.1
                )
            })
            .collect();
        Some(format!(
            "on same-recipe pairs that share no weights it rejects {} (the seed-lab weight-test \
             table)",
            parts.join(" and ")
        ))
    }

    /// The independent seed family at `layers`, when the lab has one.
    pub fn independent_at(&self, layers: usize) -> Option<&SeedStratum> {
        independent_at(&self.strata, layers).map(|i| &self.strata.seeds[i])
    }
}

fn independent_at(strata: &Strata, layers: usize) -> Option<usize> {
    strata
        .seeds
        .iter()
        .position(|s| s.kind == Kind::Independent && s.layers == layers)
}

/// Read the lab in `dir` (recorded in `inputs` as one entry), score it under the experiment's
/// measure, and test each derived snapshot against the panel's unrelated scores and the
/// same-recipe null at its base's depth.
pub fn study(
    dir: &Path,
    curves: &CurveOptions,
    measure: &MeasureOptions,
    threshold: f64,
    unrelated: &[f64],
    inputs: &mut Inputs,
) -> Result<LabStudy> {
    record_dir(dir, inputs)?;
    let strata = lab::strata::load(dir, curves, measure, threshold).map_err(|e| Error::Lab {
        dir: dir.to_path_buf(),
        source: Box::new(e),
    })?;
    if strata.seeds.is_empty() {
        return Err(Error::invalid(
            dir,
            "lab",
            "no seed family with two or more fingerprinted models (run `just lab`)",
        ));
    }
    let panel = EmpiricalNull::new(unrelated.to_vec())
        .map_err(Error::statistic("the panel's unrelated pairs"))?;
    let mut recipe_p = Vec::new();
    for p in &strata.derived {
        let base_layers = base_layers(&strata, p);
        recipe_p.push(match independent_at(&strata, base_layers) {
            Some(i) => {
                let scores = strata.seeds[i].pairs.iter().map(|q| q.score).collect();
                let null = EmpiricalNull::new(scores)
                    .map_err(Error::statistic(format!("seed family {}", p.family)))?;
                Some((i, null.p(p.score)))
            }
            None => None,
        });
    }
    let panel_p = strata.derived.iter().map(|p| panel.p(p.score)).collect();
    let recipe_size = strata
        .seeds
        .iter()
        .map(|f| held_out_size(f, &RECIPE_SIZE_LEVELS))
        .collect::<Result<Vec<_>>>()?;
    let weight_tests = WeightTests::load(dir).map_err(|e| Error::Lab {
        dir: dir.to_path_buf(),
        source: Box::new(e),
    })?;
    Ok(LabStudy {
        strata,
        panel_p,
        recipe_p,
        depth_model: None,
        weight_tests,
        recipe_size,
        calibrated: Vec::new(),
    })
}

/// Depth of a snapshot's base: the untrained snapshot (fraction 0) of its family, else its own.
fn base_layers(strata: &Strata, p: &PowerPoint) -> usize {
    strata
        .seeds
        .iter()
        .find(|s| s.pairs.iter().any(|q| q.a == p.base || q.b == p.base))
        .map_or(p.layers, |s| s.layers)
}

/// One provenance entry for the whole directory: the SHA-256 of its sorted `sha256  name`
/// lines, with the total size.
fn record_dir(dir: &Path, inputs: &mut Inputs) -> Result<()> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut manifest = String::new();
    let mut bytes = 0u64;
    for f in &files {
        let b = std::fs::read(f).map_err(|e| Error::io(f, e))?;
        bytes += b.len() as u64;
        let name = f.file_name().unwrap_or_default().to_string_lossy();
        manifest.push_str(&format!("{}  {name}\n", sha256_bytes(&b)));
    }
    inputs.0.push(rm::InputFile {
        path: dir.display().to_string(),
        sha256: sha256_bytes(manifest.as_bytes()),
        bytes: Some(bytes),
        description: format!("{LAB_INPUT}; {} files", files.len()),
    });
    Ok(())
}

/// Per-step training losses are of one batch and noisy; the loss figure shows their moving
/// mean over this many steps (trailing window, shorter at the start).
pub const LOSS_SMOOTHING_STEPS: usize = 16;

/// The loss figure draws every this-many-th step of the smoothed curve (and the last): after a
/// 16-step mean, finer points add bytes to the report, not shape.
pub const LOSS_FIGURE_STRIDE: usize = 8;

fn kind_text(k: Kind) -> &'static str {
    match k {
        Kind::Independent => "independent seeds (initialisation and data order)",
        Kind::SameInit => "data order only (one initialisation)",
        Kind::SameData => "initialisation only (one data order)",
        Kind::Continued => "derived, then trained on",
    }
}

fn derivation_text(d: lab::spec::Derivation) -> &'static str {
    match d {
        lab::spec::Derivation::None => "plain continued training",
        lab::spec::Derivation::Upcycle => "dense → MoE upcycling, then training",
        lab::spec::Derivation::Grow => "depth growth (inserted layers), then training",
    }
}

/// The report's tables of the lab: the same-recipe null per seed family, and each derived
/// snapshot's score and p-values.
pub fn tables(study: &LabStudy, panel_pairs: usize) -> Result<Vec<rm::Table>> {
    let s = &study.strata;
    let text = |t: &str| rm::Cell::Text(t.to_owned());
    let num = |x: f64| rm::Cell::Number(x);
    let null_rows = s
        .seeds
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let r = &f.at_or_above;
            vec![
                text(&f.family),
                text(kind_text(f.kind)),
                num(f.layers as f64),
                num(f.width as f64),
                num(f.models as f64),
                num(f.pairs.len() as f64),
                num(f.median),
                num(f.highest),
                num(r.count as f64),
                num(r.rate),
                rm::Cell::Text(format!("{:.4} – {:.4}", r.interval.0, r.interval.1)),
                num(f.mean_final_loss),
                text(&size_text(&study.recipe_size[i])),
            ]
        })
        .collect();
    let null_table = rm::Table {
        name: "seed-lab-null".into(),
        title: "Seed lab: same recipe, no shared weights".into(),
        caption: format!(
            "Small Llama-style decoders trained here from scratch with one recipe (`nullprint lab \
             run`), differing only in their seeds: every pair shares no weights by construction. \
             Each row scores every pair of one family under the report's measure and counts the \
             pairs at or above the claimed {}, with a 95% Clopper–Pearson interval. Each model is \
             in (models − 1) pairs, so pairs are not independent and the interval understates the \
             uncertainty. A labelled stratum next to the real panel, never mixed into it: these \
             models are a few hundred thousand parameters trained for minutes, not 14B-parameter \
             models trained for months. Held-out size: each pair's p against the family's pairs \
             sharing no model with it, counted at or below each level (with m models the \
             smallest such p is 1/(1 + (m−2)(m−3)/2)). Loss in nats per byte (ln 256 = 5.55 is chance). Read \
             from {}.",
            s.threshold,
            s.dir.display()
        ),
        headers: [
            "family",
            "seeds vary",
            "layers",
            "width",
            "models",
            "pairs",
            "median score",
            "highest score",
            "pairs at or above the claim",
            "share",
            "95% interval",
            "mean final loss",
            "held-out size of the same-recipe null",
        ]
        .map(String::from)
        .to_vec(),
        rows: null_rows,
    };
    let power_rows = s
        .derived
        .iter()
        .zip(&study.panel_p)
        .zip(&study.recipe_p)
        .enumerate()
        .map(|(i, ((p, &panel_p), recipe))| {
            let wt = study.weight_test(&p.base, &p.model);
            let cal = study.calibrated.get(i);
            let (ref_name, ref_p) = match recipe {
                Some((i, q)) => {
                    let f = &s.seeds[*i];
                    (format!("{} ({} pairs)", f.family, f.pairs.len()), num(*q))
                }
                None => ("none at this depth".to_owned(), rm::Cell::Missing),
            };
            vec![
                text(&p.family),
                text(derivation_text(p.derivation)),
                num(p.fraction),
                num(p.steps as f64),
                num(p.layers as f64),
                text(&p.base),
                num(p.score),
                text(&ref_name),
                ref_p,
                num(panel_p),
                cal.map_or(rm::Cell::Missing, |c| num(c.raw.p)),
                cal.map_or(rm::Cell::Missing, |c| num(c.calibrated.p)),
                wt.map_or(rm::Cell::Missing, |t| text(&t.test)),
                wt.and_then(|t| t.log10_p).map_or(rm::Cell::Missing, num),
            ]
        })
        .collect();
    let mut used: Vec<usize> = study.recipe_p.iter().flatten().map(|(i, _)| *i).collect();
    used.sort_unstable();
    used.dedup();
    let recipe_size = used
        .iter()
        .map(|&i| format!("{} {}", s.seeds[i].family, size_text(&study.recipe_size[i])))
        .collect::<Vec<_>>()
        .join("; ");
    let calibrated_caption = match study.calibrated.first() {
        Some(c) => format!(
            " trend-dct p: the trend-preserving surrogate null of the snapshot against its base \
             ({} draws each, seeds in the provenance), raw (not calibrated: on real curves this \
             null rejects far more unrelated pairs than its level, see its size table) and \
             calibrated on the same null's p-values over the panel's real unrelated pairs (n = \
             {}: the smallest calibrated p is 1/{}).",
            c.raw.n,
            c.calibrated.n,
            c.calibrated.n + 1
        ),
        None => String::new(),
    };
    let weight_caption = match study.weight_size_sentence() {
        Some(size) => format!(
            " Weight-level test (`nullprint trace`, run by `nullprint lab run` on the \
             checkpoints, in {}): `csu` for plain and grown models (neuron matching against \
             random rotations of one residual basis; a grown model's layers paired by depth \
             position), `upcycle` for the MoE models (each expert against the base's MLP); \
             log10 of its combined p-value; {size}.",
            s.dir.join(lab::weight_tests::TRACE_FILE).display()
        ),
        None => " The weight-level test (`nullprint trace`) needs the checkpoints, which are \
                  not committed: run `just lab`, which writes its results next to the \
                  fingerprints."
            .into(),
    };
    let power_table = rm::Table {
        name: "seed-lab-power".into(),
        title: "Seed lab: derived models against their base as training continues".into(),
        caption: format!(
            "Each model is derived from one trained base, then trained on a different slice of \
             the corpus for a share of the base's steps; snapshots are scored against the base. \
             p against the same recipe: (1 + same-recipe pairs at or above the score)/(1 + \
             pairs), the null of models that share no weights but everything else (the \
             independent seed family at the base's depth); its size on that family's own pairs, \
             each held out against the pairs sharing no model with it: {recipe_size} (the \
             seed-lab null table). Measured on small same-recipe models, not on real pretrained \
             pairs: it traces power in these small models, it does not test the claim. p \
             against the panel: the same over the {panel_pairs} real \
             unrelated pairs (its size: the answer-rate table and the calibration figure).\
             {calibrated_caption}{weight_caption}"
        ),
        headers: [
            "family",
            "derivation",
            "continued (share of base's steps)",
            "steps",
            "layers",
            "base",
            "score vs base",
            "same-recipe null",
            "p against the same recipe",
            "p against the panel",
            "trend-dct p (raw)",
            "trend-dct p calibrated on the panel",
            "weight test",
            "weight test log10 p",
        ]
        .map(String::from)
        .to_vec(),
        rows: power_rows,
    };
    let mut out = vec![null_table, power_table];
    out.extend(weight_null_table(study)?);
    Ok(out)
}

/// The weight-level test on every pair of each seed family: its size on models that share no
/// weights but their recipe. None without weight tests.
fn weight_null_table(study: &LabStudy) -> Result<Option<rm::Table>> {
    let null = study.weight_null();
    let seeds = study.weight_seed_tests();
    let Some(w) = study.weight_tests.as_ref().filter(|_| !null.is_empty()) else {
        return Ok(None);
    };
    let mut families: Vec<&str> = Vec::new();
    for t in &seeds {
        if !families.contains(&t.family.as_str()) {
            families.push(&t.family);
        }
    }
    let text = |t: String| rm::Cell::Text(t);
    let num = |x: f64| rm::Cell::Number(x);
    let row = |label: &str,
               layers: String,
               related: &str,
               tests: &[&WeightTest]|
     -> Result<Vec<rm::Cell>> {
        let mut r = vec![text(label.into()), text(layers), text(related.into())];
        let (_, tested) = rejections(tests, 1.0);
        r.push(num(tested as f64));
        r.push(num((tests.len() as u64 - tested) as f64));
        for &l in &WEIGHT_TEST_LEVELS {
            let (k, n) = rejections(tests, l);
            if n == 0 {
                r.push(rm::Cell::Missing);
                continue;
            }
            let rate = Rate::new(l, k, n).map_err(Error::statistic("weight-test size"))?;
            r.push(text(format!(
                "{k}/{n} ({:.1}%, 95% CI {:.1}–{:.1}%)",
                100.0 * rate.rate,
                100.0 * rate.interval.0,
                100.0 * rate.interval.1
            )));
        }
        r.push(
            tests
                .iter()
                .filter_map(|t| t.log10_p)
                .min_by(f64::total_cmp)
                .map_or(rm::Cell::Missing, num),
        );
        Ok(r)
    };
    let mut rows = Vec::new();
    for fam in &families {
        let tests: Vec<&WeightTest> = seeds.iter().copied().filter(|t| t.family == *fam).collect();
        let layers = study
            .strata
            .seeds
            .iter()
            .find(|f| f.family == *fam)
            .map_or("—".into(), |f| f.layers.to_string());
        let related = match tests.first().map(|t| t.kind) {
            Some(k) if !shares_no_weights(k) => "yes: one initialisation (a rejection is right)",
            _ => "no (a rejection is false)",
        };
        rows.push(row(fam, layers, related, &tests)?);
    }
    rows.push(row(
        "every family that shares no weights",
        "—".into(),
        "no (its rejections are the test's size)",
        &null,
    )?);
    let mut headers: Vec<String> = [
        "family",
        "layers",
        "share weights",
        "pairs tested",
        "not testable",
    ]
    .map(String::from)
    .to_vec();
    headers.extend(
        WEIGHT_TEST_LEVELS
            .iter()
            .map(|l| format!("rejected at p ≤ {l}")),
    );
    headers.push("smallest log10 p".into());
    Ok(Some(rm::Table {
        name: "seed-lab-weight-null".into(),
        title: "Seed lab: the weight-level test on models that share no weights".into(),
        caption: format!(
            "`nullprint trace` (csu: hidden units matched by linear assignment, the coincidences \
             of two views compared with {} random rotations of one model's residual basis per \
             layer pair, layers combined by Fisher's method; seed {}) on every pair of each seed \
             family: same recipe and data, different seeds. Seeds that change the \
             initialisation give models that share no weights; one initialisation (the \
             data-order-only family) is shared initial weights, which the test should find. Its \
             null keeps each model's own geometry and destroys any relation between the two \
             residual bases; the share of unrelated pairs it rejects at a level is its size on \
             such models (it should be at most the level). Pairs share models, so the intervals (computed as if \
             pairs were independent) understate the uncertainty. Read from {}.",
            w.null_draws,
            w.seed,
            study
                .strata
                .dir
                .join(lab::weight_tests::TRACE_FILE)
                .display()
        ),
        headers,
        rows,
    }))
}

/// The report's figures of the lab: the same-recipe null per seed family, the derived
/// families' scores against continued training, and the training-loss curves.
pub fn figures(
    study: &LabStudy,
    measure_name: &str,
    panel_fpr: &[Rate],
) -> Result<Vec<rm::Figure>> {
    let s = &study.strata;
    let claim = rm::Mark::Published { id: "claim".into() };
    // Thresholds from 0: below it every family is near 100% and the points only add bytes.
    let grid: Vec<f64> = (0..=20).map(|i| f64::from(i) / 20.0).collect();
    // No interval bands: six overlapping bands hide the lines; the tables give the interval at
    // the claimed value.
    let rates = |label: String, rates: &[Rate]| rm::FprSeries {
        label,
        points: rates
            .iter()
            .map(|r| rm::FprPoint {
                threshold: r.threshold,
                rate: r.rate,
                lo: None,
                hi: None,
            })
            .collect(),
    };
    let mut series = vec![rates(
        format!(
            "real panel, unrelated pairs (n = {})",
            panel_fpr.first().map_or(0, |r| r.n)
        ),
        &panel_fpr
            .iter()
            .filter(|r| r.threshold >= grid[0])
            .cloned()
            .collect::<Vec<_>>(),
    )];
    for f in s.seeds.iter().take(report::MAX_SERIES - 1) {
        let scores: Vec<f64> = f.pairs.iter().map(|p| p.score).collect();
        let r = rates_at_or_above(&scores, &grid)
            .map_err(Error::statistic(format!("seed family {}", f.family)))?;
        series.push(rates(
            format!(
                "{} ({} layers, {} pairs)",
                f.family,
                f.layers,
                f.pairs.len()
            ),
            &r,
        ));
    }
    let mut figs = vec![rm::Figure {
        name: "seed-lab-null".into(),
        title: "Same recipe, different seeds: how high does chance go?".into(),
        caption: "Share of pairs at or above each threshold: the real panel's unrelated pairs, \
                  and every pair of small decoders trained here with one recipe and different \
                  seeds, per family (depth, what the seeds vary); these share no weights by \
                  construction. Intervals at the claimed value are in the seed-lab table."
            .into(),
        kind: rm::FigureKind::FprThreshold(rm::FprFigure {
            x_label: format!("threshold ({measure_name} similarity, unitless)"),
            series,
            marks: vec![claim.clone()],
            log_rate: false,
        }),
    }];
    let mut families: Vec<&str> = s.derived.iter().map(|p| p.family.as_str()).collect();
    families.dedup();
    if !families.is_empty() {
        let mut marks = vec![claim];
        if let Some(f) = study
            .recipe_p
            .iter()
            .flatten()
            .next()
            .map(|(i, _)| &s.seeds[*i])
        {
            marks.push(rm::Mark::Computed {
                label: format!("highest same-recipe pair, {} layers", f.layers),
                value: f.highest,
            });
        }
        figs.push(rm::Figure {
            name: "seed-lab-power".into(),
            title: "Derived, then trained on: how long does the fingerprint last?".into(),
            caption: "Score of each derived snapshot against its base, by how long it was \
                      trained after the derivation (as a multiple of the base's own training)."
                .into(),
            kind: rm::FigureKind::Lines(rm::LinesFigure {
                x_label: "continued training (multiple of the base's steps)".into(),
                y_label: format!("{measure_name} similarity to the base"),
                y_range: None,
                series: families
                    .iter()
                    .map(|fam| {
                        let pts: Vec<&PowerPoint> =
                            s.derived.iter().filter(|p| p.family == *fam).collect();
                        rm::LineSeries {
                            label: format!("{fam}: {}", derivation_text(pts[0].derivation)),
                            points: pts
                                .iter()
                                .map(|p| rm::LinePoint {
                                    x: p.fraction,
                                    y: p.score,
                                    lo: None,
                                    hi: None,
                                })
                                .collect(),
                        }
                    })
                    .collect(),
                marks,
            }),
        });
    }
    if !s.losses.is_empty() {
        figs.push(rm::Figure {
            name: "seed-lab-loss".into(),
            title: "Seed lab: training loss".into(),
            caption: format!(
                "Training loss (moving mean over {LOSS_SMOOTHING_STEPS} steps, drawn every \
                 {LOSS_FIGURE_STRIDE} steps) of each family, averaged over its seeds; derived families start where their base \
                 stopped. Chance is ln 256 = 5.55 nats per byte."
            ),
            kind: rm::FigureKind::Lines(rm::LinesFigure {
                x_label: "training step".into(),
                y_label: "loss (nats per byte)".into(),
                y_range: None,
                series: s
                    .losses
                    .iter()
                    .map(|c| rm::LineSeries {
                        label: format!("{} ({} layers, {} model(s))", c.family, c.layers, c.models),
                        points: smooth(&c.losses, LOSS_SMOOTHING_STEPS)
                            .into_iter()
                            .enumerate()
                            .filter(|(i, _)| {
                                (i + 1) % LOSS_FIGURE_STRIDE == 0 || i + 1 == c.losses.len()
                            })
                            .map(|(i, y)| rm::LinePoint {
                                x: (c.start_step + i + 1) as f64,
                                y,
                                lo: None,
                                hi: None,
                            })
                            .collect(),
                    })
                    .collect(),
                marks: Vec::new(),
            }),
        });
    }
    Ok(figs)
}

/// The verdict's sentence on the same-recipe null at the claim's depth, when the lab has one.
pub fn depth_sentence(study: &LabStudy, claim_layers: usize) -> Option<String> {
    let f = study.independent_at(claim_layers)?;
    let r = &f.at_or_above;
    Some(format!(
        "Seed lab, {}-layer models of width {} trained here with one recipe and different seeds \
         (no shared weights): {}/{} pairs reach {} (95% CI {:.1}–{:.1}%; highest {:.3}).",
        f.layers,
        f.width,
        r.count,
        r.n,
        study.strata.threshold,
        100.0 * r.interval.0,
        100.0 * r.interval.1,
        f.highest
    ))
}

/// The verdict's sentence on the derived families: each family's score after the longest
/// continued training, against the highest same-recipe pair at the base's depth.
pub fn power_sentence(study: &LabStudy) -> Option<String> {
    let s = &study.strata;
    let mut last: Vec<(usize, &PowerPoint)> = Vec::new();
    for (i, p) in s.derived.iter().enumerate() {
        match last.last_mut() {
            Some((j, q)) if q.family == p.family => {
                if p.fraction >= q.fraction {
                    *j = i;
                    *q = p;
                }
            }
            _ => last.push((i, p)),
        }
    }
    if last.is_empty() {
        return None;
    }
    let parts: Vec<String> = last
        .iter()
        .map(|(i, p)| {
            let beyond = study.recipe_p[*i].map(|(f, _)| {
                if p.score > s.seeds[f].highest {
                    " (above every same-recipe pair)"
                } else {
                    " (within the same-recipe pairs)"
                }
            });
            format!(
                "{} {:.3} after {}× the base's steps{}",
                derivation_text(p.derivation),
                p.score,
                p.fraction,
                beyond.unwrap_or("")
            )
        })
        .collect();
    let weights = study.weight_size_sentence().and_then(|size| {
        let derived: Vec<f64> = s
            .derived
            .iter()
            .filter_map(|p| study.weight_test(&p.base, &p.model)?.log10_p)
            .collect();
        let weakest = derived.iter().copied().max_by(f64::total_cmp)?;
        Some(format!(
            " The weight-level test (`nullprint trace`) finds all {} derived snapshots (log10 p \
             {weakest:.0} or below), but {size}: where it rejects more unrelated pairs than \
             its level, its p-values near that level overstate the evidence.",
            derived.len()
        ))
    });
    Some(format!(
        " In the seed lab, models derived from one trained base and trained on score against \
         it: {}. Small models trained briefly: how far months of training move a large model's \
         fingerprint is not measured here.{}",
        parts.join("; "),
        weights.unwrap_or_default()
    ))
}

/// Trailing moving mean over `window` values (over fewer at the start).
fn smooth(v: &[f64], window: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(v.len());
    let mut sum = 0.0;
    for i in 0..v.len() {
        sum += v[i];
        if i >= window {
            sum -= v[i - window];
        }
        out.push(sum / (i + 1).min(window) as f64);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothing_is_a_trailing_mean() {
        assert_eq!(smooth(&[2.0, 4.0, 6.0, 8.0], 2), [2.0, 3.0, 5.0, 7.0]);
    }

    fn family(scores: &[((usize, usize), f64)], models: usize) -> SeedStratum {
        SeedStratum {
            family: "f".into(),
            kind: Kind::Independent,
            layers: 4,
            width: 8,
            models,
            pairs: scores
                .iter()
                .map(|&((a, b), score)| lab::strata::Pair {
                    a: format!("m{a}"),
                    b: format!("m{b}"),
                    score,
                })
                .collect(),
            at_or_above: Rate::new(0.9, 0, 1).unwrap(),
            median: 0.0,
            highest: 0.0,
            mean_final_loss: 1.0,
        }
    }

    #[test]
    fn held_out_size_refers_each_pair_to_the_pairs_sharing_no_model() {
        // Five models, ten pairs; (0,1) scores highest. Its held-out reference is the three
        // pairs among models 2, 3, 4, all lower: p = 1/4. Every other pair shares no model
        // with exactly three pairs too.
        let mut scores = Vec::new();
        let mut v = 0.1;
        for a in 0..5 {
            for b in a + 1..5 {
                scores.push(((a, b), if (a, b) == (0, 1) { 0.99 } else { v }));
                v += 0.05;
            }
        }
        let f = family(&scores, 5);
        let r = held_out_size(&f, &[0.25, 0.2]).unwrap();
        assert!(r.iter().all(|x| x.n == 10));
        // At 0.25: (0,1) (p = 1/4) and the highest of the rest whose three disjoint pairs all
        // score lower; at 0.2 none (the smallest p is 1/4).
        assert!(r[0].count >= 1, "{r:?}");
        assert_eq!(r[1].count, 0);
        // Three models leave no pair a reference: not measurable, not an error.
        let three = family(&[((0, 1), 0.5), ((0, 2), 0.4), ((1, 2), 0.3)], 3);
        assert!(held_out_size(&three, &[0.05]).unwrap().is_empty());
    }
}

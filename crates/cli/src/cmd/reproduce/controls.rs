//! Positive controls built from real weights: each model derived from a panel checkpoint
//! (`baselines/controls.toml`, fingerprinted by `nullprint baselines`) is scored against its
//! base under every measure and tested against the panel null and a surrogate null, so the
//! report shows the test detecting real derivation next to its false-positive rate.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use fingerprint::Fingerprint;
use null::curves::{CurveOptions, Curves};
use null::measure::{self, Measure, Prepared, Scratch};
use null::null::surrogate::{self, SurrogateKind, SurrogateOptions};
use null::null::{NullInfo, NullResult, Sampling};
use null::rng::child_seed;
use null::stats::clopper_pearson;
use report::model as rm;

use super::{fmt_p, input_file, interval, load_fingerprint, Member};
use crate::controls_index::{Control, ControlsIndex};

/// Monte-Carlo draws of each control's surrogate null.
pub const SURROGATE_SAMPLES: usize = 2000;

/// One control, scored.
pub struct Scored {
    pub control: Control,
    /// Layers of the base and of the derived model.
    pub layers: (usize, usize),
    /// Score against the base under each measure (headline first).
    pub scores: Vec<(Measure, f64)>,
    /// The headline score against the unrelated panel pairs.
    pub panel: NullResult,
    /// The headline score against a surrogate null of the (base, control) pair.
    pub surrogate: NullResult,
}

/// Everything `evaluate` needs from the experiment.
pub struct Setup<'a> {
    pub index_path: &'a Path,
    pub members: &'a [Member],
    pub curve_opts: &'a CurveOptions,
    pub measures: &'a [Measure],
    /// Headline-measure scores of the unrelated panel pairs.
    pub unrelated: &'a [f64],
    pub surrogate: SurrogateKind,
    pub seed: u64,
}

/// Load, check and score every control of the index.
pub fn evaluate(s: &Setup<'_>, inputs: &mut Vec<rm::InputFile>) -> Result<Vec<Scored>> {
    let controls = ControlsIndex::load(s.index_path)?;
    inputs.push(input_file(
        s.index_path,
        "positive controls' index (recipes, seeds, bases)",
    )?);
    let headline = s.measures[0];
    let panel_info = NullInfo {
        name: "panel".into(),
        preserves: "everything real unrelated models share (training recipes, depth trends)".into(),
        destroys: "shared weights".into(),
    };
    let mut out = Vec::with_capacity(controls.len());
    for (i, c) in controls.into_iter().enumerate() {
        let path = ControlsIndex::fingerprint_path(s.index_path, &c.id);
        if !path.is_file() {
            bail!(
                "{}: missing; run `just baselines` (after `just models all`) to derive and fingerprint it",
                path.display()
            );
        }
        let fp = load_fingerprint(
            &path,
            &format!("positive control {} ({})", c.id, c.group),
            inputs,
        )?;
        let base = s
            .members
            .iter()
            .find(|m| m.id == c.base)
            .ok_or_else(|| anyhow!("{}: base {:?} is not in the panel", c.id, c.base))?;
        check_record(&fp, &c, base, &path)?;
        let mut curves = Curves::from_fingerprint(&fp, s.curve_opts)
            .with_context(|| format!("{}: curves", path.display()))?;
        curves.model = c.id.clone();
        let pb = Prepared::new(&base.curves)?;
        let pc = Prepared::new(&curves)?;
        let mut scores = Vec::new();
        for &m in s.measures {
            let v = measure::score(&pb, &pc, m, &mut Scratch::default())
                .with_context(|| format!("{}: {} vs its base", c.id, m.name()))?;
            scores.push((m, v));
        }
        let score = scores[0].1;
        let panel =
            NullResult::from_scores(&panel_info, score, s.unrelated, None, Sampling::Exhaustive)?;
        let seed = child_seed(s.seed, i as u64);
        let opts = SurrogateOptions {
            kind: s.surrogate,
            measure: headline,
            samples: SURROGATE_SAMPLES,
            seed,
        };
        let draws = surrogate::surrogate_scores(&pb, &pc, &opts)?;
        let surrogate = NullResult::from_scores(
            &s.surrogate.info(),
            score,
            &draws.scores,
            Some(seed),
            Sampling::MonteCarlo,
        )?;
        out.push(Scored {
            layers: (base.curves.max_layers(), curves.max_layers()),
            control: c,
            scores,
            panel,
            surrogate,
        });
    }
    Ok(out)
}

/// The fingerprint must be of this control, derived from this base's weights.
fn check_record(fp: &Fingerprint, c: &Control, base: &Member, path: &Path) -> Result<()> {
    let Some(d) = &fp.model.derived else {
        bail!(
            "{}: no derivation record; run `just baselines` to rebuild it",
            path.display()
        );
    };
    let want = c.recipe.to_string();
    if d.base != c.base || d.recipe != want || d.seed != c.seed {
        bail!(
            "{}: stale: made from {} by {} seed {}, but the index says {} by {want} seed {}; run `just baselines --force`",
            path.display(),
            d.base,
            d.recipe,
            d.seed,
            c.base,
            c.seed
        );
    }
    if !d.base_sha256.contains(&base.entry.sha256) {
        bail!(
            "{}: derived from weights with SHA-256 {:?}, not the panel's {} ({})",
            path.display(),
            d.base_sha256,
            base.id,
            base.entry.sha256
        );
    }
    Ok(())
}

/// One row per control: its scores and p-values.
pub fn table(scored: &[Scored], measures: &[Measure], alpha: f64) -> rm::Table {
    let mut headers: Vec<String> = ["control", "recipe", "seed", "layers (base → derived)"]
        .map(String::from)
        .to_vec();
    headers.extend(measures.iter().map(|m| format!("score ({})", m.name())));
    headers.push(format!("panel p ({})", measures[0].name()));
    headers.push(format!("surrogate p ({})", measures[0].name()));
    let rows = scored
        .iter()
        .map(|s| {
            let mut row = vec![
                rm::Cell::Text(s.control.id.clone()),
                rm::Cell::Text(s.control.recipe.to_string()),
                rm::Cell::Number(s.control.seed as f64),
                rm::Cell::Text(format!("{} → {}", s.layers.0, s.layers.1)),
            ];
            row.extend(s.scores.iter().map(|(_, v)| rm::Cell::Number(*v)));
            row.push(rm::Cell::Text(format!(
                "{} ({}/{})",
                fmt_p(s.panel.p),
                s.panel.exceed,
                s.panel.n
            )));
            row.push(rm::Cell::Text(format!(
                "{} ± {:.4}",
                fmt_p(s.surrogate.p),
                s.surrogate.mc_error
            )));
            row
        })
        .collect();
    let surrogate = scored
        .first()
        .map(|s| s.surrogate.name.clone())
        .unwrap_or_default();
    rm::Table {
        name: "positive-controls".into(),
        title: "Positive controls built from real weights, scored against their base".into(),
        caption: format!(
            "Each control is a checkpoint written by `nullprint derive` from a panel model's real weights (baselines/controls.toml), fingerprinted like any model. Noise is Gaussian with one absolute std for every tensor, `rel` times the base's median attention std. Panel p: rank of the score among the unrelated panel pairs, (1 + at or above)/(n + 1). Surrogate p: {surrogate} null of the (base, control) pair, {SURROGATE_SAMPLES} draws, ± its Monte-Carlo error; seeds are child streams of the master seed (stream 6, one per control). α = {alpha}."
        ),
        headers,
        rows,
    }
}

/// Power tables: per recipe, how often the surrogate null rejects at α; per threshold, how
/// many controls the threshold rule calls related.
pub fn power_tables(scored: &[Scored], thresholds: &[f64], alpha: f64) -> Vec<rm::RateTable> {
    if scored.is_empty() {
        return Vec::new();
    }
    let headline = scored[0].scores[0].0;
    let mut groups: BTreeMap<&str, Vec<&Scored>> = BTreeMap::new();
    let mut order = Vec::new();
    for s in scored {
        if !groups.contains_key(s.control.group.as_str()) {
            order.push(s.control.group.as_str());
        }
        groups.entry(&s.control.group).or_default().push(s);
    }
    let rate_row = |label: String, threshold: f64, count: u64, n: u64| rm::RateRow {
        label,
        threshold,
        threshold_source: None,
        count,
        n,
        rate: (n > 0).then(|| count as f64 / n as f64),
        interval: clopper_pearson(count, n, 0.95).ok().map(interval),
    };
    let by_surrogate = rm::RateTable {
        name: "power-real-weights-surrogate".into(),
        title: format!(
            "Power on positive controls built from real weights: {} null at α = {alpha}",
            scored[0].surrogate.name
        ),
        population: format!(
            "{} derived checkpoints (baselines/controls.toml), grouped by base and recipe; the rate counts p ≤ α",
            scored.len()
        ),
        measure: headline.name(),
        counts: Some(rm::COUNTS_P_AT_OR_BELOW_LEVEL.into()),
        rows: order
            .iter()
            .map(|g| {
                let members = &groups[g];
                let hit = members.iter().filter(|s| s.surrogate.p <= alpha).count() as u64;
                let (lo, hi) = min_max(members.iter().map(|s| s.scores[0].1));
                rate_row(
                    format!("{g} (scores {lo:.3}–{hi:.3})"),
                    alpha,
                    hit,
                    members.len() as u64,
                )
            })
            .collect(),
    };
    let by_threshold = rm::RateTable {
        name: "power-real-weights-thresholds".into(),
        title: "Positive controls built from real weights that a fixed threshold calls related".into(),
        population: format!(
            "all {} derived checkpoints; compare with the false-positive rate of the same threshold among unrelated pairs",
            scored.len()
        ),
        measure: headline.name(),
        counts: Some("a derived model whose score against its base is at or above the threshold".into()),
        rows: thresholds
            .iter()
            .map(|&t| {
                let hit = scored.iter().filter(|s| s.scores[0].1 >= t).count() as u64;
                rate_row(format!("score ≥ {t}"), t, hit, scored.len() as u64)
            })
            .collect(),
    };
    vec![by_surrogate, by_threshold]
}

/// A sentence for the verdict: what the controls show, computed.
pub fn verdict_sentence(scored: &[Scored], thresholds: &[f64], claimed: f64) -> String {
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
    let bases: std::collections::BTreeSet<&str> =
        scored.iter().map(|s| s.control.base.as_str()).collect();
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

fn min_max(v: impl Iterator<Item = f64>) -> (f64, f64) {
    v.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    })
}

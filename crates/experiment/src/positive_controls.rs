//! Positive controls built from real weights: each model derived from a panel checkpoint
//! (`baselines/controls.toml`, fingerprinted by `nullprint baselines`) is scored against its
//! base under every measure and tested against the panel null and a surrogate null, so the
//! report shows the test detecting real derivation next to its false-positive rate.

use std::path::Path;

use fingerprint::Fingerprint;
use null::curves::{CurveOptions, Curves};
use null::measure::{self, Measure, Prepared, Scratch};
use null::nulls::panel::panel_info;
use null::nulls::surrogate::{self, SurrogateKind, SurrogateOptions};
use null::nulls::{NullResult, Sampling};
use null::rng::child_seed;

use crate::analysis::Member;
use crate::error::{Error, Result};
use crate::index::{Control, ControlsIndex};
use crate::inputs::Inputs;
use crate::policy::CONTROL_SURROGATE_SAMPLES;

/// One control, scored.
#[derive(Clone, Debug)]
pub struct Scored {
    /// The control.
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

/// Everything [`evaluate`] needs from the experiment.
pub struct Setup<'a> {
    /// The controls' index file.
    pub index_path: &'a Path,
    /// The panel.
    pub members: &'a [Member],
    /// Curve options.
    pub curve_opts: &'a CurveOptions,
    /// Headline measure first.
    pub measures: &'a [Measure],
    /// Headline-measure scores of the unrelated panel pairs.
    pub unrelated: &'a [f64],
    /// Where the panel's pairs come from (its description).
    pub panel_source: &'a str,
    /// The surrogate null of each (base, control) pair.
    pub surrogate: SurrogateKind,
    /// Seed of the surrogate nulls (one child stream per control).
    pub seed: u64,
}

/// Load, check and score every control of the index.
pub fn evaluate(s: &Setup<'_>, inputs: &mut Inputs) -> Result<Vec<Scored>> {
    let controls = ControlsIndex::load(s.index_path)?;
    inputs.record(
        s.index_path,
        "positive controls' index (recipes, seeds, bases)",
    )?;
    let headline = s.measures[0];
    let panel = panel_info(s.panel_source, None);
    let mut out = Vec::with_capacity(controls.len());
    for (i, c) in controls.into_iter().enumerate() {
        let path = ControlsIndex::fingerprint_path(s.index_path, &c.id);
        if !path.is_file() {
            return Err(Error::Missing {
                path,
                hint: "run `just baselines` (after `just models all`) to derive and fingerprint it",
            });
        }
        let fp = inputs.fingerprint(&path, &format!("positive control {} ({})", c.id, c.group))?;
        let base = s.members.iter().find(|m| m.id == c.base).ok_or_else(|| {
            Error::invalid(
                s.index_path,
                "control.base",
                format!("{}: base {:?} is not in the panel", c.id, c.base),
            )
        })?;
        check_record(&fp, &c, base, &path)?;
        let mut curves = Curves::from_fingerprint(&fp, s.curve_opts)
            .map_err(Error::statistic(format!("{}: curves", path.display())))?;
        curves.model = c.id.clone();
        let pb = Prepared::new(&base.curves)?;
        let pc = Prepared::new(&curves)?;
        let mut scores = Vec::new();
        for &m in s.measures {
            let v = measure::score(&pb, &pc, m, &mut Scratch::default()).map_err(
                Error::statistic(format!("{}: {} vs its base", c.id, m.name())),
            )?;
            scores.push((m, v));
        }
        let score = scores[0].1;
        let panel = NullResult::from_scores(&panel, score, s.unrelated, None, Sampling::Panel)?;
        let seed = child_seed(s.seed, i as u64);
        let opts = SurrogateOptions {
            kind: s.surrogate,
            measure: headline,
            samples: CONTROL_SURROGATE_SAMPLES,
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
    let stale = |reason: String| {
        Err(Error::Stale {
            path: path.into(),
            reason,
        })
    };
    let Some(d) = &fp.model.derived else {
        return stale("no derivation record; run `just baselines` to rebuild it".into());
    };
    let want = c.recipe.to_string();
    if d.base != c.base || d.recipe != want || d.seed != c.seed {
        return stale(format!(
            "stale: made from {} by {} seed {}, but the index says {} by {want} seed {}; run `just baselines --force`",
            d.base, d.recipe, d.seed, c.base, c.seed
        ));
    }
    if !d.base_sha256.contains(&base.entry.sha256) {
        return stale(format!(
            "derived from weights with SHA-256 {:?}, not the panel's {} ({})",
            d.base_sha256, base.id, base.entry.sha256
        ));
    }
    Ok(())
}

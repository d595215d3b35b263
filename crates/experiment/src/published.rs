//! The published panel of an experiment: a null where the claim lives.
//!
//! A published per-layer table (GraphNet's, see [`null::published`]) read as a panel, labelled by
//! the written rules of [`null::lineage_rules`], tested with the depth and kind strata of the
//! panel null, fed with the own panel into the [`null::depth`] model, and used to calibrate the
//! surrogate nulls on its six-layer curves. The data is not part of the project: where it is
//! absent the section is left out and the report says how to get it ([`GET_DATA`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use null::calibrate::{surrogate_on_pairs, Calibration};
use null::curves::Curves;
use null::depth::{self, DepthModel, DepthPoint};
use null::labels::{Labels, Relation};
use null::lineage_rules::{self, Rule};
use null::measure::Measure;
use null::nulls::panel::{self, ObservedContext, PanelOptions, PanelReport};
use null::nulls::surrogate::{SurrogateKind, SurrogateOptions};
use null::published_panel::{self, Exclusions, Provenance, PublishedPanel};
use null::stats::quantile_sorted;
use null::table::PairTable;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Environment variable that overrides the experiment file's published-data directory.
pub const DATA_DIR_ENV: &str = "NULLPRINT_PUBLISHED_DATA";

/// How a user gets the published data (untested here: the project's machines have no network).
pub const GET_DATA: &str = "run `scripts/published-data.sh ../shared/published-data/graphnet` \
    (a sparse clone of PaddlePaddle/GraphNet at 1dcbd66 and the extraction of its per-layer \
    attention std table), or point NULLPRINT_PUBLISHED_DATA at a copy";

/// The roles of the published panel: the four attention projections of the published measure.
pub const ROLES: [&str; 4] = ["attn_q", "attn_k", "attn_v", "attn_o"];

/// Depth of the panel on which the surrogate nulls are calibrated (GraphNet's opus-mt curves).
pub const CALIBRATION_DEPTH: usize = 6;

/// Monte-Carlo samples per pair in the surrogate calibration.
pub const CALIBRATION_SAMPLES: usize = 999;

/// The directory of the published data: the environment override, else `configured`.
pub fn data_dir(configured: &Path) -> PathBuf {
    std::env::var_os(DATA_DIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| configured.to_owned())
}

/// The table file of a published-data directory, when present.
pub fn data_file(dir: &Path) -> Option<PathBuf> {
    null::published_panel::table_file(dir)
}

/// How rounding exact curves to the published decimals moves the score of each pair.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundingShift {
    /// Decimals rounded to.
    pub decimals: u32,
    /// Pairs compared.
    pub pairs: u64,
    /// Median |rounded − exact|.
    pub median_abs: f64,
    /// 95th percentile of |rounded − exact|.
    pub p95_abs: f64,
    /// Largest |rounded − exact| and its pair.
    pub max_abs: f64,
    /// The pair of the largest shift.
    pub max_pair: (String, String),
    /// Pairs that could not be scored after rounding (a curve rounded flat).
    pub failed: u64,
}

/// Round every curve to `decimals` and compare every pair's score with the exact one.
pub fn rounding_shift(curves: &[Curves], measure: Measure, decimals: u32) -> Result<RoundingShift> {
    let labels = Labels::singletons(curves.iter().map(|c| c.model.as_str()))?;
    let exact = PairTable::from_curves(curves, &labels, measure)?;
    let rounded: Vec<Curves> = curves
        .iter()
        .map(|c| published_panel::round_curves(c, decimals))
        .collect();
    let round = PairTable::from_curves(&rounded, &labels, measure)?;
    let by_pair: BTreeMap<(usize, usize), f64> =
        round.pairs.iter().map(|p| ((p.a, p.b), p.score)).collect();
    let mut shifts = Vec::new();
    let mut max = (0.0f64, (0, 0));
    for p in &exact.pairs {
        if let Some(&r) = by_pair.get(&(p.a, p.b)) {
            let d = (r - p.score).abs();
            if d > max.0 {
                max = (d, (p.a, p.b));
            }
            shifts.push(d);
        }
    }
    if shifts.is_empty() {
        return Err(Error::Null(null::Error::EmptyNull {
            name: "rounding shift".into(),
            reason: "no pair could be scored both exactly and rounded".into(),
        }));
    }
    shifts.sort_by(f64::total_cmp);
    Ok(RoundingShift {
        decimals,
        pairs: shifts.len() as u64,
        median_abs: quantile_sorted(&shifts, 0.5)?,
        p95_abs: quantile_sorted(&shifts, 0.95)?,
        max_abs: max.0,
        max_pair: (
            curves[max.1 .0].model.clone(),
            curves[max.1 .1].model.clone(),
        ),
        failed: (exact.pairs.len() - shifts.len()) as u64,
    })
}

/// Pairs one combination of rules labelled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleCount {
    /// Rule of the first model.
    pub a: Rule,
    /// Rule of the second model.
    pub b: Rule,
    /// The relation they give.
    pub relation: Relation,
    /// Pairs.
    pub pairs: u64,
}

/// Every figure of the published-panel section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PublishedStudy {
    /// Where the data comes from.
    pub provenance: Provenance,
    /// Rows read.
    pub rows: u64,
    /// Curves kept, by depth.
    pub curves_by_depth: BTreeMap<usize, usize>,
    /// Curves kept, by kind.
    pub curves_by_kind: BTreeMap<String, usize>,
    /// What was left out (init-like curves by id).
    pub excluded: Exclusions,
    /// The rules, as written.
    pub rules: Vec<(Rule, String)>,
    /// Pairs per rule combination and relation.
    pub rule_counts: Vec<RuleCount>,
    /// The panel null at the observed score, with depth and kind strata.
    pub panel: PanelReport,
    /// The depth model on the own and the published same-depth points.
    pub depth_model: DepthModel,
    /// Surrogate sizes on disjoint unrelated six-layer pairs.
    pub surrogate_sizes: Vec<Calibration>,
    /// How rounding the own panel's exact curves to the published decimals moves its scores.
    pub rounding_shift: Option<RoundingShift>,
}

/// How the report describes the committed summary among its inputs (the same words whether
/// the data was on the machine or not, so the report is too).
pub const SUMMARY_INPUT: &str = "published-panel study, committed (GraphNet figures computed \
    by `just published-summary`; recomputed from the data and checked where it is present)";

/// The study as committed: the figures, without per-pair lists (related pairs by name), which
/// are the data's, not summary figures, and with each QQ series thinned to
/// [`SUMMARY_QQ_POINTS`] (the KS statistics and rates were computed from every p-value).
pub fn summary_of(mut study: PublishedStudy) -> PublishedStudy {
    study.panel.excluded.related_pairs.clear();
    for c in &mut study.surrogate_sizes {
        let step = c.qq.len().div_ceil(SUMMARY_QQ_POINTS).max(1);
        let last = c.qq.len().saturating_sub(1);
        c.qq =
            c.qq.iter()
                .enumerate()
                .filter(|(i, _)| i % step == 0 || *i == last)
                .map(|(_, q)| *q)
                .collect();
    }
    study
}

/// QQ points kept per surrogate in a summary (the figures draw at most 200).
pub const SUMMARY_QQ_POINTS: usize = 200;

/// The command that writes a summary, as its file records it.
pub const SUMMARY_COMMAND: &str =
    "just published-summary NAME (nullprint reproduce experiments/NAME.toml --write-published-summary)";

/// A committed summary file: what computed it, then the figures.
#[derive(Serialize, Deserialize)]
struct SummaryFile {
    /// The command that wrote it.
    computed_by: String,
    /// The figures.
    study: PublishedStudy,
}

/// Read a committed summary.
pub fn read_summary(path: &Path) -> Result<PublishedStudy> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let file: SummaryFile = serde_json::from_slice(&bytes).map_err(|e| Error::Invalid {
        path: path.into(),
        field: "published-panel summary".into(),
        reason: e.to_string(),
    })?;
    Ok(file.study)
}

/// The bytes of a summary file: pretty JSON, one trailing newline (f64s round-trip exactly).
pub fn summary_bytes(study: &PublishedStudy) -> Result<Vec<u8>> {
    let file = SummaryFile {
        computed_by: SUMMARY_COMMAND.to_owned(),
        study: study.clone(),
    };
    let mut v = serde_json::to_vec_pretty(&file).map_err(|e| Error::Invalid {
        path: PathBuf::from("published-panel summary"),
        field: "serialise".into(),
        reason: e.to_string(),
    })?;
    v.push(b'\n');
    Ok(v)
}

/// What the study needs to know about the claim.
#[derive(Clone, Debug, PartialEq)]
pub struct StudyOptions {
    /// The observed score.
    pub observed: f64,
    /// The claimed models' depths and kinds.
    pub context: ObservedContext,
    /// Thresholds of the false-positive rates and the depth model.
    pub thresholds: Vec<f64>,
    /// Depth at which the depth model predicts.
    pub predict_depth: usize,
    /// Seed of the bootstrap and the surrogates.
    pub seed: u64,
    /// Run the surrogate calibration (a few seconds per surrogate).
    pub calibrate_surrogates: bool,
}

/// Run the study of `panel`, with the own panel's table for the depth model.
pub fn study(
    panel: &PublishedPanel,
    own: Option<(&PairTable, &[Curves])>,
    opts: &StudyOptions,
) -> Result<PublishedStudy> {
    let curves: Vec<Curves> = panel.curves.iter().map(|c| c.curves.clone()).collect();
    let rl = lineage_rules::label(&panel.curves)?;
    let ids: Vec<&str> = curves.iter().map(|c| c.model.as_str()).collect();
    let rule_counts = lineage_rules::count_pairs(&rl, &ids)
        .into_iter()
        .map(|((a, b, relation), pairs)| RuleCount {
            a,
            b,
            relation,
            pairs,
        })
        .collect();
    let mut table = PairTable::from_curves(&curves, &rl.labels, Measure::HonestAgi)?;
    table.source = format!("published panel: {}", panel.provenance.describe());
    let kinds: BTreeMap<String, String> = panel
        .curves
        .iter()
        .map(|c| (c.curves.model.clone(), c.kind.name().to_owned()))
        .filter(|(_, k)| k != "unknown")
        .collect();
    let report = panel::test(
        &table,
        opts.observed,
        &PanelOptions {
            thresholds: opts.thresholds.clone(),
            matched_grid: crate::policy::rate_grid(),
            context: opts.context.clone(),
            depth_strata: true,
            kinds,
            ..Default::default()
        },
    )?;

    let mut points: Vec<DepthPoint> = Vec::new();
    let mut rounding = None;
    if let Some((own, own_curves)) = own {
        points.extend(depth::same_depth_points(own, &opts.thresholds)?);
        if let Some(d) = panel.provenance.decimals {
            rounding = Some(rounding_shift(own_curves, Measure::HonestAgi, d)?);
        }
    }
    points.extend(depth::same_depth_points(&table, &opts.thresholds)?);
    let depth_model = depth::fit(&points, &opts.thresholds, opts.predict_depth, opts.seed)?;

    let surrogate_sizes = if opts.calibrate_surrogates {
        calibrate_six_layer(&curves, &rl.labels, opts.seed)?
    } else {
        Vec::new()
    };

    let mut curves_by_depth = BTreeMap::new();
    let mut curves_by_kind = BTreeMap::new();
    for c in &panel.curves {
        *curves_by_depth.entry(c.layers()).or_default() += 1;
        *curves_by_kind.entry(c.kind.name().to_owned()).or_default() += 1;
    }
    Ok(PublishedStudy {
        provenance: panel.provenance.clone(),
        rows: panel.rows,
        curves_by_depth,
        curves_by_kind,
        excluded: panel.excluded.clone(),
        rules: [
            Rule::OpusMtPairAssumed,
            Rule::SeparateSizes,
            Rule::FineTunesShareBase,
            Rule::Unknown,
        ]
        .into_iter()
        .map(|r| (r, r.text().to_owned()))
        .collect(),
        rule_counts,
        panel: report,
        depth_model,
        surrogate_sizes,
        rounding_shift: rounding,
    })
}

/// Disjoint unrelated pairs of the six-layer curves (greedy in id order), so that their
/// p-values are independent; then every surrogate null's size on them.
pub fn calibrate_six_layer(
    curves: &[Curves],
    labels: &Labels,
    seed: u64,
) -> Result<Vec<Calibration>> {
    let six: Vec<usize> = (0..curves.len())
        .filter(|&i| curves[i].max_layers() == CALIBRATION_DEPTH)
        .collect();
    let mut used = vec![false; curves.len()];
    let mut pairs = Vec::new();
    for (k, &i) in six.iter().enumerate() {
        if used[i] {
            continue;
        }
        if let Some(&j) = six[k + 1..].iter().find(|&&j| {
            !used[j] && labels.relation(&curves[i].model, &curves[j].model) == Relation::Unrelated
        }) {
            used[i] = true;
            used[j] = true;
            pairs.push((i, j));
        }
    }
    let name = format!(
        "{} disjoint unrelated {CALIBRATION_DEPTH}-layer pairs of the published panel",
        pairs.len()
    );
    let mut out = Vec::new();
    for kind in SurrogateKind::ALL {
        let o = SurrogateOptions {
            kind,
            measure: Measure::HonestAgi,
            samples: CALIBRATION_SAMPLES,
            seed,
        };
        out.push(surrogate_on_pairs(curves, &pairs, &name, &o)?);
    }
    Ok(out)
}

/// The own panel of `index_path` (baselines/index.toml): its curves (model = index id), kinds
/// and the table of every pair with the index's lineage labels.
pub fn own_panel(
    index_path: &Path,
    curve_opts: &null::curves::CurveOptions,
    measure: Measure,
) -> Result<(Vec<Curves>, BTreeMap<String, String>, PairTable)> {
    let index = crate::index::PanelIndex::load(index_path)?;
    let mut inputs = crate::inputs::Inputs::default();
    let mut curves = Vec::new();
    let mut kinds = BTreeMap::new();
    let mut models = BTreeMap::new();
    for m in &index.model {
        let path = crate::index::PanelIndex::fingerprint_path(index_path, &m.id);
        let fp = inputs.fingerprint(&path, "baseline fingerprint")?;
        let mut c = Curves::from_fingerprint(&fp, curve_opts)
            .map_err(Error::statistic(format!("{}: curves", path.display())))?;
        c.model = m.id.clone();
        models.insert(m.id.clone(), m.label(Some(c.max_layers())));
        kinds.insert(m.id.clone(), m.kind.clone());
        curves.push(c);
    }
    let labels = Labels::new(models, Vec::new())?;
    let table = PairTable::from_curves(&curves, &labels, measure)?;
    Ok((curves, kinds, table))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curves(model: &str, q: &[f64]) -> Curves {
        Curves::new(model, BTreeMap::from([("attn_q".to_string(), q.to_vec())])).unwrap()
    }

    #[test]
    fn rounding_shift_measures_the_score_change() {
        // b is a with a wiggle below the rounding step: rounding to 2 decimals erases it.
        let a = curves("a", &[0.1, 0.2, 0.3, 0.25]);
        let b = curves("b", &[0.1, 0.2031, 0.3, 0.2469]);
        let c = curves("c", &[0.3, 0.1, 0.2, 0.4]);
        let s = rounding_shift(&[a.clone(), b.clone(), c], Measure::HonestAgi, 2).unwrap();
        assert_eq!(s.pairs, 3);
        assert_eq!(s.failed, 0);
        let exact = null::similarity(&a, &b, &Default::default()).unwrap().score;
        assert!(exact < 1.0);
        // After rounding a and b are identical: their shift is 1 - exact.
        assert!(s.max_abs >= 1.0 - exact - 1e-12);
        // A curve rounded flat cannot be scored: counted, not hidden.
        let flat = curves("f", &[0.101, 0.102, 0.099, 0.1]);
        let s2 = rounding_shift(&[a, b, flat], Measure::HonestAgi, 2).unwrap();
        assert_eq!((s2.pairs, s2.failed), (1, 2));
    }

    #[test]
    fn absent_data_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        assert!(data_file(dir.path()).is_none());
        std::fs::write(dir.path().join(null::published_panel::LONG_FILE), "x").unwrap();
        assert!(data_file(dir.path()).is_some());
    }
}

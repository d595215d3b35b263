//! The analysis of an experiment: every number the report shows, computed from the experiment
//! file and the panel it names, before any of it is turned into report rows.
//!
//! Order: the panel (fingerprints → curves → all pairs), the claim (recomputed when its weights
//! are here), the panel null with its strata, the positive controls built from real weights
//! (checked first: a stale control stops the run before the long nulls), surrogate nulls of the
//! comparable pair, each surrogate's size on the real panel, simulated controls and their
//! power, the specification curve, ROC inputs, the held-out threshold and the calibration
//! simulation. Every Monte-Carlo step draws from a named child stream of the master seed
//! ([`crate::policy::seed_stream`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fingerprint::Fingerprint;
use null::calibrate::{Calibration, SimCalibration, SimNull};
use null::calibrated::Reference;
use null::curves::{CurveOptions, Curves, StackChoice};
use null::derivation::{Derivation, InsertMode};
use null::labels::{Labels, Relation};
use null::measure::{self, Measure, MeasureOptions, Prepared, Scratch};
use null::nulls::panel::{self, BlockRepresentative, ObservedContext, PanelOptions, PanelReport};
use null::nulls::surrogate::{self, SurrogateKind, SurrogateOptions};
use null::nulls::{NullResult, Sampling};
use null::power::{PowerConfig, PowerNull, PowerRow};
use null::pvalue::Rate;
use null::rng::{child_seed, stream};
use null::roc::{HeldOut, Roc};
use null::sim::NullModel;
use null::table::PairTable;

use crate::error::{Error, Result};
use crate::index::{PanelIndex, PanelModel};
use crate::inputs::Inputs;
use crate::policy::{self, seed_stream};
use crate::positive_controls::{self, Scored};
use crate::spec::Experiment;

/// One panel model, loaded.
#[derive(Clone, Debug)]
pub struct Member {
    /// Its panel id.
    pub id: String,
    /// Its fingerprint.
    pub fp: Fingerprint,
    /// Its curves under the experiment's options.
    pub curves: Curves,
    /// Its index entry (lineage labels, provenance).
    pub entry: PanelModel,
}

/// The claim recomputed from weights found on this machine.
#[derive(Clone, Debug)]
pub struct Recomputed {
    /// The score of the claimed pair.
    pub score: f64,
    /// Curves of the first claimed model.
    pub a: Curves,
    /// Curves of the second.
    pub b: Curves,
}

/// A surrogate null of the comparable pair, tested at its own score and at the claimed value.
#[derive(Clone, Debug)]
pub struct SurrogatePair {
    /// The surrogate.
    pub kind: SurrogateKind,
    /// Every draw (for the figure).
    pub draws: Vec<f64>,
    /// The pair's own score against the draws.
    pub of_pair: NullResult,
    /// The claimed value against the draws.
    pub of_claim: NullResult,
    /// The pair's score.
    pub pair_score: f64,
}

/// One point of the specification curve: the comparable pair's score under one set of choices.
#[derive(Clone, Debug)]
pub struct SpecPoint {
    /// Role subset, as printed (`q,k,v,o`).
    pub roles: &'static str,
    /// Std convention.
    pub ddof: u32,
    /// Depth alignment, in words.
    pub depth: &'static str,
    /// Measure.
    pub measure: Measure,
    /// Score; `None` when undefined.
    pub score: Option<f64>,
    /// The published analysis.
    pub headline: bool,
}

/// A surrogate null's p-values calibrated on real unrelated pairs.
#[derive(Clone, Debug)]
pub struct CalibratedSurrogate {
    /// The surrogate.
    pub kind: SurrogateKind,
    /// The comparable pair's p, calibrated (its models left out of the reference).
    pub of_pair: Option<NullResult>,
    /// Every reference pair calibrated on the pairs sharing no model with it, ties randomised:
    /// uniform if the calibration holds.
    pub held_out: Calibration,
}

/// The ROC of one measure: related pairs and positive controls against unrelated pairs.
#[derive(Clone, Debug)]
pub struct MeasureRoc {
    /// The measure.
    pub measure: Measure,
    /// Its ROC.
    pub roc: Roc,
}

/// Every number of the report, computed.
#[derive(Clone, Debug)]
pub struct Analysis {
    /// The experiment.
    pub exp: Experiment,
    /// The experiment file, as given.
    pub experiment_path: std::path::PathBuf,
    /// Headline measure.
    pub measure: Measure,
    /// Headline first, then the compared measures.
    pub measures: Vec<Measure>,
    /// Curve options.
    pub curve_opts: CurveOptions,
    /// The panel.
    pub members: Vec<Member>,
    /// Their lineage labels.
    pub labels: Labels,
    /// All pairs, headline measure.
    pub table: PairTable,
    /// The panel null at the observed value.
    pub panel: PanelReport,
    /// Headline scores of the unrelated pairs.
    pub unrelated: Vec<f64>,
    /// The value tested: recomputed when possible, else published.
    pub observed: f64,
    /// The claim recomputed from weights.
    pub recomputed: Option<Recomputed>,
    /// The comparable pair (indices into `members`).
    pub pair: Option<(usize, usize)>,
    /// Surrogate nulls of the comparable pair.
    pub surrogates: Vec<SurrogatePair>,
    /// Each surrogate null's p-values over the real unrelated pairs.
    pub surrogate_size: Vec<Calibration>,
    /// The same p-values, by pair: each surrogate null's calibration reference.
    pub references: Vec<Reference>,
    /// Each surrogate null's p for the comparable pair, calibrated on its reference, and the
    /// held-out check of that calibration.
    pub calibrated: Vec<CalibratedSurrogate>,
    /// The answer for the claim, resting on the panel p at the observed value.
    pub answer: null::answer::Classified,
    /// How often the answer rule gives each answer on real labelled pairs (held out).
    pub answer_rates: Vec<crate::answers::GroupAnswers>,
    /// Power on simulated derivations.
    pub power: Vec<PowerRow>,
    /// One example score per simulated derivation and measure: measure → (derivation, score).
    pub simulated_controls: BTreeMap<String, Vec<(String, f64)>>,
    /// Positive controls built from real weights.
    pub real_controls: Vec<Scored>,
    /// The specification curve (empty when the claim is recomputed or there is no pair).
    pub spec: Vec<SpecPoint>,
    /// ROC per measure.
    pub roc: Vec<MeasureRoc>,
    /// The false-positive rate of the unrelated pairs on a grid of thresholds.
    pub fpr_curve: Vec<Rate>,
    /// The leave-one-model-out threshold, or why it could not be computed.
    pub held_out: std::result::Result<HeldOut, String>,
    /// The panel null on simulated unrelated curves.
    pub simulated_calibration: Calibration,
    /// Each real unrelated pair against the panel without its models.
    pub leave_one_out: Option<Calibration>,
    /// Every input file read.
    pub inputs: Inputs,
    /// The published panel: its study, or why it was left out.
    pub published_panel: PublishedOutcome,
    /// The seed lab, when the experiment names one.
    pub lab: Option<crate::seed_lab::LabStudy>,
}

/// What became of the experiment's `[published_panel]`.
#[derive(Clone, Debug, PartialEq)]
pub enum PublishedOutcome {
    /// The experiment names no published panel.
    NotConfigured,
    /// The data is not on this machine: the section is left out.
    Absent {
        /// Where it was looked for.
        dir: PathBuf,
    },
    /// The study of the published panel.
    Present(Box<crate::published::PublishedStudy>),
}

/// Fingerprints a claimed model found on this machine (through the fingerprint cache).
pub type FingerprintModel<'a> =
    &'a dyn Fn(&fingerprint::source::ModelSource, &[fingerprint::Role]) -> Result<Fingerprint>;

/// How to run an analysis.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Rewrite the experiment's committed published-panel summary from the data on this
    /// machine instead of checking it.
    pub write_published_summary: bool,
}

/// Run the whole analysis of the experiment file at `path`.
pub fn analyse(
    path: &Path,
    fingerprint_model: FingerprintModel<'_>,
    opts: &Options,
) -> Result<Analysis> {
    let exp = Experiment::load(path)?;
    // A published per-layer table is read and checked before any computation.
    let published_data = match (&exp.published_panel, exp.published_dir(path)) {
        (Some(_), Some(dir)) if crate::published::data_file(&dir).is_some() => Some(
            null::published_panel::read_dir(&dir, &crate::published::ROLES)?,
        ),
        _ => None,
    };
    let index_path = exp.index_path(path);
    let index = PanelIndex::load(&index_path)?;
    let measure = exp.measure.name;
    let measures = exp.measures();
    let curve_opts = CurveOptions {
        roles: exp.measure.roles.clone(),
        stack: StackChoice::Auto,
        ddof: exp.measure.ddof,
    };

    // The panel: fingerprints computed by nullprint, hashed into the provenance.
    let mut inputs = Inputs::default();
    inputs.record(path, "experiment file (claim, published figures, settings)")?;
    inputs.record(
        &index_path,
        "baseline panel index (lineage labels, weight hashes)",
    )?;
    let mut members = Vec::new();
    for m in &index.model {
        let fp_path = PanelIndex::fingerprint_path(&index_path, &m.id);
        if !fp_path.is_file() {
            return Err(Error::Missing {
                path: fp_path,
                hint: "run `just baselines` (after `just models all`) to compute it",
            });
        }
        let fp = inputs.fingerprint(&fp_path, &format!("baseline fingerprint of {}", m.id))?;
        m.check_fingerprint(&fp, &fp_path, &index)?;
        let mut curves = Curves::from_fingerprint(&fp, &curve_opts)
            .map_err(Error::statistic(format!("{}: curves", fp_path.display())))?;
        curves.model = m.id.clone();
        members.push(Member {
            id: m.id.clone(),
            fp,
            curves,
            entry: m.clone(),
        });
    }
    let labels = Labels::new(
        members
            .iter()
            .map(|m| (m.id.clone(), m.entry.label(Some(m.curves.max_layers()))))
            .collect(),
        Vec::new(),
    )?;
    let curves: Vec<Curves> = members.iter().map(|m| m.curves.clone()).collect();
    let table = PairTable::from_curves(&curves, &labels, measure)?;

    // The observed value: recomputed when the user holds both claimed models, else cited.
    let recomputed = recompute_claim(&exp, &curve_opts, measure, fingerprint_model)?;
    let observed = recomputed.as_ref().map_or(exp.claim.value, |r| r.score);

    // Panel null.
    let panel_opts = PanelOptions {
        thresholds: exp.nulls.thresholds.clone(),
        context: ObservedContext {
            layers: exp.claim.layers.map(|l| (l[0], l[1])),
            families: None,
            kinds: None,
        },
        exclude: Vec::new(),
        block: BlockRepresentative::Median,
        ..Default::default()
    };
    let panel = panel::test(&table, observed, &panel_opts)?;
    let unrelated = table.scores(Relation::Unrelated);

    // Positive controls built from real weights (checked before the long nulls).
    let real_controls = match exp.controls_path(path) {
        Some(controls_path) => positive_controls::evaluate(
            &positive_controls::Setup {
                index_path: &controls_path,
                members: &members,
                curve_opts: &curve_opts,
                measures: &measures,
                unrelated: &unrelated,
                panel_source: &table.source,
                surrogate: SurrogateKind::TREND,
                seed: child_seed(exp.nulls.seed, seed_stream::REAL_CONTROLS),
            },
            &mut inputs,
        )?,
        None => Vec::new(),
    };

    // Surrogate nulls of a comparable real pair.
    let pair = pair_of(&exp, path, &members)?;
    let mut surrogates = Vec::new();
    if let Some((ia, ib)) = pair {
        let pa = Prepared::new(&members[ia].curves)?;
        let pb = Prepared::new(&members[ib].curves)?;
        let pair_score = measure::score(&pa, &pb, measure, &mut Scratch::default())?;
        for (i, &kind) in exp.nulls.surrogates.iter().enumerate() {
            let seed = child_seed(child_seed(exp.nulls.seed, seed_stream::SURROGATE), i as u64);
            let opts = SurrogateOptions {
                kind,
                measure,
                samples: exp.nulls.samples,
                seed,
            };
            let draws = surrogate::surrogate_scores(&pa, &pb, &opts)?;
            let sampling = if matches!(kind, SurrogateKind::Circular) {
                Sampling::Exhaustive
            } else {
                Sampling::MonteCarlo
            };
            let seed_used = (sampling == Sampling::MonteCarlo).then_some(seed);
            let info = kind.info();
            let of_pair =
                NullResult::from_scores(&info, pair_score, &draws.scores, seed_used, sampling)?;
            let of_claim = NullResult::from_scores(
                &info,
                exp.claim.value,
                &draws.scores,
                seed_used,
                sampling,
            )?;
            surrogates.push(SurrogatePair {
                kind,
                draws: draws.scores,
                of_pair,
                of_claim,
                pair_score,
            });
        }
    }

    // The size of each surrogate null on real data: its p-values for the real unrelated pairs,
    // which are also the reference its single-pair p-values are calibrated on.
    let mut surrogate_size = Vec::new();
    let mut references = Vec::new();
    for (i, &kind) in exp.nulls.surrogates.iter().enumerate() {
        let seed = child_seed(child_seed(exp.nulls.seed, seed_stream::SIZE), i as u64);
        let opts = SurrogateOptions {
            kind,
            measure,
            samples: exp.nulls.samples.min(policy::SIZE_SAMPLES),
            seed,
        };
        let reference = Reference::build(&curves, &labels, &opts, &table.source)?;
        let ps: Vec<f64> = reference.pairs.iter().map(|r| r.p).collect();
        let mut size = Calibration::from_pvalues(
            &format!("unrelated pairs of {}", table.source),
            &kind.to_string(),
            measure,
            Some(seed),
            &ps,
        )?;
        size.notes.push(
            "pairs share models, so their p-values are dependent: the KS p-value is indicative only"
                .into(),
        );
        surrogate_size.push(size);
        references.push(reference);
    }
    let calibrated = calibrated_surrogates(
        &exp.nulls.surrogates,
        &surrogates,
        &references,
        (&members, pair),
        (exp.nulls.seed, measure),
    )?;

    // Simulated positive controls: derivations of a real fingerprint, and the power to detect them.
    let (power, simulated_controls) = match &exp.controls {
        Some(c) if c.base.is_some() => {
            let base_id = c.base.as_deref().unwrap_or_default();
            let base = members.iter().find(|m| m.id == base_id).ok_or_else(|| {
                Error::invalid(
                    path,
                    "controls.base",
                    format!("{base_id:?} is not in the panel"),
                )
            })?;
            let derivations = simulated_derivations(&c.noise, base.curves.max_layers());
            let cfg = PowerConfig {
                derivations: derivations.clone(),
                measures: measures.clone(),
                // The panel's smallest attainable p is 1/(n+1); a surrogate null of the derived
                // pair can go lower, so power is reported against both.
                nulls: vec![
                    PowerNull::Panel,
                    PowerNull::Surrogate {
                        surrogate: SurrogateKind::TREND,
                        samples: policy::POWER_SURROGATE_SAMPLES,
                    },
                ],
                alpha: exp.nulls.alpha,
                replicates: c.replicates,
                seed: child_seed(exp.nulls.seed, seed_stream::POWER),
            };
            let rows =
                null::power::power(std::slice::from_ref(&base.curves), &curves, &labels, &cfg)?;
            let scores = example_scores(
                &base.curves,
                &derivations,
                &measures,
                child_seed(exp.nulls.seed, seed_stream::CONTROLS),
            )?;
            (rows, scores)
        }
        _ => (Vec::new(), BTreeMap::new()),
    };

    let spec = match (&recomputed, pair) {
        (None, Some((a, b))) => spec_curve(&members[a], &members[b], &curve_opts, &measures)?,
        _ => Vec::new(),
    };
    let roc = rocs(
        &members,
        &labels,
        &table,
        measure,
        &measures,
        &real_controls,
        &simulated_controls,
    )?;
    let grid = policy::rate_grid();
    let fpr_curve = null::pvalue::rates_at_or_above(&unrelated, &grid)?;
    let held_out = null::roc::held_out(
        &table,
        null::roc::ThresholdRule::Fpr(policy::HELD_OUT_FPR),
        null::roc::Grouping::Model,
    )
    .map_err(|e| e.to_string());
    let simulated_calibration = null::calibrate::simulate(&SimCalibration {
        null: SimNull::Panel {
            models: policy::CALIBRATION_PANEL_MODELS,
        },
        measure,
        model: NullModel::default(),
        replicates: policy::CALIBRATION_REPLICATES,
        seed: child_seed(exp.nulls.seed, seed_stream::CALIBRATION),
    })?;
    let leave_one_out = null::calibrate::leave_one_out(&table).ok();
    let answer = null::answer::classify(Some(&panel.null), exp.nulls.alpha);
    let answer_rates = crate::answers::measure(&table, &real_controls, exp.nulls.alpha)?;

    let published_panel = published_outcome(
        &exp,
        path,
        (&table, &curves),
        observed,
        published_data,
        &mut inputs,
        opts,
    )?;

    let mut lab = match exp.lab_dir(path) {
        Some(dir) => Some(crate::seed_lab::study(
            &dir,
            &curve_opts,
            &MeasureOptions::new(measure),
            observed,
            &unrelated,
            &mut inputs,
        )?),
        None => None,
    };
    if let (Some(l), PublishedOutcome::Present(study)) = (&mut lab, &published_panel) {
        l.depth_model = Some(crate::seed_lab::depth_with_lab(
            l,
            &study.depth_model,
            exp.claim.layers.map_or(48, |x| x[0].max(x[1])),
            child_seed(exp.nulls.seed, seed_stream::DEPTH_WITH_LAB),
        )?);
    }
    // The seed lab's derived snapshots under the trend-preserving surrogate, calibrated on the
    // panel's reference of that null (same draw count, so the p-values are comparable).
    let trend = exp
        .nulls
        .surrogates
        .iter()
        .position(|&k| k == SurrogateKind::TREND);
    if let (Some(l), Some(i)) = (&mut lab, trend) {
        l.calibrated = crate::seed_lab::calibrate_snapshots(
            l,
            &references[i],
            &SurrogateOptions {
                kind: SurrogateKind::TREND,
                measure,
                samples: exp.nulls.samples.min(policy::SIZE_SAMPLES),
                seed: child_seed(exp.nulls.seed, seed_stream::LAB_SURROGATE),
            },
        )?;
    }

    Ok(Analysis {
        lab,
        published_panel,
        exp,
        experiment_path: path.to_path_buf(),
        measure,
        measures,
        curve_opts,
        members,
        labels,
        table,
        panel,
        unrelated,
        observed,
        recomputed,
        pair,
        surrogates,
        surrogate_size,
        references,
        calibrated,
        answer,
        answer_rates,
        power,
        simulated_controls,
        real_controls,
        spec,
        roc,
        fpr_curve,
        held_out,
        simulated_calibration,
        leave_one_out,
        inputs,
    })
}

/// Each surrogate null's p for the comparable pair referred to its reference, and the held-out
/// calibration of every reference pair (ties randomised from the calibration seed stream).
fn calibrated_surrogates(
    kinds: &[SurrogateKind],
    surrogates: &[SurrogatePair],
    references: &[Reference],
    (members, pair): (&[Member], Option<(usize, usize)>),
    (seed, measure): (u64, Measure),
) -> Result<Vec<CalibratedSurrogate>> {
    let ids: Vec<&str> = pair
        .map(|(a, b)| vec![members[a].id.as_str(), members[b].id.as_str()])
        .unwrap_or_default();
    references
        .iter()
        .enumerate()
        .map(|(i, reference)| {
            let of_pair = surrogates
                .get(i)
                .map(|s| reference.calibrate(&s.of_pair, &ids))
                .transpose()?;
            let held = reference.held_out(Some(child_seed(
                child_seed(seed, seed_stream::CALIBRATED),
                i as u64,
            )))?;
            let mut held_out = Calibration::from_pvalues(
                &format!("held-out unrelated pairs of {}", reference.source),
                &format!("{} calibrated", reference.null),
                measure,
                None,
                &held,
            )?;
            held_out
                .notes
                .push(null::calibrated::REFERENCE_DEPENDENCE.to_owned());
            Ok(CalibratedSurrogate {
                kind: kinds[i],
                of_pair,
                held_out,
            })
        })
        .collect()
}

/// The published-panel study when `[published_panel]` is configured: recomputed from the data
/// when it is present (and checked against the committed summary, or written to it when
/// `opts.write_published_summary`), read from the committed summary when the data is absent.
fn published_outcome(
    exp: &Experiment,
    path: &Path,
    own: (&PairTable, &[Curves]),
    observed: f64,
    data: Option<null::published_panel::PublishedPanel>,
    inputs: &mut Inputs,
    opts: &Options,
) -> Result<PublishedOutcome> {
    use crate::published::{read_summary, summary_bytes, summary_of, SUMMARY_INPUT};
    let (Some(spec), Some(dir)) = (&exp.published_panel, exp.published_dir(path)) else {
        return Ok(PublishedOutcome::NotConfigured);
    };
    let summary = exp.published_summary_path(path);
    let Some(file) = crate::published::data_file(&dir) else {
        return match summary {
            Some(sp) if sp.is_file() && !opts.write_published_summary => {
                let study = read_summary(&sp)?;
                inputs.record(&sp, SUMMARY_INPUT)?;
                Ok(PublishedOutcome::Present(Box::new(study)))
            }
            _ => Ok(PublishedOutcome::Absent { dir }),
        };
    };
    // Read and checked before the computation began; read here only if it appeared since.
    let panel = match data {
        Some(p) => p,
        None => null::published_panel::read_dir(&dir, &crate::published::ROLES)?,
    };
    let study = crate::published::study(
        &panel,
        Some(own),
        &crate::published::StudyOptions {
            observed,
            context: ObservedContext {
                layers: exp.claim.layers.map(|l| (l[0], l[1])),
                families: None,
                kinds: spec.kinds.clone().map(|[a, b]| (a, b)),
            },
            thresholds: null::depth::DEPTH_THRESHOLDS.to_vec(),
            predict_depth: exp.claim.layers.map_or(48, |l| l[0].max(l[1])),
            seed: exp.nulls.seed,
            calibrate_surrogates: spec.calibrate_surrogates,
        },
    )?;
    let Some(sp) = summary else {
        inputs.record(&file, "published per-layer table (not part of the project)")?;
        return Ok(PublishedOutcome::Present(Box::new(study)));
    };
    let study = summary_of(study);
    let bytes = summary_bytes(&study)?;
    if opts.write_published_summary {
        output::write_atomic(&sp, &bytes, true).map_err(|e| Error::Invalid {
            path: sp.clone(),
            field: "published-panel summary".into(),
            reason: e.to_string(),
        })?;
    } else if !sp.is_file() {
        return Err(Error::Missing {
            path: sp,
            hint: "write it with `just published-summary` (the published data is here)",
        });
    } else if read_summary(&sp)? != study {
        return Err(Error::Stale {
            path: sp,
            reason: "the published panel recomputed from the data on this machine differs from \
                     the committed summary; rewrite it with `just published-summary`"
                .into(),
        });
    }
    inputs.record(&sp, SUMMARY_INPUT)?;
    Ok(PublishedOutcome::Present(Box::new(study)))
}

fn pair_of(exp: &Experiment, path: &Path, members: &[Member]) -> Result<Option<(usize, usize)>> {
    let Some([a, b]) = &exp.nulls.pair else {
        return Ok(None);
    };
    let find = |id: &str| {
        members.iter().position(|m| m.id == id).ok_or_else(|| {
            Error::invalid(path, "nulls.pair", format!("{id:?} is not in the panel"))
        })
    };
    Ok(Some((find(a)?, find(b)?)))
}

/// When both claimed models can be found on this machine, fingerprint them and score the pair.
fn recompute_claim(
    exp: &Experiment,
    opts: &CurveOptions,
    m: Measure,
    fingerprint_model: FingerprintModel<'_>,
) -> Result<Option<Recomputed>> {
    let (Some(wa), Some(wb)) = (&exp.claim.weights_a, &exp.claim.weights_b) else {
        return Ok(None);
    };
    let (Ok(sa), Ok(sb)) = (
        fingerprint::source::resolve(wa),
        fingerprint::source::resolve(wb),
    ) else {
        return Ok(None);
    };
    let roles: Vec<fingerprint::Role> = opts.roles.iter().map(|r| r.role.clone()).collect();
    let fa = fingerprint_model(&sa, &roles)?;
    let fb = fingerprint_model(&sb, &roles)?;
    let a =
        Curves::from_fingerprint(&fa, opts).map_err(Error::statistic(format!("{wa}: curves")))?;
    let b =
        Curves::from_fingerprint(&fb, opts).map_err(Error::statistic(format!("{wb}: curves")))?;
    let score = measure::similarity(&a, &b, &MeasureOptions::new(m))?.score;
    Ok(Some(Recomputed { score, a, b }))
}

/// The simulated derivations of a real fingerprint: each noise level, then drift, upcycling,
/// inserted (duplicated and interpolated) and pruned layers (see [`crate::policy`]).
fn simulated_derivations(noise: &[f64], layers: usize) -> Vec<Derivation> {
    let mut d: Vec<Derivation> = noise.iter().map(|&rel| Derivation::Noise { rel }).collect();
    d.push(Derivation::Drift {
        rel: policy::SIM_DRIFT_REL,
    });
    d.push(Derivation::Upcycle {
        experts: policy::SIM_UPCYCLE_EXPERTS,
        rel: policy::SIM_STRUCTURAL_REL,
    });
    let k = (layers / policy::SIM_LAYERS_PER_EDIT).max(1);
    d.push(Derivation::Insert {
        count: k,
        mode: InsertMode::Duplicate,
        rel: policy::SIM_STRUCTURAL_REL,
    });
    d.push(Derivation::Insert {
        count: k,
        mode: InsertMode::Interpolate,
        rel: policy::SIM_STRUCTURAL_REL,
    });
    d.push(Derivation::Prune {
        count: k,
        rel: policy::SIM_STRUCTURAL_REL,
    });
    d
}

/// One derived model per derivation, scored against its base with every measure.
fn example_scores(
    base: &Curves,
    derivations: &[Derivation],
    measures: &[Measure],
    seed: u64,
) -> Result<BTreeMap<String, Vec<(String, f64)>>> {
    let mut out: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    let pb = Prepared::new(base)?;
    for (i, d) in derivations.iter().enumerate() {
        let mut rng = stream(seed, i as u64);
        let derived = d.apply(base, &mut rng)?;
        let pd = Prepared::new(&derived)?;
        for &m in measures {
            if let Ok(s) = measure::score(&pb, &pd, m, &mut Scratch::default()) {
                out.entry(m.name()).or_default().push((d.to_string(), s));
            }
        }
    }
    Ok(out)
}

/// Role subsets of the specification curve, as printed and as role keys.
const SPEC_ROLE_SETS: [(&str, &[&str]); 7] = [
    ("q,k,v,o", &["attn_q", "attn_k", "attn_v", "attn_o"]),
    ("q,k", &["attn_q", "attn_k"]),
    ("v,o", &["attn_v", "attn_o"]),
    ("q", &["attn_q"]),
    ("k", &["attn_k"]),
    ("v", &["attn_v"]),
    ("o", &["attn_o"]),
];

/// The score of the comparable pair under every reasonable choice.
fn spec_curve(
    ma: &Member,
    mb: &Member,
    curve_opts: &CurveOptions,
    measures: &[Measure],
) -> Result<Vec<SpecPoint>> {
    let mut rows = Vec::new();
    for ddof in [1u32, 0] {
        let opts = CurveOptions {
            ddof,
            ..curve_opts.clone()
        };
        let ca = Curves::from_fingerprint(&ma.fp, &opts)?;
        let cb = Curves::from_fingerprint(&mb.fp, &opts)?;
        for (depth, (xa, xb)) in [
            ("interpolate the shorter", (ca.clone(), cb.clone())),
            ("truncate the deeper", truncated(&ca, &cb)?),
        ] {
            for (roles, keys) in SPEC_ROLE_SETS {
                let (Ok(sa), Ok(sb)) = (xa.select(keys), xb.select(keys)) else {
                    continue;
                };
                for &m in measures {
                    let score = measure::similarity(&sa, &sb, &MeasureOptions::new(m))
                        .ok()
                        .map(|s| s.score);
                    rows.push(SpecPoint {
                        roles,
                        ddof,
                        depth,
                        measure: m,
                        score,
                        headline: ddof == 1
                            && depth.starts_with("interpolate")
                            && roles == "q,k,v,o"
                            && m == Measure::HonestAgi,
                    });
                }
            }
        }
    }
    Ok(rows)
}

/// Both models cut to the shorter depth (the deeper model's first layers).
fn truncated(a: &Curves, b: &Curves) -> Result<(Curves, Curves)> {
    let n = a.max_layers().min(b.max_layers());
    let cut = |c: &Curves| -> Result<Curves> {
        let mut out = c.clone();
        for curve in out.roles.values_mut() {
            curve.values.truncate(n);
            if curve.dtypes.len() > n {
                curve.dtypes.truncate(n);
            }
        }
        out.validate()?;
        Ok(out)
    };
    Ok((cut(a)?, cut(b)?))
}

/// ROC of each measure: related panel pairs and positive controls against unrelated pairs.
fn rocs(
    members: &[Member],
    labels: &Labels,
    table: &PairTable,
    headline: Measure,
    measures: &[Measure],
    real_controls: &[Scored],
    simulated: &BTreeMap<String, Vec<(String, f64)>>,
) -> Result<Vec<MeasureRoc>> {
    let curves_all: Vec<Curves> = members.iter().map(|m| m.curves.clone()).collect();
    let mut out = Vec::new();
    for &m in measures {
        // The headline measure's table is already computed.
        let owned;
        let t = if m == headline {
            table
        } else {
            owned = PairTable::from_curves(&curves_all, labels, m)?;
            &owned
        };
        let mut related = t.scores(Relation::Related);
        if !real_controls.is_empty() {
            related.extend(
                real_controls
                    .iter()
                    .filter_map(|s| s.scores.iter().find(|(mm, _)| *mm == m).map(|(_, v)| *v)),
            );
        } else if let Some(ctrl) = simulated.get(&m.name()) {
            related.extend(ctrl.iter().map(|(_, s)| *s));
        }
        let unrelated = t.scores(Relation::Unrelated);
        if related.is_empty() || unrelated.is_empty() {
            continue;
        }
        out.push(MeasureRoc {
            measure: m,
            roc: null::roc::roc(&related, &unrelated)?,
        });
    }
    Ok(out)
}

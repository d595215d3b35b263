//! `nullprint reproduce EXPERIMENT.toml`: replay a published fingerprint claim against chance
//! and write the report (HTML, Markdown, JSON, CSV, SVG) to `reports/<id>/`.
//!
//! Inputs are the experiment file and the baseline panel it names (fingerprints computed by
//! nullprint from real weights, with lineage labels). Published numbers come from the
//! experiment file, with their citations; every other number is computed here from those inputs
//! and is reproducible bit for bit from the seeds the report lists.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use fingerprint::hash::sha256_bytes;
use fingerprint::Fingerprint;
use null::curves::{CurveOptions, Curves, RoleSel, StackChoice};
use null::derive::{Derivation, InsertMode};
use null::labels::{Labels, Relation};
use null::measure::{self, Measure, MeasureOptions, Prepared, Scratch};
use null::null::panel::{self, BlockRepresentative, ObservedContext, PanelOptions, PanelReport};
use null::null::surrogate::{self, SurrogateKind, SurrogateOptions};
use null::null::{NullResult, Sampling};
use null::power::{PowerConfig, PowerNull, PowerRow};
use null::rng::{child_seed, stream};
use null::table::PairTable;
use report::model as rm;

mod controls;

use crate::args::ReproduceArgs;
use crate::experiment::Experiment;
use crate::panel::PanelIndex;

/// Seeds derived from the experiment's master seed, by purpose (stable across versions).
mod seed_stream {
    pub const SURROGATE: u64 = 1;
    pub const POWER: u64 = 2;
    pub const CONTROLS: u64 = 3;
    pub const CALIBRATION: u64 = 4;
    pub const SIZE: u64 = 5;
    pub const REAL_CONTROLS: u64 = 6;
}

/// One panel model, loaded.
struct Member {
    id: String,
    fp: Fingerprint,
    curves: Curves,
    entry: crate::panel::PanelModel,
}

pub fn run(a: ReproduceArgs) -> Result<()> {
    let exp = Experiment::load(&a.experiment)?;
    let index_path = exp.index_path(&a.experiment);
    let index = PanelIndex::load(&index_path)?;
    let measure: Measure = exp
        .measure
        .name
        .parse()
        .map_err(|e| anyhow!("{}: {e}", a.experiment.display()))?;
    let compare: Vec<Measure> = exp
        .measure
        .compare
        .iter()
        .map(|m| {
            m.parse()
                .map_err(|e| anyhow!("{}: {e}", a.experiment.display()))
        })
        .collect::<Result<_>>()?;
    let roles: Vec<RoleSel> = exp
        .measure
        .roles
        .iter()
        .map(|r| {
            r.parse()
                .map_err(|e| anyhow!("{}: role {r}: {e}", a.experiment.display()))
        })
        .collect::<Result<_>>()?;
    let curve_opts = CurveOptions {
        roles: roles.clone(),
        stack: StackChoice::Auto,
        ddof: exp.measure.ddof,
    };

    // The panel: fingerprints computed by nullprint, hashed into the provenance.
    let mut inputs = vec![input_file(
        &a.experiment,
        "experiment file (claim, published figures, settings)",
    )?];
    inputs.push(input_file(
        &index_path,
        "baseline panel index (lineage labels, weight hashes)",
    )?);
    let mut members = Vec::new();
    for m in &index.model {
        let path = PanelIndex::fingerprint_path(&index_path, &m.id);
        if !path.is_file() {
            bail!(
                "{}: missing; run `just baselines` (after `just models all`) to compute it",
                path.display()
            );
        }
        let fp = load_fingerprint(
            &path,
            &format!("baseline fingerprint of {}", m.id),
            &mut inputs,
        )?;
        let mut curves = Curves::from_fingerprint(&fp, &curve_opts)
            .with_context(|| format!("{}: curves", path.display()))?;
        curves.model = m.id.clone();
        members.push(Member {
            id: m.id.clone(),
            fp,
            curves,
            entry: m.clone(),
        });
    }
    let labels = labels_of(&members)?;
    let curves: Vec<Curves> = members.iter().map(|m| m.curves.clone()).collect();
    let table = PairTable::from_curves(&curves, &labels, measure)?;

    // The observed value: recomputed when the user holds both claimed models, else cited.
    let recomputed = recompute_claim(&exp, &curve_opts, measure)?;
    let claimed = exp.claim.value;
    let (observed, observed_mark) = match &recomputed {
        Some((score, _, _)) => (
            *score,
            rm::Mark::Computed {
                label: "recomputed claim".into(),
                value: *score,
            },
        ),
        None => (claimed, rm::Mark::Published { id: "claim".into() }),
    };

    // Panel null.
    let context = ObservedContext {
        layers: exp.claim.layers.map(|l| (l[0], l[1])),
        families: None,
    };
    let panel_opts = PanelOptions {
        thresholds: exp.nulls.thresholds.clone(),
        context,
        exclude: Vec::new(),
        block: BlockRepresentative::Median,
    };
    let panel_report = panel::test(&table, observed, &panel_opts)?;
    let unrelated = table.scores(Relation::Unrelated);

    let mut measures = vec![measure];
    measures.extend(compare.iter().copied().filter(|m| *m != measure));

    // Positive controls built from real weights: derived checkpoints scored against their base
    // (checked first: a stale or missing control stops the run before the long nulls).
    let real_controls = match exp.controls_path(&a.experiment) {
        Some(path) => controls::evaluate(
            &controls::Setup {
                index_path: &path,
                members: &members,
                curve_opts: &curve_opts,
                measures: &measures,
                unrelated: &unrelated,
                surrogate: trend_surrogate(),
                seed: child_seed(exp.nulls.seed, seed_stream::REAL_CONTROLS),
            },
            &mut inputs,
        )?,
        None => Vec::new(),
    };

    // Surrogate nulls of a comparable real pair.
    let kinds: Vec<SurrogateKind> = exp
        .nulls
        .surrogates
        .iter()
        .map(|name| {
            name.parse()
                .map_err(|e| anyhow!("{}: {e}", a.experiment.display()))
        })
        .collect::<Result<_>>()?;
    let pair = pair_of(&exp, &members)?;
    let mut surrogate_results = Vec::new();
    if let Some((ia, ib)) = pair {
        let pa = Prepared::new(&members[ia].curves)?;
        let pb = Prepared::new(&members[ib].curves)?;
        let pair_score = measure::score(&pa, &pb, measure, &mut Scratch::default())?;
        for (i, &kind) in kinds.iter().enumerate() {
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
            let of_claim =
                NullResult::from_scores(&info, claimed, &draws.scores, seed_used, sampling)?;
            surrogate_results.push((kind, draws.scores, of_pair, of_claim, pair_score));
        }
    }

    // The size of each surrogate null on real data: its p-values for the real unrelated pairs.
    let mut surrogate_size = Vec::new();
    for (i, &kind) in kinds.iter().enumerate() {
        let seed = child_seed(child_seed(exp.nulls.seed, seed_stream::SIZE), i as u64);
        let opts = SurrogateOptions {
            kind,
            measure,
            samples: exp.nulls.samples.min(1000),
            seed,
        };
        surrogate_size.push(null::calibrate::surrogate_on_panel(
            &curves,
            &labels,
            &opts,
            usize::MAX,
        )?);
    }

    // Simulated positive controls: derivations of a real fingerprint, and the power to detect them.
    let simulated = exp
        .controls
        .as_ref()
        .and_then(|c| Some((c.base.as_ref()?, c)));
    let (power_rows, control_scores) = match simulated {
        Some((base_id, c)) => {
            let base = members.iter().find(|m| &m.id == base_id).ok_or_else(|| {
                anyhow!(
                    "{}: controls.base {:?} is not in the panel",
                    a.experiment.display(),
                    base_id
                )
            })?;
            let derivations = derivations(&c.noise, base.curves.max_layers());
            let cfg = PowerConfig {
                derivations: derivations.clone(),
                measures: measures.clone(),
                // The panel's smallest attainable p is 1/(n+1); a surrogate null of the derived
                // pair can go lower, so power is reported against both.
                nulls: vec![
                    PowerNull::Panel,
                    PowerNull::Surrogate {
                        surrogate: trend_surrogate(),
                        samples: 250,
                    },
                ],
                alpha: exp.nulls.alpha,
                replicates: c.replicates,
                seed: child_seed(exp.nulls.seed, seed_stream::POWER),
            };
            let rows =
                null::power::power(std::slice::from_ref(&base.curves), &curves, &labels, &cfg)?;
            let scores = control_scores(
                &base.curves,
                &derivations,
                &measures,
                child_seed(exp.nulls.seed, seed_stream::CONTROLS),
            )?;
            (rows, scores)
        }
        None => (Vec::new(), BTreeMap::new()),
    };

    let ctx = Ctx {
        exp: &exp,
        measure,
        measures: &measures,
        members: &members,
        labels: &labels,
        table: &table,
        panel: &panel_report,
        unrelated: &unrelated,
        surrogates: &surrogate_results,
        surrogate_size: &surrogate_size,
        power: &power_rows,
        controls: &control_scores,
        real_controls: &real_controls,
        pair,
        observed,
        observed_mark,
        recomputed: recomputed.as_ref(),
        curve_opts: &curve_opts,
        inputs,
        experiment_path: &a.experiment,
    };
    let report = build_report(&ctx)?;
    let out = a
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from("reports").join(&exp.experiment.id));
    let written = report::write_report(&out, &report, a.force)?;
    eprintln!("wrote {} ({} files)", out.display(), written.len());
    println!("{}", headline(&ctx));
    Ok(())
}

/// Everything the report is built from.
struct Ctx<'a> {
    exp: &'a Experiment,
    measure: Measure,
    measures: &'a [Measure],
    members: &'a [Member],
    labels: &'a Labels,
    table: &'a PairTable,
    panel: &'a PanelReport,
    unrelated: &'a [f64],
    surrogates: &'a [(SurrogateKind, Vec<f64>, NullResult, NullResult, f64)],
    surrogate_size: &'a [null::calibrate::Calibration],
    power: &'a [PowerRow],
    controls: &'a BTreeMap<String, Vec<(String, f64)>>,
    real_controls: &'a [controls::Scored],
    pair: Option<(usize, usize)>,
    observed: f64,
    observed_mark: rm::Mark,
    recomputed: Option<&'a (f64, Curves, Curves)>,
    curve_opts: &'a CurveOptions,
    inputs: Vec<rm::InputFile>,
    experiment_path: &'a Path,
}

/// Read a fingerprint once: hash it into the inputs, then parse it.
fn load_fingerprint(
    path: &Path,
    description: &str,
    inputs: &mut Vec<rm::InputFile>,
) -> Result<Fingerprint> {
    let (input, bytes) = read_input(path, description)?;
    inputs.push(input);
    let text = std::str::from_utf8(&bytes).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Fingerprint::from_json(text).map_err(|e| anyhow!("{}: {e}", path.display()))
}

fn input_file(path: &Path, description: &str) -> Result<rm::InputFile> {
    Ok(read_input(path, description)?.0)
}

/// An input file's provenance entry and its bytes.
fn read_input(path: &Path, description: &str) -> Result<(rm::InputFile, Vec<u8>)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let input = rm::InputFile {
        path: path.display().to_string(),
        sha256: sha256_bytes(&bytes),
        bytes: Some(bytes.len() as u64),
        description: description.into(),
    };
    Ok((input, bytes))
}

fn labels_of(members: &[Member]) -> Result<Labels> {
    let models = members
        .iter()
        .map(|m| (m.id.clone(), m.entry.label(Some(m.curves.max_layers()))))
        .collect();
    Ok(Labels::new(models, Vec::new())?)
}

fn pair_of(exp: &Experiment, members: &[Member]) -> Result<Option<(usize, usize)>> {
    let Some([a, b]) = &exp.nulls.pair else {
        return Ok(None);
    };
    let find = |id: &str| {
        members
            .iter()
            .position(|m| m.id == id)
            .ok_or_else(|| anyhow!("nulls.pair: {id:?} is not in the panel"))
    };
    Ok(Some((find(a)?, find(b)?)))
}

/// When both claimed models can be found on this machine, fingerprint them and score the pair.
fn recompute_claim(
    exp: &Experiment,
    opts: &CurveOptions,
    m: Measure,
) -> Result<Option<(f64, Curves, Curves)>> {
    let (Some(wa), Some(wb)) = (&exp.claim.weights_a, &exp.claim.weights_b) else {
        return Ok(None);
    };
    let (Ok(sa), Ok(sb)) = (
        fingerprint::source::resolve(wa),
        fingerprint::source::resolve(wb),
    ) else {
        eprintln!("reproduce: the claimed models ({wa}, {wb}) are not on this machine; citing the published value");
        return Ok(None);
    };
    let roles: Vec<fingerprint::Role> = opts.roles.iter().map(|r| r.role.clone()).collect();
    let fa = super::fingerprint::fingerprint_cached(&sa, Some(roles.clone()), true, true)?;
    let fb = super::fingerprint::fingerprint_cached(&sb, Some(roles), true, true)?;
    let ca = Curves::from_fingerprint(&fa, opts)?;
    let cb = Curves::from_fingerprint(&fb, opts)?;
    let s = measure::similarity(&ca, &cb, &MeasureOptions::new(m))?;
    eprintln!(
        "reproduce: recomputed the claim from the weights: {:.6}",
        s.score
    );
    Ok(Some((s.score, ca, cb)))
}

/// The surrogate that keeps each curve's depth trend and autocorrelation (`surrogate`).
fn trend_surrogate() -> SurrogateKind {
    "surrogate".parse().unwrap_or(SurrogateKind::TrendAr(2))
}

fn derivations(noise: &[f64], layers: usize) -> Vec<Derivation> {
    let mut d: Vec<Derivation> = noise.iter().map(|&rel| Derivation::Noise { rel }).collect();
    d.push(Derivation::Drift { rel: 0.05 });
    d.push(Derivation::Upcycle {
        experts: 8,
        rel: 0.01,
    });
    let k = (layers / 4).max(1);
    d.push(Derivation::Insert {
        count: k,
        mode: InsertMode::Duplicate,
        rel: 0.01,
    });
    d.push(Derivation::Insert {
        count: k,
        mode: InsertMode::Interpolate,
        rel: 0.01,
    });
    d.push(Derivation::Prune {
        count: k,
        rel: 0.01,
    });
    d
}

/// One derived model per derivation, scored against its base with every measure.
fn control_scores(
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

fn headline(c: &Ctx<'_>) -> String {
    let n = &c.panel.null;
    format!(
        "{}: observed {:.3} vs {} unrelated real pairs: {} at or above (p = {:.4}, 95% CI {:.4}-{:.4}); median {:.3}, max {:.3} ({} vs {})",
        c.exp.experiment.id,
        c.observed,
        n.n,
        n.exceed,
        n.p,
        n.interval.0,
        n.interval.1,
        c.panel.summary.median,
        c.panel.summary.max.score,
        c.panel.summary.max.a,
        c.panel.summary.max.b
    )
}

fn build_report(c: &Ctx<'_>) -> Result<rm::Report> {
    let exp = c.exp;
    let published = published_figures(exp);
    let claim_pub = rm::Published {
        id: "claim".into(),
        label: match (&exp.claim.model_a, &exp.claim.model_b) {
            (Some(a), Some(b)) => {
                format!("{a} vs {b}, published similarity ({})", c.measure.name())
            }
            _ => format!("published threshold ({})", c.measure.name()),
        },
        short_label: "claimed".into(),
        value: Some(exp.claim.value),
        text: None,
        citation: rm::Citation {
            source: exp.claim.citation.clone(),
            url: None,
        },
    };
    let mut nulls = vec![null_result(&c.panel.null, c.observed_mark.clone())];
    if let Some(fb) = &c.panel.family_block {
        nulls.push(null_result(fb, c.observed_mark.clone()));
    }
    for s in &c.panel.strata {
        nulls.push(null_result(&s.result, c.observed_mark.clone()));
    }
    let pair_label = c
        .pair
        .map(|(a, b)| format!("{} vs {}", c.members[a].id, c.members[b].id))
        .unwrap_or_default();
    for (kind, _, of_pair, of_claim, score) in c.surrogates {
        let mut r = null_result(
            of_pair,
            rm::Mark::Computed {
                label: "comparable pair".into(),
                value: *score,
            },
        );
        r.name = format!("{kind} ({pair_label}, its own score)");
        nulls.push(r);
        let mut r = null_result(of_claim, rm::Mark::Published { id: "claim".into() });
        r.name = format!("{kind} ({pair_label}, claimed value)");
        nulls.push(r);
    }
    let fpr = rm::RateTable {
        name: "false-positive-rates".into(),
        title: "False-positive rate among real unrelated pairs".into(),
        population: format!(
            "{} unrelated pairs of the {}-model panel (different roots; {} related pairs excluded)",
            c.panel.null.n,
            c.members.len(),
            c.panel.excluded.related
        ),
        measure: c.measure.description().into(),
        counts: None,
        rows: c
            .panel
            .fpr
            .iter()
            .map(|r| rm::RateRow {
                label: threshold_label(exp, r.threshold),
                threshold: r.threshold,
                threshold_source: threshold_source(exp, r.threshold),
                count: r.count,
                n: r.n,
                rate: Some(r.rate),
                interval: Some(interval(r.interval)),
            })
            .collect(),
    };
    let mut fpr_tables = vec![fpr];
    fpr_tables.extend(c.surrogate_size.iter().map(|cal| {
        rm::RateTable {
            name: format!("surrogate-size-{}", slug(&cal.null)),
            title: format!(
                "How often the {} surrogate null rejects real unrelated pairs",
                cal.null
            ),
            population: format!(
            "{} unrelated panel pairs, each tested with the {} null ({} draws; rate of p ≤ level)",
            cal.n,
            cal.null,
            c.exp.nulls.samples.min(1000)
        ),
            measure: c.measure.name(),
            counts: Some(rm::COUNTS_P_AT_OR_BELOW_LEVEL.into()),
            rows: cal
                .rejection
                .iter()
                .map(|r| rm::RateRow {
                    label: format!("level {}", r.threshold),
                    threshold: r.threshold,
                    threshold_source: None,
                    count: r.count,
                    n: r.n,
                    rate: Some(r.rate),
                    interval: Some(interval(r.interval)),
                })
                .collect(),
        }
    }));
    let mut power = controls::power_tables(c.real_controls, &exp.nulls.thresholds, exp.nulls.alpha);
    power.extend(power_tables(c));
    let spec = spec_curve(c)?;
    let panel_models = c
        .members
        .iter()
        .map(|m| rm::PanelModel {
            model: m.id.clone(),
            family: m.entry.family.clone(),
            root: m.entry.root.clone(),
            format: m.fp.model.format.to_string(),
            layers: Some(m.curves.max_layers() as u32),
            source: m.entry.source.clone(),
            sha256: m.entry.sha256.clone(),
        })
        .collect();
    let figures = figures(c, &published)?;
    let mut seeds = vec![
        rm::Seed {
            label: "master seed of the experiment".into(),
            value: exp.nulls.seed,
        },
        rm::Seed {
            label: "surrogate nulls (child stream 1, one sub-stream per null)".into(),
            value: child_seed(exp.nulls.seed, seed_stream::SURROGATE),
        },
        rm::Seed {
            label: "power study (child stream 2)".into(),
            value: child_seed(exp.nulls.seed, seed_stream::POWER),
        },
        rm::Seed {
            label: "positive-control examples (child stream 3)".into(),
            value: child_seed(exp.nulls.seed, seed_stream::CONTROLS),
        },
        rm::Seed {
            label: "calibration simulation (child stream 4)".into(),
            value: child_seed(exp.nulls.seed, seed_stream::CALIBRATION),
        },
    ];
    if !c.real_controls.is_empty() {
        seeds.push(rm::Seed {
            label: "surrogate nulls of the positive controls built from real weights (child stream 6, one sub-stream per control)".into(),
            value: child_seed(exp.nulls.seed, seed_stream::REAL_CONTROLS),
        });
    }
    let id = &exp.experiment.id;
    let provenance = rm::Provenance {
        tool: "nullprint".into(),
        version: fingerprint::build::version().into(),
        command_line: vec!["nullprint".into(), "reproduce".into(), c.experiment_path.display().to_string()],
        reproduce: vec![
            "pip install rust-just   # or: cargo install just".into(),
            format!("just reproduce {id}        # from the committed baselines"),
            "just models all && just baselines   # optional: recompute the baselines from the weights".into(),
        ],
        seeds,
        inputs: c.inputs.clone(),
        environment: vec![rm::KeyValue { key: "measure".into(), value: c.measure.name() }, rm::KeyValue { key: "ddof".into(), value: exp.measure.ddof.to_string() }],
        timestamp: None,
    };
    let verdict = verdict(c);
    Ok(rm::Report {
        schema_version: rm::SCHEMA_VERSION,
        title: exp.experiment.title.clone(),
        banner: None,
        provenance,
        claim: rm::Claim {
            text: format!(
                "{} Claimed conclusion: {} Question: {}",
                exp.claim.description, exp.claim.conclusion, exp.experiment.question
            ),
            statistic: claim_pub,
        },
        verdict,
        published,
        computed: rm::Computed {
            nulls,
            false_positive_rates: fpr_tables,
            power,
            specification_curve: spec,
            panel: panel_models,
        },
        figures,
        tables: [
            (!c.real_controls.is_empty())
                .then(|| controls::table(c.real_controls, c.measures, exp.nulls.alpha)),
            Some(lineage_table(c)),
        ]
        .into_iter()
        .flatten()
        .chain([held_out_table(c), excluded_table(c), strata_note_table(c)])
        .collect(),
    })
}

fn published_figures(exp: &Experiment) -> Vec<rm::Published> {
    exp.published
        .iter()
        .enumerate()
        .map(|(i, p)| rm::Published {
            id: format!("published-{}", i + 1),
            label: p.label.clone(),
            short_label: p.short.clone().unwrap_or_else(|| short(&p.label)),
            value: Some(p.value),
            text: None,
            citation: rm::Citation {
                source: p.citation.clone(),
                url: None,
            },
        })
        .collect()
}

/// A file-name stem: lower-case letters, digits, '-' and '_'.
fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

fn short(label: &str) -> String {
    let words: Vec<&str> = label.split_whitespace().take(4).collect();
    words.join(" ")
}

fn threshold_source(exp: &Experiment, t: f64) -> Option<String> {
    if t == exp.claim.value {
        return Some("claim".into());
    }
    exp.published
        .iter()
        .position(|p| p.value == t)
        .map(|i| format!("published-{}", i + 1))
}

fn threshold_label(exp: &Experiment, t: f64) -> String {
    match threshold_source(exp, t).as_deref() {
        Some("claim") => format!("claimed value {t}"),
        Some(id) => {
            let i: usize = id.trim_start_matches("published-").parse().unwrap_or(1);
            format!("{} ({t})", exp.published[i - 1].label)
        }
        None => format!("threshold {t}"),
    }
}

fn interval(i: (f64, f64)) -> rm::Interval {
    rm::Interval {
        lo: i.0,
        hi: i.1,
        level: 0.95,
        method: "Clopper-Pearson".into(),
    }
}

fn null_result(r: &NullResult, tested: rm::Mark) -> rm::NullResult {
    rm::NullResult {
        name: r.name.clone(),
        preserves: r.preserves.clone(),
        destroys: r.destroys.clone(),
        tested: Some(tested),
        n: r.n,
        seed: r.seed,
        exceed: r.exceed,
        p: Some(r.p),
        log10_p: Some(r.log10_p),
        interval: Some(interval(r.interval)),
        mc_error: Some(r.mc_error),
    }
}

fn power_tables(c: &Ctx<'_>) -> Vec<rm::RateTable> {
    if c.power.is_empty() {
        return Vec::new();
    }
    let mut by_measure: BTreeMap<String, Vec<&PowerRow>> = BTreeMap::new();
    for r in c.power {
        by_measure
            .entry(format!("{}-{}", r.measure.name(), r.null))
            .or_default()
            .push(r);
    }
    let base = c
        .exp
        .controls
        .as_ref()
        .and_then(|c| c.base.clone())
        .unwrap_or_default();
    by_measure
        .into_iter()
        .map(|(m, rows)| rm::RateTable {
            name: format!("power-{}", slug(&m)),
            title: format!("Power at α = {} (measure-null: {m})", c.exp.nulls.alpha),
            population: format!(
                "{} derived models per control, built from the real fingerprint of {base}; the rate counts p ≤ α",
                rows.first().map(|r| r.n).unwrap_or(0)
            ),
            measure: m.clone(),
            counts: Some(rm::COUNTS_P_AT_OR_BELOW_LEVEL.into()),
            rows: rows
                .iter()
                .map(|r| rm::RateRow {
                    label: format!("{} (median score {:.3})", r.derivation_name, r.median_score),
                    threshold: r.alpha,
                    threshold_source: None,
                    count: r.rejected,
                    n: r.n,
                    rate: (r.n > 0).then_some(r.power),
                    interval: Some(interval(r.interval)),
                })
                .collect(),
        })
        .collect()
}

/// The score of the comparable pair (or the recomputed claim) under every reasonable choice.
fn spec_curve(c: &Ctx<'_>) -> Result<Vec<rm::SpecRow>> {
    let (ma, mb) = match (c.recomputed, c.pair) {
        (Some(_), _) => return Ok(Vec::new()),
        (None, Some((a, b))) => (&c.members[a], &c.members[b]),
        (None, None) => return Ok(Vec::new()),
    };
    let role_sets: Vec<(&str, Vec<&str>)> = vec![
        ("q,k,v,o", vec!["attn_q", "attn_k", "attn_v", "attn_o"]),
        ("q,k", vec!["attn_q", "attn_k"]),
        ("v,o", vec!["attn_v", "attn_o"]),
        ("q", vec!["attn_q"]),
        ("k", vec!["attn_k"]),
        ("v", vec!["attn_v"]),
        ("o", vec!["attn_o"]),
    ];
    let mut rows = Vec::new();
    for ddof in [1u32, 0] {
        let opts = CurveOptions {
            ddof,
            ..c.curve_opts.clone()
        };
        let ca = Curves::from_fingerprint(&ma.fp, &opts)?;
        let cb = Curves::from_fingerprint(&mb.fp, &opts)?;
        for (align, (xa, xb)) in [
            ("interpolate the shorter", (ca.clone(), cb.clone())),
            ("truncate the deeper", truncated(&ca, &cb)?),
        ] {
            for (set_name, keys) in &role_sets {
                let (Ok(sa), Ok(sb)) = (xa.select(keys), xb.select(keys)) else {
                    continue;
                };
                for &m in c.measures {
                    let score = measure::similarity(&sa, &sb, &MeasureOptions::new(m))
                        .ok()
                        .map(|s| s.score);
                    let headline = ddof == 1
                        && align.starts_with("interpolate")
                        && *set_name == "q,k,v,o"
                        && m == Measure::HonestAgi;
                    rows.push(rm::SpecRow {
                        choices: vec![
                            rm::Choice {
                                dimension: "roles".into(),
                                option: (*set_name).into(),
                            },
                            rm::Choice {
                                dimension: "std".into(),
                                option: format!("ddof {ddof}"),
                            },
                            rm::Choice {
                                dimension: "depth".into(),
                                option: align.into(),
                            },
                            rm::Choice {
                                dimension: "measure".into(),
                                option: m.name(),
                            },
                        ],
                        score,
                        headline,
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

fn verdict(c: &Ctx<'_>) -> rm::Verdict {
    let exp = c.exp;
    let n = &c.panel.null;
    let claimed = match (&exp.claim.model_a, &exp.claim.model_b) {
        (Some(a), Some(b)) => format!(
            "{a} and {b} were reported to have a fingerprint similarity of {} ({}), read as evidence that {}",
            exp.claim.value,
            c.measure.name(),
            exp.claim.conclusion.trim_end_matches('.')
        ),
        _ => format!("{} Claimed: {}", exp.claim.description, exp.claim.conclusion),
    };
    let fpr: Vec<String> = c
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
    let mut says = format!(
        "Against {} pairs of real models that share no weights (panel of {} models from {} roots), {} reach the {} value {:.3}: p = {} (Clopper-Pearson 95% CI of the exceedance rate {:.3}-{:.3}). {}. The unrelated pairs' median is {:.3}, their 95th percentile {:.3}, their maximum {:.3} ({} vs {}).",
        n.n,
        c.members.len(),
        c.members.iter().map(|m| m.entry.root.as_str()).collect::<std::collections::BTreeSet<_>>().len(),
        n.exceed,
        if c.recomputed.is_some() { "recomputed" } else { "claimed" },
        c.observed,
        fmt_p(n.p),
        n.interval.0,
        n.interval.1,
        fpr.join("; "),
        c.panel.summary.median,
        c.panel.summary.p95,
        c.panel.summary.max.score,
        c.panel.summary.max.a,
        c.panel.summary.max.b
    );
    if let Some((kind, _, of_pair, of_claim, score)) =
        c.surrogates.iter().find(|s| s.0 == trend_surrogate())
    {
        says.push_str(&format!(
            " A surrogate null that keeps each curve's depth trend and autocorrelation ({kind}, {} draws) gives the comparable real pair ({}) a score of {:.3} with p = {}, and puts the claimed {} at p = {}.",
            of_pair.n,
            c.pair.map(|(a, b)| format!("{} vs {}", c.members[a].id, c.members[b].id)).unwrap_or_default(),
            score,
            fmt_p(of_pair.p),
            exp.claim.value,
            fmt_p(of_claim.p)
        ));
    }
    for cal in c.surrogate_size {
        if let Some(r) = cal.rejection.iter().find(|r| r.threshold == 0.01) {
            if r.rate > 0.05 {
                says.push_str(&format!(
                    " Caution: the {} null rejects {}/{} real unrelated pairs at p ≤ 0.01, so on real curves its p-values are far too small and it cannot tell related from unrelated.",
                    cal.null, r.count, r.n
                ));
            }
        }
    }
    let min_p = 1.0 / (n.n as f64 + 1.0);
    if min_p > c.exp.nulls.alpha {
        says.push_str(&format!(
            " With {} null pairs the panel's smallest attainable p is {:.3}, above α = {}: the panel alone cannot reject at that level, whatever the score.",
            n.n, min_p, c.exp.nulls.alpha
        ));
    }
    says.push_str(&controls::verdict_sentence(
        c.real_controls,
        &exp.nulls.thresholds,
        exp.claim.value,
    ));
    let detected: Vec<String> = c
        .power
        .iter()
        .filter(|r| r.measure == c.measure && r.null != "panel")
        .map(|r| format!("{} {:.2}", r.derivation_name, r.power))
        .collect();
    if !detected.is_empty() {
        says.push_str(&format!(
            " Simulated positive controls derived from a real fingerprint, tested with the trend-preserving surrogate null at α = {}, are detected with power: {} (read against that null's rejection rate on unrelated pairs, above).",
            c.exp.nulls.alpha,
            detected.join(", ")
        ));
    }
    let same_depth = c
        .panel
        .strata
        .iter()
        .find(|s| s.name == "same depth")
        .map(|s| s.result.n)
        .unwrap_or(0);
    let depth_note = match exp.claim.layers {
        Some([la, lb]) if la == lb => format!(
            " The claimed models have the same depth ({la} layers). A published matrix of this similarity finds that unrelated same-depth decoders score far higher than pairs of different depth (see the published figures); this panel has only {same_depth} unrelated same-depth pair(s), so it cannot measure that stratum itself."
        ),
        _ => String::new(),
    };
    let cannot = format!(
        "{}{depth_note} The panel is small ({} pairs) and its pairs are not independent (a model enters many pairs), so the p-value is coarse (its smallest possible value is {:.3}) and its interval understates the uncertainty. A score below the null's bulk would not prove independence, and a score within it does not prove it either: a per-tensor std is blind to permutations and most weight edits, so derived models can score low and unrelated ones high. Only weight-level tests (`nullprint trace`) can decide lineage; this report tests whether the published number is evidence at all.",
        if c.recomputed.is_some() {
            "The claimed models were fingerprinted from the weights on this machine."
        } else {
            "The claimed models' weights are not public here: their curves are not recomputed and the claimed value is taken as published."
        },
        n.n,
        1.0 / (n.n as f64 + 1.0)
    );
    rm::Verdict {
        claimed,
        nulls_say: says,
        cannot_say: cannot,
    }
}

/// A threshold never judged on the scores that chose it: for each model held out, the threshold
/// that keeps the false-positive rate at 5% on the other models' unrelated pairs, and what it
/// does on the held-out model's pairs.
fn held_out_table(c: &Ctx<'_>) -> rm::Table {
    use null::roc::{held_out, Grouping, ThresholdRule};
    let mut rows = Vec::new();
    let mut caption = "Leave one model out: the threshold is chosen on the pairs without the model (rule: false-positive rate at most 5%), then applied to the held-out model's pairs.".to_string();
    match held_out(c.table, ThresholdRule::Fpr(0.05), Grouping::Model) {
        Ok(h) => {
            for f in &h.folds {
                rows.push(vec![
                    rm::Cell::Text(f.held_out.clone()),
                    rm::Cell::Number(f.threshold),
                    rm::Cell::Number(f.false_positives as f64),
                    rm::Cell::Number(f.test_unrelated as f64),
                    rm::Cell::Number(f.true_positives as f64),
                    rm::Cell::Number(f.test_related as f64),
                ]);
            }
            caption.push_str(&format!(
                " Pooled over folds: false-positive rate {}/{} = {:.3} (95% CI {:.3}-{:.3}); median threshold {:.3}.",
                h.fpr.count, h.fpr.n, h.fpr.rate, h.fpr.interval.0, h.fpr.interval.1, h.median_threshold
            ));
            for n in &h.notes {
                let mut chars = n.chars();
                if let Some(first) = chars.next() {
                    caption.push_str(&format!(
                        " {}{}.",
                        first.to_uppercase(),
                        chars.as_str().trim_end_matches('.')
                    ));
                }
            }
        }
        Err(e) => caption.push_str(&format!(" Not computed: {e}.")),
    }
    rm::Table {
        name: "held-out-threshold".into(),
        title: format!("Held-out threshold ({})", c.measure.name()),
        caption,
        headers: vec![
            "held-out model".into(),
            "threshold".into(),
            "false positives".into(),
            "unrelated pairs".into(),
            "true positives".into(),
            "related pairs".into(),
        ],
        rows,
    }
}

fn lineage_table(c: &Ctx<'_>) -> rm::Table {
    rm::Table {
        name: "panel-lineage".into(),
        title: "Lineage labels of the baseline panel".into(),
        caption: "From baselines/index.toml. Models with the same root share weights and are related; every other pair is a null pair.".into(),
        headers: vec!["model".into(), "kind".into(), "root".into(), "derived from".into(), "organization".into()],
        rows: c
            .members
            .iter()
            .map(|m| {
                vec![
                    rm::Cell::Text(m.id.clone()),
                    rm::Cell::Text(m.entry.kind.clone()),
                    rm::Cell::Text(m.entry.root.clone()),
                    rm::Cell::Text(m.entry.derived_from.clone()),
                    rm::Cell::Text(m.entry.organization.clone()),
                ]
            })
            .collect(),
    }
}

/// A p-value for prose: three decimals, or scientific notation below 0.001.
fn fmt_p(p: f64) -> String {
    if p < 1e-3 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

fn excluded_table(c: &Ctx<'_>) -> rm::Table {
    rm::Table {
        name: "related-pairs".into(),
        title: "Related pairs excluded from the null".into(),
        caption: "Pairs with the same root share weights and never count as null pairs; their scores are listed for comparison.".into(),
        headers: vec!["model a".into(), "model b".into(), "score".into()],
        rows: c
            .panel
            .excluded
            .related_pairs
            .iter()
            .map(|p| vec![rm::Cell::Text(p.a.clone()), rm::Cell::Text(p.b.clone()), rm::Cell::Number(p.score)])
            .collect(),
    }
}

fn strata_note_table(c: &Ctx<'_>) -> rm::Table {
    let mut rows: Vec<Vec<rm::Cell>> = Vec::new();
    for p in &c.table.pairs {
        let (a, b) = c.table.ids(p);
        rows.push(vec![
            rm::Cell::Text(a.into()),
            rm::Cell::Text(b.into()),
            rm::Cell::Text(p.relation.to_string()),
            rm::Cell::Number(p.score),
        ]);
    }
    rows.sort_by(|x, y| match (&x[3], &y[3]) {
        (rm::Cell::Number(a), rm::Cell::Number(b)) => b.total_cmp(a),
        _ => std::cmp::Ordering::Equal,
    });
    rm::Table {
        name: "panel-pairs".into(),
        title: "Every pair of the panel".into(),
        caption: format!(
            "{} scores of every pair of baseline models, highest first.",
            c.measure.name()
        ),
        headers: vec![
            "model a".into(),
            "model b".into(),
            "relation".into(),
            "score".into(),
        ],
        rows,
    }
}

fn figures(c: &Ctx<'_>, published: &[rm::Published]) -> Result<Vec<rm::Figure>> {
    let mut figs = Vec::new();
    let claim_marks: Vec<rm::Mark> = std::iter::once(rm::Mark::Published { id: "claim".into() })
        .chain(
            published
                .iter()
                .zip(&c.exp.published)
                .filter(|(_, spec)| spec.mark)
                .map(|(p, _)| rm::Mark::Published { id: p.id.clone() }),
        )
        .collect();
    // Null distributions.
    let mut panels = vec![rm::NullPanel {
        null: c.panel.null.name.clone(),
        samples: c.unrelated.to_vec(),
        marks: claim_marks.clone(),
    }];
    let pair_label = c
        .pair
        .map(|(a, b)| format!("{} vs {}", c.members[a].id, c.members[b].id))
        .unwrap_or_default();
    for (kind, scores, _, _, _) in c.surrogates {
        panels.push(rm::NullPanel {
            null: format!("{kind} ({pair_label}, its own score)"),
            samples: scores.clone(),
            marks: vec![rm::Mark::Published { id: "claim".into() }],
        });
    }
    figs.push(rm::Figure {
        name: "null-distributions".into(),
        title: "Similarity of pairs that share no weights".into(),
        caption: format!(
            "First panel: {} similarity of every unrelated pair of real models in the panel. Other panels: surrogate nulls of one comparable real pair ({pair_label}), which keep what each null preserves and destroy any shared lineage.",
            c.measure.name()
        ),
        kind: rm::FigureKind::NullDistributions(rm::NullFigure { x_label: format!("{} similarity (mean per-role correlation, unitless)", c.measure.name()), panels }),
    });
    // Curves of the comparable pair (or the recomputed claim).
    let curve_models: Vec<&Curves> = match (c.recomputed, c.pair) {
        (Some((_, a, b)), _) => vec![a, b],
        (None, Some((a, b))) => vec![&c.members[a].curves, &c.members[b].curves],
        _ => Vec::new(),
    };
    if curve_models.len() == 2 {
        figs.push(rm::Figure {
            name: "fingerprint-curves".into(),
            title: format!("Per-layer attention std: {} vs {}", curve_models[0].model, curve_models[1].model),
            caption: "Raw per-layer standard deviation of each attention projection (top) and the z-scored curves the published measure correlates (bottom); the shorter model's z-curve is interpolated onto the deeper model's depth grid (dashed).".into(),
            kind: rm::FigureKind::FingerprintCurves(curves_figure(curve_models[0], curve_models[1], c.exp.measure.ddof)?),
        });
    }
    // Heatmap of the panel.
    figs.push(heatmap(c));
    // False-positive rate against threshold.
    let grid: Vec<f64> = (-20..=20).map(|i| i as f64 / 20.0).collect();
    let rates = null::pvalue::rates_at_or_above(c.unrelated, &grid)?;
    figs.push(rm::Figure {
        name: "false-positive-rate".into(),
        title: "How often unrelated models reach a threshold".into(),
        caption: format!("Share of the {} unrelated panel pairs whose {} similarity is at or above each threshold, with 95% Clopper-Pearson bands.", c.unrelated.len(), c.measure.name()),
        kind: rm::FigureKind::FprThreshold(rm::FprFigure {
            x_label: "threshold (similarity, unitless)".into(),
            series: vec![rm::FprSeries {
                label: format!("unrelated panel pairs (n = {})", c.unrelated.len()),
                points: rates.iter().map(|r| rm::FprPoint { threshold: r.threshold, rate: r.rate, lo: Some(r.interval.0), hi: Some(r.interval.1) }).collect(),
            }],
            marks: claim_marks,
        }),
    });
    // ROC of each measure: related panel pairs and positive controls vs unrelated pairs.
    if let Some(roc) = roc_figure(c)? {
        figs.push(roc);
    }
    // Calibration.
    figs.push(calibration_figure(c)?);
    // Specification curve.
    if c.pair.is_some() && c.recomputed.is_none() {
        figs.push(rm::Figure {
            name: "specification-curve".into(),
            title: format!("How much the score of {pair_label} depends on analysis choices"),
            caption: "Every combination of role subset, std convention (ddof), depth alignment and measure. z-scoring is not a separate choice: a Pearson correlation is unchanged by it.".into(),
            kind: rm::FigureKind::SpecificationCurve(rm::SpecFigure { y_label: "similarity (unitless)".into(), marks: vec![rm::Mark::Published { id: "claim".into() }] }),
        });
    }
    Ok(figs)
}

fn curves_figure(a: &Curves, b: &Curves, ddof: u32) -> Result<rm::CurvesFigure> {
    let mut roles = Vec::new();
    for key in a.roles.keys() {
        let Some(cb) = b.roles.get(key) else { continue };
        let ca = &a.roles[key];
        let (la, lb) = (ca.values.len(), cb.values.len());
        let model_curve = |name: &str, v: &[f64], other: usize| -> Result<rm::ModelCurve> {
            let z = null::stats::zscore(v).ok();
            let n = v.len();
            let points = v
                .iter()
                .enumerate()
                .map(|(i, &raw)| rm::CurvePoint {
                    layer: i as u32,
                    x: if n > 1 {
                        i as f64 / (n - 1) as f64
                    } else {
                        0.0
                    },
                    raw: Some(raw),
                    z: z.as_ref().map(|z| z[i]),
                })
                .collect();
            let interpolated = if n < other {
                match &z {
                    Some(z) => Some(rm::Interpolated {
                        onto_layers: other as u32,
                        x: (0..other).map(|i| i as f64 / (other - 1) as f64).collect(),
                        z: null::stats::interpolate(z, other)?
                            .into_iter()
                            .map(Some)
                            .collect(),
                    }),
                    None => None,
                }
            } else {
                None
            };
            Ok(rm::ModelCurve {
                model: name.into(),
                layers: n as u32,
                points,
                interpolated,
            })
        };
        roles.push(rm::RoleCurves {
            role: key.clone(),
            models: vec![
                model_curve(&a.model, &ca.values, lb)?,
                model_curve(&b.model, &cb.values, la)?,
            ],
        });
    }
    Ok(rm::CurvesFigure {
        raw_label: format!("weight std (ddof {ddof}, weight units)"),
        roles,
    })
}

fn heatmap(c: &Ctx<'_>) -> rm::Figure {
    let ids: Vec<&str> = c.table.models.iter().map(|m| m.id.as_str()).collect();
    let n = ids.len();
    let mut values = vec![vec![None; n]; n];
    let mut related = Vec::new();
    for p in &c.table.pairs {
        values[p.a][p.b] = Some(p.score);
        values[p.b][p.a] = Some(p.score);
        if p.relation == Relation::Related {
            related.push((ids[p.a].to_string(), ids[p.b].to_string()));
        }
    }
    for (i, row) in values.iter_mut().enumerate() {
        row[i] = Some(1.0);
    }
    let models = c
        .members
        .iter()
        .map(|m| rm::HeatModel {
            name: m.id.clone(),
            family: m.entry.family.clone(),
        })
        .collect();
    rm::Figure {
        name: "panel-heatmap".into(),
        title: "Pairwise similarity of the baseline panel".into(),
        caption: format!("{} similarity of every pair of baseline models, grouped by family; related pairs (same root) are outlined.", c.measure.name()),
        kind: rm::FigureKind::Heatmap(rm::HeatmapFigure { value_label: "similarity (unitless)".into(), models, values, related, range: Some((-1.0, 1.0)) }),
    }
}

fn roc_figure(c: &Ctx<'_>) -> Result<Option<rm::Figure>> {
    let curves_all: Vec<Curves> = c.members.iter().map(|m| m.curves.clone()).collect();
    let mut out = Vec::new();
    let mut n_pos = 0;
    let mut n_neg = 0;
    for &m in c.measures {
        // The headline measure's table is already computed.
        let owned;
        let t = if m == c.measure {
            c.table
        } else {
            owned = PairTable::from_curves(&curves_all, c.labels, m)?;
            &owned
        };
        let mut related = t.scores(Relation::Related);
        if !c.real_controls.is_empty() {
            related.extend(
                c.real_controls
                    .iter()
                    .filter_map(|s| s.scores.iter().find(|(mm, _)| *mm == m).map(|(_, v)| *v)),
            );
        } else if let Some(ctrl) = c.controls.get(&m.name()) {
            related.extend(ctrl.iter().map(|(_, s)| *s));
        }
        let unrelated = t.scores(Relation::Unrelated);
        if related.is_empty() || unrelated.is_empty() {
            continue;
        }
        n_pos = related.len();
        n_neg = unrelated.len();
        let roc = null::roc::roc(&related, &unrelated)?;
        out.push(rm::RocCurve {
            measure: m.name(),
            points: roc
                .points
                .iter()
                .map(|p| rm::RocPoint {
                    fpr: p.fpr,
                    tpr: p.tpr,
                })
                .collect(),
            auc: Some(roc.auc),
        });
    }
    if out.is_empty() {
        return Ok(None);
    }
    Ok(Some(rm::Figure {
        name: "roc".into(),
        title: "Related vs unrelated: how well each measure separates them".into(),
        caption: if c.real_controls.is_empty() {
            "Positives: related panel pairs (same root) and one derived model per simulated positive control; negatives: unrelated panel pairs. Thresholds are not fitted here; the curve shows every threshold.".into()
        } else {
            "Positives: related panel pairs (same root) and the positive controls built from real weights, each against its base; negatives: unrelated panel pairs. Thresholds are not fitted here; the curve shows every threshold.".into()
        },
        kind: rm::FigureKind::Roc(rm::RocFigure {
            positives: format!("related pairs and positive controls (n = {n_pos})"),
            negatives: format!("unrelated panel pairs (n = {n_neg})"),
            curves: out,
        }),
    }))
}

fn calibration_figure(c: &Ctx<'_>) -> Result<rm::Figure> {
    use null::calibrate::{simulate, SimCalibration, SimNull};
    use null::sim::NullModel;
    let seed = child_seed(c.exp.nulls.seed, seed_stream::CALIBRATION);
    let cal = simulate(&SimCalibration {
        null: SimNull::Panel { models: 12 },
        measure: c.measure,
        model: NullModel::default(),
        replicates: 500,
        seed,
    })?;
    let loo = null::calibrate::leave_one_out(c.table).ok();
    let mut series = vec![rm::QqSeries {
        label: format!(
            "simulated independent random-walk + trend curves, panel null (n = {}, KS p = {:.2})",
            cal.n, cal.ks.p
        ),
        p_values: cal.qq.iter().map(|q| q.observed).collect(),
    }];
    if let Some(l) = loo {
        series.push(rm::QqSeries {
            label: format!(
                "real panel, leave one model out (n = {}, KS p = {:.2})",
                l.n, l.ks.p
            ),
            p_values: l.qq.iter().map(|q| q.observed).collect(),
        });
    }
    for cal in c.surrogate_size {
        series.push(rm::QqSeries {
            label: format!(
                "real unrelated pairs, {} null (n = {}, KS p = {:.2})",
                cal.null, cal.n, cal.ks.p
            ),
            p_values: cal.qq.iter().map(|q| q.observed).collect(),
        });
    }
    Ok(rm::Figure {
        name: "calibration".into(),
        title: "Are the panel p-values uniform when the null holds?".into(),
        caption: "QQ plot of p-values computed on pairs where the null is true: simulated unrelated curves, and each real unrelated pair tested against the panel without its models. A calibrated null lies on the diagonal. `just calibrate` runs the full-size study.".into(),
        kind: rm::FigureKind::PValueQq(rm::QqFigure { series }),
    })
}

//! From an [`Analysis`] to a [`report::Report`]: the one mapping from statistics to report rows
//! (nulls with their caveats, rate tables, power, the specification curve, figures, tables and
//! provenance). Nothing here computes a statistic; every number comes from the analysis.

use std::collections::BTreeMap;

use null::calibrate::Calibration;
use null::labels::Relation;
use null::nulls::{NullResult, Sampling};
use null::power::PowerRow;
use null::pvalue::Rate;
use null::rng::child_seed;
use report::model as rm;

use crate::analysis::{Analysis, SurrogatePair};
use crate::error::Result;
use crate::policy::{self, seed_stream};
use crate::positive_controls::Scored;
use crate::spec::Experiment;
use crate::verdict;

/// A Clopper–Pearson 95% interval, as every rate and p of the statistics crate computes it.
pub fn interval(i: (f64, f64)) -> rm::Interval {
    rm::Interval {
        lo: i.0,
        hi: i.1,
        level: null::pvalue::CONFIDENCE,
        method: null::pvalue::INTERVAL_METHOD.into(),
    }
}

/// One null result as a report row, with every caveat the statistics attached and `extra`
/// caveats (such as the null's measured size on real data).
pub fn null_row(r: &NullResult, tested: rm::Mark, extra: &[String]) -> rm::NullResult {
    let mut notes: Vec<String> = Vec::new();
    for n in r.notes.iter().chain(extra) {
        let n = verdict::sentence(n);
        if !notes.contains(&n) {
            notes.push(n);
        }
    }
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
        sampling: Some(sampling_name(r.sampling).into()),
        discarded: r.discarded,
        notes,
    }
}

fn sampling_name(s: Sampling) -> &'static str {
    match s {
        Sampling::MonteCarlo => "Monte Carlo",
        Sampling::Exhaustive => "exhaustive",
        Sampling::Panel => "panel",
    }
}

/// One rejection-rate row per level of a calibration (`label` names the row).
pub fn rejection_rows<'a>(
    cal: &'a Calibration,
    label: impl Fn(&Rate) -> String + 'a,
) -> impl Iterator<Item = rm::RateRow> + 'a {
    cal.rejection.iter().map(move |r| rm::RateRow {
        label: label(r),
        threshold: r.threshold,
        threshold_source: None,
        count: r.count,
        n: r.n,
        rate: Some(r.rate),
        interval: Some(interval(r.interval)),
    })
}

/// The caution a liberal surrogate null carries next to every p it gives.
pub fn size_caveat(a: &Analysis, kind: &str) -> Option<String> {
    let cal = a.surrogate_size.iter().find(|c| c.null == kind)?;
    let r = cal
        .rejection
        .iter()
        .find(|r| r.threshold == policy::SIZE_LEVEL)?;
    policy::is_liberal(r.rate).then(|| {
        format!(
            "Not calibrated on real curves: this null rejects {}/{} real unrelated pairs at p ≤ {} (see its size table), so its p-values overstate the evidence.",
            r.count,
            r.n,
            policy::SIZE_LEVEL
        )
    })
}

/// `k` evenly spaced quantiles of `draws` (order statistics at ranks (i + ½)/k), or all of them
/// when there are no more than `k`: a histogram of these has the draws' shape.
pub fn quantiles(draws: &[f64], k: usize) -> Vec<f64> {
    if draws.len() <= k || k == 0 {
        return draws.to_vec();
    }
    let mut sorted = draws.to_vec();
    sorted.sort_by(f64::total_cmp);
    (0..k)
        .map(|i| sorted[((i as f64 + 0.5) * sorted.len() as f64 / k as f64) as usize])
        .collect()
}

/// The whole report of an analysis.
pub fn report(a: &Analysis) -> Result<rm::Report> {
    let exp = &a.exp;
    let published = published_figures(exp);
    let claim_pub = rm::Published {
        id: "claim".into(),
        label: match (&exp.claim.model_a, &exp.claim.model_b) {
            (Some(x), Some(y)) => {
                format!("{x} vs {y}, published similarity ({})", a.measure.name())
            }
            _ => format!("published threshold ({})", a.measure.name()),
        },
        short_label: "claimed".into(),
        value: Some(exp.claim.value),
        text: None,
        citation: rm::Citation {
            source: exp.claim.citation.clone(),
            url: None,
        },
    };
    let observed_mark = match &a.recomputed {
        Some(r) => rm::Mark::Computed {
            label: "recomputed claim".into(),
            value: r.score,
        },
        None => rm::Mark::Published { id: "claim".into() },
    };
    let mut nulls = vec![null_row(
        &a.panel.null,
        observed_mark.clone(),
        &a.panel.notes,
    )];
    if let Some(fb) = &a.panel.family_block {
        nulls.push(null_row(fb, observed_mark.clone(), &[]));
    }
    for s in &a.panel.strata {
        nulls.push(null_row(&s.result, observed_mark.clone(), &[]));
    }
    let pair_label = pair_label(a);
    for s in &a.surrogates {
        let caveat: Vec<String> = size_caveat(a, &s.kind.to_string()).into_iter().collect();
        let mut r = null_row(
            &s.of_pair,
            rm::Mark::Computed {
                label: "comparable pair".into(),
                value: s.pair_score,
            },
            &caveat,
        );
        r.name = format!("{} ({pair_label}, its own score)", s.kind);
        nulls.push(r);
        if let Some(c) = a
            .calibrated
            .iter()
            .find(|c| c.kind == s.kind)
            .and_then(|c| c.of_pair.as_ref())
        {
            let mut r = null_row(
                c,
                rm::Mark::Computed {
                    label: "comparable pair's raw p".into(),
                    value: c.observed,
                },
                &[],
            );
            r.name = format!("{} calibrated ({pair_label}, its own p)", s.kind);
            nulls.push(r);
        }
        let mut r = null_row(
            &s.of_claim,
            rm::Mark::Published { id: "claim".into() },
            &caveat,
        );
        r.name = format!("{} ({pair_label}, claimed value)", s.kind);
        nulls.push(r);
    }
    let fpr = rm::RateTable {
        name: "false-positive-rates".into(),
        title: "False-positive rate among real unrelated pairs".into(),
        population: format!(
            "{} unrelated pairs of the {}-model panel (different roots; {} related pairs excluded)",
            a.panel.null.n,
            a.members.len(),
            a.panel.excluded.related
        ),
        measure: a.measure.description().into(),
        counts: None,
        rows: a
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
    fpr_tables.extend(a.surrogate_size.iter().map(|cal| rm::RateTable {
        name: format!("surrogate-size-{}", slug(&cal.null)),
        title: format!(
            "How often the {} surrogate null rejects real unrelated pairs",
            cal.null
        ),
        population: format!(
            "{} unrelated panel pairs, each tested with the {} null ({} draws; rate of p ≤ level)",
            cal.n,
            cal.null,
            exp.nulls.samples.min(policy::SIZE_SAMPLES)
        ),
        measure: a.measure.name(),
        counts: Some(rm::COUNTS_P_AT_OR_BELOW_LEVEL.into()),
        rows: rejection_rows(cal, |r| format!("level {}", r.threshold)).collect(),
    }));
    let mut power = control_power_tables(&a.real_controls, &exp.nulls.thresholds, exp.nulls.alpha);
    power.extend(simulated_power_tables(a));
    let panel_models = a
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
    let figures = figures(a, &published)?;
    let lab_tables = match &a.lab {
        Some(l) => crate::seed_lab::tables(l, a.unrelated.len())?,
        None => Vec::new(),
    };
    let headline = figures
        .first()
        .map(|f| f.name.as_str())
        .filter(|n| *n == HEADLINE_FIGURE);
    let verdict = verdict::verdict(a, headline);
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
    if !a.real_controls.is_empty() {
        seeds.push(rm::Seed {
            label: "surrogate nulls of the positive controls built from real weights (child stream 6, one sub-stream per control)".into(),
            value: child_seed(exp.nulls.seed, seed_stream::REAL_CONTROLS),
        });
    }
    if a.lab.as_ref().is_some_and(|l| !l.calibrated.is_empty()) {
        seeds.push(rm::Seed {
            label: "trend-dct null of each seed-lab snapshot against its base (child stream 9, one sub-stream per snapshot)".into(),
            value: child_seed(exp.nulls.seed, seed_stream::LAB_SURROGATE),
        });
    }
    let id = &exp.experiment.id;
    let provenance = rm::Provenance {
        tool: "nullprint".into(),
        version: fingerprint::build::version().into(),
        command_line: vec![
            "nullprint".into(),
            "reproduce".into(),
            a.experiment_path.display().to_string(),
        ],
        reproduce: vec![
            "pip install rust-just   # or: cargo install just".into(),
            format!("just reproduce {id}        # from the committed baselines"),
            "just models all && just baselines   # optional: recompute the baselines from the weights".into(),
        ],
        seeds,
        inputs: a.inputs.0.clone(),
        environment: vec![
            rm::KeyValue {
                key: "measure".into(),
                value: a.measure.name(),
            },
            rm::KeyValue {
                key: "ddof".into(),
                value: exp.measure.ddof.to_string(),
            },
        ],
        timestamp: None,
    };
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
            specification_curve: spec_rows(a),
            panel: panel_models,
        },
        figures,
        tables: [
            (!a.real_controls.is_empty())
                .then(|| controls_table(&a.real_controls, &a.measures, exp.nulls.alpha)),
            Some(lineage_table(a)),
        ]
        .into_iter()
        .flatten()
        .chain([
            glance_table(a),
            answers_table(a),
            calibrated_table(a),
            held_out_table(a),
            excluded_table(a),
            pairs_table(a),
        ])
        .chain(published_panel_table(a))
        .chain(lab_tables)
        .collect(),
    })
}

/// Every source of "how often does chance reach the claimed value" side by side: this panel
/// (all pairs and the same-depth stratum), the published panel (all pairs, the stratum matching
/// the claim, the depth model at the claim's depth), the seed lab at the claim's depth, and the
/// published figures quoted from elsewhere, each labelled with what it is.
fn glance_table(a: &Analysis) -> rm::Table {
    use crate::analysis::PublishedOutcome;
    let claim = a.exp.claim.value;
    let depth = a.exp.claim.layers.map(|l| l[0].max(l[1]));
    let text = |t: &str| rm::Cell::Text(t.to_owned());
    let num = rm::Cell::Number;
    let iv = |(lo, hi): (f64, f64)| rm::Cell::Text(format!("{lo:.4} – {hi:.4}"));
    let measured = |source: String, r: &NullResult, median: Option<f64>, note: &str| {
        vec![
            text(&source),
            num(r.n as f64),
            num(r.exceed as f64),
            num(r.exceed as f64 / r.n.max(1) as f64),
            iv(r.interval),
            median.map_or(rm::Cell::Missing, num),
            rm::Cell::Missing,
            text(note),
        ]
    };
    // A depth model's prediction at the claim's depth: a rate and interval, no counts.
    let model_row = |what: &str, kind: &str, r: &null::depth::RatePrediction| {
        vec![
            text(&format!("{what}: equal-depth pairs at {} layers", r.depth)),
            rm::Cell::Missing,
            rm::Cell::Missing,
            num(r.rate),
            iv(r.interval),
            rm::Cell::Missing,
            rm::Cell::Missing,
            text(&format!(
                "{kind}; {} of {} held-out depths inside their interval",
                r.lodo.covered,
                r.lodo.folds.len()
            )),
        ]
    };
    let mut rows = vec![measured(
        format!(
            "this panel: all unrelated pairs ({} models)",
            a.members.len()
        ),
        &a.panel.null,
        Some(a.panel.summary.median),
        "real models, fingerprinted here",
    )];
    if let Some(s) = a.panel.strata.iter().find(|s| s.name == "same depth") {
        rows.push(measured(
            "this panel: unrelated pairs of equal depth".into(),
            &s.result,
            None,
            "",
        ));
    }
    if let PublishedOutcome::Present(study) = &a.published_panel {
        let p = &study.panel;
        rows.push(measured(
            "published panel (GraphNet): all unrelated pairs".into(),
            &p.null,
            Some(p.summary.median),
            "real models; std published to 3 decimals",
        ));
        if let Some(s) = p
            .matched_stratum
            .as_ref()
            .and_then(|m| p.strata.iter().find(|s| &s.name == m))
        {
            let at_depth = study
                .depth_model
                .points
                .iter()
                .any(|pt| Some(pt.depth) == depth && pt.source.starts_with("published"));
            rows.push(measured(
                format!("published panel: stratum {}", s.name),
                &s.result,
                None,
                if at_depth {
                    "the stratum closest to the claim"
                } else {
                    "the stratum closest to the claim (no pair at the claim's depth)"
                },
            ));
        }
        if let Some(r) = study
            .depth_model
            .rates
            .iter()
            .find(|r| r.threshold == claim)
        {
            rows.push(model_row("depth model", "model-based extrapolation", r));
        }
    }
    if let Some(r) = a
        .lab
        .as_ref()
        .and_then(|l| l.depth_model.as_ref())
        .and_then(|m| m.rates.iter().find(|r| r.threshold == claim))
    {
        rows.push(model_row(
            "depth model with the seed lab's families",
            "model-based; the published panel's points plus small models trained here",
            r,
        ));
    }
    if let Some(f) = a
        .lab
        .as_ref()
        .zip(depth)
        .and_then(|(l, d)| l.independent_at(d))
    {
        let r = &f.at_or_above;
        rows.push(vec![
            text(&format!(
                "seed lab: same recipe, different seeds, {} layers",
                f.layers
            )),
            num(r.n as f64),
            num(r.count as f64),
            num(r.rate),
            iv(r.interval),
            num(f.median),
            rm::Cell::Missing,
            text(&format!(
                "{} small models (width {}) trained here; pairs share models",
                f.models, f.width
            )),
        ]);
    }
    for pb in &a.exp.published {
        rows.push(vec![
            text(&format!("published: {}", pb.label)),
            rm::Cell::Missing,
            rm::Cell::Missing,
            rm::Cell::Missing,
            rm::Cell::Missing,
            rm::Cell::Missing,
            num(pb.value),
            text(&format!("quoted, not computed here: {}", pb.citation)),
        ]);
    }
    rm::Table {
        name: "at-a-glance".into(),
        title: format!("At a glance: how often chance reaches {claim}"),
        caption: format!(
            "Every source this report has on pairs of models that share no weights, side by side. \
             Counts are of pairs at or above the claimed {claim}, with 95% Clopper–Pearson \
             intervals computed as if pairs were independent (they share models, so the \
             intervals are too narrow). Rows marked published are quoted from their source; every \
             other number is computed here."
        ),
        headers: [
            "source",
            "pairs",
            "at or above the claim",
            "share",
            "95% interval",
            "median score",
            "published figure",
            "note",
        ]
        .map(String::from)
        .to_vec(),
        rows,
    }
}

/// The published panel at a glance: its strata at the observed score, the depth model's
/// prediction at the claim's depth, the rule counts and exclusions; or the note that it was left
/// out and how to get the data.
fn published_panel_table(a: &Analysis) -> Option<rm::Table> {
    use crate::analysis::PublishedOutcome;
    let headers = ["figure", "n", "count", "value", "95% interval", "note"]
        .map(String::from)
        .to_vec();
    let text = |s: &str| rm::Cell::Text(s.to_owned());
    let num = |x: f64| rm::Cell::Number(x);
    let iv = |(lo, hi): (f64, f64)| rm::Cell::Text(format!("{lo:.4} – {hi:.4}"));
    let study = match &a.published_panel {
        PublishedOutcome::NotConfigured => return None,
        PublishedOutcome::Absent { dir } => {
            return Some(rm::Table {
                name: "published-panel".into(),
                title: "Published panel: left out".into(),
                caption: format!(
                    "The published per-layer panel (GraphNet) is not on this machine ({} not \
                     found), so its strata and the depth model are left out. To include them, {}.",
                    dir.display(),
                    crate::published::GET_DATA
                ),
                headers,
                rows: Vec::new(),
            })
        }
        PublishedOutcome::Present(s) => s,
    };
    let p = &study.panel;
    let mut rows = vec![vec![
        text("unrelated pairs at or above the observed score (all)"),
        num(p.null.n as f64),
        num(p.null.exceed as f64),
        num(p.null.p),
        iv(p.null.interval),
        text("p = (1 + count)/(1 + n); pairs are not independent"),
    ]];
    for s in &p.strata {
        let matched = p.matched_stratum.as_deref() == Some(s.name.as_str());
        rows.push(vec![
            text(&format!("stratum {}", s.name)),
            num(s.result.n as f64),
            num(s.result.exceed as f64),
            num(s.result.p),
            iv(s.result.interval),
            text(if matched { "matches the claim" } else { "" }),
        ]);
    }
    for r in &p.fpr {
        rows.push(vec![
            text(&format!("unrelated pairs at or above {}", r.threshold)),
            num(r.n as f64),
            num(r.count as f64),
            num(r.rate),
            iv(r.interval),
            text(""),
        ]);
    }
    let m = &study.depth_model;
    for r in &m.rates {
        rows.push(vec![
            text(&format!(
                "depth model: same-depth rate at or above {} at {} layers",
                r.threshold, r.depth
            )),
            rm::Cell::Missing,
            rm::Cell::Missing,
            num(r.rate),
            iv(r.interval),
            text(&format!(
                "model-based; leave-one-depth-out mean abs. error {:.3}, {}/{} depths inside \
                 their interval",
                r.lodo.mean_abs_error,
                r.lodo.covered,
                r.lodo.folds.len()
            )),
        ]);
    }
    for s in &m.scores {
        rows.push(vec![
            text(&format!(
                "depth model: same-depth {} score at {} layers",
                s.statistic, s.depth
            )),
            rm::Cell::Missing,
            rm::Cell::Missing,
            num(s.value),
            iv(s.interval),
            text(&format!(
                "model-based; leave-one-depth-out mean abs. error {:.3}",
                s.lodo.mean_abs_error
            )),
        ]);
    }
    if let Some(r) = &study.rounding_shift {
        rows.push(vec![
            text(&format!(
                "own panel: median |score shift| when its exact curves are rounded to {} decimals",
                r.decimals
            )),
            num(r.pairs as f64),
            rm::Cell::Missing,
            num(r.median_abs),
            rm::Cell::Missing,
            text(&format!(
                "95th percentile {:.4}, largest {:.4} ({} vs {}); {} pairs unscorable after \
                 rounding (a curve rounded flat)",
                r.p95_abs, r.max_abs, r.max_pair.0, r.max_pair.1, r.failed
            )),
        ]);
    }
    for c in &study.rule_counts {
        rows.push(vec![
            text(&format!("rule pair {:?} × {:?}: {}", c.a, c.b, c.relation)),
            num(c.pairs as f64),
            rm::Cell::Missing,
            rm::Cell::Missing,
            rm::Cell::Missing,
            text(""),
        ]);
    }
    for cal in &study.surrogate_sizes {
        for alpha in [0.01, 0.05] {
            if let Some(r) = cal.rejection_at(alpha) {
                rows.push(vec![
                    text(&format!("surrogate {} size at α = {alpha}", cal.null)),
                    num(r.n as f64),
                    num(r.count as f64),
                    num(r.rate),
                    iv(r.interval),
                    text(&cal.name),
                ]);
            }
        }
    }
    let e = &study.excluded;
    Some(rm::Table {
        name: "published-panel".into(),
        title: "Published panel (GraphNet): strata, depth model, lineage rules".into(),
        caption: format!(
            "{}. {} curves kept; left out: {} randomly initialised (a role constant over depth), \
             {} missing roles, {} with gaps in the layers, {} too short, {} by the table's \
             realness heuristic. Lineage rules: {}. Depth-model rows are model-based \
             extrapolations (seed {}), not measurements.",
            study.provenance.describe(),
            study.curves_by_depth.values().sum::<usize>(),
            e.init_like.len(),
            e.missing_roles,
            e.layer_gaps,
            e.too_short,
            e.heuristic_not_real,
            study
                .rules
                .iter()
                .map(|(r, t)| format!("{r:?}: {t}"))
                .collect::<Vec<_>>()
                .join("; "),
            m.seed
        ),
        headers,
        rows,
    })
}

/// `A vs B` of the comparable pair, or empty.
pub fn pair_label(a: &Analysis) -> String {
    a.pair
        .map(|(x, y)| format!("{} vs {}", a.members[x].id, a.members[y].id))
        .unwrap_or_default()
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
pub fn slug(s: &str) -> String {
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
    if t == exp.claim.value {
        return format!("claimed value {t}");
    }
    match exp.published.iter().find(|p| p.value == t) {
        Some(p) => format!("{} ({t})", p.label),
        None => format!("threshold {t}"),
    }
}

fn simulated_power_tables(a: &Analysis) -> Vec<rm::RateTable> {
    if a.power.is_empty() {
        return Vec::new();
    }
    let mut by_measure: BTreeMap<String, Vec<&PowerRow>> = BTreeMap::new();
    for r in &a.power {
        by_measure
            .entry(format!("{}-{}", r.measure.name(), r.null))
            .or_default()
            .push(r);
    }
    let base = a
        .exp
        .controls
        .as_ref()
        .and_then(|c| c.base.clone())
        .unwrap_or_default();
    by_measure
        .into_iter()
        .map(|(m, rows)| rm::RateTable {
            name: format!("power-{}", slug(&m)),
            title: format!("Power at α = {} (measure-null: {m})", a.exp.nulls.alpha),
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

fn spec_rows(a: &Analysis) -> Vec<rm::SpecRow> {
    a.spec
        .iter()
        .map(|s| rm::SpecRow {
            choices: vec![
                rm::Choice {
                    dimension: "roles".into(),
                    option: s.roles.into(),
                },
                rm::Choice {
                    dimension: "std".into(),
                    option: format!("ddof {}", s.ddof),
                },
                rm::Choice {
                    dimension: "depth".into(),
                    option: s.depth.into(),
                },
                rm::Choice {
                    dimension: "measure".into(),
                    option: s.measure.name(),
                },
            ],
            score: s.score,
            headline: s.headline,
        })
        .collect()
}

/// One row per control: its scores and p-values.
fn controls_table(scored: &[Scored], measures: &[null::Measure], alpha: f64) -> rm::Table {
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
                verdict::p(&s.panel),
                s.panel.exceed,
                s.panel.n
            )));
            row.push(rm::Cell::Text(format!(
                "{} ± {:.4}",
                verdict::p(&s.surrogate),
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
            "Each control is a checkpoint written by `nullprint derive` from a panel model's real weights (baselines/controls.toml), fingerprinted like any model. Noise is Gaussian with one absolute std for every tensor, `rel` times the base's median attention std. Panel p: rank of the score among the unrelated panel pairs, (1 + at or above)/(n + 1). Surrogate p: {surrogate} null of the (base, control) pair, {} draws, ± its Monte-Carlo error; seeds are child streams of the master seed (stream 6, one per control). α = {alpha}.",
            policy::CONTROL_SURROGATE_SAMPLES
        ),
        headers,
        rows,
    }
}

/// Power tables: per recipe, how often the surrogate null rejects at α; per threshold, how
/// many controls the threshold rule calls related.
fn control_power_tables(scored: &[Scored], thresholds: &[f64], alpha: f64) -> Vec<rm::RateTable> {
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
        interval: null::stats::clopper_pearson(count, n, null::pvalue::CONFIDENCE)
            .ok()
            .map(interval),
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
                let (lo, hi) = verdict::min_max(members.iter().map(|s| s.scores[0].1));
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

/// A threshold never judged on the scores that chose it.
/// How often the answer rule gives each answer on real labelled pairs, each held out.
pub fn answers_table(a: &Analysis) -> rm::Table {
    let mut rows = Vec::new();
    for g in &a.answer_rates {
        let mut row = vec![
            rm::Cell::Text(g.group.to_owned()),
            rm::Cell::Text(if g.share_weights { "yes" } else { "no" }.to_owned()),
            rm::Cell::Number(g.shares[0].n as f64),
        ];
        for sh in &g.shares {
            row.push(rm::Cell::Text(format!(
                "{}/{} ({:.0}%, 95% CI {:.0}–{:.0}%)",
                sh.count,
                sh.n,
                100.0 * sh.rate,
                100.0 * sh.interval.0,
                100.0 * sh.interval.1
            )));
        }
        rows.push(row);
    }
    let mut headers = ["group", "share weights", "n"].map(String::from).to_vec();
    headers.extend(
        null::answer::Answer::ALL
            .iter()
            .map(|x| x.phrase().to_owned()),
    );
    rm::Table {
        name: "answer-rates".into(),
        title: "How often each answer is given to real labelled pairs".into(),
        caption: format!(
            "The answer rule at α = {}: \"consistent with shared weights\" when the panel p ≤ α; \"cannot tell\" when the reference cannot reach α and the score is beyond all of it; otherwise \"not distinguishable from unrelated models\". Each pair is tested against the unrelated panel pairs that involve neither of its models (a positive control: not its base), so these are held-out error rates: for unrelated pairs the first column is the false-accusation rate, for pairs that share weights the second is the miss rate. Clopper-Pearson intervals treat items as independent, which pairs sharing models are not.",
            a.exp.nulls.alpha
        ),
        headers,
        rows,
    }
}

/// Surrogate p-values calibrated on real unrelated pairs, and the held-out check of the
/// calibration.
pub fn calibrated_table(a: &Analysis) -> rm::Table {
    let rows = a
        .calibrated
        .iter()
        .map(|c| {
            let h = &c.held_out;
            let at = |level: f64| {
                h.rejection_at(level).map_or(rm::Cell::Missing, |r| {
                    rm::Cell::Text(format!("{}/{} ({:.1}%)", r.count, r.n, 100.0 * r.rate))
                })
            };
            let (raw, cal) = match (&c.of_pair, a.surrogates.iter().find(|s| s.kind == c.kind)) {
                (Some(cp), Some(s)) => (
                    rm::Cell::Text(verdict::p(&s.of_pair)),
                    rm::Cell::Text(format!("{} (n = {})", verdict::p(cp), cp.n)),
                ),
                _ => (rm::Cell::Missing, rm::Cell::Missing),
            };
            vec![
                rm::Cell::Text(c.kind.to_string()),
                raw,
                cal,
                rm::Cell::Number(h.n as f64),
                rm::Cell::Number(h.ks.d),
                rm::Cell::Number(h.ks.p),
                at(0.01),
                at(0.05),
            ]
        })
        .collect();
    rm::Table {
        name: "calibrated-surrogates".into(),
        title: "Surrogate p-values calibrated on real unrelated pairs".into(),
        caption: format!(
            "A surrogate null's raw p is referred to its p-values over the panel's real unrelated pairs (its size table): calibrated p = (1 + pairs with p at or below it)/(1 + pairs), leaving out pairs that share a model with the tested pair. Raw p-values finer than the reference's {} draws are coarsened to its floor. Held-out check: every unrelated pair calibrated on the pairs sharing none of its models, ties broken by a seeded uniform draw (child stream {} of the master seed); if the calibration holds these are uniform (KS) and reject about a share α at level α. The pairs share models, so the KS p-value is indicative only.",
            a.exp.nulls.samples.min(policy::SIZE_SAMPLES),
            seed_stream::CALIBRATED
        ),
        headers: [
            "null",
            "comparable pair: raw p",
            "calibrated p",
            "held-out pairs",
            "KS D",
            "KS p",
            "held out: p ≤ 0.01",
            "held out: p ≤ 0.05",
        ]
        .map(String::from)
        .to_vec(),
        rows,
    }
}

fn held_out_table(a: &Analysis) -> rm::Table {
    let mut rows = Vec::new();
    let mut caption = format!(
        "Leave one model out: the threshold is chosen on the pairs without the model (rule: false-positive rate at most {}%), then applied to the held-out model's pairs.",
        policy::HELD_OUT_FPR * 100.0
    );
    match &a.held_out {
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
                caption.push(' ');
                caption.push_str(&verdict::sentence(n));
            }
        }
        Err(e) => caption.push_str(&format!(" Not computed: {e}.")),
    }
    rm::Table {
        name: "held-out-threshold".into(),
        title: format!("Held-out threshold ({})", a.measure.name()),
        caption,
        headers: [
            "held-out model",
            "threshold",
            "false positives",
            "unrelated pairs",
            "true positives",
            "related pairs",
        ]
        .map(String::from)
        .to_vec(),
        rows,
    }
}

fn lineage_table(a: &Analysis) -> rm::Table {
    rm::Table {
        name: "panel-lineage".into(),
        title: "Lineage labels of the baseline panel".into(),
        caption: "From baselines/index.toml. Models with the same root share weights and are related; every other pair is a null pair.".into(),
        headers: ["model", "kind", "root", "derived from", "organization"]
            .map(String::from)
            .to_vec(),
        rows: a
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

fn excluded_table(a: &Analysis) -> rm::Table {
    rm::Table {
        name: "related-pairs".into(),
        title: "Related pairs excluded from the null".into(),
        caption: "Pairs with the same root share weights and never count as null pairs; their scores are listed for comparison.".into(),
        headers: ["model a", "model b", "score"].map(String::from).to_vec(),
        rows: a
            .panel
            .excluded
            .related_pairs
            .iter()
            .map(|p| {
                vec![
                    rm::Cell::Text(p.a.clone()),
                    rm::Cell::Text(p.b.clone()),
                    rm::Cell::Number(p.score),
                ]
            })
            .collect(),
    }
}

fn pairs_table(a: &Analysis) -> rm::Table {
    let mut rows: Vec<(f64, Vec<rm::Cell>)> = a
        .table
        .pairs
        .iter()
        .map(|p| {
            let (x, y) = a.table.ids(p);
            (
                p.score,
                vec![
                    rm::Cell::Text(x.into()),
                    rm::Cell::Text(y.into()),
                    rm::Cell::Text(p.relation.to_string()),
                    rm::Cell::Number(p.score),
                ],
            )
        })
        .collect();
    rows.sort_by(|x, y| y.0.total_cmp(&x.0));
    rm::Table {
        name: "panel-pairs".into(),
        title: "Every pair of the panel".into(),
        caption: format!(
            "{} scores of every pair of baseline models, highest first.",
            a.measure.name()
        ),
        headers: ["model a", "model b", "relation", "score"]
            .map(String::from)
            .to_vec(),
        rows: rows.into_iter().map(|(_, r)| r).collect(),
    }
}

fn figures(a: &Analysis, published: &[rm::Published]) -> Result<Vec<rm::Figure>> {
    let mut figs = Vec::new();
    let claim_marks: Vec<rm::Mark> = std::iter::once(rm::Mark::Published { id: "claim".into() })
        .chain(
            published
                .iter()
                .zip(&a.exp.published)
                .filter(|(_, spec)| spec.mark)
                .map(|(p, _)| rm::Mark::Published { id: p.id.clone() }),
        )
        .collect();
    figs.extend(headline_figure(a, &claim_marks)?);
    // The headline carries this panel's rate curve; without it, the curve has its own figure.
    let has_headline = !figs.is_empty();
    // Null distributions.
    let mut panels = vec![rm::NullPanel {
        null: a.panel.null.name.clone(),
        samples: a.unrelated.clone(),
        marks: claim_marks.clone(),
    }];
    let pair_label = pair_label(a);
    for SurrogatePair { kind, draws, .. } in &a.surrogates {
        panels.push(rm::NullPanel {
            null: format!("{kind} ({pair_label}, its own score)"),
            samples: quantiles(draws, policy::FIGURE_QUANTILES),
            marks: vec![rm::Mark::Published { id: "claim".into() }],
        });
    }
    figs.push(rm::Figure {
        name: "null-distributions".into(),
        title: "Similarity of pairs that share no weights".into(),
        caption: format!(
            "First panel: {} similarity of every unrelated pair of real models in the panel. Other panels: surrogate nulls of one comparable real pair ({pair_label}), which keep what each null preserves and destroy any shared lineage.",
            a.measure.name()
        ),
        kind: rm::FigureKind::NullDistributions(rm::NullFigure {
            x_label: format!(
                "{} similarity (mean per-role correlation, unitless)",
                a.measure.name()
            ),
            panels,
        }),
    });
    // Curves of the comparable pair (or the recomputed claim).
    let curve_models = match (&a.recomputed, a.pair) {
        (Some(r), _) => Some((&r.a, &r.b)),
        (None, Some((x, y))) => Some((&a.members[x].curves, &a.members[y].curves)),
        _ => None,
    };
    if let Some((ca, cb)) = curve_models {
        figs.push(rm::Figure {
            name: "fingerprint-curves".into(),
            title: format!("Per-layer attention std: {} vs {}", ca.model, cb.model),
            caption: "Raw per-layer standard deviation of each attention projection (top) and the z-scored curves the published measure correlates (bottom); the shorter model's z-curve is interpolated onto the deeper model's depth grid (dashed).".into(),
            kind: rm::FigureKind::FingerprintCurves(curves_figure(ca, cb, a.exp.measure.ddof)?),
        });
    }
    figs.push(heatmap(a));
    if !has_headline {
        figs.push(rm::Figure {
            name: "false-positive-rate".into(),
            title: "How often unrelated models reach a threshold".into(),
            caption: format!(
                "Share of the {} unrelated panel pairs whose {} similarity is at or above each threshold, with 95% Clopper-Pearson bands.",
                a.unrelated.len(),
                a.measure.name()
            ),
            kind: rm::FigureKind::FprThreshold(rm::FprFigure {
                x_label: "threshold (similarity, unitless)".into(),
                series: vec![rm::FprSeries {
                    label: format!("unrelated panel pairs (n = {})", a.unrelated.len()),
                    points: a
                        .fpr_curve
                        .iter()
                        .map(|r| rm::FprPoint {
                            threshold: r.threshold,
                            rate: r.rate,
                            lo: Some(r.interval.0),
                            hi: Some(r.interval.1),
                        })
                        .collect(),
                }],
                marks: claim_marks,
                log_rate: false,
            }),
        });
    }
    figs.extend(depth_figure(a)?);
    if let Some(l) = &a.lab {
        figs.extend(crate::seed_lab::figures(
            l,
            &a.measure.name(),
            &a.fpr_curve,
        )?);
    }
    if let Some(roc) = roc_figure(a) {
        figs.push(roc);
    }
    figs.push(calibration_figure(a));
    if a.pair.is_some() && a.recomputed.is_none() {
        figs.push(rm::Figure {
            name: "specification-curve".into(),
            title: format!("How much the score of {pair_label} depends on analysis choices"),
            caption: "Every combination of role subset, std convention (ddof), depth alignment and measure. z-scoring is not a separate choice: a Pearson correlation is unchanged by it.".into(),
            kind: rm::FigureKind::SpecificationCurve(rm::SpecFigure {
                y_label: "similarity (unitless)".into(),
                marks: vec![rm::Mark::Published { id: "claim".into() }],
            }),
        });
    }
    Ok(figs)
}

/// A stratum name in words for a legend: `depth: same, kind: decoder/decoder` reads "equal
/// depth, decoder/decoder".
fn stratum_words(name: &str) -> String {
    name.replace("depth: same", "equal depth")
        .replace("depth: within 10%", "depth within 10%")
        .replace("kind: ", "")
}

/// The name of the headline figure, shown with the verdict.
pub const HEADLINE_FIGURE: &str = "claim-on-matched-nulls";

/// The headline figure: the claimed value on the nulls closest to the claim (the published
/// panel's matched stratum; the seed lab's same-recipe pairs at the claim's depth), next to
/// this panel's unrelated pairs. None without either of the first two.
fn headline_figure(a: &Analysis, marks: &[rm::Mark]) -> Result<Option<rm::Figure>> {
    use crate::analysis::PublishedOutcome;
    // From 0: below it every curve is near 100% and the tail is what the claim is read against.
    let points = |rates: &[null::pvalue::Rate]| -> Vec<rm::FprPoint> {
        rates
            .iter()
            .filter(|r| r.threshold >= 0.0)
            .map(|r| rm::FprPoint {
                threshold: r.threshold,
                rate: r.rate,
                lo: Some(r.interval.0),
                hi: Some(r.interval.1),
            })
            .collect()
    };
    let grid = policy::rate_grid();
    let mut series = Vec::new();
    let mut parts = Vec::new();
    if let PublishedOutcome::Present(study) = &a.published_panel {
        let p = &study.panel;
        if let (Some(name), Some(first)) = (&p.matched_stratum, p.matched_curve.first()) {
            series.push(rm::FprSeries {
                label: format!("published panel, {} (n = {})", stratum_words(name), first.n),
                points: points(&p.matched_curve),
            });
            let deepest = study
                .curves_by_depth
                .iter()
                .filter(|(_, &c)| c >= 2)
                .map(|(&d, _)| d)
                .max();
            parts.push(format!(
                "the published panel's unrelated pairs in the stratum closest to the claim \
                 (\"{name}\", {} pairs; real pretrained models, but no depth past {} layers \
                 holds two of its curves)",
                first.n,
                deepest.map_or("—".into(), |d| d.to_string())
            ));
        }
    }
    if let Some(l) = &a.lab {
        let at_claim = a
            .exp
            .claim
            .layers
            .and_then(|[x, y]| l.independent_at(x.max(y)))
            .filter(|f| !f.pairs.is_empty());
        if let Some(f) = at_claim {
            let scores: Vec<f64> = f.pairs.iter().map(|p| p.score).collect();
            let r = null::pvalue::rates_at_or_above(&scores, &grid).map_err(
                crate::error::Error::statistic(format!("seed family {}", f.family)),
            )?;
            series.push(rm::FprSeries {
                label: format!(
                    "seed lab, same recipe, {} layers (n = {})",
                    f.layers,
                    scores.len()
                ),
                points: points(&r),
            });
            parts.push(format!(
                "every pair of the seed lab's {}-layer models trained with one recipe and \
                 different seeds ({} pairs; width {}, small and briefly trained)",
                f.layers,
                scores.len(),
                f.width
            ));
        }
    }
    if series.is_empty() {
        return Ok(None);
    }
    series.push(rm::FprSeries {
        label: format!(
            "this panel, all unrelated pairs (n = {})",
            a.unrelated.len()
        ),
        points: points(&a.fpr_curve),
    });
    parts.push(format!(
        "this panel's {} unrelated pairs of real models, of any depth ({} of equal depth)",
        a.unrelated.len(),
        crate::verdict::same_depth_pairs(a)
    ));
    Ok(Some(rm::Figure {
        name: HEADLINE_FIGURE.into(),
        title: "The claim against unrelated pairs like it".into(),
        caption: format!(
            "Share of pairs that share no weights whose {} similarity is at or above each \
             threshold, with 95% Clopper–Pearson bands (computed as if pairs were independent; \
             they share models, so the bands are too narrow): {}. Read each curve at the \
             claimed value: that is how often chance alone reached it there.",
            a.measure.name(),
            parts.join("; ")
        ),
        kind: rm::FigureKind::FprThreshold(rm::FprFigure {
            x_label: format!("threshold ({} similarity, unitless)", a.measure.name()),
            series,
            marks: marks.to_vec(),
            log_rate: true,
        }),
    }))
}

/// How the share of unrelated equal-depth pairs at or above the claimed value changes with
/// depth: the published panel's depth strata and the seed lab's same-recipe families, each with
/// its Clopper–Pearson interval, and the depth model's extrapolation to the claim's depth. `None`
/// when neither the published panel nor the lab is in the analysis.
fn depth_figure(a: &Analysis) -> Result<Option<rm::Figure>> {
    use crate::analysis::PublishedOutcome;
    let claim = a.exp.claim.value;
    let point = |x: f64, count: u64, n: u64| -> Result<rm::LinePoint> {
        let r = null::pvalue::Rate::new(claim, count, n)?;
        Ok(rm::LinePoint {
            x,
            y: r.rate,
            lo: Some(r.interval.0),
            hi: Some(r.interval.1),
        })
    };
    // A depth model's prediction: one point with its interval.
    let model_series = |label: &str, r: &null::depth::RatePrediction| rm::LineSeries {
        label: format!(
            "{label} ({}/{} held-out depths covered)",
            r.lodo.covered,
            r.lodo.folds.len()
        ),
        points: vec![rm::LinePoint {
            x: r.depth as f64,
            y: r.rate,
            lo: Some(r.interval.0),
            hi: Some(r.interval.1),
        }],
    };
    let mut series = Vec::new();
    if let PublishedOutcome::Present(study) = &a.published_panel {
        let m = &study.depth_model;
        if let Some(i) = m.thresholds.iter().position(|&t| t == claim) {
            // One series per panel the depth model pooled (the published one and this one).
            let mut sources: Vec<&str> = Vec::new();
            for p in &m.points {
                if !sources.contains(&p.source.as_str()) {
                    sources.push(&p.source);
                }
            }
            for source in sources {
                let mut pts: Vec<_> = m.points.iter().filter(|p| p.source == source).collect();
                pts.sort_by_key(|p| p.depth);
                let label = if source.starts_with("published panel") {
                    "published panel (GraphNet), unrelated equal-depth pairs".to_owned()
                } else {
                    format!("this panel ({source}), unrelated equal-depth pairs")
                };
                series.push(rm::LineSeries {
                    label,
                    points: pts
                        .iter()
                        .map(|p| point(p.depth as f64, p.exceed[i], p.pairs))
                        .collect::<Result<Vec<_>>>()?,
                });
            }
            if let Some(r) = m.rates.iter().find(|r| r.threshold == claim) {
                series.push(model_series(
                    &format!("depth model at {} layers", r.depth),
                    r,
                ));
            }
        }
    }
    if let Some(r) = a
        .lab
        .as_ref()
        .and_then(|l| l.depth_model.as_ref())
        .and_then(|m| m.rates.iter().find(|r| r.threshold == claim))
    {
        series.push(model_series("depth model with the seed lab", r));
    }
    if let Some(l) = &a.lab {
        let mut fams: Vec<_> = l
            .strata
            .seeds
            .iter()
            .filter(|f| f.kind == lab::spec::Kind::Independent)
            .collect();
        fams.sort_by_key(|f| f.layers);
        if !fams.is_empty() {
            series.push(rm::LineSeries {
                label: "seed lab: same recipe, different seeds (small models)".into(),
                points: fams
                    .iter()
                    .map(|f| point(f.layers as f64, f.at_or_above.count, f.at_or_above.n))
                    .collect::<Result<Vec<_>>>()?,
            });
        }
    }
    if series.is_empty() {
        return Ok(None);
    }
    Ok(Some(rm::Figure {
        name: "depth".into(),
        title: format!("How often unrelated models of equal depth reach {claim}"),
        caption: format!(
            "Share of pairs of models that share no weights, both of one depth, whose {} \
             similarity is at or above the claimed {claim}, with 95% Clopper–Pearson intervals \
             (computed as if pairs were independent; they share models, so the intervals are too \
             narrow). The claim compares two {}-layer models.",
            a.measure.name(),
            a.exp
                .claim
                .layers
                .map_or("?".to_owned(), |l| l[0].max(l[1]).to_string())
        ),
        kind: rm::FigureKind::Lines(rm::LinesFigure {
            x_label: "layers (both models)".into(),
            y_label: format!("share of pairs at or above {claim}"),
            y_range: Some((0.0, 1.0)),
            series,
            marks: Vec::new(),
        }),
    }))
}

fn curves_figure(a: &null::Curves, b: &null::Curves, ddof: u32) -> Result<rm::CurvesFigure> {
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
            let interpolated = match (&z, n < other) {
                (Some(z), true) => Some(rm::Interpolated {
                    onto_layers: other as u32,
                    x: (0..other).map(|i| i as f64 / (other - 1) as f64).collect(),
                    z: null::stats::interpolate(z, other)?
                        .into_iter()
                        .map(Some)
                        .collect(),
                }),
                _ => None,
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

fn heatmap(a: &Analysis) -> rm::Figure {
    let ids: Vec<&str> = a.table.models.iter().map(|m| m.id.as_str()).collect();
    let n = ids.len();
    let mut values = vec![vec![None; n]; n];
    let mut related = Vec::new();
    for p in &a.table.pairs {
        values[p.a][p.b] = Some(p.score);
        values[p.b][p.a] = Some(p.score);
        if p.relation == Relation::Related {
            related.push((ids[p.a].to_string(), ids[p.b].to_string()));
        }
    }
    for (i, row) in values.iter_mut().enumerate() {
        row[i] = Some(1.0);
    }
    let models = a
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
        caption: format!(
            "{} similarity of every pair of baseline models, grouped by family; related pairs (same root) are outlined.",
            a.measure.name()
        ),
        kind: rm::FigureKind::Heatmap(rm::HeatmapFigure {
            value_label: "similarity (unitless)".into(),
            models,
            values,
            related,
            range: Some((-1.0, 1.0)),
        }),
    }
}

fn roc_figure(a: &Analysis) -> Option<rm::Figure> {
    let last = a.roc.last()?;
    Some(rm::Figure {
        name: "roc".into(),
        title: "Related vs unrelated: how well each measure separates them".into(),
        caption: if a.real_controls.is_empty() {
            "Positives: related panel pairs (same root) and one derived model per simulated positive control; negatives: unrelated panel pairs. Thresholds are not fitted here; the curve shows every threshold.".into()
        } else {
            "Positives: related panel pairs (same root) and the positive controls built from real weights, each against its base; negatives: unrelated panel pairs. Thresholds are not fitted here; the curve shows every threshold.".into()
        },
        kind: rm::FigureKind::Roc(rm::RocFigure {
            positives: format!(
                "related pairs and positive controls (n = {})",
                last.roc.n_related
            ),
            negatives: format!("unrelated panel pairs (n = {})", last.roc.n_unrelated),
            curves: a
                .roc
                .iter()
                .map(|r| rm::RocCurve {
                    measure: r.measure.name(),
                    points: r
                        .roc
                        .points
                        .iter()
                        .map(|p| rm::RocPoint {
                            fpr: p.fpr,
                            tpr: p.tpr,
                        })
                        .collect(),
                    auc: Some(r.roc.auc),
                })
                .collect(),
        }),
    })
}

fn calibration_figure(a: &Analysis) -> rm::Figure {
    let thin = |c: &Calibration| -> Vec<f64> {
        let step = c.qq.len().div_ceil(policy::FIGURE_QQ_POINTS).max(1);
        c.qq.iter()
            .enumerate()
            .filter(|(i, _)| i % step == 0 || *i == c.qq.len() - 1)
            .map(|(_, q)| q.observed)
            .collect()
    };
    let cal = &a.simulated_calibration;
    let mut series = vec![rm::QqSeries {
        label: format!(
            "simulated independent random-walk + trend curves, panel null (n = {}, KS p = {:.2})",
            cal.n, cal.ks.p
        ),
        p_values: thin(cal),
    }];
    if let Some(l) = &a.leave_one_out {
        series.push(rm::QqSeries {
            label: format!(
                "real panel, leave one model out (n = {}, KS p = {:.2})",
                l.n, l.ks.p
            ),
            p_values: thin(l),
        });
    }
    for cal in &a.surrogate_size {
        series.push(rm::QqSeries {
            label: format!(
                "real unrelated pairs, {} null, raw (n = {}, KS p = {:.2})",
                cal.null, cal.n, cal.ks.p
            ),
            p_values: thin(cal),
        });
    }
    for c in &a.calibrated {
        let h = &c.held_out;
        series.push(rm::QqSeries {
            label: format!(
                "real unrelated pairs, {} null, calibrated and held out (n = {}, KS p = {:.2})",
                c.kind, h.n, h.ks.p
            ),
            p_values: thin(h),
        });
    }
    rm::Figure {
        name: "calibration".into(),
        title: "Are the p-values uniform when the null holds?".into(),
        caption: format!("QQ plot of p-values computed on pairs where the null is true: simulated unrelated curves; each real unrelated pair tested against the panel without its models; each surrogate null's raw p on real unrelated pairs; and the same p calibrated on the pairs that share none of its models. A calibrated null lies on the diagonal. At most {} points per series are drawn. `just calibrate` runs the full-size study.", policy::FIGURE_QQ_POINTS),
        kind: rm::FigureKind::PValueQq(rm::QqFigure { series }),
    }
}

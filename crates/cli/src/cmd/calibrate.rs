//! `nullprint calibrate`: are the p-values uniform when the null is true? Simulates unrelated
//! curves (random walk plus a shared depth trend), tests them with every measure and null, and
//! writes a report with QQ plots, KS tests and rejection rates at 0.01/0.05/0.10.

use std::collections::BTreeMap;

use anyhow::Result;
use null::calibrate::{run_full, Calibration, FullCalibration};
use report::model as rm;

use crate::args::CalibrateArgs;

pub fn run(a: CalibrateArgs) -> Result<()> {
    let cfg = FullCalibration {
        replicates: a.replicates,
        samples: a.samples,
        seed: a.seed,
        ..FullCalibration::default()
    };
    let started = std::time::Instant::now();
    let results = run_full(&cfg)?;
    eprintln!(
        "calibrate: {} calibrations in {:.1} s",
        results.len(),
        started.elapsed().as_secs_f64()
    );
    let mut by_measure: BTreeMap<String, Vec<&Calibration>> = BTreeMap::new();
    for c in &results {
        by_measure.entry(c.measure.name()).or_default().push(c);
    }
    let interval = |i: (f64, f64)| rm::Interval {
        lo: i.0,
        hi: i.1,
        level: 0.95,
        method: "Clopper-Pearson".into(),
    };
    let tables: Vec<rm::RateTable> = by_measure
        .iter()
        .map(|(m, cals)| rm::RateTable {
            name: format!(
                "rejection-{}",
                m.replace(|c: char| !c.is_ascii_alphanumeric(), "-")
            ),
            title: format!("Rejection rate of true nulls ({m})"),
            population: format!(
                "{} simulated unrelated pairs per null; rate of p ≤ level",
                cfg.replicates
            ),
            measure: m.clone(),
            counts: Some(rm::COUNTS_P_AT_OR_BELOW_LEVEL.into()),
            rows: cals
                .iter()
                .flat_map(|c| {
                    c.rejection.iter().map(move |r| rm::RateRow {
                        label: format!(
                            "{} at level {} (KS p = {:.3})",
                            c.null, r.threshold, c.ks.p
                        ),
                        threshold: r.threshold,
                        threshold_source: None,
                        count: r.count,
                        n: r.n,
                        rate: Some(r.rate),
                        interval: Some(interval(r.interval)),
                    })
                })
                .collect(),
        })
        .collect();
    let figures: Vec<rm::Figure> = by_measure
        .iter()
        .map(|(m, cals)| rm::Figure {
            name: format!("qq-{}", m.replace(|c: char| !c.is_ascii_alphanumeric(), "-")),
            title: format!("p-values of true nulls, {m}"),
            caption: "QQ plot of p-values computed on simulated pairs of unrelated curves; a calibrated null lies on the diagonal, one that bows below it rejects too often.".into(),
            kind: rm::FigureKind::PValueQq(rm::QqFigure {
                series: cals
                    .iter()
                    .map(|c| rm::QqSeries {
                        label: format!("{} (n = {}, KS p = {:.3})", c.null, c.n, c.ks.p),
                        p_values: c.qq.iter().map(|q| q.observed).collect(),
                    })
                    .collect(),
            }),
        })
        .collect();
    let worst = results
        .iter()
        .filter_map(|c| {
            c.rejection
                .iter()
                .find(|r| r.threshold == 0.05)
                .map(|r| (c, r.rate))
        })
        .collect::<Vec<_>>();
    let calibrated: Vec<String> = worst
        .iter()
        .filter(|(_, r)| *r <= 0.075)
        .map(|(c, r)| format!("{} with {} ({:.3})", c.null, c.measure.name(), r))
        .collect();
    let liberal: Vec<String> = worst
        .iter()
        .filter(|(_, r)| *r > 0.075)
        .map(|(c, r)| format!("{} with {} ({:.3})", c.null, c.measure.name(), r))
        .collect();
    let report = rm::Report {
        schema_version: rm::SCHEMA_VERSION,
        title: "Calibration: do nullprint's p-values hold their level when the null is true?".into(),
        banner: Some("Simulated data: independent random-walk curves sharing a depth trend, as real per-layer std curves do.".into()),
        provenance: rm::Provenance {
            tool: "nullprint".into(),
            version: fingerprint::build::version().into(),
            command_line: vec!["nullprint".into(), "calibrate".into(), format!("--replicates={}", a.replicates), format!("--samples={}", a.samples), format!("--seed={}", a.seed)],
            reproduce: vec!["just calibrate".into()],
            seeds: vec![rm::Seed { label: "simulation master seed".into(), value: a.seed }],
            inputs: Vec::new(),
            environment: vec![rm::KeyValue { key: "curve model".into(), value: serde_json::to_string(&cfg.model)? }],
            timestamp: None,
        },
        claim: rm::Claim {
            text: "A level-α test rejects a true null with probability at most α; its p-values are uniform on [0, 1] when the null holds.".into(),
            statistic: rm::Published {
                id: "claim".into(),
                label: "nominal level α".into(),
                short_label: "α".into(),
                value: Some(0.05),
                text: None,
                citation: rm::Citation { source: "the definition of a level-α test (e.g. Lehmann and Romano, Testing Statistical Hypotheses, 3rd ed., 2005, §3.1)".into(), url: None },
            },
        },
        verdict: rm::Verdict {
            claimed: "Each null should reject about 5% of unrelated pairs at α = 0.05.".into(),
            nulls_say: format!(
                "Within 1.5 α at 0.05: {}. Too liberal (reject true nulls too often): {}.",
                if calibrated.is_empty() { "none".into() } else { calibrated.join("; ") },
                if liberal.is_empty() { "none".into() } else { liberal.join("; ") }
            ),
            cannot_say: "The simulation is a model of real curves, not real curves: the HonestAGI report also measures each null's rejection rate on real unrelated pairs, which is the check that matters for a claim.".into(),
        },
        published: Vec::new(),
        computed: rm::Computed { nulls: Vec::new(), false_positive_rates: tables, power: Vec::new(), specification_curve: Vec::new(), panel: Vec::new() },
        figures,
        tables: Vec::new(),
    };
    let written = report::write_report(&a.output, &report, a.force)?;
    eprintln!("wrote {} ({} files)", a.output.display(), written.len());
    Ok(())
}

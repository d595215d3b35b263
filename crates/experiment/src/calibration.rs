//! The report of `nullprint calibrate`: are the p-values uniform when the null is true? Rejection
//! rates, QQ plots and the verdict of each null on simulated unrelated curves.

use std::collections::BTreeMap;

use null::calibrate::{Calibration, FullCalibration};
use report::model as rm;

use crate::assemble::{rejection_rows, slug};
use crate::error::Result;
use crate::policy;

/// The calibration report of `results`, computed with `cfg`.
pub fn report(cfg: &FullCalibration, results: &[Calibration]) -> Result<rm::Report> {
    let mut by_measure: BTreeMap<String, Vec<&Calibration>> = BTreeMap::new();
    for c in results {
        by_measure.entry(c.measure.name()).or_default().push(c);
    }
    let tables: Vec<rm::RateTable> = by_measure
        .iter()
        .map(|(m, cals)| rm::RateTable {
            name: format!("rejection-{}", slug(m)),
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
                    rejection_rows(c, move |r| {
                        format!("{} at level {} (KS p = {:.3})", c.null, r.threshold, c.ks.p)
                    })
                })
                .collect(),
        })
        .collect();
    let figures: Vec<rm::Figure> = by_measure
        .iter()
        .map(|(m, cals)| rm::Figure {
            name: format!("qq-{}", slug(m)),
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
    let level = policy::CALIBRATION_LEVEL;
    let at_level: Vec<(&Calibration, f64)> = results
        .iter()
        .filter_map(|c| {
            c.rejection
                .iter()
                .find(|r| r.threshold == level)
                .map(|r| (c, r.rate))
        })
        .collect();
    let list = |calibrated: bool| {
        let v: Vec<String> = at_level
            .iter()
            .filter(|(_, r)| policy::is_calibrated(*r, level) == calibrated)
            .map(|(c, r)| format!("{} with {} ({:.3})", c.null, c.measure.name(), r))
            .collect();
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join("; ")
        }
    };
    Ok(rm::Report {
        schema_version: rm::SCHEMA_VERSION,
        title: "Calibration: do nullprint's p-values hold their level when the null is true?".into(),
        banner: Some("Simulated data: independent random-walk curves sharing a depth trend, as real per-layer std curves do.".into()),
        provenance: rm::Provenance {
            tool: "nullprint".into(),
            version: fingerprint::build::version().into(),
            command_line: vec![
                "nullprint".into(),
                "calibrate".into(),
                format!("--replicates={}", cfg.replicates),
                format!("--samples={}", cfg.samples),
                format!("--seed={}", cfg.seed),
            ],
            reproduce: vec!["just calibrate".into()],
            seeds: vec![rm::Seed {
                label: "simulation master seed".into(),
                value: cfg.seed,
            }],
            inputs: Vec::new(),
            environment: vec![rm::KeyValue {
                key: "curve model".into(),
                value: serde_json::to_string(&cfg.model).unwrap_or_default(),
            }],
            timestamp: None,
        },
        claim: rm::Claim {
            text: "A level-α test rejects a true null with probability at most α; its p-values are uniform on [0, 1] when the null holds.".into(),
            statistic: rm::Published {
                id: "claim".into(),
                label: "nominal level α".into(),
                short_label: "α".into(),
                value: Some(level),
                text: None,
                citation: rm::Citation {
                    source: "the definition of a level-α test (e.g. Lehmann and Romano, Testing Statistical Hypotheses, 3rd ed., 2005, §3.1)".into(),
                    url: None,
                },
            },
        },
        verdict: rm::Verdict {
            answer: String::new(),
            findings: Vec::new(),
            figure: None,
            claimed: format!(
                "Each null should reject about {:.0}% of unrelated pairs at α = {level}.",
                level * 100.0
            ),
            nulls_say: format!(
                "Within {} α at {level}: {}. Too liberal (reject true nulls too often): {}.",
                policy::CALIBRATED_WITHIN,
                list(true),
                list(false)
            ),
            cannot_say: "The simulation is a model of real curves, not real curves: the HonestAGI report also measures each null's rejection rate on real unrelated pairs, which is the check that matters for a claim.".into(),
        },
        published: Vec::new(),
        computed: rm::Computed {
            nulls: Vec::new(),
            false_positive_rates: tables,
            power: Vec::new(),
            specification_curve: Vec::new(),
            panel: Vec::new(),
        },
        figures,
        tables: Vec::new(),
    })
}

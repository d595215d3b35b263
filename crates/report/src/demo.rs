//! A demo [`Report`] of synthetic data, for previewing the layout and the figures.
//!
//! Every number in it comes from a seeded pseudo-random generator, and the report says so in
//! its title, banner, verdict and citations: it is not a result about any model, and its
//! "published" figures are placeholders, not quotes.

use sha2::{Digest, Sha256};

use crate::model::*;

/// SplitMix64 (Steele, Lea & Flood 2014): a small, well-mixed generator for demo data.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

fn demo_hash(s: &str) -> String {
    Sha256::digest(format!("nullprint demo: {s}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn zscore(v: &[f64]) -> Vec<f64> {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    v.iter().map(|x| (x - mean) / sd).collect()
}

fn interp(z: &[f64], onto: usize) -> (Vec<f64>, Vec<Option<f64>>) {
    let m = z.len() - 1;
    (0..onto)
        .map(|i| {
            let x = i as f64 / (onto - 1) as f64;
            let pos = x * m as f64;
            let k = (pos.floor() as usize).min(m - 1);
            let f = pos - k as f64;
            (x, Some(z[k] * (1.0 - f) + z[k + 1] * f))
        })
        .unzip()
}

/// Wilson score interval (95%) for k successes in n trials.
fn wilson(k: u64, n: u64) -> Option<Interval> {
    if n == 0 {
        return None;
    }
    let (k, n, z) = (k as f64, n as f64, 1.959_963_984_540_054);
    let p = k / n;
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z / (1.0 + z * z / n) * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    Some(Interval {
        lo: (centre - half).max(0.0),
        hi: (centre + half).min(1.0),
        level: 0.95,
        method: "Wilson".into(),
    })
}

fn null_result(
    name: &str,
    preserves: &str,
    destroys: &str,
    tested: Mark,
    t: f64,
    draws: &[f64],
    seed: Option<u64>,
) -> NullResult {
    let n = draws.len() as u64;
    let exceed = draws.iter().filter(|&&d| d >= t).count() as u64;
    let p = (exceed + 1) as f64 / (n + 1) as f64;
    NullResult {
        name: name.into(),
        preserves: preserves.into(),
        destroys: destroys.into(),
        tested: Some(tested),
        n,
        seed,
        exceed,
        p: Some(p),
        log10_p: Some(p.log10()),
        interval: wilson(exceed + 1, n + 1),
        mc_error: Some((p * (1.0 - p) / (n + 1) as f64).sqrt()),
        sampling: None,
        discarded: 0,
        notes: Vec::new(),
    }
}

fn rate_row(label: &str, threshold: f64, source: Option<&str>, scores: &[f64]) -> RateRow {
    let n = scores.len() as u64;
    let count = scores.iter().filter(|&&s| s >= threshold).count() as u64;
    RateRow {
        label: label.into(),
        threshold,
        threshold_source: source.map(String::from),
        count,
        n,
        rate: (n > 0).then(|| count as f64 / n as f64),
        interval: wilson(count, n),
    }
}

/// A complete report of synthetic data exercising every section and figure kind.
pub fn demo_report() -> Report {
    let mut rng = Rng(20250704);
    let cite = Citation {
        source: "Placeholder citation for the demo: not a real source, not a real figure".into(),
        url: None,
    };
    let claim_value = 0.93;
    let rule_value = 0.7;
    let published = vec![
        Published {
            id: "rule_of_thumb".into(),
            label: "Demo rule of thumb: independent models score below this".into(),
            short_label: "demo rule".into(),
            value: Some(rule_value),
            text: Some("below about 0.7 (demo)".into()),
            citation: cite.clone(),
        },
        Published {
            id: "counter_example".into(),
            label: "Demo counter-example: two unrelated models scoring high".into(),
            short_label: "demo counter-example".into(),
            value: Some(0.9),
            text: None,
            citation: Citation {
                source: "Second placeholder citation for the demo".into(),
                url: Some("https://example.org/demo".into()),
            },
        },
    ];

    // Fingerprint curves: a shared decaying depth trend plus model-specific wiggles.
    let curve = |rng: &mut Rng, layers: usize, scale: f64, phase: f64| -> Vec<f64> {
        (0..layers)
            .map(|i| {
                let x = i as f64 / (layers - 1) as f64;
                scale * (0.06 - 0.025 * x + 0.006 * (6.0 * x + phase).sin())
                    + 0.0015 * scale * rng.normal()
            })
            .collect()
    };
    let roles: Vec<RoleCurves> = ["q", "k", "v", "o"]
        .iter()
        .enumerate()
        .map(|(r, role)| {
            let a = curve(&mut rng, 48, 1.0 + 0.1 * r as f64, 0.0);
            let c = curve(&mut rng, 24, 1.2, 0.8);
            let mk = |name: &str, raw: &[f64], interpolated| {
                let z = zscore(raw);
                let l = raw.len();
                ModelCurve {
                    model: name.into(),
                    layers: l as u32,
                    points: raw
                        .iter()
                        .zip(&z)
                        .enumerate()
                        .map(|(i, (&r, &z))| CurvePoint {
                            layer: i as u32,
                            x: i as f64 / (l - 1) as f64,
                            raw: Some(r),
                            z: Some(z),
                        })
                        .collect(),
                    interpolated,
                }
            };
            let (x, zi) = interp(&zscore(&c), 48);
            RoleCurves {
                role: (*role).into(),
                models: vec![
                    mk("demo-model-A", &a, None),
                    mk(
                        "demo-model-C",
                        &c,
                        Some(Interpolated {
                            onto_layers: 48,
                            x,
                            z: zi,
                        }),
                    ),
                ],
            }
        })
        .collect();

    // Null draws.
    let clip = |x: f64| x.clamp(-1.0, 1.0);
    let panel_scores: Vec<f64> = (0..45).map(|_| clip(0.45 + 0.22 * rng.normal())).collect();
    let shift: Vec<f64> = (0..999).map(|_| clip(0.35 + 0.2 * rng.normal())).collect();
    let shuffle: Vec<f64> = (0..999)
        .map(|_| clip(0.02 * rng.normal() + 0.12 * rng.normal()))
        .collect();
    let observed = 0.81;
    let observed_mark = Mark::Computed {
        label: "observed A vs C".into(),
        value: observed,
    };
    let claim_mark = Mark::Published { id: "claim".into() };
    let nulls = vec![
        null_result(
            "panel of unrelated models",
            "real depth trends and architectures of models that share no weights",
            "shared lineage (pairs with different root base models only)",
            claim_mark.clone(),
            claim_value,
            &panel_scores,
            None,
        ),
        null_result(
            "circular depth shift",
            "each curve's shape and autocorrelation",
            "the alignment of layers between the two models",
            observed_mark.clone(),
            observed,
            &shift,
            Some(7),
        ),
        null_result(
            "layer shuffle",
            "the set of per-layer values",
            "the depth trend itself (anti-conservative for trending curves)",
            observed_mark.clone(),
            observed,
            &shuffle,
            Some(8),
        ),
    ];

    // Rates.
    let fpr = RateTable {
        name: "false-positive-rates".into(),
        title: "False-positive rate among unrelated panel pairs".into(),
        population: "45 demo pairs of unrelated models".into(),
        measure: "demo mean attention-std correlation".into(),
        counts: None,
        rows: vec![
            rate_row("claimed value", claim_value, Some("claim"), &panel_scores),
            rate_row(
                "rule of thumb",
                rule_value,
                Some("rule_of_thumb"),
                &panel_scores,
            ),
        ],
    };
    let controls: Vec<(&str, Vec<f64>)> = vec![
        (
            "fine-tune noise",
            (0..20).map(|_| clip(0.97 + 0.02 * rng.normal())).collect(),
        ),
        (
            "upcycled MoE",
            (0..20).map(|_| clip(0.9 + 0.05 * rng.normal())).collect(),
        ),
        (
            "inserted layers",
            (0..20).map(|_| clip(0.75 + 0.1 * rng.normal())).collect(),
        ),
    ];
    let power = RateTable {
        name: "power".into(),
        title: "Detection rate on positive controls".into(),
        population: "20 demo derivations per control".into(),
        measure: "demo mean attention-std correlation".into(),
        counts: Some(crate::model::COUNTS_P_AT_OR_BELOW_LEVEL.into()),
        rows: controls
            .iter()
            .map(|(l, s)| rate_row(l, rule_value, Some("rule_of_thumb"), s))
            .collect(),
    };
    let fpr_series = FprSeries {
        label: "unrelated panel pairs (demo)".into(),
        points: (0..=40)
            .map(|i| {
                let t = -0.2 + 1.2 * f64::from(i) / 40.0;
                let r = rate_row("", t, None, &panel_scores);
                FprPoint {
                    threshold: t,
                    rate: r.rate.unwrap_or(0.0),
                    lo: r.interval.as_ref().map(|iv| iv.lo),
                    hi: r.interval.as_ref().map(|iv| iv.hi),
                }
            })
            .collect(),
    };

    // ROC of three measures: positives = controls, negatives = panel pairs.
    let positives: Vec<f64> = controls
        .iter()
        .flat_map(|(_, s)| s.iter().copied())
        .collect();
    let roc_curve = |measure: &str, shift: f64, rng: &mut Rng| {
        let pos: Vec<f64> = positives
            .iter()
            .map(|p| p - shift + 0.05 * rng.normal())
            .collect();
        let neg: Vec<f64> = panel_scores
            .iter()
            .map(|p| p + 0.05 * rng.normal())
            .collect();
        let mut ts: Vec<f64> = pos.iter().chain(&neg).copied().collect();
        ts.sort_by(|a, b| b.total_cmp(a));
        let mut points = vec![RocPoint { fpr: 0.0, tpr: 0.0 }];
        for t in ts {
            let tpr = pos.iter().filter(|&&p| p >= t).count() as f64 / pos.len() as f64;
            let fpr = neg.iter().filter(|&&p| p >= t).count() as f64 / neg.len() as f64;
            points.push(RocPoint { fpr, tpr });
        }
        let pairs = (pos.len() * neg.len()) as f64;
        let wins: f64 = pos
            .iter()
            .map(|p| {
                neg.iter()
                    .map(|n| {
                        if p > n {
                            1.0
                        } else if p == n {
                            0.5
                        } else {
                            0.0
                        }
                    })
                    .sum::<f64>()
            })
            .sum();
        RocCurve {
            measure: measure.into(),
            points,
            auc: Some(wins / pairs),
        }
    };
    let roc = RocFigure {
        positives: "60 demo positive controls".into(),
        negatives: "45 demo unrelated pairs".into(),
        curves: vec![
            roc_curve("Pearson (the published method)", 0.0, &mut rng),
            roc_curve("Spearman", 0.1, &mut rng),
            roc_curve("first differences", 0.3, &mut rng),
        ],
    };

    // Heatmap.
    let fams = [("alpha", 3), ("beta", 3), ("gamma", 2), ("delta", 2)];
    let mut models = Vec::new();
    for (f, k) in fams {
        for i in 0..k {
            models.push(HeatModel {
                name: format!("demo-{f}-{}", i + 1),
                family: f.into(),
            });
        }
    }
    // Interleave the input order so the renderer's family grouping is visible.
    models.swap(1, 6);
    let n = models.len();
    let mut values = vec![vec![None; n]; n];
    let mut related = Vec::new();
    for i in 0..n {
        values[i][i] = Some(1.0);
        for j in i + 1..n {
            let same = models[i].family == models[j].family;
            let v = clip(if same {
                0.93 + 0.04 * rng.normal()
            } else {
                0.45 + 0.2 * rng.normal()
            });
            values[i][j] = Some(v);
            values[j][i] = Some(v);
            if same {
                related.push((models[i].name.clone(), models[j].name.clone()));
            }
        }
    }
    values[2][5] = None;
    values[5][2] = None;

    // Specification curve.
    let mut spec = Vec::new();
    for (ri, roles) in ["q,k,v,o", "q,k", "v,o", "o"].iter().enumerate() {
        for (si, scaling) in ["z-scored", "raw"].iter().enumerate() {
            for (ai, align) in ["interpolate", "truncate"].iter().enumerate() {
                for (mi, measure) in ["Pearson", "Spearman", "detrended", "first differences"]
                    .iter()
                    .enumerate()
                {
                    let score = 0.82
                        - 0.05 * ri as f64
                        - 0.03 * si as f64
                        - 0.04 * ai as f64
                        - 0.15 * mi as f64
                        + 0.03 * rng.normal();
                    spec.push(SpecRow {
                        choices: vec![
                            Choice {
                                dimension: "roles".into(),
                                option: (*roles).into(),
                            },
                            Choice {
                                dimension: "scaling".into(),
                                option: (*scaling).into(),
                            },
                            Choice {
                                dimension: "depth alignment".into(),
                                option: (*align).into(),
                            },
                            Choice {
                                dimension: "measure".into(),
                                option: (*measure).into(),
                            },
                        ],
                        score: Some(clip(score)),
                        headline: ri == 0 && si == 0 && ai == 0 && mi == 0,
                    });
                }
            }
        }
    }

    let panel: Vec<PanelModel> = [
        ("demo-alpha-1", "alpha", "safetensors", 12),
        ("demo-alpha-2", "alpha", "gguf", 12),
        ("demo-beta-1", "beta", "safetensors", 24),
        ("demo-gamma-1", "gamma", "onnx", 6),
        ("demo-delta-1", "delta", "pytorch", 32),
    ]
    .iter()
    .map(|&(m, f, fmt, l)| PanelModel {
        model: m.into(),
        family: f.into(),
        root: format!("{f}-base"),
        format: fmt.into(),
        layers: Some(l),
        source: "synthetic (demo)".into(),
        sha256: demo_hash(m),
    })
    .collect();

    let uniform: Vec<f64> = (0..500).map(|_| rng.uniform()).collect();
    let anti: Vec<f64> = (0..500).map(|_| rng.uniform().powi(3)).collect();

    let verdict = Verdict {
        answer: "DEMO: cannot tell, from synthetic data.".into(),
        findings: Vec::new(),
        figure: None,
        claimed: "DEMO: a correlation of 0.93 between two models' attention-std curves was presented as evidence of shared lineage.".into(),
        nulls_say: format!(
                "DEMO: {} of {} synthetic unrelated pairs score at or above the claimed value (panel null p = {}); the circular-shift null gives p = {} for the observed pair. These sentences are generated from the demo's own synthetic numbers.",
                nulls[0].exceed,
                nulls[0].n,
                crate::fmt::p_value(nulls[0].p, nulls[0].log10_p),
                crate::fmt::p_value(nulls[1].p, nulls[1].log10_p),
            ),
        cannot_say: "DEMO: the synthetic data say nothing about any real model; a high score is compatible with shared lineage and with shared architecture and training recipe alike.".into(),
    };
    Report {
        schema_version: SCHEMA_VERSION,
        title: "DEMO: synthetic fingerprint-lineage report (not a result)".into(),
        banner: Some("DEMO DATA: every number in this report is synthetic, drawn from a seeded generator in nullprint-report; it says nothing about any real model, and its \"published\" figures are placeholders, not quotes.".into()),
        provenance: Provenance {
            tool: "nullprint".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            command_line: ["cargo", "run", "-p", "nullprint-report", "--example", "demo", "--", "target/report-demo", "--force"]
                .map(String::from)
                .to_vec(),
            reproduce: vec!["just report-demo".into()],
            seeds: vec![Seed { label: "demo generator".into(), value: 20250704 }],
            inputs: vec![InputFile { path: "(none: synthetic data)".into(), sha256: demo_hash("inputs"), bytes: None, description: "demo placeholder hash".into() }],
            environment: vec![KeyValue { key: "data".into(), value: "synthetic".into() }],
            timestamp: None,
        },
        claim: Claim {
            text: "DEMO claim: demo-model-A and demo-model-B share lineage because their per-layer attention-std fingerprints correlate at r = 0.93.".into(),
            statistic: Published {
                id: "claim".into(),
                label: "demo-model-A vs demo-model-B, mean attention-std correlation".into(),
                short_label: "claimed r".into(),
                value: Some(claim_value),
                text: None,
                citation: cite.clone(),
            },
        },
        verdict,
        published,
        computed: Computed {
            nulls,
            false_positive_rates: vec![fpr],
            power: vec![power],
            specification_curve: spec,
            panel,
        },
        figures: vec![
            Figure {
                name: "curves".into(),
                title: "Per-role attention-std curves (demo)".into(),
                caption: "Synthetic curves of a 48-layer and a 24-layer model.".into(),
                kind: FigureKind::FingerprintCurves(CurvesFigure { raw_label: "weight std (weight units)".into(), roles }),
            },
            Figure {
                name: "nulls".into(),
                title: "Null distributions of the similarity (demo)".into(),
                caption: "Synthetic null draws.".into(),
                kind: FigureKind::NullDistributions(NullFigure {
                    x_label: "mean correlation r (unitless)".into(),
                    panels: vec![
                        NullPanel { null: "panel of unrelated models".into(), samples: panel_scores.clone(), marks: vec![Mark::Published { id: "rule_of_thumb".into() }] },
                        NullPanel { null: "circular depth shift".into(), samples: shift, marks: vec![claim_mark.clone()] },
                        NullPanel { null: "layer shuffle".into(), samples: shuffle, marks: vec![] },
                    ],
                }),
            },
            Figure {
                name: "heatmap".into(),
                title: "Pairwise similarity of the demo panel".into(),
                caption: "Synthetic similarities.".into(),
                kind: FigureKind::Heatmap(HeatmapFigure { value_label: "mean correlation r".into(), models, values, related, range: Some((-1.0, 1.0)) }),
            },
            Figure {
                name: "roc".into(),
                title: "Telling related from unrelated pairs (demo ROC)".into(),
                caption: "Synthetic scores.".into(),
                kind: FigureKind::Roc(roc),
            },
            Figure {
                name: "fpr".into(),
                title: "False-positive rate against threshold (demo)".into(),
                caption: "Synthetic unrelated pairs.".into(),
                kind: FigureKind::FprThreshold(FprFigure {
                    x_label: "threshold on mean correlation r".into(),
                    series: vec![fpr_series],
                    marks: vec![Mark::Published { id: "rule_of_thumb".into() }, claim_mark.clone()],
                    log_rate: false,
                }),
            },
            Figure {
                name: "qq".into(),
                title: "Calibration of p-values under the null (demo)".into(),
                caption: "Synthetic p-values.".into(),
                kind: FigureKind::PValueQq(QqFigure {
                    series: vec![
                        QqSeries { label: "calibrated null".into(), p_values: uniform },
                        QqSeries { label: "anti-conservative null".into(), p_values: anti },
                    ],
                }),
            },
            Figure {
                name: "specification-curve".into(),
                title: "How the score depends on analysis choices (demo)".into(),
                caption: "Synthetic scores of 64 specifications.".into(),
                kind: FigureKind::SpecificationCurve(SpecFigure {
                    y_label: "similarity score".into(),
                    marks: vec![claim_mark, Mark::Published { id: "rule_of_thumb".into() }],
                }),
            },
        ],
        tables: vec![Table {
            name: "depths".into(),
            title: "Depths of the compared demo models".into(),
            caption: "A generic table added by the caller.".into(),
            headers: vec!["model".into(), "layers".into(), "hidden size".into()],
            rows: vec![
                vec![Cell::Text("demo-model-A".into()), Cell::Number(48.0), Cell::Number(5120.0)],
                vec![Cell::Text("demo-model-C".into()), Cell::Number(24.0), Cell::Missing],
            ],
        }],
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn demo_is_valid_and_deterministic() {
        let a = super::demo_report();
        a.validate().unwrap();
        assert_eq!(a, super::demo_report());
    }
}

//! Render a small report built in code into a temporary directory and check what a reviewer
//! relies on: every file is there, HTML and SVG are well-formed and self-contained, JSON and CSV
//! load back with the same numbers, every figure has its data, published figures are marked,
//! undefined values never print as NaN, output is deterministic and existing reports are not
//! overwritten by accident.

mod wellformed;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use report::*;
use sha2::{Digest, Sha256};

const HOSTILE: &str = "<script>alert('x')</script> & | *star* _under_ [link](x)";

fn hash(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn cite(source: &str, url: Option<&str>) -> Citation {
    Citation {
        source: source.into(),
        url: url.map(String::from),
    }
}

fn iv(lo: f64, hi: f64) -> Option<Interval> {
    Some(Interval {
        lo,
        hi,
        level: 0.95,
        method: "Clopper-Pearson".into(),
    })
}

fn curve(layers: u32, slope: f64) -> Vec<CurvePoint> {
    (0..layers)
        .map(|i| {
            let x = f64::from(i) / f64::from(layers - 1);
            let raw = 0.05 - slope * x + 0.002 * (7.0 * x).sin();
            CurvePoint {
                layer: i,
                x,
                raw: Some(raw),
                z: Some((0.5 - x) * 3.0),
            }
        })
        .collect()
}

/// A small report exercising every section, figure kind, undefined value and escaping path.
fn small_report() -> Report {
    let claim = Published {
        id: "claim".into(),
        label: "Model P vs model Q, mean attention-std correlation".into(),
        short_label: "claimed r".into(),
        value: Some(0.927),
        text: None,
        citation: cite("Test source one", Some("https://example.org/one")),
    };
    let mut curves_c = curve(24, 0.02);
    curves_c[5].raw = None;
    curves_c[5].z = None;
    let interp_x: Vec<f64> = (0..48).map(|i| f64::from(i) / 47.0).collect();
    let interp_z: Vec<Option<f64>> = interp_x.iter().map(|x| Some((0.5 - x) * 2.9)).collect();
    Report {
        schema_version: SCHEMA_VERSION,
        title: format!("Test report {HOSTILE}"),
        banner: Some(format!("Test banner {HOSTILE}")),
        provenance: Provenance {
            tool: "nullprint".into(),
            version: "0.1.0-test".into(),
            command_line: vec![
                "nullprint".into(),
                "report".into(),
                "--name".into(),
                "it's a test".into(),
            ],
            reproduce: vec!["just reproduce test".into(), format!("echo '{HOSTILE}'")],
            seeds: vec![Seed {
                label: "shift null".into(),
                value: u64::MAX,
            }],
            inputs: vec![InputFile {
                path: "baselines/a.json".into(),
                sha256: hash("a"),
                bytes: Some(12345),
                description: format!("fingerprint {HOSTILE}"),
            }],
            environment: vec![KeyValue {
                key: "threads".into(),
                value: "2".into(),
            }],
            timestamp: Some("2025-07-04T12:00:00Z".into()),
        },
        claim: Claim {
            text: format!("Model P derives from model Q. {HOSTILE}"),
            statistic: claim,
        },
        verdict: Verdict {
            answer: String::new(),
            findings: Vec::new(),
            figure: None,
            claimed: "A correlation of 0.927 was read as lineage.".into(),
            nulls_say: format!("Unrelated pairs reach it often. {HOSTILE}"),
            cannot_say: "Whether P was trained from Q.".into(),
        },
        published: vec![Published {
            id: "rule".into(),
            label: "Independent models stay below".into(),
            short_label: "rule of thumb".into(),
            value: Some(0.7),
            text: Some("below about 0.7".into()),
            citation: cite("Test source two", Some("javascript:alert(1)")),
        }],
        computed: Computed {
            nulls: vec![
                NullResult {
                    name: "panel".into(),
                    preserves: "real depth trends".into(),
                    destroys: "lineage".into(),
                    tested: Some(Mark::Published { id: "claim".into() }),
                    n: 8,
                    seed: None,
                    exceed: 1,
                    p: Some(2.0 / 9.0),
                    log10_p: Some((2.0f64 / 9.0).log10()),
                    interval: iv(0.028, 0.6),
                    mc_error: None,
                    sampling: None,
                    discarded: 0,
                    notes: Vec::new(),
                },
                NullResult {
                    name: "circular shift".into(),
                    preserves: "autocorrelation | shape".into(),
                    destroys: "alignment".into(),
                    tested: Some(Mark::Computed {
                        label: "observed A vs B".into(),
                        value: 0.8123456789,
                    }),
                    n: 999,
                    seed: Some(u64::MAX),
                    exceed: 0,
                    p: Some(0.0),
                    log10_p: Some(-400.25),
                    interval: iv(0.0, 0.003),
                    mc_error: Some(1e-5),
                    sampling: None,
                    discarded: 0,
                    notes: Vec::new(),
                },
                NullResult {
                    name: "empty".into(),
                    preserves: "nothing".into(),
                    destroys: "nothing".into(),
                    tested: None,
                    n: 0,
                    seed: Some(3),
                    exceed: 0,
                    p: None,
                    log10_p: None,
                    interval: None,
                    mc_error: None,
                    sampling: None,
                    discarded: 0,
                    notes: Vec::new(),
                },
            ],
            false_positive_rates: vec![RateTable {
                name: "fpr".into(),
                title: "False-positive rate".into(),
                population: "8 unrelated pairs".into(),
                measure: "mean correlation".into(),
                counts: None,
                rows: vec![
                    RateRow {
                        label: "claim".into(),
                        threshold: 0.927,
                        threshold_source: Some("claim".into()),
                        count: 1,
                        n: 8,
                        rate: Some(0.125),
                        interval: iv(0.003, 0.53),
                    },
                    RateRow {
                        label: "rule".into(),
                        threshold: 0.7,
                        threshold_source: Some("rule".into()),
                        count: 3,
                        n: 8,
                        rate: Some(0.375),
                        interval: iv(0.085, 0.755),
                    },
                    RateRow {
                        label: "no pairs".into(),
                        threshold: 0.5,
                        threshold_source: None,
                        count: 0,
                        n: 0,
                        rate: None,
                        interval: None,
                    },
                ],
            }],
            power: vec![RateTable {
                name: "power".into(),
                title: "Power".into(),
                population: "controls".into(),
                measure: "mean correlation".into(),
                counts: Some(
                    "a test whose p-value is at or below the threshold (the level α)".into(),
                ),
                rows: vec![RateRow {
                    label: "noise".into(),
                    threshold: 0.7,
                    threshold_source: None,
                    count: 10,
                    n: 10,
                    rate: Some(1.0),
                    interval: iv(0.69, 1.0),
                }],
            }],
            specification_curve: (0..4)
                .map(|i| SpecRow {
                    choices: vec![
                        Choice {
                            dimension: "measure".into(),
                            option: ["pearson", "spearman"][i % 2].into(),
                        },
                        Choice {
                            dimension: "scaling".into(),
                            option: ["z", "raw"][i / 2].into(),
                        },
                    ],
                    score: if i == 3 {
                        None
                    } else {
                        Some(0.9 - 0.1 * i as f64)
                    },
                    headline: i == 0,
                })
                .collect(),
            panel: vec![
                PanelModel {
                    model: "gpt2".into(),
                    family: "gpt".into(),
                    root: "gpt2".into(),
                    format: "safetensors".into(),
                    layers: Some(12),
                    source: "pypi:example".into(),
                    sha256: hash("gpt2"),
                },
                PanelModel {
                    model: "bert|base".into(),
                    family: "bert".into(),
                    root: "bert".into(),
                    format: "onnx".into(),
                    layers: None,
                    source: "pypi:example".into(),
                    sha256: hash("bert"),
                },
            ],
        },
        figures: vec![
            Figure {
                name: "curves".into(),
                title: "Curves".into(),
                caption: "Two models.".into(),
                kind: FigureKind::FingerprintCurves(CurvesFigure {
                    raw_label: "weight std (weight units)".into(),
                    roles: vec![RoleCurves {
                        role: "q".into(),
                        models: vec![
                            ModelCurve {
                                model: "A".into(),
                                layers: 48,
                                points: curve(48, 0.03),
                                interpolated: None,
                            },
                            ModelCurve {
                                model: "C".into(),
                                layers: 24,
                                points: curves_c,
                                interpolated: Some(Interpolated {
                                    onto_layers: 48,
                                    x: interp_x,
                                    z: interp_z,
                                }),
                            },
                        ],
                    }],
                }),
            },
            Figure {
                name: "nulls".into(),
                title: "Nulls".into(),
                caption: String::new(),
                kind: FigureKind::NullDistributions(NullFigure {
                    x_label: "r (unitless)".into(),
                    panels: vec![
                        NullPanel {
                            null: "panel".into(),
                            samples: vec![0.1, 0.2, 0.25, 0.3, 0.5, 0.6, 0.65, 0.95],
                            marks: vec![Mark::Published { id: "rule".into() }],
                        },
                        NullPanel {
                            null: "circular shift".into(),
                            samples: vec![0.3; 5],
                            marks: vec![],
                        },
                        NullPanel {
                            null: "empty".into(),
                            samples: vec![],
                            marks: vec![],
                        },
                    ],
                }),
            },
            Figure {
                name: "heatmap".into(),
                title: "Heatmap".into(),
                caption: "Three models.".into(),
                kind: FigureKind::Heatmap(HeatmapFigure {
                    value_label: "r".into(),
                    models: vec![
                        HeatModel {
                            name: "b1".into(),
                            family: "b".into(),
                        },
                        HeatModel {
                            name: "a1".into(),
                            family: "a".into(),
                        },
                        HeatModel {
                            name: "b2".into(),
                            family: "b".into(),
                        },
                    ],
                    values: vec![
                        vec![Some(1.0), Some(0.3), Some(0.9)],
                        vec![Some(0.3), Some(1.0), None],
                        vec![Some(0.9), None, Some(1.0)],
                    ],
                    related: vec![("b1".into(), "b2".into())],
                    range: None,
                }),
            },
            Figure {
                name: "roc".into(),
                title: "ROC".into(),
                caption: String::new(),
                kind: FigureKind::Roc(RocFigure {
                    positives: "10 controls".into(),
                    negatives: "8 pairs".into(),
                    curves: vec![
                        RocCurve {
                            measure: "pearson".into(),
                            points: vec![
                                RocPoint { fpr: 0.0, tpr: 0.0 },
                                RocPoint {
                                    fpr: 0.125,
                                    tpr: 0.9,
                                },
                                RocPoint { fpr: 1.0, tpr: 1.0 },
                            ],
                            auc: Some(0.93125),
                        },
                        RocCurve {
                            measure: "none".into(),
                            points: vec![],
                            auc: None,
                        },
                    ],
                }),
            },
            Figure {
                name: "fpr-threshold".into(),
                title: "FPR".into(),
                caption: String::new(),
                kind: FigureKind::FprThreshold(FprFigure {
                    x_label: "threshold (r)".into(),
                    series: vec![FprSeries {
                        label: "unrelated".into(),
                        points: vec![
                            FprPoint {
                                threshold: 0.5,
                                rate: 0.5,
                                lo: Some(0.2),
                                hi: Some(0.8),
                            },
                            FprPoint {
                                threshold: 0.7,
                                rate: 0.375,
                                lo: Some(0.1),
                                hi: Some(0.7),
                            },
                            FprPoint {
                                threshold: 0.927,
                                rate: 0.125,
                                lo: None,
                                hi: None,
                            },
                        ],
                    }],
                    marks: vec![
                        Mark::Published { id: "rule".into() },
                        Mark::Published { id: "claim".into() },
                    ],
                    log_rate: false,
                }),
            },
            Figure {
                name: "qq".into(),
                title: "QQ".into(),
                caption: String::new(),
                kind: FigureKind::PValueQq(QqFigure {
                    series: vec![QqSeries {
                        label: "shift".into(),
                        p_values: vec![0.5, 0.01, 0.9, 0.2, 1.0, 0.0],
                    }],
                }),
            },
            Figure {
                name: "lines".into(),
                title: "Lines".into(),
                caption: String::new(),
                kind: FigureKind::Lines(LinesFigure {
                    x_label: "continued training (share of the base's steps)".into(),
                    y_label: "score".into(),
                    y_range: None,
                    series: vec![LineSeries {
                        label: "plain".into(),
                        points: vec![
                            LinePoint {
                                x: 0.0,
                                y: 1.0,
                                lo: None,
                                hi: None,
                            },
                            LinePoint {
                                x: 0.5,
                                y: 0.95,
                                lo: Some(0.9),
                                hi: Some(0.97),
                            },
                            LinePoint {
                                x: 2.0,
                                y: 0.75,
                                lo: Some(0.7),
                                hi: Some(0.8),
                            },
                        ],
                    }],
                    marks: vec![Mark::Published { id: "claim".into() }],
                }),
            },
            Figure {
                name: "spec".into(),
                title: "Spec".into(),
                caption: String::new(),
                kind: FigureKind::SpecificationCurve(SpecFigure {
                    y_label: "score".into(),
                    marks: vec![Mark::Published { id: "claim".into() }],
                }),
            },
        ],
        tables: vec![Table {
            name: "extra".into(),
            title: "Extra".into(),
            caption: format!("caption {HOSTILE}"),
            headers: vec!["what".into(), "value".into()],
            rows: vec![
                vec![Cell::Text("a | b\nc".into()), Cell::Number(0.1 + 0.2)],
                vec![Cell::Text("missing".into()), Cell::Missing],
            ],
        }],
    }
}

fn read(dir: &Path, rel: &str) -> String {
    fs::read_to_string(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn csv_rows(dir: &Path, rel: &str) -> Vec<BTreeMap<String, String>> {
    let mut r = csv::Reader::from_path(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            headers
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn f(s: &str) -> f64 {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s:?}"))
}

fn opt(s: &str) -> Option<f64> {
    (!s.is_empty()).then(|| f(s))
}

fn written() -> (tempfile::TempDir, Report) {
    let dir = tempfile::tempdir().unwrap();
    let report = small_report();
    write_report(dir.path(), &report, false).unwrap();
    (dir, report)
}

#[test]
fn every_file_is_written_and_listed_in_the_manifest() {
    let (dir, report) = written();
    let d = dir.path();
    for f in [
        "index.html",
        "report.md",
        "report.json",
        "files.sha256",
        "published.csv",
        "nulls.csv",
        "fpr.csv",
        "power.csv",
        "specification_curve.csv",
        "panel.csv",
        "inputs.csv",
        "extra.csv",
    ] {
        assert!(d.join(f).is_file(), "{f} missing");
    }
    for fig in &report.figures {
        for ext in ["svg", "csv"] {
            let p = d.join(format!("figures/{}.{ext}", fig.name));
            assert!(p.is_file(), "{} missing", p.display());
            assert!(fs::metadata(&p).unwrap().len() > 0, "{} empty", p.display());
        }
    }
    let manifest = read(d, MANIFEST);
    let mut listed = 0;
    for line in manifest.lines() {
        let (h, path) = line.split_once("  ").unwrap();
        assert_eq!(
            h,
            hex(Sha256::digest(fs::read(d.join(path)).unwrap())),
            "{path}"
        );
        listed += 1;
    }
    let on_disk = walk(d).len();
    assert_eq!(listed + 1, on_disk, "manifest lists every file but itself");
    // No temporary files left behind.
    assert!(walk(d).iter().all(|p| !p.contains(".tmp-")));
}

fn hex(b: impl AsRef<[u8]>) -> String {
    b.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn walk(d: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

#[test]
fn html_is_well_formed_self_contained_and_escaped() {
    let (dir, report) = written();
    let html = read(dir.path(), "index.html");
    let n = wellformed::check(&html, true).unwrap_or_else(|e| panic!("index.html: {e}"));
    assert!(n > 200, "only {n} elements");
    assert!(html.starts_with("<!DOCTYPE html>"));
    // Self-contained: no scripts, no external resources.
    for bad in ["<script", "src=", "<link", "@import", "url(", "<iframe"] {
        assert!(!html.contains(bad), "index.html contains {bad:?}");
    }
    // The hostile text is shown escaped, and javascript: never becomes a link.
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    assert!(!html.contains("href=\"javascript:"));
    // Verdict first: its three parts come before the claim section and the figures.
    let verdict = html.find("What was claimed").unwrap();
    assert!(verdict < html.find("What the nulls say").unwrap());
    assert!(html.find("What this test cannot say").unwrap() < html.find("id=\"claim\"").unwrap());
    assert!(html.find("id=\"claim\"").unwrap() < html.find("id=\"figures\"").unwrap());
    assert!(html.find("id=\"figures\"").unwrap() < html.find("id=\"reproduce\"").unwrap());
    // Every figure is inlined once, with its caption.
    assert_eq!(html.matches("<svg ").count(), report.figures.len());
    for (i, fig) in report.figures.iter().enumerate() {
        assert!(html.contains(&format!(
            "<strong>Figure {}. {}.</strong>",
            i + 1,
            fig.title
        )));
    }
    // Reproducibility block: commands, seed, hash, digest.
    assert!(html.contains("just reproduce test"));
    assert!(html.contains(&u64::MAX.to_string()));
    assert!(html.contains(&hash("a")));
    assert!(html.contains(&report.content_digest().unwrap()));
    assert!(
        html.contains("&#39;it&#39;\\&#39;&#39;s a test&#39;"),
        "command line is shell-quoted"
    );
}

#[test]
fn every_svg_is_well_formed_and_sized_for_the_page() {
    let (dir, report) = written();
    for fig in &report.figures {
        let svg = read(dir.path(), &format!("figures/{}.svg", fig.name));
        wellformed::check(&svg, false).unwrap_or_else(|e| panic!("{}.svg: {e}", fig.name));
        assert!(svg.starts_with("<svg width=\"720\""), "{}.svg", fig.name);
        assert!(svg.contains(&fig.title), "{}.svg lacks its title", fig.name);
    }
}

#[test]
fn json_loads_back_to_the_same_report() {
    let (dir, report) = written();
    let text = read(dir.path(), "report.json");
    let back = Report::from_json(&text).unwrap();
    assert_eq!(back, report);
    assert_eq!(back.provenance.seeds[0].value, u64::MAX);
    // A report of another schema version is refused.
    let other = text.replacen(
        &format!("\"schema_version\": {SCHEMA_VERSION}"),
        "\"schema_version\": 999",
        1,
    );
    assert!(matches!(
        Report::from_json(&other),
        Err(Error::SchemaVersion { found: 999, .. })
    ));
}

#[test]
fn csv_tables_load_back_with_the_same_numbers() {
    let (dir, report) = written();
    let d = dir.path();
    let nulls = csv_rows(d, "nulls.csv");
    assert_eq!(nulls.len(), report.computed.nulls.len());
    for (row, n) in nulls.iter().zip(&report.computed.nulls) {
        assert_eq!(row["name"], n.name);
        assert_eq!(row["n"].parse::<u64>().unwrap(), n.n);
        assert_eq!(row["exceed"].parse::<u64>().unwrap(), n.exceed);
        assert_eq!(opt(&row["p"]), n.p);
        assert_eq!(opt(&row["log10_p"]), n.log10_p);
        assert_eq!(opt(&row["mc_error"]), n.mc_error);
        assert_eq!(opt(&row["interval_lo"]), n.interval.as_ref().map(|i| i.lo));
        assert_eq!(row["seed"].parse::<u64>().ok(), n.seed);
    }
    assert_eq!(nulls[0]["tested_source"], "published:claim");
    assert_eq!(f(&nulls[0]["tested_value"]), 0.927);
    assert_eq!(f(&nulls[1]["tested_value"]), 0.8123456789);

    let fpr = csv_rows(d, "fpr.csv");
    for (row, r) in fpr
        .iter()
        .zip(&report.computed.false_positive_rates[0].rows)
    {
        assert_eq!(f(&row["threshold"]), r.threshold);
        assert_eq!(opt(&row["rate"]), r.rate);
        assert_eq!(row["count"].parse::<u64>().unwrap(), r.count);
        assert_eq!(row["n"].parse::<u64>().unwrap(), r.n);
    }

    let spec = csv_rows(d, "specification_curve.csv");
    for (row, s) in spec.iter().zip(&report.computed.specification_curve) {
        assert_eq!(opt(&row["score"]), s.score);
        assert_eq!(row["measure"], s.choices[0].option);
    }

    let extra = csv_rows(d, "extra.csv");
    assert_eq!(extra[0]["what"], "a | b\nc");
    assert_eq!(f(&extra[0]["value"]), 0.1 + 0.2);
    assert_eq!(extra[1]["value"], "");

    let published = csv_rows(d, "published.csv");
    assert_eq!(published[0]["role"], "claim");
    assert_eq!(f(&published[0]["value"]), 0.927);
}

#[test]
fn every_figure_has_its_data() {
    let (dir, report) = written();
    let d = dir.path();
    for fig in &report.figures {
        let rows = csv_rows(d, &format!("figures/{}.csv", fig.name));
        match &fig.kind {
            FigureKind::NullDistributions(nf) => {
                for p in &nf.panels {
                    let draws: Vec<f64> = rows
                        .iter()
                        .filter(|r| r["null"] == p.null && r["kind"] == "draw")
                        .map(|r| f(&r["value"]))
                        .collect();
                    assert_eq!(draws, p.samples, "draws of {}", p.null);
                }
                let tested = rows
                    .iter()
                    .find(|r| r["null"] == "panel" && r["kind"] == "tested")
                    .unwrap();
                assert_eq!(
                    (tested["source"].as_str(), f(&tested["value"])),
                    ("published", 0.927)
                );
            }
            FigureKind::FingerprintCurves(cf) => {
                let m = &cf.roles[0].models[1];
                let native: Vec<Option<f64>> = rows
                    .iter()
                    .filter(|r| r["model"] == m.model && r["series"] == "native")
                    .map(|r| opt(&r["raw"]))
                    .collect();
                assert_eq!(native, m.points.iter().map(|p| p.raw).collect::<Vec<_>>());
                let interp = rows
                    .iter()
                    .filter(|r| r["series"].starts_with("interpolated"))
                    .count();
                assert_eq!(interp, 48);
            }
            FigureKind::Heatmap(hf) => {
                assert_eq!(rows.len(), hf.models.len() * hf.models.len());
                // Grouped by family: a1 (family a) first.
                assert_eq!(rows[0]["row_model"], "a1");
                let related: Vec<_> = rows.iter().filter(|r| r["related"] == "true").collect();
                assert_eq!(related.len(), 2);
                let b1b2 = rows
                    .iter()
                    .find(|r| r["row_model"] == "b1" && r["col_model"] == "b2")
                    .unwrap();
                assert_eq!(f(&b1b2["value"]), 0.9);
                let undefined = rows
                    .iter()
                    .find(|r| r["row_model"] == "a1" && r["col_model"] == "b2")
                    .unwrap();
                assert_eq!(undefined["value"], "");
            }
            FigureKind::Roc(rf) => {
                let n: usize = rf.curves.iter().map(|c| c.points.len()).sum();
                assert_eq!(rows.len(), n);
                assert_eq!(f(&rows[0]["auc"]), 0.93125);
            }
            FigureKind::FprThreshold(ff) => {
                let points: Vec<f64> = rows
                    .iter()
                    .filter(|r| r["kind"] == "point")
                    .map(|r| f(&r["rate"]))
                    .collect();
                assert_eq!(
                    points,
                    ff.series[0]
                        .points
                        .iter()
                        .map(|p| p.rate)
                        .collect::<Vec<_>>()
                );
                let marks: Vec<f64> = rows
                    .iter()
                    .filter(|r| r["kind"] == "published_mark")
                    .map(|r| f(&r["threshold"]))
                    .collect();
                assert_eq!(marks, vec![0.7, 0.927]);
            }
            FigureKind::PValueQq(qf) => {
                let mut sorted = qf.series[0].p_values.clone();
                sorted.sort_by(f64::total_cmp);
                assert_eq!(
                    rows.iter().map(|r| f(&r["p_value"])).collect::<Vec<_>>(),
                    sorted
                );
                assert_eq!(f(&rows[0]["expected"]), 1.0 / 7.0);
            }
            FigureKind::Lines(lf) => {
                let ys: Vec<f64> = rows
                    .iter()
                    .filter(|r| r["kind"] == "point")
                    .map(|r| f(&r["y"]))
                    .collect();
                assert_eq!(
                    ys,
                    lf.series[0].points.iter().map(|p| p.y).collect::<Vec<_>>()
                );
                let hi: Vec<&str> = rows.iter().map(|r| r["hi"].as_str()).collect();
                assert_eq!(hi, ["", "0.97", "0.8", ""]);
                let marks: Vec<f64> = rows
                    .iter()
                    .filter(|r| r["kind"] == "published_mark")
                    .map(|r| f(&r["y"]))
                    .collect();
                assert_eq!(marks, vec![0.927]);
            }
            FigureKind::SpecificationCurve(_) => {
                assert_eq!(rows.len(), report.computed.specification_curve.len());
                assert_eq!(rows[0]["rank"], "1");
                assert_eq!(f(&rows[0]["score"]), 0.9 - 0.1 * 2.0);
                assert_eq!(rows[3]["score"], "", "undefined score last, unranked");
            }
        }
    }
}

#[test]
fn published_figures_are_marked_as_such() {
    let (dir, _) = written();
    let html = read(dir.path(), "index.html");
    // The claim, its threshold row and the rule appear only inside "pub" spans with citations.
    assert!(html.contains("<span class=\"pub\" title=\"published figure, quoted from source [1]; not computed by nullprint\">0.927<sup><a href=\"#cite-1\">[1]</a></sup></span>"));
    assert!(html.contains(">below about 0.7<sup><a href=\"#cite-2\">[2]</a></sup></span>"));
    assert!(html.contains("<span class=\"badge\">published</span>"));
    assert!(html.contains("<li id=\"cite-1\">Test source one <a href=\"https://example.org/one\">"));
    // The computed tested value is not marked published.
    let at = html.find("observed A vs B: ").unwrap();
    assert!(html[at..at + 80].contains("<span class=\"num\">0.8123</span>"));

    let md = read(dir.path(), "report.md");
    assert!(md.contains("*0.927* (published[^1])"));
    assert!(md.contains("[^1]: Test source one <https://example.org/one>"));
    assert!(md.contains("[^2]: Test source two javascript:alert(1)"));

    // In figures, published marks are labelled with their citation number.
    let svg = read(dir.path(), "figures/fpr-threshold.svg");
    assert!(svg.contains("claimed r 0.927 [1]"));
    assert!(svg.contains("rule of thumb 0.7 [2]"));
}

#[test]
fn undefined_values_never_print_as_nan() {
    let (dir, _) = written();
    for path in walk(dir.path()) {
        let text = fs::read_to_string(&path).unwrap();
        for bad in ["NaN", "inf", "Infinity"] {
            assert!(!text.contains(bad), "{path} contains {bad}");
        }
    }
    let html = read(dir.path(), "index.html");
    // p underflowed to 0 is printed from its log10; p undefined prints as a dash.
    assert!(
        html.contains("5.6×10⁻⁴⁰¹ (log₁₀ p = −400.25)"),
        "tiny p from log10"
    );
    assert!(html.contains("<td class=\"n\"><span class=\"num\">—</span></td>"));
}

#[test]
fn non_finite_numbers_are_rejected_with_their_field() {
    let mut r = small_report();
    r.computed.nulls[0].p = Some(f64::NAN);
    assert!(
        matches!(r.validate(), Err(Error::NonFinite { ref field, .. }) if field == "computed.nulls[0].p")
    );
    let mut r = small_report();
    if let FigureKind::NullDistributions(nf) = &mut r.figures[1].kind {
        nf.panels[0].samples[2] = f64::INFINITY;
    }
    let err = r.validate().unwrap_err();
    assert!(
        matches!(err, Error::NonFinite { ref field, .. } if field == "figures[1].panels[0].samples[2]"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    assert!(write_report(dir.path(), &r, false).is_err());
    assert!(
        walk(dir.path()).is_empty(),
        "an invalid report writes nothing"
    );
    let mut r = small_report();
    let (i, lines) = r
        .figures
        .iter_mut()
        .enumerate()
        .find_map(|(i, f)| match &mut f.kind {
            FigureKind::Lines(l) => Some((i, l)),
            _ => None,
        })
        .unwrap();
    lines.series[0].points[1].hi = Some(f64::NAN);
    let err = r.validate().unwrap_err();
    assert!(
        matches!(err, Error::NonFinite { ref field, .. } if *field == format!("figures[{i}].series[0].points[1].hi")),
        "{err}"
    );
}

#[test]
fn validation_rejects_inconsistent_reports() {
    let check = |edit: fn(&mut Report), want: &str| {
        let mut r = small_report();
        edit(&mut r);
        let err = r.validate().expect_err(want).to_string();
        assert!(err.contains(want), "{err:?} does not mention {want:?}");
    };
    check(|r| r.verdict.cannot_say = "  ".into(), "verdict.cannot_say");
    check(
        |r| r.computed.nulls[0].tested = Some(Mark::Published { id: "nope".into() }),
        "\"nope\" refers to no published figure",
    );
    check(
        |r| r.computed.nulls[0].exceed = 9,
        "9 draws exceed but n is 8",
    );
    check(
        |r| r.computed.false_positive_rates[0].rows[0].threshold = 0.93,
        "differs from published \"claim\"",
    );
    check(
        |r| r.tables[0].rows[0].pop().map_or((), drop),
        "tables[0].rows[0]: length 1, expected 2",
    );
    check(
        |r| r.figures[0].name = "Bad Name".into(),
        "not a valid file-name stem",
    );
    check(
        |r| r.tables[0].name = "nulls".into(),
        "name \"nulls\" is used twice",
    );
    check(
        |r| r.computed.panel[0].sha256 = "xyz".into(),
        "computed.panel[0].sha256",
    );
    check(
        |r| r.computed.specification_curve[1].headline = true,
        "more than one headline",
    );
    check(
        |r| r.published[0].id = "claim".into(),
        "name \"claim\" is used twice",
    );
    check(
        |r| {
            if let FigureKind::Heatmap(h) = &mut r.figures[2].kind {
                h.related.push(("a1".into(), "zz".into()));
            }
        },
        "\"zz\" refers to no heatmap model",
    );
    check(
        |r| {
            if let FigureKind::PValueQq(q) = &mut r.figures[5].kind {
                q.series[0].p_values.push(1.5);
            }
        },
        "1.5 is outside [0, 1]",
    );
    check(
        |r| r.verdict.figure = Some(r.figures[1].name.clone()),
        "must name the first figure",
    );
}

#[test]
fn the_headline_figure_is_shown_with_the_verdict_once() {
    let mut r = small_report();
    r.verdict.answer = "Cannot tell: a test answer.".into();
    let first = r.figures[0].name.clone();
    r.verdict.figure = Some(first.clone());
    let files = render(&r).unwrap();
    let text = |name: &str| {
        String::from_utf8(
            files
                .iter()
                .find(|f| f.path == name)
                .unwrap_or_else(|| panic!("{name} not written"))
                .bytes
                .clone(),
        )
        .unwrap()
    };
    let md = text("report.md");
    let image = "![Figure 1: ";
    assert_eq!(md.matches(image).count(), 1, "{md}");
    let at = md.find(image).unwrap();
    assert!(at < md.find("## The claim against the nulls").unwrap());
    assert!(md.contains("![Figure 2: "), "the others keep their numbers");
    let html = text("index.html");
    let id = format!("<figure id=\"fig-{first}\">");
    assert_eq!(html.matches(&id).count(), 1);
    assert!(html.find(&id).unwrap() < html.find("<section id=\"claim\">").unwrap());
}

#[test]
fn a_log_rate_axis_draws_the_tail_and_says_so() {
    let mut r = small_report();
    let i = r
        .figures
        .iter()
        .position(|f| matches!(f.kind, FigureKind::FprThreshold(_)))
        .unwrap();
    if let FigureKind::FprThreshold(f) = &mut r.figures[i].kind {
        f.log_rate = true;
    }
    let files = render(&r).unwrap();
    let md = String::from_utf8(
        files
            .iter()
            .find(|f| f.path == "report.md")
            .unwrap()
            .bytes
            .clone(),
    )
    .unwrap();
    assert!(md.contains("The rate axis is logarithmic"), "{md}");
    let svg = files
        .iter()
        .find(|f| f.path == format!("figures/{}.svg", r.figures[i].name))
        .unwrap();
    assert!(std::str::from_utf8(&svg.bytes).unwrap().contains("100%"));
}

#[test]
fn rendering_is_deterministic_and_the_digest_ignores_the_timestamp() {
    let r = small_report();
    let a = render(&r).unwrap();
    let b = render(&r.clone()).unwrap();
    assert_eq!(a, b);
    let mut later = r.clone();
    later.provenance.timestamp = Some("2030-01-01T00:00:00Z".into());
    assert_eq!(later.content_digest().unwrap(), r.content_digest().unwrap());
    let mut changed = r.clone();
    changed.computed.nulls[0].p = Some(0.25);
    assert_ne!(
        changed.content_digest().unwrap(),
        r.content_digest().unwrap()
    );
    // The demo report renders too, and identically twice.
    let demo = demo::demo_report();
    assert_eq!(render(&demo).unwrap(), render(&demo).unwrap());
}

#[test]
fn existing_reports_are_not_overwritten_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = small_report();
    write_report(dir.path(), &r, false).unwrap();
    let before = read(dir.path(), "index.html");
    let err = write_report(dir.path(), &r, false).unwrap_err();
    assert!(matches!(err, Error::Exists { .. }), "{err}");
    assert_eq!(read(dir.path(), "index.html"), before);

    // With force, files are replaced and a figure no longer in the report is removed.
    r.figures.retain(|f| f.name != "qq");
    r.title = "Second version".into();
    write_report(dir.path(), &r, true).unwrap();
    assert!(read(dir.path(), "index.html").contains("Second version"));
    assert!(!dir.path().join("figures/qq.svg").exists());
    assert!(!dir.path().join("figures/qq.csv").exists());
    // A file the report never wrote is left alone.
    fs::write(dir.path().join("screenshot.png"), b"x").unwrap();
    write_report(dir.path(), &r, true).unwrap();
    assert!(dir.path().join("screenshot.png").exists());
}

#[test]
fn markdown_escapes_text_and_keeps_tables_intact() {
    let (dir, report) = written();
    let md = read(dir.path(), "report.md");
    assert!(md.contains(
        "&lt;script&gt;alert('x')&lt;/script&gt; &amp; \\| \\*star\\* \\_under\\_ \\[link\\](x)"
    ));
    // Raw HTML never appears outside fenced code (where the reproduce commands are literal).
    let outside_code: String = md.split("```").step_by(2).collect();
    assert!(!outside_code.contains("<script"));
    assert!(md.contains("```sh\njust reproduce test\necho '<script>"));
    for fig in &report.figures {
        assert!(md.contains(&format!("(figures/{}.svg)", fig.name)));
        assert!(md.contains(&format!("(figures/{}.csv)", fig.name)));
    }
    // Every table row has as many cells as its header (escaped pipes do not split cells).
    let cells = |l: &str| l.replace("\\|", "").matches('|').count();
    let mut lines = md.lines().peekable();
    while let Some(l) = lines.next() {
        if l.starts_with("| ") {
            let n = cells(l);
            while let Some(next) = lines.peek() {
                if !next.starts_with('|') {
                    break;
                }
                assert_eq!(cells(next), n, "ragged markdown table row: {next}");
                lines.next();
            }
        }
    }
}

#[test]
fn degenerate_and_large_figure_data_render() {
    let mut r = small_report();
    for fig in &mut r.figures {
        match &mut fig.kind {
            FigureKind::FingerprintCurves(c) => {
                c.roles[0].models[0].points.truncate(1);
                c.roles[0].models[1]
                    .points
                    .iter_mut()
                    .for_each(|p| p.raw = None);
                c.roles.push(RoleCurves {
                    role: "k".into(),
                    models: vec![],
                });
            }
            FigureKind::NullDistributions(n) => n.panels.truncate(1),
            FigureKind::Heatmap(h) => {
                let n = MAX_HEATMAP_MODELS;
                h.models = (0..n)
                    .map(|i| HeatModel {
                        name: format!("model-{i}"),
                        family: format!("f{}", i % 7),
                    })
                    .collect();
                h.values = (0..n)
                    .map(|i| {
                        (0..n)
                            .map(|j| (i != j).then(|| ((i * j) % 10) as f64 / 10.0))
                            .collect()
                    })
                    .collect();
                h.related = vec![("model-1".into(), "model-8".into())];
            }
            FigureKind::Roc(roc) => roc.curves.clear(),
            FigureKind::FprThreshold(f) => {
                f.series.clear();
                f.marks.clear();
            }
            FigureKind::PValueQq(q) => q.series.push(QqSeries {
                label: "empty".into(),
                p_values: vec![],
            }),
            FigureKind::SpecificationCurve(_) => {}
            FigureKind::Lines(l) => {
                l.series.clear();
                l.marks.clear();
            }
        }
    }
    r.computed.specification_curve.truncate(1);
    let files = render(&r).unwrap();
    for f in files.iter().filter(|f| f.path.ends_with(".svg")) {
        wellformed::check(std::str::from_utf8(&f.bytes).unwrap(), false)
            .unwrap_or_else(|e| panic!("{}: {e}", f.path));
    }
    let html = files.iter().find(|f| f.path == "index.html").unwrap();
    let html = std::str::from_utf8(&html.bytes).unwrap();
    wellformed::check(html, true).unwrap();
    assert!(html.contains("Model names are left out at this size"));
    // One more model than the cap is refused rather than drawn illegibly.
    if let FigureKind::Heatmap(h) = &mut r.figures[2].kind {
        h.models.push(HeatModel {
            name: "extra".into(),
            family: "f".into(),
        });
    }
    assert!(matches!(
        r.validate(),
        Err(Error::TooLarge { found: 81, .. })
    ));
}

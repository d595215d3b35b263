//! Print every figure of the published-panel study: exclusions, rule counts, the depth and
//! kind strata at the claim's score, the depth model at 48 layers, the rounding shift on the
//! own panel, and the surrogate sizes on the six-layer published panel.
//!
//! `cargo run -p nullprint-experiment --example published_figures -- [DATA_DIR] [--no-surrogates]`
//! from the workspace root (DATA_DIR defaults to ../shared/published-data/graphnet).

use std::path::{Path, PathBuf};

use experiment::published::{self, StudyOptions};
use null::curves::CurveOptions;
use null::depth::DEPTH_THRESHOLDS;
use null::measure::Measure;
use null::nulls::panel::ObservedContext;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .unwrap_or_else(|| published::data_dir(Path::new("../shared/published-data/graphnet")));
    let surrogates = !args.iter().any(|a| a == "--no-surrogates");
    let panel = null::published_panel::read_graphnet_dir(&dir, &published::ROLES)?;
    let (own_curves, _kinds, own_table) = published::own_panel(
        Path::new("baselines/index.toml"),
        &CurveOptions::default(),
        Measure::HonestAgi,
    )?;
    let study = published::study(
        &panel,
        Some((&own_table, &own_curves)),
        &StudyOptions {
            observed: 0.927,
            context: ObservedContext {
                layers: Some((48, 48)),
                families: None,
                kinds: Some(("decoder".into(), "decoder".into())),
            },
            thresholds: DEPTH_THRESHOLDS.to_vec(),
            predict_depth: 48,
            seed: 20250704,
            calibrate_surrogates: surrogates,
        },
    )?;
    println!("source: {}", study.provenance.describe());
    println!(
        "rows {}; curves by depth {:?}",
        study.rows, study.curves_by_depth
    );
    println!("curves by kind {:?}", study.curves_by_kind);
    let e = &study.excluded;
    println!(
        "excluded: {} init-like, {} missing roles, {} layer gaps, {} too short, {} by heuristic",
        e.init_like.len(),
        e.missing_roles,
        e.layer_gaps,
        e.too_short,
        e.heuristic_not_real
    );
    for r in &study.rule_counts {
        println!("rules {:?} x {:?} -> {}: {}", r.a, r.b, r.relation, r.pairs);
    }
    let p = &study.panel;
    println!(
        "panel: n {} exceed {} p {:.3e} median {:.3} p95 {:.3}; excluded related {} unknown {}",
        p.null.n,
        p.null.exceed,
        p.null.p,
        p.summary.median,
        p.summary.p95,
        p.excluded.related,
        p.excluded.unknown
    );
    for r in &p.fpr {
        println!(
            "  fpr >= {}: {}/{} = {:.4} [{:.4}, {:.4}]",
            r.threshold, r.count, r.n, r.rate, r.interval.0, r.interval.1
        );
    }
    for s in &p.strata {
        let r = &s.result;
        println!(
            "  stratum {:<40} n {:>8} exceed {:>6} p {:.3e} [{:.4}, {:.4}]",
            s.name, r.n, r.exceed, r.p, r.interval.0, r.interval.1
        );
    }
    println!("  matched stratum: {:?}", p.matched_stratum);
    let m = &study.depth_model;
    println!("depth model ({}), seed {}", m.label, m.seed);
    for pt in &m.points {
        println!(
            "  point {:<60} depth {:>3} pairs {:>7} models {:>4} exceed {:?} median {:.3} p95 {:.3}",
            pt.source.chars().take(60).collect::<String>(),
            pt.depth,
            pt.pairs,
            pt.models,
            pt.exceed,
            pt.median,
            pt.p95
        );
    }
    for r in &m.rates {
        println!(
            "  rate >= {} at {}: {:.4} [{:.4}, {:.4}] (b0 {:.3}, b1 {:.3}); LODO MAE {:.4}, {}/{} covered",
            r.threshold,
            r.depth,
            r.rate,
            r.interval.0,
            r.interval.1,
            r.fit.b0,
            r.fit.b1,
            r.lodo.mean_abs_error,
            r.lodo.covered,
            r.lodo.folds.len()
        );
        for f in &r.lodo.folds {
            println!(
                "    lodo depth {:>3}: observed {:.4} predicted {:.4} [{:.4}, {:.4}]",
                f.depth, f.observed, f.predicted, f.interval.0, f.interval.1
            );
        }
    }
    for s in &m.scores {
        println!(
            "  {} at {}: {:.3} [{:.3}, {:.3}]; LODO MAE {:.3}, {}/{} covered",
            s.statistic,
            s.depth,
            s.value,
            s.interval.0,
            s.interval.1,
            s.lodo.mean_abs_error,
            s.lodo.covered,
            s.lodo.folds.len()
        );
    }
    let shift = study.rounding_shift.as_ref().ok_or("no rounding shift")?;
    println!(
        "rounding to {} decimals on the own panel: {} pairs, |shift| median {:.2e} p95 {:.2e} max {:.2e} ({} vs {}), {} failed",
        shift.decimals,
        shift.pairs,
        shift.median_abs,
        shift.p95_abs,
        shift.max_abs,
        shift.max_pair.0,
        shift.max_pair.1,
        shift.failed
    );
    for c in &study.surrogate_sizes {
        let at = |a: f64| {
            c.rejection_at(a)
                .map(|r| format!("{:.4} [{:.4}, {:.4}]", r.rate, r.interval.0, r.interval.1))
                .unwrap_or_default()
        };
        println!(
            "surrogate {:<12} n {} failed {}: size@0.01 {} size@0.05 {} (seed {:?}; {})",
            c.null,
            c.n,
            c.failed,
            at(0.01),
            at(0.05),
            c.seed,
            c.name
        );
    }
    Ok(())
}

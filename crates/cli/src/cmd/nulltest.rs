//! `nullprint null --observed X (--panel DIR | --matrix FILE.csv)`: the p-value of a published
//! number when only the number is public.

use std::io::Write;

use anyhow::{bail, Result};
use null::labels::Labels;
use null::measure::Measure;
use null::nulls::panel::{self, PanelOptions};
use null::nulls::published::SimilarityMatrix;
use null::table::PairTable;
use serde_json::json;

use super::common::{curve_options, load_panel};
use crate::args::{NullArgs, TextOrJson};

pub fn run(a: NullArgs) -> Result<()> {
    let table = match (&a.panel, &a.matrix) {
        (Some(dir), None) => {
            let opts = curve_options(&a.curve.roles, a.curve.ddof, &a.curve.stack)?;
            let (curves, labels) = load_panel(dir, a.labels.as_deref(), &opts)?;
            panel_sampling_note(dir, &opts)?;
            let m: Measure = a.curve.measure.parse()?;
            PairTable::from_curves(&curves, &labels, m)?
        }
        (None, Some(csv)) => {
            let matrix = SimilarityMatrix::from_path(csv)?;
            let labels = match &a.labels {
                Some(p) => {
                    let l = Labels::from_path(p)?;
                    l.check_models(matrix.ids().iter().map(String::as_str))?;
                    l
                }
                None => bail!("--matrix needs --labels FILE.csv (model,root or a,b,label) to know which pairs are unrelated"),
            };
            PairTable::from_matrix(&matrix, &labels)?
        }
        _ => bail!("give exactly one of --panel DIR or --matrix FILE.csv"),
    };
    let opts = PanelOptions {
        thresholds: a.threshold.clone(),
        ..Default::default()
    };
    let rep = panel::test(&table, a.observed, &opts)?;
    let (related, unrelated, unknown) = table.counts();
    let n = &rep.null;
    let doc = json!({
        "observed": a.observed,
        "source": rep.source,
        "null": n.name,
        "preserves": n.preserves,
        "n": n.n,
        "exceed": n.exceed,
        "p": n.p,
        "log10_p": n.log10_p,
        "interval": [n.interval.0, n.interval.1],
        "mc_error": n.mc_error,
        "excluded": {"related": rep.excluded.related, "unknown": rep.excluded.unknown, "failed": rep.excluded.failed},
        "pairs": {"related": related, "unrelated": unrelated, "unknown": unknown},
        "summary": rep.summary,
        "false_positive_rate": rep.fpr.iter().map(|r| json!({
            "threshold": r.threshold, "count": r.count, "n": r.n, "rate": r.rate, "interval": [r.interval.0, r.interval.1],
        })).collect::<Vec<_>>(),
        "family_block": rep.family_block.as_ref().map(|f| json!({"n": f.n, "exceed": f.exceed, "p": f.p, "log10_p": f.log10_p, "interval": [f.interval.0, f.interval.1]})),
        "strata": rep.strata.iter().map(|s| json!({"name": s.name, "n": s.result.n, "exceed": s.result.exceed, "p": s.result.p})).collect::<Vec<_>>(),
        "notes": rep.notes.iter().chain(n.notes.iter()).collect::<Vec<_>>(),
    });
    let mut out = std::io::stdout().lock();
    match a.format {
        TextOrJson::Json => writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?,
        TextOrJson::Text => {
            writeln!(
                out,
                "observed {} against {} unrelated pairs of {}",
                a.observed, n.n, rep.source
            )?;
            writeln!(out, "  at or above: {}   p = (1 + {}) / (1 + {}) = {:.4e} (log10 {:.3}), 95% CI of the rate {:.4}-{:.4}", n.exceed, n.exceed, n.n, n.p, n.log10_p, n.interval.0, n.interval.1)?;
            writeln!(
                out,
                "  excluded: {} related, {} unknown, {} failed pairs",
                rep.excluded.related, rep.excluded.unknown, rep.excluded.failed
            )?;
            writeln!(
                out,
                "  unrelated pairs: median {:.4}, 95th percentile {:.4}, max {:.4} ({} vs {})",
                rep.summary.median,
                rep.summary.p95,
                rep.summary.max.score,
                rep.summary.max.a,
                rep.summary.max.b
            )?;
            for r in &rep.fpr {
                writeln!(
                    out,
                    "  false-positive rate at {}: {}/{} = {:.4} (95% CI {:.4}-{:.4})",
                    r.threshold, r.count, r.n, r.rate, r.interval.0, r.interval.1
                )?;
            }
            if let Some(f) = &rep.family_block {
                writeln!(
                    out,
                    "  family-block view (one score per pair of roots): n = {}, p = {:.4}",
                    f.n, f.p
                )?;
            }
            for s in &rep.strata {
                writeln!(
                    out,
                    "  stratum {}: n = {}, p = {:.4}",
                    s.name, s.result.n, s.result.p
                )?;
            }
            for note in rep.notes.iter().chain(n.notes.iter()) {
                writeln!(out, "  note: {note}")?;
            }
        }
    }
    Ok(())
}

/// When panel fingerprints were sampled (`panel build --sample N`), say on stderr how far
/// their sampling error moves their curves against the curves' own spread.
fn panel_sampling_note(dir: &std::path::Path, opts: &null::curves::CurveOptions) -> Result<()> {
    use null::sampling::{panel_member_shift, DRAWS, NEGLIGIBLE_SHARE};
    let mut shifts = Vec::new();
    for entry in std::fs::read_dir(dir)?.flatten() {
        let p = entry.path();
        if p.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let Ok(bytes) = std::fs::read(&p) else {
            continue;
        };
        let Ok(fp) = fingerprint::Fingerprint::from_json_slice(&bytes) else {
            continue;
        };
        if let Some(s) = panel_member_shift(&fp, opts, 0)? {
            shifts.push((s, fp.model.name.clone()));
        }
    }
    if let Some((worst, name)) = shifts.iter().max_by(|a, b| a.0.total_cmp(&b.0)) {
        eprintln!(
            "nullprint: {} sampled panel fingerprints: their curves move by at most {:.1}% of their spread over layers ({name}; {}; negligible below {:.0}%; {DRAWS} Monte-Carlo draws of the sampling error, seed 0)",
            shifts.len(),
            100.0 * worst,
            if *worst < NEGLIGIBLE_SHARE { "negligible" } else { "NOT negligible: the null's spread includes sampling error" },
            100.0 * NEGLIGIBLE_SHARE
        );
    }
    Ok(())
}

//! `nullprint matrix FINGERPRINTS...`: every pairwise similarity with a p-value, BH q-values
//! and Holm-adjusted p-values.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Result};
use null::labels::Labels;
use null::matrix::{report, MatrixNull};
use null::measure::Measure;
use null::table::PairTable;

use super::common::{curve_options, curves_of, load_fingerprint};
use crate::args::{MatrixArgs, TextOrJson};

pub fn run(a: MatrixArgs) -> Result<()> {
    let opts = curve_options(&a.curve.roles, a.curve.ddof, &a.curve.stack)?;
    let mut curves = Vec::new();
    for arg in &a.fingerprints {
        let p = Path::new(arg);
        let files: Vec<String> = if p.is_dir() {
            let mut v: Vec<String> = std::fs::read_dir(p)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|e| e == "json"))
                .map(|f| f.display().to_string())
                .collect();
            v.sort();
            v
        } else {
            vec![arg.clone()]
        };
        for f in files {
            let fp = load_fingerprint(&f)?;
            let id = Path::new(&f)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or(f.clone());
            curves.push(curves_of(&fp, &opts, &id)?);
        }
    }
    if curves.len() < 2 {
        bail!("matrix needs at least two fingerprints");
    }
    let labels = match &a.labels {
        Some(p) => Labels::from_path(p)?,
        None => Labels::singletons(curves.iter().map(|c| c.model.as_str()))?,
    };
    let m: Measure = a.curve.measure.parse()?;
    let table = PairTable::from_curves(&curves, &labels, m)?;
    let rep = report(&table, &MatrixNull::LeaveModelsOut)?;
    let mut out = std::io::stdout().lock();
    match a.format {
        TextOrJson::Json => writeln!(out, "{}", serde_json::to_string_pretty(&rep)?)?,
        TextOrJson::Text => {
            writeln!(
                out,
                "{:<32} {:<32} {:>9} {:>6} {:>10} {:>10} {:>10}",
                "a", "b", "score", "n", "p", "q (BH)", "p (Holm)"
            )?;
            for r in &rep.rows {
                writeln!(
                    out,
                    "{:<32} {:<32} {:>9.4} {:>6} {:>10.4e} {:>10.4e} {:>10.4e}",
                    r.a, r.b, r.score, r.n, r.p, r.q_bh, r.p_holm
                )?;
            }
            writeln!(
                out,
                "null: {} (keeps {}; destroys {})",
                rep.null.name, rep.null.preserves, rep.null.destroys
            )?;
            for n in &rep.notes {
                writeln!(out, "note: {n}")?;
            }
        }
    }
    Ok(())
}

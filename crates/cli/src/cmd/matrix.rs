//! `nullprint matrix FINGERPRINTS...`: every pairwise similarity with a p-value, BH q-values
//! and Holm-adjusted p-values.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Result};
use null::labels::Labels;
use null::matrix::{report, MatrixNull};
use null::measure::Measure;
use null::table::PairTable;

use super::common::{curve_options, curves_of_many, file_id};
use crate::args::{MatrixArgs, TextOrJson};

pub fn run(a: MatrixArgs) -> Result<()> {
    let opts = curve_options(&a.curve.roles, a.curve.ddof, &a.curve.stack)?;
    let mut items = Vec::new();
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
        items.extend(files.into_iter().map(|f| {
            let id = file_id(Path::new(&f));
            (f, id)
        }));
    }
    let curves = curves_of_many(&items, &opts)?;
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
    // Half a million rows for 1,000 models: stream them instead of building one string.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    match a.format {
        TextOrJson::Json => {
            serde_json::to_writer_pretty(&mut out, &rep)?;
            writeln!(out)?;
        }
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
    out.flush()?;
    // The process ends next: freeing a million row strings one by one would only cost time.
    std::mem::forget((rep, table, curves));
    Ok(())
}

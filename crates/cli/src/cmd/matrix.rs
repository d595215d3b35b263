//! `nullprint matrix FINGERPRINTS...`: every pairwise similarity with a p-value, BH q-values
//! and Holm-adjusted p-values.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use null::all_pairs::{report, MatrixNull, MatrixReport};
use null::labels::Labels;
use null::measure::Measure;
use null::table::PairTable;
use rayon::prelude::*;

use super::common::{curve_options, curves_of_many, file_id, refuse_duplicate_weights};
use crate::args::{MatrixArgs, TextOrJson};

pub fn run(a: MatrixArgs) -> Result<()> {
    let opts = curve_options(&a.curve.roles, a.curve.ddof, &a.curve.stack)?;
    let mut items = Vec::new();
    for arg in &a.fingerprints {
        let p = Path::new(arg);
        let files: Vec<String> = if p.is_dir() {
            let mut v: Vec<String> = std::fs::read_dir(p)
                .with_context(|| format!("reading directory {arg}"))?
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
    let (curves, hashes): (Vec<_>, Vec<_>) = curves_of_many(&items, &opts)?.into_iter().unzip();
    refuse_duplicate_weights(&items, &hashes)?;
    if curves.len() < 2 {
        bail!("matrix needs at least two fingerprints");
    }
    let labels = match &a.labels {
        Some(p) => {
            let l = Labels::from_path(p)?;
            l.check_models(curves.iter().map(|c| c.model.as_str()))?;
            l
        }
        None => Labels::singletons(curves.iter().map(|c| c.model.as_str()))?,
    };
    let m: Measure = a.curve.measure.parse()?;
    let table = PairTable::from_curves(&curves, &labels, m)?;
    let rep = report(&table, &MatrixNull::LeaveModelsOut)?;
    // Half a million rows for 1,000 models: stream them instead of building one string, and
    // compact (pretty-printing was a third of the run; `jq .` restores it).
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    match a.format {
        TextOrJson::Json => {
            write_json(&mut out, &rep)?;
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

/// Rows serialized per block in parallel, written in order.
const JSON_BLOCK: usize = 1 << 16;

/// The report as compact JSON, exactly as `serde_json::to_writer` would write it, with the
/// rows (half a million for 1,000 models) serialized in parallel blocks.
fn write_json(out: &mut impl Write, rep: &MatrixReport) -> Result<()> {
    let shell = MatrixReport {
        source: rep.source.clone(),
        measure: rep.measure,
        null: rep.null.clone(),
        rows: Vec::new(),
        failures: rep.failures.clone(),
        notes: rep.notes.clone(),
    };
    let text = serde_json::to_string(&shell)?;
    // A string value cannot contain this unescaped, so the first match is the field itself.
    let (head, tail) = text
        .split_once("\"rows\":[]")
        .ok_or_else(|| anyhow::anyhow!("matrix report has no rows field"))?;
    out.write_all(head.as_bytes())?;
    out.write_all(b"\"rows\":[")?;
    for (bi, block) in rep.rows.chunks(JSON_BLOCK).enumerate() {
        let parts: Vec<Vec<u8>> = block
            .par_chunks(4096)
            .enumerate()
            .map(|(ci, chunk)| {
                let mut buf = Vec::with_capacity(chunk.len() * 224);
                for (j, row) in chunk.iter().enumerate() {
                    if bi + ci + j > 0 {
                        buf.push(b',');
                    }
                    serde_json::to_writer(&mut buf, row)?;
                }
                Ok(buf)
            })
            .collect::<Result<_>>()?;
        for p in parts {
            out.write_all(&p)?;
        }
    }
    out.write_all(b"]")?;
    out.write_all(tail.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use null::all_pairs::MatrixRow;
    use null::labels::Relation;
    use null::nulls::NullInfo;

    use super::*;

    #[test]
    fn parallel_json_is_what_serde_writes() {
        for n in [0usize, 1, 5, 4097, JSON_BLOCK + 3] {
            let rows = (0..n)
                .map(|i| MatrixRow {
                    a: format!("m{i}").into(),
                    b: "x \"rows\":[] y".into(),
                    relation: Relation::Unrelated,
                    score: i as f64 / 7.0,
                    n: 3,
                    exceed: 1,
                    p: 0.5,
                    log10_p: -0.3,
                    q_bh: 1.0,
                    p_holm: 1.0,
                })
                .collect();
            let rep = MatrixReport {
                source: "\"rows\":[]".into(),
                measure: None,
                null: NullInfo {
                    name: "n".into(),
                    preserves: "p".into(),
                    destroys: "d".into(),
                },
                rows,
                failures: Vec::new(),
                notes: vec!["note".into()],
            };
            let mut got = Vec::new();
            write_json(&mut got, &rep).unwrap();
            assert_eq!(
                String::from_utf8(got).unwrap(),
                serde_json::to_string(&rep).unwrap(),
                "{n} rows"
            );
        }
    }
}

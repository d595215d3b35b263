//! `nullprint trace A B [--test csu|align|upcycle|all]`: weight-level tests that decide what a
//! std fingerprint cannot (see the `trace` crate docs for methods and citations).

use std::io::Write;

use ::trace::{align, csu, upcycle, AlignOptions, CsuOptions, ModelWeights, UpcycleOptions};
use anyhow::{bail, Result};
use serde_json::json;

use crate::args::{TextOrJson, TraceArgs, TraceTest};

pub fn run(a: TraceArgs) -> Result<()> {
    let wa = ModelWeights::open(&a.a)?;
    let wb = ModelWeights::open(&a.b)?;
    let tests: Vec<TraceTest> = match a.test {
        TraceTest::All => vec![TraceTest::Csu, TraceTest::Align, TraceTest::Upcycle],
        t => vec![t],
    };
    let csu_opts = CsuOptions {
        max_units: a.max_units,
        seed: a.seed,
        null_draws: a.null_draws,
        ..Default::default()
    };
    let mut results = serde_json::Map::new();
    let mut text = Vec::new();
    for t in tests {
        match t {
            TraceTest::Csu => match csu(&wa, &wb, &csu_opts) {
                Ok(r) => {
                    text.push(r.summary());
                    results.insert("csu".into(), serde_json::to_value(&r)?);
                }
                Err(e) => skip(&mut results, &mut text, "csu", &e.to_string(), a.test)?,
            },
            TraceTest::Align => {
                let mut opts = AlignOptions {
                    seed: a.seed,
                    ..Default::default()
                };
                if let Some(v) = opts.verify.as_mut() {
                    v.seed = a.seed;
                    v.null_draws = a.null_draws;
                }
                match align(&wa, &wb, &opts) {
                    Ok(r) => {
                        text.push(r.summary());
                        results.insert("align".into(), serde_json::to_value(&r)?);
                    }
                    Err(e) => skip(&mut results, &mut text, "align", &e.to_string(), a.test)?,
                }
            }
            TraceTest::Upcycle => {
                let (moe, dense) = match (wa.has_experts(), wb.has_experts()) {
                    (true, false) => (&wa, &wb),
                    (false, true) => (&wb, &wa),
                    _ => {
                        skip(
                            &mut results,
                            &mut text,
                            "upcycle",
                            "needs exactly one MoE model (with experts) and one dense model",
                            a.test,
                        )?;
                        continue;
                    }
                };
                let opts = UpcycleOptions {
                    csu: csu_opts.clone(),
                    ..Default::default()
                };
                match upcycle(moe, dense, &opts) {
                    Ok(r) => {
                        text.push(r.summary());
                        results.insert("upcycle".into(), serde_json::to_value(&r)?);
                    }
                    Err(e) => skip(&mut results, &mut text, "upcycle", &e.to_string(), a.test)?,
                }
            }
            TraceTest::All => unreachable!("expanded above"),
        }
    }
    let mut out = std::io::stdout().lock();
    match a.format {
        TextOrJson::Json => {
            let doc = json!({"a": a.a, "b": a.b, "seed": a.seed, "tests": results});
            writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        }
        TextOrJson::Text => {
            for block in text {
                writeln!(out, "{block}")?;
            }
        }
    }
    Ok(())
}

/// A test that does not apply: an error when it was asked for alone, a note under `all`.
fn skip(
    results: &mut serde_json::Map<String, serde_json::Value>,
    text: &mut Vec<String>,
    name: &str,
    why: &str,
    asked: TraceTest,
) -> Result<()> {
    if asked != TraceTest::All {
        bail!("{name}: {why}");
    }
    text.push(format!("{name}: not applicable: {why}"));
    results.insert(name.into(), json!({"skipped": why}));
    Ok(())
}

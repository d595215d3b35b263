//! `nullprint roles MODEL`: the tensor → role mapping, so a user can check it.

use std::io::Write;

use anyhow::Result;
use fingerprint::{engine, source};

use crate::args::RolesArgs;

pub fn run(a: RolesArgs) -> Result<()> {
    let src = source::resolve(&a.model)?;
    let plan = engine::plan(&src)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "# {} ({}, {} files, architecture {})",
        src.name,
        src.format,
        src.files.len(),
        plan.architecture.as_deref().unwrap_or("unknown")
    )?;
    writeln!(out, "# config: {}", serde_json::to_string(&plan.config)?)?;
    writeln!(
        out,
        "{:<60} {:<14} {:<8} {:<6} {:<16} {:<7} {:>12}",
        "tensor", "dtype", "stack", "layer", "role", "expert", "elements"
    )?;
    let mut unknown = 0usize;
    for t in &plan.tensors {
        for a in &t.assignments {
            let elements: u64 = a.ranges.iter().map(|r| r.end - r.start).sum();
            if matches!(a.key.role, fingerprint::Role::Other(_)) {
                unknown += 1;
            }
            writeln!(
                out,
                "{:<60} {:<14} {:<8} {:<6} {:<16} {:<7} {:>12}",
                t.info.name,
                t.info.dtype.to_string(),
                a.key
                    .stack
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "-".into()),
                a.key
                    .layer
                    .map(|l| l.to_string())
                    .unwrap_or_else(|| "-".into()),
                a.key.role.to_string(),
                a.key
                    .expert
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "-".into()),
                elements
            )?;
        }
    }
    writeln!(
        out,
        "# {} tensors, {} kept under their own names (no role matched)",
        plan.tensors.len(),
        unknown
    )?;
    Ok(())
}

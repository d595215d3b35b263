//! `nullprint compare A B`: the similarity of two fingerprints, tested against chosen nulls.

use std::io::Write;

use anyhow::Result;
use null::measure::{self, Measure, MeasureOptions, Prepared, Scratch};
use null::null::panel::{self, PanelOptions};
use null::null::surrogate::{self, SurrogateKind, SurrogateOptions};
use null::null::NullResult;
use null::rng::child_seed;
use null::table::PairTable;
use serde_json::json;

use super::common::{curve_options, curves_of, load_fingerprint, load_panel};
use crate::args::{CompareArgs, TextOrJson};

pub fn run(a: CompareArgs) -> Result<()> {
    let opts = curve_options(&a.curve.roles, a.curve.ddof, &a.curve.stack)?;
    let fa = load_fingerprint(&a.a)?;
    let fb = load_fingerprint(&a.b)?;
    // Curves are named by the arguments, so every error names the file (or model) it concerns.
    let ca = curves_of(&fa, &opts, &a.a)?;
    let mut cb = curves_of(&fb, &opts, &a.b)?;
    if cb.model == ca.model {
        cb.model.push_str(" (b)");
    }
    let m: Measure = a.curve.measure.parse()?;
    let sim = measure::similarity(&ca, &cb, &MeasureOptions::new(m))?;
    let mut nulls: Vec<NullResult> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    for (i, spec) in a.null.iter().enumerate() {
        if let Some(dir) = spec.strip_prefix("panel:") {
            let (curves, labels) =
                load_panel(std::path::Path::new(dir), a.labels.as_deref(), &opts)?;
            let table = PairTable::from_curves(&curves, &labels, m)?;
            let po = PanelOptions {
                thresholds: a.threshold.clone(),
                exclude: vec![ca.model.clone(), cb.model.clone()],
                ..Default::default()
            };
            let rep = panel::test(&table, sim.score, &po)?;
            notes.extend(rep.notes.iter().cloned());
            nulls.push(rep.null);
            if let Some(fb) = rep.family_block {
                nulls.push(fb);
            }
        } else {
            let kind: SurrogateKind = spec.parse()?;
            let o = SurrogateOptions {
                kind,
                measure: m,
                samples: a.samples,
                seed: child_seed(a.seed, i as u64),
            };
            let pa = Prepared::new(&ca)?;
            let pb = Prepared::new(&cb)?;
            let _ = measure::score(&pa, &pb, m, &mut Scratch::default())?;
            nulls.push(surrogate::test_prepared(&pa, &pb, &o)?);
        }
    }
    let doc = json!({
        "measure": m.name(),
        "a": ca.model,
        "b": cb.model,
        "layers": [sim.layers.0, sim.layers.1],
        "per_role": sim.per_role,
        "score": sim.score,
        "rescaled": sim.rescaled,
        "flags": sim.flags.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
        "nulls": nulls.iter().map(|n| json!({
            "name": n.name, "preserves": n.preserves, "destroys": n.destroys, "n": n.n, "seed": n.seed,
            "exceed": n.exceed, "p": n.p, "log10_p": n.log10_p, "interval": [n.interval.0, n.interval.1],
            "mc_error": n.mc_error, "notes": n.notes,
        })).collect::<Vec<_>>(),
        "notes": notes,
    });
    let mut out = std::io::stdout().lock();
    match a.format {
        TextOrJson::Json => writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?,
        TextOrJson::Text => {
            writeln!(
                out,
                "{} vs {} ({} vs {} layers), measure {}",
                ca.model,
                cb.model,
                sim.layers.0,
                sim.layers.1,
                m.name()
            )?;
            for (role, r) in &sim.per_role {
                writeln!(out, "  {role:<12} r = {r:.6}")?;
            }
            writeln!(
                out,
                "  score        {:.6}   (rescaled (sum r + k)/2k = {:.6})",
                sim.score, sim.rescaled
            )?;
            for f in &sim.flags {
                writeln!(out, "  flag: {f}")?;
            }
            for n in &nulls {
                writeln!(
                    out,
                    "  null {:<22} n = {:<7} p = {:.4e} (log10 {:.2}, 95% CI {:.4}-{:.4}, MC s.e. {:.2e}{})",
                    n.name,
                    n.n,
                    n.p,
                    n.log10_p,
                    n.interval.0,
                    n.interval.1,
                    n.mc_error,
                    n.seed.map(|s| format!(", seed {s}")).unwrap_or_default()
                )?;
                writeln!(
                    out,
                    "       keeps: {}; destroys: {}",
                    n.preserves, n.destroys
                )?;
            }
            for note in notes
                .iter()
                .chain(nulls.iter().flat_map(|n| n.notes.iter()))
            {
                writeln!(out, "  note: {note}")?;
            }
        }
    }
    Ok(())
}

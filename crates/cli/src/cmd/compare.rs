//! `nullprint compare A B`: the similarity of two fingerprints, tested against chosen nulls
//! (`null::compare`), rendered as text or JSON.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Result};
use null::compare::{compare, CompareOptions, Comparison};
use null::measure::MeasureOptions;
use null::nulls::surrogate::SurrogateKind;
use null::table::PairTable;

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
    let measure = a.curve.measure.parse()?;
    let mut surrogates: Vec<SurrogateKind> = Vec::new();
    let mut panel_dir = None;
    for spec in &a.null {
        match spec.strip_prefix("panel:") {
            Some(dir) if panel_dir.is_none() => panel_dir = Some(dir),
            Some(_) => bail!("--null panel:DIR: give one panel"),
            None => surrogates.push(spec.parse()?),
        }
    }
    let table = match panel_dir {
        Some(dir) => {
            let (curves, labels) = load_panel(Path::new(dir), a.labels.as_deref(), &opts)?;
            Some(PairTable::from_curves(&curves, &labels, measure)?)
        }
        None => None,
    };
    let cmp = compare(
        &ca,
        &cb,
        &CompareOptions {
            measure: MeasureOptions::new(measure),
            surrogates,
            samples: a.samples,
            seed: a.seed,
            thresholds: a.threshold.clone(),
        },
        table.as_ref(),
    )?;
    sampling_note(&fa, &fb, &opts, measure, a.seed)?;
    let mut out = std::io::stdout().lock();
    match a.format {
        TextOrJson::Json => writeln!(out, "{}", serde_json::to_string_pretty(&cmp)?)?,
        TextOrJson::Text => write_text(&mut out, &cmp)?,
    }
    Ok(())
}

fn write_text(out: &mut impl Write, c: &Comparison) -> std::io::Result<()> {
    let s = &c.similarity;
    writeln!(
        out,
        "{} vs {} ({} vs {} layers), measure {}",
        s.a,
        s.b,
        s.layers.0,
        s.layers.1,
        s.measure.name()
    )?;
    for (role, r) in &s.per_role {
        writeln!(out, "  {role:<12} r = {r:.6}")?;
    }
    writeln!(
        out,
        "  score        {:.6}   (rescaled (sum r + k)/2k = {:.6})",
        s.score, s.rescaled
    )?;
    for f in &s.flags {
        writeln!(out, "  flag: {f}")?;
    }
    for n in &c.nulls {
        write_null(out, n)?;
    }
    if let Some(p) = &c.panel {
        for n in p
            .family_block
            .iter()
            .chain(p.strata.iter().map(|s| &s.result))
        {
            write_null(out, n)?;
        }
        for note in p.notes.iter().filter(|n| !p.null.notes.contains(n)) {
            writeln!(out, "  note: {note}")?;
        }
    }
    Ok(())
}

fn write_null(out: &mut impl Write, n: &null::NullResult) -> std::io::Result<()> {
    writeln!(
        out,
        "  null {:<22} n = {:<7} p = {} (95% CI {:.4}-{:.4}, MC s.e. {:.2e}{})",
        n.name,
        n.n,
        report::fmt::p_value(Some(n.p), Some(n.log10_p)),
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
    for note in &n.notes {
        writeln!(out, "       note: {note}")?;
    }
    Ok(())
}

/// When either fingerprint was sampled (`--sample N`), say on stderr how far its sampling error
/// moves the curves and the score, and whether that is negligible.
fn sampling_note(
    fa: &fingerprint::Fingerprint,
    fb: &fingerprint::Fingerprint,
    opts: &null::curves::CurveOptions,
    measure: null::measure::Measure,
    seed: u64,
) -> Result<()> {
    use null::sampling::{sampling_effect, NEGLIGIBLE_SHARE};
    if let Some(e) = sampling_effect(fa, fb, opts, &MeasureOptions::new(measure), seed)? {
        eprintln!(
            "nullprint: sampled fingerprints ({}): the curves move by {:.1}% of their spread over layers \
             ({}; negligible below {:.0}%), the score by ±{:.2e} (SD over {} Monte-Carlo draws of the \
             sampling error, seed {})",
            e.sampled.join(", "),
            100.0 * e.curve_share,
            if e.negligible { "negligible" } else { "NOT negligible" },
            100.0 * NEGLIGIBLE_SHARE,
            e.score_se,
            e.draws,
            e.seed
        );
    }
    Ok(())
}

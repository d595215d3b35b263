//! `nullprint compare A B`: the answer (`null::answer`), the similarity of two fingerprints and
//! its tests against the chosen nulls (`null::compare`), rendered as text or JSON.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Result};
use null::compare::{compare, CompareOptions, Comparison, PanelInput};
use null::curves::Curves;
use null::labels::Labels;
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
    let mut panel_arg = a.panel.as_str();
    let mut panel_given = false;
    for spec in &a.null {
        match spec.strip_prefix("panel:") {
            Some(_) if panel_given => bail!("--null panel:DIR: give one panel"),
            Some(dir) => {
                panel_arg = dir;
                panel_given = true;
            }
            None => surrogates.push(spec.parse()?),
        }
    }
    let panel: Option<(Vec<Curves>, Labels, PairTable)> = match panel_arg {
        "none" => None,
        "builtin" if !panel_given => {
            let (curves, labels) = experiment::builtin_panel::load(&opts)?;
            let mut table = PairTable::from_curves(&curves, &labels, measure)?;
            table.source = experiment::builtin_panel::NAME.to_owned();
            Some((curves, labels, table))
        }
        dir => {
            let (curves, labels) = load_panel(Path::new(dir), a.labels.as_deref(), &opts)?;
            let table = PairTable::from_curves(&curves, &labels, measure)?;
            Some((curves, labels, table))
        }
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
            alpha: a.alpha,
        },
        panel.as_ref().map(|(curves, labels, table)| PanelInput {
            curves,
            labels,
            table,
        }),
    )?;
    sampling_note(&fa, &fb, &opts, measure, a.seed)?;
    let mut out = std::io::stdout().lock();
    match a.format {
        TextOrJson::Json => writeln!(out, "{}", serde_json::to_string_pretty(&cmp)?)?,
        TextOrJson::Text => write_text(&mut out, &cmp)?,
    }
    Ok(())
}

/// The answer first (one line, then the number it rests on and why), then the details.
fn write_text(out: &mut impl Write, c: &Comparison) -> std::io::Result<()> {
    let s = &c.similarity;
    let ans = &c.answer;
    writeln!(
        out,
        "{} vs {}: {} (α = {})",
        s.a, s.b, ans.answer, ans.alpha
    )?;
    match (&ans.rests_on, ans.p) {
        (Some(null), Some(p)) => writeln!(
            out,
            "  rests on: {null} p = {}: {}",
            report::fmt::p_value(Some(p), ans.log10_p),
            ans.reason
        )?,
        _ => writeln!(out, "  {}", ans.reason)?,
    }
    if !c.excluded_from_panel.is_empty() {
        writeln!(
            out,
            "  left out of the panel as the compared models themselves: {}",
            c.excluded_from_panel.join(", ")
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{} vs {} layers, measure {}",
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
    // Each note is printed once, at its first null.
    let mut seen: Vec<&str> = Vec::new();
    for n in &c.nulls {
        write_null(out, n, &mut seen)?;
    }
    if let Some(p) = &c.panel {
        for n in p
            .family_block
            .iter()
            .chain(p.strata.iter().map(|s| &s.result))
        {
            write_null(out, n, &mut seen)?;
        }
        for note in &p.notes {
            if !seen.contains(&note.as_str()) {
                seen.push(note);
                writeln!(out, "  note: {note}")?;
            }
        }
    }
    Ok(())
}

fn write_null<'a>(
    out: &mut impl Write,
    n: &'a null::NullResult,
    seen: &mut Vec<&'a str>,
) -> std::io::Result<()> {
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
        if seen.contains(&note.as_str()) {
            continue;
        }
        seen.push(note);
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

//! `nullprint reproduce EXPERIMENT.toml`: replay a published claim against chance and write the
//! report (HTML, Markdown, JSON, CSV, SVG) to `reports/<id>/`. The analysis is
//! `experiment::reproduce`; this command resolves paths, writes the report and prints the headline.

use std::path::PathBuf;

use anyhow::Result;

use crate::args::ReproduceArgs;

pub fn run(a: ReproduceArgs) -> Result<()> {
    // A claim about per-layer vectors (a `[vectors]` section) has its own analysis.
    if experiment::vector_claim::is_vector_experiment(&a.experiment) {
        let done = experiment::vector_claim::reproduce(&a.experiment)?;
        let out = a
            .output
            .clone()
            .unwrap_or_else(|| PathBuf::from("reports").join(&done.id));
        let written = crate::save::write_report(&out, &done.report, a.force)?;
        eprintln!("wrote {} ({} files)", out.display(), written);
        println!("{}", done.headline);
        return Ok(());
    }
    let fingerprint_model = |src: &fingerprint::source::ModelSource,
                             roles: &[fingerprint::Role]| {
        super::fingerprint::fingerprint_cached(src, Some(roles.to_vec()), true, true).map_err(|e| {
            experiment::Error::Stale {
                path: PathBuf::from(&src.spec),
                reason: format!("{e:#}"),
            }
        })
    };
    let done = experiment::reproduce(
        &a.experiment,
        &fingerprint_model,
        &experiment::Options {
            write_published_summary: a.write_published_summary,
        },
    )?;
    let exp = &done.analysis.exp;
    match (&done.analysis.recomputed, &exp.claim.weights_a, &exp.claim.weights_b) {
        (Some(r), _, _) => eprintln!(
            "reproduce: recomputed the claim from the weights: {:.6}",
            r.score
        ),
        (None, Some(wa), Some(wb)) => eprintln!(
            "reproduce: the claimed models ({wa}, {wb}) are not on this machine; citing the published value"
        ),
        _ => {}
    }
    let out = a
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from("reports").join(&exp.experiment.id));
    let written = crate::save::write_report(&out, &done.report, a.force)?;
    eprintln!("wrote {} ({} files)", out.display(), written);
    println!("{}", done.headline);
    Ok(())
}

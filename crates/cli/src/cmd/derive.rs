//! `nullprint derive MODEL --recipe R -o DIR`: write a positive control derived from real
//! weights (the `controls` crate does the work).

use anyhow::{anyhow, Result};
use controls::derive::Options;
use fingerprint::source;

use crate::args::DeriveArgs;

pub fn run(a: DeriveArgs) -> Result<()> {
    let recipe = a.recipe.parse().map_err(|e| anyhow!("--recipe: {e}"))?;
    let dtype = a.dtype.parse().map_err(|e| anyhow!("--dtype: {e}"))?;
    let src = source::resolve(&a.model)?;
    let opts = Options {
        recipe,
        seed: a.seed,
        dtype,
        force: a.force,
    };
    let d = controls::derive(&src, &a.output, &opts).map_err(|e| match e {
        controls::Error::Exists { .. } => anyhow!("{e}; pass --force to replace it"),
        e => e.into(),
    })?;
    let m = &d.manifest;
    eprintln!(
        "wrote {} ({} tensors, {:.1} MB; {} layers from the base's {}; noise std {:.3e} = {} x the base's median attention std {:.3e})",
        d.weights.display(),
        d.tensors,
        d.bytes as f64 / 1e6,
        m.layer_map.len(),
        m.layer_map.iter().max().map_or(0, |l| l + 1),
        m.noise_std,
        m.recipe.rel(),
        m.reference_std
    );
    for (t, why) in &m.skipped {
        eprintln!("left out {t}: {why}");
    }
    Ok(())
}

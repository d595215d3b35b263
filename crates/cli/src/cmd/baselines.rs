//! `nullprint baselines`: recompute the panel's fingerprints from the weights, verifying the
//! weights' SHA-256 against the index, and say which models are missing.

use std::path::PathBuf;

use anyhow::{bail, Result};
use fingerprint::source;

use crate::args::BaselinesArgs;
use crate::output::write_new;
use crate::panel::PanelIndex;

pub fn run(a: BaselinesArgs) -> Result<()> {
    let index = PanelIndex::load(&a.index)?;
    let models = a.models.clone().unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/nullprint-models")
    });
    let (mut written, mut missing, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    for m in &index.model {
        if a.only.as_ref().is_some_and(|only| !only.contains(&m.id)) {
            continue;
        }
        let dir = models.join(&m.weights);
        if !dir.is_dir() {
            eprintln!(
                "missing: {} ({} not found; `just models all` fetches it)",
                m.id,
                dir.display()
            );
            missing.push(m.id.clone());
            continue;
        }
        let result = (|| -> Result<()> {
            let src = source::resolve(dir.to_str().unwrap_or_default())?;
            let mut fp = super::fingerprint::fingerprint_source(&src, None, true)?;
            let got: Vec<&str> = fp
                .model
                .files
                .iter()
                .filter_map(|f| f.sha256.as_deref())
                .collect();
            if !got.contains(&m.sha256.as_str()) {
                bail!(
                    "{}: weights' SHA-256 {:?} differs from the index's {}",
                    m.id,
                    got,
                    m.sha256
                );
            }
            // Provenance that does not depend on this machine's paths.
            fp.model.name = m.id.clone();
            fp.model.source = m.source.clone();
            fp.model.command = [
                "nullprint",
                "baselines",
                "--models",
                "$NULLPRINT_MODELS",
                "--force",
            ]
            .map(String::from)
            .to_vec();
            let out = PanelIndex::fingerprint_path(&a.index, &m.id);
            write_new(&out, fp.to_json().as_bytes(), a.force)?;
            eprintln!(
                "wrote {} ({} tensors, sha256 verified)",
                out.display(),
                fp.tensors.len()
            );
            Ok(())
        })();
        match result {
            Ok(()) => written.push(m.id.clone()),
            Err(e) => {
                eprintln!("failed: {}: {e:#}", m.id);
                failed.push(m.id.clone());
            }
        }
    }
    eprintln!(
        "baselines: {} written, {} missing, {} failed",
        written.len(),
        missing.len(),
        failed.len()
    );
    if !failed.is_empty() {
        bail!("could not fingerprint: {}", failed.join(", "));
    }
    Ok(())
}

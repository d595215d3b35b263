//! `nullprint baselines`: recompute the panel's fingerprints from the weights, verifying the
//! weights' SHA-256 against the index, then build and fingerprint the positive controls
//! (models derived from panel weights), and say which models are missing.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use fingerprint::{source, DerivedFrom};

use crate::args::BaselinesArgs;
use crate::save::write_new;
use experiment::{Control, ControlsIndex};
use experiment::{PanelIndex, PanelModel};

pub fn run(a: BaselinesArgs) -> Result<()> {
    let index = PanelIndex::load(&a.index)?;
    let models = a
        .models
        .clone()
        .unwrap_or_else(fingerprint::source::models_dir);
    let (mut written, mut missing, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    let vectors = a.vectors.unwrap_or_default();
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
            let mut fp = super::fingerprint::fingerprint_source(&src, roles(&a), vectors, true)?;
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
            fp.model.command = baselines_command(&a);
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
    if !a.no_controls && a.controls.is_file() {
        for c in ControlsIndex::load(&a.controls)? {
            if a.only
                .as_ref()
                .is_some_and(|only| !only.contains(&c.id) && !only.contains(&c.base))
            {
                continue;
            }
            let Some(base) = index.model.iter().find(|m| m.id == c.base) else {
                bail!(
                    "{}: control {} derives from {:?}, which is not in {}",
                    a.controls.display(),
                    c.id,
                    c.base,
                    a.index.display()
                );
            };
            let dir = models.join(&base.weights);
            if !dir.is_dir() {
                eprintln!(
                    "missing: {} (its base {} is not in {}; `just models all` fetches it)",
                    c.id,
                    c.base,
                    models.display()
                );
                missing.push(c.id.clone());
                continue;
            }
            match build_control(&a, &c, base, &dir) {
                Ok(()) => written.push(c.id.clone()),
                Err(e) => {
                    eprintln!("failed: {}: {e:#}", c.id);
                    failed.push(c.id.clone());
                }
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

/// Derive one control from its base's weights into a scratch directory, fingerprint it, and
/// write the fingerprint with its derivation record; the scratch copy is deleted.
fn build_control(a: &BaselinesArgs, c: &Control, base: &PanelModel, dir: &Path) -> Result<()> {
    let out = ControlsIndex::fingerprint_path(&a.controls, &c.id);
    if out.exists() && !a.force {
        bail!("{} exists; pass --force to overwrite it", out.display());
    }
    let scratch = match &a.scratch {
        Some(d) => tempfile::Builder::new()
            .prefix("nullprint-control-")
            .tempdir_in(d),
        None => tempfile::Builder::new()
            .prefix("nullprint-control-")
            .tempdir(),
    }
    .context("creating a scratch directory for the derived checkpoint")?;
    let src = source::resolve(dir.to_str().unwrap_or_default())?;
    let opts = controls::Options {
        recipe: c.recipe,
        seed: c.seed,
        dtype: c.dtype,
        force: true,
    };
    let derived = controls::derive(&src, scratch.path(), &opts)?;
    let m = &derived.manifest;
    let base_sha256: Vec<String> = m.base_files.iter().map(|(_, h)| h.clone()).collect();
    if !base_sha256.contains(&base.sha256) {
        bail!(
            "{}: base weights' SHA-256 {:?} differs from the index's {}",
            c.base,
            base_sha256,
            base.sha256
        );
    }
    let dsrc = source::resolve(
        scratch
            .path()
            .to_str()
            .ok_or_else(|| anyhow!("scratch path is not UTF-8"))?,
    )?;
    let vectors = a.vectors.unwrap_or_default();
    let mut fp = super::fingerprint::fingerprint_source(&dsrc, roles(a), vectors, true)?;
    fp.model.name = c.id.clone();
    fp.model.source = format!(
        "derived by nullprint from {} ({}): {}, seed {}, {}",
        base.id,
        base.source,
        c.recipe,
        c.seed,
        c.dtype.safetensors_name()
    );
    fp.model.command = [
        "nullprint",
        "derive",
        &format!("$NULLPRINT_MODELS/{}", base.weights),
        "--recipe",
        &c.recipe.to_string(),
        "--seed",
        &c.seed.to_string(),
        "--dtype",
        &c.dtype.safetensors_name().to_ascii_lowercase(),
        "-o",
        "DIR",
    ]
    .map(String::from)
    .to_vec();
    fp.model.derived = Some(DerivedFrom {
        base: base.id.clone(),
        base_sha256,
        recipe: c.recipe.to_string(),
        seed: c.seed,
        noise_std: m.noise_std,
        layer_map: m.layer_map.clone(),
    });
    write_new(&out, fp.to_json().as_bytes(), a.force)?;
    eprintln!(
        "wrote {} ({} tensors, {:.0} MB derived checkpoint fingerprinted and deleted)",
        out.display(),
        fp.tensors.len(),
        derived.bytes as f64 / 1e6
    );
    Ok(())
}

/// With `--vectors`, only the roles whose vectors are kept; else every tensor.
fn roles(a: &BaselinesArgs) -> Option<Vec<fingerprint::Role>> {
    a.vectors.filter(|v| v.any()).map(|v| v.roles())
}

/// The command recorded in each fingerprint: no path of this machine.
fn baselines_command(a: &BaselinesArgs) -> Vec<String> {
    let mut c: Vec<String> = ["nullprint", "baselines", "--models", "$NULLPRINT_MODELS"]
        .map(String::from)
        .to_vec();
    if let Some(v) = a.vectors.filter(|v| v.any()) {
        c.extend([
            "--index".to_owned(),
            a.index.display().to_string(),
            "--controls".to_owned(),
            a.controls.display().to_string(),
            "--vectors".to_owned(),
            v.to_string(),
        ]);
    }
    c.push("--force".to_owned());
    c
}

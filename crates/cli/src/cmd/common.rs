//! Inputs shared by the statistics commands: fingerprints given as files or models, panels
//! given as directories, curve options.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use fingerprint::{source, Fingerprint};
use null::curves::{CurveOptions, Curves, RoleSel, StackChoice};
use null::labels::{Labels, ModelLabel};

use crate::panel::PanelIndex;

/// A fingerprint JSON file, or a model fingerprinted on the fly (through the cache).
pub fn load_fingerprint(arg: &str) -> Result<Fingerprint> {
    let p = Path::new(arg);
    if p.is_file() && p.extension().is_some_and(|e| e == "json") {
        let text = std::fs::read_to_string(p).with_context(|| format!("reading {arg}"))?;
        return Fingerprint::from_json(&text).map_err(|e| anyhow!("{arg}: {e}"));
    }
    let src = source::resolve(arg)?;
    super::fingerprint::fingerprint_cached(&src, None, true, true)
}

/// Curve options from `--roles`, `--ddof` and `--stack`.
pub fn curve_options(roles: &[String], ddof: u32, stack: &str) -> Result<CurveOptions> {
    let roles: Vec<RoleSel> = if roles.is_empty() {
        RoleSel::attention()
    } else {
        roles
            .iter()
            .map(|r| r.parse().map_err(|e| anyhow!("role {r}: {e}")))
            .collect::<Result<_>>()?
    };
    if ddof > 1 {
        bail!("--ddof must be 0 or 1");
    }
    Ok(CurveOptions {
        roles,
        stack: stack.parse::<StackChoice>()?,
        ddof,
    })
}

/// Curves of a fingerprint, named `name`.
pub fn curves_of(fp: &Fingerprint, opts: &CurveOptions, name: &str) -> Result<Curves> {
    let mut c =
        Curves::from_fingerprint(fp, opts).with_context(|| format!("{name}: extracting curves"))?;
    c.model = name.to_owned();
    Ok(c)
}

/// A panel directory: every `*.json` fingerprint in it, with lineage labels from `--labels`
/// (CSV) or, failing that, the directory's `index.toml` (the baselines format).
pub fn load_panel(
    dir: &Path,
    labels: Option<&Path>,
    opts: &CurveOptions,
) -> Result<(Vec<Curves>, Labels)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading panel directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("{}: no fingerprint (*.json) files", dir.display());
    }
    let mut curves = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f)?;
        let fp = Fingerprint::from_json(&text).map_err(|e| anyhow!("{}: {e}", f.display()))?;
        let id = f
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        curves.push(curves_of(&fp, opts, &id)?);
    }
    let labels = match labels {
        Some(p) => Labels::from_path(p)?,
        None if dir.join("index.toml").is_file() => {
            let index = PanelIndex::load(&dir.join("index.toml"))?;
            let models: BTreeMap<String, ModelLabel> = index
                .model
                .iter()
                .map(|m| (m.id.clone(), m.label(None)))
                .collect();
            Labels::new(models, Vec::new())?
        }
        None => {
            eprintln!("nullprint: warning: {}: no labels (--labels or index.toml): every pair is of unknown relation", dir.display());
            Labels::empty()
        }
    };
    Ok((curves, labels))
}

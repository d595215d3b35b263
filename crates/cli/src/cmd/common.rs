//! Inputs shared by the statistics commands: fingerprints given as files or models, panels
//! given as directories, curve options.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use fingerprint::{source, Fingerprint, StdRows};
use null::curves::{CurveOptions, Curves, RoleSel, StackChoice};
use null::labels::{Labels, ModelLabel};

use experiment::PanelIndex;

/// A fingerprint JSON file, or a model fingerprinted on the fly (through the cache).
pub fn load_fingerprint(arg: &str) -> Result<Fingerprint> {
    let p = Path::new(arg);
    if is_json_file(p) {
        return read_fingerprint(p);
    }
    let src = source::resolve(arg)?;
    super::fingerprint::fingerprint_cached(&src, None, true, true)
}

/// A `*.json` path with something at it (a FIFO or dangling symlink too: [`read_capped`]
/// refuses those with a clear message rather than letting them pass for a model id).
fn is_json_file(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "json") && std::fs::symlink_metadata(p).is_ok()
}

/// The largest fingerprint JSON read: a 600-billion-parameter MoE's fingerprint (tens of
/// thousands of tensors, ~300 bytes each) is about 20 MB; this leaves room tenfold and more,
/// and keeps a stray multi-gigabyte file from being read whole into memory.
pub const MAX_FINGERPRINT_BYTES: u64 = 256 << 20;

/// Read a file of at most `cap` bytes; a FIFO, device, dangling or looping symlink, or a
/// larger file is an error naming the file.
pub fn read_capped(p: &Path, cap: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    if let Some(why) = source::special_file(p) {
        bail!("{}: {why}", p.display());
    }
    let f = std::fs::File::open(p).with_context(|| format!("reading {}", p.display()))?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len > cap {
        bail!(
            "{}: {len} bytes, more than the {cap} bytes nullprint reads from such a file",
            p.display()
        );
    }
    let mut bytes = Vec::with_capacity(len as usize);
    f.take(cap + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", p.display()))?;
    if bytes.len() as u64 > cap {
        bail!("{}: grew past {cap} bytes while being read", p.display());
    }
    Ok(bytes)
}

/// A fingerprint JSON file: one read, parsed from the bytes.
fn read_fingerprint(p: &Path) -> Result<Fingerprint> {
    let bytes = read_capped(p, MAX_FINGERPRINT_BYTES)?;
    Fingerprint::from_json_slice(&bytes).map_err(|e| anyhow!("{}: {e}", p.display()))
}

/// The id of a fingerprint file in tables: its file stem.
pub fn file_id(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

/// A fingerprint's curves and the SHA-256 of its weight files.
pub type CurvesAndHashes = (Curves, Vec<String>);

/// Curves of many fingerprints, each named `id`: JSON files are read in parallel, parsing only
/// what curves need ([`StdRows`]; the result, and which error is reported first, do not
/// depend on the thread count); models are fingerprinted one after another, as the engine
/// expects.
///
/// Each comes with the SHA-256 of its weight files (where recorded), for
/// [`refuse_duplicate_weights`] and index checks.
pub fn curves_of_many(
    items: &[(String, String)],
    opts: &CurveOptions,
) -> Result<Vec<CurvesAndHashes>> {
    use rayon::prelude::*;
    let parsed: Vec<Option<Result<CurvesAndHashes>>> = items
        .par_iter()
        .map(|(arg, id)| {
            let p = Path::new(arg);
            is_json_file(p).then(|| {
                let bytes = read_capped(p, MAX_FINGERPRINT_BYTES)?;
                let rows = StdRows::from_json_slice(&bytes).map_err(|e| anyhow!("{arg}: {e}"))?;
                let mut c = Curves::from_std_rows(&rows, opts)
                    .with_context(|| format!("{id}: extracting curves"))?;
                c.model = id.clone();
                Ok((c, rows.sha256))
            })
        })
        .collect();
    let out: Vec<CurvesAndHashes> = items
        .iter()
        .zip(parsed)
        .map(|((arg, id), c)| match c {
            Some(c) => c,
            None => {
                let fp = load_fingerprint(arg)?;
                let hashes = fp.model.files.iter().filter_map(|f| f.sha256.clone());
                Ok((curves_of(&fp, opts, id)?, hashes.collect()))
            }
        })
        .collect::<Result<_>>()?;
    Ok(out)
}

/// Two fingerprints of the same weights (a weight file's SHA-256 in common) under two names
/// would pair a model with itself: with different labels, a 1.000 "unrelated" pair.
pub fn refuse_duplicate_weights(items: &[(String, String)], hashes: &[Vec<String>]) -> Result<()> {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for ((arg, _), hashes) in items.iter().zip(hashes) {
        for h in hashes {
            if let Some(first) = seen.insert(h, arg) {
                if first != arg {
                    bail!(
                        "{arg}: the same weights as {first} (sha256 {h}): one model under two \
                         names would be paired with itself"
                    );
                }
            }
        }
    }
    Ok(())
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
    let items: Vec<(String, String)> = files
        .iter()
        .map(|f| {
            let id = f
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            (f.display().to_string(), id)
        })
        .collect();
    let (curves, hashes): (Vec<Curves>, Vec<Vec<String>>) =
        curves_of_many(&items, opts)?.into_iter().unzip();
    // With an index, every fingerprint must be of the weights the index names.
    let index_path = dir.join("index.toml");
    let index = if index_path.is_file() {
        Some(PanelIndex::load(&index_path)?)
    } else {
        None
    };
    if let Some(index) = &index {
        for ((file, id), hashes) in items.iter().zip(&hashes) {
            let hashes: Vec<&str> = hashes.iter().map(String::as_str).collect();
            match index.model.iter().find(|m| &m.id == id) {
                Some(m) => m.check_hashes(&hashes, Path::new(file), index)?,
                None if labels.is_none() => bail!(
                    "{file}: model {id:?} is not in {} (add it with its sha256 and root, or \
                     give --labels)",
                    index_path.display()
                ),
                None => {}
            }
        }
    }
    refuse_duplicate_weights(&items, &hashes)?;
    let labels = match (labels, &index) {
        (Some(p), _) => {
            let l = Labels::from_path(p)?;
            l.check_models(curves.iter().map(|c| c.model.as_str()))?;
            l
        }
        (None, Some(index)) => {
            let models: BTreeMap<String, ModelLabel> = index
                .model
                .iter()
                .map(|m| (m.id.clone(), m.label(None)))
                .collect();
            Labels::new(models, Vec::new())?
        }
        (None, None) => {
            eprintln!("nullprint: warning: {}: no labels (--labels or index.toml): every pair is of unknown relation", dir.display());
            Labels::empty()
        }
    };
    Ok((curves, labels))
}

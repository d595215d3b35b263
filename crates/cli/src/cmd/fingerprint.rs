//! `nullprint fingerprint MODEL... [-o OUT] [--force] [--format json|csv]`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use fingerprint::cache::Cache;
use fingerprint::engine::{self, Options};
use fingerprint::sample::Sampling;
use fingerprint::{remote, source, Fingerprint, Role, VectorKinds};

use crate::args::{FingerprintArgs, FingerprintFormat};
use crate::progress;
use crate::save::write_new;

pub fn run(mut a: FingerprintArgs) -> Result<()> {
    if let Some(list) = &a.list {
        let text =
            std::fs::read_to_string(list).with_context(|| format!("reading {}", list.display()))?;
        a.models.extend(
            text.lines()
                .map(|l| l.split('#').next().unwrap_or("").trim())
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
        );
    }
    if let Some((i, n)) = a.shard {
        a.models = a
            .models
            .iter()
            .enumerate()
            .filter(|(k, _)| k % n == i)
            .map(|(_, m)| m.clone())
            .collect();
        if a.output.is_none() {
            bail!("--shard needs -o DIR: each array task writes its own files");
        }
    }
    if a.models.is_empty() {
        eprintln!("nothing to do: no models in this shard");
        return Ok(());
    }
    let roles: Option<Vec<Role>> = a.roles.as_ref().map(|rs| {
        rs.iter()
            .map(|r| r.parse().unwrap_or(Role::Other(r.clone())))
            .collect()
    });
    let format = a
        .format
        .unwrap_or_else(|| match a.output.as_deref().and_then(Path::extension) {
            Some(e) if e == "csv" => FingerprintFormat::Csv,
            _ => FingerprintFormat::Json,
        });
    // Decide every output path before any work, so a bad path fails early.
    let into_dir = a.shard.is_some() || a.list.is_some() || a.models.len() > 1;
    let targets: Vec<Option<PathBuf>> = match (&a.output, into_dir) {
        (None, _) => vec![None; a.models.len()],
        (Some(out), false) => vec![Some(out.clone())],
        (Some(dir), _) => {
            if dir.exists() && !dir.is_dir() {
                bail!(
                    "{}: several models need -o to name a directory",
                    dir.display()
                );
            }
            let ext = if format == FingerprintFormat::Csv {
                "csv"
            } else {
                "json"
            };
            a.models
                .iter()
                .map(|m| Some(dir.join(format!("{}.{ext}", file_safe(m)))))
                .collect()
        }
    };
    // Two models whose names map to one file would lose the first: refuse before any work.
    let mut seen: std::collections::BTreeMap<&Path, &str> = Default::default();
    for (model, t) in a.models.iter().zip(&targets) {
        if let Some(t) = t {
            if let Some(first) = seen.insert(t, model) {
                bail!(
                    "{first} and {model} would both be written to {}; fingerprint them into separate directories",
                    t.display()
                );
            }
        }
    }
    for t in targets.iter().flatten() {
        if t.exists() && !a.force {
            bail!("{} exists; pass --force to overwrite it", t.display());
        }
    }
    if a.sample.is_some() && a.vectors.is_some_and(|v| v.any()) {
        bail!("--vectors keeps whole vectors and cannot be combined with --sample");
    }
    let sample = a.sample.map(|blocks| Sampling {
        blocks,
        seed: a.seed,
    });
    let mut stdout_prints = Vec::new();
    for (i, (model, target)) in a.models.iter().zip(&targets).enumerate() {
        let fp = if remote::is_remote(model) {
            if a.vectors.is_some_and(|v| v.any()) {
                bail!("{model}: --vectors reads local weights only");
            }
            fingerprint_remote(model, roles.clone(), sample.as_ref())?
        } else {
            let src = if a.download {
                download(model, a.revision.as_deref())?
            } else {
                source::resolve(model)?
            };
            match &sample {
                // A sample is cheap to redo, and the cache keys exact fingerprints only.
                Some(s) => fingerprint_sampled(&src, roles.clone(), !a.no_hash, s)?,
                None => fingerprint_cached_with(
                    &src,
                    roles.clone(),
                    a.vectors.unwrap_or_default(),
                    !a.no_hash,
                    !a.no_cache,
                )?,
            }
        };
        let bytes = render(&fp, format, target.is_some() || i == 0)?;
        match target {
            Some(path) => {
                write_new(path, &bytes, a.force)?;
                eprintln!("wrote {} ({} tensors)", path.display(), fp.tensors.len());
            }
            None => stdout_prints.push((fp, bytes)),
        }
    }
    if !stdout_prints.is_empty() {
        let mut out = std::io::stdout().lock();
        if format == FingerprintFormat::Json && stdout_prints.len() > 1 {
            let all: Vec<&Fingerprint> = stdout_prints.iter().map(|(fp, _)| fp).collect();
            serde_json::to_writer_pretty(&mut out, &all)?;
            writeln!(out)?;
        } else {
            for (_, bytes) in &stdout_prints {
                out.write_all(bytes)?;
            }
        }
        out.flush()?;
    }
    Ok(())
}

/// Fingerprint through the cache (keyed by file identity and options) when `use_cache`.
pub fn fingerprint_cached(
    src: &source::ModelSource,
    roles: Option<Vec<Role>>,
    hash: bool,
    use_cache: bool,
) -> Result<Fingerprint> {
    fingerprint_cached_with(src, roles, VectorKinds::default(), hash, use_cache)
}

/// [`fingerprint_cached`], also keeping the `vectors` asked for (part of the cache key).
pub fn fingerprint_cached_with(
    src: &source::ModelSource,
    roles: Option<Vec<Role>>,
    vectors: VectorKinds,
    hash: bool,
    use_cache: bool,
) -> Result<Fingerprint> {
    let cache = use_cache.then(Cache::default_dir).flatten().map(Cache::new);
    let mut options = fingerprint::cache::options_key(&roles, hash);
    if vectors.any() {
        options.push_str(&format!(";vectors={vectors}"));
    }
    let got = fingerprint::cache::through(cache.as_ref(), src, &options, || {
        fingerprint_source(src, roles, vectors, hash)
    })?;
    if let Some(e) = got.store_error {
        eprintln!("nullprint: warning: fingerprint cache: {e}");
    }
    Ok(got.fingerprint)
}

/// Fingerprint one resolved model, with a progress bar for large models.
pub fn fingerprint_source(
    src: &source::ModelSource,
    roles: Option<Vec<Role>>,
    vectors: VectorKinds,
    hash: bool,
) -> Result<Fingerprint> {
    let plan = engine::plan(src)?;
    let bar = progress::elements_bar(engine::planned_elements(&plan, &roles), &src.name);
    let tick = |n: u64| bar.inc(n);
    let opts = Options {
        hash,
        roles,
        command: super::command_line(),
        progress: Some(&tick),
        vectors,
    };
    let fp = engine::fingerprint(src, &opts)?;
    bar.finish_and_clear();
    for w in &fp.warnings {
        eprintln!("nullprint: warning: {}: {w}", fp.model.name);
    }
    Ok(fp)
}

/// Fingerprint one resolved local model from a seeded sample of each tensor.
pub fn fingerprint_sampled(
    src: &source::ModelSource,
    roles: Option<Vec<Role>>,
    hash: bool,
    sample: &Sampling,
) -> Result<Fingerprint> {
    let plan = engine::plan(src)?;
    let bar = progress::elements_bar(
        engine::planned_sampled_elements(&plan, &roles, Some(sample)),
        &src.name,
    );
    let tick = |n: u64| bar.inc(n);
    let opts = Options {
        hash,
        roles,
        command: super::command_line(),
        progress: Some(&tick),
        vectors: VectorKinds::default(),
    };
    let fp = engine::fingerprint_sampled_with(src, &opts, &engine::LocalFiles, Some(sample))?;
    bar.finish_and_clear();
    for w in &fp.warnings {
        eprintln!("nullprint: warning: {}: {w}", fp.model.name);
    }
    Ok(fp)
}

/// Fingerprint a model where it is hosted (`https://…`, `hf://…`), reading only the tensors of
/// `roles` (the attention projections by default) in HTTP ranges.
pub fn fingerprint_remote(
    spec: &str,
    roles: Option<Vec<Role>>,
    sample: Option<&Sampling>,
) -> Result<Fingerprint> {
    let mut config = remote::HttpConfig::default();
    if sample.is_some() {
        config.coalesce_gap = remote::SAMPLED_COALESCE_GAP;
    }
    let client = remote::Client::from_env(config)?;
    let model = remote::Remote::resolve(spec, client)?;
    let roles = roles.or_else(|| Some(remote::default_roles()));
    let plan = model.plan()?;
    let bar = progress::elements_bar(
        engine::planned_sampled_elements(&plan, &roles, sample),
        &model.source.name,
    );
    let tick = |n: u64| bar.inc(n);
    let opts = Options {
        hash: false,
        roles,
        command: super::command_line(),
        progress: Some(&tick),
        vectors: VectorKinds::default(),
    };
    let fp = model.fingerprint_sampled(&opts, sample)?;
    bar.finish_and_clear();
    let (size, read) = model.bytes();
    eprintln!(
        "{}: read {read} of {size} bytes ({:.1}%) in ranges",
        fp.model.name,
        100.0 * read as f64 / size.max(1) as f64
    );
    for w in &fp.warnings {
        eprintln!("nullprint: warning: {}: {w}", fp.model.name);
    }
    Ok(fp)
}

fn render(fp: &Fingerprint, format: FingerprintFormat, header: bool) -> Result<Vec<u8>> {
    Ok(match format {
        FingerprintFormat::Json => fp.to_json().into_bytes(),
        FingerprintFormat::Csv => {
            let mut buf = Vec::new();
            fp.write_csv(&mut buf)?;
            if !header {
                // Several models on stdout share one header line.
                let cut = buf.iter().position(|&b| b == b'\n').map_or(0, |p| p + 1);
                buf.drain(..cut);
            }
            buf
        }
    })
}

/// A model argument as a file name: path separators and odd characters become `_`.
fn file_safe(model: &str) -> String {
    let p = Path::new(model);
    let base = if p.exists() {
        p.canonicalize()
            .ok()
            .and_then(|c| c.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| model.to_owned())
    } else {
        model.to_owned()
    };
    base.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(feature = "download")]
fn download(model: &str, revision: Option<&str>) -> Result<fingerprint::source::ModelSource> {
    Ok(fingerprint::hub::download(model, revision)?)
}

#[cfg(not(feature = "download"))]
fn download(model: &str, _revision: Option<&str>) -> Result<fingerprint::source::ModelSource> {
    bail!("cannot download {model}: this nullprint was built without the `download` feature")
}

//! `nullprint panel build`: fingerprint a manifest's checkpoints where they are hosted into a
//! panel directory.
//!
//! The directory holds one `<id>.json` fingerprint per model and an `index.toml` in the
//! baselines format (id, lineage labels), so `nullprint null --panel DIR`, `compare` and the
//! experiment files read it as is. A run skips every model whose fingerprint is already there
//! and verifies (same checkpoint, same sampling, the manifest's depth), so an interrupted build
//! resumes where it stopped. `--shard I/N` takes every N-th entry from the I-th; a fingerprint
//! records no machine- or shard-specific detail, so the directory is the same whether one
//! machine built it or an indexed array job did. Each run rewrites `index.toml` over every
//! entry whose fingerprint is present and verified.

use std::path::{Path, PathBuf};

use fingerprint::engine::Options;
use fingerprint::remote::{Client, Remote};
use fingerprint::sample::Sampling;
use fingerprint::{Fingerprint, Role};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::manifest::{Entry, Manifest, Relation};

/// How to build.
pub struct BuildOptions<'a> {
    /// `(I, N)`: build only shard I of N.
    pub shard: Option<(usize, usize)>,
    /// Estimate from a seeded sample of each tensor instead of reading every element.
    pub sample: Option<Sampling>,
    /// The manifest's file name, recorded as the command of every fingerprint.
    pub manifest_name: String,
    /// Makes the HTTP client for one model (the hub endpoint, token and limits).
    pub client: &'a (dyn Fn() -> fingerprint::Result<Client> + Sync),
    /// Told what happens, for progress bars.
    pub events: &'a (dyn Fn(Event<'_>) + Sync),
}

/// Progress of a build.
#[derive(Debug)]
pub enum Event<'a> {
    /// Work on an entry begins (`k` of `n` in this shard).
    Start {
        /// The entry.
        id: &'a str,
        /// Its position in the shard (0-based).
        k: usize,
        /// Entries in the shard.
        n: usize,
    },
    /// The entry's fingerprint was already there and verified.
    Skipped {
        /// The entry.
        id: &'a str,
    },
    /// The entry was fingerprinted.
    Done {
        /// The entry.
        id: &'a str,
        /// Bytes read over the network.
        read: u64,
        /// Bytes of the checkpoint's weight files.
        size: u64,
    },
    /// The entry failed; the build goes on with the others.
    Failed {
        /// The entry.
        id: &'a str,
        /// Why.
        error: &'a Error,
    },
}

/// What a build did.
#[derive(Debug, Default)]
pub struct Summary {
    /// Entries in this shard.
    pub models: usize,
    /// Fingerprinted by this run.
    pub built: Vec<String>,
    /// Already present and verified.
    pub skipped: Vec<String>,
    /// Failed, with the error (naming the entry).
    pub failed: Vec<Error>,
    /// Bytes read over the network for this shard's fingerprints (this run and earlier ones).
    pub bytes_read: u64,
    /// Bytes of this shard's checkpoints' weight files.
    pub bytes_total: u64,
    /// Entries listed in the written `index.toml`.
    pub indexed: usize,
}

/// Build the panel of `manifest` into `dir` (created if absent).
pub fn build(manifest: &Manifest, dir: &Path, opts: &BuildOptions<'_>) -> Result<Summary> {
    let entries = match opts.shard {
        Some((i, n)) if n == 0 || i >= n => return Err(Error::Shard { index: i, count: n }),
        Some((i, n)) => manifest.shard(i, n),
        None => manifest.model.iter().collect(),
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::Io {
        path: dir.to_owned(),
        source: e,
    })?;
    let mut summary = Summary {
        models: entries.len(),
        ..Summary::default()
    };
    for (k, e) in entries.iter().enumerate() {
        (opts.events)(Event::Start {
            id: &e.id,
            k,
            n: entries.len(),
        });
        let path = fingerprint_path(dir, &e.id);
        if let Some(fp) = verified(&path, e, opts.sample.as_ref()) {
            let (read, size) = bytes(&fp);
            summary.bytes_read += read;
            summary.bytes_total += size;
            summary.skipped.push(e.id.clone());
            (opts.events)(Event::Skipped { id: &e.id });
            continue;
        }
        match build_one(e, &path, opts) {
            Ok((read, size)) => {
                summary.bytes_read += read;
                summary.bytes_total += size;
                summary.built.push(e.id.clone());
                (opts.events)(Event::Done {
                    id: &e.id,
                    read,
                    size,
                });
            }
            Err(err) => {
                (opts.events)(Event::Failed {
                    id: &e.id,
                    error: &err,
                });
                summary.failed.push(err);
            }
        }
    }
    summary.indexed = write_index(manifest, dir, opts.sample.as_ref())?;
    Ok(summary)
}

/// `<dir>/<id>.json`.
pub fn fingerprint_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.json"))
}

/// Bytes read and total bytes of a remote fingerprint's files.
fn bytes(fp: &Fingerprint) -> (u64, u64) {
    let read = fp
        .model
        .files
        .iter()
        .map(|f| f.remote.as_ref().map_or(f.size, |r| r.bytes_read))
        .sum();
    let size = fp.model.files.iter().map(|f| f.size).sum();
    (read, size)
}

/// The fingerprint at `path`, if it is there, parses, and was made from `e`'s checkpoint with
/// the same sampling and the manifest's depth.
fn verified(path: &Path, e: &Entry, sample: Option<&Sampling>) -> Option<Fingerprint> {
    let bytes = std::fs::read(path).ok()?;
    let fp = Fingerprint::from_json_slice(&bytes).ok()?;
    let same_sampling = match (&fp.sampling, sample) {
        (None, None) => true,
        (Some(i), Some(s)) => i.blocks == s.blocks && i.seed == s.seed,
        _ => false,
    };
    let ok = fp.model.source == e.spec()
        && same_sampling
        && check_depth(e, &fp).is_ok()
        && e.revision
            .as_ref()
            .is_none_or(|r| fp.model.revision.as_ref() == Some(r));
    ok.then_some(fp)
}

/// The layers of the configuration and of the attention rows, against the entry.
fn check_depth(e: &Entry, fp: &Fingerprint) -> Result<()> {
    let mismatch = |reason: String| Error::Mismatch {
        id: e.id.clone(),
        spec: e.spec(),
        reason,
    };
    match fp.model.config.layers {
        Some(l) if l != u64::from(e.layers) => {
            return Err(mismatch(format!(
                "the manifest says {} layers, the config {l}",
                e.layers
            )))
        }
        None => {
            return Err(mismatch(
                "the config gives no layer count (num_hidden_layers or GGUF block_count)".into(),
            ))
        }
        _ => {}
    }
    let mut layers: Vec<u32> = fp
        .tensors
        .iter()
        .filter(|r| Role::ATTENTION.contains(&r.role))
        .filter_map(|r| r.layer)
        .collect();
    layers.sort_unstable();
    layers.dedup();
    if layers.len() != e.layers as usize {
        return Err(mismatch(format!(
            "the manifest says {} layers, the attention tensors span {}",
            e.layers,
            layers.len()
        )));
    }
    if let (Some(want), Some(got)) = (e.hidden, fp.model.config.hidden_size) {
        if want != got {
            return Err(mismatch(format!(
                "the manifest says hidden size {want}, the config {got}"
            )));
        }
    }
    Ok(())
}

/// Fingerprint one entry into `path`; bytes read and total.
fn build_one(e: &Entry, path: &Path, opts: &BuildOptions<'_>) -> Result<(u64, u64)> {
    let fail = |source| Error::Fingerprint {
        id: e.id.clone(),
        source,
    };
    let spec = e.spec();
    let client = (opts.client)().map_err(fail)?;
    let remote = Remote::resolve(&spec, client).map_err(fail)?;
    // The depth is checked from the headers before any tensor byte is read.
    let plan = remote.plan().map_err(fail)?;
    if let Some(l) = plan.config.layers {
        if l != u64::from(e.layers) {
            return Err(Error::Mismatch {
                id: e.id.clone(),
                spec,
                reason: format!("the manifest says {} layers, the config {l}", e.layers),
            });
        }
    }
    let mut command = vec![
        "nullprint".to_owned(),
        "panel".into(),
        "build".into(),
        opts.manifest_name.clone(),
    ];
    if let Some(s) = &opts.sample {
        command.extend([
            "--sample".into(),
            s.blocks.to_string(),
            "--seed".into(),
            s.seed.to_string(),
        ]);
    }
    let o = Options {
        command,
        ..Options::default()
    };
    let mut fp = remote
        .fingerprint_sampled(&o, opts.sample.as_ref())
        .map_err(fail)?;
    fp.model.name = e.id.clone();
    check_depth(e, &fp)?;
    let json = fp.to_json();
    output::write_atomic(path, json.as_bytes(), true).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    let (size, read) = remote.bytes();
    Ok((read, size))
}

/// One `[[model]]` of the written `index.toml` (the fields `baselines/index.toml` has).
#[derive(Serialize)]
struct IndexModel {
    id: String,
    weights: String,
    sha256: String,
    source: String,
    family: String,
    root: String,
    organization: String,
    derived_from: String,
    kind: String,
}

#[derive(Serialize)]
struct IndexFile {
    model: Vec<IndexModel>,
}

/// What `index.toml` says where a whole-file SHA-256 would be: the files were read in ranges.
pub const NO_SHA256: &str =
    "not computed: read in HTTP ranges (the fingerprint records each file's header SHA-256 and ETag)";

/// Write `dir/index.toml` over every entry whose fingerprint is present and verified; the
/// number of entries written.
fn write_index(manifest: &Manifest, dir: &Path, sample: Option<&Sampling>) -> Result<usize> {
    let mut models = Vec::new();
    for e in &manifest.model {
        let Some(fp) = verified(&fingerprint_path(dir, &e.id), e, sample) else {
            continue;
        };
        let commit = fp
            .model
            .revision
            .clone()
            .unwrap_or_else(|| "unknown".into());
        let derived = match (e.relation, &e.derived_from) {
            (Relation::Base, _) | (_, None) => "pretrained (base)".to_owned(),
            (r, Some(d)) => format!("{d} ({r:?})"),
        };
        models.push(IndexModel {
            id: e.id.clone(),
            weights: e.spec(),
            sha256: NO_SHA256.into(),
            source: format!(
                "hf://{}@{commit}{} (lineage: {})",
                e.repo,
                e.file.as_ref().map_or(String::new(), |f| format!("/{f}")),
                e.card
            ),
            family: e.family.clone(),
            root: e.root.clone(),
            organization: e.organization.clone(),
            derived_from: derived,
            kind: e.kind.clone(),
        });
    }
    let n = models.len();
    let body = toml::to_string(&IndexFile { model: models }).map_err(|e| Error::Io {
        path: dir.join("index.toml"),
        source: std::io::Error::other(e.to_string()),
    })?;
    let text = format!(
        "# Written by `nullprint panel build` from the manifest \"{}\": one entry per verified\n\
         # fingerprint in this directory. Same root = related (shares weights).\n\n{body}",
        manifest.panel.name
    );
    let path = dir.join("index.toml");
    output::write_atomic(&path, text.as_bytes(), true).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    Ok(n)
}

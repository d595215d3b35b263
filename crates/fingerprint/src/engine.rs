//! Streams every selected tensor of a model through the statistics kernel.
//!
//! Files are processed one at a time (a file's memory map is dropped before the next is
//! opened). Within a file, every role slice is cut into work units of at most [`UNIT`]
//! elements; rayon computes the units in parallel and the per-unit accumulators are merged
//! left to right in unit order, so the result does not depend on the number of threads.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::path::Path;

use rayon::prelude::*;

use crate::config::ConfigSummary;
use crate::error::{Error, Result};
use crate::format::{self, TensorInfo, TensorReader, Values};
use crate::hash::Hashing;
use crate::roles::{self, Assignment, MapContext, Role};
use crate::sample::{self, Sampling};
use crate::schema::{FileInfo, Fingerprint, ModelInfo, Skipped, TensorRow, SCHEMA, SCHEMA_VERSION};
use crate::source::ModelSource;
use crate::stats::Accumulator;
use crate::vectors::{VectorKinds, VectorRow, MAX_VECTOR_LEN};

/// Elements per parallel work unit (a multiple of every quantization block size).
pub const UNIT: u64 = 1 << 20;

/// Progress callback: receives the number of elements just finished.
pub type Progress<'a> = &'a (dyn Fn(u64) + Sync);

/// What to fingerprint and how.
#[derive(Default)]
pub struct Options<'a> {
    /// Hash the weight files (SHA-256) into the provenance.
    pub hash: bool,
    /// Restrict to exactly these roles (a bias is its own role, `attn_q_bias`). `None`: every
    /// tensor.
    pub roles: Option<Vec<Role>>,
    /// Command line recorded in the provenance.
    pub command: Vec<String>,
    /// Called as work units finish.
    pub progress: Option<Progress<'a>>,
    /// Which 1-D vectors to keep with their values ([`crate::vectors`]); none by default.
    pub vectors: VectorKinds,
}

/// A tensor of the model with its role assignments, as planned before reading.
#[derive(Clone, Debug)]
pub struct PlannedTensor {
    /// Index of the file in [`ModelSource::files`].
    pub file: usize,
    /// Index of the tensor within that file's reader.
    pub index: usize,
    /// The tensor.
    pub info: TensorInfo,
    /// Its role assignments (several for fused tensors).
    pub assignments: Vec<Assignment>,
}

/// The model's tensors and configuration, read from headers only.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Configuration (config.json, filled in from file metadata).
    pub config: ConfigSummary,
    /// Architecture name.
    pub architecture: Option<String>,
    /// Every tensor of every file, in file order.
    pub tensors: Vec<PlannedTensor>,
}

/// How the engine reaches a model's files: [`LocalFiles`] maps them from disk,
/// `crate::remote` reads byte ranges over HTTP.
pub trait Files: Sync {
    /// Open file `file` (an index into [`ModelSource::files`]).
    fn open(&self, src: &ModelSource, file: usize) -> Result<Box<dyn TensorReader>>;
    /// The model's configuration side file, parsed (default when there is none).
    fn config(&self, src: &ModelSource) -> Result<ConfigSummary>;
    /// Provenance of file `file`, asked once the fingerprint is computed; `hash` asks for a
    /// SHA-256 of the whole file.
    fn info(&self, src: &ModelSource, file: usize, hash: bool) -> Result<FileInfo>;
    /// The files are on this machine, so [`fingerprint_with`] hashes them while the statistics
    /// run instead of asking [`Files::info`] to.
    fn local(&self) -> bool {
        false
    }
}

/// Files on disk, memory-mapped by the format readers.
pub struct LocalFiles;

impl Files for LocalFiles {
    fn open(&self, src: &ModelSource, file: usize) -> Result<Box<dyn TensorReader>> {
        format::open(&src.files[file], src.format)
    }

    fn config(&self, src: &ModelSource) -> Result<ConfigSummary> {
        match &src.config {
            Some(p) => ConfigSummary::from_file(p),
            None => Ok(ConfigSummary::default()),
        }
    }

    fn info(&self, src: &ModelSource, file: usize, hash: bool) -> Result<FileInfo> {
        file_info(&src.files[file], &src.root, hash)
    }

    fn local(&self) -> bool {
        true
    }
}

/// Read headers and map every tensor to its roles.
pub fn plan(src: &ModelSource) -> Result<Plan> {
    plan_with(src, &LocalFiles)
}

/// [`plan`], with the files reached through `files`.
pub fn plan_with(src: &ModelSource, files: &dyn Files) -> Result<Plan> {
    let mut config = files.config(src)?;
    let mut architecture = config.architecture.clone();
    let mut infos = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (fi, path) in src.files.iter().enumerate() {
        let reader = files.open(src, fi)?;
        if let Some(c) = reader.config() {
            config.fill_from(&c);
        }
        if architecture.is_none() {
            architecture = reader.architecture();
        }
        for (ti, t) in reader.tensors().iter().enumerate() {
            if let Some(prev) = seen.insert(t.name.clone(), fi) {
                return Err(Error::header(
                    path,
                    format!(
                        "tensor {} also appears in {}",
                        t.name,
                        src.files[prev].display()
                    ),
                ));
            }
            infos.push((fi, ti, t.clone()));
        }
    }
    if let Some((index_path, pairs)) = &src.index {
        for (tensor, shard) in pairs {
            if !seen.contains_key(tensor) {
                return Err(Error::MissingTensor {
                    path: index_path.clone(),
                    tensor: tensor.clone(),
                    shard: shard.clone(),
                });
            }
        }
    }
    let ctx = MapContext {
        config: config.clone(),
    };
    let mut tensors = Vec::with_capacity(infos.len());
    for (file, index, info) in infos {
        let assignments = roles::assign(info.mapping_name(), &info.shape, &ctx).map_err(|e| {
            Error::FusedSplit {
                path: src.files[file].clone(),
                tensor: info.name.clone(),
                reason: e.reason,
            }
        })?;
        tensors.push(PlannedTensor {
            file,
            index,
            info,
            assignments,
        });
    }
    // Encoder/decoder labels only mean something when a model has both stacks.
    // Only layers count: a BERT MLM head named `cls.predictions.decoder` is not a decoder stack.
    let stacks: BTreeSet<_> = tensors
        .iter()
        .flat_map(|t| {
            t.assignments
                .iter()
                .filter(|a| a.key.layer.is_some())
                .filter_map(|a| a.key.stack)
        })
        .collect();
    if stacks.len() < 2 {
        for t in &mut tensors {
            for a in &mut t.assignments {
                a.key.stack = None;
            }
        }
    }
    Ok(Plan {
        config,
        architecture,
        tensors,
    })
}

fn wanted(role: &Role, filter: &Option<Vec<Role>>) -> bool {
    match filter {
        None => true,
        Some(list) => list.contains(role),
    }
}

/// Roles whose tensors must be readable even when no filter is given.
fn required(role: &Role, filter: &Option<Vec<Role>>) -> bool {
    match filter {
        Some(_) => true,
        None => Role::ATTENTION.contains(role),
    }
}

/// Split element ranges into work units aligned to `block`.
fn units(ranges: &[Range<u64>], block: u64) -> Vec<Range<u64>> {
    let step = (UNIT / block.max(1)).max(1) * block.max(1);
    let mut out = Vec::new();
    for r in ranges {
        let mut s = r.start;
        while s < r.end {
            let e = (s + step).min(r.end);
            out.push(s..e);
            s = e;
        }
    }
    out
}

/// Fingerprint a resolved model. With `opts.hash`, the files are hashed on threads of their
/// own while the statistics run (see [`crate::hash::Hashing`]).
pub fn fingerprint(src: &ModelSource, opts: &Options<'_>) -> Result<Fingerprint> {
    fingerprint_with(src, opts, &LocalFiles)
}

/// [`fingerprint`], with the files reached through `files`. Local files are hashed on threads
/// of their own while the statistics run; other sources hash (or not) in [`Files::info`].
pub fn fingerprint_with(
    src: &ModelSource,
    opts: &Options<'_>,
    files: &dyn Files,
) -> Result<Fingerprint> {
    fingerprint_sampled_with(src, opts, files, None)
}

/// [`fingerprint_with`], estimating every statistic from a seeded sample of each role slice
/// when `sample` is given ([`crate::sample`]): the rows then carry standard errors and the
/// fingerprint says how it was sampled.
pub fn fingerprint_sampled_with(
    src: &ModelSource,
    opts: &Options<'_>,
    files: &dyn Files,
    sample: Option<&Sampling>,
) -> Result<Fingerprint> {
    let overlap = opts.hash && files.local();
    std::thread::scope(|scope| {
        let hashing = overlap.then(|| Hashing::start(scope, &src.files));
        let stats = statistics(src, opts, files, opts.hash && !overlap, sample);
        let hashes = hashing.map(Hashing::finish).transpose()?;
        let mut fp = stats?;
        if let Some(hashes) = hashes {
            for (f, (sha, source)) in fp.model.files.iter_mut().zip(hashes) {
                f.sha256 = Some(sha);
                f.hash_source = Some(source);
            }
        }
        Ok(fp)
    })
}

/// The fingerprint; file hashes only when `hash_in_info` (else the caller adds them).
fn statistics(
    src: &ModelSource,
    opts: &Options<'_>,
    files: &dyn Files,
    hash_in_info: bool,
    sample: Option<&Sampling>,
) -> Result<Fingerprint> {
    let plan = plan_with(src, files)?;
    let mut rows: Vec<TensorRow> = Vec::new();
    let mut skipped = Vec::new();
    let mut vectors: Vec<VectorRow> = Vec::new();
    for fi in 0..src.files.len() {
        let in_file: Vec<&PlannedTensor> = plan.tensors.iter().filter(|t| t.file == fi).collect();
        if in_file.is_empty() {
            continue;
        }
        let reader = files.open(src, fi)?;
        // (assignment, tensor) pairs to compute, after filtering and probing.
        let mut jobs: Vec<(&PlannedTensor, &Assignment)> = Vec::new();
        for t in in_file {
            let chosen: Vec<&Assignment> = t
                .assignments
                .iter()
                .filter(|a| wanted(&a.key.role, &opts.roles))
                .collect();
            if chosen.is_empty() {
                continue;
            }
            // An empty read checks that the dtype can be decoded.
            if let Err(e) = reader.read(t.index, 0..0, &mut |_| {}) {
                let needed = chosen.iter().any(|a| required(&a.key.role, &opts.roles));
                match e {
                    Error::UnsupportedDtype { .. } if !needed => {
                        skipped.push(Skipped {
                            tensor: t.info.name.clone(),
                            dtype: t.info.dtype.to_string(),
                            reason: e.to_string(),
                        });
                        continue;
                    }
                    e => return Err(e),
                }
            }
            jobs.extend(chosen.into_iter().map(|a| (t, a)));
        }
        // With sampling, a slice with more clusters than the sample size is read in its
        // drawn clusters, one work unit each (`population` records how many it had).
        let mut population: Vec<Option<u64>> = vec![None; jobs.len()];
        let mut work: Vec<(usize, usize, Range<u64>)> = Vec::new();
        for (j, (t, a)) in jobs.iter().enumerate() {
            if let Some(s) = sample {
                let all = sample::clusters(&a.ranges, sample::cluster_len(t.info.block));
                if all.len() as u64 > s.blocks {
                    let first = a.ranges.first().map_or(0, |r| r.start);
                    let key = format!("{}/{}/{first}", t.info.name, a.key.role);
                    population[j] = Some(all.len() as u64);
                    for i in sample::select(s.seed, &key, all.len() as u64, s.blocks) {
                        work.push((j, t.index, all[i as usize].clone()));
                    }
                    continue;
                }
            }
            work.extend(
                units(&a.ranges, t.info.block)
                    .into_iter()
                    .map(|u| (j, t.index, u)),
            );
        }
        let reader_ref = &*reader;
        // A reader that fetches over the network bounds the bytes of a batch; local readers
        // take all the work as one batch.
        let reads: Vec<(usize, Range<u64>)> =
            work.iter().map(|(_, i, r)| (*i, r.clone())).collect();
        let mut partial: Vec<(usize, Accumulator)> = Vec::with_capacity(work.len());
        for batch in reader.batches(&reads) {
            reader.prefetch(&reads[batch.clone()])?;
            let done: Vec<(usize, Accumulator)> = work[batch]
                .par_iter()
                .map(|(j, index, range)| {
                    let len = range.end - range.start;
                    // Quantized blocks give their moments from integer sums of their codes;
                    // everything else is decoded and pushed.
                    let acc = match reader_ref.moments(*index, range.clone()) {
                        Some(acc) => acc?,
                        None => {
                            let mut acc = Accumulator::new();
                            reader_ref.read(*index, range.clone(), &mut |v| match v {
                                Values::F32(x) => acc.push(x),
                                Values::F64(x) => acc.push(x),
                            })?;
                            acc
                        }
                    };
                    if let Some(p) = opts.progress {
                        p(len);
                    }
                    Ok((*j, acc))
                })
                .collect::<Result<_>>()?;
            partial.extend(done);
        }
        let mut accs = vec![Accumulator::new(); jobs.len()];
        let mut drawn: Vec<Vec<Accumulator>> = vec![Vec::new(); jobs.len()];
        for (j, acc) in &partial {
            if population[*j].is_some() {
                drawn[*j].push(*acc);
            } else {
                accs[*j].merge(acc);
            }
        }
        for (t, a) in &jobs {
            if opts.vectors.keeps(&a.key.role)
                && t.info.shape.len() == 1
                && a.ranges.iter().map(|r| r.end - r.start).sum::<u64>() <= MAX_VECTOR_LEN
            {
                let mut values = Vec::new();
                for r in &a.ranges {
                    reader.read(t.index, r.clone(), &mut |v| match v {
                        Values::F32(x) => values.extend_from_slice(x),
                        Values::F64(x) => values.extend(x.iter().map(|&y| y as f32)),
                    })?;
                }
                vectors.push(VectorRow::new(
                    a.key.stack,
                    a.key.layer,
                    a.key.role.clone(),
                    t.info.name.clone(),
                    t.info.dtype.to_string(),
                    &values,
                ));
            }
        }
        for (j, ((t, a), acc)) in jobs.iter().zip(accs).enumerate() {
            let numel = a.ranges.iter().map(|r| r.end - r.start).sum();
            let (stats, se) = match (population[j], sample) {
                (Some(m), _) => {
                    let (stats, se) = sample::estimate(&drawn[j], m, numel);
                    (stats, Some(se))
                }
                // A slice with no more clusters than the sample is read whole: errors 0.
                (None, Some(_)) => {
                    let stats = acc.finish();
                    let zero = stats.mean.map(|_| 0.0);
                    let c =
                        sample::clusters(&a.ranges, sample::cluster_len(t.info.block)).len() as u64;
                    let se = sample::StatErrors {
                        clusters: c,
                        population: c,
                        elements: numel,
                        mean: zero,
                        std: zero,
                        abs_mean: zero,
                        l2: zero,
                    };
                    (stats, Some(se))
                }
                (None, None) => (acc.finish(), None),
            };
            rows.push(TensorRow {
                stack: a.key.stack,
                layer: a.key.layer,
                role: a.key.role.clone(),
                expert: a.key.expert,
                tensor: t.info.name.clone(),
                dtype: t.info.dtype.to_string(),
                stats,
                se,
            });
        }
        drop(reader);
    }
    rows.sort_by(|a, b| {
        (a.stack, a.layer, &a.role, a.expert, &a.tensor)
            .cmp(&(b.stack, b.layer, &b.role, b.expert, &b.tensor))
    });
    vectors.sort_by(|a, b| {
        (a.stack, a.layer, &a.role, &a.tensor).cmp(&(b.stack, b.layer, &b.role, &b.tensor))
    });
    let file_infos = (0..src.files.len())
        .into_par_iter()
        .map(|i| files.info(src, i, hash_in_info))
        .collect::<Result<Vec<_>>>()?;
    let nonfinite = rows.iter().any(|r| r.stats.has_nonfinite());
    let mut warnings = Vec::new();
    if nonfinite {
        let bad: Vec<&str> = rows
            .iter()
            .filter(|r| r.stats.has_nonfinite())
            .map(|r| r.tensor.as_str())
            .take(5)
            .collect();
        warnings.push(format!(
            "NaN or Inf values found (excluded from the statistics, counted in nan/inf) in: {}{}",
            bad.join(", "),
            if rows.iter().filter(|r| r.stats.has_nonfinite()).count() > 5 {
                ", ..."
            } else {
                ""
            }
        ));
    }
    let attention = rows
        .iter()
        .filter(|r| Role::ATTENTION.contains(&r.role))
        .count();
    if attention == 0 && wanted(&Role::AttnQ, &opts.roles) {
        warnings.push(
            "no attention q/k/v/o tensors were recognised: the architecture's names may be missing from the role table (see `nullprint roles`)".into(),
        );
    }
    Ok(Fingerprint {
        schema: SCHEMA.into(),
        schema_version: SCHEMA_VERSION,
        model: ModelInfo {
            name: src.name.clone(),
            source: src.spec.clone(),
            repo_id: src.repo_id.clone(),
            revision: src.revision.clone(),
            format: src.format,
            architecture: plan.architecture.clone(),
            config: plan.config.clone(),
            files: file_infos,
            nullprint_version: crate::build::version().into(),
            command: opts.command.clone(),
            derived: None,
        },
        nonfinite,
        tensors: rows,
        skipped,
        warnings,
        vectors,
        sampling: sample.map(|s| sample::SampleInfo {
            blocks: s.blocks,
            seed: s.seed,
            estimator: sample::ESTIMATOR.into(),
        }),
    })
}

fn file_info(path: &Path, root: &Path, hash: bool) -> Result<FileInfo> {
    let size = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    let rel = path.strip_prefix(root).unwrap_or(path);
    let (sha256, hash_source) = if hash {
        let (sha, source) = match crate::hash::hf_blob_sha256(path) {
            Some(sha) => (sha, crate::hash::HashSource::HfCacheBlobName),
            None => (
                crate::hash::sha256_file(path)?,
                crate::hash::HashSource::Computed,
            ),
        };
        (Some(sha), Some(source))
    } else {
        (None, None)
    };
    Ok(FileInfo {
        path: rel.to_string_lossy().into_owned(),
        remote: None,
        size,
        sha256,
        hash_source,
    })
}

/// Total elements a fingerprint with these options will read (for progress bars).
pub fn planned_elements(plan: &Plan, roles: &Option<Vec<Role>>) -> u64 {
    planned_sampled_elements(plan, roles, None)
}

/// [`planned_elements`] of a fingerprint sampled with `sample`.
pub fn planned_sampled_elements(
    plan: &Plan,
    roles: &Option<Vec<Role>>,
    sample: Option<&Sampling>,
) -> u64 {
    plan.tensors
        .iter()
        .flat_map(|t| t.assignments.iter().map(move |a| (t, a)))
        .filter(|(_, a)| wanted(&a.key.role, roles))
        .map(|(t, a)| {
            let numel = a.ranges.iter().map(|r| r.end - r.start).sum::<u64>();
            let Some(s) = sample else { return numel };
            let len = sample::cluster_len(t.info.block);
            let c = sample::clusters(&a.ranges, len);
            if c.len() as u64 > s.blocks {
                // The drawn clusters are full length except perhaps the last of a range.
                numel.min(s.blocks.saturating_mul(len))
            } else {
                numel
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::source;

    /// Write a safetensors file of 1-D tensors given as (name, dtype, little-endian bytes).
    fn write(path: &Path, tensors: &[(&str, &str, Vec<u8>)]) {
        let mut header = serde_json::Map::new();
        let mut offset = 0;
        for (name, dtype, bytes) in tensors {
            let size = if *dtype == "BF16" { 2 } else { 4 };
            header.insert(
                name.to_string(),
                serde_json::json!({
                    "dtype": dtype,
                    "shape": [bytes.len() / size],
                    "data_offsets": [offset, offset + bytes.len()],
                }),
            );
            offset += bytes.len();
        }
        let mut json = serde_json::to_vec(&header).unwrap();
        json.resize(json.len().div_ceil(8) * 8, b' ');
        let mut f = std::fs::File::create(path).unwrap();
        f.write_all(&(json.len() as u64).to_le_bytes()).unwrap();
        f.write_all(&json).unwrap();
        for (_, _, bytes) in tensors {
            f.write_all(bytes).unwrap();
        }
    }

    /// Weight-like pseudo-random f32 values (xorshift64) on a slow ramp, so that every work
    /// unit has its own mean and the order of merges shows in the last bits.
    fn values(seed: u64, n: usize) -> Vec<f32> {
        let mut s = seed | 1;
        (0..n)
            .map(|i| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.04 + i as f32 * 1e-8
            })
            .collect()
    }

    /// `vectors` keeps the exact values of 1-D norm tensors (and biases when asked), hashed,
    /// and nothing else; without it a fingerprint has no vectors.
    #[test]
    fn vectors_keep_norm_values_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let gain = values(3, 16);
        let bias = values(4, 16);
        let le = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        write(
            &dir.path().join("m.safetensors"),
            &[
                ("model.layers.0.input_layernorm.weight", "F32", le(&gain)),
                ("model.layers.0.input_layernorm.bias", "F32", le(&bias)),
                ("model.layers.0.self_attn.q_proj.bias", "F32", le(&bias)),
            ],
        );
        let src = source::resolve(dir.path().to_str().unwrap()).unwrap();
        let plain = fingerprint(&src, &Options::default()).unwrap();
        assert!(plain.vectors.is_empty());
        assert!(!plain.to_json().contains("vectors"));
        let run = |kinds: &str| {
            let opts = Options {
                vectors: kinds.parse().unwrap(),
                ..Options::default()
            };
            fingerprint(&src, &opts).unwrap()
        };
        let norms = run("norms");
        assert_eq!(norms.vectors.len(), 1);
        assert_eq!(norms.vectors[0].role, Role::AttnNorm);
        assert_eq!(norms.vectors[0].layer, Some(0));
        assert_eq!(norms.vectors[0].values().unwrap(), gain);
        let both = run("norms,biases");
        let roles: Vec<String> = both.vectors.iter().map(|v| v.role.to_string()).collect();
        assert_eq!(roles, ["attn_norm", "attn_norm_bias"]);
        assert_eq!(both.vectors[1].values().unwrap(), bias);
        // the statistics rows are unchanged, and the document round-trips
        assert_eq!(both.tensors, plain.tensors);
        let back = Fingerprint::from_json(&both.to_json()).unwrap();
        assert_eq!(back.vectors, both.vectors);
    }

    /// Tensors spanning several work units, in two shards, give the same bits at 1 to 4
    /// threads.
    #[test]
    fn results_are_bit_identical_at_any_thread_count() {
        let dir = tempfile::tempdir().unwrap();
        let n = 7 * UNIT as usize + 12_345;
        let f32s: Vec<u8> = values(1, n).iter().flat_map(|x| x.to_le_bytes()).collect();
        let bf16s: Vec<u8> = values(2, n + 777)
            .iter()
            .flat_map(|x| ((x.to_bits() >> 16) as u16).to_le_bytes())
            .collect();
        write(
            &dir.path().join("a.safetensors"),
            &[("model.layers.0.self_attn.q_proj.weight", "F32", f32s)],
        );
        write(
            &dir.path().join("b.safetensors"),
            &[("model.layers.0.self_attn.k_proj.weight", "BF16", bf16s)],
        );
        let src = source::resolve(dir.path().to_str().unwrap()).unwrap();
        let run = |threads: usize| -> Vec<[u64; 6]> {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let fp = pool
                .install(|| fingerprint(&src, &Options::default()))
                .unwrap();
            fp.tensors
                .iter()
                .map(|r| {
                    let s = &r.stats;
                    [s.mean, s.std, s.min, s.max, s.abs_mean, s.l2].map(|x| x.unwrap().to_bits())
                })
                .collect()
        };
        let one = run(1);
        assert_eq!(one.len(), 2);
        for threads in [2, 3, 4, 2, 3, 4] {
            assert_eq!(run(threads), one, "{threads} threads");
        }
    }
}

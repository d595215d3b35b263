//! Write a derived model: stream the base's values, add seeded noise, encode in place.
//!
//! **Determinism.** Output tensor `t` is cut into work units of [`UNIT`] elements; unit `u`
//! draws its noise from ChaCha8 seeded with `seed` ([`rand::SeedableRng::seed_from_u64`]) on
//! stream `t · 2³² + u`, standard normals from `rand_distr`, so every byte of the output is a
//! function of the base's values, the recipe and the seed only: the same at any thread count.
//!
//! **Memory.** Base files are opened one at a time (the next after the previous one's map is
//! dropped); a work unit holds its decoded values and their encoding (under 8 MB), so a
//! derivation needs a few units per thread whatever the model size. Bytes go straight to their
//! offset in the output file.

use std::path::{Path, PathBuf};

use fingerprint::engine::{self, Options as EngineOptions};
use fingerprint::format::{self, Values};
use fingerprint::roles::Role;
use fingerprint::source::ModelSource;
use fingerprint::Error as ReadError;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::layout::{self, OutTensor, Source};
use crate::recipe::Recipe;
use crate::writer::{OutDType, SafetensorsWriter};

/// Elements per work unit (a multiple of every ggml block size).
pub const UNIT: u64 = 1 << 20;

/// File name of the derivation record written next to the weights.
pub const MANIFEST: &str = "derivation.json";

/// How to derive.
#[derive(Clone, Debug)]
pub struct Options {
    /// What to do to the weights.
    pub recipe: Recipe,
    /// Seed of the noise.
    pub seed: u64,
    /// Element type of the output.
    pub dtype: OutDType,
    /// Replace an existing derived model in the output directory.
    pub force: bool,
}

/// The derivation record (`derivation.json`): enough to rebuild the model byte for byte.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The recipe.
    pub recipe: Recipe,
    /// Seed of the noise.
    pub seed: u64,
    /// Output element type.
    pub dtype: OutDType,
    /// What the base was given as.
    pub base: String,
    /// The base's weight files (relative to its root) with SHA-256.
    pub base_files: Vec<(String, String)>,
    /// Median std of the base's attention q/k/v/o: the unit of the noise.
    pub reference_std: f64,
    /// Absolute noise std, `rel · reference_std`.
    pub noise_std: f64,
    /// Which base layer each output layer copies.
    pub layer_map: Vec<u32>,
    /// Base tensors left out, with the reason.
    pub skipped: Vec<(String, String)>,
    /// nullprint version that wrote it.
    pub nullprint_version: String,
}

/// What [`derive()`] wrote.
#[derive(Clone, Debug)]
pub struct Derived {
    /// `DIR/model.safetensors`.
    pub weights: PathBuf,
    /// `DIR/config.json`.
    pub config: PathBuf,
    /// `DIR/derivation.json`.
    pub manifest_path: PathBuf,
    /// The record.
    pub manifest: Manifest,
    /// Tensors written.
    pub tensors: usize,
    /// Bytes of the weight file.
    pub bytes: u64,
}

/// Refuse an output directory that holds the base model, or an output file that is (a link
/// to) one of the base's files: `derive BASE -o BASE --force` must not overwrite its input.
fn refuse_input(base: &ModelSource, dir: &Path, outputs: &[&PathBuf]) -> Result<()> {
    let canon = |p: &Path| std::fs::canonicalize(p).ok();
    let inputs: Vec<PathBuf> = base
        .files
        .iter()
        .chain(base.config.iter())
        .chain(base.index.iter().map(|(p, _)| p))
        .cloned()
        .collect();
    if let Some(d) = canon(dir) {
        let base_dirs = std::iter::once(base.root.as_path())
            .chain(inputs.iter().filter_map(|p| p.parent()))
            .filter_map(canon);
        for b in base_dirs {
            if b == d {
                return Err(Error::IntoInput {
                    path: dir.to_path_buf(),
                });
            }
        }
    }
    #[cfg(unix)]
    let id = |p: &Path| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
    };
    #[cfg(not(unix))]
    let id = |p: &Path| std::fs::canonicalize(p).ok();
    let input_ids: Vec<_> = inputs.iter().filter_map(|p| id(p)).collect();
    for o in outputs {
        if id(o).is_some_and(|i| input_ids.contains(&i)) {
            return Err(Error::IntoInput {
                path: o.to_path_buf(),
            });
        }
    }
    Ok(())
}

/// Derive a model from `base` into directory `dir` (created if needed).
pub fn derive(base: &ModelSource, dir: &Path, opts: &Options) -> Result<Derived> {
    let weights = dir.join("model.safetensors");
    let config_path = dir.join("config.json");
    let manifest_path = dir.join(MANIFEST);
    refuse_input(base, dir, &[&weights, &config_path, &manifest_path])?;
    if !opts.force {
        if let Some(p) = [&weights, &config_path, &manifest_path]
            .into_iter()
            .find(|p| p.exists())
        {
            return Err(Error::Exists { path: p.clone() });
        }
    }
    let plan = engine::plan(base)?;
    // One decodability probe per tensor, as the engine does.
    let mut decodable = vec![Vec::new(); base.files.len()];
    for (fi, path) in base.files.iter().enumerate() {
        let reader = format::open(path, base.format)?;
        decodable[fi] = (0..reader.tensors().len())
            .map(|ti| match reader.read(ti, 0..0, &mut |_| {}) {
                Ok(()) => Ok(true),
                Err(ReadError::UnsupportedDtype { .. }) => Ok(false),
                Err(e) => Err(e),
            })
            .collect::<std::result::Result<Vec<bool>, _>>()?;
    }
    let layout = layout::plan(&base.name, &plan, &base.files, &opts.recipe, &|f, t| {
        decodable[f][t]
    })?;

    // The unit of the noise: the base's median attention std, and the base files' hashes.
    let attention = engine::fingerprint(
        base,
        &EngineOptions {
            hash: true,
            roles: Some(Role::ATTENTION.to_vec()),
            ..Default::default()
        },
    )?;
    let mut stds: Vec<f64> = attention
        .tensors
        .iter()
        .filter_map(|r| r.stats.std)
        .filter(|s| s.is_finite())
        .collect();
    if stds.is_empty() {
        return Err(Error::Recipe {
            model: base.name.clone(),
            reason: "no attention q/k/v/o tensors to scale the noise by".into(),
        });
    }
    stds.sort_by(f64::total_cmp);
    let reference_std = median(&stds);
    let noise_std = opts.recipe.rel() * reference_std;

    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let manifest = Manifest {
        recipe: opts.recipe,
        seed: opts.seed,
        dtype: opts.dtype,
        base: base.spec.clone(),
        base_files: attention
            .model
            .files
            .iter()
            .map(|f| (f.path.clone(), f.sha256.clone().unwrap_or_default()))
            .collect(),
        reference_std,
        noise_std,
        layer_map: layout.layer_map.clone(),
        skipped: layout.skipped.clone(),
        nullprint_version: fingerprint::build::version().into(),
    };

    // Removed on any error (its Drop); moved into place only when complete.
    let partial = output::TempFile::new_for(&weights).map_err(|e| Error::io(&weights, e))?;
    let names: Vec<(&str, &[u64])> = layout
        .tensors
        .iter()
        .map(|t| (t.name.as_str(), t.shape.as_slice()))
        .collect();
    let metadata = [
        ("format", "pt".to_owned()),
        ("nullprint_recipe", opts.recipe.to_string()),
        ("nullprint_seed", opts.seed.to_string()),
        ("nullprint_base", base.spec.clone()),
    ];
    let writer = SafetensorsWriter::create(partial.path(), opts.dtype, &names, &metadata)?;
    write_values(base, &layout.tensors, &writer, reference_std, opts)?;
    let bytes = writer.finish()?;
    partial
        .persist(&weights, true)
        .map_err(|e| Error::io(&weights, e))?;

    let mut config = layout.config.clone();
    config["torch_dtype"] = serde_json::json!(match opts.dtype {
        OutDType::Bf16 => "bfloat16",
        OutDType::F16 => "float16",
        OutDType::F32 => "float32",
    });
    write_json(&config_path, &config)?;
    write_json(
        &manifest_path,
        &serde_json::to_value(&manifest).expect("manifest serializes"),
    )?;
    Ok(Derived {
        weights,
        config: config_path,
        manifest_path,
        manifest,
        tensors: layout.tensors.len(),
        bytes,
    })
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        0.5 * (sorted[n / 2 - 1] + sorted[n / 2])
    }
}

/// Fill every output tensor, one base file at a time, work units in parallel.
fn write_values(
    base: &ModelSource,
    tensors: &[OutTensor],
    writer: &SafetensorsWriter,
    reference_std: f64,
    opts: &Options,
) -> Result<()> {
    // Fresh tensors need no base file; group them with the first.
    for fi in 0..base.files.len() {
        let reader = format::open(&base.files[fi], base.format)?;
        let units: Vec<(usize, u64, u64)> = tensors
            .iter()
            .enumerate()
            .filter(|(_, t)| match t.source {
                Source::Base { file, .. } => file == fi,
                Source::Fresh => fi == 0,
            })
            .flat_map(|(ti, t)| {
                let n = t.numel();
                (0..n.div_ceil(UNIT)).map(move |u| (ti, u, n))
            })
            .collect();
        units.into_par_iter().try_for_each_init(
            || (Vec::<f32>::new(), Vec::<u8>::new()),
            |(values, bytes), (ti, u, n)| {
                let t = &tensors[ti];
                let lo = u * UNIT;
                let hi = (lo + UNIT).min(n);
                values.clear();
                match t.source {
                    Source::Base {
                        index,
                        start,
                        block,
                        ..
                    } => {
                        debug_assert_eq!((start + lo) % block, 0);
                        reader.read(index, start + lo..start + hi, &mut |v| match v {
                            Values::F32(x) => values.extend_from_slice(x),
                            Values::F64(x) => values.extend(x.iter().map(|&y| y as f32)),
                        })?;
                    }
                    Source::Fresh => values.resize((hi - lo) as usize, 0.0),
                }
                let sigma = t.noise * reference_std;
                if sigma > 0.0 {
                    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
                    rng.set_stream(((ti as u64) << 32) | u);
                    for v in values.iter_mut() {
                        let z: f64 = rng.sample(StandardNormal);
                        *v = (f64::from(*v) + sigma * z) as f32;
                    }
                }
                bytes.clear();
                opts.dtype.encode(values, bytes);
                writer.write(ti, lo * opts.dtype.size() as u64, bytes)
            },
        )?;
        drop(reader);
    }
    Ok(())
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).expect("JSON serializes");
    text.push('\n');
    output::write_atomic(path, text.as_bytes(), true).map_err(|e| Error::io(path, e))
}

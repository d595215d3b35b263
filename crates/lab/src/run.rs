//! `nullprint lab run`: train what is missing, fingerprint every checkpoint.
//!
//! Layout: checkpoints in `SCRATCH/<model>/` (`model.safetensors`, `config.json`, `lab.json`
//! written last as the commit marker), fingerprints in `BASELINES/<model>.json` with the
//! training record as the sidecar `BASELINES/<model>.lab.json` (recipe, seeds, loss curve,
//! hashes, time), and one line per model appended to `SCRATCH/lab.log`.
//!
//! A checkpoint is reused when its `lab.json` records the same recipe hash and the weights
//! file still hashes to the recorded SHA-256; otherwise it is trained again.
//!
//! Thread count: the recorded `threads` is candle's CPU thread count (`RAYON_NUM_THREADS`).
//! With one thread gemm runs unparallelised; with more, gemm splits the matrices into blocks
//! per thread, which can change the order of floating-point sums; the lab test checks what
//! one and two threads give (see `tests/lab.rs`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;
use serde::Serialize;

use crate::checkpoint;
use crate::data::{sha256_hex, Batches, Corpus};
use crate::derive;
use crate::error::{io, Error, Result};
use crate::model::Model;
use crate::record::{CorpusRecord, Lineage, Record, RECORD, RECORD_SCHEMA};
use crate::spec::{Derivation, DerivedJob, Kind, Lab, ScratchJob};
use crate::train::{train, Step};

/// Where the lab reads and writes.
#[derive(Clone, Debug)]
pub struct Paths {
    /// The corpus file.
    pub corpus: PathBuf,
    /// Checkpoints (outside git).
    pub scratch: PathBuf,
    /// Fingerprints and sidecars (`baselines/lab/NAME`).
    pub baselines: PathBuf,
}

/// Progress callbacks (the CLI draws a bar and prints the log).
pub trait Observer {
    /// A model starts training (`steps` optimiser steps).
    fn start(&mut self, model: &str, steps: usize);
    /// One optimiser step finished.
    fn step(&mut self, model: &str, step: Step);
    /// A line for the log (also appended to `SCRATCH/lab.log`).
    fn line(&mut self, line: &str);
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Models trained now, with seconds each.
    pub trained: Vec<(String, f64)>,
    /// Models whose checkpoint verified and was reused.
    pub reused: Vec<String>,
    /// Fingerprints written.
    pub fingerprinted: Vec<PathBuf>,
}

fn recipe_hash(parts: &impl Serialize) -> String {
    sha256_hex(serde_json::to_string(parts).unwrap_or_default().as_bytes())
}

/// The record of a valid checkpoint in `dir` with this recipe hash, if there is one.
pub fn verified(dir: &Path, recipe: &str) -> Option<Record> {
    let text = std::fs::read_to_string(dir.join(RECORD)).ok()?;
    let r: Record = serde_json::from_str(&text).ok()?;
    (r.recipe_sha256 == recipe && checkpoint::weights_sha256(dir)? == r.weights_sha256).then_some(r)
}

fn write_record(dir: &Path, r: &Record) -> Result<()> {
    let p = dir.join(RECORD);
    let mut json = serde_json::to_vec_pretty(r).unwrap_or_default();
    json.push(b'\n');
    output::write_atomic(&p, &json, true).map_err(io(&p))
}

fn device() -> Device {
    #[cfg(feature = "cuda")]
    if let Ok(d) = Device::new_cuda(0) {
        return d;
    }
    #[cfg(feature = "metal")]
    if let Ok(d) = Device::new_metal(0) {
        return d;
    }
    Device::Cpu
}

/// Train every missing model of `lab`, then fingerprint every checkpoint whose fingerprint is
/// missing (all of them with `refingerprint`).
pub fn run(
    lab: &Lab,
    paths: &Paths,
    command: &[String],
    refingerprint: bool,
    obs: &mut dyn Observer,
) -> Result<Summary> {
    let corpus = Corpus::load(&paths.corpus, Some(&lab.spec.corpus.sha256))?;
    let min = lab.spec.model.seq_len * 4;
    for (what, s) in std::iter::once(("corpus.train", lab.spec.corpus.train))
        .chain(lab.derived.iter().map(|d| ("family.slice", d.slice)))
    {
        let (a, b) = corpus.range(s);
        if b - a < min {
            return Err(Error::Spec {
                file: lab.file.clone(),
                field: what.into(),
                reason: format!("{s:?} is {} bytes of the corpus, need >= {min}", b - a),
            });
        }
    }
    std::fs::create_dir_all(&paths.scratch).map_err(io(&paths.scratch))?;
    std::fs::create_dir_all(&paths.baselines).map_err(io(&paths.baselines))?;
    let dev = device();
    let threads = candle_core::utils::get_num_threads();
    let file_name = paths
        .corpus
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let corpus_record = |slice| CorpusRecord {
        file: file_name.clone(),
        sha256: corpus.sha256.clone(),
        slice,
    };
    let mut summary = Summary::default();
    let log = |obs: &mut dyn Observer, line: String| -> Result<()> {
        obs.line(&line);
        let p = paths.scratch.join("lab.log");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .map_err(io(&p))?;
        writeln!(f, "{line}").map_err(io(&p))
    };
    let name = &lab.spec.name;
    for job in &lab.scratch {
        let dir = paths.scratch.join(&job.name);
        let recipe = recipe_hash(&(job, &corpus.sha256, threads));
        if verified(&dir, &recipe).is_some() {
            summary.reused.push(job.name.clone());
            continue;
        }
        let t = Instant::now();
        let r = train_scratch(
            name,
            job,
            &corpus,
            &dev,
            &dir,
            &recipe,
            threads,
            obs,
            corpus_record(job.slice),
        )?;
        let secs = t.elapsed().as_secs_f64();
        log(
            obs,
            format!(
                "{}\ttrained\t{} layers\t{} steps\t{secs:.1} s\tfinal loss {:.4}",
                job.name,
                job.config.layers,
                job.optim.steps,
                r.losses.last().copied().unwrap_or(f32::NAN)
            ),
        )?;
        summary.trained.push((job.name.clone(), secs));
    }
    for job in &lab.derived {
        let base_dir = paths.scratch.join(&job.base);
        let base_job = lab
            .scratch
            .iter()
            .find(|j| j.name == job.base)
            .ok_or_else(|| Error::Spec {
                file: lab.file.clone(),
                field: format!("family ({}).base", job.family),
                reason: format!("{} is not in this lab", job.base),
            })?;
        let base_recipe = recipe_hash(&(base_job, &corpus.sha256, threads));
        let base = verified(&base_dir, &base_recipe).ok_or_else(|| Error::Checkpoint {
            path: base_dir.join(RECORD),
            reason: "the base checkpoint does not verify".into(),
        })?;
        let recipe = recipe_hash(&(job, &base.weights_sha256, &corpus.sha256, threads));
        if job
            .snapshots
            .iter()
            .all(|s| verified(&paths.scratch.join(&s.0), &recipe).is_some())
        {
            summary
                .reused
                .extend(job.snapshots.iter().map(|s| s.0.clone()));
            continue;
        }
        let t = Instant::now();
        train_derived(
            name,
            job,
            base_job,
            &base,
            &corpus,
            &dev,
            paths,
            &recipe,
            threads,
            obs,
            corpus_record(job.slice),
        )?;
        let secs = t.elapsed().as_secs_f64();
        log(
            obs,
            format!(
                "{}\ttrained\t{:?}\t{} steps\t{secs:.1} s\t{} snapshots",
                job.family,
                job.derivation,
                job.optim.steps,
                job.snapshots.len()
            ),
        )?;
        summary
            .trained
            .extend(job.snapshots.iter().map(|s| (s.0.clone(), secs)));
    }
    for model in lab.model_names() {
        let out = paths.baselines.join(format!("{model}.json"));
        let side = paths.baselines.join(format!("{model}.lab.json"));
        let dir = paths.scratch.join(&model);
        let text = std::fs::read_to_string(dir.join(RECORD)).map_err(io(&dir.join(RECORD)))?;
        let record: Record = serde_json::from_str(&text).map_err(|e| Error::Checkpoint {
            path: dir.join(RECORD),
            reason: e.to_string(),
        })?;
        let stale = std::fs::read_to_string(&side)
            .ok()
            .and_then(|s| serde_json::from_str::<Record>(&s).ok())
            .is_none_or(|r| r.weights_sha256 != record.weights_sha256);
        if out.exists() && !stale && !refingerprint {
            continue;
        }
        let src = fingerprint::source::resolve(&dir.to_string_lossy())?;
        let opts = fingerprint::engine::Options {
            hash: true,
            roles: None,
            command: command.to_vec(),
            progress: None,
            vectors: Default::default(),
        };
        let fp = fingerprint::engine::fingerprint(&src, &opts)?;
        output::write_atomic(&out, fp.to_json().as_bytes(), true).map_err(io(&out))?;
        let mut json = serde_json::to_vec_pretty(&record).unwrap_or_default();
        json.push(b'\n');
        output::write_atomic(&side, &json, true).map_err(io(&side))?;
        summary.fingerprinted.push(out);
    }
    Ok(summary)
}

#[allow(clippy::too_many_arguments)]
fn train_scratch(
    lab: &str,
    job: &ScratchJob,
    corpus: &Corpus,
    dev: &Device,
    dir: &Path,
    recipe: &str,
    threads: usize,
    obs: &mut dyn Observer,
    corpus_record: CorpusRecord,
) -> Result<Record> {
    let model = Model::init(job.config.clone(), job.init_seed, dev)?;
    let mut batches = Batches::new(
        &corpus.bytes,
        corpus.range(job.slice),
        job.optim.batch,
        job.optim.seq_len,
        job.data_seed,
    );
    obs.start(&job.name, job.optim.steps);
    let t = Instant::now();
    let losses = train(
        &job.name,
        &model,
        &mut batches,
        &job.optim,
        &[],
        &mut |s| obs.step(&job.name, s),
        &mut |_, _, _| Ok(()),
    )?;
    let seconds = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(dir.join(RECORD));
    let weights_sha256 = checkpoint::save(dir, &model, true)?;
    let r = Record {
        schema: RECORD_SCHEMA.into(),
        lab: lab.into(),
        model: job.name.clone(),
        family: job.family.clone(),
        kind: job.kind,
        config: job.config.clone(),
        optim: job.optim.clone(),
        init_seed: job.init_seed,
        data_seed: job.data_seed,
        corpus: corpus_record,
        lineage: None,
        steps: job.optim.steps,
        losses,
        weights_sha256,
        recipe_sha256: recipe.into(),
        threads,
        seconds,
        version: env!("CARGO_PKG_VERSION").into(),
    };
    write_record(dir, &r)?;
    Ok(r)
}

#[allow(clippy::too_many_arguments)]
fn train_derived(
    lab: &str,
    job: &DerivedJob,
    base_job: &ScratchJob,
    base: &Record,
    corpus: &Corpus,
    dev: &Device,
    paths: &Paths,
    recipe: &str,
    threads: usize,
    obs: &mut dyn Observer,
    corpus_record: CorpusRecord,
) -> Result<()> {
    let base_model =
        checkpoint::load(&paths.scratch.join(&job.base), base_job.config.clone(), dev)?;
    let values = base_model.values()?;
    let first = job
        .snapshots
        .first()
        .map_or(job.family.clone(), |s| s.0.clone());
    let (config, values) = match job.derivation {
        Derivation::None => (base_job.config.clone(), values),
        Derivation::Upcycle => {
            let e = job.experts.ok_or_else(|| Error::Derive {
                model: first.clone(),
                reason: "upcycling without experts".into(),
            })?;
            derive::upcycle(&first, &base_job.config, &values, e, job.init_seed)?
        }
        Derivation::Grow => {
            derive::grow(&first, &base_job.config, &values, job.insert.unwrap_or(0))?
        }
    };
    let model = Model::from_values(config.clone(), values, dev)?;
    let mut batches = Batches::new(
        &corpus.bytes,
        corpus.range(job.slice),
        job.optim.batch,
        job.optim.seq_len,
        job.data_seed,
    );
    let steps: Vec<usize> = job.snapshots.iter().map(|s| s.2).collect();
    obs.start(&job.family, job.optim.steps);
    let t = Instant::now();
    let mut save = |step: usize, m: &Model, losses: &[f32]| -> Result<()> {
        for (name, fraction, _) in job.snapshots.iter().filter(|s| s.2 == step) {
            let dir = paths.scratch.join(name);
            let _ = std::fs::remove_file(dir.join(RECORD));
            let weights_sha256 = checkpoint::save(&dir, m, true)?;
            write_record(
                &dir,
                &Record {
                    schema: RECORD_SCHEMA.into(),
                    lab: lab.into(),
                    model: name.clone(),
                    family: job.family.clone(),
                    kind: Kind::Continued,
                    config: config.clone(),
                    optim: job.optim.clone(),
                    init_seed: job.init_seed,
                    data_seed: job.data_seed,
                    corpus: corpus_record.clone(),
                    lineage: Some(Lineage {
                        base: job.base.clone(),
                        base_sha256: base.weights_sha256.clone(),
                        derivation: job.derivation,
                        fraction: *fraction,
                    }),
                    steps: step,
                    losses: losses.to_vec(),
                    weights_sha256,
                    recipe_sha256: recipe.into(),
                    threads,
                    seconds: t.elapsed().as_secs_f64(),
                    version: env!("CARGO_PKG_VERSION").into(),
                },
            )?;
        }
        Ok(())
    };
    train(
        &job.family,
        &model,
        &mut batches,
        &job.optim,
        &steps,
        &mut |s| obs.step(&job.family, s),
        &mut save,
    )?;
    Ok(())
}

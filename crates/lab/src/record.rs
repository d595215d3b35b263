//! The training record of one lab checkpoint: `lab.json` in the checkpoint directory and the
//! sidecar `<model>.lab.json` next to its fingerprint (recipe, seeds, loss curve, hashes, time).
//! Reading records needs no training backend.

use serde::{Deserialize, Serialize};

use crate::config::ModelConfig;
use crate::optim::Optim;
use crate::spec::{Derivation, Kind};

/// The sidecar schema tag.
pub const RECORD_SCHEMA: &str = "nullprint-lab-record/1";
/// Name of the training record inside a checkpoint directory.
pub const RECORD: &str = "lab.json";

/// What a derived model comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lineage {
    /// The base model.
    pub base: String,
    /// SHA-256 of the base's weights.
    pub base_sha256: String,
    /// The derivation applied to it before training.
    pub derivation: Derivation,
    /// Continued-training steps as a fraction of the base's steps.
    pub fraction: f64,
}

/// The training record of one checkpoint (`lab.json`, and the sidecar next to its fingerprint).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// [`RECORD_SCHEMA`].
    pub schema: String,
    /// The lab's name.
    pub lab: String,
    /// The model.
    pub model: String,
    /// Its family and the family's kind.
    pub family: String,
    /// `independent`, `same-init`, `same-data` or `continued`.
    pub kind: Kind,
    /// Architecture.
    pub config: ModelConfig,
    /// Optimiser of this run (for derived models: of the continued training).
    pub optim: Optim,
    /// Initialisation seed (derived: the router seed of an upcycling).
    pub init_seed: u64,
    /// Data-order seed.
    pub data_seed: u64,
    /// Corpus file name, SHA-256 and the slice read.
    pub corpus: CorpusRecord,
    /// For derived models: the base and how far it was trained on.
    pub lineage: Option<Lineage>,
    /// Steps trained (this run; a derived model's base has its own record).
    pub steps: usize,
    /// Training loss (nats per byte) of every step of this run.
    pub losses: Vec<f32>,
    /// SHA-256 of `model.safetensors`.
    pub weights_sha256: String,
    /// SHA-256 of everything above that determines the weights (the recipe hash).
    pub recipe_sha256: String,
    /// candle CPU threads used.
    pub threads: usize,
    /// Wall-clock seconds of training (the whole run for a derived family's snapshots).
    pub seconds: f64,
    /// `nullprint-lab` version.
    pub version: String,
}

/// The corpus as a record names it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CorpusRecord {
    /// File name.
    pub file: String,
    /// SHA-256.
    pub sha256: String,
    /// Slice `[from, to)` as fractions.
    pub slice: [f64; 2],
}

//! The seed lab: chance measured directly.
//!
//! Small Llama-style decoders are trained from scratch with one recipe and different seeds
//! (the same-recipe null, lineage known by construction), and derived models are trained on
//! from one trained base (the positive controls): plain continued training, dense → MoE
//! upcycling, depth growth. Training uses candle (CPU by default; `cuda` / `metal` features).
//! Checkpoints are `model.safetensors` + `config.json` in the Llama / Mixtral layout, so every
//! nullprint command reads them like any model; each is fingerprinted into
//! `baselines/lab/NAME/` with its training record as a sidecar, and the weight-level tests
//! of its pairs go to `baselines/lab/NAME/trace.json` ([`weight_tests`]).
//!
//! Training (and the candle dependency) is behind the default feature `train`; without it the
//! crate reads lab files, training records and their strata ([`strata`]) for the analysis.
//!
//! Determinism: initialisation and data order come from separate ChaCha seeds; for one recipe,
//! seed and thread count the checkpoint is identical bit for bit (tested). See [`run`] for what
//! the thread count changes.
#![deny(missing_docs)]

#[cfg(feature = "train")]
pub mod checkpoint;
pub mod config;
pub mod data;
#[cfg(feature = "train")]
pub mod derive;
pub mod error;
#[cfg(feature = "train")]
pub mod model;
pub mod optim;
pub mod record;
#[cfg(feature = "train")]
pub mod run;
pub mod spec;
pub mod strata;
#[cfg(feature = "train")]
pub mod train;
pub mod weight_tests;

pub use config::{Experts, ModelConfig};
pub use error::{Error, Result};
#[cfg(feature = "train")]
pub use model::Model;

//! The seed lab: chance measured directly.
//!
//! Small Llama-style decoders are trained from scratch with one recipe and different seeds
//! (the same-recipe null, lineage known by construction), and derived models are trained on
//! from one trained base (the positive controls): plain continued training, dense → MoE
//! upcycling, depth growth. Training uses candle (CPU by default; `cuda` / `metal` features).
//! Checkpoints are `model.safetensors` + `config.json` in the Llama / Mixtral layout, so every
//! nullprint command reads them like any model; each is fingerprinted into
//! `baselines/lab/NAME/` with its training record as a sidecar.
//!
//! Determinism: initialisation and data order come from separate ChaCha seeds; for one recipe,
//! seed and thread count the checkpoint is identical bit for bit (tested). See [`run`] for what
//! the thread count changes.
#![deny(missing_docs)]

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod derive;
pub mod error;
pub mod model;
pub mod run;
pub mod spec;
pub mod strata;
pub mod train;

pub use config::{Experts, ModelConfig};
pub use error::{Error, Result};
pub use model::Model;

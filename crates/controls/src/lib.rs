//! Positive controls built from real weights.
//!
//! A lineage test is only worth its false-positive rate if it also detects real derivation.
//! This crate takes a real checkpoint (any format the fingerprint crate reads, quantized GGUF
//! included), applies a [`Recipe`] to its *weights* — fine-tuning noise, dense → MoE
//! upcycling, depth up-scaling by duplicated layers, layer pruning — and writes the derived
//! model as a Hugging Face style directory (`model.safetensors`, `config.json`,
//! `derivation.json`) that the fingerprint crate reads like any other model.
//!
//! The data flow: [`fingerprint::engine::plan`] maps the base's tensors to canonical role
//! keys; [`layout`] decides which output tensor comes from which base tensor (and which base
//! layer each output layer copies) and names it the Llama / Mixtral / Qwen2-MoE way;
//! [`derive()`] streams the base values in work units, adds seeded Gaussian noise and encodes
//! them straight into their place in the output file ([`writer`]). Memory stays at a few work
//! units whatever the model size, and the output is identical byte for byte for a seed at any
//! thread count.
#![deny(missing_docs)]

pub mod derive;
pub mod error;
pub mod layout;
pub mod recipe;
pub mod writer;

pub use derive::{derive, Derived, Options};
pub use error::{Error, Result};
pub use recipe::Recipe;

//! Read model weights, map tensors to canonical roles and compute per-tensor statistics.
//!
//! The data flows one way: [`source::resolve`] finds the files of a model, a format reader
//! ([`format`]) exposes each file's tensors and decodes their values in chunks, the role table
//! ([`roles`]) maps tensor names to canonical `(stack, layer, role, expert)` keys, and
//! [`engine`] streams every selected tensor through [`stats::Accumulator`] to produce a
//! [`Fingerprint`].
#![deny(missing_docs)]

pub mod build;
pub mod cache;
pub mod config;
pub mod dtype;
pub mod engine;
pub mod error;
pub mod format;
pub mod hash;
#[cfg(feature = "download")]
pub mod hub;
#[cfg(feature = "remote")]
pub mod remote;
pub mod roles;
pub mod sample;
pub mod schema;
pub mod source;
pub mod stats;
pub mod vectors;

pub use error::{Error, Result};
pub use roles::{Expert, Role, RoleKey};
pub use schema::{DerivedFrom, Fingerprint, ModelInfo, RemoteRead, StdRow, StdRows, TensorRow};
pub use stats::{Accumulator, TensorStats};
pub use vectors::{VectorKinds, VectorRow};

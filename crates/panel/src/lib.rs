//! Panels at internet scale: a manifest of hosted checkpoints with lineage labels
//! ([`manifest`]), and [`build::build`], which fingerprints them where they are hosted
//! (HTTP range reads, exact or sampled) into a panel directory that every null reads as is:
//! one `<id>.json` fingerprint per model and an `index.toml` with their lineage labels.
#![deny(missing_docs)]

pub mod build;
pub mod error;
pub mod manifest;

pub use build::{build, BuildOptions, Event, Summary};
pub use error::{Error, Result};
pub use manifest::{Entry, Manifest, Relation};

//! What can go wrong reading a manifest or building a panel; every variant names the file or
//! the manifest entry.

use std::path::PathBuf;

/// A panel error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is not valid TOML of the manifest's shape.
    #[error("{path}: not a panel manifest: {source}")]
    Syntax {
        /// The manifest.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A manifest entry fails a check.
    #[error("{path}: model[{index}] ({id}): {field}: {reason}")]
    Entry {
        /// The manifest.
        path: PathBuf,
        /// Position of the entry.
        index: usize,
        /// Its id.
        id: String,
        /// The field at fault.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The hosted checkpoint does not match its entry (depth, hidden size).
    #[error("{id} ({spec}): {reason}")]
    Mismatch {
        /// The entry's id.
        id: String,
        /// What was read.
        spec: String,
        /// What differs.
        reason: String,
    },
    /// Reading or fingerprinting the checkpoint failed.
    #[error("{id}: {source}")]
    Fingerprint {
        /// The entry's id.
        id: String,
        /// The fingerprint crate's error.
        #[source]
        source: fingerprint::Error,
    },
    /// `--shard I/N` is out of range.
    #[error("shard {index}/{count}: expected 0 <= I < N")]
    Shard {
        /// I.
        index: usize,
        /// N.
        count: usize,
    },
}

/// A panel result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

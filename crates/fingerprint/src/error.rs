//! The one error type of the fingerprint crate: one variant per check, each naming the file
//! (and the tensor, where there is one) and what was expected.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while resolving, parsing or reading a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system error while opening, mapping or reading a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The model argument names nothing that can be read.
    #[error("{spec}: {reason}")]
    NotFound {
        /// What the user gave (path, repo id, ...).
        spec: String,
        /// What was tried.
        reason: String,
    },
    /// The file is shorter than its header says it must be.
    #[error("{path}: truncated: {what} needs {needed} bytes but the file has {actual}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// What was being read.
        what: String,
        /// Bytes the header requires.
        needed: u64,
        /// Bytes actually present.
        actual: u64,
    },
    /// A header or metadata structure is malformed.
    #[error("{path}: invalid header: {reason}")]
    InvalidHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A tensor's own description is inconsistent (offsets, shape, size).
    #[error("{path}: tensor {tensor}: {reason}")]
    InvalidTensor {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// What is wrong.
        reason: String,
    },
    /// The tensor's data type cannot be turned into real numbers by this reader.
    #[error("{path}: tensor {tensor}: unsupported dtype {dtype}")]
    UnsupportedDtype {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// The dtype as the file spells it.
        dtype: String,
    },
    /// The file's container format is not one nullprint reads.
    #[error("{path}: unrecognised format: {reason}")]
    UnknownFormat {
        /// The file.
        path: PathBuf,
        /// What was seen.
        reason: String,
    },
    /// Bytes that are not a nullprint fingerprint (or one of a newer schema); the caller names
    /// the file.
    #[error("not a nullprint fingerprint: {reason}")]
    NotFingerprint {
        /// What is wrong.
        reason: String,
    },
    /// A JSON side file (config.json, index.json, manifest) could not be parsed.
    #[error("{path}: {reason}")]
    InvalidJson {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
    /// A tensor listed by an index is absent from the shard it points to.
    #[error("{path}: tensor {tensor} listed in the index is missing from shard {shard}")]
    MissingTensor {
        /// The index file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// The shard the index names.
        shard: String,
    },
    /// A fused tensor could not be split into its roles with the given configuration.
    #[error("{path}: tensor {tensor}: cannot split fused projection: {reason}")]
    FusedSplit {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// Why.
        reason: String,
    },
    /// A file read over HTTP could not be read: the network, the server, or a response that
    /// does not match its request. The URL never carries a credential.
    #[error("{url}: {reason}")]
    Http {
        /// The URL asked for (before redirects).
        url: String,
        /// What went wrong (naming the tensor when the bytes were a tensor's).
        reason: String,
    },
    /// Writing an output (cache entry, fingerprint) failed.
    #[error("{path}: {reason}")]
    Output {
        /// The output path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl Error {
    /// Wrap an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Shorthand for [`Error::InvalidHeader`].
    pub fn header(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::InvalidHeader {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::InvalidTensor`].
    pub fn tensor(
        path: impl Into<PathBuf>,
        tensor: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Error::InvalidTensor {
            path: path.into(),
            tensor: tensor.into(),
            reason: reason.into(),
        }
    }
}

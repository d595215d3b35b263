//! Errors of the controls crate. Each names the file (and the tensor) it is about.

use std::path::PathBuf;

/// A derivation that could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading the base model failed.
    #[error(transparent)]
    Read(#[from] fingerprint::Error),
    /// Writing the derived model failed.
    #[error("{path}: {source}")]
    Io {
        /// The file being written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A recipe or element type that does not parse.
    #[error("{reason}")]
    Parse {
        /// What was being parsed (`recipe`, `dtype`).
        what: &'static str,
        /// What is wrong, with the input quoted.
        reason: String,
    },
    /// The output would be written into the base model's own directory or over one of its
    /// files.
    #[error("{path}: is where the base model is; write the derived model elsewhere")]
    IntoInput {
        /// The output directory or file.
        path: PathBuf,
    },
    /// The output exists and overwriting was not asked for.
    #[error("{path}: exists; refusing to replace it unless asked to")]
    Exists {
        /// The file that would be replaced.
        path: PathBuf,
    },
    /// A base tensor this crate cannot place in the derived model.
    #[error("{path}: tensor {tensor}: {reason}")]
    Unsupported {
        /// The base file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// Why.
        reason: String,
    },
    /// The recipe does not fit this base model.
    #[error("{model}: {reason}")]
    Recipe {
        /// The base model.
        model: String,
        /// Why.
        reason: String,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

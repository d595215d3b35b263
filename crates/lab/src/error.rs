//! Errors of the lab crate. Each names the file, model or field it is about.

use std::path::PathBuf;

/// A lab step that could not be done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A tensor operation failed (shape mismatch, backend error).
    #[cfg(feature = "train")]
    #[error("{context}: {source}")]
    Candle {
        /// What was being done (the model and the step).
        context: String,
        /// The candle error.
        #[source]
        source: Box<candle_core::Error>,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A lab file that does not parse or whose values are out of range.
    #[error("{file}: {field}: {reason}")]
    Spec {
        /// The lab file.
        file: PathBuf,
        /// The field (`recipe.hidden`, `family[2].layers`, ...).
        field: String,
        /// What is wrong, with the value.
        reason: String,
    },
    /// The training corpus is missing, too short or not the pinned file.
    #[error("{path}: {reason}")]
    Corpus {
        /// The corpus file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A checkpoint that cannot be read back as the model it claims to be.
    #[error("{path}: {reason}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong (the tensor and its shape).
        reason: String,
    },
    /// The training loss stopped being a finite number.
    #[error("{model}: training diverged at step {step} (loss {loss})")]
    Diverged {
        /// The model being trained.
        model: String,
        /// The step (1-based).
        step: usize,
        /// The loss at that step.
        loss: f32,
    },
    /// A derivation that cannot be applied to its base (e.g. upcycling an MoE model).
    #[error("{model}: {reason}")]
    Derive {
        /// The derived model.
        model: String,
        /// What is wrong.
        reason: String,
    },
    /// Scoring lab fingerprints failed (curves or measure).
    #[error("{path}: {source}")]
    Analysis {
        /// The fingerprint or directory being scored.
        path: PathBuf,
        /// The analysis error.
        #[source]
        source: Box<null::Error>,
    },
    /// Fingerprinting a checkpoint failed.
    #[error(transparent)]
    Fingerprint(Box<fingerprint::Error>),
    /// A weight-level test of checkpoints failed.
    #[cfg(feature = "train")]
    #[error("{what}: {source}")]
    Trace {
        /// The checkpoint or pair being tested.
        what: String,
        /// The test's error.
        #[source]
        source: Box<trace::Error>,
    },
}

impl From<fingerprint::Error> for Error {
    fn from(e: fingerprint::Error) -> Self {
        Error::Fingerprint(Box::new(e))
    }
}

/// The lab's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// Attach a context to a candle result.
#[cfg(feature = "train")]
pub(crate) trait Context<T> {
    /// Wrap a candle error with what was being done.
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

#[cfg(feature = "train")]
impl<T> Context<T> for candle_core::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Candle {
            context: context(),
            source: Box::new(source),
        })
    }
}

/// An I/O error on `path`.
pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

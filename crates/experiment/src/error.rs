//! The one error type of the experiment crate: every variant names the file it concerns.

use std::path::PathBuf;

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong loading or running an experiment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A TOML file does not parse into its schema (the message has the line and the field).
    #[error("{path}: not {what}: {source}")]
    Schema {
        /// The file.
        path: PathBuf,
        /// What it should have been ("an experiment file", "a baselines index", ...).
        what: &'static str,
        /// The parser's error (boxed: it is large).
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A field has a value outside its allowed range or form.
    #[error("{path}: {field}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The field (`nulls.alpha`, `model[3].id`, ...).
        field: String,
        /// The rule it breaks.
        reason: String,
    },
    /// An input the experiment names is absent.
    #[error("{path}: missing; {hint}")]
    Missing {
        /// The file.
        path: PathBuf,
        /// How to make it.
        hint: &'static str,
    },
    /// A fingerprint that does not match what the index says it is.
    #[error("{path}: {reason}")]
    Stale {
        /// The fingerprint file.
        path: PathBuf,
        /// What differs, and how to rebuild it.
        reason: String,
    },
    /// A fingerprint (file or model) could not be read.
    #[error("{what}: {source}")]
    Fingerprint {
        /// The file or model.
        what: String,
        /// The underlying error.
        #[source]
        source: fingerprint::Error,
    },
    /// A statistic could not be computed (the message says which and why).
    #[error("{what}: {source}")]
    Statistic {
        /// What was being computed.
        what: String,
        /// The underlying error.
        #[source]
        source: null::Error,
    },
    /// The lab's fingerprints or records could not be read or scored.
    #[error("lab {dir}: {source}")]
    Lab {
        /// The lab's fingerprint directory.
        dir: PathBuf,
        /// The underlying error.
        #[source]
        source: Box<lab::Error>,
    },
    /// A statistic failed outside any named step.
    #[error(transparent)]
    Null(#[from] null::Error),
    /// The report did not validate or could not be written.
    #[error(transparent)]
    Report(#[from] report::Error),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(
        path: impl Into<PathBuf>,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Error::Invalid {
            path: path.into(),
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn statistic(what: impl Into<String>) -> impl FnOnce(null::Error) -> Self {
        let what = what.into();
        move |source| Error::Statistic { what, source }
    }
}

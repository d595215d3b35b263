//! The one error type of the report crate: one variant per check, each naming the field or
//! file concerned.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while validating, rendering or writing a report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The report's schema version is not the one this crate renders.
    #[error("report schema version {found}, this nullprint renders version {expected}")]
    SchemaVersion {
        /// Version in the report.
        found: u32,
        /// Version this crate writes.
        expected: u32,
    },
    /// A number that must be finite is NaN or infinite (use `None` for undefined values).
    #[error("{field}: value {value} is not finite; undefined values must be None")]
    NonFinite {
        /// Path of the field, e.g. `computed.nulls[1].interval.lo`.
        field: String,
        /// The value as printed by Rust.
        value: String,
    },
    /// A required text is empty.
    #[error("{field}: must not be empty")]
    Empty {
        /// Path of the field.
        field: String,
    },
    /// A value lies outside the range its meaning allows.
    #[error("{field}: {value} is outside {range}")]
    OutOfRange {
        /// Path of the field.
        field: String,
        /// The value.
        value: String,
        /// The allowed range.
        range: String,
    },
    /// A name used as a file-name stem has characters other than `[a-z0-9_-]`.
    #[error("{field}: {name:?} is not a valid file-name stem (use a-z, 0-9, '-' and '_')")]
    BadName {
        /// Path of the field.
        field: String,
        /// The name.
        name: String,
    },
    /// Two items that must have distinct names share one.
    #[error("{field}: name {name:?} is used twice")]
    Duplicate {
        /// Path of the field.
        field: String,
        /// The name.
        name: String,
    },
    /// A reference (published id, null name, model name) names nothing.
    #[error("{field}: {name:?} refers to no {what}")]
    UnknownReference {
        /// Path of the field.
        field: String,
        /// The name referred to.
        name: String,
        /// What kind of item was looked for.
        what: &'static str,
    },
    /// Two lengths that must agree do not.
    #[error("{field}: length {found}, expected {expected}")]
    Length {
        /// Path of the field.
        field: String,
        /// Length found.
        found: usize,
        /// Length expected.
        expected: usize,
    },
    /// Two fields that must agree do not (e.g. a threshold and its published source).
    #[error("{field}: {reason}")]
    Inconsistent {
        /// Path of the field.
        field: String,
        /// What disagrees.
        reason: String,
    },
    /// Data too large to draw legibly or safely.
    #[error("{field}: {found} items, at most {max} can be drawn")]
    TooLarge {
        /// Path of the field.
        field: String,
        /// Items found.
        found: usize,
        /// The cap.
        max: usize,
    },
    /// The plotting library failed while drawing a figure.
    #[error("figure {figure}: drawing failed: {message}")]
    Plot {
        /// Figure name.
        figure: String,
        /// The plotting library's message.
        message: String,
    },
    /// Writing a CSV table failed.
    #[error("{file}: {source}")]
    Csv {
        /// The CSV file name.
        file: String,
        /// The underlying error.
        #[source]
        source: csv::Error,
    },
    /// Serializing or parsing report JSON failed.
    #[error("report.json: {0}")]
    Json(#[from] serde_json::Error),
    /// The report directory already holds a file that would be overwritten.
    #[error("{path}: exists; refusing to overwrite the report unless asked to")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// A path the writer will not write through or over.
    #[error("{path}: {reason}")]
    Refused {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// An operating-system error while writing the report.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

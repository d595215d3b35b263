//! The one error type of the null crate: one variant per check, each naming the model, role,
//! file or argument concerned and the numbers involved.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while extracting curves, comparing them or computing a null.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A fingerprint has no rows for a requested role (in the chosen stack).
    #[error("{model}: no {role} rows{stack}")]
    MissingRole {
        /// Model name.
        model: String,
        /// Role key, e.g. `attn_q` or `mlp_up@mean`.
        role: String,
        /// The stack that was searched, as text (empty when not stack-specific).
        stack: String,
    },
    /// A role's layers are not contiguous from 0.
    #[error("{model}: {role} has no row for layer {layer} (layers present: {present})")]
    MissingLayer {
        /// Model name.
        model: String,
        /// Role key.
        role: String,
        /// The first missing layer.
        layer: u32,
        /// How many layers were present.
        present: usize,
    },
    /// Two rows claim the same role and layer.
    #[error("{model}: {role} has {count} rows for layer {layer}")]
    DuplicateLayer {
        /// Model name.
        model: String,
        /// Role key.
        role: String,
        /// The layer.
        layer: u32,
        /// Rows found for it.
        count: usize,
    },
    /// A row has no usable value (no finite element, or too few elements for the ddof).
    #[error("{model}: {role} layer {layer} has no {what}")]
    MissingValue {
        /// Model name.
        model: String,
        /// Role key.
        role: String,
        /// The layer.
        layer: u32,
        /// What was asked for, e.g. `std (ddof 1)`.
        what: String,
    },
    /// A curve value is NaN or infinite.
    #[error("{model}: {role} position {index} is not finite ({value})")]
    NonFinite {
        /// Model name.
        model: String,
        /// Role key.
        role: String,
        /// Position in the curve.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A curve (or aligned pair of curves) is too short for the measure.
    #[error("{model}: {role} has {layers} layers; {what} needs at least {needed}")]
    TooFewLayers {
        /// Model name (or `pair` for an aligned pair).
        model: String,
        /// Role key.
        role: String,
        /// Layers present.
        layers: usize,
        /// Layers needed.
        needed: usize,
        /// What needs them.
        what: String,
    },
    /// A curve (or a transformed curve: residuals, differences, ranks) has no spread, so no
    /// correlation is defined.
    #[error("{model}: {role} has zero spread{after}; correlation is undefined")]
    ZeroSpread {
        /// Model name (or `pair`).
        model: String,
        /// Role key.
        role: String,
        /// The transformation after which the spread vanished, e.g. ` after detrending`.
        after: String,
    },
    /// A curve set holds no roles at all.
    #[error("{model}: no curves (the role set is empty)")]
    NoRoles {
        /// Model name.
        model: String,
    },
    /// The two curve sets do not hold the same roles.
    #[error("role {role} is in {present_in} but not in {missing_in}")]
    RoleMismatch {
        /// The role.
        role: String,
        /// The model that has it.
        present_in: String,
        /// The model that lacks it.
        missing_in: String,
    },
    /// A statistic received fewer values than it needs.
    #[error("{what}: {n} values, at least {needed} needed")]
    TooFewValues {
        /// The statistic.
        what: String,
        /// Values given.
        n: usize,
        /// Values needed.
        needed: usize,
    },
    /// A statistic received a NaN or infinite input.
    #[error("{what}: input holds a non-finite value ({value})")]
    NonFiniteInput {
        /// The statistic.
        what: String,
        /// The offending value.
        value: f64,
    },
    /// An argument is out of its valid range.
    #[error("{what} = {value}: {reason}")]
    InvalidArgument {
        /// The argument.
        what: String,
        /// Its value, as text.
        value: String,
        /// The rule it breaks.
        reason: String,
    },
    /// A size exceeds a documented cap.
    #[error("{what}: {n} exceeds the limit of {max}")]
    TooLarge {
        /// What was counted.
        what: String,
        /// The count.
        n: u64,
        /// The cap.
        max: u64,
    },
    /// A null distribution has no members, so no p-value can be formed.
    #[error("null {name}: no null values ({reason})")]
    EmptyNull {
        /// The null's name.
        name: String,
        /// Why it is empty.
        reason: String,
    },
    /// A text value (measure, null, role selector) could not be parsed.
    #[error("{what} {value:?}: {reason}")]
    Parse {
        /// What was being parsed.
        what: String,
        /// The text.
        value: String,
        /// What was expected.
        reason: String,
    },
    /// An input file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A CSV input (similarity matrix or labels) is malformed.
    #[error("{source_name}: line {line}: {reason}")]
    Csv {
        /// The file (or `<input>`).
        source_name: String,
        /// 1-based line number (0 when unknown).
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// A similarity matrix is not symmetric.
    #[error("{source_name}: matrix[{a}][{b}] = {ab} but matrix[{b}][{a}] = {ba}")]
    Asymmetric {
        /// The file.
        source_name: String,
        /// Row model.
        a: String,
        /// Column model.
        b: String,
        /// Value at (a, b).
        ab: f64,
        /// Value at (b, a).
        ba: f64,
    },
    /// A model's `derived_from` chain loops.
    #[error("lineage labels: the derived_from chain of {model} loops back to itself")]
    LineageCycle {
        /// A model on the cycle.
        model: String,
    },
    /// Labels contradict each other.
    #[error("lineage labels: {reason}")]
    Labels {
        /// The contradiction.
        reason: String,
    },
    /// A labels file names a model that is not among the models it labels (a typo would
    /// otherwise leave the real model's pairs silently of unknown relation).
    #[error("{source_name}: line {line}: model id {id:?} is not one of the {n} models labelled ({examples})")]
    UnknownLabelId {
        /// The labels file.
        source_name: String,
        /// 1-based line of its first mention.
        line: u64,
        /// The id.
        id: String,
        /// How many models are labelled.
        n: usize,
        /// A few of their ids.
        examples: String,
    },
    /// A per-model labels file has no row for a model it labels.
    #[error("{source_name}: no row for model {id:?}; add one (an empty root and derived_from mark its lineage unknown)")]
    UnlabelledModel {
        /// The labels file.
        source_name: String,
        /// The model.
        id: String,
    },
    /// A fingerprint file could not be parsed.
    #[error("{path}: {reason}")]
    Fingerprint {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
}

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub(crate) fn invalid(what: &str, value: impl ToString, reason: &str) -> Self {
        Error::InvalidArgument {
            what: what.to_owned(),
            value: value.to_string(),
            reason: reason.to_owned(),
        }
    }
}

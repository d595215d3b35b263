//! The report's data model: one schema-versioned serde struct that the caller fills and the
//! renderers only format.
//!
//! Two kinds of number live here and are kept apart by type: [`Published`] figures (quoted from
//! a source, always with a [`Citation`]) and everything under [`Computed`] or in figure data
//! (computed by nullprint from the inputs listed in [`Provenance`]). A value that is not
//! defined (a p-value with n = 0, an AUC without positives) is `None`, never NaN; plain `f64`
//! fields must be finite, which [`Report::validate`](crate::Report::validate) checks.

use serde::{Deserialize, Serialize};

/// The schema version written into every report; bump it when a field changes meaning.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything a report shows. Same `Report` in, byte-identical files out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Must equal [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Title shown at the top of every rendering.
    pub title: String,
    /// An optional notice shown prominently above everything else (e.g. "demo data").
    pub banner: Option<String>,
    /// Where the computed numbers came from: tool version, commands, seeds, input hashes.
    pub provenance: Provenance,
    /// The claim under test.
    pub claim: Claim,
    /// The plain-language verdict shown first.
    pub verdict: Verdict,
    /// Further published figures (context, rules of thumb, counter-examples), each cited.
    pub published: Vec<Published>,
    /// Results computed by nullprint.
    pub computed: Computed,
    /// Figures, in display order.
    pub figures: Vec<Figure>,
    /// Extra tables the caller adds without changing this crate, in display order.
    pub tables: Vec<Table>,
}

/// Provenance of every computed number in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// The tool that computed the numbers, e.g. "nullprint".
    pub tool: String,
    /// Its version, e.g. "0.1.0 (git 73d89b9)".
    pub version: String,
    /// The command line that produced this report, one argument per element.
    pub command_line: Vec<String>,
    /// Exact shell commands a reader runs to reproduce the report, in order.
    pub reproduce: Vec<String>,
    /// Every random seed used, with what it seeded.
    pub seeds: Vec<Seed>,
    /// Every input file, with its SHA-256.
    pub inputs: Vec<InputFile>,
    /// Further versions or settings worth recording (rustc, OS, thread count ...).
    pub environment: Vec<KeyValue>,
    /// When the report was generated (free text, e.g. RFC 3339). Shown, but excluded from the
    /// content digest so that reruns of the same analysis cite the same digest.
    pub timestamp: Option<String>,
}

/// One random seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seed {
    /// What the seed drives, e.g. "circular-shift null".
    pub label: String,
    /// The seed.
    pub value: u64,
}

/// One input file of the analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputFile {
    /// Path as given on the command line (relative to the repository root where possible).
    pub path: String,
    /// Lower-case hex SHA-256 of the file's bytes (64 characters).
    pub sha256: String,
    /// File size in bytes, when known.
    pub bytes: Option<u64>,
    /// What the file is, e.g. "baseline fingerprint of gpt2".
    pub description: String,
}

/// A free-form key/value pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyValue {
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
}

/// Where a published figure comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Citation {
    /// Human-readable source, e.g. "HonestAGI report, July 2025, as quoted by Reuters".
    pub source: String,
    /// A link, when one exists.
    pub url: Option<String>,
}

/// A figure quoted from a source, never computed here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Published {
    /// Short key that figure marks and rate rows refer to, e.g. "claim" or "rule_of_thumb".
    pub id: String,
    /// What the figure is, e.g. "Pangu Pro MoE vs Qwen2.5-14B, mean attention-std correlation".
    pub label: String,
    /// A few words drawn next to its mark on figures, e.g. "claimed r".
    pub short_label: String,
    /// The numeric value, when the figure is a number (used for marks in figures).
    pub value: Option<f64>,
    /// The figure as worded in the source (e.g. "below about 0.7"), shown instead of `value`.
    pub text: Option<String>,
    /// The source.
    pub citation: Citation,
}

/// The claim under test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    /// The claim in one or two sentences.
    pub text: String,
    /// The claimed statistic as published, with its citation.
    pub statistic: Published,
}

/// Most findings a verdict may list: the verdict is read in one minute.
pub const MAX_FINDINGS: usize = 5;

/// The plain-language verdict: the answer in one sentence, at most [`MAX_FINDINGS`] short
/// findings, then the long explanation in three parts (all three required and non-empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The answer in one sentence, its class first (empty in reports that predate it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub answer: String,
    /// The findings behind the answer, each with its number and where it comes from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// The headline figure, shown with the answer: the name of the report's first figure
    /// (so it keeps the number 1 wherever it is shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub figure: Option<String>,
    /// What was claimed.
    pub claimed: String,
    /// What the nulls say (p-values, the null, its assumptions).
    pub nulls_say: String,
    /// What the test cannot say.
    pub cannot_say: String,
}

/// One finding of a verdict: one or two lines with its number, and the table or figure behind
/// it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The finding.
    pub text: String,
    /// Where it comes from: a figure (`fig-NAME`) or table (`table-NAME`) of the report, or a
    /// section id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<String>,
    /// How the link reads ("Figure 1", "nulls table").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor_label: Option<String>,
}

/// A value marked on a figure or tested by a null: either a published figure (by id) or a
/// number computed by nullprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Mark {
    /// A published figure, referenced by [`Published::id`] (the claim's statistic included).
    Published {
        /// The id.
        id: String,
    },
    /// A computed value.
    Computed {
        /// What it is, e.g. "observed: gpt2 vs bert-base".
        label: String,
        /// The value.
        value: f64,
    },
}

/// All computed results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Computed {
    /// Null-distribution tests.
    pub nulls: Vec<NullResult>,
    /// False-positive rates among pairs known to be unrelated.
    pub false_positive_rates: Vec<RateTable>,
    /// Power (detection rates) on positive controls.
    pub power: Vec<RateTable>,
    /// Specification curve: one score per analysis choice.
    pub specification_curve: Vec<SpecRow>,
    /// The models of the panel.
    pub panel: Vec<PanelModel>,
}

/// A confidence interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Lower bound.
    pub lo: f64,
    /// Upper bound.
    pub hi: f64,
    /// Coverage, e.g. 0.95.
    pub level: f64,
    /// How it was computed, e.g. "Clopper-Pearson".
    pub method: String,
}

/// One null-distribution test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NullResult {
    /// Name, unique in the report; figure panels refer to it.
    pub name: String,
    /// What the null keeps fixed (e.g. "depth trend, per-role autocorrelation").
    pub preserves: String,
    /// What the null destroys (e.g. "any shared lineage").
    pub destroys: String,
    /// The value tested against the null; `None` when there is none.
    pub tested: Option<Mark>,
    /// Number of null draws.
    pub n: u64,
    /// Seed of the draws (`None` for exhaustive nulls such as a fixed panel).
    pub seed: Option<u64>,
    /// Draws at least as extreme as the tested value.
    pub exceed: u64,
    /// p-value; `None` when undefined.
    pub p: Option<f64>,
    /// log10 of the p-value, kept separately because tiny p-values underflow.
    pub log10_p: Option<f64>,
    /// Confidence interval of p.
    pub interval: Option<Interval>,
    /// Monte Carlo standard error of p.
    pub mc_error: Option<f64>,
    /// How the draws were obtained (`Monte Carlo`, `exhaustive`, `panel`), when stated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<String>,
    /// Draws left out because the statistic was undefined on them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub discarded: u64,
    /// Caveats the statistics attach to this result; shown next to its p in every format.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A table of rates (false-positive rates or power) at thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateTable {
    /// File-name stem (lower-case letters, digits, '-' and '_'), unique among tables.
    pub name: String,
    /// Title.
    pub title: String,
    /// The pairs the rate is taken over, e.g. "8 unrelated panel pairs (different root base)".
    pub population: String,
    /// The similarity measure, e.g. "HonestAGI mean attention-std correlation".
    pub measure: String,
    /// What a row counts, when it is not "a pair whose score is at or above the threshold"
    /// (e.g. "a test whose p-value is at or below the level").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<String>,
    /// Rows.
    pub rows: Vec<RateRow>,
}

/// [`RateTable::counts`] of a table of tests at levels (power, size, rejection rates).
pub const COUNTS_P_AT_OR_BELOW_LEVEL: &str =
    "a test whose p-value is at or below the threshold (the level α)";

/// One rate at one threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateRow {
    /// Row label, e.g. "claimed value" or the positive-control name.
    pub label: String,
    /// Score threshold: a pair counts when its score is at or above it.
    pub threshold: f64,
    /// Id of the published figure the threshold comes from, if any (must match `threshold`).
    pub threshold_source: Option<String>,
    /// Pairs at or above the threshold.
    pub count: u64,
    /// Pairs in the population.
    pub n: u64,
    /// The rate; `None` when n = 0.
    pub rate: Option<f64>,
    /// Confidence interval of the rate.
    pub interval: Option<Interval>,
}

/// One analysis choice of a specification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// The dimension, e.g. "roles".
    pub dimension: String,
    /// The option taken, e.g. "q,k,v,o".
    pub option: String,
}

/// One specification of the specification curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpecRow {
    /// The choices that define it.
    pub choices: Vec<Choice>,
    /// The score; `None` when undefined (e.g. zero variance).
    pub score: Option<f64>,
    /// Whether this is the published analysis (at most one row).
    pub headline: bool,
}

/// One model of the panel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PanelModel {
    /// Model name.
    pub model: String,
    /// Family label, e.g. "llama".
    pub family: String,
    /// Root base model (pairs with different roots count as unrelated).
    pub root: String,
    /// Weight format, e.g. "safetensors".
    pub format: String,
    /// Number of transformer layers.
    pub layers: Option<u32>,
    /// Where the weights came from (package or hub id and revision).
    pub source: String,
    /// SHA-256 of the weights (or of the fingerprint file when the weights are absent).
    pub sha256: String,
}

/// A figure: an SVG plus its data as CSV.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// File-name stem (lower-case letters, digits, '-' and '_'), unique among figures.
    pub name: String,
    /// Title drawn on the figure.
    pub title: String,
    /// Caption written by the caller; the renderer appends p-values, n and notes it knows.
    pub caption: String,
    /// What to draw, with its data.
    pub kind: FigureKind,
}

/// The kinds of figure and their data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FigureKind {
    /// Per-role fingerprint curves of several models overlaid, raw and z-scored.
    FingerprintCurves(CurvesFigure),
    /// One histogram panel per null, with the tested value and marks.
    NullDistributions(NullFigure),
    /// Pairwise similarity heatmap of a panel, ordered by family, related pairs outlined.
    Heatmap(HeatmapFigure),
    /// ROC curves per measure.
    Roc(RocFigure),
    /// False-positive rate against threshold.
    FprThreshold(FprFigure),
    /// QQ plot of p-values against the uniform distribution.
    PValueQq(QqFigure),
    /// The specification curve of [`Computed::specification_curve`].
    SpecificationCurve(SpecFigure),
    /// Lines of y against x, e.g. a score or a loss against training steps.
    Lines(LinesFigure),
}

/// Data of [`FigureKind::FingerprintCurves`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurvesFigure {
    /// Label of the raw statistic with its unit, e.g. "weight std (ddof 1, weight units)".
    pub raw_label: String,
    /// One panel row per role.
    pub roles: Vec<RoleCurves>,
}

/// The curves of one role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleCurves {
    /// Role name, e.g. "q".
    pub role: String,
    /// One curve per model.
    pub models: Vec<ModelCurve>,
}

/// One model's curve for one role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCurve {
    /// Model name.
    pub model: String,
    /// Number of layers of the model.
    pub layers: u32,
    /// Native points, one per layer.
    pub points: Vec<CurvePoint>,
    /// The z-curve interpolated onto another model's depth grid, when depths differ.
    pub interpolated: Option<Interpolated>,
}

/// One layer's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Layer index.
    pub layer: u32,
    /// Normalized depth, layer / (layers - 1), in [0, 1].
    pub x: f64,
    /// Raw statistic; `None` when the layer lacks the tensor.
    pub raw: Option<f64>,
    /// z-scored statistic; `None` when undefined.
    pub z: Option<f64>,
}

/// A z-curve resampled onto a different depth grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interpolated {
    /// Number of layers of the grid interpolated onto.
    pub onto_layers: u32,
    /// Normalized depths of the grid.
    pub x: Vec<f64>,
    /// Interpolated z values, same length as `x`.
    pub z: Vec<Option<f64>>,
}

/// Data of [`FigureKind::NullDistributions`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NullFigure {
    /// Label of the statistic on the x axis, with its unit.
    pub x_label: String,
    /// One panel per null.
    pub panels: Vec<NullPanel>,
}

/// One null's draws.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NullPanel {
    /// Name of the [`NullResult`] these draws belong to (its p, n and tested value are shown).
    pub null: String,
    /// The null draws of the statistic, or evenly spaced quantiles of them (fewer than the
    /// null's `n`; the caption says so).
    pub samples: Vec<f64>,
    /// Further values to mark (e.g. the published rule of thumb).
    pub marks: Vec<Mark>,
}

/// Data of [`FigureKind::Heatmap`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeatmapFigure {
    /// Label of the cell value, with its unit.
    pub value_label: String,
    /// Models in the order of `values`' rows and columns.
    pub models: Vec<HeatModel>,
    /// Square matrix of pairwise values; `None` where undefined or not computed.
    pub values: Vec<Vec<Option<f64>>>,
    /// Related pairs by model name; they are outlined.
    pub related: Vec<(String, String)>,
    /// Colour scale range; the data range when `None`.
    pub range: Option<(f64, f64)>,
}

/// A model of the heatmap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeatModel {
    /// Model name.
    pub name: String,
    /// Family, used to order and group the rows.
    pub family: String,
}

/// Data of [`FigureKind::Roc`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RocFigure {
    /// What counts as a positive, e.g. "related pairs and positive controls (n = 12)".
    pub positives: String,
    /// What counts as a negative, e.g. "unrelated panel pairs (n = 80)".
    pub negatives: String,
    /// One curve per measure.
    pub curves: Vec<RocCurve>,
}

/// One ROC curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RocCurve {
    /// The measure.
    pub measure: String,
    /// Points in threshold order.
    pub points: Vec<RocPoint>,
    /// Area under the curve; `None` when undefined.
    pub auc: Option<f64>,
}

/// One ROC point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RocPoint {
    /// False-positive rate in [0, 1].
    pub fpr: f64,
    /// True-positive rate in [0, 1].
    pub tpr: f64,
}

/// Data of [`FigureKind::FprThreshold`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FprFigure {
    /// Label of the threshold axis, with its unit.
    pub x_label: String,
    /// One line per population or measure.
    pub series: Vec<FprSeries>,
    /// Thresholds to mark, e.g. the published 0.7 and 0.927.
    pub marks: Vec<Mark>,
    /// Draw the rate on a logarithmic axis (the tail is what a claim is read against), from
    /// the decade at or below the smallest positive rate to 100%; zero, and interval bounds
    /// below that decade, are drawn at the axis' floor.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub log_rate: bool,
}

/// One false-positive-rate curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FprSeries {
    /// Label.
    pub label: String,
    /// Points in increasing threshold order.
    pub points: Vec<FprPoint>,
}

/// One false-positive rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FprPoint {
    /// Threshold.
    pub threshold: f64,
    /// Rate in [0, 1].
    pub rate: f64,
    /// Lower interval bound, when computed.
    pub lo: Option<f64>,
    /// Upper interval bound, when computed.
    pub hi: Option<f64>,
}

/// Data of [`FigureKind::PValueQq`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QqFigure {
    /// One series of p-values per test or null.
    pub series: Vec<QqSeries>,
}

/// p-values computed on data where the null holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QqSeries {
    /// Label.
    pub label: String,
    /// The p-values, each in [0, 1].
    pub p_values: Vec<f64>,
}

/// Data of [`FigureKind::SpecificationCurve`] (the scores come from
/// [`Computed::specification_curve`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpecFigure {
    /// Label of the score axis, with its unit.
    pub y_label: String,
    /// Values to mark as horizontal lines.
    pub marks: Vec<Mark>,
}

/// Data of [`FigureKind::Lines`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinesFigure {
    /// Label of the x axis, with its unit.
    pub x_label: String,
    /// Label of the y axis, with its unit.
    pub y_label: String,
    /// The y axis range; fitted to the data and the marks when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y_range: Option<(f64, f64)>,
    /// One line per series.
    pub series: Vec<LineSeries>,
    /// Values marked as horizontal lines (y values), e.g. the published 0.927.
    pub marks: Vec<Mark>,
}

/// One line of a [`LinesFigure`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineSeries {
    /// Label.
    pub label: String,
    /// Points in increasing x order.
    pub points: Vec<LinePoint>,
}

/// One point of a [`LineSeries`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinePoint {
    /// Abscissa.
    pub x: f64,
    /// Ordinate.
    pub y: f64,
    /// Lower interval bound, when computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lo: Option<f64>,
    /// Upper interval bound, when computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hi: Option<f64>,
}

/// A generic table the caller adds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// File-name stem of its CSV (lower-case letters, digits, '-' and '_').
    pub name: String,
    /// Title.
    pub title: String,
    /// Caption.
    pub caption: String,
    /// Column headers.
    pub headers: Vec<String>,
    /// Rows, each as long as `headers`.
    pub rows: Vec<Vec<Cell>>,
}

/// A cell of a generic table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Cell {
    /// A computed number.
    Number(f64),
    /// Text.
    Text(String),
    /// No value (rendered "—").
    Missing,
}

//! The fingerprint document: provenance plus one row of statistics per tensor (or per role
//! slice of a fused tensor). Serialised as JSON (the canonical form) or CSV (one row per
//! tensor, full f64 precision).

use std::collections::BTreeMap;
use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::config::ConfigSummary;
use crate::format::Format;
use crate::roles::{Expert, Role, Stack};
use crate::sample::{SampleInfo, StatErrors};
use crate::stats::TensorStats;

/// Schema name written into every fingerprint.
pub const SCHEMA: &str = "nullprint.fingerprint";
/// Schema version; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// A weight file that went into a fingerprint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileInfo {
    /// Path relative to the model directory (or as given).
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Hex SHA-256, absent when hashing was switched off or the file was read over the
    /// network in ranges (never claimed for bytes that were not all read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// For a file read over the network: where, which version, and which bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteRead>,
    /// Where `sha256` came from (absent in fingerprints written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_source: Option<crate::hash::HashSource>,
}

/// How a weight file was read over the network (`nullprint fingerprint https://…`, `hf://…`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RemoteRead {
    /// The URL asked for (before redirects; it never carries a credential).
    pub url: String,
    /// The server's `ETag` for the file; every range read had to carry the same one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The commit the hub served the file from (`X-Repo-Commit`), when it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Bytes of the header (safetensors: length prefix and JSON; GGUF: up to the data
    /// section).
    pub header_bytes: u64,
    /// SHA-256 of those header bytes.
    pub header_sha256: String,
    /// Byte ranges read, `[start, end)`, sorted and merged.
    pub ranges: Vec<[u64; 2]>,
    /// Total bytes in `ranges`.
    pub bytes_read: u64,
}

/// Where a fingerprint came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// A short name for tables (directory name, repo id, or file stem).
    pub name: String,
    /// What the user gave: a path, a repo id, `ollama:NAME`.
    pub source: String,
    /// Hugging Face repo id, when resolved through the cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo_id: Option<String>,
    /// Revision (commit) of the snapshot, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Container format.
    pub format: Format,
    /// Architecture, from config.json or the file's metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// Configuration summary.
    pub config: ConfigSummary,
    /// Weight files with sizes and hashes.
    pub files: Vec<FileInfo>,
    /// nullprint version that computed the fingerprint.
    pub nullprint_version: String,
    /// Command line that produced it.
    pub command: Vec<String>,
    /// For a positive control made by `nullprint derive`: what it was derived from and how.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub derived: Option<DerivedFrom>,
}

/// How a derived model (a positive control) was made from its base.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DerivedFrom {
    /// The base model (a panel id, or what the user gave).
    pub base: String,
    /// SHA-256 of each of the base's weight files.
    pub base_sha256: Vec<String>,
    /// The recipe, as `nullprint derive --recipe` spells it.
    pub recipe: String,
    /// Seed of the noise.
    pub seed: u64,
    /// Absolute std of the added noise.
    pub noise_std: f64,
    /// Which base layer each layer of the derived model copies.
    pub layer_map: Vec<u32>,
}

/// Statistics of one tensor, or of one role's share of a fused tensor.
///
/// Serialised with the statistics flattened into the row; read back through [`RawRow`], the
/// same fields spelled out, because serde's `flatten` buffers every row in a generic tree
/// first (it made reading a panel of fingerprints several times slower).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "RawRow")]
pub struct TensorRow {
    /// Encoder or decoder (encoder-decoder models only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<Stack>,
    /// Layer index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<u32>,
    /// Canonical role.
    pub role: Role,
    /// MoE expert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expert: Option<Expert>,
    /// Stored tensor name.
    pub tensor: String,
    /// Stored dtype.
    pub dtype: String,
    /// The statistics.
    #[serde(flatten)]
    pub stats: TensorStats,
    /// Standard errors, when the statistics were estimated from a sample
    /// ([`crate::sample`]); absent when every element was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub se: Option<StatErrors>,
}

/// The JSON form of a [`TensorRow`], statistics inline (see there).
#[derive(Deserialize)]
struct RawRow {
    #[serde(default)]
    stack: Option<Stack>,
    #[serde(default)]
    layer: Option<u32>,
    role: Role,
    #[serde(default)]
    expert: Option<Expert>,
    tensor: String,
    dtype: String,
    numel: u64,
    mean: Option<f64>,
    std: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    abs_mean: Option<f64>,
    l2: Option<f64>,
    nan: u64,
    inf: u64,
    #[serde(default)]
    se: Option<StatErrors>,
}

impl From<RawRow> for TensorRow {
    fn from(r: RawRow) -> Self {
        TensorRow {
            stack: r.stack,
            layer: r.layer,
            role: r.role,
            expert: r.expert,
            tensor: r.tensor,
            dtype: r.dtype,
            stats: TensorStats {
                numel: r.numel,
                mean: r.mean,
                std: r.std,
                min: r.min,
                max: r.max,
                abs_mean: r.abs_mean,
                l2: r.l2,
                nan: r.nan,
                inf: r.inf,
            },
            se: r.se,
        }
    }
}

/// The part of a tensor row that per-layer std curves read: where the tensor sits, its dtype,
/// and the counts and std that [`TensorStats::std_ddof`] needs.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct StdRow {
    /// Encoder or decoder (encoder-decoder models only).
    #[serde(default)]
    pub stack: Option<Stack>,
    /// Layer index.
    #[serde(default)]
    pub layer: Option<u32>,
    /// Canonical role.
    pub role: Role,
    /// MoE expert.
    #[serde(default)]
    pub expert: Option<Expert>,
    /// Stored dtype.
    pub dtype: String,
    /// Number of elements, finite or not.
    pub numel: u64,
    /// Population standard deviation of the finite values.
    pub std: Option<f64>,
    /// Number of NaN values.
    pub nan: u64,
    /// Number of ±Inf values.
    pub inf: u64,
    /// Standard errors of a sampled row (absent when exact).
    #[serde(default)]
    pub se: Option<StatErrors>,
}

impl StdRow {
    /// Standard deviation with `ddof` degrees of freedom removed, as [`TensorStats::std_ddof`].
    pub fn std_ddof(&self, ddof: u32) -> Option<f64> {
        TensorStats {
            numel: self.numel,
            mean: None,
            std: self.std,
            min: None,
            max: None,
            abs_mean: None,
            l2: None,
            nan: self.nan,
            inf: self.inf,
        }
        .std_ddof(ddof)
    }
}

/// What std curves need of a fingerprint file, parsed without the rest: the model's name,
/// `model_type` and architecture, the non-finite flag and one [`StdRow`] per tensor. The JSON
/// parser still checks the whole document's syntax and the schema name and version, but skips
/// provenance, tensor names and the other statistics without decoding them, which makes
/// reading a panel of fingerprints several times faster than [`Fingerprint::from_json`].
#[derive(Clone, Debug, PartialEq)]
pub struct StdRows {
    /// `model.name`.
    pub name: String,
    /// `model.config.model_type`.
    pub model_type: Option<String>,
    /// `model.architecture`.
    pub architecture: Option<String>,
    /// `nonfinite`.
    pub nonfinite: bool,
    /// `tensors`.
    pub tensors: Vec<StdRow>,
    /// `model.files[].sha256`, where recorded: which weights the fingerprint is of.
    pub sha256: Vec<String>,
}

impl StdRows {
    /// Parse a fingerprint's JSON bytes, checking the schema name and version (errors read as
    /// those of [`Fingerprint::from_json`]).
    pub fn from_json_slice(bytes: &[u8]) -> crate::Result<Self> {
        #[derive(Deserialize)]
        struct Config {
            #[serde(default)]
            model_type: Option<String>,
        }
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            sha256: Option<String>,
        }
        #[derive(Deserialize)]
        struct Model {
            name: String,
            #[serde(default)]
            architecture: Option<String>,
            config: Config,
            #[serde(default)]
            files: Vec<File>,
        }
        #[derive(Deserialize)]
        struct Doc {
            schema: String,
            schema_version: u32,
            model: Model,
            nonfinite: bool,
            tensors: Vec<StdRow>,
        }
        let d: Doc = serde_json::from_slice(bytes).map_err(not_fingerprint)?;
        check_schema(&d.schema, d.schema_version)?;
        for (i, r) in d.tensors.iter().enumerate() {
            check_stats(&TensorStats {
                numel: r.numel,
                mean: None,
                std: r.std,
                min: None,
                max: None,
                abs_mean: None,
                l2: None,
                nan: r.nan,
                inf: r.inf,
            })
            .map_err(|why| not_fingerprint(format_args!("tensors[{i}] ({}): {why}", r.role)))?;
        }
        Ok(StdRows {
            name: d.model.name,
            model_type: d.model.config.model_type,
            architecture: d.model.architecture,
            nonfinite: d.nonfinite,
            tensors: d.tensors,
            sha256: d.model.files.into_iter().filter_map(|f| f.sha256).collect(),
        })
    }
}

fn not_fingerprint(e: impl std::fmt::Display) -> crate::Error {
    crate::Error::NotFingerprint {
        reason: e.to_string(),
    }
}

/// Relative slack in the order checks of [`check_stats`]: the statistics are rounded f64
/// sums, so a mean may exceed the maximum of a constant tensor by a few ulps.
const ORDER_SLACK: f64 = 1e-9;

/// The statistics of one tensor mean what they say: finite, `std`, `abs_mean` and `l2` not
/// negative, `min <= mean <= max`, `std` at most half the range, no more non-finite values
/// than elements. A hand-edited fingerprint (a negative std flips the sign of a correlation)
/// is refused on load, before any computation.
fn check_stats(s: &TensorStats) -> Result<(), String> {
    let fields = [
        ("mean", s.mean),
        ("std", s.std),
        ("min", s.min),
        ("max", s.max),
        ("abs_mean", s.abs_mean),
        ("l2", s.l2),
    ];
    for (name, v) in fields {
        match v {
            Some(x) if !x.is_finite() => return Err(format!("{name} {x} is not finite")),
            Some(x) if x < 0.0 && matches!(name, "std" | "abs_mean" | "l2") => {
                return Err(format!("{name} {x} is negative"))
            }
            _ => {}
        }
    }
    if s.nan.saturating_add(s.inf) > s.numel {
        return Err(format!(
            "{} NaN and {} Inf values in {} elements",
            s.nan, s.inf, s.numel
        ));
    }
    if let (Some(lo), Some(hi)) = (s.min, s.max) {
        let slack = ORDER_SLACK * lo.abs().max(hi.abs());
        if lo > hi {
            return Err(format!("min {lo} is above max {hi}"));
        }
        if let Some(m) = s.mean.filter(|m| *m < lo - slack || *m > hi + slack) {
            return Err(format!("mean {m} is outside [min {lo}, max {hi}]"));
        }
        if let Some(sd) = s.std.filter(|sd| *sd > (hi - lo) / 2.0 + slack) {
            return Err(format!(
                "std {sd} is more than half the range [min {lo}, max {hi}]"
            ));
        }
    }
    Ok(())
}

fn check_schema(schema: &str, version: u32) -> crate::Result<()> {
    if schema != SCHEMA {
        return Err(not_fingerprint(format_args!(
            "schema is {schema:?}, expected {SCHEMA:?}"
        )));
    }
    if version > SCHEMA_VERSION {
        return Err(not_fingerprint(format_args!(
            "schema version {version} is newer than this nullprint understands ({SCHEMA_VERSION})"
        )));
    }
    Ok(())
}

/// A tensor that was listed but not fingerprinted, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    /// Stored tensor name.
    pub tensor: String,
    /// Stored dtype.
    pub dtype: String,
    /// Why it was not read.
    pub reason: String,
}

/// A model's fingerprint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// [`SCHEMA_VERSION`] of the writer.
    pub schema_version: u32,
    /// Provenance.
    pub model: ModelInfo,
    /// True when any fingerprinted tensor held NaN or Inf values.
    pub nonfinite: bool,
    /// One row per tensor (or role slice), ordered by stack, layer, role, expert.
    pub tensors: Vec<TensorRow>,
    /// Tensors that were not fingerprinted (integer buffers, unsupported types not needed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
    /// Things a reader of the fingerprint should know.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The values of small per-layer vectors (normalisation weights, biases), when asked for
    /// (`nullprint fingerprint --vectors`); absent in fingerprints without them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vectors: Vec<crate::vectors::VectorRow>,
    /// Present when the statistics were estimated from a seeded sample of each tensor
    /// (`--sample N`); every row then carries its standard errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<SampleInfo>,
}

/// CSV column order.
pub const CSV_HEADER: [&str; 16] = [
    "model", "stack", "layer", "role", "expert", "tensor", "dtype", "numel", "mean", "std", "min",
    "max", "abs_mean", "l2", "nan", "inf",
];

impl Fingerprint {
    /// Per-layer values of `stat` for `role` (no expert), keyed by layer, for one stack.
    pub fn curve(
        &self,
        role: &Role,
        stack: Option<Stack>,
        stat: impl Fn(&TensorStats) -> Option<f64>,
    ) -> BTreeMap<u32, Option<f64>> {
        self.tensors
            .iter()
            .filter(|r| &r.role == role && r.stack == stack && r.expert.is_none())
            .filter_map(|r| Some((r.layer?, stat(&r.stats))))
            .collect()
    }

    /// Write as pretty JSON.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a fingerprint always serialises");
        s.push('\n');
        s
    }

    /// Parse a JSON fingerprint, checking the schema name and version.
    pub fn from_json(text: &str) -> crate::Result<Self> {
        Self::from_json_slice(text.as_bytes())
    }

    /// [`Fingerprint::from_json`] on the bytes of a file (no separate UTF-8 pass: the parser
    /// checks strings as it reads them).
    pub fn from_json_slice(bytes: &[u8]) -> crate::Result<Self> {
        let fp: Fingerprint = serde_json::from_slice(bytes).map_err(not_fingerprint)?;
        check_schema(&fp.schema, fp.schema_version)?;
        for (i, t) in fp.tensors.iter().enumerate() {
            check_stats(&t.stats).map_err(|why| {
                not_fingerprint(format_args!("tensors[{i}] ({}): {why}", t.tensor))
            })?;
        }
        Ok(fp)
    }

    /// Write as CSV (header plus one row per tensor), floats in shortest round-trip form, text
    /// cells a spreadsheet would take for a formula quoted ([`output::csv_cell`]).
    pub fn write_csv<W: Write>(&self, out: W) -> csv::Result<()> {
        let mut w = csv::Writer::from_writer(out);
        w.write_record(CSV_HEADER)?;
        let opt = |x: Option<f64>| x.map(|v| format!("{v:?}")).unwrap_or_default();
        for r in &self.tensors {
            let s = &r.stats;
            let record = [
                self.model.name.clone(),
                r.stack.map(|s| s.to_string()).unwrap_or_default(),
                r.layer.map(|l| l.to_string()).unwrap_or_default(),
                r.role.to_string(),
                r.expert.map(|e| e.to_string()).unwrap_or_default(),
                r.tensor.clone(),
                r.dtype.clone(),
                s.numel.to_string(),
                opt(s.mean),
                opt(s.std),
                opt(s.min),
                opt(s.max),
                opt(s.abs_mean),
                opt(s.l2),
                s.nan.to_string(),
                s.inf.to_string(),
            ];
            // Names come from the model's files: one beginning with `=` must not run as a
            // spreadsheet formula.
            w.write_record(record.iter().map(|c| output::csv_cell(c).into_owned()))?;
        }
        w.flush()?;
        Ok(())
    }
}

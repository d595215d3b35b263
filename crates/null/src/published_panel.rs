//! Published per-layer tables as panels: curves someone else measured, read like fingerprints.
//!
//! Two layouts are read:
//! * **Long** ([`Layout::Long`]), the documented schema: a header with the columns `model`,
//!   `stack`, `layer`, `role`, `std` (any order, more columns ignored); one row per model, stack,
//!   layer and role; `role` is a curve key such as `attn_q`; `stack` may be empty. A curve is one
//!   (model, stack). The table's ddof and rounding are not in the rows: they come with its
//!   [`Provenance`].
//! * **GraphNet** ([`Layout::GraphNet`]): PaddlePaddle/GraphNet's `attention_std_per_layer.csv`
//!   (columns `sample`, `hf_model_name`, `stack`, `attention`, `layer`, `q_std`, `k_std`,
//!   `v_std`, `o_std`, `qkv_std`, ...). A curve is one (sample, stack, attention module), so an
//!   encoder-decoder model gives an encoder, a decoder self-attention and a cross-attention curve;
//!   `q_std`..`o_std` become `attn_q`..`attn_o`, `qkv_std` becomes `attn_qkv`. Its companion
//!   `models.csv` carries a per-sample `realness_heuristic`; samples it marks
//!   `likely_init_or_short` are left out and counted.
//!
//! Curves that cannot serve in a null are left out and counted by reason ([`Exclusions`]):
//! missing roles, gaps in the layers, fewer than [`crate::curves::MIN_LAYERS`] layers, and curves
//! of randomly initialised weights ([`is_init_like`]). Values stay as published (rounded), and
//! [`round_curves`] rounds exact curves the same way for a like-for-like comparison.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::curves::{Curve, Curves, MAX_LAYERS, MIN_LAYERS};
use crate::error::{Error, Result};

/// Most rows read from one published table (GraphNet's has 16,959).
pub const MAX_ROWS: u64 = 10_000_000;

/// Largest layer index accepted (a cap against malformed input).
pub const MAX_LAYER_INDEX: u32 = MAX_LAYERS as u32 - 1;

/// Where a published table comes from and how its values were computed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// Where the table was published (repository and file).
    pub source: String,
    /// The commit (or version) read.
    pub commit: String,
    /// Its license.
    pub license: String,
    /// The ddof of its std values (`torch.std` default: 1).
    pub ddof: u32,
    /// Decimal places the values were rounded to, when rounded.
    pub decimals: Option<u32>,
}

impl Provenance {
    /// GraphNet at the commit the project's copy was taken from: std with ddof 1, rounded to 3
    /// decimals, MIT.
    pub fn graphnet() -> Self {
        Provenance {
            source: "github.com/PaddlePaddle/GraphNet attention_std_per_layer.csv".into(),
            commit: "1dcbd66".into(),
            license: "MIT".into(),
            ddof: 1,
            decimals: Some(3),
        }
    }

    /// One line for reports.
    pub fn describe(&self) -> String {
        format!(
            "{} at {} ({}; std ddof {}, {})",
            self.source,
            self.commit,
            self.license,
            self.ddof,
            match self.decimals {
                Some(d) => format!("rounded to {d} decimals"),
                None => "not rounded".into(),
            }
        )
    }
}

/// The layout of a published table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// `model,stack,layer,role,std`.
    Long,
    /// GraphNet's `attention_std_per_layer.csv`.
    GraphNet,
}

/// Encoder or decoder stack, read from the stack and module names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A stack whose name says `encoder`.
    Encoder,
    /// A stack whose name says `decoder` (cross-attention included).
    Decoder,
    /// The names do not say.
    Unknown,
}

impl Kind {
    /// `decoder` when the stack or module name contains it, else `encoder` when it contains
    /// that, else unknown (a bare `layers` stack may be either).
    pub fn from_names(stack: &str, module: &str) -> Kind {
        let s = format!("{stack} {module}").to_ascii_lowercase();
        if s.contains("decoder") {
            Kind::Decoder
        } else if s.contains("encoder") {
            Kind::Encoder
        } else {
            Kind::Unknown
        }
    }

    /// `encoder`, `decoder` or `unknown`.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Encoder => "encoder",
            Kind::Decoder => "decoder",
            Kind::Unknown => "unknown",
        }
    }
}

/// One curve set of a published table with what is known about it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PublishedCurve {
    /// The curves (model = the curve's id).
    pub curves: Curves,
    /// The model (GraphNet: the sample path without `samples/`).
    pub model: String,
    /// The model's hub name as published, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub_name: Option<String>,
    /// Stack and attention module.
    pub stack: String,
    /// Encoder or decoder.
    pub kind: Kind,
}

impl PublishedCurve {
    /// Number of layers.
    pub fn layers(&self) -> usize {
        self.curves.max_layers()
    }
}

/// Curves left out, by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exclusions {
    /// Curves lacking one of the requested roles on some layer.
    pub missing_roles: u64,
    /// Curves whose layers are not 0..L-1.
    pub layer_gaps: u64,
    /// Curves with fewer than [`MIN_LAYERS`] layers.
    pub too_short: u64,
    /// Curves of randomly initialised weights ([`is_init_like`]), by id.
    pub init_like: Vec<String>,
    /// Curves of samples the table's own realness heuristic marks as not real.
    pub heuristic_not_real: u64,
}

/// A published table read as a panel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PublishedPanel {
    /// Where it comes from.
    pub provenance: Provenance,
    /// The curves kept, in id order.
    pub curves: Vec<PublishedCurve>,
    /// What was left out.
    pub excluded: Exclusions,
    /// Rows read.
    pub rows: u64,
}

/// A curve whose every role is one value at every layer is not a trained model.
///
/// Rule: a role with a single distinct (published, rounded) value over all layers marks the
/// curve as randomly initialised: trained attention projections drift apart layer by layer,
/// while an untrained checkpoint keeps its initialiser's std (GraphNet's deformable-DETR decoders
/// read q std 0.020 = the `initializer_range` of 0.02 on every layer). Such a curve has no
/// z-score either, so the published measure could not score it.
pub fn is_init_like(c: &Curves) -> bool {
    c.roles.values().any(|curve| {
        curve
            .values
            .iter()
            .all(|v| v.to_bits() == curve.values[0].to_bits())
    })
}

/// Curves rounded to `decimals` places, the way a published table rounds them.
pub fn round_curves(c: &Curves, decimals: u32) -> Curves {
    let scale = 10f64.powi(decimals as i32);
    let mut out = c.clone();
    for curve in out.roles.values_mut() {
        for v in &mut curve.values {
            *v = (*v * scale).round() / scale;
        }
    }
    out
}

/// Options of reading a published table.
#[derive(Clone, Debug, PartialEq)]
pub struct ReadOptions {
    /// The layout.
    pub layout: Layout,
    /// Roles every curve must have on every layer (curve keys).
    pub roles: Vec<String>,
    /// Samples to leave out by the table's realness heuristic.
    pub not_real: BTreeSet<String>,
}

impl ReadOptions {
    /// GraphNet with the four attention projections.
    pub fn graphnet() -> Self {
        ReadOptions {
            layout: Layout::GraphNet,
            roles: ["attn_q", "attn_k", "attn_v", "attn_o"]
                .map(String::from)
                .to_vec(),
            not_real: BTreeSet::new(),
        }
    }
}

/// Role and layer values of one curve set, with its names.
#[derive(Default)]
struct Raw {
    model: String,
    hub_name: Option<String>,
    stack: String,
    module: String,
    /// role → layer → value; `None` for an empty cell.
    values: BTreeMap<String, BTreeMap<u32, Option<f64>>>,
    /// layer → the line of its (first) row.
    lines: BTreeMap<u32, u64>,
}

fn column(headers: &csv::StringRecord, name: &str, source: &str) -> Result<usize> {
    headers
        .iter()
        .position(|h| h.trim() == name)
        .ok_or_else(|| Error::Csv {
            source_name: source.into(),
            line: 1,
            reason: format!("no `{name}` column"),
        })
}

fn parse_value(cell: &str, source: &str, line: u64, what: &str) -> Result<Option<f64>> {
    let cell = cell.trim();
    if cell.is_empty() {
        return Ok(None);
    }
    let v: f64 = cell.parse().map_err(|_| Error::Csv {
        source_name: source.into(),
        line,
        reason: format!("{what} {cell:?} is not a number"),
    })?;
    if !v.is_finite() || v < 0.0 {
        return Err(Error::Csv {
            source_name: source.into(),
            line,
            reason: format!("{what} {cell:?} is not a finite non-negative std"),
        });
    }
    Ok(Some(v))
}

fn parse_layer(cell: &str, source: &str, line: u64) -> Result<u32> {
    cell.trim()
        .parse::<u32>()
        .ok()
        .filter(|&l| l <= MAX_LAYER_INDEX)
        .ok_or_else(|| Error::Csv {
            source_name: source.into(),
            line,
            reason: format!("layer {cell:?} is not an integer in 0..={MAX_LAYER_INDEX}"),
        })
}

const GRAPHNET_ROLES: [(&str, &str); 5] = [
    ("q_std", "attn_q"),
    ("k_std", "attn_k"),
    ("v_std", "attn_v"),
    ("o_std", "attn_o"),
    ("qkv_std", "attn_qkv"),
];

/// Read a published table.
pub fn read<R: Read>(
    reader: R,
    source_name: &str,
    provenance: Provenance,
    opts: &ReadOptions,
) -> Result<PublishedPanel> {
    if provenance.ddof > 1 {
        return Err(Error::invalid("ddof", provenance.ddof, "must be 0 or 1"));
    }
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(reader);
    let headers = rdr
        .headers()
        .map_err(|e| Error::Csv {
            source_name: source_name.into(),
            line: 1,
            reason: e.to_string(),
        })?
        .clone();
    let mut raws: BTreeMap<String, Raw> = BTreeMap::new();
    let mut rows = 0u64;
    let mut record = csv::StringRecord::new();
    let cols: Vec<usize> = match opts.layout {
        Layout::Long => ["model", "stack", "layer", "role", "std"]
            .iter()
            .map(|c| column(&headers, c, source_name))
            .collect::<Result<_>>()?,
        Layout::GraphNet => ["sample", "hf_model_name", "stack", "attention", "layer"]
            .iter()
            .chain(GRAPHNET_ROLES.iter().map(|(c, _)| c))
            .map(|c| column(&headers, c, source_name))
            .collect::<Result<_>>()?,
    };
    loop {
        let more = rdr.read_record(&mut record).map_err(|e| Error::Csv {
            source_name: source_name.into(),
            line: rows + 2,
            reason: e.to_string(),
        })?;
        if !more {
            break;
        }
        rows += 1;
        if rows > MAX_ROWS {
            return Err(Error::TooLarge {
                what: format!("{source_name}: rows"),
                n: rows,
                max: MAX_ROWS,
            });
        }
        let line = record.position().map_or(rows + 1, |p| p.line());
        let cell = |i: usize| record.get(cols[i]).unwrap_or("").trim();
        match opts.layout {
            Layout::Long => {
                let (model, stack, role) = (cell(0), cell(1), cell(3));
                if model.is_empty() || role.is_empty() {
                    return Err(Error::Csv {
                        source_name: source_name.into(),
                        line,
                        reason: "empty model or role".into(),
                    });
                }
                let layer = parse_layer(cell(2), source_name, line)?;
                let v = parse_value(cell(4), source_name, line, "std")?;
                let id = if stack.is_empty() {
                    model.to_owned()
                } else {
                    format!("{model}:{stack}")
                };
                let raw = raws.entry(id).or_insert_with(|| Raw {
                    model: model.into(),
                    stack: stack.into(),
                    ..Default::default()
                });
                raw.lines.entry(layer).or_insert(line);
                let slot = raw.values.entry(role.into()).or_default();
                if slot.insert(layer, v).is_some() {
                    return Err(Error::Csv {
                        source_name: source_name.into(),
                        line,
                        reason: format!("{model} {stack} {role} layer {layer} appears twice"),
                    });
                }
            }
            Layout::GraphNet => {
                let sample = cell(0);
                let model = sample.strip_prefix("samples/").unwrap_or(sample);
                let (hub, stack, module) = (cell(1), cell(2), cell(3));
                if model.is_empty() {
                    return Err(Error::Csv {
                        source_name: source_name.into(),
                        line,
                        reason: "empty sample".into(),
                    });
                }
                let layer = parse_layer(cell(4), source_name, line)?;
                let id = format!("{model}:{stack}:{module}");
                let raw = raws.entry(id).or_insert_with(|| Raw {
                    model: model.into(),
                    hub_name: (!hub.is_empty()).then(|| hub.to_owned()),
                    stack: stack.into(),
                    module: module.into(),
                    ..Default::default()
                });
                raw.lines.entry(layer).or_insert(line);
                for (k, (colname, role)) in GRAPHNET_ROLES.iter().enumerate() {
                    let v = parse_value(cell(5 + k), source_name, line, colname)?;
                    let slot = raw.values.entry((*role).into()).or_default();
                    if slot.insert(layer, v).is_some() && k == 0 {
                        return Err(Error::Csv {
                            source_name: source_name.into(),
                            line,
                            reason: format!("{model} {stack} {module} layer {layer} appears twice"),
                        });
                    }
                }
            }
        }
    }
    build(raws, rows, provenance, opts, source_name)
}

/// A role with values on some layers of its curve set but not on others: the table was cut or
/// mis-joined, so it is an error naming the file, the line and the column, not a silent
/// exclusion.
fn check_layer_counts(
    raw: &Raw,
    layers: &BTreeSet<u32>,
    layout: Layout,
    source_name: &str,
) -> Result<()> {
    for (role, by_layer) in &raw.values {
        let has = |l: &u32| by_layer.get(l).copied().flatten().is_some();
        let present = layers.iter().filter(|l| has(l)).count();
        if present == 0 || present == layers.len() {
            continue;
        }
        let Some(&gap) = layers.iter().find(|l| !has(l)) else {
            continue;
        };
        let what = match layout {
            Layout::Long => format!("{} {}", raw.model, raw.stack),
            Layout::GraphNet => format!("{} {} {}", raw.model, raw.stack, raw.module),
        };
        let (line, reason) = match layout {
            Layout::Long => (
                raw.lines.values().min().copied().unwrap_or(0),
                format!(
                    "{what}: role {role} has rows for {present} of the {} layers of this curve \
                     (none for layer {gap}): inconsistent layer counts",
                    layers.len()
                ),
            ),
            Layout::GraphNet => {
                let column = GRAPHNET_ROLES
                    .iter()
                    .find(|(_, r)| r == role)
                    .map_or(role.as_str(), |(c, _)| c);
                (
                    raw.lines.get(&gap).copied().unwrap_or(0),
                    format!(
                        "{what} layer {gap}: column {column} is empty, but has values on \
                         {present} of the {} layers of this curve: inconsistent layer counts",
                        layers.len()
                    ),
                )
            }
        };
        return Err(Error::Csv {
            source_name: source_name.into(),
            line,
            reason,
        });
    }
    Ok(())
}

fn build(
    raws: BTreeMap<String, Raw>,
    rows: u64,
    provenance: Provenance,
    opts: &ReadOptions,
    source_name: &str,
) -> Result<PublishedPanel> {
    let mut excluded = Exclusions::default();
    let mut curves = Vec::new();
    for (id, raw) in raws {
        if opts.not_real.contains(&raw.model) {
            excluded.heuristic_not_real += 1;
            continue;
        }
        // Layers present in any role of the curve set.
        let layers: BTreeSet<u32> = raw
            .values
            .values()
            .flat_map(|m| m.keys().copied())
            .collect();
        check_layer_counts(&raw, &layers, opts.layout, source_name)?;
        let n = layers.len();
        if layers.iter().enumerate().any(|(i, &l)| l as usize != i) {
            excluded.layer_gaps += 1;
            continue;
        }
        let mut roles = BTreeMap::new();
        let mut complete = true;
        for role in &opts.roles {
            let vals: Option<Vec<f64>> = raw.values.get(role).and_then(|m| {
                (0..n as u32)
                    .map(|l| m.get(&l).copied().flatten())
                    .collect()
            });
            match vals {
                Some(values) => {
                    roles.insert(
                        role.clone(),
                        Curve {
                            values,
                            dtypes: Vec::new(),
                            stack: raw.stack.clone(),
                        },
                    );
                }
                None => complete = false,
            }
        }
        if !complete || roles.is_empty() {
            excluded.missing_roles += 1;
            continue;
        }
        if n < MIN_LAYERS {
            excluded.too_short += 1;
            continue;
        }
        let c = Curves {
            model: id.clone(),
            family: None,
            ddof: provenance.ddof,
            nonfinite: false,
            roles,
        };
        c.validate()?;
        if is_init_like(&c) {
            excluded.init_like.push(id);
            continue;
        }
        curves.push(PublishedCurve {
            kind: Kind::from_names(&raw.stack, &raw.module),
            curves: c,
            model: raw.model,
            hub_name: raw.hub_name,
            stack: if raw.module.is_empty() {
                raw.stack
            } else {
                format!("{}:{}", raw.stack, raw.module)
            },
        });
    }
    Ok(PublishedPanel {
        provenance,
        curves,
        excluded,
        rows,
    })
}

/// Samples that GraphNet's `models.csv` marks other than `likely_real` (its
/// `realness_heuristic` column), without the `samples/` prefix.
pub fn graphnet_not_real<R: Read>(reader: R, source_name: &str) -> Result<BTreeSet<String>> {
    let mut rdr = csv::ReaderBuilder::new().from_reader(reader);
    let headers = rdr
        .headers()
        .map_err(|e| Error::Csv {
            source_name: source_name.into(),
            line: 1,
            reason: e.to_string(),
        })?
        .clone();
    let s = column(&headers, "sample", source_name)?;
    let h = column(&headers, "realness_heuristic", source_name)?;
    let mut out = BTreeSet::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| Error::Csv {
            source_name: source_name.into(),
            line: i as u64 + 2,
            reason: e.to_string(),
        })?;
        if i as u64 >= MAX_ROWS {
            return Err(Error::TooLarge {
                what: format!("{source_name}: rows"),
                n: i as u64,
                max: MAX_ROWS,
            });
        }
        let heuristic = rec.get(h).unwrap_or("").trim();
        if heuristic != "likely_real" {
            let sample = rec.get(s).unwrap_or("").trim();
            out.insert(sample.strip_prefix("samples/").unwrap_or(sample).to_owned());
        }
    }
    Ok(out)
}

fn open(path: &Path) -> Result<std::fs::File> {
    std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })
}

/// GraphNet's files in `dir`: `attention_std_per_layer.csv`, and `models.csv` when present.
pub fn read_graphnet_dir(dir: &Path, roles: &[&str]) -> Result<PublishedPanel> {
    let table = dir.join(GRAPHNET_FILE);
    let models = dir.join("models.csv");
    let mut opts = ReadOptions::graphnet();
    opts.roles = roles.iter().map(|r| r.to_string()).collect();
    if models.exists() {
        opts.not_real = graphnet_not_real(open(&models)?, &models.display().to_string())?;
    }
    read(
        std::io::BufReader::new(open(&table)?),
        &table.display().to_string(),
        Provenance::graphnet(),
        &opts,
    )
}

/// File name of GraphNet's table ([`Layout::GraphNet`]).
pub const GRAPHNET_FILE: &str = "attention_std_per_layer.csv";

/// File name of a table in the long schema ([`Layout::Long`]), as
/// `scripts/published_data.py` writes it from a GraphNet checkout.
pub const LONG_FILE: &str = "attention_std_long.csv";

/// The table of a published-data directory: GraphNet's file, else the long-schema file.
pub fn table_file(dir: &Path) -> Option<std::path::PathBuf> {
    [GRAPHNET_FILE, LONG_FILE]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
}

/// Read a published-data directory with either file ([`table_file`]), with GraphNet's
/// provenance (both come from GraphNet at the same commit).
pub fn read_dir(dir: &Path, roles: &[&str]) -> Result<PublishedPanel> {
    let table = table_file(dir).ok_or_else(|| Error::Io {
        path: dir.join(GRAPHNET_FILE),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("neither {GRAPHNET_FILE} nor {LONG_FILE} in the directory"),
        ),
    })?;
    if table.ends_with(GRAPHNET_FILE) {
        return read_graphnet_dir(dir, roles);
    }
    let mut opts = ReadOptions::graphnet();
    opts.layout = Layout::Long;
    opts.roles = roles.iter().map(|r| r.to_string()).collect();
    read(
        std::io::BufReader::new(open(&table)?),
        &table.display().to_string(),
        Provenance::graphnet(),
        &opts,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRAPHNET: &str = "\
sample,hf_model_name,stack,attention,layer,q_std,k_std,v_std,o_std,qkv_std,q_shape,k_shape,v_shape,o_shape
samples/x/m1,org/m1,model.encoder.layers,self_attn,0,0.05,0.04,0.03,0.02,,a,a,a,a
samples/x/m1,org/m1,model.encoder.layers,self_attn,1,0.06,0.05,0.03,0.03,,a,a,a,a
samples/x/m1,org/m1,model.encoder.layers,self_attn,2,0.07,0.04,0.04,0.02,,a,a,a,a
samples/x/m1,org/m1,model.decoder.layers,self_attn,0,0.02,0.04,0.03,0.02,,a,a,a,a
samples/x/m1,org/m1,model.decoder.layers,self_attn,1,0.02,0.05,0.03,0.03,,a,a,a,a
samples/x/m1,org/m1,model.decoder.layers,self_attn,2,0.02,0.04,0.04,0.02,,a,a,a,a
samples/x/m2,,layers,attn,0,,,,,0.1,,,,
samples/x/m2,,layers,attn,1,,,,,0.2,,,,
samples/x/m2,,layers,attn,2,,,,,0.3,,,,
samples/x/m3,,layers,attn,0,0.1,0.1,0.1,0.1,,,,,
samples/x/m3,,layers,attn,2,0.1,0.2,0.1,0.3,,,,,
samples/x/m4,,layers,attn,0,0.1,0.2,0.1,0.1,,,,,
samples/x/m4,,layers,attn,1,0.2,0.1,0.1,0.2,,,,,
";

    #[test]
    fn graphnet_layout_exclusions_and_kinds() {
        let p = read(
            GRAPHNET.as_bytes(),
            "t.csv",
            Provenance::graphnet(),
            &ReadOptions::graphnet(),
        )
        .unwrap();
        assert_eq!(p.rows, 13);
        assert_eq!(p.curves.len(), 1);
        let c = &p.curves[0];
        assert_eq!(c.curves.model, "x/m1:model.encoder.layers:self_attn");
        assert_eq!(c.kind, Kind::Encoder);
        assert_eq!(c.curves.ddof, 1);
        assert_eq!(c.curves.roles["attn_q"].values, vec![0.05, 0.06, 0.07]);
        assert_eq!(c.hub_name.as_deref(), Some("org/m1"));
        // The decoder's q is 0.02 on every layer: randomly initialised.
        assert_eq!(
            p.excluded.init_like,
            vec!["x/m1:model.decoder.layers:self_attn".to_string()]
        );
        assert_eq!(p.excluded.missing_roles, 1); // m2 has only qkv
        assert_eq!(p.excluded.layer_gaps, 1); // m3 skips layer 1
        assert_eq!(p.excluded.too_short, 1); // m4 has two layers
                                             // With the fused role, m2 is a curve.
        let mut o = ReadOptions::graphnet();
        o.roles = vec!["attn_qkv".into()];
        let p2 = read(GRAPHNET.as_bytes(), "t.csv", Provenance::graphnet(), &o).unwrap();
        assert_eq!(p2.curves.len(), 1);
        assert_eq!(p2.curves[0].model, "x/m2");
        assert_eq!(p2.curves[0].kind, Kind::Unknown);
        // The realness heuristic leaves samples out.
        o.not_real = BTreeSet::from(["x/m2".to_string()]);
        let p3 = read(GRAPHNET.as_bytes(), "t.csv", Provenance::graphnet(), &o).unwrap();
        assert_eq!((p3.curves.len(), p3.excluded.heuristic_not_real), (0, 1));
    }

    #[test]
    fn graphnet_role_on_some_layers_only_names_line_and_column() {
        let text = GRAPHNET.replacen(
            "samples/x/m1,org/m1,model.encoder.layers,self_attn,1,0.06,0.05,",
            "samples/x/m1,org/m1,model.encoder.layers,self_attn,1,0.06,,",
            1,
        );
        let e = read(
            text.as_bytes(),
            "t.csv",
            Provenance::graphnet(),
            &ReadOptions::graphnet(),
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(e, Error::Csv { line: 3, .. })
                && msg.contains("t.csv")
                && msg.contains("column k_std")
                && msg.contains("layer 1"),
            "{msg}"
        );
    }

    #[test]
    fn long_layout() {
        let text = "model,stack,layer,role,std\n\
            a,,0,attn_q,1\na,,1,attn_q,2\na,,2,attn_q,4\n\
            b,decoder,0,attn_q,1\nb,decoder,1,attn_q,3\nb,decoder,2,attn_q,2\n";
        let mut o = ReadOptions::graphnet();
        o.layout = Layout::Long;
        o.roles = vec!["attn_q".into()];
        let p = read(text.as_bytes(), "l.csv", Provenance::graphnet(), &o).unwrap();
        assert_eq!(p.curves.len(), 2);
        assert_eq!(p.curves[1].curves.model, "b:decoder");
        assert_eq!(p.curves[1].kind, Kind::Decoder);
    }

    #[test]
    fn bad_input_is_an_error_naming_the_line() {
        let mut o = ReadOptions::graphnet();
        o.layout = Layout::Long;
        o.roles = vec!["attn_q".into()];
        for (text, needle) in [
            ("model,stack,layer,role\n", "no `std` column"),
            ("model,stack,layer,role,std\na,,x,attn_q,1\n", "layer \"x\""),
            (
                "model,stack,layer,role,std\na,,0,attn_q,nan\n",
                "not a finite",
            ),
            (
                "model,stack,layer,role,std\na,,0,attn_q,-1\n",
                "not a finite",
            ),
            (
                "model,stack,layer,role,std\na,,0,attn_q,1\na,,0,attn_q,1\n",
                "appears twice",
            ),
            (
                "model,stack,layer,role,std\na,,0,attn_q,1\na,,1,attn_q,2\na,,0,attn_k,1\n",
                "role attn_k has rows for 1 of the 2 layers",
            ),
        ] {
            let e = read(text.as_bytes(), "bad.csv", Provenance::graphnet(), &o).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains("bad.csv") && msg.contains(needle), "{msg}");
        }
    }

    #[test]
    fn rounding_and_init_rule() {
        let c = Curves::new(
            "m",
            BTreeMap::from([("attn_q".to_string(), vec![0.01234, 0.05678, 0.0999])]),
        )
        .unwrap();
        let r = round_curves(&c, 3);
        assert_eq!(r.roles["attn_q"].values, vec![0.012, 0.057, 0.1]);
        assert!(!is_init_like(&r));
        let flat = Curves::new(
            "f",
            BTreeMap::from([("attn_q".to_string(), vec![0.02, 0.02, 0.02])]),
        )
        .unwrap();
        assert!(is_init_like(&flat));
    }
}

//! ONNX models: graph initializers, with weight-only quantized weights dequantized and
//! anonymous weights given conventional names from the graph.
//!
//! **Memory.** The file is memory-mapped and decoded with `prost` as one `ModelProto`, which
//! is the protobuf way and caps a model at 2 GiB ([`MAX_ONNX_BYTES`]; larger models keep their
//! weights in external data files, which are memory-mapped too). Initializer bytes
//! (`raw_data`, external data) are slices of the maps, never copied; values stored in the
//! typed fields (`float_data`, `int32_data`, ...) are decoded into memory by prost, as are the
//! graph's nodes.
//!
//! **Tensors.** Every floating-point initializer is listed under its name, with its shape as
//! stored (a `MatMul` weight is `[in, out]`, the transpose of the PyTorch weight; a
//! whole-matrix statistic does not change). A quantized weight becomes one logical F32 tensor,
//! named after the value the graph computes from it, whose values are dequantized while
//! streaming, exactly as the graph computes them in f32:
//! - `Cast(X_q, to=FLOAT)` → `Mul(·, X_scale)`: `q × scale`, the scale broadcast numpy-style
//!   against `X_q` (one per output feature, `[1, out]`, or per row, `[rows, 1]`);
//! - `DequantizeLinear(X_q, scale[, zero_point], axis)`: `(q − zero_point) × scale`, per
//!   tensor or per axis (blocked quantization is not folded).
//!
//! The integer tensor and its scale and zero point are then not listed separately.
//! Initializers inside `Constant` nodes serve as scales but are not listed.
//!
//! **Names.** A tensor whose name does not already end in `.weight` or `.bias` (e.g.
//! `onnx::MatMul_470`, `val_49`) is followed through pass-through nodes (`Cast`, `Identity`,
//! `Transpose`, `QuantizeLinear`, `DequantizeLinear`) to the `MatMul`, `Gemm` or `Gather` that
//! uses it. Its [`TensorInfo::role_name`] is then taken from the bias that the result is
//! added to (`Add` with an initializer `….query.bias` names the weight `….query.weight`; a
//! `Gemm`'s third input likewise), or failing that from the node name when it carries the
//! module path (`/model/layers.0/self_attn/q_proj/MatMul` → `model.layers.0.self_attn.q_proj.weight`).
//! A weight used in several places with different answers keeps only its own name.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use half::{bf16, f16};
use memmap2::Mmap;
use prost::Message;

use super::onnx_proto::{data_type as dt, ModelProto, NodeProto, TensorProto};
use super::safetensors::{decode_bf16, decode_f16, decode_f32};
use super::{TensorInfo, TensorReader, Values, DECODE_CHUNK};
use crate::dtype::DType;
use crate::error::{Error, Result};

/// Largest `.onnx` file decoded (protobuf messages are limited to 2 GiB).
pub const MAX_ONNX_BYTES: u64 = 2 << 30;
/// Most distinct external data files one model may reference.
pub const MAX_EXTERNAL_FILES: usize = 4096;
/// Most pass-through nodes followed from a weight to the node that uses it.
const MAX_HOPS: usize = 8;
/// Ops a weight passes through unchanged in value or layout-only.
const PASS_THROUGH: &[&str] = &[
    "Cast",
    "Identity",
    "Transpose",
    "QuantizeLinear",
    "DequantizeLinear",
];

/// Element types, by ONNX code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Elem {
    F32,
    F64,
    F16,
    BF16,
    I8,
    U8,
    I16,
    U16,
    I32,
    I64,
    U32,
    U64,
    Bool,
    Other(i32),
}

impl Elem {
    fn from_code(c: i32) -> Self {
        match c {
            dt::FLOAT => Elem::F32,
            dt::DOUBLE => Elem::F64,
            dt::FLOAT16 => Elem::F16,
            dt::BFLOAT16 => Elem::BF16,
            dt::INT8 => Elem::I8,
            dt::UINT8 => Elem::U8,
            dt::INT16 => Elem::I16,
            dt::UINT16 => Elem::U16,
            dt::INT32 => Elem::I32,
            dt::INT64 => Elem::I64,
            dt::UINT32 => Elem::U32,
            dt::UINT64 => Elem::U64,
            dt::BOOL => Elem::Bool,
            other => Elem::Other(other),
        }
    }

    fn size(self) -> Option<u64> {
        Some(match self {
            Elem::F64 | Elem::I64 | Elem::U64 => 8,
            Elem::F32 | Elem::I32 | Elem::U32 => 4,
            Elem::F16 | Elem::BF16 | Elem::I16 | Elem::U16 => 2,
            Elem::I8 | Elem::U8 | Elem::Bool => 1,
            Elem::Other(_) => return None,
        })
    }

    fn dtype(self) -> DType {
        match self {
            Elem::F32 => DType::F32,
            Elem::F64 => DType::F64,
            Elem::F16 => DType::F16,
            Elem::BF16 => DType::BF16,
            Elem::I8 => DType::I8,
            Elem::U8 => DType::Other("U8".into()),
            Elem::I16 => DType::Other("I16".into()),
            Elem::U16 => DType::Other("U16".into()),
            Elem::I32 => DType::Other("I32".into()),
            Elem::I64 => DType::Other("I64".into()),
            Elem::U32 => DType::Other("U32".into()),
            Elem::U64 => DType::Other("U64".into()),
            Elem::Bool => DType::Other("BOOL".into()),
            Elem::Other(c) => DType::Other(format!("ONNX data type {c}")),
        }
    }

    /// Integer types a quantized weight can have (exact in f32).
    fn is_small_int(self) -> bool {
        matches!(self, Elem::I8 | Elem::U8 | Elem::I16 | Elem::U16)
    }
}

/// Where an initializer's values are.
#[derive(Clone, Debug)]
enum Data {
    /// Little-endian bytes (`raw_data` or external data), a slice of a memory map.
    Bytes(Bytes),
    /// `float_data`.
    F32(Vec<f32>),
    /// `double_data`.
    F64(Vec<f64>),
    /// `int32_data` (also 8/16-bit integers and 16-bit float bit patterns).
    I32(Vec<i32>),
    /// `int64_data`.
    I64,
    /// No data: an unsupported type.
    None,
}

/// A constant tensor of the graph (initializer or `Constant` node value).
#[derive(Clone, Debug)]
struct Init {
    name: String,
    dims: Vec<u64>,
    numel: u64,
    elem: Elem,
    data: Data,
    /// From a `Constant` node (never listed).
    constant: bool,
}

/// A dequantized weight: `(q − zero) × scale`, scale broadcast by `strides`.
#[derive(Clone, Debug)]
struct Dequant {
    q: usize,
    scale: Vec<f32>,
    zero: Option<Vec<i32>>,
    /// For each dimension of `q`, the step in `scale` (0 where broadcast).
    strides: Vec<u64>,
}

#[derive(Clone, Debug)]
enum Logical {
    Plain(usize),
    Dequant(Box<Dequant>),
}

/// An opened, validated ONNX model.
pub struct OnnxReader {
    path: PathBuf,
    inits: Vec<Init>,
    tensors: Vec<TensorInfo>,
    logical: Vec<Logical>,
    producer: String,
}

/// Open `path` as this format.
pub fn open(path: &Path) -> Result<Box<dyn TensorReader>> {
    Ok(Box::new(OnnxReader::open(path)?))
}

fn map_file(path: &Path) -> Result<Mmap> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: the map is read-only; a file truncated by another process while mapped can
    // raise SIGBUS, which no safe mmap reader can rule out.
    unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))
}

/// Memory-mapped external data files, by location.
struct External<'a> {
    model: &'a Path,
    dir: PathBuf,
    files: HashMap<String, Bytes>,
}

impl External<'_> {
    fn slice(&mut self, t: &TensorProto, want: u64) -> Result<Bytes> {
        let bad = |reason: String| Error::tensor(self.model, &t.name, reason);
        let mut location = None;
        let mut offset = 0u64;
        let mut length = None;
        for e in &t.external_data {
            match e.key.as_str() {
                "location" => location = Some(e.value.clone()),
                "offset" => {
                    offset = e.value.parse().map_err(|_| {
                        bad(format!(
                            "external data offset {:?} is not a number",
                            e.value
                        ))
                    })?
                }
                "length" => {
                    length = Some(e.value.parse::<u64>().map_err(|_| {
                        bad(format!(
                            "external data length {:?} is not a number",
                            e.value
                        ))
                    })?)
                }
                _ => {}
            }
        }
        let location = location.ok_or_else(|| bad("external data without a location".into()))?;
        let rel = Path::new(&location);
        if location.is_empty() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(bad(format!(
                "external data location {location:?} is not a plain relative path inside the model's directory"
            )));
        }
        let length = length.unwrap_or(want);
        if length != want {
            return Err(bad(format!(
                "external data length {length} differs from the {want} bytes its shape and type need"
            )));
        }
        if !self.files.contains_key(&location) {
            if self.files.len() >= MAX_EXTERNAL_FILES {
                return Err(bad(format!(
                    "more than {MAX_EXTERNAL_FILES} external data files"
                )));
            }
            let p = self.dir.join(rel);
            let map = map_file(&p)?;
            self.files.insert(location.clone(), Bytes::from_owner(map));
        }
        let file = &self.files[&location];
        let end = offset
            .checked_add(length)
            .filter(|&e| e <= file.len() as u64)
            .ok_or_else(|| {
                bad(format!(
                    "external data {location}: {length} bytes at offset {offset} run past its end ({} bytes)",
                    file.len()
                ))
            })?;
        Ok(file.slice(offset as usize..end as usize))
    }
}

/// Validate one tensor and locate its data (typed values are moved, not copied).
fn init_of(mut t: TensorProto, constant: bool, ext: &mut External<'_>) -> Result<Init> {
    let path = ext.model;
    let tname = t.name.clone();
    let bad = |reason: String| Error::tensor(path, &tname, reason);
    let mut dims = Vec::with_capacity(t.dims.len());
    for &d in &t.dims {
        dims.push(
            u64::try_from(d).map_err(|_| bad(format!("negative dimension in {:?}", t.dims)))?,
        );
    }
    let numel = dims
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad(format!("shape {dims:?} overflows")))?;
    let elem = Elem::from_code(t.data_type);
    let Some(size) = elem.size() else {
        return Ok(Init {
            name: t.name.clone(),
            dims,
            numel,
            elem,
            data: Data::None,
            constant,
        });
    };
    let want = numel
        .checked_mul(size)
        .ok_or_else(|| bad(format!("shape {dims:?} overflows in bytes")))?;
    let count = |n: usize, field: &str| -> Result<()> {
        if n as u64 != numel {
            return Err(bad(format!(
                "{field} holds {n} values but shape {dims:?} needs {numel}"
            )));
        }
        Ok(())
    };
    let data = if t.data_location == 1 {
        Data::Bytes(ext.slice(&t, want)?)
    } else if t.data_location != 0 {
        return Err(bad(format!("unknown data_location {}", t.data_location)));
    } else if !t.raw_data.is_empty() || numel == 0 {
        if t.raw_data.len() as u64 != want {
            return Err(bad(format!(
                "raw_data holds {} bytes but shape {dims:?} × {size} bytes needs {want}",
                t.raw_data.len()
            )));
        }
        Data::Bytes(t.raw_data.clone())
    } else {
        match elem {
            Elem::F32 => {
                count(t.float_data.len(), "float_data")?;
                Data::F32(std::mem::take(&mut t.float_data))
            }
            Elem::F64 => {
                count(t.double_data.len(), "double_data")?;
                Data::F64(std::mem::take(&mut t.double_data))
            }
            Elem::I64 => {
                count(t.int64_data.len(), "int64_data")?;
                Data::I64
            }
            Elem::F16
            | Elem::BF16
            | Elem::I8
            | Elem::U8
            | Elem::I16
            | Elem::U16
            | Elem::I32
            | Elem::Bool => {
                count(t.int32_data.len(), "int32_data")?;
                Data::I32(std::mem::take(&mut t.int32_data))
            }
            _ => Data::None,
        }
    };
    Ok(Init {
        name: t.name.clone(),
        dims,
        numel,
        elem,
        data,
        constant,
    })
}

/// Numpy-style broadcast of `scale` against `q`: the step in `scale` for each dim of `q`, if
/// the result has `q`'s shape.
fn broadcast(q: &[u64], scale: &[u64]) -> Option<Vec<u64>> {
    if scale.len() > q.len() {
        let extra = scale.len() - q.len();
        if scale[..extra].iter().any(|&d| d != 1) {
            return None;
        }
        return broadcast(q, &scale[extra..]);
    }
    let pad = q.len() - scale.len();
    let mut strides = vec![0u64; q.len()];
    let mut step = 1u64;
    for k in (0..q.len()).rev() {
        let s = if k >= pad { scale[k - pad] } else { 1 };
        if s == q[k] && s != 1 {
            strides[k] = step;
        } else if s != 1 {
            return None;
        }
        step = step.checked_mul(s)?;
    }
    Some(strides)
}

fn attr_i(node: &NodeProto, name: &str) -> Option<i64> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.i)
}

/// `a.b.c` from `/a/b/c/MatMul`; None for names without a module path.
fn path_name(node_name: &str) -> Option<String> {
    let trimmed = node_name.strip_prefix('/')?;
    let mut segs: Vec<&str> = trimmed.split('/').filter(|s| !s.is_empty()).collect();
    segs.pop()?;
    if segs.is_empty() {
        return None;
    }
    Some(format!("{}.weight", segs.join(".")))
}

fn is_named(name: &str) -> bool {
    name.ends_with(".weight") || name.ends_with(".bias")
}

impl OnnxReader {
    /// Open and validate `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let len = std::fs::metadata(path)
            .map_err(|e| Error::io(path, e))?
            .len();
        if len > MAX_ONNX_BYTES {
            return Err(Error::header(
                path,
                format!(
                    "{len} bytes is over protobuf's {MAX_ONNX_BYTES}-byte limit (models this large keep their weights in external data files)"
                ),
            ));
        }
        let map = map_file(path)?;
        let model = ModelProto::decode(Bytes::from_owner(map))
            .map_err(|e| Error::header(path, format!("not an ONNX ModelProto: {e}")))?;
        let mut graph = model
            .graph
            .ok_or_else(|| Error::header(path, "the ModelProto has no graph"))?;
        let mut ext = External {
            model: path,
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            files: HashMap::new(),
        };

        // Constant tensors: initializers, then Constant node values.
        let mut inits = Vec::with_capacity(graph.initializer.len());
        let mut by_name: HashMap<String, usize> = HashMap::new();
        for t in std::mem::take(&mut graph.initializer) {
            if by_name.insert(t.name.clone(), inits.len()).is_some() {
                return Err(Error::tensor(path, &t.name, "initializer declared twice"));
            }
            inits.push(init_of(t, false, &mut ext)?);
        }
        for n in &graph.node {
            if n.op_type != "Constant" || !n.domain.is_empty() {
                continue;
            }
            let (Some(out), Some(t)) = (
                n.output.first(),
                n.attribute
                    .iter()
                    .find(|a| a.name == "value")
                    .and_then(|a| a.t.as_ref()),
            ) else {
                continue;
            };
            if by_name.contains_key(out) {
                continue;
            }
            let mut t = t.clone();
            t.name = out.clone();
            by_name.insert(out.clone(), inits.len());
            inits.push(init_of(t, true, &mut ext)?);
        }

        let nodes = &graph.node;
        let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, n) in nodes.iter().enumerate() {
            for inp in &n.input {
                if !inp.is_empty() {
                    consumers.entry(inp.as_str()).or_default().push(i);
                }
            }
        }

        // Quantized weights: (logical name, dequant), keyed by the q initializer.
        let mut folded: HashMap<usize, (String, Dequant)> = HashMap::new();
        let mut hidden: HashSet<usize> = HashSet::new();
        let float_init = |name: &str| -> Option<usize> {
            let &i = by_name.get(name)?;
            matches!(inits[i].elem, Elem::F32 | Elem::F16 | Elem::BF16).then_some(i)
        };
        for n in nodes.iter().filter(|n| n.domain.is_empty()) {
            let Some(&q) = n.input.first().and_then(|x| by_name.get(x)) else {
                continue;
            };
            if !inits[q].elem.is_small_int() || inits[q].constant || folded.contains_key(&q) {
                continue;
            }
            let qdims = inits[q].dims.clone();
            let found = match n.op_type.as_str() {
                "Cast" if attr_i(n, "to") == Some(i64::from(dt::FLOAT)) => {
                    let out = n.output.first().map(String::as_str).unwrap_or("");
                    match consumers.get(out).map(Vec::as_slice) {
                        Some(&[m]) if nodes[m].op_type == "Mul" && nodes[m].input.len() == 2 => {
                            let m = &nodes[m];
                            let other = if m.input[0] == out {
                                &m.input[1]
                            } else {
                                &m.input[0]
                            };
                            float_init(other).and_then(|s| {
                                let strides = broadcast(&qdims, &inits[s].dims)?;
                                Some((m.output.first()?.clone(), s, None, strides))
                            })
                        }
                        _ => None,
                    }
                }
                "DequantizeLinear" if attr_i(n, "block_size").unwrap_or(0) == 0 => {
                    let scale = n.input.get(1).and_then(|s| float_init(s));
                    let zero = match n.input.get(2).filter(|z| !z.is_empty()) {
                        None => Some(None),
                        Some(z) => by_name
                            .get(z)
                            .copied()
                            .filter(|&z| inits[z].elem == inits[q].elem)
                            .map(Some),
                    };
                    match (scale, zero) {
                        (Some(s), Some(z)) => {
                            let sdims = &inits[s].dims;
                            let strides = if inits[s].numel == 1 {
                                Some(vec![0; qdims.len()])
                            } else if sdims.len() == 1 && !qdims.is_empty() {
                                let rank = qdims.len() as i64;
                                let axis = attr_i(n, "axis").unwrap_or(1);
                                let axis = if axis < 0 { axis + rank } else { axis };
                                (0..rank)
                                    .contains(&axis)
                                    .then_some(axis as usize)
                                    .filter(|&a| qdims[a] == sdims[0])
                                    .map(|a| {
                                        let mut st = vec![0; qdims.len()];
                                        st[a] = 1;
                                        st
                                    })
                            } else {
                                None
                            };
                            let zero_ok = z.is_none_or(|z| inits[z].dims == inits[s].dims);
                            match (strides, n.output.first()) {
                                (Some(st), Some(out)) if zero_ok => Some((out.clone(), s, z, st)),
                                _ => None,
                            }
                        }
                        _ => None,
                    }
                }
                _ => None,
            };
            let Some((name, s, z, strides)) = found else {
                continue;
            };
            let scale = small_floats(path, &inits[s])?;
            let zero = match z {
                Some(z) => Some(small_ints(path, &inits[z])?),
                None => None,
            };
            hidden.insert(q);
            hidden.insert(s);
            if let Some(z) = z {
                hidden.insert(z);
            }
            folded.insert(
                q,
                (
                    name,
                    Dequant {
                        q,
                        scale,
                        zero,
                        strides,
                    },
                ),
            );
        }

        // The listed tensors, in initializer order.
        let mut tensors = Vec::new();
        let mut logical = Vec::new();
        for (i, init) in inits.iter().enumerate() {
            if init.constant {
                continue;
            }
            if let Some((name, dq)) = folded.remove(&i) {
                tensors.push(TensorInfo {
                    name,
                    role_name: None,
                    shape: init.dims.clone(),
                    dtype: init.elem.dtype(),
                    block: 1,
                });
                logical.push(Logical::Dequant(Box::new(dq)));
            } else if !hidden.contains(&i) {
                tensors.push(TensorInfo {
                    name: init.name.clone(),
                    role_name: None,
                    shape: init.dims.clone(),
                    dtype: init.elem.dtype(),
                    block: 1,
                });
                logical.push(Logical::Plain(i));
            }
        }

        // Conventional names for anonymous weights.
        let is_bias = |name: &str| by_name.contains_key(name) && name.ends_with(".bias");
        for t in tensors.iter_mut() {
            if is_named(&t.name) {
                continue;
            }
            let mut names = HashSet::new();
            let mut frontier = vec![t.name.clone()];
            for _ in 0..MAX_HOPS {
                let mut next = Vec::new();
                for value in &frontier {
                    for &c in consumers.get(value.as_str()).into_iter().flatten() {
                        let n = &nodes[c];
                        let op = n.op_type.as_str();
                        if PASS_THROUGH.contains(&op) && n.input.first() == Some(value) {
                            next.extend(n.output.first().cloned());
                            continue;
                        }
                        let derived = match op {
                            "MatMul" | "Gemm" => {
                                let bias = if op == "Gemm" {
                                    n.input.get(2).filter(|b| is_bias(b)).cloned()
                                } else {
                                    None
                                };
                                let bias = bias.or_else(|| {
                                    let out = n.output.first()?;
                                    consumers.get(out.as_str())?.iter().find_map(|&a| {
                                        let a = &nodes[a];
                                        if a.op_type != "Add" {
                                            return None;
                                        }
                                        a.input.iter().find(|x| *x != out && is_bias(x)).cloned()
                                    })
                                });
                                bias.map(|b| format!("{}.weight", &b[..b.len() - 5]))
                                    .or_else(|| path_name(&n.name))
                            }
                            "Gather" if n.input.first() == Some(value) => path_name(&n.name),
                            _ => None,
                        };
                        names.extend(derived);
                    }
                }
                if next.is_empty() {
                    break;
                }
                frontier = next;
            }
            if names.len() == 1 {
                t.role_name = names.into_iter().next();
            }
        }

        Ok(OnnxReader {
            path: path.to_path_buf(),
            inits,
            tensors,
            logical,
            producer: model.producer_name,
        })
    }

    /// The tool that wrote the model (`pytorch`, ...).
    pub fn producer(&self) -> &str {
        &self.producer
    }

    fn read_dequant(
        &self,
        dq: &Dequant,
        tensor: &str,
        range: Range<u64>,
        sink: &mut dyn FnMut(Values<'_>),
    ) -> Result<()> {
        let q = &self.inits[dq.q];
        let dims = &q.dims;
        // Coordinates of the first element, and its scale index.
        let mut coord = vec![0u64; dims.len()];
        let mut rest = range.start;
        for k in (0..dims.len()).rev() {
            if dims[k] > 0 {
                coord[k] = rest % dims[k];
                rest /= dims[k];
            }
        }
        let mut idx: u64 = coord.iter().zip(&dq.strides).map(|(c, s)| c * s).sum();
        let mut buf = Vec::with_capacity(DECODE_CHUNK);
        let mut failed = None;
        read_ints(&self.path, q, tensor, range, &mut |chunk| {
            buf.clear();
            for &x in chunk {
                let i = idx as usize;
                let (Some(&s), z) = (
                    dq.scale.get(i),
                    dq.zero.as_ref().map_or(Some(&0), |z| z.get(i)),
                ) else {
                    failed = Some(i);
                    break;
                };
                let z = *z.unwrap_or(&0);
                buf.push((x - z) as f32 * s);
                // Advance the coordinates (last dimension fastest).
                for k in (0..dims.len()).rev() {
                    coord[k] += 1;
                    idx += dq.strides[k];
                    if coord[k] < dims[k] {
                        break;
                    }
                    idx -= dq.strides[k] * dims[k];
                    coord[k] = 0;
                }
            }
            sink(Values::F32(&buf));
        })?;
        if let Some(i) = failed {
            return Err(Error::tensor(
                &self.path,
                tensor,
                format!("scale index {i} out of bounds"),
            ));
        }
        Ok(())
    }
}

impl TensorReader for OnnxReader {
    fn path(&self) -> &Path {
        &self.path
    }

    fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    fn read(
        &self,
        index: usize,
        range: Range<u64>,
        sink: &mut dyn FnMut(Values<'_>),
    ) -> Result<()> {
        let t = self.tensors.get(index).ok_or_else(|| {
            Error::tensor(&self.path, format!("#{index}"), "no such tensor index")
        })?;
        match &self.logical[index] {
            Logical::Plain(i) => read_float(&self.path, &self.inits[*i], &t.name, range, sink),
            Logical::Dequant(dq) => self.read_dequant(dq, &t.name, range, sink),
        }
    }
}

/// All values of a (small) float tensor: scales.
fn small_floats(path: &Path, init: &Init) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(init.numel as usize);
    read_float(path, init, &init.name, 0..init.numel, &mut |v| match v {
        Values::F32(x) => out.extend_from_slice(x),
        Values::F64(x) => out.extend(x.iter().map(|&y| y as f32)),
    })?;
    Ok(out)
}

/// All values of a (small) integer tensor: zero points.
fn small_ints(path: &Path, init: &Init) -> Result<Vec<i32>> {
    let mut out = Vec::with_capacity(init.numel as usize);
    read_ints(path, init, &init.name, 0..init.numel, &mut |x| {
        out.extend_from_slice(x)
    })?;
    Ok(out)
}

fn unsupported(path: &Path, tensor: &str, elem: Elem) -> Error {
    Error::UnsupportedDtype {
        path: path.to_path_buf(),
        tensor: tensor.to_owned(),
        dtype: elem.dtype().to_string(),
    }
}

fn check(path: &Path, init: &Init, tensor: &str, range: &Range<u64>) -> Result<()> {
    if range.start > range.end || range.end > init.numel {
        return Err(Error::tensor(
            path,
            tensor,
            format!("element range {range:?} out of bounds"),
        ));
    }
    Ok(())
}

fn byte_range<'a>(
    path: &Path,
    bytes: &'a Bytes,
    size: u64,
    tensor: &str,
    range: &Range<u64>,
) -> Result<&'a [u8]> {
    bytes
        .get((range.start * size) as usize..(range.end * size) as usize)
        .ok_or_else(|| {
            Error::tensor(
                path,
                tensor,
                format!("element range {range:?} out of bounds"),
            )
        })
}

fn read_float(
    path: &Path,
    init: &Init,
    tensor: &str,
    range: Range<u64>,
    sink: &mut dyn FnMut(Values<'_>),
) -> Result<()> {
    if !matches!(init.elem, Elem::F32 | Elem::F64 | Elem::F16 | Elem::BF16) {
        return Err(unsupported(path, tensor, init.elem));
    }
    check(path, init, tensor, &range)?;
    let (lo, hi) = (range.start as usize, range.end as usize);
    match (&init.data, init.elem) {
        (Data::Bytes(b), Elem::F32) => decode_f32(byte_range(path, b, 4, tensor, &range)?, sink),
        (Data::Bytes(b), Elem::F16) => decode_f16(byte_range(path, b, 2, tensor, &range)?, sink),
        (Data::Bytes(b), Elem::BF16) => decode_bf16(byte_range(path, b, 2, tensor, &range)?, sink),
        (Data::Bytes(b), Elem::F64) => {
            let bytes = byte_range(path, b, 8, tensor, &range)?;
            let mut buf = Vec::with_capacity(DECODE_CHUNK.min(bytes.len() / 8));
            for chunk in bytes.chunks(DECODE_CHUNK * 8) {
                buf.clear();
                buf.extend(
                    chunk
                        .chunks_exact(8)
                        .map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8]))),
                );
                sink(Values::F64(&buf));
            }
        }
        (Data::F32(v), _) => {
            for chunk in v[lo..hi].chunks(DECODE_CHUNK) {
                sink(Values::F32(chunk));
            }
        }
        (Data::F64(v), _) => {
            for chunk in v[lo..hi].chunks(DECODE_CHUNK) {
                sink(Values::F64(chunk));
            }
        }
        (Data::I32(v), Elem::F16 | Elem::BF16) => {
            let widen = |x: i32| {
                let bits = x as u16;
                if init.elem == Elem::F16 {
                    f16::from_bits(bits).to_f32()
                } else {
                    bf16::from_bits(bits).to_f32()
                }
            };
            let mut buf = Vec::with_capacity(DECODE_CHUNK.min(hi - lo));
            for chunk in v[lo..hi].chunks(DECODE_CHUNK) {
                buf.clear();
                buf.extend(chunk.iter().map(|&x| widen(x)));
                sink(Values::F32(&buf));
            }
        }
        _ => return Err(unsupported(path, tensor, init.elem)),
    }
    Ok(())
}

/// Integer values of an 8/16-bit integer tensor, as i32, in chunks.
fn read_ints(
    path: &Path,
    init: &Init,
    tensor: &str,
    range: Range<u64>,
    sink: &mut dyn FnMut(&[i32]),
) -> Result<()> {
    if !init.elem.is_small_int() {
        return Err(unsupported(path, tensor, init.elem));
    }
    check(path, init, tensor, &range)?;
    match &init.data {
        Data::I32(v) => {
            for chunk in v[range.start as usize..range.end as usize].chunks(DECODE_CHUNK) {
                sink(chunk);
            }
        }
        Data::Bytes(b) => {
            let size = init.elem.size().unwrap_or(1);
            let bytes = byte_range(path, b, size, tensor, &range)?;
            let mut buf = Vec::with_capacity(DECODE_CHUNK.min(bytes.len()));
            for chunk in bytes.chunks(DECODE_CHUNK * size as usize) {
                buf.clear();
                match init.elem {
                    Elem::I8 => buf.extend(chunk.iter().map(|&x| i32::from(x as i8))),
                    Elem::U8 => buf.extend(chunk.iter().map(|&x| i32::from(x))),
                    Elem::I16 => buf.extend(
                        chunk
                            .chunks_exact(2)
                            .map(|x| i32::from(i16::from_le_bytes([x[0], x[1]]))),
                    ),
                    _ => buf.extend(
                        chunk
                            .chunks_exact(2)
                            .map(|x| i32::from(u16::from_le_bytes([x[0], x[1]]))),
                    ),
                }
                sink(&buf);
            }
        }
        _ => return Err(unsupported(path, tensor, init.elem)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::onnx_proto::{AttributeProto, GraphProto, StringStringEntryProto};
    use super::*;

    fn tensor(name: &str, dims: &[i64], data_type: i32, raw: Vec<u8>) -> TensorProto {
        TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type,
            raw_data: raw.into(),
            ..Default::default()
        }
    }

    fn f32s(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn node(
        op: &str,
        name: &str,
        inputs: &[&str],
        outputs: &[&str],
        ints: &[(&str, i64)],
    ) -> NodeProto {
        NodeProto {
            op_type: op.into(),
            name: name.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            attribute: ints
                .iter()
                .map(|(n, i)| AttributeProto {
                    name: n.to_string(),
                    i: *i,
                    r#type: 2,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn model(inits: Vec<TensorProto>, nodes: Vec<NodeProto>) -> Vec<u8> {
        ModelProto {
            ir_version: 8,
            producer_name: "test".into(),
            graph: Some(GraphProto {
                node: nodes,
                initializer: inits,
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec()
    }

    fn open_bytes(dir: &Path, bytes: &[u8]) -> Result<OnnxReader> {
        let p = dir.join("model.onnx");
        std::fs::write(&p, bytes).unwrap();
        OnnxReader::open(&p)
    }

    fn values(r: &OnnxReader, name: &str) -> Vec<f32> {
        let i = r.tensors().iter().position(|t| t.name == name).unwrap();
        let mut out = Vec::new();
        r.read(i, 0..r.tensors()[i].numel(), &mut |v| {
            if let Values::F32(x) = v {
                out.extend_from_slice(x)
            }
        })
        .unwrap();
        out
    }

    fn listed(r: &OnnxReader) -> Vec<(&str, Option<&str>)> {
        r.tensors()
            .iter()
            .map(|t| (t.name.as_str(), t.role_name.as_deref()))
            .collect()
    }

    #[test]
    fn dequantize_linear_per_axis_with_zero_point_and_bias_names() {
        let tmp = tempfile::tempdir().unwrap();
        let q: Vec<u8> = [1i8, -2, 3, 4, 5, -6].iter().map(|&x| x as u8).collect();
        let bytes = model(
            vec![
                tensor("w_q", &[2, 3], dt::INT8, q.clone()),
                tensor("w_s", &[3], dt::FLOAT, f32s(&[0.5, 0.25, 2.0])),
                tensor("w_z", &[3], dt::INT8, vec![0, 1, 0xFF]),
                tensor("v_q", &[2, 3], dt::INT8, q),
                tensor("v_s", &[2], dt::FLOAT, f32s(&[1.0, 0.1])),
                tensor(
                    "model.layers.0.self_attn.q_proj.bias",
                    &[3],
                    dt::FLOAT,
                    f32s(&[0.0; 3]),
                ),
            ],
            vec![
                node(
                    "DequantizeLinear",
                    "dq",
                    &["w_q", "w_s", "w_z"],
                    &["w"],
                    &[],
                ),
                node("MatMul", "mm", &["x", "w"], &["y"], &[]),
                // The bias may come first or second.
                node(
                    "Add",
                    "add",
                    &["model.layers.0.self_attn.q_proj.bias", "y"],
                    &["z"],
                    &[],
                ),
                node(
                    "DequantizeLinear",
                    "dq2",
                    &["v_q", "v_s"],
                    &["v"],
                    &[("axis", 0)],
                ),
            ],
        );
        let r = open_bytes(tmp.path(), &bytes).unwrap();
        assert_eq!(
            listed(&r),
            [
                ("w", Some("model.layers.0.self_attn.q_proj.weight")),
                ("v", None),
                ("model.layers.0.self_attn.q_proj.bias", None)
            ]
        );
        assert_eq!(r.tensors()[0].dtype, DType::I8);
        assert_eq!(
            values(&r, "w"),
            [0.5, -3.0 * 0.25, 4.0 * 2.0, 2.0, 4.0 * 0.25, -5.0 * 2.0]
        );
        assert_eq!(
            values(&r, "v"),
            [1.0, -2.0, 3.0, 4.0 * 0.1, 5.0 * 0.1, -6.0 * 0.1]
        );
        // A sub-range starts mid-row with the right scales.
        let mut part = Vec::new();
        r.read(0, 2..5, &mut |v| {
            if let Values::F32(x) = v {
                part.extend_from_slice(x)
            }
        })
        .unwrap();
        assert_eq!(part, [8.0, 2.0, 1.0]);
    }

    #[test]
    fn cast_mul_with_typed_fields_row_scales_and_node_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let q = TensorProto {
            name: "e_q".into(),
            dims: vec![3, 2],
            data_type: dt::INT8,
            int32_data: vec![1, -1, 2, -2, 127, -127],
            ..Default::default()
        };
        let s = TensorProto {
            name: "e_scale".into(),
            dims: vec![3, 1],
            data_type: dt::FLOAT,
            float_data: vec![0.5, 1.0, 0.01],
            ..Default::default()
        };
        let h = TensorProto {
            name: "onnx::MatMul_9".into(),
            dims: vec![2, 2],
            data_type: dt::FLOAT16,
            int32_data: [1.0f32, -1.0, 0.5, 2.0]
                .iter()
                .map(|&x| i32::from(f16::from_f32(x).to_bits()))
                .collect(),
            ..Default::default()
        };
        let bytes = model(
            vec![q, s, h],
            vec![
                node("Cast", "c", &["e_q"], &["e_f"], &[("to", 1)]),
                node("Mul", "m", &["e_scale", "e_f"], &["e"], &[]),
                node(
                    "Gather",
                    "/model/embed_tokens/Gather",
                    &["e", "ids"],
                    &["g"],
                    &[],
                ),
                node("Transpose", "t", &["onnx::MatMul_9"], &["ht"], &[]),
                node(
                    "MatMul",
                    "/model/layers.3/mlp/down_proj/MatMul",
                    &["g", "ht"],
                    &["o"],
                    &[],
                ),
            ],
        );
        let r = open_bytes(tmp.path(), &bytes).unwrap();
        assert_eq!(
            listed(&r),
            [
                ("e", Some("model.embed_tokens.weight")),
                (
                    "onnx::MatMul_9",
                    Some("model.layers.3.mlp.down_proj.weight")
                )
            ]
        );
        assert_eq!(values(&r, "e"), [0.5, -0.5, 2.0, -2.0, 1.27, -1.27]);
        assert_eq!(values(&r, "onnx::MatMul_9"), [1.0, -1.0, 0.5, 2.0]);
    }

    #[test]
    fn ambiguous_uses_keep_the_stored_name() {
        let tmp = tempfile::tempdir().unwrap();
        let bytes = model(
            vec![
                tensor("w", &[1], dt::FLOAT, f32s(&[1.0])),
                tensor("a.q.bias", &[1], dt::FLOAT, f32s(&[0.0])),
                tensor("a.k.bias", &[1], dt::FLOAT, f32s(&[0.0])),
            ],
            vec![
                node("MatMul", "m1", &["x", "w"], &["y1"], &[]),
                node("Add", "a1", &["y1", "a.q.bias"], &["z1"], &[]),
                node("MatMul", "m2", &["x", "w"], &["y2"], &[]),
                node("Add", "a2", &["y2", "a.k.bias"], &["z2"], &[]),
            ],
        );
        let r = open_bytes(tmp.path(), &bytes).unwrap();
        assert_eq!(listed(&r)[0], ("w", None));
    }

    #[test]
    fn external_data_is_read_and_confined_to_the_model_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let mut blob = vec![0u8; 8];
        blob.extend(f32s(&[1.5, -2.5]));
        std::fs::write(tmp.path().join("weights.bin"), &blob).unwrap();
        let ext = |location: &str, offset: &str, length: Option<&str>| {
            let mut entries = vec![
                StringStringEntryProto {
                    key: "location".into(),
                    value: location.into(),
                },
                StringStringEntryProto {
                    key: "offset".into(),
                    value: offset.into(),
                },
            ];
            if let Some(l) = length {
                entries.push(StringStringEntryProto {
                    key: "length".into(),
                    value: l.into(),
                });
            }
            let t = TensorProto {
                name: "ext.weight".into(),
                dims: vec![2],
                data_type: dt::FLOAT,
                data_location: 1,
                external_data: entries,
                ..Default::default()
            };
            open_bytes(tmp.path(), &model(vec![t], vec![]))
        };
        let r = ext("weights.bin", "8", Some("8")).unwrap();
        assert_eq!(values(&r, "ext.weight"), [1.5, -2.5]);
        for (loc, off, len, needle) in [
            ("../weights.bin", "8", None, "not a plain relative path"),
            ("/etc/passwd", "0", None, "not a plain relative path"),
            ("weights.bin", "12", None, "run past its end"),
            ("weights.bin", "8", Some("4"), "differs"),
            ("weights.bin", "x", None, "not a number"),
            ("missing.bin", "0", None, "missing.bin"),
        ] {
            let e = ext(loc, off, len).err().expect(loc).to_string();
            assert!(e.contains("model.onnx") || e.contains(loc), "{e}");
            assert!(e.contains(needle), "{loc}: {e}");
        }
    }

    #[test]
    fn raw_data_is_a_slice_of_the_map_not_a_copy() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("model.onnx");
        let bytes = model(
            vec![tensor("w", &[256], dt::FLOAT, f32s(&[0.5; 256]))],
            vec![],
        );
        std::fs::write(&p, bytes).unwrap();
        let map = map_file(&p).unwrap();
        let span = map.as_ptr() as usize..map.as_ptr() as usize + map.len();
        let m = ModelProto::decode(Bytes::from_owner(map)).unwrap();
        let raw = &m.graph.unwrap().initializer[0].raw_data;
        assert_eq!(raw.len(), 1024);
        assert!(span.contains(&(raw.as_ptr() as usize)));
    }

    #[test]
    fn broken_models_are_refused_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let good = model(
            vec![tensor("big.weight", &[64], dt::FLOAT, f32s(&[1.0; 64]))],
            vec![node("MatMul", "m", &["x", "big.weight"], &["y"], &[])],
        );
        // Any truncation: an error or (at a field boundary) a smaller valid model; never a panic.
        for cut in 0..good.len() {
            let _ = open_bytes(tmp.path(), &good[..cut]);
        }
        // Cut inside the tensor data: a clear decode error naming the file.
        let e = open_bytes(tmp.path(), &good[..good.len() / 2])
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("model.onnx") && e.contains("not an ONNX ModelProto"),
            "{e}"
        );
        for (t, needle) in [
            (
                tensor("a", &[3], dt::FLOAT, f32s(&[1.0; 2])),
                "raw_data holds 8 bytes",
            ),
            (tensor("a", &[-1], dt::FLOAT, vec![]), "negative dimension"),
            (
                tensor("a", &[1 << 40, 1 << 40], dt::FLOAT, vec![]),
                "overflows",
            ),
            (
                TensorProto {
                    name: "a".into(),
                    dims: vec![4],
                    data_type: dt::FLOAT,
                    float_data: vec![1.0],
                    ..Default::default()
                },
                "float_data holds 1 values",
            ),
        ] {
            let e = open_bytes(tmp.path(), &model(vec![t], vec![]))
                .err()
                .expect(needle)
                .to_string();
            assert!(
                e.contains("model.onnx") && e.contains("tensor a") && e.contains(needle),
                "{e}"
            );
        }
        let e = open_bytes(tmp.path(), &ModelProto::default().encode_to_vec())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("no graph"), "{e}");
        // Over the 2 GiB cap (a sparse file): refused before mapping.
        let p = tmp.path().join("huge.onnx");
        File::create(&p)
            .unwrap()
            .set_len(MAX_ONNX_BYTES + 1)
            .unwrap();
        let e = OnnxReader::open(&p).err().unwrap().to_string();
        assert!(e.contains("huge.onnx") && e.contains("limit"), "{e}");
        // Unsupported types are listed and refused on read, by name.
        let r = open_bytes(
            tmp.path(),
            &model(vec![tensor("ids", &[1], dt::INT64, vec![0; 8])], vec![]),
        )
        .unwrap();
        match r.read(0, 0..0, &mut |_| {}) {
            Err(Error::UnsupportedDtype { tensor, dtype, .. }) => {
                assert_eq!((tensor.as_str(), dtype.as_str()), ("ids", "I64"))
            }
            other => panic!("{other:?}"),
        }
    }
}

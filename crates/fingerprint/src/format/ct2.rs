//! CTranslate2 `model.bin` files, memory-mapped.
//!
//! Layout (all integers little-endian, no padding, so data starts at odd offsets and is read
//! unaligned): `u32` binary version (1 to 6); from version 2 a string spec name and a `u32`
//! spec revision; `u32` variable count; per variable a string name, `u8` rank, rank × `u32`
//! dims, then (version ≥ 4) `u8` dtype code and `u32` byte count, or (older) `u8` item size
//! and `u32` element count, then the raw bytes; from version 3 a `u32` alias count and
//! (alias, target) string pairs. A string is a `u16` length counting a trailing NUL, the
//! bytes, and the NUL. The whole header is validated before any value is read: every length
//! inside the file, byte counts equal to elements × element size, names unique, and the
//! alias table ending exactly at the end of the file.
//!
//! Quantized weights (`int8`, `int16`) come with a `<name>_scale` variable, and are exposed
//! dequantized the way CTranslate2 does it (`ops::Dequantize` on CPU): each value is
//! `q × (1 / scale)` in f32, with one scale per row (int8: every dimension but the last) or a
//! single scale (int16). The scale variables themselves are not listed. Aliases (tied weights
//! such as `decoder/projection/weight` → `decoder/embeddings/weight`) are not listed either,
//! since their data is the target's.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::safetensors::{decode_bf16, decode_f16, decode_f32};
use super::{TensorInfo, TensorReader, Values, DECODE_CHUNK};
use crate::config::ConfigSummary;
use crate::dtype::DType;
use crate::error::{Error, Result};

/// Newest binary version understood (CTranslate2's `CURRENT_BINARY_VERSION`).
pub const MAX_VERSION: u32 = 6;
/// Most variables a file may declare.
pub const MAX_VARIABLES: u32 = 1 << 20;
/// Most aliases a file may declare.
pub const MAX_ALIASES: u32 = 1 << 20;
/// Highest rank accepted (CTranslate2 variables have at most 4 dimensions).
pub const MAX_RANK: u8 = 8;

/// CTranslate2's element types, by their code in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Code {
    F32,
    I8,
    I16,
    I32,
    F16,
    BF16,
}

impl Code {
    fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => Code::F32,
            1 => Code::I8,
            2 => Code::I16,
            3 => Code::I32,
            4 => Code::F16,
            5 => Code::BF16,
            _ => return None,
        })
    }

    /// Binary versions before 4 store an item size instead of a type.
    fn from_item_size(size: u8) -> Option<Self> {
        Some(match size {
            4 => Code::F32,
            2 => Code::I16,
            1 => Code::I8,
            _ => return None,
        })
    }

    fn size(self) -> u64 {
        match self {
            Code::F32 | Code::I32 => 4,
            Code::F16 | Code::BF16 | Code::I16 => 2,
            Code::I8 => 1,
        }
    }

    fn dtype(self) -> DType {
        match self {
            Code::F32 => DType::F32,
            Code::F16 => DType::F16,
            Code::BF16 => DType::BF16,
            Code::I8 => DType::I8,
            Code::I16 => DType::Other("I16".into()),
            Code::I32 => DType::Other("I32".into()),
        }
    }
}

/// One variable as declared in the file.
struct Var {
    name: String,
    shape: Vec<u64>,
    code: Code,
    /// Absolute byte offset of the data.
    start: usize,
    /// Bytes of data.
    len: usize,
}

/// The dequantization scale of an int8/int16 variable.
struct Scale {
    /// Index of the scale variable.
    var: usize,
    /// Elements sharing one scale (a row; the whole tensor for a single scale).
    per: u64,
}

/// An opened, validated CTranslate2 model file.
pub struct Ct2Reader {
    path: PathBuf,
    map: Mmap,
    version: u32,
    spec: Option<String>,
    revision: u32,
    vars: Vec<Var>,
    /// Listed tensors, and for each the variable and its scale.
    tensors: Vec<TensorInfo>,
    listed: Vec<(usize, Option<Scale>)>,
    aliases: Vec<(String, String)>,
    config: ConfigSummary,
}

/// Open `path` as this format.
pub fn open(path: &Path) -> Result<Box<dyn TensorReader>> {
    Ok(Box::new(Ct2Reader::open(path)?))
}

/// A bounds-checked cursor over the file.
struct Cursor<'a> {
    path: &'a Path,
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &dyn Fn() -> String) -> Result<&'a [u8]> {
        match self.pos.checked_add(n).filter(|&e| e <= self.buf.len()) {
            Some(end) => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(Error::Truncated {
                path: self.path.to_path_buf(),
                what: format!("{} at byte {}", what(), self.pos),
                needed: self.pos as u64 + n as u64,
                actual: self.buf.len() as u64,
            }),
        }
    }

    fn u8(&mut self, what: &dyn Fn() -> String) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &dyn Fn() -> String) -> Result<u16> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A `u16`-length string with its trailing NUL.
    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String> {
        let n = self.u16(what)? as usize;
        let at = self.pos;
        let bytes = self.take(n, what)?;
        let Some((&0, text)) = bytes.split_last() else {
            return Err(Error::header(
                self.path,
                format!("{} at byte {at}: string is not NUL-terminated", what()),
            ));
        };
        String::from_utf8(text.to_vec()).map_err(|_| {
            Error::header(
                self.path,
                format!("{} at byte {at}: string is not valid UTF-8", what()),
            )
        })
    }
}

impl Ct2Reader {
    /// Open and validate `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: the map is read-only; a file truncated by another process while mapped can
        // raise SIGBUS, which no safe mmap reader can rule out.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let mut c = Cursor {
            path,
            buf: &map,
            pos: 0,
        };
        let version = c.u32(&|| "the binary version".into())?;
        if version == 0 || version > MAX_VERSION {
            return Err(Error::header(
                path,
                format!("CTranslate2 binary version {version} is not 1 to {MAX_VERSION}"),
            ));
        }
        let (spec, revision) = if version >= 2 {
            let s = c.string(&|| "the spec name".into())?;
            (Some(s), c.u32(&|| "the spec revision".into())?)
        } else {
            (None, 1)
        };
        let count = c.u32(&|| "the variable count".into())?;
        if count > MAX_VARIABLES {
            return Err(Error::header(
                path,
                format!("{count} variables, over the cap of {MAX_VARIABLES}"),
            ));
        }
        let mut vars: Vec<Var> = Vec::new();
        let mut by_name: HashMap<String, usize> = HashMap::new();
        for i in 0..count {
            let name = c.string(&|| format!("the name of variable {i}"))?;
            let what = |field: &str| {
                let (name, field) = (name.clone(), field.to_owned());
                move || format!("the {field} of variable {name}")
            };
            let rank = c.u8(&what("rank"))?;
            if rank > MAX_RANK {
                return Err(Error::tensor(
                    path,
                    &name,
                    format!("rank {rank} exceeds {MAX_RANK}"),
                ));
            }
            let mut shape = Vec::with_capacity(rank as usize);
            for _ in 0..rank {
                shape.push(u64::from(c.u32(&what("dimensions"))?));
            }
            let numel = shape
                .iter()
                .try_fold(1u64, |a, &d| a.checked_mul(d))
                .ok_or_else(|| Error::tensor(path, &name, format!("shape {shape:?} overflows")))?;
            let (code, bytes) = if version >= 4 {
                let id = c.u8(&what("dtype"))?;
                let code = Code::from_id(id).ok_or_else(|| {
                    Error::tensor(path, &name, format!("unknown dtype code {id}"))
                })?;
                (code, u64::from(c.u32(&what("byte count"))?))
            } else {
                let item = c.u8(&what("item size"))?;
                let code = Code::from_item_size(item).ok_or_else(|| {
                    Error::tensor(path, &name, format!("unknown item size {item}"))
                })?;
                let n = u64::from(c.u32(&what("element count"))?);
                (code, n.saturating_mul(u64::from(item)))
            };
            if numel.checked_mul(code.size()) != Some(bytes) {
                return Err(Error::tensor(
                    path,
                    &name,
                    format!(
                        "{bytes} data bytes, but shape {shape:?} of {:?} needs {}",
                        code,
                        numel.saturating_mul(code.size())
                    ),
                ));
            }
            let start = c.pos;
            c.take(bytes as usize, &what("data"))?;
            if by_name.insert(name.clone(), vars.len()).is_some() {
                return Err(Error::tensor(path, &name, "declared twice"));
            }
            vars.push(Var {
                name,
                shape,
                code,
                start,
                len: bytes as usize,
            });
        }
        let mut aliases = Vec::new();
        if version >= 3 {
            let n = c.u32(&|| "the alias count".into())?;
            if n > MAX_ALIASES {
                return Err(Error::header(
                    path,
                    format!("{n} aliases, over the cap of {MAX_ALIASES}"),
                ));
            }
            for i in 0..n {
                let alias = c.string(&|| format!("alias {i}"))?;
                let target = c.string(&|| format!("the target of alias {alias}"))?;
                aliases.push((alias, target));
            }
        }
        if c.pos != map.len() {
            return Err(Error::header(
                path,
                format!(
                    "the model ends at byte {} but the file has {} bytes",
                    c.pos,
                    map.len()
                ),
            ));
        }

        // Pair quantized weights with their scales; scales are not listed.
        let mut consumed = BTreeSet::new();
        let mut scales: HashMap<usize, Scale> = HashMap::new();
        for (i, v) in vars.iter().enumerate() {
            if !matches!(v.code, Code::I8 | Code::I16) || v.shape.is_empty() {
                continue;
            }
            let Some(&s) = by_name.get(&format!("{}_scale", v.name)) else {
                continue;
            };
            let sv = &vars[s];
            if !matches!(sv.code, Code::F32 | Code::F16 | Code::BF16) {
                return Err(Error::tensor(
                    path,
                    &sv.name,
                    format!("quantization scale has type {:?}, not a float", sv.code),
                ));
            }
            let numel: u64 = v.shape.iter().product();
            let cols = *v.shape.last().unwrap_or(&1);
            let scale_n = sv.len as u64 / sv.code.size();
            let rows = numel.checked_div(cols).unwrap_or(0);
            let per = if scale_n == 1 {
                numel
            } else if cols > 0 && scale_n == rows {
                cols
            } else {
                return Err(Error::tensor(
                    path,
                    &v.name,
                    format!(
                        "{scale_n} quantization scales fit neither one per row ({rows} rows) nor one per tensor"
                    ),
                ));
            };
            consumed.insert(s);
            scales.insert(i, Scale { var: s, per });
        }
        let mut tensors = Vec::new();
        let mut listed = Vec::new();
        for (i, v) in vars.iter().enumerate() {
            if consumed.contains(&i) {
                continue;
            }
            tensors.push(TensorInfo {
                name: v.name.clone(),
                role_name: None,
                shape: v.shape.clone(),
                dtype: v.code.dtype(),
                block: 1,
            });
            listed.push((i, scales.remove(&i)));
        }
        let mut reader = Ct2Reader {
            path: path.to_path_buf(),
            map,
            version,
            spec,
            revision,
            vars,
            tensors,
            listed,
            aliases,
            config: ConfigSummary::default(),
        };
        reader.config = reader.summarise();
        Ok(reader)
    }

    /// Binary version of the file.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Spec name (`WhisperSpec`, `TransformerDecoderModelSpec`, ...) and revision.
    pub fn spec(&self) -> (Option<&str>, u32) {
        (self.spec.as_deref(), self.revision)
    }

    /// Aliases `(alias, target)` as stored.
    pub fn aliases(&self) -> &[(String, String)] {
        &self.aliases
    }

    /// An integer scalar variable (CTranslate2 stores configuration this way).
    fn scalar(&self, name: &str) -> Option<u64> {
        let v = self
            .vars
            .iter()
            .find(|v| v.name == name && v.shape.is_empty())?;
        let b = self.map.get(v.start..v.start + v.len)?;
        match v.code {
            Code::I8 => u64::try_from(b[0] as i8).ok(),
            Code::I16 => u64::try_from(i16::from_le_bytes(b.try_into().ok()?)).ok(),
            Code::I32 => u64::try_from(i32::from_le_bytes(b.try_into().ok()?)).ok(),
            _ => None,
        }
    }

    /// Facts the file records: head counts (scalars), layer counts (from the `layer_N` names)
    /// and the embedding width.
    fn summarise(&self) -> ConfigSummary {
        let count_layers = |stack: &str| -> Option<u64> {
            let n: BTreeSet<u64> = self
                .vars
                .iter()
                .filter_map(|v| v.name.strip_prefix(stack)?.strip_prefix("/layer_"))
                .filter_map(|rest| rest.split('/').next()?.parse().ok())
                .collect();
            (!n.is_empty()).then_some(n.len() as u64)
        };
        let encoder_layers = count_layers("encoder");
        let decoder_layers = count_layers("decoder");
        let width = ["decoder/embeddings/weight", "encoder/embeddings/weight"]
            .iter()
            .chain(["decoder/embeddings_0/weight", "encoder/embeddings_0/weight"].iter())
            .find_map(|n| {
                let v = self.vars.iter().find(|v| &v.name == n)?;
                (v.shape.len() == 2).then(|| v.shape[1])
            });
        let heads = ["decoder/num_heads", "encoder/num_heads", "num_heads"]
            .iter()
            .find_map(|n| self.scalar(n));
        let kv_heads = ["decoder/num_heads_kv", "encoder/num_heads_kv"]
            .iter()
            .find_map(|n| self.scalar(n));
        ConfigSummary {
            architecture: self.spec.clone(),
            layers: decoder_layers.or(encoder_layers),
            encoder_layers: decoder_layers.and(encoder_layers),
            hidden_size: width,
            heads,
            kv_heads,
            ..ConfigSummary::default()
        }
    }

    fn bytes(&self, var: &Var, range: &Range<u64>, tensor: &str) -> Result<&[u8]> {
        let size = var.code.size() as usize;
        let numel = (var.len / size) as u64;
        let bad = || {
            Error::tensor(
                &self.path,
                tensor,
                format!("element range {range:?} out of bounds"),
            )
        };
        if range.start > range.end || range.end > numel {
            return Err(bad());
        }
        let lo = var.start + range.start as usize * size;
        let hi = var.start + range.end as usize * size;
        self.map.get(lo..hi).ok_or_else(bad)
    }

    /// Values of a float variable (scales are small: decoded whole).
    fn floats(&self, var: &Var) -> Result<Vec<f32>> {
        let n = (var.len as u64) / var.code.size();
        let mut out = Vec::with_capacity(n as usize);
        self.decode_float(var, 0..n, &var.name, &mut |v| {
            if let Values::F32(x) = v {
                out.extend_from_slice(x)
            }
        })?;
        Ok(out)
    }

    fn decode_float(
        &self,
        var: &Var,
        range: Range<u64>,
        tensor: &str,
        sink: &mut dyn FnMut(Values<'_>),
    ) -> Result<()> {
        let bytes = self.bytes(var, &range, tensor)?;
        match var.code {
            Code::F32 => decode_f32(bytes, sink),
            Code::F16 => decode_f16(bytes, sink),
            Code::BF16 => decode_bf16(bytes, sink),
            other => {
                return Err(Error::UnsupportedDtype {
                    path: self.path.clone(),
                    tensor: tensor.to_owned(),
                    dtype: format!("{other:?}"),
                })
            }
        }
        Ok(())
    }
}

impl TensorReader for Ct2Reader {
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
        let (vi, scale) = &self.listed[index];
        let var = &self.vars[*vi];
        match (var.code, scale) {
            (Code::F32 | Code::F16 | Code::BF16, _) => self.decode_float(var, range, &t.name, sink),
            (Code::I8 | Code::I16, Some(scale)) => {
                let bytes = self.bytes(var, &range, &t.name)?;
                if bytes.is_empty() {
                    return Ok(());
                }
                // Only the scales this range touches.
                let sv = &self.vars[scale.var];
                let first = range.start / scale.per;
                let last = (range.end - 1) / scale.per;
                let scales = if scale.per == t.numel() {
                    self.floats(sv)?
                } else {
                    let mut s = Vec::new();
                    self.decode_float(sv, first..last + 1, &sv.name, &mut |v| {
                        if let Values::F32(x) = v {
                            s.extend_from_slice(x)
                        }
                    })?;
                    s
                };
                let inverse: Vec<f32> = scales.iter().map(|&s| 1.0 / s).collect();
                let width = var.code.size() as usize;
                let mut buf = Vec::with_capacity(DECODE_CHUNK.min(bytes.len() / width));
                let mut i = range.start;
                for chunk in bytes.chunks(DECODE_CHUNK * width) {
                    buf.clear();
                    for q in chunk.chunks_exact(width) {
                        let q = if width == 1 {
                            f32::from(q[0] as i8)
                        } else {
                            f32::from(i16::from_le_bytes([q[0], q[1]]))
                        };
                        let r = inverse[((i / scale.per) - first) as usize];
                        buf.push(q * r);
                        i += 1;
                    }
                    sink(Values::F32(&buf));
                }
                Ok(())
            }
            _ => Err(Error::UnsupportedDtype {
                path: self.path.clone(),
                tensor: t.name.clone(),
                dtype: if matches!(var.code, Code::I8 | Code::I16) && !var.shape.is_empty() {
                    format!("{} without a {}_scale variable", t.dtype, var.name)
                } else {
                    t.dtype.to_string()
                },
            }),
        }
    }

    fn architecture(&self) -> Option<String> {
        self.spec.clone()
    }

    fn config(&self) -> Option<ConfigSummary> {
        Some(self.config.clone())
    }
}

#[cfg(test)]
mod tests {
    use half::f16;

    use super::*;

    /// A CTranslate2 file writer for tests: `(name, shape, dtype code, raw bytes)`.
    fn write(vars: &[(&str, &[u32], u8, Vec<u8>)], aliases: &[(&str, &str)]) -> Vec<u8> {
        fn string(out: &mut Vec<u8>, s: &str) {
            out.extend(((s.len() + 1) as u16).to_le_bytes());
            out.extend(s.as_bytes());
            out.push(0);
        }
        let mut out = Vec::new();
        out.extend(6u32.to_le_bytes());
        string(&mut out, "TestSpec");
        out.extend(1u32.to_le_bytes());
        out.extend((vars.len() as u32).to_le_bytes());
        for (name, shape, code, bytes) in vars {
            string(&mut out, name);
            out.push(shape.len() as u8);
            for d in *shape {
                out.extend(d.to_le_bytes());
            }
            out.push(*code);
            out.extend((bytes.len() as u32).to_le_bytes());
            out.extend(bytes);
        }
        out.extend((aliases.len() as u32).to_le_bytes());
        for (a, t) in aliases {
            string(&mut out, a);
            string(&mut out, t);
        }
        out
    }

    fn f32s(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn open_bytes(dir: &Path, bytes: &[u8]) -> Result<Ct2Reader> {
        let p = dir.join("model.bin");
        std::fs::write(&p, bytes).unwrap();
        Ct2Reader::open(&p)
    }

    fn read_all(r: &Ct2Reader, i: usize, range: Range<u64>) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        r.read(i, range, &mut |v| {
            if let Values::F32(x) = v {
                out.extend_from_slice(x)
            }
        })?;
        Ok(out)
    }

    fn sample() -> Vec<u8> {
        let half: Vec<u8> = [0.5f32, -1.0, 2.0, 0.25]
            .iter()
            .flat_map(|&x| f16::from_f32(x).to_le_bytes())
            .collect();
        write(
            &[
                ("decoder/embeddings/weight", &[2, 2], 4, half),
                (
                    "decoder/layer_0/ffn/linear_0/weight",
                    &[2, 3],
                    1,
                    vec![127, 0xFF, 64, 10, 20, 0x81],
                ),
                (
                    "decoder/layer_0/ffn/linear_0/weight_scale",
                    &[2],
                    0,
                    f32s(&[127.0, 12.7]),
                ),
                ("decoder/num_heads", &[], 2, 4i16.to_le_bytes().to_vec()),
                (
                    "encoder/layer_0/ffn/linear_1/weight",
                    &[3],
                    2,
                    [1000i16, -500, 0]
                        .iter()
                        .flat_map(|x| x.to_le_bytes())
                        .collect(),
                ),
                (
                    "encoder/layer_0/ffn/linear_1/weight_scale",
                    &[],
                    0,
                    f32s(&[1000.0]),
                ),
                ("encoder/layer_1/bare", &[2], 1, vec![1, 2]),
            ],
            &[("decoder/projection/weight", "decoder/embeddings/weight")],
        )
    }

    #[test]
    fn reads_floats_dequantizes_and_summarises() {
        let tmp = tempfile::tempdir().unwrap();
        let r = open_bytes(tmp.path(), &sample()).unwrap();
        let names: Vec<_> = r.tensors().iter().map(|t| t.name.as_str()).collect();
        // Scales are folded into their weights; aliases are not listed.
        assert_eq!(
            names,
            [
                "decoder/embeddings/weight",
                "decoder/layer_0/ffn/linear_0/weight",
                "decoder/num_heads",
                "encoder/layer_0/ffn/linear_1/weight",
                "encoder/layer_1/bare"
            ]
        );
        assert_eq!(read_all(&r, 0, 0..4).unwrap(), [0.5, -1.0, 2.0, 0.25]);
        // int8, one scale per row: q * (1/scale).
        let r0 = 1.0f32 / 127.0;
        let r1 = 1.0f32 / 12.7;
        assert_eq!(
            read_all(&r, 1, 0..6).unwrap(),
            [
                127.0 * r0,
                -r0,
                64.0 * r0,
                10.0 * r1,
                20.0 * r1,
                -127.0 * r1
            ]
        );
        assert_eq!(
            read_all(&r, 1, 2..5).unwrap(),
            [64.0 * r0, 10.0 * r1, 20.0 * r1]
        );
        // int16, one scale for the tensor.
        assert_eq!(read_all(&r, 3, 0..3).unwrap(), [1.0, -0.5, 0.0]);
        // Scalars and unscaled int8 are unsupported, by name.
        for i in [2, 4] {
            match r.read(i, 0..0, &mut |_| {}) {
                Err(Error::UnsupportedDtype { tensor, .. }) => assert_eq!(tensor, names[i]),
                other => panic!("{other:?}"),
            }
        }
        assert!(read_all(&r, 0, 3..5).is_err());
        let c = r.config().unwrap();
        assert_eq!(c.architecture.as_deref(), Some("TestSpec"));
        assert_eq!((c.layers, c.encoder_layers), (Some(1), Some(2)));
        assert_eq!((c.heads, c.hidden_size), (Some(4), Some(2)));
        assert_eq!(r.aliases().len(), 1);
    }

    #[test]
    fn every_truncation_and_extension_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let good = sample();
        for cut in 0..good.len() {
            let e = open_bytes(tmp.path(), &good[..cut]).err();
            let e = e
                .unwrap_or_else(|| panic!("cut at {cut} accepted"))
                .to_string();
            assert!(e.contains("model.bin"), "{e}");
        }
        let mut long = good.clone();
        long.push(0);
        let e = open_bytes(tmp.path(), &long).err().unwrap().to_string();
        assert!(e.contains("ends at byte"), "{e}");
    }

    #[test]
    fn inconsistent_headers_are_refused_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let case = |vars: &[(&str, &[u32], u8, Vec<u8>)]| {
            open_bytes(tmp.path(), &write(vars, &[]))
                .err()
                .expect("must fail")
                .to_string()
        };
        let e = case(&[("w", &[2, 2], 0, f32s(&[1.0; 3]))]);
        assert!(e.contains("tensor w") && e.contains("12 data bytes"), "{e}");
        let e = case(&[("w", &[2], 9, vec![0; 2])]);
        assert!(e.contains("unknown dtype code 9"), "{e}");
        let e = case(&[("w", &[1; 9], 0, f32s(&[1.0]))]);
        assert!(e.contains("rank 9"), "{e}");
        let e = case(&[("w", &[65536, 65536, 65536], 0, vec![])]);
        assert!(e.contains("tensor w"), "{e}");
        let e = case(&[("w", &[1], 0, f32s(&[1.0])), ("w", &[1], 0, f32s(&[1.0]))]);
        assert!(e.contains("declared twice"), "{e}");
        let e = case(&[
            ("w", &[2, 2], 1, vec![1; 4]),
            ("w_scale", &[3], 0, f32s(&[1.0; 3])),
        ]);
        assert!(e.contains("3 quantization scales"), "{e}");
        // A huge declared byte count fails as truncation, without allocating it.
        let mut bytes = write(&[("w", &[1], 0, f32s(&[1.0]))], &[]);
        let at = bytes.len() - 4 - 4 - 4;
        bytes[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = open_bytes(tmp.path(), &bytes).err().unwrap().to_string();
        assert!(e.contains("tensor w"), "{e}");
        // Unsupported binary version.
        let e = open_bytes(tmp.path(), &7u32.to_le_bytes())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("binary version 7"), "{e}");
    }
}

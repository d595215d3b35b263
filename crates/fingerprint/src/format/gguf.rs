//! GGUF (v2, v3) files from llama.cpp and Ollama, memory-mapped.
//!
//! Layout (all little-endian): magic `GGUF`, `u32` version, `u64` tensor count, `u64`
//! metadata count; the metadata key/value pairs; one info record per tensor (name, `u32`
//! dimension count, `u64` extents `ne0` (contiguous) first, `u32` ggml type, `u64` offset
//! into the data section); padding up to `general.alignment` (default 32); the data section.
//!
//! Nothing in the header is trusted before it is checked: every length is bounded by a named
//! cap and by the bytes left in the file before anything is allocated, every count and size is
//! multiplied out with checked arithmetic, and every tensor's byte size follows from its
//! type's block layout ([`super::ggml`]). Offsets must be aligned, inside the file and must not
//! overlap. Metadata values are validated on open but decoded only on request
//! ([`GgufReader::metadata`]), so a 262 144-token vocabulary costs nothing until asked for.
//!
//! A split model (`name-00001-of-00003.gguf`) is a set of ordinary GGUF files whose later parts
//! carry only the `split.*` keys; each opens on its own and the engine merges their tensors.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::ggml::{GgmlType, Kernel};
use super::{qmoments, Backing, TensorInfo, TensorReader, Values, DECODE_CHUNK};
use crate::config::ConfigSummary;
use crate::error::{Error, Result};
use crate::stats::Accumulator;

/// The four magic bytes every GGUF file starts with.
pub const MAGIC: &[u8; 4] = b"GGUF";
/// `general.alignment` when the file does not set it (GGUF specification).
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Largest accepted `general.alignment`. ggml only requires a power of two; real files use
/// 32, and a page (64 KiB at most) is the largest alignment any writer has reason to ask for.
pub const MAX_ALIGNMENT: u64 = 1 << 16;
/// Longest accepted metadata string value in bytes. ggml allows 1 GiB
/// (`GGUF_MAX_STRING_LENGTH`); the longest legitimate strings (an embedded tokenizer.json,
/// chat templates) are a few MB, so 64 MiB is generous.
pub const MAX_STRING_LEN: u64 = 64 << 20;
/// Longest accepted metadata key in bytes (the GGUF specification's limit, 2^16 - 1).
pub const MAX_KEY_LEN: u64 = (1 << 16) - 1;
/// Longest accepted tensor name in bytes. ggml's own limit is 63 (`GGML_MAX_NAME` 64 with the
/// terminating NUL); other writers are allowed more, within reason.
pub const MAX_NAME_LEN: u64 = 1024;
/// Most elements in one metadata array. ggml allows 2^30 (`GGUF_MAX_ARRAY_ELEMENTS`); the
/// largest arrays are vocabularies and merge lists of at most a few million entries.
pub const MAX_ARRAY_LEN: u64 = 1 << 26;
/// Deepest nesting of metadata arrays. The specification allows arrays of arrays; ggml
/// itself reads none, and no writer nests more than one level.
pub const MAX_ARRAY_DEPTH: u32 = 8;
/// Most metadata key/value pairs. Real files hold a few dozen; ggml caps only by memory.
pub const MAX_KV_COUNT: u64 = 1 << 16;
/// Most tensors in one file. The largest mixture-of-experts GGUFs hold a few tens of
/// thousands; ggml caps only by memory.
pub const MAX_TENSOR_COUNT: u64 = 1 << 20;
/// Most dimensions of a tensor (`GGML_MAX_DIMS`).
pub const MAX_DIMS: u32 = 4;

/// Longest per-layer metadata array [`TensorReader::config`] decodes (one entry per layer).
const MAX_PER_LAYER_LEN: u64 = 1 << 16;
/// Smallest on-disk size of one metadata pair: empty key (u64 length), u32 type, 1-byte value.
const MIN_KV_BYTES: u64 = 8 + 4 + 1;
/// Smallest on-disk size of one tensor info: empty name, u32 n_dims (0), u32 type, u64 offset.
const MIN_TENSOR_INFO_BYTES: u64 = 8 + 4 + 4 + 8;

/// The type of a metadata value, with its GGUF code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MetaType {
    /// 0: `u8`.
    U8,
    /// 1: `i8`.
    I8,
    /// 2: `u16`.
    U16,
    /// 3: `i16`.
    I16,
    /// 4: `u32`.
    U32,
    /// 5: `i32`.
    I32,
    /// 6: `f32`.
    F32,
    /// 7: one byte, 0 or 1.
    Bool,
    /// 8: `u64` length and UTF-8 bytes.
    String,
    /// 9: `u32` element type, `u64` count, elements.
    Array,
    /// 10: `u64`.
    U64,
    /// 11: `i64`.
    I64,
    /// 12: `f64`.
    F64,
}

impl MetaType {
    /// The type with this GGUF code.
    pub fn from_code(code: u32) -> Option<MetaType> {
        Some(match code {
            0 => MetaType::U8,
            1 => MetaType::I8,
            2 => MetaType::U16,
            3 => MetaType::I16,
            4 => MetaType::U32,
            5 => MetaType::I32,
            6 => MetaType::F32,
            7 => MetaType::Bool,
            8 => MetaType::String,
            9 => MetaType::Array,
            10 => MetaType::U64,
            11 => MetaType::I64,
            12 => MetaType::F64,
            _ => return None,
        })
    }

    /// Size in bytes of a fixed-size value; `None` for strings and arrays.
    pub fn fixed_size(self) -> Option<u64> {
        match self {
            MetaType::U8 | MetaType::I8 | MetaType::Bool => Some(1),
            MetaType::U16 | MetaType::I16 => Some(2),
            MetaType::U32 | MetaType::I32 | MetaType::F32 => Some(4),
            MetaType::U64 | MetaType::I64 | MetaType::F64 => Some(8),
            MetaType::String | MetaType::Array => None,
        }
    }

    /// Fewest bytes one value of this type occupies (a length prefix for strings, type and
    /// count for arrays).
    fn min_size(self) -> u64 {
        match self {
            MetaType::String => 8,
            MetaType::Array => 12,
            t => t.fixed_size().unwrap_or(1),
        }
    }
}

/// A decoded metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum MetaValue {
    /// `u8`.
    U8(u8),
    /// `i8`.
    I8(i8),
    /// `u16`.
    U16(u16),
    /// `i16`.
    I16(i16),
    /// `u32`.
    U32(u32),
    /// `i32`.
    I32(i32),
    /// `u64`.
    U64(u64),
    /// `i64`.
    I64(i64),
    /// `f32`.
    F32(f32),
    /// `f64`.
    F64(f64),
    /// `bool`.
    Bool(bool),
    /// A string (invalid UTF-8 is replaced by U+FFFD).
    String(String),
    /// An array (its elements share one type).
    Array(Vec<MetaValue>),
}

impl MetaValue {
    /// The value as an unsigned integer, for any integer type holding a non-negative value.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            MetaValue::U8(v) => Some(v.into()),
            MetaValue::U16(v) => Some(v.into()),
            MetaValue::U32(v) => Some(v.into()),
            MetaValue::U64(v) => Some(v),
            MetaValue::I8(v) => u64::try_from(v).ok(),
            MetaValue::I16(v) => u64::try_from(v).ok(),
            MetaValue::I32(v) => u64::try_from(v).ok(),
            MetaValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a float, for float and integer types.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetaValue::F32(v) => Some(v.into()),
            MetaValue::F64(v) => Some(v),
            MetaValue::I8(v) => Some(v.into()),
            MetaValue::I16(v) => Some(v.into()),
            MetaValue::I32(v) => Some(v.into()),
            MetaValue::I64(v) => Some(v as f64),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    /// The value as a string slice.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value's elements, for arrays.
    pub fn as_array(&self) -> Option<&[MetaValue]> {
        match self {
            MetaValue::Array(v) => Some(v),
            _ => None,
        }
    }
}

/// Where one validated metadata value lies in the file.
#[derive(Clone, Debug)]
struct MetaEntry {
    key: String,
    ty: MetaType,
    /// Byte range of the value (after the type code).
    span: Range<usize>,
    /// Element count, for arrays.
    len: Option<u64>,
}

/// The data of one tensor as validated on open.
#[derive(Clone, Copy, Debug)]
struct Slot {
    ty: GgmlType,
    /// Absolute byte offset of the data in the file.
    start: usize,
    /// Byte length of the data.
    len: usize,
}

/// An opened, validated GGUF file.
pub struct GgufReader {
    path: PathBuf,
    map: Backing,
    version: u32,
    alignment: u64,
    data_start: u64,
    meta: Vec<MetaEntry>,
    meta_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    slots: Vec<Slot>,
}

/// Open `path` as a GGUF file.
pub fn open(path: &Path) -> Result<Box<dyn TensorReader>> {
    Ok(Box::new(GgufReader::open(path)?))
}

/// A bounds-checked little-endian reader over the mapped bytes.
struct Cursor<'a> {
    path: &'a Path,
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }

    fn take(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<&'a [u8]> {
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| self.pos.checked_add(n))
            .filter(|&end| end <= self.buf.len());
        match end.and_then(|end| Some((end, self.buf.get(self.pos..end)?))) {
            Some((end, bytes)) => {
                self.pos = end;
                Ok(bytes)
            }
            None => Err(Error::Truncated {
                path: self.path.to_path_buf(),
                what: what(),
                needed: (self.pos as u64).saturating_add(n),
                actual: self.buf.len() as u64,
            }),
        }
    }

    fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N]> {
        let b = self.take(N as u64, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A length-prefixed string's bytes, at most `cap` long.
    fn string(&mut self, cap: u64, what: &dyn Fn() -> String) -> Result<&'a [u8]> {
        let len = self.u64(&|| format!("the length of {}", what()))?;
        if len > cap {
            return Err(Error::header(
                self.path,
                format!("{} is {len} bytes long, over the {cap}-byte cap", what()),
            ));
        }
        self.take(len, what)
    }
}

impl GgufReader {
    /// Open and validate `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len < 4 {
            return Err(Error::Truncated {
                path: path.to_path_buf(),
                what: "the magic".into(),
                needed: 4,
                actual: len,
            });
        }
        // SAFETY: the map is read-only; a file truncated by another process while mapped can
        // raise SIGBUS, which no safe mmap reader can rule out.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let parsed = parse(path, &map, len)?;
        Ok(Self::from_parsed(path, Backing::Map(map), parsed))
    }

    /// Validate the header of a `file_len`-byte file from its first bytes `head` (a file read
    /// over the network): every check of [`Self::open`] runs, offsets against `file_len`. A
    /// [`Error::Truncated`] whose `actual` is `head.len()` means the header runs past `head`.
    /// Tensor data is not held: [`TensorReader::read`] of a non-empty range fails, and the
    /// bytes are decoded with [`decode`] by whoever fetched them.
    pub fn from_head(path: &Path, head: Vec<u8>, file_len: u64) -> Result<Self> {
        if usize::try_from(file_len).is_err() {
            return Err(Error::header(
                path,
                format!("{file_len} bytes do not fit this machine's address space"),
            ));
        }
        let parsed = parse(path, &head, file_len)?;
        Ok(Self::from_parsed(path, Backing::Head(head), parsed))
    }

    fn from_parsed(path: &Path, map: Backing, parsed: Parsed) -> Self {
        GgufReader {
            path: path.to_path_buf(),
            map,
            version: parsed.version,
            alignment: parsed.alignment,
            data_start: parsed.data_start,
            meta_index: parsed
                .meta
                .iter()
                .enumerate()
                .map(|(i, e)| (e.key.clone(), i))
                .collect(),
            meta: parsed.meta,
            tensors: parsed.tensors,
            slots: parsed.slots,
        }
    }

    /// The GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The data alignment (`general.alignment`, default 32).
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Absolute file offset of the data section.
    pub fn data_offset(&self) -> u64 {
        self.data_start
    }

    /// Metadata keys, in file order.
    pub fn metadata_keys(&self) -> impl Iterator<Item = &str> {
        self.meta.iter().map(|e| e.key.as_str())
    }

    fn entry(&self, key: &str) -> Option<&MetaEntry> {
        self.meta.get(*self.meta_index.get(key)?)
    }

    /// The stored type of metadata value `key`.
    pub fn metadata_type(&self, key: &str) -> Option<MetaType> {
        Some(self.entry(key)?.ty)
    }

    /// Decode metadata value `key`. Arrays are decoded whole (about 32 bytes per element):
    /// prefer [`Self::metadata_array_len`] when only the length is needed.
    pub fn metadata(&self, key: &str) -> Option<MetaValue> {
        let e = self.entry(key)?;
        let mut cur = Cursor {
            path: &self.path,
            buf: self.map.bytes().get(..e.span.end)?,
            pos: e.span.start,
        };
        value(&mut cur, e.ty, 0, true, &|| String::new()).ok()?
    }

    /// Element count of metadata array `key`.
    pub fn metadata_array_len(&self, key: &str) -> Option<u64> {
        self.entry(key)?.len
    }

    /// Metadata value `key` as an unsigned integer (any integer type, non-negative).
    pub fn metadata_u64(&self, key: &str) -> Option<u64> {
        match self.metadata_type(key)? {
            MetaType::Array | MetaType::String => None,
            _ => self.metadata(key)?.as_u64(),
        }
    }

    /// Metadata value `key` as a string.
    pub fn metadata_str(&self, key: &str) -> Option<String> {
        match self.metadata_type(key)? {
            MetaType::String => match self.metadata(key)? {
                MetaValue::String(s) => Some(s),
                _ => None,
            },
            _ => None,
        }
    }

    /// An integer that may be stored per layer as an array (`head_count_kv` of models with
    /// varying attention): a scalar as is, an array by its largest element.
    fn metadata_u64_or_max(&self, key: &str) -> Option<u64> {
        match self.metadata_type(key)? {
            MetaType::Array => {
                if self.metadata_array_len(key)? > MAX_PER_LAYER_LEN {
                    return None;
                }
                self.metadata(key)?
                    .as_array()?
                    .iter()
                    .filter_map(MetaValue::as_u64)
                    .max()
            }
            _ => self.metadata_u64(key),
        }
    }

    /// The ggml type of tensor `index`.
    pub fn ggml_type(&self, index: usize) -> Option<GgmlType> {
        self.slots.get(index).map(|s| s.ty)
    }

    /// Absolute byte range of tensor `index`'s data in the file.
    pub fn tensor_bytes(&self, index: usize) -> Option<Range<u64>> {
        self.slots
            .get(index)
            .map(|s| s.start as u64..(s.start + s.len) as u64)
    }

    /// The type, kernel and bytes of elements `range` of tensor `index`, after checking the
    /// range (in bounds, whole blocks) and that the type can be decoded. Empty for an empty
    /// range.
    fn bytes_of(&self, index: usize, range: &Range<u64>) -> Result<(GgmlType, Kernel, &[u8])> {
        let (Some(t), Some(slot)) = (self.tensors.get(index), self.slots.get(index)) else {
            return Err(Error::header(
                &self.path,
                format!(
                    "tensor index {index} out of range ({} tensors)",
                    self.tensors.len()
                ),
            ));
        };
        let ty = slot.ty;
        let kernel = ty.kernel.ok_or_else(|| self.unsupported(t, &ty))?;
        let numel = t.numel();
        let block = ty.block;
        if range.start > range.end
            || range.end > numel
            || range.start % block != 0
            || range.end % block != 0
        {
            return Err(Error::tensor(
                &self.path,
                &t.name,
                format!(
                    "element range {range:?} is out of bounds or not aligned to {} blocks of {block} ({numel} elements)",
                    ty.name
                ),
            ));
        }
        if range.start == range.end {
            return Ok((ty, kernel, &[]));
        }
        // Both fit in usize: the range lies within the slot validated on open.
        let lo = (range.start / block * ty.type_size) as usize;
        let hi = (range.end / block * ty.type_size) as usize;
        let bytes = self
            .map
            .bytes()
            .get(slot.start + lo..slot.start + hi)
            .ok_or_else(|| {
                Error::tensor(
                    &self.path,
                    &t.name,
                    format!("bytes {lo}..{hi} lie outside the mapped file"),
                )
            })?;
        Ok((ty, kernel, bytes))
    }

    fn unsupported(&self, t: &TensorInfo, ty: &GgmlType) -> Error {
        Error::UnsupportedDtype {
            path: self.path.clone(),
            tensor: t.name.clone(),
            dtype: ty.name.to_owned(),
        }
    }
}

/// Everything [`parse`] validates.
struct Parsed {
    version: u32,
    alignment: u64,
    data_start: u64,
    meta: Vec<MetaEntry>,
    tensors: Vec<TensorInfo>,
    slots: Vec<Slot>,
}

/// Validate the whole header of `buf`, the first bytes of a `file_len`-byte file (all of it
/// when the file is mapped).
fn parse(path: &Path, buf: &[u8], file_len: u64) -> Result<Parsed> {
    let mut cur = Cursor { path, buf, pos: 0 };
    let magic = cur.array::<4>(&|| "the magic".into())?;
    if &magic != MAGIC {
        return Err(Error::UnknownFormat {
            path: path.to_path_buf(),
            reason: format!("not GGUF: the file starts with {magic:02x?}, not \"GGUF\""),
        });
    }
    let version = cur.u32(&|| "the version".into())?;
    match version {
        2 | 3 => {}
        1 => return Err(Error::header(
            path,
            "GGUF version 1 (32-bit counts) is not supported; convert it with a current llama.cpp",
        )),
        v if v.swap_bytes() == 2 || v.swap_bytes() == 3 => {
            return Err(Error::header(
                path,
                format!(
                    "big-endian GGUF (version {}) is not supported",
                    v.swap_bytes()
                ),
            ))
        }
        v => {
            return Err(Error::header(
                path,
                format!("GGUF version {v} is not supported (2 and 3 are)"),
            ))
        }
    }
    let n_tensors = cur.u64(&|| "the tensor count".into())?;
    let n_kv = cur.u64(&|| "the metadata count".into())?;
    check_count(&cur, "metadata count", n_kv, MAX_KV_COUNT, MIN_KV_BYTES)?;
    check_count(
        &cur,
        "tensor count",
        n_tensors,
        MAX_TENSOR_COUNT,
        MIN_TENSOR_INFO_BYTES,
    )?;

    // Metadata: validated now, decoded on request.
    let mut meta = Vec::with_capacity(n_kv as usize);
    let mut keys = HashSet::with_capacity(n_kv as usize);
    for i in 0..n_kv {
        let key = cur.string(MAX_KEY_LEN, &|| format!("metadata key {i}"))?;
        let key = std::str::from_utf8(key)
            .map_err(|_| Error::header(path, format!("metadata key {i} is not valid UTF-8")))?
            .to_owned();
        let what = || format!("metadata {key:?}");
        let code = cur.u32(&|| format!("the type of {}", what()))?;
        let ty = MetaType::from_code(code).ok_or_else(|| {
            Error::header(path, format!("{} has unknown value type {code}", what()))
        })?;
        let start = cur.pos;
        value(&mut cur, ty, 0, false, &what)?;
        // Arrays keep their length (after the u32 element type) for cheap queries.
        let len = (ty == MetaType::Array).then(|| {
            let mut w = [0u8; 8];
            if let Some(b) = buf.get(start + 4..start + 12) {
                w.copy_from_slice(b);
            }
            u64::from_le_bytes(w)
        });
        if !keys.insert(key.clone()) {
            return Err(Error::header(
                path,
                format!("metadata key {key:?} appears twice"),
            ));
        }
        meta.push(MetaEntry {
            key,
            ty,
            span: start..cur.pos,
            len,
        });
    }

    let alignment = match meta.iter().find(|e| e.key == "general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(e) => {
            let mut c = Cursor {
                path,
                buf: buf.get(..e.span.end).unwrap_or_default(),
                pos: e.span.start,
            };
            let v = value(&mut c, e.ty, 0, true, &|| "general.alignment".into())?;
            let a = match (e.ty, v) {
                (MetaType::U8 | MetaType::U16 | MetaType::U32 | MetaType::U64, Some(v)) => {
                    v.as_u64()
                }
                _ => None,
            }
            .ok_or_else(|| {
                Error::header(
                    path,
                    format!(
                        "general.alignment must be an unsigned integer, not {:?}",
                        e.ty
                    ),
                )
            })?;
            if a == 0 || !a.is_power_of_two() || a > MAX_ALIGNMENT {
                return Err(Error::header(
                    path,
                    format!(
                        "general.alignment = {a} is not a power of two between 1 and {MAX_ALIGNMENT}"
                    ),
                ));
            }
            a
        }
    };

    // Tensor infos.
    struct Raw {
        name: String,
        ne: Vec<u64>,
        ty: GgmlType,
        offset: u64,
        nbytes: u64,
    }
    let mut raws: Vec<Raw> = Vec::with_capacity(n_tensors as usize);
    let mut names = HashSet::with_capacity(n_tensors as usize);
    for i in 0..n_tensors {
        let name = cur.string(MAX_NAME_LEN, &|| format!("the name of tensor {i}"))?;
        let name = std::str::from_utf8(name)
            .map_err(|_| Error::header(path, format!("the name of tensor {i} is not UTF-8")))?
            .to_owned();
        if !names.insert(name.clone()) {
            return Err(Error::tensor(path, &name, "the name appears twice"));
        }
        let what = |field: &str| {
            let name = name.clone();
            let field = field.to_owned();
            move || format!("the {field} of tensor {name}")
        };
        let n_dims = cur.u32(&what("dimension count"))?;
        if n_dims > MAX_DIMS {
            return Err(Error::tensor(
                path,
                &name,
                format!("{n_dims} dimensions, more than ggml's {MAX_DIMS}"),
            ));
        }
        let mut ne = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            let d = cur.u64(&what("extents"))?;
            // ggml stores extents as int64.
            if d > i64::MAX as u64 {
                return Err(Error::tensor(
                    path,
                    &name,
                    format!("extent {d} is negative as ggml's int64"),
                ));
            }
            ne.push(d);
        }
        let code = cur.u32(&what("type"))?;
        let offset = cur.u64(&what("offset"))?;
        let numel = ne
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .filter(|&n| n <= i64::MAX as u64)
            .ok_or_else(|| {
                Error::tensor(
                    path,
                    &name,
                    format!("element count of extents {ne:?} overflows"),
                )
            })?;
        let ty = GgmlType::from_code(code)
            .ok_or_else(|| Error::tensor(path, &name, format!("unknown ggml type code {code}")))?;
        let ne0 = ne.first().copied().unwrap_or(1);
        if ne0 % ty.block != 0 {
            return Err(Error::tensor(
                path,
                &name,
                format!(
                    "rows of {ne0} elements are not a whole number of {} blocks of {}",
                    ty.name, ty.block
                ),
            ));
        }
        let nbytes = ty
            .bytes_for(numel)
            .filter(|&b| usize::try_from(b).is_ok())
            .ok_or_else(|| {
                Error::tensor(
                    path,
                    &name,
                    format!("byte size of {numel} {} elements overflows", ty.name),
                )
            })?;
        raws.push(Raw {
            name,
            ne,
            ty,
            offset,
            nbytes,
        });
    }

    // The data section starts at the end of the header, rounded up to the alignment.
    let header_end = cur.pos as u64;
    let data_start = header_end
        .checked_add(alignment - 1)
        .map(|v| v / alignment * alignment)
        .ok_or_else(|| Error::header(path, "data section offset overflows"))?;
    if n_tensors > 0 && data_start > file_len {
        return Err(Error::Truncated {
            path: path.to_path_buf(),
            what: "the padding before the data section".into(),
            needed: data_start,
            actual: file_len,
        });
    }

    // Offsets: aligned, inside the file, not overlapping.
    let mut spans: Vec<(u64, u64, usize)> = Vec::with_capacity(raws.len());
    for (i, r) in raws.iter().enumerate() {
        if r.offset % alignment != 0 {
            return Err(Error::tensor(
                path,
                &r.name,
                format!(
                    "data offset {} is not a multiple of the alignment {alignment}",
                    r.offset
                ),
            ));
        }
        let start = data_start.checked_add(r.offset);
        let end = start.and_then(|s| s.checked_add(r.nbytes));
        match (start, end) {
            (Some(s), Some(e)) if e <= file_len => spans.push((s, e, i)),
            _ => {
                return Err(Error::tensor(
                    path,
                    &r.name,
                    format!(
                        "data at offset {} + {} bytes ends past the end of the file ({file_len} bytes, data section at {data_start})",
                        r.offset, r.nbytes
                    ),
                ))
            }
        }
    }
    // Sorted by start, a tensor overlaps an earlier one exactly when it starts before the
    // furthest end seen so far. Empty tensors occupy no bytes and cannot overlap.
    spans.retain(|s| s.1 > s.0);
    spans.sort_unstable();
    let mut furthest: Option<(u64, u64, usize)> = None;
    for &(s, e, i) in &spans {
        if let Some((ps, pe, pi)) = furthest {
            if s < pe {
                return Err(Error::tensor(
                    path,
                    &raws[i].name,
                    format!(
                        "data at file bytes {s}..{e} overlaps tensor {} at {ps}..{pe}",
                        raws[pi].name
                    ),
                ));
            }
        }
        if furthest.is_none_or(|f| e > f.1) {
            furthest = Some((s, e, i));
        }
    }

    let mut tensors = Vec::with_capacity(raws.len());
    let mut slots = Vec::with_capacity(raws.len());
    for r in raws {
        let start = data_start + r.offset;
        slots.push(Slot {
            ty: r.ty,
            // Both fit: the file's length does (it is mapped, or checked by `from_head`).
            start: start as usize,
            len: r.nbytes as usize,
        });
        tensors.push(TensorInfo {
            name: r.name,
            role_name: None,
            shape: r.ne.iter().rev().copied().collect(),
            dtype: r.ty.dtype(),
            block: r.ty.block,
        });
    }
    Ok(Parsed {
        version,
        alignment,
        data_start,
        meta,
        tensors,
        slots,
    })
}

/// Reject a count over its cap or one that cannot fit in the bytes left.
fn check_count(cur: &Cursor<'_>, what: &str, n: u64, cap: u64, min_each: u64) -> Result<()> {
    if n > cap {
        return Err(Error::header(
            cur.path,
            format!("{what} {n} is over the cap of {cap}"),
        ));
    }
    if n.saturating_mul(min_each) > cur.remaining() {
        return Err(Error::Truncated {
            path: cur.path.to_path_buf(),
            what: format!("{n} entries of the {what}"),
            needed: (cur.pos as u64).saturating_add(n.saturating_mul(min_each)),
            actual: cur.buf.len() as u64,
        });
    }
    Ok(())
}

/// Read (validate and skip, or with `build` also decode) one metadata value of type `ty`.
fn value(
    cur: &mut Cursor<'_>,
    ty: MetaType,
    depth: u32,
    build: bool,
    what: &dyn Fn() -> String,
) -> Result<Option<MetaValue>> {
    if let Some(size) = ty.fixed_size() {
        let b = cur.take(size, what)?;
        if let (MetaType::Bool, Some(&v @ 2..)) = (ty, b.first()) {
            return Err(Error::header(
                cur.path,
                format!("{} is a bool stored as {v}, not 0 or 1", what()),
            ));
        }
        if !build {
            return Ok(None);
        }
        return Ok(Some(scalar(ty, b)));
    }
    match ty {
        MetaType::String => {
            let b = cur.string(MAX_STRING_LEN, what)?;
            Ok(build.then(|| MetaValue::String(String::from_utf8_lossy(b).into_owned())))
        }
        _ => {
            if depth >= MAX_ARRAY_DEPTH {
                return Err(Error::header(
                    cur.path,
                    format!("{} nests arrays deeper than {MAX_ARRAY_DEPTH}", what()),
                ));
            }
            let code = cur.u32(&|| format!("the element type of {}", what()))?;
            let ety = MetaType::from_code(code).ok_or_else(|| {
                Error::header(
                    cur.path,
                    format!("{} has unknown element type {code}", what()),
                )
            })?;
            let n = cur.u64(&|| format!("the length of {}", what()))?;
            if n > MAX_ARRAY_LEN {
                return Err(Error::header(
                    cur.path,
                    format!(
                        "{} has {n} elements, over the cap of {MAX_ARRAY_LEN}",
                        what()
                    ),
                ));
            }
            if n.saturating_mul(ety.min_size()) > cur.remaining() {
                return Err(Error::Truncated {
                    path: cur.path.to_path_buf(),
                    what: format!("the {n} elements of {}", what()),
                    needed: (cur.pos as u64).saturating_add(n.saturating_mul(ety.min_size())),
                    actual: cur.buf.len() as u64,
                });
            }
            if !build && ety != MetaType::Bool {
                if let Some(size) = ety.fixed_size() {
                    // At most MAX_ARRAY_LEN * 8 bytes: no overflow.
                    cur.take(n * size, what)?;
                    return Ok(None);
                }
            }
            // n elements of at least min_size bytes each fit in the file: the allocation is
            // bounded by the file's size.
            let mut items = Vec::with_capacity(if build { n as usize } else { 0 });
            for i in 0..n {
                let item = value(cur, ety, depth + 1, build, &|| format!("{}[{i}]", what()))?;
                if let Some(item) = item {
                    items.push(item);
                }
            }
            Ok(build.then_some(MetaValue::Array(items)))
        }
    }
}

fn scalar(ty: MetaType, b: &[u8]) -> MetaValue {
    let mut w = [0u8; 8];
    w[..b.len().min(8)].copy_from_slice(&b[..b.len().min(8)]);
    let u16_ = || u16::from_le_bytes([w[0], w[1]]);
    let u32_ = || u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
    let u64_ = || u64::from_le_bytes(w);
    match ty {
        MetaType::U8 => MetaValue::U8(w[0]),
        MetaType::I8 => MetaValue::I8(w[0] as i8),
        MetaType::U16 => MetaValue::U16(u16_()),
        MetaType::I16 => MetaValue::I16(u16_() as i16),
        MetaType::U32 => MetaValue::U32(u32_()),
        MetaType::I32 => MetaValue::I32(u32_() as i32),
        MetaType::F32 => MetaValue::F32(f32::from_bits(u32_())),
        MetaType::Bool => MetaValue::Bool(w[0] != 0),
        MetaType::U64 => MetaValue::U64(u64_()),
        MetaType::I64 => MetaValue::I64(u64_() as i64),
        MetaType::F64 => MetaValue::F64(f64::from_bits(u64_())),
        // Not fixed-size: never passed here.
        MetaType::String | MetaType::Array => MetaValue::Array(Vec::new()),
    }
}

/// Decode `bytes`, whole blocks of type `ty` (a tensor's data or a block-aligned part of it),
/// handing the values to `sink` in runs of at most [`DECODE_CHUNK`]. The one decoder of GGUF
/// data, for mapped files and for ranges fetched over the network alike, so both give the
/// same runs and therefore the same statistics. Types without a kernel decode nothing.
pub fn decode(ty: GgmlType, bytes: &[u8], sink: &mut dyn FnMut(Values<'_>)) {
    let Some(kernel) = ty.kernel else { return };
    let block = ty.block;
    #[cfg(target_endian = "little")]
    if kernel == Kernel::F32 {
        // SAFETY: every bit pattern is a valid f32; align_to only yields the aligned
        // middle. GGUF data is aligned, so the middle is everything.
        let (pre, mid, post) = unsafe { bytes.align_to::<f32>() };
        if pre.is_empty() && post.is_empty() {
            for chunk in mid.chunks(DECODE_CHUNK) {
                sink(Values::F32(chunk));
            }
            return;
        }
    }
    let blocks_per_chunk = (DECODE_CHUNK as u64 / block).max(1) as usize;
    let chunk_elems = blocks_per_chunk * block as usize;
    let total = (bytes.len() as u64 / ty.type_size.max(1) * block) as usize;
    let mut buf = vec![0f32; chunk_elems.min(total)];
    for src in bytes.chunks(blocks_per_chunk * ty.type_size as usize) {
        let n = kernel.dequantize(src, &mut buf);
        sink(Values::F32(&buf[..n]));
    }
}

/// Whether [`moments`] handles blocks of type `ty`.
pub fn has_moments(ty: GgmlType) -> bool {
    ty.kernel.is_some_and(qmoments::supported)
}

/// The moments of `bytes` (whole blocks of type `ty`) from the integer sums of their codes,
/// for the quantized types that allow it (`None` otherwise: then [`decode`] them). The one
/// path for mapped files and for ranges fetched over the network, so both give the same
/// statistics bit for bit.
pub fn moments(ty: GgmlType, bytes: &[u8]) -> Option<Accumulator> {
    let kernel = ty.kernel.filter(|_| has_moments(ty))?;
    let mut acc = Accumulator::new();
    let _ = qmoments::accumulate(kernel, bytes, &mut acc, &mut qmoments::Scratch::new());
    Some(acc)
}

impl TensorReader for GgufReader {
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
        let (ty, _, bytes) = self.bytes_of(index, &range)?;
        if bytes.is_empty() {
            return Ok(());
        }
        decode(ty, bytes, sink);
        // As the safetensors reader does: the file-backed resident set stays at a few work
        // units instead of growing to the size of the file.
        self.map.release(bytes);
        Ok(())
    }

    fn moments(&self, index: usize, range: Range<u64>) -> Option<Result<Accumulator>> {
        let kernel = self.slots.get(index)?.ty.kernel?;
        if !qmoments::supported(kernel) {
            return None;
        }
        Some(self.bytes_of(index, &range).map(|(ty, _, bytes)| {
            // `supported` was checked above, so this always accumulates.
            let acc = moments(ty, bytes).unwrap_or_default();
            self.map.release(bytes);
            acc
        }))
    }

    fn architecture(&self) -> Option<String> {
        self.metadata_str("general.architecture")
    }

    /// From `<arch>.*` metadata. Per-layer arrays (`head_count`, `head_count_kv`,
    /// `feed_forward_length`) are summarised by their largest element. The vocabulary is
    /// `<arch>.vocab_size` when stated, else the length of `tokenizer.ggml.tokens`.
    fn config(&self) -> Option<ConfigSummary> {
        let arch = self.architecture()?;
        let key = |k: &str| format!("{arch}.{k}");
        Some(ConfigSummary {
            architecture: Some(arch.clone()),
            layers: self.metadata_u64(&key("block_count")),
            hidden_size: self.metadata_u64(&key("embedding_length")),
            heads: self.metadata_u64_or_max(&key("attention.head_count")),
            kv_heads: self.metadata_u64_or_max(&key("attention.head_count_kv")),
            head_dim: self.metadata_u64(&key("attention.key_length")),
            intermediate_size: self.metadata_u64_or_max(&key("feed_forward_length")),
            experts: self.metadata_u64(&key("expert_count")),
            experts_per_token: self.metadata_u64(&key("expert_used_count")),
            vocab_size: self
                .metadata_u64(&key("vocab_size"))
                .or_else(|| self.metadata_array_len("tokenizer.ggml.tokens")),
            ..ConfigSummary::default()
        })
    }
}

impl std::fmt::Debug for GgufReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufReader")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("alignment", &self.alignment)
            .field("metadata", &self.meta.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_types_round_trip_their_codes() {
        for code in 0..13 {
            let t = MetaType::from_code(code).unwrap();
            assert!(t.min_size() >= 1);
        }
        assert_eq!(MetaType::from_code(13), None);
        assert_eq!(MetaValue::I32(-1).as_u64(), None);
        assert_eq!(MetaValue::I64(7).as_u64(), Some(7));
        assert_eq!(MetaValue::U16(3).as_f64(), Some(3.0));
    }
}

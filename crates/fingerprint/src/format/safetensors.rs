//! Hugging Face safetensors files, memory-mapped.
//!
//! The header is validated completely by the `safetensors` crate before any offset is trusted:
//! header length and size cap, UTF-8 JSON, contiguous non-overlapping offsets, shape × dtype
//! size equal to each tensor's byte length, data ending exactly at the end of the file. Only
//! then are tensor bytes sliced, and every slice is taken with `get` so that a file changed on
//! disk after opening still cannot make the reader index out of bounds.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use half::f16;
use memmap2::Mmap;
use safetensors::tensor::{Dtype, Metadata, SafeTensorError, SafeTensors};

use super::{Backing, TensorInfo, TensorReader, Values, DECODE_CHUNK};
use crate::dtype::DType;
use crate::error::{Error, Result};

/// Largest header accepted: the `safetensors` crate's own cap (`MAX_HEADER_SIZE`), so a file
/// read over the network is held to the same limit as a local one.
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

/// An opened, validated safetensors file.
pub struct SafetensorsReader {
    path: PathBuf,
    map: Backing,
    tensors: Vec<TensorInfo>,
    /// Absolute byte range of each tensor's data in the file.
    spans: Vec<Range<usize>>,
    /// Free-form `__metadata__` of the header.
    metadata: Vec<(String, String)>,
}

impl SafetensorsReader {
    /// Open and validate `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len < 8 {
            return Err(Error::Truncated {
                path: path.to_path_buf(),
                what: "the 8-byte header length".into(),
                needed: 8,
                actual: len,
            });
        }
        // SAFETY: the map is read-only; a file truncated by another process while mapped can
        // raise SIGBUS, which no safe mmap reader can rule out.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let (header_len, meta) =
            SafeTensors::read_metadata(&map).map_err(|e| describe(path, &map, e))?;
        Ok(Self::from_metadata(
            path,
            Backing::Map(map),
            8 + header_len,
            &meta,
        ))
    }

    /// Validate the header of a `file_len`-byte file from its first bytes `head`, which must
    /// hold the whole header (a file read over the network). The checks are those of
    /// [`Self::open`]: the size cap, UTF-8 JSON starting with `{`, offsets contiguous from 0
    /// and each tensor's byte length equal to its shape × dtype size (checked arithmetic), and
    /// the data ending exactly at `file_len`. Tensor data is not held: its bytes are decoded
    /// with [`decode`] by whoever fetched them.
    pub fn from_head(path: &Path, head: Vec<u8>, file_len: u64) -> Result<Self> {
        let p = || path.to_path_buf();
        let n = header_len(&head).ok_or_else(|| Error::Truncated {
            path: p(),
            what: "the 8-byte header length".into(),
            needed: 8,
            actual: head.len() as u64,
        })?;
        if n > MAX_HEADER_BYTES {
            return Err(Error::header(
                path,
                format!("header length {n} exceeds the {MAX_HEADER_BYTES}-byte cap"),
            ));
        }
        let stop = 8 + n;
        if stop > file_len {
            return Err(Error::Truncated {
                path: p(),
                what: "the JSON header".into(),
                needed: stop,
                actual: file_len,
            });
        }
        let json = head.get(8..stop as usize).ok_or_else(|| Error::Truncated {
            path: p(),
            what: "the JSON header".into(),
            needed: stop,
            actual: head.len() as u64,
        })?;
        let text = std::str::from_utf8(json)
            .map_err(|_| Error::header(path, "header is not valid UTF-8"))?;
        if !text.starts_with('{') {
            return Err(Error::header(path, "header does not start with '{'"));
        }
        let meta: Metadata = serde_json::from_str(text)
            .map_err(|_| Error::header(path, "header is not the JSON a safetensors file holds"))?;
        let mut infos: Vec<_> = meta.tensors().into_iter().collect();
        infos.sort_by_key(|(_, i)| i.data_offsets);
        let mut end = 0usize;
        for (name, info) in &infos {
            let (s, e) = info.data_offsets;
            if s != end || e < s {
                return Err(Error::tensor(
                    path,
                    name,
                    "data offsets are not contiguous, overlap or point outside the data section",
                ));
            }
            let nbytes = info
                .shape
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .and_then(|n| n.checked_mul(info.dtype.size()))
                .ok_or_else(|| {
                    Error::header(path, "a shape or offset overflows when multiplied out")
                })?;
            if e - s != nbytes {
                return Err(Error::tensor(
                    path,
                    name,
                    format!(
                        "{} bytes of data for shape {:?} × {:?} ({nbytes} bytes)",
                        e - s,
                        info.shape,
                        info.dtype
                    ),
                ));
            }
            end = e;
        }
        let data_end = stop.checked_add(end as u64);
        if data_end != Some(file_len) {
            return Err(Error::Truncated {
                path: p(),
                what: format!("the data section after a {n}-byte header (it must end the file)"),
                needed: data_end.unwrap_or(u64::MAX),
                actual: file_len,
            });
        }
        Ok(Self::from_metadata(
            path,
            Backing::Head(head),
            stop as usize,
            &meta,
        ))
    }

    /// The reader over validated metadata whose data section starts at `data_start`.
    fn from_metadata(path: &Path, map: Backing, data_start: usize, meta: &Metadata) -> Self {
        let mut entries: Vec<(TensorInfo, Range<usize>)> = meta
            .tensors()
            .into_iter()
            .map(|(name, info)| {
                let dtype = map_dtype(info.dtype);
                let t = TensorInfo {
                    name,
                    role_name: None,
                    shape: info.shape.iter().map(|&d| d as u64).collect(),
                    dtype,
                    block: 1,
                };
                let (s, e) = info.data_offsets;
                (t, data_start + s..data_start + e)
            })
            .collect();
        entries.sort_by_key(|e| e.1.start);
        let metadata = meta
            .metadata()
            .as_ref()
            .map(|m| {
                let mut v: Vec<_> = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                v.sort();
                v
            })
            .unwrap_or_default();
        let (tensors, spans) = entries.into_iter().unzip();
        SafetensorsReader {
            path: path.to_path_buf(),
            map,
            tensors,
            spans,
            metadata,
        }
    }

    /// Absolute byte range of tensor `index`'s data in the file.
    pub fn tensor_bytes(&self, index: usize) -> Option<Range<u64>> {
        self.spans.get(index).map(|s| s.start as u64..s.end as u64)
    }

    /// The header's free-form `__metadata__` entries, sorted by key.
    pub fn metadata(&self) -> &[(String, String)] {
        &self.metadata
    }

    fn bytes(&self, index: usize, range: &Range<u64>, size: usize) -> Result<&[u8]> {
        let t = &self.tensors[index];
        let bad = || {
            Error::tensor(
                &self.path,
                &t.name,
                format!("element range {range:?} out of bounds"),
            )
        };
        if range.end > t.numel() || range.start > range.end {
            return Err(bad());
        }
        let lo = self.spans[index].start + range.start as usize * size;
        let hi = self.spans[index].start + range.end as usize * size;
        self.map.bytes().get(lo..hi).ok_or_else(bad)
    }
}

/// The header length a safetensors file's first 8 bytes declare.
pub fn header_len(head: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(head.get(..8)?.try_into().ok()?))
}

/// Bytes per element of the dtypes [`decode`] turns into values; `None` for the others.
pub fn element_size(dtype: &DType) -> Option<usize> {
    match dtype {
        DType::F32 => Some(4),
        DType::F64 => Some(8),
        DType::F16 | DType::BF16 => Some(2),
        _ => None,
    }
}

/// Decode `bytes`, whole elements of `dtype`, into `sink`: the one decoder of safetensors data,
/// for mapped files and for ranges fetched over the network alike. Nothing for dtypes without
/// an [`element_size`].
pub fn decode(dtype: &DType, bytes: &[u8], sink: &mut dyn FnMut(Values<'_>)) {
    match dtype {
        DType::F32 => decode_f32(bytes, sink),
        DType::F64 => decode_f64(bytes, sink),
        DType::F16 => decode_f16(bytes, sink),
        DType::BF16 => decode_bf16(bytes, sink),
        _ => {}
    }
}

fn map_dtype(d: Dtype) -> DType {
    match d {
        Dtype::F64 => DType::F64,
        Dtype::F32 => DType::F32,
        Dtype::F16 => DType::F16,
        Dtype::BF16 => DType::BF16,
        Dtype::I8 => DType::Other("I8".into()),
        other => DType::Other(format!("{other:?}")),
    }
}

/// Turn the crate's error into one that names the file (and the tensor where it can).
fn describe(path: &Path, map: &[u8], e: SafeTensorError) -> Error {
    let p = path.to_path_buf();
    match e {
        SafeTensorError::MetadataIncompleteBuffer => {
            // The header parsed but the data section does not end where the offsets say.
            let n = map
                .get(..8)
                .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
                .unwrap_or(0);
            Error::Truncated {
                path: p,
                what: format!("the data section after a {n}-byte header"),
                needed: data_end(map).unwrap_or(0),
                actual: map.len() as u64,
            }
        }
        SafeTensorError::InvalidHeaderLength => {
            let n = u64::from_le_bytes(map[..8].try_into().unwrap_or([0; 8]));
            Error::Truncated {
                path: p,
                what: "the JSON header".into(),
                needed: n.saturating_add(8),
                actual: map.len() as u64,
            }
        }
        SafeTensorError::InvalidOffset(name) => Error::tensor(
            p,
            name,
            "data offsets are not contiguous, overlap or point outside the data section",
        ),
        SafeTensorError::TensorInvalidInfo => Error::header(
            p,
            "a tensor's shape × dtype size differs from its byte length, or its dtype is unknown",
        ),
        SafeTensorError::HeaderTooLarge => Error::header(p, "header length exceeds the 100 MB cap"),
        SafeTensorError::HeaderTooSmall => Error::header(p, "header length is too small"),
        SafeTensorError::InvalidHeaderStart => Error::header(p, "header does not start with '{'"),
        SafeTensorError::InvalidHeader => Error::header(p, "header is not valid UTF-8"),
        SafeTensorError::InvalidHeaderDeserialization => {
            Error::header(p, "header is not the JSON a safetensors file holds")
        }
        SafeTensorError::ValidationOverflow => {
            Error::header(p, "a shape or offset overflows when multiplied out")
        }
        other => Error::header(p, other.to_string()),
    }
}

/// Best-effort end of the data section the header declares (for the truncation message).
fn data_end(map: &[u8]) -> Option<u64> {
    let n = u64::from_le_bytes(map.get(..8)?.try_into().ok()?);
    let header = map.get(8..8usize.checked_add(n as usize)?)?;
    let json: serde_json::Value = serde_json::from_slice(header).ok()?;
    let max = json
        .as_object()?
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .filter_map(|(_, v)| v.get("data_offsets")?.get(1)?.as_u64())
        .max()?;
    Some(8 + n + max)
}

impl TensorReader for SafetensorsReader {
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
        let t = &self.tensors[index];
        let Some(size) = element_size(&t.dtype) else {
            return Err(Error::UnsupportedDtype {
                path: self.path.clone(),
                tensor: t.name.clone(),
                dtype: t.dtype.to_string(),
            });
        };
        let bytes = self.bytes(index, &range, size)?;
        decode(&t.dtype, bytes, sink);
        self.map.release(bytes);
        Ok(())
    }
}

/// Little-endian f32 bytes to values: zero-copy when aligned on a little-endian machine, in
/// one run (so the statistics kernel prefetches across the whole range).
pub(crate) fn decode_f32(bytes: &[u8], sink: &mut dyn FnMut(Values<'_>)) {
    #[cfg(target_endian = "little")]
    {
        // SAFETY: every bit pattern is a valid f32; align_to only yields the aligned middle.
        let (pre, mid, post) = unsafe { bytes.align_to::<f32>() };
        if pre.is_empty() && post.is_empty() {
            if !mid.is_empty() {
                sink(Values::F32(mid));
            }
            return;
        }
    }
    let mut buf = Vec::with_capacity(DECODE_CHUNK.min(bytes.len() / 4));
    for chunk in bytes.chunks(DECODE_CHUNK * 4) {
        buf.clear();
        buf.extend(
            chunk
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap())),
        );
        sink(Values::F32(&buf));
    }
}

/// Little-endian f64 bytes to values: zero-copy when aligned on a little-endian machine.
fn decode_f64(bytes: &[u8], sink: &mut dyn FnMut(Values<'_>)) {
    #[cfg(target_endian = "little")]
    {
        // SAFETY: every bit pattern is a valid f64; align_to only yields the aligned middle.
        let (pre, mid, post) = unsafe { bytes.align_to::<f64>() };
        if pre.is_empty() && post.is_empty() {
            if !mid.is_empty() {
                sink(Values::F64(mid));
            }
            return;
        }
    }
    let mut buf = Vec::with_capacity(DECODE_CHUNK.min(bytes.len() / 8));
    for chunk in bytes.chunks(DECODE_CHUNK * 8) {
        buf.clear();
        buf.extend(
            chunk
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])),
        );
        sink(Values::F64(&buf));
    }
}

/// Values widened per sink call by [`decode_bf16`] and [`decode_f16`]: a multiple of
/// [`crate::stats::BLOCK`] (so blocks fall where they would for the same values stored as f32)
/// small enough that the buffer stays in L1 cache while the kernel makes its two passes.
const WIDEN_CHUNK: usize = 2 * crate::stats::BLOCK;

/// How far ahead of the widening loops to prefetch, in bytes of the source. Page-cache pages
/// are scattered in physical memory and the hardware prefetchers stop at every 4 KiB page
/// boundary; without this the loops wait on DRAM (bf16 widening and statistics: 0.55–0.6
/// instead of 0.75–0.85 ns per value out of cache on the benchmark machine, bench/README.md).
const PREFETCH_BYTES: usize = 2048;

/// Hint the CPU to fetch the cache line holding `bytes[at]`, if there is one.
#[inline(always)]
fn prefetch(bytes: &[u8], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(b) = bytes.get(at) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: SSE is part of the x86_64 baseline, and a prefetch has no architectural
        // effect; the address is inside `bytes` anyway.
        unsafe { _mm_prefetch::<_MM_HINT_T0>((b as *const u8).cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (bytes, at);
}

/// Little-endian bfloat16 bytes to f32 through a stack buffer. The widening is a 16-bit shift
/// (exact; a signalling NaN stays a NaN), which the compiler vectorises.
pub(crate) fn decode_bf16(bytes: &[u8], sink: &mut dyn FnMut(Values<'_>)) {
    let mut buf = [0f32; WIDEN_CHUNK];
    for (c, chunk) in bytes.chunks(WIDEN_CHUNK * 2).enumerate() {
        let out = &mut buf[..chunk.len() / 2];
        let base = c * WIDEN_CHUNK * 2;
        for (k, (line, y)) in chunk.chunks(64).zip(out.chunks_mut(32)).enumerate() {
            prefetch(bytes, base + k * 64 + PREFETCH_BYTES);
            for (y, b) in y.iter_mut().zip(line.chunks_exact(2)) {
                *y = f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16);
            }
        }
        sink(Values::F32(out));
    }
}

/// Little-endian IEEE half bytes to f32 through a stack buffer, with the `half` crate's slice
/// conversion (F16C instructions when the CPU has them).
pub(crate) fn decode_f16(bytes: &[u8], sink: &mut dyn FnMut(Values<'_>)) {
    use half::slice::HalfFloatSliceExt;
    let mut buf = [0f32; WIDEN_CHUNK];
    let mut halves = [f16::ZERO; WIDEN_CHUNK];
    for (c, chunk) in bytes.chunks(WIDEN_CHUNK * 2).enumerate() {
        let n = chunk.len() / 2;
        let base = c * WIDEN_CHUNK * 2;
        for (k, (line, h)) in chunk.chunks(64).zip(halves[..n].chunks_mut(32)).enumerate() {
            prefetch(bytes, base + k * 64 + PREFETCH_BYTES);
            for (h, b) in h.iter_mut().zip(line.chunks_exact(2)) {
                *h = f16::from_bits(u16::from_le_bytes([b[0], b[1]]));
            }
        }
        let out = &mut buf[..n];
        halves[..n].convert_to_f32_slice(out);
        sink(Values::F32(out));
    }
}

#[cfg(test)]
mod tests {
    use half::bf16;

    use super::*;

    /// Every 16-bit pattern, little-endian, in an order that crosses chunk boundaries.
    fn all_patterns() -> Vec<u8> {
        (0..=u16::MAX).flat_map(u16::to_le_bytes).collect()
    }

    /// A decoder of raw bytes into runs of values.
    type Decoder = fn(&[u8], &mut dyn FnMut(Values<'_>));

    /// Decode `bytes` through `decode`, checking the runs arrive in order and fit the buffer.
    fn collect(bytes: &[u8], decode: Decoder) -> Vec<f32> {
        let mut out = Vec::new();
        decode(bytes, &mut |v| match v {
            Values::F32(x) => {
                assert!(!x.is_empty() && x.len() <= WIDEN_CHUNK);
                out.extend_from_slice(x);
            }
            Values::F64(_) => panic!("16-bit floats widen to f32"),
        });
        out
    }

    fn same(a: f32, b: f32) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    #[test]
    fn bf16_widening_is_exact_for_every_pattern() {
        let bytes = all_patterns();
        let got = collect(&bytes, decode_bf16);
        assert_eq!(got.len(), 1 << 16);
        for (bits, &y) in (0..=u16::MAX).zip(&got) {
            assert!(same(y, bf16::from_bits(bits).to_f32()), "{bits:#06x}: {y}");
        }
    }

    #[test]
    fn f16_widening_is_exact_for_every_pattern() {
        let bytes = all_patterns();
        let got = collect(&bytes, decode_f16);
        assert_eq!(got.len(), 1 << 16);
        for (bits, &y) in (0..=u16::MAX).zip(&got) {
            assert!(same(y, f16::from_bits(bits).to_f32()), "{bits:#06x}: {y}");
        }
    }

    #[test]
    fn widening_handles_short_and_odd_inputs() {
        for n in [0usize, 1, 31, 32, 33, WIDEN_CHUNK - 1, WIDEN_CHUNK + 1] {
            let bytes: Vec<u8> = (0..n as u16)
                .flat_map(|i| bf16::from_f32(i as f32).to_bits().to_le_bytes())
                .collect();
            let got = collect(&bytes, decode_bf16);
            assert_eq!(got.len(), n);
            assert!(got
                .iter()
                .enumerate()
                .all(|(i, &y)| y == bf16::from_f32(i as f32).to_f32()));
        }
    }

    #[test]
    fn f64_values_read_in_place_and_copied_agree() {
        let xs: Vec<f64> = (0..5000).map(|i| i as f64 * 0.25 - 7.0).collect();
        let raw: Vec<u8> = xs.iter().flat_map(|x| x.to_le_bytes()).collect();
        let mut buf = vec![0u8; raw.len() + 16];
        let aligned = buf.as_ptr().align_offset(8);
        for (start, runs) in [(aligned, 1), (aligned + 1, xs.len().div_ceil(DECODE_CHUNK))] {
            buf[start..start + raw.len()].copy_from_slice(&raw);
            let (mut got, mut calls) = (Vec::new(), 0);
            decode_f64(&buf[start..start + raw.len()], &mut |v| match v {
                Values::F64(x) => {
                    got.extend_from_slice(x);
                    calls += 1;
                }
                Values::F32(_) => panic!("f64 stays f64"),
            });
            assert_eq!(got, xs, "offset {start}");
            assert_eq!(calls, runs, "offset {start}");
        }
    }
}

//! Container formats. A reader knows bytes and dtypes, never roles: it lists a file's tensors
//! ([`TensorInfo`]) and decodes any element range of one of them into f32/f64 values.
//!
//! Shapes are given outermost-first (row-major, the PyTorch order): a GGUF tensor stored as
//! `[ne0, ne1]` is listed as `[ne1, ne0]`, so row `r` of a 2-D tensor is always the element
//! range `r * cols .. (r + 1) * cols` whatever the container.

use std::ops::Range;
use std::path::Path;

use crate::config::ConfigSummary;
use crate::dtype::DType;
use crate::error::{Error, Result};

pub mod ct2;
pub mod ggml;
pub mod gguf;
pub mod onnx;
pub mod onnx_proto;
pub mod pickle;
mod qmoments;
pub mod safetensors;
pub mod torch;
pub mod zipdir;

/// One tensor as a reader sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    /// The name stored in the file.
    pub name: String,
    /// A conventional (Hugging Face style) name the reader derived for a tensor whose stored
    /// name carries no meaning (e.g. anonymous ONNX initializers); role mapping prefers it.
    pub role_name: Option<String>,
    /// Shape, outermost dimension first.
    pub shape: Vec<u64>,
    /// Stored element type.
    pub dtype: DType,
    /// Decoding granularity in elements: every range passed to [`TensorReader::read`] starts
    /// at a multiple of it (and ends at one, or at the end of the tensor). 1 for plain types.
    pub block: u64,
}

impl TensorInfo {
    /// Number of elements (checked product of the shape; readers validate it on open).
    pub fn numel(&self) -> u64 {
        self.shape.iter().product()
    }

    /// The name role mapping should use.
    pub fn mapping_name(&self) -> &str {
        self.role_name.as_deref().unwrap_or(&self.name)
    }
}

/// A run of decoded values handed to a reader's sink.
#[derive(Clone, Copy, Debug)]
pub enum Values<'a> {
    /// Single-precision values (exact for f32, f16, bf16 and dequantized blocks).
    F32(&'a [f32]),
    /// Double-precision values (f64 tensors).
    F64(&'a [f64]),
}

/// Values decoded per sink call by the readers' buffered paths.
pub const DECODE_CHUNK: usize = 16 * 1024;

/// Unmap the whole pages of `bytes` (a slice of `map` that has been read) from this process
/// with `MADV_DONTNEED`. The pages stay in the page cache; unmapping them in the worker that
/// read them, work unit by work unit, spreads over all threads the page-table teardown that
/// dropping the map would otherwise do on one, and keeps the resident set of a
/// multi-gigabyte file small. Pages shared with a neighbouring range are left alone.
pub(crate) fn release_pages(map: &memmap2::Mmap, bytes: &[u8]) {
    #[cfg(unix)]
    {
        const PAGE: usize = 4096;
        let offset = bytes.as_ptr() as usize - map.as_ptr() as usize;
        let start = offset.next_multiple_of(PAGE);
        let end = (offset + bytes.len()) / PAGE * PAGE;
        if end > start {
            // SAFETY: the map is a read-only mapping of a file: MADV_DONTNEED only drops
            // page-table entries, and a later access maps the same file pages again, so no
            // slice into the map ever sees different bytes. Failure is harmless.
            let _ = unsafe {
                map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start)
            };
        }
    }
    #[cfg(not(unix))]
    let _ = (map, bytes);
}

/// The bytes a reader holds: the memory-mapped file, or only the header of a file that is
/// read over the network (its tensor bytes are fetched in ranges, see `crate::remote`).
pub(crate) enum Backing {
    /// The whole file, memory-mapped.
    Map(memmap2::Mmap),
    /// The file's first bytes (at least the whole header).
    Head(Vec<u8>),
}

impl Backing {
    /// The bytes held.
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Backing::Map(m) => m,
            Backing::Head(h) => h,
        }
    }

    /// [`release_pages`] for a mapped file; nothing for a held header.
    pub(crate) fn release(&self, bytes: &[u8]) {
        if let Backing::Map(m) = self {
            release_pages(m, bytes);
        }
    }
}

/// An opened weight file.
pub trait TensorReader: Send + Sync {
    /// The file.
    fn path(&self) -> &Path;

    /// Every tensor of the file, in file order.
    fn tensors(&self) -> &[TensorInfo];

    /// Decode elements `range` of tensor `index` (into [`Self::tensors`]) in order, handing
    /// them to `sink` in one or more consecutive runs. Errors name the file and the tensor.
    /// An empty range decodes nothing but must still fail with [`Error::UnsupportedDtype`]
    /// when the tensor's type cannot be decoded: the engine probes tensors this way.
    fn read(&self, index: usize, range: Range<u64>, sink: &mut dyn FnMut(Values<'_>))
        -> Result<()>;

    /// The statistics of elements `range` of tensor `index`, when the reader can compute them
    /// without decoding the values (quantized GGUF blocks, from their integer codes); `None`
    /// when it cannot, and the caller [`Self::read`]s the values instead. The same blocks
    /// are formed as when the decoded values are pushed into a fresh accumulator, and the
    /// results agree with that to rounding (1e-12 relative, tested).
    fn moments(&self, index: usize, range: Range<u64>) -> Option<Result<crate::Accumulator>> {
        let _ = (index, range);
        None
    }

    /// The architecture name the file itself records (GGUF `general.architecture`, ...).
    fn architecture(&self) -> Option<String> {
        None
    }

    /// Model configuration recorded inside the file (GGUF metadata, ...), if any.
    fn config(&self) -> Option<ConfigSummary> {
        None
    }

    /// Cut `reads` (tensor index, element range), in the order the engine will make them, into
    /// consecutive batches; the engine finishes every read of a batch before it starts the
    /// next. One batch by default; a reader that fetches over the network bounds the bytes a
    /// batch holds.
    fn batches(&self, reads: &[(usize, Range<u64>)]) -> Vec<Range<usize>> {
        std::iter::once(0..reads.len()).collect()
    }

    /// Called with each batch of [`Self::batches`] before the engine reads it: a reader that
    /// fetches over the network fetches the batch's bytes here, in parallel. Nothing by
    /// default.
    fn prefetch(&self, reads: &[(usize, Range<u64>)]) -> Result<()> {
        let _ = reads;
        Ok(())
    }
}

/// Container formats nullprint reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Format {
    /// Hugging Face safetensors.
    Safetensors,
    /// llama.cpp GGUF (v2, v3).
    Gguf,
    /// PyTorch zip checkpoint (`pytorch_model.bin`).
    Torch,
    /// ONNX protobuf model.
    Onnx,
    /// CTranslate2 `model.bin`.
    Ct2,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Safetensors => "safetensors",
            Format::Gguf => "gguf",
            Format::Torch => "torch",
            Format::Onnx => "onnx",
            Format::Ct2 => "ct2",
        })
    }
}

/// Guess a file's format from its first bytes (and, for ONNX, its extension).
pub fn detect(path: &Path) -> Result<Format> {
    use std::io::Read;
    let mut head = [0u8; 16];
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut got = 0;
    while got < head.len() {
        match file.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    let head = &head[..got];
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if head.starts_with(b"GGUF") {
        return Ok(Format::Gguf);
    }
    if head.starts_with(b"PK\x03\x04") {
        return Ok(Format::Torch);
    }
    if ext.eq_ignore_ascii_case("onnx") {
        return Ok(Format::Onnx);
    }
    if ext.eq_ignore_ascii_case("safetensors") || (head.len() >= 9 && head[8] == b'{') {
        return Ok(Format::Safetensors);
    }
    if ext == "bin"
        && head.len() >= 4
        && u32::from_le_bytes([head[0], head[1], head[2], head[3]]) <= 16
    {
        return Ok(Format::Ct2);
    }
    Err(Error::UnknownFormat {
        path: path.to_path_buf(),
        reason: format!(
            "not safetensors, GGUF, a PyTorch zip, ONNX or CTranslate2 (first bytes {:02x?})",
            &head[..head.len().min(8)]
        ),
    })
}

/// Open a weight file with the reader for `format`.
pub fn open(path: &Path, format: Format) -> Result<Box<dyn TensorReader>> {
    match format {
        Format::Safetensors => Ok(Box::new(safetensors::SafetensorsReader::open(path)?)),
        Format::Gguf => gguf::open(path),
        Format::Torch => torch::open(path),
        Format::Onnx => onnx::open(path),
        Format::Ct2 => ct2::open(path),
    }
}

//! Whole 2-D weight matrices as `ndarray` arrays, for weight-level tests (neuron matching).
//!
//! [`ModelMatrices`] opens every file of a resolved model, maps its tensors to role keys with
//! the same plan as the fingerprint engine ([`fingerprint::engine::plan`]), and lists every role
//! slice that is a matrix: a 2-D tensor, a row block of a fused one (q/k/v, gate/up), a column
//! block of a GPT-2 `Conv1D` fused tensor, or one expert of a GGUF 3-D expert stack.
//! [`ModelMatrices::read`] decodes one of them (by role key, or [`ModelMatrices::read_tensor`]
//! by stored name) through the format's [`TensorReader`], so quantized GGUF blocks arrive
//! dequantized, into an `Array2<f32>`.
//!
//! **Orientation.** Results are in PyTorch `[out, in]` order: row `r` holds the weights of
//! output feature `r`. The readers already list GGUF, safetensors, PyTorch and CTranslate2
//! shapes outermost-first, which is that order for `nn.Linear`. Two stored layouts are the
//! transpose, and [`Orientation::Auto`] transposes them:
//! - ONNX weights named by the reader from the graph ([`fingerprint::format::TensorInfo::role_name`]
//!   set; anonymous initializers such as `val_49` or `onnx::MatMul_470`) feed a `MatMul`,
//!   which stores `[in, out]`; token, position and type embeddings feed a `Gather` and are
//!   rows already, so they are left as stored. An ONNX initializer that keeps its own
//!   `….weight` name is left as stored: it may feed a `Gemm` with `transB = 1` (`[out, in]`)
//!   or a `MatMul` (`[in, out]`), and the reader does not say which. Callers that know better
//!   pass [`Orientation::Transposed`] or [`Orientation::AsStored`]; the weight-level tests
//!   also check every MLP matrix's shape against the model's hidden size.
//! - GPT-2 style `Conv1D` weights (`attn.c_attn`, `attn.c_proj`, `mlp.c_fc`, `mlp.c_proj`)
//!   in safetensors or PyTorch files are stored `[in, out]`.
//!
//! **Selection and memory.** Rows and columns (in the output orientation) can be restricted to
//! given indices or to a seeded uniform sample ([`Pick`]); the statement of what was kept is
//! returned with the matrix ([`Matrix::selection`]). Only the selected stored rows are decoded,
//! in runs of at most [`RUN_ELEMENTS`] elements, so transient memory is one run; the result
//! must fit in [`ReadOptions::max_bytes`] (default [`DEFAULT_MAX_BYTES`]) or the read fails
//! before anything is allocated.

// A matrix's element ranges are a list; a list of one range is the norm.
#![allow(clippy::single_range_in_vec_init)]

use std::collections::BTreeMap;
use std::ops::Range;

use ndarray::Array2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use fingerprint::engine::{self, Plan};
use fingerprint::error::{Error, Result};
use fingerprint::format::{self, Format, TensorReader, Values};
use fingerprint::roles::{Role, RoleKey};
use fingerprint::source::ModelSource;

/// Default cap on the bytes of one decoded matrix (f32 values): 2 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 2 << 30;

/// Most elements decoded per reader call.
pub const RUN_ELEMENTS: u64 = 1 << 20;

/// Which rows (or columns) of a matrix to keep.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Pick {
    /// All of them.
    #[default]
    All,
    /// These indices, in this order (each must be in range; repeats are allowed).
    Indices(Vec<usize>),
    /// A uniform sample without replacement of at most `max` indices, sorted, drawn with
    /// [`sample_indices`] from ChaCha8 seeded with `seed`; all of them when there are at most
    /// `max`.
    Sample {
        /// Largest number kept.
        max: usize,
        /// Seed of the draw.
        seed: u64,
    },
}

impl Pick {
    /// The indices this pick keeps out of `n`, or `None` for all of them.
    pub fn resolve(&self, n: usize) -> std::result::Result<Option<Vec<usize>>, String> {
        match self {
            Pick::All => Ok(None),
            Pick::Indices(ix) => match ix.iter().find(|&&i| i >= n) {
                Some(bad) => Err(format!("index {bad} out of range (size {n})")),
                None => Ok(Some(ix.clone())),
            },
            Pick::Sample { max, seed } => {
                if *max >= n {
                    Ok(None)
                } else {
                    Ok(Some(sample_indices(n, *max, *seed)))
                }
            }
        }
    }

    fn describe(&self, kept: &Option<Vec<usize>>, n: usize) -> String {
        match (self, kept) {
            (_, None) => format!("all {n}"),
            (Pick::Sample { seed, .. }, Some(k)) => format!(
                "{} of {n} (uniform without replacement, ChaCha8 seed {seed})",
                k.len()
            ),
            (_, Some(k)) => format!("{} of {n} (given indices)", k.len()),
        }
    }
}

/// `m` distinct indices out of `0..n`, uniform without replacement, sorted: `rand`'s
/// `index::sample` driven by ChaCha8 seeded with `seed` (`SeedableRng::seed_from_u64`).
/// All of `0..n` when `m >= n`.
pub fn sample_indices(n: usize, m: usize, seed: u64) -> Vec<usize> {
    if m >= n {
        return (0..n).collect();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut v = rand::seq::index::sample(&mut rng, n, m).into_vec();
    v.sort_unstable();
    v
}

/// How the stored layout maps to `[out, in]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Orientation {
    /// Decide from the format and the name (see the module docs).
    #[default]
    Auto,
    /// The stored shape is `[out, in]`.
    AsStored,
    /// The stored shape is `[in, out]`: transpose.
    Transposed,
}

/// What to read.
#[derive(Clone, Debug, PartialEq)]
pub struct ReadOptions {
    /// Rows of the result (output features) to keep.
    pub rows: Pick,
    /// Columns of the result (input features) to keep.
    pub cols: Pick,
    /// Stored layout.
    pub orientation: Orientation,
    /// Largest result, in bytes of f32 values.
    pub max_bytes: u64,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            rows: Pick::All,
            cols: Pick::All,
            orientation: Orientation::Auto,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// One role slice that is a matrix, as planned from the headers.
#[derive(Clone, Debug, PartialEq)]
pub struct MatrixEntry {
    /// Where it sits in the model.
    pub key: RoleKey,
    /// The stored tensor's name.
    pub tensor: String,
    /// Index of the file in the model's file list.
    pub file: usize,
    /// Index of the tensor in that file's reader.
    pub index: usize,
    /// Element offset of the stored matrix in the tensor (an expert's slice of a 3-D stack).
    base: u64,
    /// Columns of a stored row (the tensor's innermost dimension).
    row_len: u64,
    /// Stored rows of this slice, in order.
    row_ranges: Vec<Range<u64>>,
    /// Stored columns of this slice.
    col_range: Range<u64>,
    /// Whether [`Orientation::Auto`] transposes it, and why.
    auto_transpose: Option<&'static str>,
}

impl MatrixEntry {
    /// Rows × columns as stored (before any transposition).
    pub fn stored_shape(&self) -> [usize; 2] {
        let rows: u64 = self.row_ranges.iter().map(|r| r.end - r.start).sum();
        [
            rows as usize,
            (self.col_range.end - self.col_range.start) as usize,
        ]
    }

    /// Whether the result is transposed under `orientation`.
    pub fn transposed(&self, orientation: Orientation) -> bool {
        match orientation {
            Orientation::Auto => self.auto_transpose.is_some(),
            Orientation::AsStored => false,
            Orientation::Transposed => true,
        }
    }

    /// `[out, in]` shape of the result under `orientation`.
    pub fn shape(&self, orientation: Orientation) -> [usize; 2] {
        let [r, c] = self.stored_shape();
        if self.transposed(orientation) {
            [c, r]
        } else {
            [r, c]
        }
    }

    /// Why [`Orientation::Auto`] transposes this matrix, if it does.
    pub fn auto_transpose_reason(&self) -> Option<&'static str> {
        self.auto_transpose
    }

    /// The stored row holding logical stored row `r`.
    fn stored_row(&self, r: u64) -> Option<u64> {
        let mut left = r;
        for range in &self.row_ranges {
            let len = range.end - range.start;
            if left < len {
                return Some(range.start + left);
            }
            left -= len;
        }
        None
    }
}

/// A decoded matrix with the statement of how it was obtained.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    /// The stored tensor's name.
    pub tensor: String,
    /// Its role key, when read by key.
    pub key: Option<RoleKey>,
    /// The values, `[out, in]`, restricted to the selection.
    pub data: Array2<f32>,
    /// Full `[out, in]` shape before selection.
    pub full_shape: [usize; 2],
    /// Rows kept (`None`: all).
    pub rows: Option<Vec<usize>>,
    /// Columns kept (`None`: all).
    pub cols: Option<Vec<usize>>,
    /// Whether the stored layout was transposed.
    pub transposed: bool,
    /// What was kept and how it was oriented, in words.
    pub selection: String,
}

/// A model opened for matrix reads: its plan and one reader per file.
pub struct ModelMatrices {
    src: ModelSource,
    plan: Plan,
    readers: Vec<Box<dyn TensorReader>>,
    entries: Vec<MatrixEntry>,
    by_key: BTreeMap<RoleKey, usize>,
}

impl std::fmt::Debug for ModelMatrices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelMatrices")
            .field("name", &self.src.name)
            .field("files", &self.src.files)
            .field("matrices", &self.entries.len())
            .finish()
    }
}

/// Names of GPT-2 `Conv1D` weights, stored `[in, out]`.
const CONV1D_SUFFIXES: &[&str] = &[
    "attn.c_attn.weight",
    "attn.c_proj.weight",
    "mlp.c_fc.weight",
    "mlp.c_proj.weight",
];

impl ModelMatrices {
    /// Plan `src` (headers only) and open its files.
    pub fn open(src: ModelSource) -> Result<Self> {
        let plan = engine::plan(&src)?;
        let readers = src
            .files
            .iter()
            .map(|p| format::open(p, src.format))
            .collect::<Result<Vec<_>>>()?;
        let mut entries = Vec::new();
        let mut by_key = BTreeMap::new();
        for t in &plan.tensors {
            for a in &t.assignments {
                if matches!(a.key.role, Role::Bias(_)) {
                    continue;
                }
                let Some(entry) = entry_for(&src, t, a) else {
                    continue;
                };
                // The first tensor claiming a key wins; a second one keeps its stored name.
                if !by_key.contains_key(&entry.key) {
                    by_key.insert(entry.key.clone(), entries.len());
                }
                entries.push(entry);
            }
        }
        Ok(ModelMatrices {
            src,
            plan,
            readers,
            entries,
            by_key,
        })
    }

    /// The model's display name.
    pub fn name(&self) -> &str {
        &self.src.name
    }

    /// The resolved source.
    pub fn source(&self) -> &ModelSource {
        &self.src
    }

    /// The plan (configuration, architecture, every tensor with its roles).
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Every matrix, in file order.
    pub fn entries(&self) -> &[MatrixEntry] {
        &self.entries
    }

    /// The matrix with this role key.
    pub fn entry(&self, key: &RoleKey) -> Option<&MatrixEntry> {
        self.by_key.get(key).and_then(|&i| self.entries.get(i))
    }

    /// Decode the matrix with this role key.
    pub fn read(&self, key: &RoleKey, opts: &ReadOptions) -> Result<Matrix> {
        let entry = self.entry(key).ok_or_else(|| Error::NotFound {
            spec: self.src.spec.clone(),
            reason: format!("no matrix with role key {}", describe_key(key)),
        })?;
        let mut m = self.read_entry(entry, opts)?;
        m.key = Some(key.clone());
        Ok(m)
    }

    /// Decode a whole 2-D tensor by its stored name (a fused tensor whole, unsplit).
    pub fn read_tensor(&self, name: &str, opts: &ReadOptions) -> Result<Matrix> {
        let t = self
            .plan
            .tensors
            .iter()
            .find(|t| t.info.name == name)
            .ok_or_else(|| Error::NotFound {
                spec: self.src.spec.clone(),
                reason: format!("no tensor named {name}"),
            })?;
        let path = self.src.files.get(t.file).cloned().unwrap_or_default();
        if t.info.shape.len() != 2 {
            return Err(Error::tensor(
                &path,
                name,
                format!("shape {:?} is not a matrix", t.info.shape),
            ));
        }
        let key = match t.assignments.as_slice() {
            [one] => one.key.clone(),
            _ => RoleKey {
                stack: None,
                layer: None,
                role: Role::Other(name.to_owned()),
                expert: None,
            },
        };
        let whole = fingerprint::roles::Assignment {
            key,
            ranges: vec![0..t.info.numel()],
        };
        let entry = entry_for(&self.src, t, &whole)
            .ok_or_else(|| Error::tensor(&path, name, "empty matrix"))?;
        let mut m = self.read_entry(&entry, opts)?;
        m.key = None;
        Ok(m)
    }

    /// Decode one entry.
    pub fn read_entry(&self, entry: &MatrixEntry, opts: &ReadOptions) -> Result<Matrix> {
        let reader = self
            .readers
            .get(entry.file)
            .ok_or_else(|| Error::NotFound {
                spec: self.src.spec.clone(),
                reason: format!("file {} of matrix {}", entry.file, entry.tensor),
            })?;
        let path = reader.path().to_path_buf();
        let info = reader
            .tensors()
            .get(entry.index)
            .ok_or_else(|| Error::tensor(&path, &entry.tensor, "tensor index out of range"))?;
        let transposed = entry.transposed(opts.orientation);
        let [out_rows, out_cols] = entry.shape(opts.orientation);
        let rows = opts
            .rows
            .resolve(out_rows)
            .map_err(|r| Error::tensor(&path, &entry.tensor, format!("rows: {r}")))?;
        let cols = opts
            .cols
            .resolve(out_cols)
            .map_err(|r| Error::tensor(&path, &entry.tensor, format!("columns: {r}")))?;
        let n_rows = rows.as_ref().map_or(out_rows, Vec::len);
        let n_cols = cols.as_ref().map_or(out_cols, Vec::len);
        let bytes = (n_rows as u64)
            .checked_mul(n_cols as u64)
            .and_then(|n| n.checked_mul(4))
            .unwrap_or(u64::MAX);
        if bytes > opts.max_bytes {
            return Err(Error::tensor(
                &path,
                &entry.tensor,
                format!(
                    "a {n_rows}×{n_cols} f32 selection takes {bytes} bytes, over the cap of {} \
                     (subsample rows or columns, or raise the cap)",
                    opts.max_bytes
                ),
            ));
        }
        // Selections in stored terms: stored rows come from the output rows, or from the
        // output columns when transposed.
        let (stored_rows_sel, stored_cols_sel) = if transposed {
            (&cols, &rows)
        } else {
            (&rows, &cols)
        };
        let [stored_rows, stored_cols] = entry.stored_shape();
        let row_list: Vec<usize> = match stored_rows_sel {
            Some(v) => v.clone(),
            None => (0..stored_rows).collect(),
        };
        let col_list: Vec<usize> = match stored_cols_sel {
            Some(v) => v.clone(),
            None => (0..stored_cols).collect(),
        };
        // Decode each distinct stored row once, in increasing order, in runs.
        let mut wanted: Vec<(usize, usize)> = row_list.iter().copied().enumerate().collect();
        wanted.sort_by_key(|&(_, r)| r);
        let mut data = Array2::<f32>::zeros((n_rows, n_cols));
        let block = info.block.max(1);
        let numel = info.numel();
        let row_len = entry.row_len;
        let col0 = entry.col_range.start;
        let mut i = 0;
        let mut row_buf: Vec<f32> = Vec::new();
        while i < wanted.len() {
            // A run of consecutive stored rows (repeats allowed).
            let first = wanted[i].1;
            let first_stored = entry
                .stored_row(first as u64)
                .ok_or_else(|| Error::tensor(&path, &entry.tensor, "row out of range"))?;
            let mut last = first;
            let mut j = i + 1;
            let max_rows_per_run = (RUN_ELEMENTS / row_len.max(1)).max(1) as usize;
            while j < wanted.len() {
                let r = wanted[j].1;
                let contiguous = r == last
                    || (r == last + 1
                        && entry.stored_row(r as u64)
                            == entry.stored_row(last as u64).map(|s| s + 1));
                if !contiguous || r - first >= max_rows_per_run {
                    break;
                }
                last = r;
                j += 1;
            }
            let n_run = last - first + 1;
            let start = entry
                .base
                .checked_add(first_stored.saturating_mul(row_len))
                .filter(|&s| s <= numel)
                .ok_or_else(|| Error::tensor(&path, &entry.tensor, "row offset overflows"))?;
            let end = (n_run as u64)
                .checked_mul(row_len)
                .and_then(|len| start.checked_add(len))
                .unwrap_or(u64::MAX);
            if end > numel {
                return Err(Error::tensor(
                    &path,
                    &entry.tensor,
                    format!("rows end at element {end}, past the tensor's {numel}"),
                ));
            }
            let aligned_start = start - start % block;
            let aligned_end = end.div_ceil(block).saturating_mul(block).min(numel);
            row_buf.clear();
            reader.read(entry.index, aligned_start..aligned_end, &mut |v| match v {
                Values::F32(x) => row_buf.extend_from_slice(x),
                Values::F64(x) => row_buf.extend(x.iter().map(|&y| y as f32)),
            })?;
            let skip = (start - aligned_start) as usize;
            let expect = skip + n_run * row_len as usize;
            if row_buf.len() < expect {
                return Err(Error::tensor(
                    &path,
                    &entry.tensor,
                    format!("decoded {} values, expected {expect}", row_buf.len()),
                ));
            }
            for &(out_pos, r) in &wanted[i..j] {
                let off = skip + (r - first) * row_len as usize + col0 as usize;
                let row = &row_buf[off..off + stored_cols];
                for (ci, &c) in col_list.iter().enumerate() {
                    let v = row[c];
                    if transposed {
                        data[(ci, out_pos)] = v;
                    } else {
                        data[(out_pos, ci)] = v;
                    }
                }
            }
            i = j;
        }
        let orient = if transposed {
            let why = match opts.orientation {
                Orientation::Auto => entry.auto_transpose.unwrap_or("requested"),
                _ => "requested",
            };
            format!("; transposed from the stored [in, out] layout ({why})")
        } else {
            String::new()
        };
        Ok(Matrix {
            tensor: entry.tensor.clone(),
            key: Some(entry.key.clone()),
            data,
            full_shape: [out_rows, out_cols],
            selection: format!(
                "rows: {}; columns: {}{orient}",
                opts.rows.describe(&rows, out_rows),
                opts.cols.describe(&cols, out_cols)
            ),
            rows,
            cols,
            transposed,
        })
    }
}

/// `stack.layer.role@expert` for messages.
pub fn describe_key(key: &RoleKey) -> String {
    let mut s = String::new();
    if let Some(st) = key.stack {
        s.push_str(&format!("{st}."));
    }
    if let Some(l) = key.layer {
        s.push_str(&format!("{l}."));
    }
    s.push_str(&key.role.to_string());
    if let Some(e) = key.expert {
        s.push_str(&format!("@{e}"));
    }
    s
}

/// The matrix an assignment describes, when it is one.
fn entry_for(
    src: &ModelSource,
    t: &engine::PlannedTensor,
    a: &fingerprint::roles::Assignment,
) -> Option<MatrixEntry> {
    let shape = &t.info.shape;
    let (base_rows, row_len, per) = match shape.len() {
        2 => (shape[0], shape[1], shape[0].checked_mul(shape[1])?),
        3 => (shape[1], shape[2], shape[1].checked_mul(shape[2])?),
        _ => return None,
    };
    if row_len == 0 || base_rows == 0 || a.ranges.is_empty() {
        return None;
    }
    // The slice's matrix: for a 3-D stack, the expert's [rows, cols] block.
    let base = (a.ranges[0].start / per) * per;
    if a.ranges
        .iter()
        .any(|r| r.start < base || r.end > base + per)
    {
        return None;
    }
    let row_aligned = a
        .ranges
        .iter()
        .all(|r| (r.start - base) % row_len == 0 && (r.end - base) % row_len == 0);
    let (row_ranges, col_range) = if row_aligned {
        let rows = a
            .ranges
            .iter()
            .map(|r| (r.start - base) / row_len..(r.end - base) / row_len)
            .collect();
        (rows, 0..row_len)
    } else {
        // One piece per stored row, all the same columns (GPT-2 fused `c_attn`).
        let first = a.ranges.first()?;
        let c0 = (first.start - base) % row_len;
        let c1 = c0 + (first.end - first.start);
        if c1 > row_len || a.ranges.len() as u64 != base_rows {
            return None;
        }
        let same = a.ranges.iter().enumerate().all(|(i, r)| {
            let row_start = base + i as u64 * row_len;
            r.start == row_start + c0 && r.end == row_start + c1
        });
        if !same {
            return None;
        }
        (vec![0..base_rows], c0..c1)
    };
    let name = t.info.mapping_name();
    let embedding = matches!(a.key.role, Role::Embed | Role::EmbedPos | Role::EmbedType);
    let auto_transpose = match src.format {
        Format::Onnx if t.info.role_name.is_some() && !embedding => {
            Some("an ONNX MatMul weight named from the graph is stored [in, out]")
        }
        Format::Safetensors | Format::Torch
            if CONV1D_SUFFIXES.iter().any(|s| name.ends_with(s)) =>
        {
            Some("a GPT-2 Conv1D weight is stored [in, out]")
        }
        _ => None,
    };
    Some(MatrixEntry {
        key: a.key.clone(),
        tensor: t.info.name.clone(),
        file: t.file,
        index: t.index,
        base,
        row_len,
        row_ranges,
        col_range,
        auto_transpose,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_is_seeded_sorted_and_distinct() {
        let a = sample_indices(100, 10, 7);
        assert_eq!(a, sample_indices(100, 10, 7));
        assert_ne!(a, sample_indices(100, 10, 8));
        assert_eq!(a.len(), 10);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert!(a.iter().all(|&i| i < 100));
        assert_eq!(sample_indices(5, 10, 1), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn pick_rejects_out_of_range() {
        assert!(Pick::Indices(vec![0, 5]).resolve(5).is_err());
        assert_eq!(
            Pick::Indices(vec![4, 0]).resolve(5).unwrap(),
            Some(vec![4, 0])
        );
        assert_eq!(Pick::Sample { max: 9, seed: 0 }.resolve(5).unwrap(), None);
        assert_eq!(Pick::All.resolve(5).unwrap(), None);
    }
}

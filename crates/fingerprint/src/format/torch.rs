//! PyTorch zip checkpoints (`pytorch_model.bin`, and each shard of a sharded one), read
//! through a restricted unpickler.
//!
//! A checkpoint written by `torch.save` is a zip archive holding `<prefix>/data.pkl` (the
//! pickled state dict) and one record `<prefix>/data/<key>` per storage, raw little-endian
//! elements, stored uncompressed. The file is memory-mapped; the pickle is interpreted by
//! [`super::pickle`], which only builds data from an allowlist and never executes anything;
//! each tensor's values are then sliced straight out of its storage record. Every tensor is
//! checked to lie inside its storage, and every storage record to hold exactly the elements the
//! pickle declares, before any value is read.
//!
//! Float storages (F32, F16, BF16, F64) are decoded. Tensors that are not contiguous in
//! row-major order (a transposed view saved without `.contiguous()`) are listed but report an
//! [`Error::UnsupportedDtype`] naming their strides, like integer tensors, so the engine skips
//! them unless they are needed. Compressed records, big-endian checkpoints (`byteorder` =
//! `big`) and legacy (pre-1.6, non-zip) checkpoints are refused with a clear error.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::pickle::{self, StorageKind};
use super::safetensors::{decode_bf16, decode_f16, decode_f32};
use super::zipdir::ZipDir;
use super::{TensorInfo, TensorReader, Values, DECODE_CHUNK};
use crate::dtype::DType;
use crate::error::{Error, Result};

/// Largest `data.pkl` read (a state dict of a million tensors pickles to well under this).
pub const MAX_PICKLE_BYTES: u64 = 512 << 20;

/// Where one tensor's elements are in the file.
struct Slot {
    /// Absolute byte offset of the tensor's first element.
    start: usize,
    /// Element type of the storage.
    kind: StorageKind,
    /// Strides, when they are not row-major for the shape (the tensor is then not read).
    strides: Option<Vec<u64>>,
}

/// An opened, validated PyTorch zip checkpoint.
pub struct TorchReader {
    path: PathBuf,
    map: Mmap,
    tensors: Vec<TensorInfo>,
    slots: Vec<Slot>,
}

/// Open `path` as this format.
pub fn open(path: &Path) -> Result<Box<dyn TensorReader>> {
    Ok(Box::new(TorchReader::open(path)?))
}

fn dtype_of(kind: StorageKind) -> DType {
    match kind {
        StorageKind::F32 => DType::F32,
        StorageKind::F64 => DType::F64,
        StorageKind::F16 => DType::F16,
        StorageKind::BF16 => DType::BF16,
        StorageKind::I8 => DType::I8,
        other => DType::Other(other.name().into()),
    }
}

/// Row-major strides of `size` (zero-size and unit dimensions accept any stride).
fn is_contiguous(size: &[u64], stride: &[u64]) -> bool {
    let mut expect = 1u64;
    for (&n, &s) in size.iter().zip(stride).rev() {
        if n != 1 && s != expect {
            return false;
        }
        expect = expect.saturating_mul(n);
    }
    true
}

impl TorchReader {
    /// Open and validate `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: the map is read-only; a file truncated by another process while mapped can
        // raise SIGBUS, which no safe mmap reader can rule out.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let dir = ZipDir::parse(path, &map)?;
        // The pickle is `<prefix>/data.pkl` at the top level of the archive.
        let pkls: Vec<_> = dir
            .entries()
            .iter()
            .filter(|e| {
                e.name
                    .strip_suffix("/data.pkl")
                    .is_some_and(|p| !p.is_empty() && !p.contains('/'))
            })
            .collect();
        let pkl = match pkls.as_slice() {
            [one] => *one,
            [] => {
                return Err(Error::header(
                    path,
                    "zip archive has no <prefix>/data.pkl: not a torch.save checkpoint",
                ))
            }
            _ => {
                return Err(Error::header(
                    path,
                    format!("zip archive has {} data.pkl records", pkls.len()),
                ))
            }
        };
        let prefix = pkl.name.trim_end_matches("data.pkl").to_owned();
        if let Some(bo) = dir.get(&format!("{prefix}byteorder")) {
            let bytes = dir.stored(path, &map, bo)?;
            if bytes != b"little" {
                return Err(Error::header(
                    path,
                    format!(
                        "byteorder record says {:?}; only little-endian checkpoints are read",
                        String::from_utf8_lossy(&bytes[..bytes.len().min(16)])
                    ),
                ));
            }
        }
        if pkl.size > MAX_PICKLE_BYTES {
            return Err(Error::header(
                path,
                format!(
                    "{} is {} bytes, over the {MAX_PICKLE_BYTES}-byte cap",
                    pkl.name, pkl.size
                ),
            ));
        }
        let data = dir.stored(path, &map, pkl)?;
        let sd = pickle::load_state_dict(path, &pkl.name, data)?;

        // Storage records: present, stored, exactly the declared size.
        let mut starts = Vec::with_capacity(sd.storages.len());
        for s in &sd.storages {
            let name = format!("{prefix}data/{}", s.key);
            let entry = dir
                .get(&name)
                .ok_or_else(|| Error::header(path, format!("storage record {name} is missing")))?;
            let bytes = dir.stored(path, &map, entry)?;
            let want = s.numel.checked_mul(s.kind.size());
            if want != Some(bytes.len() as u64) {
                return Err(Error::header(
                    path,
                    format!(
                        "storage record {name} holds {} bytes but the pickle declares {} {} elements",
                        bytes.len(),
                        s.numel,
                        s.kind.name()
                    ),
                ));
            }
            starts.push(entry.data_start as usize);
        }

        let mut tensors = Vec::with_capacity(sd.tensors.len());
        let mut slots = Vec::with_capacity(sd.tensors.len());
        let mut seen = std::collections::HashSet::new();
        for (name, t) in sd.tensors {
            if !seen.insert(name.clone()) {
                return Err(Error::tensor(
                    path,
                    &name,
                    "appears twice in the state dict",
                ));
            }
            let storage = &sd.storages[t.storage];
            let numel = t
                .size
                .iter()
                .try_fold(1u64, |a, &d| a.checked_mul(d))
                .ok_or_else(|| {
                    Error::tensor(path, &name, format!("shape {:?} overflows", t.size))
                })?;
            // Highest element touched: offset + Σ (size-1)·stride, inside the storage.
            let extent = if numel == 0 {
                Some(t.offset)
            } else {
                t.size
                    .iter()
                    .zip(&t.stride)
                    .try_fold(t.offset, |acc, (&n, &s)| {
                        acc.checked_add((n - 1).checked_mul(s)?)
                    })
            };
            let fits = match extent {
                Some(_) if numel == 0 => t.offset <= storage.numel,
                Some(last) => last < storage.numel,
                None => false,
            };
            if !fits {
                return Err(Error::tensor(
                    path,
                    &name,
                    format!(
                        "offset {} size {:?} stride {:?} reaches outside its storage {} of {} elements",
                        t.offset, t.size, t.stride, storage.key, storage.numel
                    ),
                ));
            }
            let start = starts[t.storage] + (t.offset * storage.kind.size()) as usize;
            let contiguous = is_contiguous(&t.size, &t.stride);
            tensors.push(TensorInfo {
                name,
                role_name: None,
                shape: t.size,
                dtype: dtype_of(storage.kind),
                block: 1,
            });
            slots.push(Slot {
                start,
                kind: storage.kind,
                strides: (!contiguous).then_some(t.stride),
            });
        }
        Ok(TorchReader {
            path: path.to_path_buf(),
            map,
            tensors,
            slots,
        })
    }
}

impl TensorReader for TorchReader {
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
        let slot = &self.slots[index];
        let unsupported = |dtype: String| Error::UnsupportedDtype {
            path: self.path.clone(),
            tensor: t.name.clone(),
            dtype,
        };
        if !t.dtype.is_float() {
            return Err(unsupported(t.dtype.to_string()));
        }
        if let Some(strides) = &slot.strides {
            return Err(unsupported(format!(
                "{} with non-contiguous strides {strides:?} for shape {:?}",
                t.dtype, t.shape
            )));
        }
        let size = slot.kind.size() as usize;
        let bad = || {
            Error::tensor(
                &self.path,
                &t.name,
                format!("element range {range:?} out of bounds"),
            )
        };
        if range.start > range.end || range.end > t.numel() {
            return Err(bad());
        }
        let lo = slot.start + range.start as usize * size;
        let hi = slot.start + range.end as usize * size;
        let bytes = self.map.get(lo..hi).ok_or_else(bad)?;
        match slot.kind {
            StorageKind::F32 => decode_f32(bytes, sink),
            StorageKind::F16 => decode_f16(bytes, sink),
            StorageKind::BF16 => decode_bf16(bytes, sink),
            StorageKind::F64 => {
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
            other => return Err(unsupported(other.name().into())),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::pickle::tests::Pickle;
    use super::super::zipdir::tests::write_stored;
    use half::f16;

    use super::*;

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn write(dir: &Path, entries: &[(&str, &[u8])]) -> PathBuf {
        let p = dir.join("pytorch_model.bin");
        std::fs::write(&p, write_stored(entries)).unwrap();
        p
    }

    fn read_all(r: &dyn TensorReader, i: usize) -> Vec<f64> {
        let mut out = Vec::new();
        let n = r.tensors()[i].numel();
        r.read(i, 0..n, &mut |v| match v {
            Values::F32(x) => out.extend(x.iter().map(|&y| y as f64)),
            Values::F64(x) => out.extend_from_slice(x),
        })
        .unwrap();
        out
    }

    #[test]
    fn reads_offsets_views_and_dtypes() {
        let tmp = tempfile::tempdir().unwrap();
        let vals: Vec<f32> = (0..8).map(|i| i as f32 * 0.5).collect();
        let halves: Vec<u8> = [1.0f32, -2.0, 3.5]
            .iter()
            .flat_map(|&x| f16::from_f32(x).to_le_bytes())
            .collect();
        let pkl = Pickle::new().state_dict(&[
            ("w", &|p: &mut Pickle| {
                p.tensor("FloatStorage", "0", 8, 2, &[2, 3], &[3, 1]);
            }),
            ("h", &|p: &mut Pickle| {
                p.tensor("HalfStorage", "1", 3, 0, &[3], &[1]);
            }),
            ("t", &|p: &mut Pickle| {
                p.tensor("FloatStorage", "0", 8, 0, &[2, 2], &[1, 2]);
            }),
            ("ids", &|p: &mut Pickle| {
                p.tensor("LongStorage", "2", 1, 0, &[1], &[1]);
            }),
        ]);
        let p = write(
            tmp.path(),
            &[
                ("archive/data.pkl", &pkl),
                ("archive/data/0", &f32_bytes(&vals)),
                ("archive/data/1", &halves),
                ("archive/data/2", &[7, 0, 0, 0, 0, 0, 0, 0]),
                ("archive/byteorder", b"little"),
            ],
        );
        let r = open(&p).unwrap();
        let names: Vec<_> = r.tensors().iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["w", "h", "t", "ids"]);
        assert_eq!(read_all(&*r, 0), [1.0, 1.5, 2.0, 2.5, 3.0, 3.5]);
        assert_eq!(read_all(&*r, 1), [1.0, -2.0, 3.5]);
        let mut part = Vec::new();
        r.read(0, 4..6, &mut |v| {
            if let Values::F32(x) = v {
                part.extend_from_slice(x)
            }
        })
        .unwrap();
        assert_eq!(part, [3.0, 3.5]);
        // A transposed view and an integer tensor are unsupported, by name.
        for i in [2, 3] {
            match r.read(i, 0..0, &mut |_| {}) {
                Err(Error::UnsupportedDtype { tensor, dtype, .. }) => {
                    assert_eq!(tensor, names[i]);
                    if i == 2 {
                        assert!(dtype.contains("non-contiguous strides [1, 2]"), "{dtype}");
                    }
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(r.read(0, 0..7, &mut |_| {}).is_err());
    }

    #[test]
    fn rejects_inconsistent_checkpoints_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let vals = f32_bytes(&[0.0; 4]);
        let case = |pkl: Vec<u8>, data: &[u8], extra: &[(&str, &[u8])]| {
            let mut entries: Vec<(&str, &[u8])> =
                vec![("archive/data.pkl", &pkl), ("archive/data/0", data)];
            entries.extend_from_slice(extra);
            let p = write(tmp.path(), &entries);
            open(&p).err().expect("must fail").to_string()
        };
        // Tensor past the end of its storage.
        let pkl = Pickle::new().state_dict(&[("big", &|p: &mut Pickle| {
            p.tensor("FloatStorage", "0", 4, 2, &[3], &[1]);
        })]);
        let e = case(pkl, &vals, &[]);
        assert!(
            e.contains("pytorch_model.bin") && e.contains("big") && e.contains("outside"),
            "{e}"
        );
        // Storage record shorter than declared.
        let pkl = Pickle::new().state_dict(&[("w", &|p: &mut Pickle| {
            p.tensor("FloatStorage", "0", 5, 0, &[5], &[1]);
        })]);
        let e = case(pkl, &vals, &[]);
        assert!(
            e.contains("archive/data/0") && e.contains("16 bytes"),
            "{e}"
        );
        // Missing storage record.
        let pkl = Pickle::new().state_dict(&[("w", &|p: &mut Pickle| {
            p.tensor("FloatStorage", "9", 4, 0, &[4], &[1]);
        })]);
        let e = case(pkl, &vals, &[]);
        assert!(e.contains("archive/data/9") && e.contains("missing"), "{e}");
        // Big-endian checkpoint.
        let pkl = Pickle::new().state_dict(&[("w", &|p: &mut Pickle| {
            p.tensor("FloatStorage", "0", 4, 0, &[4], &[1]);
        })]);
        let e = case(pkl, &vals, &[("archive/byteorder", b"big")]);
        assert!(e.contains("big"), "{e}");
        // A hostile pickle inside a well-formed archive.
        let mut p = Pickle::new();
        p.global("os", "system")
            .str("touch /tmp/nullprint-pwned")
            .op(0x85)
            .op(b'R')
            .op(b'.');
        let e = case(p.0.clone(), &vals, &[]);
        assert!(
            e.contains("os.system") && e.contains("archive/data.pkl"),
            "{e}"
        );
        // No data.pkl at all.
        let p = write(tmp.path(), &[("x/y", b"z")]);
        assert!(open(&p).err().unwrap().to_string().contains("data.pkl"));
    }
}

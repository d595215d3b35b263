//! A safetensors file written in place: the header first (every offset is known from the
//! shapes before any value is computed), then each tensor's bytes at their offset, from any
//! thread, in any order. Nothing is buffered beyond the caller's work unit.

use std::fs::File;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};

/// Element type of the derived checkpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutDType {
    /// bfloat16 (what Hugging Face checkpoints are usually stored in).
    #[default]
    Bf16,
    /// IEEE binary16.
    F16,
    /// IEEE binary32.
    F32,
}

impl OutDType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            OutDType::Bf16 | OutDType::F16 => 2,
            OutDType::F32 => 4,
        }
    }

    /// The safetensors spelling.
    pub fn safetensors_name(self) -> &'static str {
        match self {
            OutDType::Bf16 => "BF16",
            OutDType::F16 => "F16",
            OutDType::F32 => "F32",
        }
    }

    /// Append `values`, rounded to nearest (ties to even), as little-endian bytes.
    pub fn encode(self, values: &[f32], out: &mut Vec<u8>) {
        out.reserve(values.len() * self.size());
        match self {
            OutDType::Bf16 => {
                for &v in values {
                    out.extend_from_slice(&half::bf16::from_f32(v).to_bits().to_le_bytes());
                }
            }
            OutDType::F16 => {
                for &v in values {
                    out.extend_from_slice(&half::f16::from_f32(v).to_bits().to_le_bytes());
                }
            }
            OutDType::F32 => {
                for &v in values {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
    }
}

impl std::str::FromStr for OutDType {
    type Err = crate::Error;
    fn from_str(s: &str) -> std::result::Result<Self, crate::Error> {
        match s.to_ascii_lowercase().as_str() {
            "bf16" | "bfloat16" => Ok(OutDType::Bf16),
            "f16" | "float16" => Ok(OutDType::F16),
            "f32" | "float32" => Ok(OutDType::F32),
            _ => Err(crate::Error::Parse {
                what: "dtype",
                reason: format!("unknown dtype {s:?} (bf16, f16, f32)"),
            }),
        }
    }
}

/// A safetensors file being filled in.
pub struct SafetensorsWriter {
    path: PathBuf,
    file: File,
    data_start: u64,
    offsets: Vec<u64>,
    len: u64,
}

impl SafetensorsWriter {
    /// Create `path` (replacing a previous partial file of that name), write the header for
    /// `tensors` (name and shape, in file order) and size the file. `metadata` goes into the
    /// header's `__metadata__` (string values only, as the format requires).
    pub fn create(
        path: &Path,
        dtype: OutDType,
        tensors: &[(&str, &[u64])],
        metadata: &[(&str, String)],
    ) -> Result<Self> {
        let mut header = Map::new();
        let mut offsets = Vec::with_capacity(tensors.len());
        let mut at = 0u64;
        for (name, shape) in tensors {
            let numel = shape
                .iter()
                .try_fold(1u64, |a, &d| a.checked_mul(d))
                .and_then(|n| n.checked_mul(dtype.size() as u64))
                .ok_or_else(|| Error::io(path, overflow(name)))?;
            let end = at
                .checked_add(numel)
                .ok_or_else(|| Error::io(path, overflow(name)))?;
            header.insert(
                (*name).to_owned(),
                json!({"dtype": dtype.safetensors_name(), "shape": shape, "data_offsets": [at, end]}),
            );
            offsets.push(at);
            at = end;
        }
        let meta: Map<String, Value> = metadata
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String(v.clone())))
            .collect();
        header.insert("__metadata__".into(), Value::Object(meta));
        let mut text = serde_json::to_vec(&Value::Object(header)).expect("JSON of strings");
        // The data must start 8-byte aligned; the format pads the header with spaces.
        while (8 + text.len()) % 8 != 0 {
            text.push(b' ');
        }
        let data_start = 8 + text.len() as u64;
        let file = File::create(path).map_err(|e| Error::io(path, e))?;
        let len = data_start + at;
        file.set_len(len).map_err(|e| Error::io(path, e))?;
        let mut head = (text.len() as u64).to_le_bytes().to_vec();
        head.extend_from_slice(&text);
        write_all_at(&file, &head, 0).map_err(|e| Error::io(path, e))?;
        Ok(SafetensorsWriter {
            path: path.to_path_buf(),
            file,
            data_start,
            offsets,
            len,
        })
    }

    /// Write `bytes` at byte `offset` of tensor `tensor`'s data. Safe to call from several
    /// threads at once for disjoint ranges.
    pub fn write(&self, tensor: usize, offset: u64, bytes: &[u8]) -> Result<()> {
        let at = self.data_start + self.offsets[tensor] + offset;
        debug_assert!(at + bytes.len() as u64 <= self.len);
        write_all_at(&self.file, bytes, at).map_err(|e| Error::io(&self.path, e))
    }

    /// Flush the file to disk; returns its size.
    pub fn finish(self) -> Result<u64> {
        self.file.sync_all().map_err(|e| Error::io(&self.path, e))?;
        Ok(self.len)
    }
}

fn overflow(name: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("tensor {name}: size overflows u64"),
    )
}

#[cfg(unix)]
fn write_all_at(file: &File, buf: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

#[cfg(windows)]
fn write_all_at(file: &File, mut buf: &[u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        let n = file.seek_write(buf, offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        buf = &buf[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_file_the_safetensors_crate_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        let w = SafetensorsWriter::create(
            &path,
            OutDType::F32,
            &[("b", &[3]), ("a", &[2, 2])],
            &[("origin", "test".into())],
        )
        .unwrap();
        // Out of order, as parallel work units would.
        let mut bytes = Vec::new();
        OutDType::F32.encode(&[1.0, 2.0, 3.0, 4.0], &mut bytes);
        w.write(1, 0, &bytes).unwrap();
        bytes.clear();
        OutDType::F32.encode(&[-1.0, -2.0, -3.0], &mut bytes);
        w.write(0, 0, &bytes[..4]).unwrap();
        w.write(0, 4, &bytes[4..]).unwrap();
        w.finish().unwrap();
        let data = std::fs::read(&path).unwrap();
        let st = safetensors::SafeTensors::deserialize(&data).unwrap();
        let a = st.tensor("a").unwrap();
        assert_eq!(a.shape(), &[2, 2]);
        assert_eq!(a.data(), &bytes_of(&[1.0, 2.0, 3.0, 4.0])[..]);
        assert_eq!(
            st.tensor("b").unwrap().data(),
            &bytes_of(&[-1.0, -2.0, -3.0])[..]
        );
        let (_, meta) = safetensors::SafeTensors::read_metadata(&data).unwrap();
        assert_eq!(meta.metadata().as_ref().unwrap()["origin"], "test");
    }

    fn bytes_of(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn encodes_bf16_to_nearest_even() {
        let mut out = Vec::new();
        // 1 + 2^-8 is halfway between two bf16 values: ties go to the even one (1.0).
        OutDType::Bf16.encode(&[1.0 + 1.0 / 256.0, -2.5], &mut out);
        assert_eq!(out, [0x80, 0x3f, 0x20, 0xc0]);
    }
}

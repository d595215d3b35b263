//! The corpus and the seeded order in which training windows are drawn from it.

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use crate::error::{io, Error, Result};

/// A training corpus: the bytes of one text file, checked against its pinned SHA-256.
#[derive(Clone, Debug)]
pub struct Corpus {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its bytes (each byte is a token).
    pub bytes: Vec<u8>,
    /// Its SHA-256, hex.
    pub sha256: String,
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

impl Corpus {
    /// Read `path`; when `sha256` is given the file must hash to it.
    pub fn load(path: &Path, sha256: Option<&str>) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::Corpus {
                path: path.to_path_buf(),
                reason: "not found; fetch it with `just corpus`".into(),
            },
            _ => io(path)(e),
        })?;
        let got = sha256_hex(&bytes);
        if let Some(want) = sha256 {
            if !got.eq_ignore_ascii_case(want) {
                return Err(Error::Corpus {
                    path: path.to_path_buf(),
                    reason: format!("SHA-256 {got}, the lab file pins {want}"),
                });
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            bytes,
            sha256: got,
        })
    }

    /// The byte range `[from, to)` of a slice given as fractions of the corpus.
    pub fn range(&self, slice: [f64; 2]) -> (usize, usize) {
        let n = self.bytes.len() as f64;
        ((slice[0] * n) as usize, (slice[1] * n) as usize)
    }
}

/// Seeded windows of `seq + 1` bytes (inputs and next-byte targets) from a byte range.
#[derive(Debug)]
pub struct Batches<'a> {
    bytes: &'a [u8],
    batch: usize,
    seq: usize,
    rng: ChaCha8Rng,
}

impl<'a> Batches<'a> {
    /// Windows from `bytes[range]`, in the order fixed by `seed`. The range must hold more
    /// than `seq + 1` bytes (checked when the lab file is loaded).
    pub fn new(
        bytes: &'a [u8],
        range: (usize, usize),
        batch: usize,
        seq: usize,
        seed: u64,
    ) -> Self {
        Self {
            bytes: &bytes[range.0..range.1],
            batch,
            seq,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// The next batch: `batch * seq` input ids and as many target ids, row-major.
    pub fn next_batch(&mut self) -> (Vec<u32>, Vec<u32>) {
        let mut x = Vec::with_capacity(self.batch * self.seq);
        let mut y = Vec::with_capacity(self.batch * self.seq);
        let last = self.bytes.len() - self.seq - 1;
        for _ in 0..self.batch {
            let o = self.rng.gen_range(0..=last);
            let w = &self.bytes[o..o + self.seq + 1];
            x.extend(w[..self.seq].iter().map(|&b| u32::from(b)));
            y.extend(w[1..].iter().map(|&b| u32::from(b)));
        }
        (x, y)
    }
}

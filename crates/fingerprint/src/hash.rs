//! SHA-256 of weight files, streamed through a fixed buffer: one file at a time
//! ([`sha256_file`]), or every file of a model on threads of their own while the statistics
//! run ([`Hashing`]), reusing the SHA-256 a Hugging Face cache blob is named after.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{Scope, ScopedJoinHandle};

use serde::{Deserialize, Serialize};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Hex SHA-256 of the file at `path`.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(path, e)),
        };
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// How a file's SHA-256 was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum HashSource {
    /// Computed by nullprint from the file's bytes.
    Computed,
    /// The name of the file's blob in a Hugging Face cache (`models--*/blobs/<sha256>`):
    /// huggingface_hub names an LFS blob after the SHA-256 the Hub reports for it and renames
    /// it from `<sha256>.incomplete` only once the download is whole. nullprint does not
    /// rehash it; it checks that the name is 64 hex digits, that the blob is not empty, and
    /// the format reader has checked the file's size against its own header.
    HfCacheBlobName,
}

/// Length of a hex SHA-256.
const SHA256_HEX: usize = 64;

/// The SHA-256 a Hugging Face cache blob is named after, when `path` resolves to one
/// (`.../models--org--name/blobs/<64 hex digits>`, non-empty).
pub fn hf_blob_sha256(path: &Path) -> Option<String> {
    let real = std::fs::canonicalize(path).ok()?;
    let name = real.file_name()?.to_str()?;
    let blobs = real.parent()?;
    let repo = blobs.parent()?.file_name()?.to_str()?;
    let is_hex = name.len() == SHA256_HEX
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let in_cache = blobs.file_name()? == "blobs"
        && ["models--", "datasets--", "spaces--"]
            .iter()
            .any(|p| repo.starts_with(p));
    let size = std::fs::metadata(&real).ok()?.len();
    (is_hex && in_cache && size > 0).then(|| name.to_owned())
}

/// A file's index and its hash (or the error reading it).
type Hashed = (usize, Result<String>);

/// The SHA-256 of several files, computed on threads of their own (up to one per core,
/// largest file first) while the caller does other work; a Hugging Face cache blob's name is
/// used instead of hashing it.
pub struct Hashing<'scope> {
    threads: Vec<ScopedJoinHandle<'scope, Vec<Hashed>>>,
    known: Vec<Option<String>>,
}

impl<'scope> Hashing<'scope> {
    /// Start hashing `paths` on threads of `scope`.
    pub fn start<'env>(scope: &'scope Scope<'scope, 'env>, paths: &'env [PathBuf]) -> Self {
        let known: Vec<Option<String>> = paths.iter().map(|p| hf_blob_sha256(p)).collect();
        let mut todo: Vec<(u64, usize)> = paths
            .iter()
            .enumerate()
            .filter(|(i, _)| known[*i].is_none())
            .map(|(i, p)| (std::fs::metadata(p).map(|m| m.len()).unwrap_or(0), i))
            .collect();
        todo.sort_by(|a, b| b.cmp(a));
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = cores.min(todo.len());
        let queue = Arc::new((AtomicUsize::new(0), todo));
        let threads = (0..threads)
            .map(|_| {
                let queue = Arc::clone(&queue);
                scope.spawn(move || {
                    let (next, todo) = &*queue;
                    let mut done = Vec::new();
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&(_, i)) = todo.get(k) else {
                            break;
                        };
                        done.push((i, sha256_file(&paths[i])));
                    }
                    done
                })
            })
            .collect();
        Hashing { threads, known }
    }

    /// Wait for the hashes: per path, in order, the hex SHA-256 and where it came from.
    pub fn finish(self) -> Result<Vec<(String, HashSource)>> {
        let mut out: Vec<Option<(String, HashSource)>> = self
            .known
            .into_iter()
            .map(|k| k.map(|h| (h, HashSource::HfCacheBlobName)))
            .collect();
        for t in self.threads {
            let done = t.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            for (i, h) in done {
                out[i] = Some((h?, HashSource::Computed));
            }
        }
        Ok(out.into_iter().flatten().collect())
    }
}

/// Hex SHA-256 of a byte slice.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Files hashed on their own threads give `sha256_file`'s digests, in path order.
    #[test]
    fn parallel_hashes_match_and_keep_order() {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = (0..5)
            .map(|i| {
                let p = dir.path().join(format!("f{i}"));
                std::fs::write(&p, vec![i as u8; 1000 * (5 - i) + 3]).unwrap();
                p
            })
            .collect();
        let got = std::thread::scope(|s| Hashing::start(s, &paths).finish()).unwrap();
        assert_eq!(got.len(), 5);
        for (p, (h, src)) in paths.iter().zip(got) {
            assert_eq!(h, sha256_file(p).unwrap());
            assert_eq!(src, HashSource::Computed);
        }
        let missing = vec![dir.path().join("absent")];
        assert!(std::thread::scope(|s| Hashing::start(s, &missing).finish()).is_err());
    }

    /// A Hugging Face cache blob's name is used (and says so); look-alikes are hashed.
    #[test]
    #[cfg(unix)]
    fn hf_cache_blob_names_are_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("models--org--name");
        let blobs = repo.join("blobs");
        let snap = repo.join("snapshots").join("abc123");
        std::fs::create_dir_all(&blobs).unwrap();
        std::fs::create_dir_all(&snap).unwrap();
        let sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        std::fs::write(blobs.join(sha), b"test").unwrap();
        std::os::unix::fs::symlink(format!("../../blobs/{sha}"), snap.join("model.safetensors"))
            .unwrap();
        let linked = snap.join("model.safetensors");
        assert_eq!(hf_blob_sha256(&linked).as_deref(), Some(sha));
        let paths = vec![linked];
        let got = std::thread::scope(|s| Hashing::start(s, &paths).finish()).unwrap();
        assert_eq!(got, vec![(sha.to_owned(), HashSource::HfCacheBlobName)]);
        // Not hex, upper case, empty, or not under models--*/blobs: not trusted.
        let short = blobs.join("abc");
        std::fs::write(&short, b"x").unwrap();
        assert_eq!(hf_blob_sha256(&short), None);
        let upper = blobs.join(sha.to_uppercase());
        std::fs::write(&upper, b"x").unwrap();
        assert_eq!(hf_blob_sha256(&upper), None);
        let empty = blobs.join(sha.replace('9', "8"));
        std::fs::write(&empty, b"").unwrap();
        assert_eq!(hf_blob_sha256(&empty), None);
        let elsewhere = dir.path().join("blobs");
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::fs::write(elsewhere.join(sha), b"test").unwrap();
        assert_eq!(hf_blob_sha256(&elsewhere.join(sha)), None);
    }

    #[test]
    fn known_digest() {
        assert_eq!(
            sha256_bytes(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

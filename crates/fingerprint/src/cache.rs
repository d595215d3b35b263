//! A fingerprint cache keyed by file identity, so re-running a panel costs nothing for models
//! already seen.
//!
//! The key hashes, for every weight file: its canonical path, size, modification time, inode
//! and status-change time, and the SHA-256 of its first [`HEAD_BYTES`] bytes (the header,
//! where offsets and shapes live), plus the nullprint version and the options that change the
//! result. The status-change time cannot be set back by `cp -p` or `rsync -t` (which keep the
//! modification time), so a same-size rewrite past the header changes the key. The key is
//! still not the content: a hit whose fingerprint carries SHA-256 hashes re-hashes the files
//! ([`through`]) and is dropped if they differ, so the cache never vouches for bytes it did
//! not read. Entries are written to a
//! temporary file and renamed into place, so a run killed mid-write leaves no entry a later run
//! would trust; an entry that does not parse as a fingerprint is ignored and recomputed.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::schema::Fingerprint;
use crate::source::ModelSource;

/// Bytes at the start of each file that go into the key.
pub const HEAD_BYTES: u64 = 1 << 20;

/// A directory of cached fingerprints.
#[derive(Clone, Debug)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// A cache in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Cache { dir: dir.into() }
    }

    /// `$NULLPRINT_CACHE`, else `$XDG_CACHE_HOME/nullprint/fingerprints`, else
    /// `~/.cache/nullprint/fingerprints`.
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os("NULLPRINT_CACHE").filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(p));
        }
        let base = match std::env::var_os("XDG_CACHE_HOME").filter(|p| !p.is_empty()) {
            Some(p) => PathBuf::from(p),
            None => {
                PathBuf::from(std::env::var_os("HOME").filter(|p| !p.is_empty())?).join(".cache")
            }
        };
        Some(base.join("nullprint").join("fingerprints"))
    }

    /// The key of a model under the given option string (roles filter, hashing, ...).
    pub fn key(src: &ModelSource, options: &str) -> Result<String> {
        let mut h = Sha256::new();
        h.update(b"nullprint-cache-v2\0");
        h.update(env!("CARGO_PKG_VERSION").as_bytes());
        h.update(b"\0");
        h.update(options.as_bytes());
        for f in &src.files {
            let canon = f.canonicalize().map_err(|e| Error::io(f, e))?;
            let meta = std::fs::metadata(&canon).map_err(|e| Error::io(f, e))?;
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            h.update(canon.to_string_lossy().as_bytes());
            h.update(meta.len().to_le_bytes());
            h.update(mtime.to_le_bytes());
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                h.update(meta.ino().to_le_bytes());
                h.update(meta.ctime().to_le_bytes());
                h.update(meta.ctime_nsec().to_le_bytes());
            }
            let mut head = Vec::new();
            std::fs::File::open(&canon)
                .map_err(|e| Error::io(f, e))?
                .take(HEAD_BYTES)
                .read_to_end(&mut head)
                .map_err(|e| Error::io(f, e))?;
            h.update(Sha256::digest(&head));
        }
        if let Some(c) = &src.config {
            if let Ok(bytes) = std::fs::read(c) {
                h.update(Sha256::digest(&bytes));
            }
        }
        Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// The cached fingerprint for `key`, if a valid one exists.
    pub fn get(&self, key: &str) -> Option<Fingerprint> {
        let text = std::fs::read_to_string(self.path(key)).ok()?;
        Fingerprint::from_json(&text).ok()
    }

    /// Store a fingerprint under `key`, atomically.
    pub fn put(&self, key: &str, fp: &Fingerprint) -> Result<()> {
        let out = |reason: String| Error::Output {
            path: self.dir.clone(),
            reason,
        };
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| out(format!("creating the cache directory: {e}")))?;
        let final_path = self.path(key);
        output::write_atomic(&final_path, fp.to_json().as_bytes(), true)
            .map_err(|e| out(format!("writing {}: {e}", final_path.display())))
    }
}

/// The part of a cache key that is not the files: the options that change a fingerprint.
pub fn options_key(roles: &Option<Vec<crate::Role>>, hash: bool) -> String {
    format!("roles={roles:?};hash={hash}")
}

/// A fingerprint obtained through the cache.
#[derive(Debug)]
pub struct Cached {
    /// The fingerprint (its `source` is the spec it was asked for).
    pub fingerprint: Fingerprint,
    /// It came from the cache.
    pub hit: bool,
    /// Storing a freshly computed fingerprint failed (the result is still good).
    pub store_error: Option<Error>,
}

/// Fingerprint `src` through `cache` (when given), keyed by its files' identity and
/// `options` (the option string that changes the result): a hit returns the stored
/// fingerprint; a miss runs `compute` and stores its result.
pub fn through<E: From<Error>>(
    cache: Option<&Cache>,
    src: &ModelSource,
    options: &str,
    compute: impl FnOnce() -> std::result::Result<Fingerprint, E>,
) -> std::result::Result<Cached, E> {
    let key = match cache {
        Some(_) => Some(Cache::key(src, options)?),
        None => None,
    };
    if let (Some(c), Some(k)) = (cache, &key) {
        if let Some(mut fp) = c.get(k).filter(|fp| still_the_same_bytes(fp, src)) {
            fp.model.source = src.spec.clone();
            return Ok(Cached {
                fingerprint: fp,
                hit: true,
                store_error: None,
            });
        }
    }
    let fp = compute()?;
    let store_error = match (cache, &key) {
        (Some(c), Some(k)) => c.put(k, &fp).err(),
        _ => None,
    };
    Ok(Cached {
        fingerprint: fp,
        hit: false,
        store_error,
    })
}

/// Whether the files of `src` still have the SHA-256 the cached `fp` records for them
/// (re-hashed, or for a Hugging Face cache blob its name re-checked). A fingerprint without
/// hashes (hashing was off) claims nothing about the bytes and passes.
fn still_the_same_bytes(fp: &Fingerprint, src: &ModelSource) -> bool {
    if fp.model.files.len() != src.files.len() {
        return false;
    }
    fp.model.files.iter().zip(&src.files).all(|(info, path)| {
        let Some(want) = &info.sha256 else {
            return true;
        };
        let got = match info.hash_source {
            Some(crate::hash::HashSource::HfCacheBlobName) => crate::hash::hf_blob_sha256(path),
            _ => crate::hash::sha256_file(path).ok(),
        };
        got.as_deref() == Some(want.as_str())
    })
}

/// True when `path` names a cache entry file (not a temporary one).
pub fn is_entry(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "json")
        && !path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

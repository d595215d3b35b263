//! Writing files without damaging what the user owns. Every file nullprint writes (fingerprints,
//! cache entries, reports, derived checkpoints) goes through [`write_atomic`] or a
//! [`TempFile`], so that:
//!
//! * a reader never sees a half-written file: bytes go to a temporary file in the same
//!   directory, are synced, then moved into place in one step;
//! * without `replace`, an existing file is never overwritten, even by a concurrent writer: the
//!   temporary file is hard-linked to the destination, which fails if anything is there;
//! * with `replace`, only a regular file is replaced: a device node, FIFO, socket, directory or
//!   symlink at the destination is refused, never renamed over;
//! * a failed or interrupted write removes its temporary file (on SIGINT, SIGTERM and SIGHUP
//!   too, once [`install_signal_cleanup`] has run);
//! * a directory of files (a report) is written under a temporary name and swapped in whole
//!   ([`TempDir`]).
#![deny(missing_docs)]

mod cell;
mod dir;
mod pending;

pub use cell::csv_cell;
pub use dir::TempDir;
pub use pending::{install_signal_cleanup, interrupted, interrupted_error, remove_pending};

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinguishes the temporary files of one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Write `bytes` to `path` atomically. Without `replace`, fails with
/// [`io::ErrorKind::AlreadyExists`] when anything is at `path`; with it, replaces only a regular
/// file (anything else fails with [`io::ErrorKind::InvalidInput`]).
pub fn write_atomic(path: &Path, bytes: &[u8], replace: bool) -> io::Result<()> {
    let mut tmp = TempFile::new_for(path)?;
    tmp.file().write_all(bytes)?;
    tmp.persist(path, replace)
}

/// Check that `path` may be written: nothing is there, or (with `replace`) a regular file.
pub fn check_destination(path: &Path, replace: bool) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(_) if !replace => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "exists; refusing to replace it",
        )),
        Ok(m) if m.file_type().is_file() => Ok(()),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (a device, FIFO, directory or symlink): refusing to replace it",
        )),
    }
}

/// A temporary file next to its destination, removed unless persisted.
pub struct TempFile {
    path: PathBuf,
    file: Option<File>,
}

impl TempFile {
    /// A new empty temporary file in the directory of `dest` (created if needed), named
    /// `.NAME.PID.N.tmp`.
    pub fn new_for(dest: &Path) -> io::Result<Self> {
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        fs::create_dir_all(dir)?;
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
        let file = fs::OpenOptions::new()
            .write(true)
            .read(true)
            .create_new(true)
            .open(&path)?;
        pending::register(&path);
        Ok(TempFile {
            path,
            file: Some(file),
        })
    }

    /// Where the temporary file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file.
    pub fn file(&mut self) -> &mut File {
        self.file
            .as_mut()
            .expect("a TempFile holds its file until persisted")
    }

    /// Sync the file and move it to `dest` (see [`write_atomic`] for `replace`).
    pub fn persist(mut self, dest: &Path, replace: bool) -> io::Result<()> {
        if let Some(f) = self.file.take() {
            f.sync_all()?;
        }
        check_destination(dest, replace)?;
        if replace {
            fs::rename(&self.path, dest)?;
        } else {
            // A hard link fails if the destination appeared meanwhile: no clobbering race.
            fs::hard_link(&self.path, dest)?;
            fs::remove_file(&self.path)?;
        }
        pending::unregister(&self.path);
        self.path = PathBuf::new();
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
            pending::unregister(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> usize {
        fs::read_dir(dir).unwrap().count()
    }

    #[test]
    fn no_clobber_unless_replace_and_no_temp_left() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.json");
        write_atomic(&p, b"one", false).unwrap();
        let e = write_atomic(&p, b"two", false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&p).unwrap(), b"one");
        write_atomic(&p, b"three", true).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"three");
        assert_eq!(entries(dir.path()), 1);
    }

    #[test]
    fn never_replaces_what_is_not_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("precious");
        fs::write(&target, b"keep").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = write_atomic(&link, b"x", true).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(&target).unwrap(), b"keep");
        let sub = dir.path().join("sub");
        fs::create_dir(&sub).unwrap();
        assert!(write_atomic(&sub, b"x", true).is_err());
        assert!(sub.is_dir());
        assert_eq!(entries(dir.path()), 3);
    }

    #[test]
    fn concurrent_writers_without_replace_write_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("same.json");
        let ok: usize = std::thread::scope(|s| {
            let hs: Vec<_> = (0..16)
                .map(|i| {
                    let p = &p;
                    s.spawn(move || write_atomic(p, format!("{i}").as_bytes(), false).is_ok())
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap() as usize).sum()
        });
        assert_eq!(ok, 1);
        assert_eq!(entries(dir.path()), 1);
    }

    #[test]
    fn a_dropped_temp_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = TempFile::new_for(&dir.path().join("x.bin")).unwrap();
        t.file().write_all(b"partial").unwrap();
        assert_eq!(entries(dir.path()), 1);
        drop(t);
        assert_eq!(entries(dir.path()), 0);
    }
}

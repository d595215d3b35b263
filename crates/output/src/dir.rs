//! A directory written as a whole: filled under a temporary name beside its destination, then
//! moved into place in one step, so a reader (or a crash) sees the old directory or the new
//! one, never a mixture.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::pending;

/// A temporary directory beside its destination, removed (with its contents) unless
/// persisted, and removed by the signal cleanup if the process is interrupted.
pub struct TempDir {
    path: PathBuf,
}

/// The sibling temporary name for `dest`: `.NAME.PID.N.SUFFIX` in `dest`'s directory.
pub(crate) fn sibling(dest: &Path, suffix: &str) -> io::Result<PathBuf> {
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = dest.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "names no file or directory (ends in `..` or `/`)",
        )
    })?;
    let n = crate::COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(dir.join(format!(
        ".{}.{}.{n}.{suffix}",
        name.to_string_lossy(),
        std::process::id()
    )))
}

impl TempDir {
    /// A new empty directory beside `dest` (whose parent is created if needed).
    pub fn new_for(dest: &Path) -> io::Result<Self> {
        let path = sibling(dest, "tmp")?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::create_dir(&path)?;
        pending::register(&path);
        Ok(TempDir { path })
    }

    /// Where the temporary directory is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Move the directory to `dest`, where nothing may be (not even an empty directory).
    pub fn persist_new(mut self, dest: &Path) -> io::Result<()> {
        let mut list = pending::lock();
        if pending::interrupted() {
            return Err(pending::interrupted_error());
        }
        rename_noreplace(&self.path, dest)?;
        pending::unregister_locked(&mut list, &self.path);
        self.path = PathBuf::new();
        Ok(())
    }

    /// Swap the directory with the existing directory `dest` in one step, then call `after`
    /// with the old directory's new (temporary) path, before a signal may end the process:
    /// `after` moves what must survive out of the old directory and removes the rest.
    pub fn swap_with(
        mut self,
        dest: &Path,
        after: impl FnOnce(&Path) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut list = pending::lock();
        if pending::interrupted() {
            return Err(pending::interrupted_error());
        }
        let old = exchange(&self.path, dest)?;
        pending::unregister_locked(&mut list, &self.path);
        self.path = PathBuf::new();
        after(&old)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_dir_all(&self.path);
            pending::unregister(&self.path);
        }
    }
}

/// Rename `from` to `to` unless something is at `to`.
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        match renameat2(from, to, libc::RENAME_NOREPLACE as _) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {} // unsupported by this filesystem
            r => return r,
        }
    }
    if fs::symlink_metadata(to).is_ok() {
        return Err(io::Error::new(io::ErrorKind::AlreadyExists, "exists"));
    }
    fs::rename(from, to)
}

/// Put `new` at `dest` and the old `dest` at a temporary sibling name, returned.
fn exchange(new: &Path, dest: &Path) -> io::Result<PathBuf> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        match renameat2(new, dest, libc::RENAME_EXCHANGE as _) {
            Ok(()) => return Ok(new.to_path_buf()),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => return Err(e),
        }
    }
    // Two renames: between them `dest` is briefly absent (the old directory is at `old`).
    let old = sibling(dest, "old")?;
    fs::rename(dest, &old)?;
    if let Err(e) = fs::rename(new, dest) {
        let _ = fs::rename(&old, dest);
        return Err(e);
    }
    Ok(old)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn renameat2(from: &Path, to: &Path, flags: libc::c_uint) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let cstr = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))
    };
    let (f, t) = (cstr(from)?, cstr(to)?);
    // SAFETY: both are valid NUL-terminated paths, resolved against the working directory.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            flags as _,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_directory_appears_whole_and_never_over_another() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("report");
        let t = TempDir::new_for(&dest).unwrap();
        fs::write(t.path().join("a"), b"new").unwrap();
        t.persist_new(&dest).unwrap();
        assert_eq!(fs::read(dest.join("a")).unwrap(), b"new");
        let t = TempDir::new_for(&dest).unwrap();
        let e = t.persist_new(&dest).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(
            fs::read_dir(root.path()).unwrap().count(),
            1,
            "temp removed"
        );
    }

    #[test]
    fn swap_puts_the_new_directory_in_place_and_hands_over_the_old() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("report");
        fs::create_dir(&dest).unwrap();
        fs::write(dest.join("a"), b"old").unwrap();
        fs::write(dest.join("mine"), b"user").unwrap();
        let t = TempDir::new_for(&dest).unwrap();
        fs::write(t.path().join("a"), b"new").unwrap();
        let dest2 = dest.clone();
        t.swap_with(&dest, |old| {
            assert_eq!(fs::read(old.join("a")).unwrap(), b"old");
            fs::rename(old.join("mine"), dest2.join("mine"))?;
            fs::remove_dir_all(old)
        })
        .unwrap();
        assert_eq!(fs::read(dest.join("a")).unwrap(), b"new");
        assert_eq!(fs::read(dest.join("mine")).unwrap(), b"user");
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_dropped_temp_dir_is_removed() {
        let root = tempfile::tempdir().unwrap();
        let t = TempDir::new_for(&root.path().join("r")).unwrap();
        fs::create_dir(t.path().join("figures")).unwrap();
        fs::write(t.path().join("figures/x.svg"), b"x").unwrap();
        drop(t);
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
    }
}

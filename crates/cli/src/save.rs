//! Saving command outputs: atomic, never over what is not a regular file, never over an
//! existing file without `--force` (the `output` crate does the writing; this adds the flag).

use std::path::Path;

use anyhow::{bail, Context, Result};

/// Write `bytes` to `path` atomically; refuse to replace an existing file unless `force`, and
/// never replace anything but a regular file.
pub fn write_new(path: &Path, bytes: &[u8], force: bool) -> Result<()> {
    match output::write_atomic(path, bytes, force) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("{} exists; pass --force to overwrite it", path.display())
        }
        Err(e) => Err(e).with_context(|| format!("writing {}", path.display())),
    }
}

/// Write a report directory; a refusal to replace one names the flag that allows it.
pub fn write_report(dir: &Path, r: &report::Report, force: bool) -> Result<usize> {
    match report::write_report(dir, r, force) {
        Ok(written) => Ok(written.len()),
        Err(e @ report::Error::Exists { .. }) => bail!("{e}; pass --force to replace it"),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_to_overwrite_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.json");
        write_new(&p, b"one", false).unwrap();
        let err = write_new(&p, b"two", false).unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        write_new(&p, b"three", true).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"three");
        // no temporary files left behind
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

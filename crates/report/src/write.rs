//! The crate's only I/O: write a rendered report into its directory, each file atomically
//! (temporary file in the same directory, then rename), never overwriting an existing report
//! unless asked to.

use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::model::Report;
use crate::{render, OutputFile, MANIFEST};

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A relative path made only of normal components (no `..`, no root).
fn is_safe_relative(p: &str) -> bool {
    let path = Path::new(p);
    !p.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    output::write_atomic(path, bytes, true).map_err(io(path))
}

/// Paths listed in an existing manifest (`HASH  PATH` lines), safe relative paths only.
fn manifest_paths(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_once("  ").map(|(_, p)| p.to_string()))
        .filter(|p| is_safe_relative(p))
        .collect()
}

/// Render `report` and write its files into `dir` (created if needed). Returns the paths
/// written, the manifest last.
///
/// Everything is rendered before anything is written, so an invalid report leaves the disk
/// untouched. Without `force`, fails with [`Error::Exists`] if any file of the report (or a
/// manifest of an earlier report) is already there. With `force`, files are replaced, and files
/// listed in the earlier manifest that this report no longer has are removed, so a figure
/// dropped from the report does not linger.
pub fn write_report(dir: impl AsRef<Path>, report: &Report, force: bool) -> Result<Vec<PathBuf>> {
    let dir = dir.as_ref();
    let files: Vec<OutputFile> = render(report)?;
    let manifest = dir.join(MANIFEST);
    if !force {
        for f in &files {
            let path = dir.join(&f.path);
            if fs::symlink_metadata(&path).is_ok() {
                return Err(Error::Exists { path });
            }
        }
    }
    let old: Vec<String> = match fs::read_to_string(&manifest) {
        Ok(text) => manifest_paths(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(Error::Io {
                path: manifest,
                source: e,
            })
        }
    };
    fs::create_dir_all(dir.join("figures")).map_err(io(dir))?;
    let mut written = Vec::with_capacity(files.len());
    for f in &files {
        let path = dir.join(&f.path);
        write_atomic(&path, &f.bytes)?;
        written.push(path);
    }
    for stale in old.iter().filter(|p| !files.iter().any(|f| &f.path == *p)) {
        let path = dir.join(stale);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::Io { path, source: e }),
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_paths_skip_escapes() {
        let text = "aa  index.html\nbb  figures/x.svg\ncc  ../etc/passwd\ndd  /abs\nee  a/../b\n";
        assert_eq!(manifest_paths(text), vec!["index.html", "figures/x.svg"]);
    }
}

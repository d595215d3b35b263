//! The crate's only I/O: write a rendered report as a whole. The files are written into a
//! temporary directory beside the report's, which is then swapped in (the `output` crate), so
//! the directory holds the old report or the new one, whole, whatever happens meanwhile (a
//! full disk, SIGINT, an invalid report). The user's own files in the directory are carried
//! over; a file of the old report is dropped only while its content still matches the old
//! manifest's SHA-256.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::model::Report;
use crate::{render, OutputFile, MANIFEST};

/// The largest manifest read from an existing report: a real one is a few kilobytes.
const MAX_MANIFEST_BYTES: u64 = 1 << 20;

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

/// `PATH -> HASH` of an existing manifest (`HASH  PATH` lines), safe relative paths only.
fn manifest_entries(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once("  "))
        .filter(|(_, p)| is_safe_relative(p))
        .map(|(h, p)| (p.to_string(), h.to_ascii_lowercase()))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `path` is a regular file whose SHA-256 is `hash` (a file of the old report the
/// user has not changed since).
fn unchanged(path: &Path, hash: &str) -> bool {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => fs::read(path)
            .map(|b| hex(&Sha256::digest(&b)) == hash)
            .unwrap_or(false),
        _ => false,
    }
}

/// The old report's manifest, if any (read with a cap; never through a symlink).
fn old_manifest(dir: &Path) -> Result<BTreeMap<String, String>> {
    let path = dir.join(MANIFEST);
    match fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(Error::Io { path, source: e }),
        Ok(m) if !m.is_file() => {
            return Err(Error::Refused {
                path,
                reason: "is not a regular file",
            })
        }
        Ok(m) if m.len() > MAX_MANIFEST_BYTES => {
            return Err(Error::Refused {
                path,
                reason: "is larger than any manifest nullprint writes (1 MiB)",
            })
        }
        Ok(_) => {}
    }
    let text = fs::read_to_string(&path).map_err(io(&path))?;
    Ok(manifest_entries(&text))
}

/// What the old directory holds that is not the old report (relative paths): the user's files,
/// carried over into the new report's directory.
fn foreign_entries(dir: &Path, old: &BTreeMap<String, String>) -> Result<Vec<String>> {
    let mut foreign = Vec::new();
    let mut visit = |sub: &str| -> Result<()> {
        let d = if sub.is_empty() {
            dir.to_path_buf()
        } else {
            dir.join(sub)
        };
        for e in fs::read_dir(&d).map_err(io(&d))? {
            let e = e.map_err(io(&d))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = if sub.is_empty() {
                name
            } else {
                format!("{sub}/{name}")
            };
            if rel == MANIFEST || rel == "figures" {
                continue;
            }
            let ours = old.get(&rel).is_some_and(|h| unchanged(&e.path(), h));
            if !ours {
                foreign.push(rel);
            }
        }
        Ok(())
    };
    visit("")?;
    let figures = dir.join("figures");
    match fs::symlink_metadata(&figures) {
        Ok(m) if m.is_dir() => visit("figures")?,
        Ok(_) => {
            return Err(Error::Refused {
                path: figures,
                reason: "is not a directory (a symlink?); refusing to write through it",
            })
        }
        Err(_) => {}
    }
    Ok(foreign)
}

/// Render `report` and write its files into `dir`. Returns the paths written, the manifest
/// last.
///
/// Everything is rendered before anything is written, so an invalid report leaves the disk
/// untouched. Without `force`, fails with [`Error::Exists`] if any file of the report (or a
/// manifest of an earlier report) is already there. With `force`, the earlier report is
/// replaced as a whole: its files go (a figure dropped from the report does not linger), the
/// user's other files stay. A file at one of the report's paths that the earlier manifest does
/// not vouch for (edited since, or never written by nullprint) is refused, not overwritten.
pub fn write_report(dir: impl AsRef<Path>, report: &Report, force: bool) -> Result<Vec<PathBuf>> {
    let dir = dir.as_ref();
    let files: Vec<OutputFile> = render(report)?;
    let existing = match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => true,
        Ok(_) => {
            return Err(Error::Refused {
                path: dir.to_path_buf(),
                reason: "is not a directory (a symlink?); refusing to write through it",
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            return Err(Error::Io {
                path: dir.to_path_buf(),
                source: e,
            })
        }
    };
    let mut foreign = Vec::new();
    let mut old_files = BTreeMap::new();
    if existing {
        if !force {
            for f in &files {
                let path = dir.join(&f.path);
                if fs::symlink_metadata(&path).is_ok() {
                    return Err(Error::Exists { path });
                }
            }
        }
        old_files = old_manifest(dir)?;
        foreign = foreign_entries(dir, &old_files)?;
        if let Some(f) = files.iter().find(|f| foreign.contains(&f.path)) {
            return Err(Error::Refused {
                path: dir.join(&f.path),
                reason: "was changed since nullprint wrote it, or never written by it (the \
                         report's files.sha256 does not vouch for it); move it away to replace \
                         the report",
            });
        }
    }

    let tmp = output::TempDir::new_for(dir).map_err(io(dir))?;
    for f in &files {
        if output::interrupted() {
            return Err(Error::Io {
                path: dir.to_path_buf(),
                source: output::interrupted_error(),
            });
        }
        let path = tmp.path().join(&f.path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io(&dir.join(&f.path)))?;
        }
        let write = || -> std::io::Result<()> {
            let mut out = fs::File::create_new(&path)?;
            out.write_all(&f.bytes)?;
            out.sync_all()
        };
        write().map_err(io(&dir.join(&f.path)))?;
    }
    if existing {
        tmp.swap_with(dir, |old| {
            // The user's files move across; then the old report's files go, each only while
            // its content still matches the old manifest (anything else stays, in the hidden
            // old directory, rather than be lost).
            for rel in &foreign {
                let from = old.join(rel);
                if fs::symlink_metadata(&from).is_ok() {
                    fs::rename(&from, dir.join(rel))?;
                }
            }
            for (rel, hash) in &old_files {
                let p = old.join(rel);
                if unchanged(&p, hash) {
                    fs::remove_file(p)?;
                }
            }
            let _ = fs::remove_file(old.join(MANIFEST));
            let _ = fs::remove_dir(old.join("figures"));
            let _ = fs::remove_dir(old);
            Ok(())
        })
        .map_err(io(dir))?;
    } else {
        tmp.persist_new(dir).map_err(io(dir))?;
    }
    Ok(files.iter().map(|f| dir.join(&f.path)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_entries_skip_escapes() {
        let text = "aa  index.html\nbb  figures/x.svg\ncc  ../etc/passwd\ndd  /abs\nee  a/../b\n";
        let got: Vec<_> = manifest_entries(text).into_keys().collect();
        assert_eq!(got, vec!["figures/x.svg", "index.html"]);
    }
}

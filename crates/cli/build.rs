//! Build identity for `nullprint --version` and provenance: the git commit the binary is built
//! from and its enabled features, as `NULLPRINT_BUILD`, e.g.
//! `0.1.0 (git 4e1c59b12345, features: download)`.
//!
//! The commit is `unknown` outside nullprint's own git checkout (a source tarball, a crates.io
//! download, a wheel built from an sdist) and gets `-dirty` when tracked files the binary is
//! built from (the manifests, `Cargo.lock`, each crate's `src/` and build script) differ
//! from it. Nothing here can fail the build: without git the commit is `unknown`.

use std::path::Path;
use std::process::Command;

/// Abbreviated commit length: unique in this repository for the foreseeable future.
const COMMIT_DIGITS: usize = 12;

/// Files of every workspace crate that the binary is built from, relative to the crate: a
/// change to any other file (a test, a report, the README) does not make the build dirty.
const CRATE_SOURCES: [&str; 3] = ["Cargo.toml", "build.rs", "src"];

/// Where this crate sits in nullprint's repository: a checkout at any other prefix (a copy of
/// the crate inside some other repository) is not nullprint's history.
const CRATE_PREFIX: &str = "crates/cli/";

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_owned())
}

/// The commit (with `-dirty` when the sources differ from it), or `None` outside the repository.
fn commit(crate_dir: &Path) -> Option<String> {
    if git(crate_dir, &["rev-parse", "--show-prefix"])?.as_str() != CRATE_PREFIX {
        return None;
    }
    let root = crate_dir.join("../..");
    // Rebuild the identity when HEAD moves, a branch advances, or a source file changes.
    for git_path in ["HEAD", "index", "packed-refs"] {
        if let Some(p) = git(&root, &["rev-parse", "--git-path", git_path]) {
            println!("cargo:rerun-if-changed={}", root.join(p).display());
        }
    }
    if let Some(branch) = git(&root, &["symbolic-ref", "-q", "HEAD"]) {
        if let Some(p) = git(&root, &["rev-parse", "--git-path", &branch]) {
            println!("cargo:rerun-if-changed={}", root.join(p).display());
        }
    }
    let mut sources = vec!["Cargo.toml".to_owned(), "Cargo.lock".to_owned()];
    let mut crates: Vec<String> = std::fs::read_dir(root.join("crates"))
        .ok()?
        .filter_map(|e| Some(e.ok()?.file_name().to_str()?.to_owned()))
        .collect();
    crates.sort();
    for c in crates {
        sources.extend(CRATE_SOURCES.iter().map(|f| format!("crates/{c}/{f}")));
    }
    sources.retain(|s| root.join(s).exists());
    for s in &sources {
        println!("cargo:rerun-if-changed={}", root.join(s).display());
    }
    let hash = git(
        &root,
        &["rev-parse", &format!("--short={COMMIT_DIGITS}"), "HEAD"],
    )?;
    let mut status = vec!["status", "--porcelain", "--untracked-files=no", "--"];
    status.extend(sources.iter().map(String::as_str));
    let dirty = !git(&root, &status)?.is_empty();
    Some(if dirty { format!("{hash}-dirty") } else { hash })
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let crate_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let commit = commit(Path::new(&crate_dir)).unwrap_or_else(|| "unknown".into());
    let mut features: Vec<String> = std::env::vars()
        .filter_map(|(k, _)| k.strip_prefix("CARGO_FEATURE_").map(str::to_owned))
        .filter(|f| f != "DEFAULT")
        .map(|f| f.to_lowercase().replace('_', "-"))
        .collect();
    features.sort();
    let features = if features.is_empty() {
        "none".to_owned()
    } else {
        features.join(", ")
    };
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=NULLPRINT_BUILD={version} (git {commit}, features: {features})");
}

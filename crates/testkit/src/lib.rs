//! Test helpers shared by nullprint's crates (dev-dependency only, never published).
//! [`hub`] is a loopback HTTP server standing in for the Hugging Face hub (remote reads).
//!
//! Tests that need real weights find them under [`fingerprint::source::models_dir`] (what
//! `just models` fills) and, when a file is absent, say so on stderr with `SKIPPED` instead of
//! passing in silence.
#![deny(missing_docs)]

pub mod hub;
pub mod zip;

use std::io::Write;
use std::path::PathBuf;

pub use fingerprint::source::models_dir;

/// The bytes of a safetensors file: the little-endian length of the JSON `header`, the header
/// padded with spaces to a multiple of 8 (as writers do), then `data` (offsets in the header
/// count from its start).
pub fn safetensors(header: &serde_json::Value, data: &[u8]) -> Vec<u8> {
    let mut h = serde_json::to_vec(header).expect("a JSON value serialises");
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut bytes = (h.len() as u64).to_le_bytes().to_vec();
    bytes.extend(h);
    bytes.extend_from_slice(data);
    bytes
}

/// `models_dir()/name/file`, or `None` after printing `SKIPPED: test: … not found` straight to
/// stderr (past the test harness's capture).
pub fn real_model(test: &str, name: &str, file: &str) -> Option<PathBuf> {
    let p = models_dir().join(name).join(file);
    if p.is_file() {
        Some(p)
    } else {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: {test}: {} not found (run `just models`)",
            p.display()
        );
        None
    }
}

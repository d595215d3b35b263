//! Input files of an experiment: read once, hashed into the report's provenance, then parsed.

use std::path::Path;

use fingerprint::hash::sha256_bytes;
use fingerprint::Fingerprint;
use report::model as rm;

use crate::error::{Error, Result};

/// The provenance entries of every file an analysis read, in reading order.
#[derive(Clone, Debug, Default)]
pub struct Inputs(pub Vec<rm::InputFile>);

impl Inputs {
    /// Read a file, record it, return its bytes.
    pub fn read(&mut self, path: &Path, description: &str) -> Result<Vec<u8>> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        self.0.push(rm::InputFile {
            path: path.display().to_string(),
            sha256: sha256_bytes(&bytes),
            bytes: Some(bytes.len() as u64),
            description: description.into(),
        });
        Ok(bytes)
    }

    /// Record a file without keeping its bytes.
    pub fn record(&mut self, path: &Path, description: &str) -> Result<()> {
        self.read(path, description).map(drop)
    }

    /// Read a fingerprint once: hash it into the inputs, then parse it.
    pub fn fingerprint(&mut self, path: &Path, description: &str) -> Result<Fingerprint> {
        let bytes = self.read(path, description)?;
        Fingerprint::from_json_slice(&bytes)
            .map_err(|e| Error::invalid(path, "fingerprint", e.to_string()))
    }
}

//! ONNX models: graph initializers, with weight-only int8 dequantized.
//!
//! Not built yet: opening a file of this format reports that clearly.

use std::path::Path;

use super::TensorReader;
use crate::error::{Error, Result};

/// Open `path` as this format.
pub fn open(path: &Path) -> Result<Box<dyn TensorReader>> {
    Err(Error::UnknownFormat {
        path: path.to_path_buf(),
        reason: "this nullprint does not read this format yet".into(),
    })
}

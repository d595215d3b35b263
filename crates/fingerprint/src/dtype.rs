//! Element types as the formats store them.

use std::fmt;

/// A stored element type. Readers map their own codes onto it; [`DType::Other`] keeps the
/// file's own spelling for types nullprint cannot decode (so the error can name it).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DType {
    /// IEEE binary64.
    F64,
    /// IEEE binary32.
    F32,
    /// IEEE binary16.
    F16,
    /// bfloat16.
    BF16,
    /// Signed 8-bit integer (decodable only with a scale, e.g. ONNX weight-only int8).
    I8,
    /// A ggml quantized block type, by its ggml name (`Q4_K`, `Q8_0`, ...).
    Ggml(String),
    /// Any other type, by the file's own name (`I64`, `BOOL`, `IQ2_XS`, ...).
    Other(String),
}

impl DType {
    /// Size in bytes of one element, for plain (non-block) types.
    pub fn size(&self) -> Option<usize> {
        match self {
            DType::F64 => Some(8),
            DType::F32 => Some(4),
            DType::F16 | DType::BF16 => Some(2),
            DType::I8 => Some(1),
            DType::Ggml(_) | DType::Other(_) => None,
        }
    }

    /// True for the floating-point types every reader decodes directly.
    pub fn is_float(&self) -> bool {
        matches!(self, DType::F64 | DType::F32 | DType::F16 | DType::BF16)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DType::F64 => f.write_str("F64"),
            DType::F32 => f.write_str("F32"),
            DType::F16 => f.write_str("F16"),
            DType::BF16 => f.write_str("BF16"),
            DType::I8 => f.write_str("I8"),
            DType::Ggml(s) | DType::Other(s) => f.write_str(s),
        }
    }
}

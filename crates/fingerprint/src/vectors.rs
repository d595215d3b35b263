//! Vector fingerprints: the values themselves of small per-layer vectors (normalisation
//! weights, optionally their biases), kept in a fingerprint so that claims about those vectors
//! (e.g. "the cosine of two models' LayerNorm weights is 0.989") can be tested from fingerprint
//! files without the weights.
//!
//! A vector is stored as its values in f32, little-endian, base64 (standard alphabet, padded),
//! with the SHA-256 of those bytes; [`VectorRow::values`] checks the length and the hash
//! before returning a value. Every dtype nullprint reads is exact in f32 except F64, which is
//! rounded to the nearest f32 (the row keeps its stored dtype, so a reader can tell).
//!
//! Fingerprints without vectors are unchanged: the field is optional, and absent when empty.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::roles::{Role, Stack};

/// Longest vector kept, in elements. A normalisation vector has one element per hidden unit;
/// the widest published hidden size is below 2^15, so 2^16 keeps every real one while a
/// mislabelled matrix can never bloat a fingerprint past 350 kB of base64 per row.
pub const MAX_VECTOR_LEN: u64 = 1 << 16;

/// The normalisation roles whose weights `--vectors norms` keeps.
pub const NORM_ROLES: [Role; 9] = [
    Role::EmbedNorm,
    Role::AttnNorm,
    Role::AttnPostNorm,
    Role::AttnQNorm,
    Role::AttnKNorm,
    Role::XattnNorm,
    Role::MlpNorm,
    Role::MlpPostNorm,
    Role::FinalNorm,
];

/// Which vectors a fingerprint keeps (none by default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct VectorKinds {
    /// The weights (gains) of every normalisation role of [`NORM_ROLES`].
    pub norms: bool,
    /// The biases of those roles.
    pub biases: bool,
}

impl VectorKinds {
    /// Whether any vector is kept.
    pub fn any(self) -> bool {
        self.norms || self.biases
    }

    /// Whether a 1-D tensor of `role` is kept.
    pub fn keeps(self, role: &Role) -> bool {
        match role {
            Role::Bias(inner) => self.biases && NORM_ROLES.contains(inner),
            r => self.norms && NORM_ROLES.contains(r),
        }
    }
}

impl VectorKinds {
    /// The roles a fingerprint restricted to these vectors reads (norm weights and/or their
    /// biases), in table order.
    pub fn roles(self) -> Vec<Role> {
        let mut out = Vec::new();
        if self.norms {
            out.extend(NORM_ROLES.iter().cloned());
        }
        if self.biases {
            out.extend(NORM_ROLES.iter().cloned().map(Role::bias));
        }
        out
    }
}

impl fmt::Display for VectorKinds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match (self.norms, self.biases) {
            (false, false) => "none",
            (true, false) => "norms",
            (false, true) => "biases",
            (true, true) => "norms,biases",
        })
    }
}

/// A `--vectors` value that names no kind of vector.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown vector kind {0:?} (expected norms, biases or both, comma-separated)")]
pub struct UnknownVectorKind(pub String);

impl FromStr for VectorKinds {
    type Err = UnknownVectorKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut k = VectorKinds::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "norms" => k.norms = true,
                "biases" => k.biases = true,
                other => return Err(UnknownVectorKind(other.to_owned())),
            }
        }
        Ok(k)
    }
}

/// The values of one vector tensor (or role slice), stored compactly with their hash.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VectorRow {
    /// Encoder or decoder (encoder-decoder models only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<Stack>,
    /// Layer index (`None` for embedding and final norms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<u32>,
    /// Canonical role (a bias is `<role>_bias`).
    pub role: Role,
    /// Stored tensor name.
    pub tensor: String,
    /// Stored dtype (the values below are that dtype converted to f32).
    pub dtype: String,
    /// Number of elements.
    pub len: u64,
    /// Hex SHA-256 of the f32 little-endian bytes.
    pub sha256: String,
    /// The f32 little-endian bytes, base64 (standard alphabet, padded).
    pub f32le_base64: String,
}

/// Why a stored vector cannot be used.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum VectorError {
    /// The base64 text does not decode.
    #[error("vector {tensor}: base64 does not decode: {reason}")]
    Base64 {
        /// The tensor.
        tensor: String,
        /// The decoder's message.
        reason: String,
    },
    /// The decoded bytes are not `4 × len`.
    #[error("vector {tensor}: {bytes} bytes decoded, expected 4 x {len}")]
    Length {
        /// The tensor.
        tensor: String,
        /// Bytes decoded.
        bytes: usize,
        /// Elements the row declares.
        len: u64,
    },
    /// The bytes do not hash to the recorded SHA-256.
    #[error("vector {tensor}: SHA-256 of the values is {actual}, the row records {expected}")]
    Hash {
        /// The tensor.
        tensor: String,
        /// Recorded hash.
        expected: String,
        /// Hash of the decoded bytes.
        actual: String,
    },
    /// A value is NaN or infinite.
    #[error("vector {tensor}: element {index} is {value}, not a finite number")]
    NonFinite {
        /// The tensor.
        tensor: String,
        /// Element index.
        index: usize,
        /// The value.
        value: f32,
    },
}

impl VectorRow {
    /// A row holding `values`.
    pub fn new(
        stack: Option<Stack>,
        layer: Option<u32>,
        role: Role,
        tensor: String,
        dtype: String,
        values: &[f32],
    ) -> Self {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        VectorRow {
            stack,
            layer,
            role,
            tensor,
            dtype,
            len: values.len() as u64,
            sha256: crate::hash::sha256_bytes(&bytes),
            f32le_base64: base64::engine::general_purpose::STANDARD.encode(&bytes),
        }
    }

    /// The values, after checking their length, hash and finiteness.
    pub fn values(&self) -> Result<Vec<f32>, VectorError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(self.f32le_base64.as_bytes())
            .map_err(|e| VectorError::Base64 {
                tensor: self.tensor.clone(),
                reason: e.to_string(),
            })?;
        if Some(bytes.len() as u64) != self.len.checked_mul(4) {
            return Err(VectorError::Length {
                tensor: self.tensor.clone(),
                bytes: bytes.len(),
                len: self.len,
            });
        }
        let actual = crate::hash::sha256_bytes(&bytes);
        if actual != self.sha256 {
            return Err(VectorError::Hash {
                tensor: self.tensor.clone(),
                expected: self.sha256.clone(),
                actual,
            });
        }
        let values: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(VectorError::NonFinite {
                tensor: self.tensor.clone(),
                index,
                value,
            });
        }
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(values: &[f32]) -> VectorRow {
        VectorRow::new(
            None,
            Some(3),
            Role::AttnNorm,
            "blk.3.attn_norm.weight".into(),
            "F32".into(),
            values,
        )
    }

    #[test]
    fn round_trip_is_exact_and_hashed() {
        let v = [1.0f32, -0.5, 3.25e-8, f32::MAX, 0.0];
        let r = row(&v);
        assert_eq!(r.len, 5);
        assert_eq!(r.values().unwrap(), v);
        let json = serde_json::to_string(&r).unwrap();
        let back: VectorRow = serde_json::from_str(&json).unwrap();
        assert_eq!(back.values().unwrap(), v);
        assert_eq!(back.role, Role::AttnNorm);
    }

    #[test]
    fn each_corruption_is_named() {
        let good = row(&[1.0, 2.0]);
        let mut bad = good.clone();
        bad.f32le_base64 = "!!".into();
        assert!(matches!(bad.values(), Err(VectorError::Base64 { .. })));
        let mut bad = good.clone();
        bad.len = 3;
        assert!(matches!(bad.values(), Err(VectorError::Length { .. })));
        let mut bad = good.clone();
        bad.len = u64::MAX;
        assert!(matches!(bad.values(), Err(VectorError::Length { .. })));
        let mut bad = good.clone();
        bad.f32le_base64 = row(&[1.0, 2.5]).f32le_base64;
        let e = bad.values().unwrap_err();
        assert!(matches!(e, VectorError::Hash { .. }));
        assert!(e.to_string().contains("blk.3.attn_norm.weight"), "{e}");
        let nan = row(&[1.0, f32::NAN]);
        assert!(matches!(
            nan.values(),
            Err(VectorError::NonFinite { index: 1, .. })
        ));
    }

    #[test]
    fn kinds_parse_and_select_roles() {
        let k: VectorKinds = "norms".parse().unwrap();
        assert!(k.keeps(&Role::AttnNorm) && k.keeps(&Role::MlpNorm));
        assert!(!k.keeps(&Role::AttnNorm.bias()) && !k.keeps(&Role::AttnQ));
        let kb: VectorKinds = "norms,biases".parse().unwrap();
        assert!(kb.keeps(&Role::MlpNorm.bias()) && !kb.keeps(&Role::AttnQ.bias()));
        assert_eq!(kb.to_string(), "norms,biases");
        assert_eq!(VectorKinds::default().to_string(), "none");
        assert!(!VectorKinds::default().any());
        assert!("norms,weights".parse::<VectorKinds>().is_err());
    }
}

//! ggml tensor types: their block layouts and the dequantizers nullprint implements.
//!
//! Every ggml type stores its elements in fixed-size blocks: `block` elements in `type_size`
//! bytes (plain types are blocks of one element). [`GgmlType::from_code`] knows the layout of
//! every type code ggml has defined, so a GGUF header can be validated (byte sizes, overlaps)
//! even for types nullprint cannot decode; [`GgmlType::kernel`] is `Some` for the decodable
//! ones.
//!
//! The dequantizers follow the block layouts of ggml's `ggml-common.h` and the arithmetic of
//! `ggml-quants.c` (`dequantize_row_*`): every product is formed in f32 in the same order, with
//! no fused multiply-add, so the values equal, bit for bit, those of ggml's reference C code
//! compiled without FMA contraction and those of the `gguf` Python package
//! (`gguf.quants.dequantize`). Scales stored as IEEE half are widened exactly
//! ([`f16_to_f32`]).

use crate::dtype::DType;

/// Elements per super-block of the k-quants (`QK_K` in ggml).
pub const QK_K: usize = 256;
/// Elements per block of the legacy quants (`QK4_0` .. `QK8_1` in ggml).
pub const QK: usize = 32;

/// A decoder for one block layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
#[non_exhaustive]
pub enum Kernel {
    /// IEEE binary32, little-endian.
    F32,
    /// IEEE binary16.
    F16,
    /// bfloat16.
    BF16,
    /// `d: f16, qs[16]`: 32 4-bit values, `y = (q - 8) * d`.
    Q4_0,
    /// `d, m: f16, qs[16]`: `y = q * d + m`.
    Q4_1,
    /// `d: f16, qh: u32, qs[16]`: 5-bit values, `y = (q - 16) * d`.
    Q5_0,
    /// `d, m: f16, qh: u32, qs[16]`: `y = q * d + m`.
    Q5_1,
    /// `d: f16, qs: [i8; 32]`: `y = q * d`.
    Q8_0,
    /// `d, s: f16, qs: [i8; 32]` (`s` caches `d * sum(q)`): `y = q * d`.
    Q8_1,
    /// `scales[16], qs[64], d, dmin: f16`: 2-bit values with 4-bit scales and mins.
    Q2_K,
    /// `hmask[32], qs[64], scales[12], d: f16`: 3-bit values with 6-bit signed scales.
    Q3_K,
    /// `d, dmin: f16, scales[12], qs[128]`: 4-bit values with 6-bit scales and mins.
    Q4_K,
    /// `d, dmin: f16, scales[12], qh[32], qs[128]`: 5-bit values with 6-bit scales and mins.
    Q5_K,
    /// `ql[128], qh[64], scales: [i8; 16], d: f16`: 6-bit values with 8-bit scales.
    Q6_K,
    /// `d: f32, qs: [i8; 256], bsums: [i16; 16]`: `y = d * q`.
    Q8_K,
}

/// One ggml type: its GGUF code, name and block layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GgmlType {
    /// The `ggml_type` code stored in GGUF tensor infos.
    pub code: u32,
    /// ggml's name for it, upper case (`Q4_K`, `BF16`).
    pub name: &'static str,
    /// Elements per block (1 for plain types).
    pub block: u64,
    /// Bytes per block.
    pub type_size: u64,
    /// The dequantizer, when nullprint has one.
    pub kernel: Option<Kernel>,
}

/// `(code, name, elements per block, bytes per block, kernel)` for every type ggml has
/// defined (`enum ggml_type` in `ggml.h`, sizes from the `static_assert`s of `ggml-common.h`).
/// Codes 4 and 5 (Q4_2, Q4_3) were removed before GGUF existed and are absent. Codes 31–33
/// and 36–38 are the repacked `Q4_0_4_4`.. and `IQ4_NL_4_4`.. layouts, which ggml no longer
/// accepts in files; their sizes are those of Q4_0 and IQ4_NL.
const TYPES: &[(u32, &str, u64, u64, Option<Kernel>)] = &[
    (0, "F32", 1, 4, Some(Kernel::F32)),
    (1, "F16", 1, 2, Some(Kernel::F16)),
    (2, "Q4_0", 32, 18, Some(Kernel::Q4_0)),
    (3, "Q4_1", 32, 20, Some(Kernel::Q4_1)),
    (6, "Q5_0", 32, 22, Some(Kernel::Q5_0)),
    (7, "Q5_1", 32, 24, Some(Kernel::Q5_1)),
    (8, "Q8_0", 32, 34, Some(Kernel::Q8_0)),
    (9, "Q8_1", 32, 36, Some(Kernel::Q8_1)),
    (10, "Q2_K", 256, 84, Some(Kernel::Q2_K)),
    (11, "Q3_K", 256, 110, Some(Kernel::Q3_K)),
    (12, "Q4_K", 256, 144, Some(Kernel::Q4_K)),
    (13, "Q5_K", 256, 176, Some(Kernel::Q5_K)),
    (14, "Q6_K", 256, 210, Some(Kernel::Q6_K)),
    (15, "Q8_K", 256, 292, Some(Kernel::Q8_K)),
    (16, "IQ2_XXS", 256, 66, None),
    (17, "IQ2_XS", 256, 74, None),
    (18, "IQ3_XXS", 256, 98, None),
    (19, "IQ1_S", 256, 50, None),
    (20, "IQ4_NL", 32, 18, None),
    (21, "IQ3_S", 256, 110, None),
    (22, "IQ2_S", 256, 82, None),
    (23, "IQ4_XS", 256, 136, None),
    (24, "I8", 1, 1, None),
    (25, "I16", 1, 2, None),
    (26, "I32", 1, 4, None),
    (27, "I64", 1, 8, None),
    (28, "F64", 1, 8, None),
    (29, "IQ1_M", 256, 56, None),
    (30, "BF16", 1, 2, Some(Kernel::BF16)),
    (31, "Q4_0_4_4", 32, 18, None),
    (32, "Q4_0_4_8", 32, 18, None),
    (33, "Q4_0_8_8", 32, 18, None),
    (34, "TQ1_0", 256, 54, None),
    (35, "TQ2_0", 256, 66, None),
    (36, "IQ4_NL_4_4", 32, 18, None),
    (37, "IQ4_NL_4_8", 32, 18, None),
    (38, "IQ4_NL_8_8", 32, 18, None),
    (39, "MXFP4", 32, 17, None),
    (40, "NVFP4", 64, 36, None),
    (41, "Q1_0", 128, 18, None),
    (42, "Q2_0", 64, 18, None),
];

impl GgmlType {
    /// The type with this code, if ggml defines one.
    pub fn from_code(code: u32) -> Option<GgmlType> {
        TYPES
            .iter()
            .find(|t| t.0 == code)
            .map(|&(code, name, block, type_size, kernel)| GgmlType {
                code,
                name,
                block,
                type_size,
                kernel,
            })
    }

    /// The type with this ggml name (`"Q4_K"`), if any.
    pub fn from_name(name: &str) -> Option<GgmlType> {
        TYPES
            .iter()
            .find(|t| t.1 == name)
            .and_then(|t| Self::from_code(t.0))
    }

    /// How nullprint reports this type: plain floats as themselves, decodable quants as
    /// [`DType::Ggml`], everything else as [`DType::Other`].
    pub fn dtype(&self) -> DType {
        match self.kernel {
            Some(Kernel::F32) => DType::F32,
            Some(Kernel::F16) => DType::F16,
            Some(Kernel::BF16) => DType::BF16,
            Some(_) => DType::Ggml(self.name.to_owned()),
            None => DType::Other(self.name.to_owned()),
        }
    }

    /// Bytes holding `elements` values (a multiple of [`Self::block`]); `None` when it is not
    /// a whole number of blocks or the size overflows.
    pub fn bytes_for(&self, elements: u64) -> Option<u64> {
        if self.block == 0 || elements % self.block != 0 {
            return None;
        }
        (elements / self.block).checked_mul(self.type_size)
    }
}

impl Kernel {
    /// Dequantize the whole blocks of `src` into `dst`, as many as both hold; returns the
    /// number of values written (a multiple of the block size).
    pub fn dequantize(self, src: &[u8], dst: &mut [f32]) -> usize {
        match self {
            Kernel::F32 => run::<4, 1>(src, dst, |b, y| y[0] = f32::from_le_bytes(*b)),
            Kernel::F16 => run::<2, 1>(src, dst, |b, y| y[0] = f16_to_f32(u16::from_le_bytes(*b))),
            Kernel::BF16 => {
                run::<2, 1>(src, dst, |b, y| y[0] = bf16_to_f32(u16::from_le_bytes(*b)))
            }
            Kernel::Q4_0 => run::<18, QK>(src, dst, q4_0),
            Kernel::Q4_1 => run::<20, QK>(src, dst, q4_1),
            Kernel::Q5_0 => run::<22, QK>(src, dst, q5_0),
            Kernel::Q5_1 => run::<24, QK>(src, dst, q5_1),
            Kernel::Q8_0 => run::<34, QK>(src, dst, q8_0),
            Kernel::Q8_1 => run::<36, QK>(src, dst, q8_1),
            Kernel::Q2_K => run::<84, QK_K>(src, dst, q2_k),
            Kernel::Q3_K => run::<110, QK_K>(src, dst, q3_k),
            Kernel::Q4_K => run::<144, QK_K>(src, dst, q4_k),
            Kernel::Q5_K => run::<176, QK_K>(src, dst, q5_k),
            Kernel::Q6_K => run::<210, QK_K>(src, dst, q6_k),
            Kernel::Q8_K => run::<292, QK_K>(src, dst, q8_k),
        }
    }
}

/// Apply a block decoder to every whole block that fits both buffers.
#[inline(always)]
fn run<const S: usize, const B: usize>(
    src: &[u8],
    dst: &mut [f32],
    f: impl Fn(&[u8; S], &mut [f32; B]),
) -> usize {
    let mut n = 0;
    for (b, y) in src.chunks_exact(S).zip(dst.chunks_exact_mut(B)) {
        // chunks_exact guarantees the lengths, so these conversions always succeed.
        if let (Ok(b), Ok(y)) = (<&[u8; S]>::try_from(b), <&mut [f32; B]>::try_from(y)) {
            f(b, y);
            n += B;
        }
    }
    n
}

/// IEEE binary16 bits to f32, exactly (the widening is lossless). NaN payloads are carried
/// over unchanged, as numpy does (hardware F16C conversion would also set the quiet bit).
#[inline]
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    if exp == 0x1f {
        f32::from_bits(sign | 0x7f80_0000 | (man << 13))
    } else if exp != 0 {
        // Rebias the exponent from 15 to 127.
        f32::from_bits(sign | ((exp + 112) << 23) | (man << 13))
    } else {
        // Zero or subnormal: man * 2^-24, exact in f32.
        let v = man as f32 * (1.0 / 16_777_216.0);
        if sign != 0 {
            -v
        } else {
            v
        }
    }
}

/// bfloat16 bits to f32: the upper half of the f32 bit pattern, exactly as ggml widens it.
#[inline]
pub fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits(u32::from(h) << 16)
}

/// The f16 at byte `i` of a block, widened.
#[inline(always)]
pub(super) fn half_at(b: &[u8], i: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[i], b[i + 1]]))
}

fn q4_0(b: &[u8; 18], y: &mut [f32; 32]) {
    let d = half_at(b, 0);
    let qs = &b[2..18];
    for j in 0..16 {
        y[j] = ((qs[j] & 0x0f) as i32 - 8) as f32 * d;
        y[j + 16] = ((qs[j] >> 4) as i32 - 8) as f32 * d;
    }
}

fn q4_1(b: &[u8; 20], y: &mut [f32; 32]) {
    let d = half_at(b, 0);
    let m = half_at(b, 2);
    let qs = &b[4..20];
    for j in 0..16 {
        y[j] = (qs[j] & 0x0f) as f32 * d + m;
        y[j + 16] = (qs[j] >> 4) as f32 * d + m;
    }
}

fn q5_0(b: &[u8; 22], y: &mut [f32; 32]) {
    let d = half_at(b, 0);
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    let qs = &b[6..22];
    for j in 0..16 {
        // Bit j of qh is the fifth bit of value j, bit j + 16 that of value j + 16.
        let h0 = ((qh >> j) & 1) << 4;
        let h1 = ((qh >> (j + 16)) & 1) << 4;
        y[j] = ((u32::from(qs[j] & 0x0f) | h0) as i32 - 16) as f32 * d;
        y[j + 16] = ((u32::from(qs[j] >> 4) | h1) as i32 - 16) as f32 * d;
    }
}

fn q5_1(b: &[u8; 24], y: &mut [f32; 32]) {
    let d = half_at(b, 0);
    let m = half_at(b, 2);
    let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    let qs = &b[8..24];
    for j in 0..16 {
        let h0 = ((qh >> j) & 1) << 4;
        let h1 = ((qh >> (j + 16)) & 1) << 4;
        y[j] = (u32::from(qs[j] & 0x0f) | h0) as f32 * d + m;
        y[j + 16] = (u32::from(qs[j] >> 4) | h1) as f32 * d + m;
    }
}

fn q8_0(b: &[u8; 34], y: &mut [f32; 32]) {
    let d = half_at(b, 0);
    for (y, &q) in y.iter_mut().zip(&b[2..34]) {
        *y = (q as i8) as f32 * d;
    }
}

fn q8_1(b: &[u8; 36], y: &mut [f32; 32]) {
    let d = half_at(b, 0);
    for (y, &q) in y.iter_mut().zip(&b[4..36]) {
        *y = (q as i8) as f32 * d;
    }
}

fn q2_k(b: &[u8; 84], y: &mut [f32; 256]) {
    let scales = &b[0..16];
    let qs = &b[16..80];
    let d = half_at(b, 80);
    let dmin = half_at(b, 82);
    // Two halves of 128 values, each from 32 bytes; within a half, the 2-bit field at shift
    // 2j of byte l is value 32j + l. Every 16 values share one scale byte.
    for half in 0..2 {
        let q = &qs[half * 32..half * 32 + 32];
        for j in 0..4 {
            let shift = 2 * j;
            for g in 0..2 {
                let sc = scales[half * 8 + j * 2 + g];
                let dl = d * (sc & 0x0f) as f32;
                let ml = dmin * (sc >> 4) as f32;
                let out = half * 128 + j * 32 + g * 16;
                for l in 0..16 {
                    let v = (q[g * 16 + l] >> shift) & 3;
                    y[out + l] = dl * v as f32 - ml;
                }
            }
        }
    }
}

/// The 16 signed six-bit scales of a Q3_K block from its 12 packed bytes: low nibbles in bytes
/// 0..8 (low then high nibble), the top two bits in bytes 8..12 (scale i at byte 8 + i % 4,
/// shift 2 * (i / 4)), stored with a +32 bias.
#[inline(always)]
pub(super) fn q3_k_scales(packed: &[u8]) -> [i32; 16] {
    let mut scales = [0i32; 16];
    for (i, s) in scales.iter_mut().enumerate() {
        let low = if i < 8 {
            packed[i] & 0x0f
        } else {
            packed[i - 8] >> 4
        };
        let high = (packed[8 + i % 4] >> (2 * (i / 4))) & 3;
        *s = i32::from(low | (high << 4)) - 32;
    }
    scales
}

fn q3_k(b: &[u8; 110], y: &mut [f32; 256]) {
    let hmask = &b[0..32];
    let qs = &b[32..96];
    let packed = &b[96..108];
    let d = half_at(b, 108);
    let scales = q3_k_scales(packed);
    // Value 128h + 32j + l: low two bits at shift 2j of qs[32h + l]; its high bit is bit
    // 4h + j of hmask[l], and a clear bit means "subtract 4".
    for half in 0..2 {
        let q = &qs[half * 32..half * 32 + 32];
        for j in 0..4 {
            let shift = 2 * j;
            let m = 1u8 << (4 * half + j);
            for g in 0..2 {
                let dl = d * scales[half * 8 + j * 2 + g] as f32;
                let out = half * 128 + j * 32 + g * 16;
                for l in 0..16 {
                    let k = g * 16 + l;
                    let low = ((q[k] >> shift) & 3) as i32;
                    let v = low - if hmask[k] & m != 0 { 0 } else { 4 };
                    y[out + l] = dl * v as f32;
                }
            }
        }
    }
}

/// Scale and min of sub-block `j` (0..8) of the 12 packed bytes of Q4_K / Q5_K: six bits each;
/// sub-blocks 4..8 keep their low four bits in bytes 8..12 and their top two bits in the
/// spare top bits of bytes 0..8.
#[inline(always)]
pub(super) fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

fn q4_k(b: &[u8; 144], y: &mut [f32; 256]) {
    let d = half_at(b, 0);
    let dmin = half_at(b, 2);
    let scales = &b[4..16];
    let qs = &b[16..144];
    // Eight sub-blocks of 32; sub-blocks 2p and 2p + 1 are the low and high nibbles of
    // qs[32p .. 32p + 32].
    for p in 0..4 {
        let q = &qs[p * 32..p * 32 + 32];
        let (sc, m) = scale_min_k4(2 * p, scales);
        let (d1, m1) = (d * sc as f32, dmin * m as f32);
        let (sc, m) = scale_min_k4(2 * p + 1, scales);
        let (d2, m2) = (d * sc as f32, dmin * m as f32);
        let out = p * 64;
        for l in 0..32 {
            y[out + l] = d1 * (q[l] & 0x0f) as f32 - m1;
            y[out + 32 + l] = d2 * (q[l] >> 4) as f32 - m2;
        }
    }
}

fn q5_k(b: &[u8; 176], y: &mut [f32; 256]) {
    let d = half_at(b, 0);
    let dmin = half_at(b, 2);
    let scales = &b[4..16];
    let qh = &b[16..48];
    let qs = &b[48..176];
    // As Q4_K, plus a fifth bit: bit s of qh[l] for value l of sub-block s.
    for p in 0..4 {
        let q = &qs[p * 32..p * 32 + 32];
        let (sc, m) = scale_min_k4(2 * p, scales);
        let (d1, m1) = (d * sc as f32, dmin * m as f32);
        let (sc, m) = scale_min_k4(2 * p + 1, scales);
        let (d2, m2) = (d * sc as f32, dmin * m as f32);
        let (u1, u2) = (1u8 << (2 * p), 1u8 << (2 * p + 1));
        let out = p * 64;
        for l in 0..32 {
            let h1 = if qh[l] & u1 != 0 { 16 } else { 0 };
            let h2 = if qh[l] & u2 != 0 { 16 } else { 0 };
            y[out + l] = d1 * ((q[l] & 0x0f) + h1) as f32 - m1;
            y[out + 32 + l] = d2 * ((q[l] >> 4) + h2) as f32 - m2;
        }
    }
}

fn q6_k(b: &[u8; 210], y: &mut [f32; 256]) {
    let ql = &b[0..128];
    let qh = &b[128..192];
    let sc = &b[192..208];
    let d = half_at(b, 208);
    // Two halves of 128 values. In half h, value 32k + l (k = 0..4) takes its low nibble from
    // ql[64h + 32(k % 2) + l] (low nibble for k < 2, high for k >= 2) and its top two bits
    // from qh[32h + l] at shift 2k; values are biased by 32; every 16 share an i8 scale.
    for half in 0..2 {
        let ql = &ql[half * 64..half * 64 + 64];
        let qh = &qh[half * 32..half * 32 + 32];
        let sc = &sc[half * 8..half * 8 + 8];
        let out = half * 128;
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            y[out + l] = d * (sc[is] as i8) as f32 * q1 as f32;
            y[out + l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
            y[out + l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
            y[out + l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
        }
    }
}

fn q8_k(b: &[u8; 292], y: &mut [f32; 256]) {
    let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    for (y, &q) in y.iter_mut().zip(&b[4..260]) {
        *y = d * (q as i8) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        let mut codes: Vec<u32> = TYPES.iter().map(|t| t.0).collect();
        codes.dedup();
        assert_eq!(codes.len(), TYPES.len(), "codes are unique and sorted");
        for t in TYPES {
            let g = GgmlType::from_code(t.0).unwrap();
            assert_eq!(GgmlType::from_name(g.name), Some(g));
            // Every decodable type's kernel fills exactly one block from type_size bytes.
            if let Some(k) = g.kernel {
                let src = vec![0u8; g.type_size as usize];
                let mut dst = vec![f32::NAN; g.block as usize + 1];
                assert_eq!(k.dequantize(&src, &mut dst), g.block as usize, "{}", g.name);
                assert!(dst[..g.block as usize].iter().all(|v| *v == 0.0));
                assert!(
                    dst[g.block as usize].is_nan(),
                    "{} wrote past its block",
                    g.name
                );
            }
        }
        assert_eq!(GgmlType::from_code(4), None);
        assert_eq!(GgmlType::from_code(43), None);
        let q4k = GgmlType::from_name("Q4_K").unwrap();
        assert_eq!(q4k.bytes_for(512), Some(288));
        assert_eq!(q4k.bytes_for(100), None);
        assert_eq!(q4k.dtype(), DType::Ggml("Q4_K".into()));
        assert_eq!(
            GgmlType::from_name("IQ2_XS").unwrap().dtype(),
            DType::Other("IQ2_XS".into())
        );
    }

    #[test]
    fn half_widening_is_exact() {
        // Compare with the half crate on every non-NaN bit pattern.
        for h in 0..=u16::MAX {
            let ours = f16_to_f32(h);
            let theirs = half::f16::from_bits(h).to_f32();
            if theirs.is_nan() {
                assert!(ours.is_nan());
                assert_eq!(ours.to_bits() & 0x007f_ffff, u32::from(h & 0x3ff) << 13);
            } else {
                assert_eq!(ours.to_bits(), theirs.to_bits(), "{h:#06x}");
            }
        }
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
        assert_eq!(bf16_to_f32(0xc040), -3.0);
    }

    #[test]
    fn partial_buffers_decode_whole_blocks_only() {
        let mut src = vec![0u8; 2 * 18];
        src[0..2].copy_from_slice(&0x3c00u16.to_le_bytes()); // d = 1.0
        src[2] = 0x9f; // values 0 and 16: 15 - 8 = 7 and 9 - 8 = 1
        let mut dst = vec![0f32; 40];
        assert_eq!(Kernel::Q4_0.dequantize(&src, &mut dst), 32);
        assert_eq!((dst[0], dst[16], dst[1]), (7.0, 1.0, -8.0));
        assert_eq!(Kernel::Q4_0.dequantize(&src[..17], &mut dst), 0);
    }
}

//! Moments of quantized ggml blocks computed from their integer codes, without dequantizing.
//!
//! Every value of a quantized sub-block (16 or 32 values sharing a scale) is `a·u − b` for an
//! unsigned integer code `u` and two f32 numbers `a` and `b` decoded from the block's scales
//! (symmetric types are written the same way with `b = a·bias`, e.g. Q8_0 codes `q + 128` and
//! `b = 128·a`). When ggml's f32 arithmetic computes `a·u − b` exactly, which the layouts
//! guarantee for the symmetric types and [`exact_in_f32`] checks per sub-block for the types
//! with a minimum, the sub-block's moments follow from integer sums of its codes: with
//! `U1 = Σu`, `U2 = Σu²` and `n` values, the sum is `a·U1 − n·b` and the sum of squared
//! deviations from the sub-block mean is `a²·(n·U2 − U1²)/n`, an exact integer times `a²`.
//! The sum of absolute values splits at the first code where the sign changes (`Σu` and the
//! count over codes at or above it), the extremes come from the smallest and largest code.
//!
//! Sub-blocks are combined into blocks of [`BLOCK`] values, the same blocks
//! [`Accumulator::push`] would form from the dequantized values, with the same corrected
//! two-pass arithmetic (sub-block means are exact double-doubles, their deviations from the
//! block's first-pass mean are summed), and each block is merged into the accumulator exactly
//! as `push` merges it. The results differ from dequantize-then-accumulate only by the
//! rounding of the two summations (about 1e-16 relative; tests hold them within 1e-12), and
//! are a pure function of the bytes, so bit-for-bit reproducible at any thread count. A block
//! with a non-finite scale, or a sub-block whose values ggml would round, is dequantized and
//! pushed instead (so NaN and Inf are counted exactly as before).
//!
//! The code sums run with AVX2 when the CPU has it (chosen at run time) and in portable Rust
//! otherwise; both return the same integers, so the same bits.

use super::ggml::{f16_to_f32, Kernel};
use crate::stats::{fast_two_sum, two_sum, Accumulator, BlockSummary, BLOCK};

/// The smallest sub-block (Q2_K, Q3_K, Q6_K: 16 values per scale).
const MIN_SUB: usize = 16;
/// Sub-blocks in one block of [`BLOCK`] values at most.
const MAX_SUBS: usize = BLOCK / MIN_SUB;
/// `2^24`: an f32 holds every integer multiple of a power of two `g` below `2^24·g` exactly
/// (24-bit significand).
const F32_SPAN: f64 = 16_777_216.0;

/// How a ggml type's bytes map to codes and per-sub-block `(a, b)`.
#[derive(Clone, Copy)]
struct Layout {
    /// Elements per ggml block.
    block: usize,
    /// Bytes per ggml block.
    size: usize,
    /// Elements per sub-block (one `a` and `b`).
    sub: usize,
    /// Largest code.
    top: u8,
    /// `a·u − b` may need rounding in f32 (types with a separate minimum): checked per
    /// sub-block. The others are exact by construction: `b = a·2^k`, and the significands of
    /// the f16 scale, the integer sub-scale and the code need at most 23 bits together.
    check: bool,
    /// Decodes one ggml block: codes into `codes` (`block` of them), `a` and `b` of its
    /// sub-blocks into `a` and `b` (`block / sub` of each).
    unpack: fn(&[u8], &mut [u8], &mut [f32], &mut [f32]),
}

fn layout(kernel: Kernel) -> Option<Layout> {
    let l = |block, size, sub, top, check, unpack| {
        Some(Layout {
            block,
            size,
            sub,
            top,
            check,
            unpack,
        })
    };
    match kernel {
        Kernel::Q4_0 => l(32, 18, 32, 15, false, unpack_q4_0),
        Kernel::Q4_1 => l(32, 20, 32, 15, true, unpack_q4_1),
        Kernel::Q5_0 => l(32, 22, 32, 31, false, unpack_q5_0),
        Kernel::Q5_1 => l(32, 24, 32, 31, true, unpack_q5_1),
        Kernel::Q8_0 => l(32, 34, 32, 255, false, unpack_q8_0),
        Kernel::Q8_1 => l(32, 36, 32, 255, false, unpack_q8_1),
        Kernel::Q2_K => l(256, 84, 16, 3, true, unpack_q2_k),
        Kernel::Q3_K => l(256, 110, 16, 7, false, unpack_q3_k),
        Kernel::Q4_K => l(256, 144, 32, 15, true, unpack_q4_k),
        Kernel::Q5_K => l(256, 176, 32, 31, true, unpack_q5_k),
        Kernel::Q6_K => l(256, 210, 16, 63, false, unpack_q6_k),
        // Q8_K's scale is a full f32, so its products round: no exact form. Plain types have
        // nothing to gain.
        Kernel::Q8_K | Kernel::F32 | Kernel::F16 | Kernel::BF16 => None,
    }
}

/// True when this kernel has a code-sum path ([`accumulate`] accepts it).
pub(crate) fn supported(kernel: Kernel) -> bool {
    layout(kernel).is_some()
}

/// Buffers for one block of [`BLOCK`] values.
pub(crate) struct Scratch {
    codes: [u8; BLOCK],
    a: [f32; MAX_SUBS],
    b: [f32; MAX_SUBS],
    sums: [SubSums; MAX_SUBS],
    values: [f32; BLOCK],
}

impl Scratch {
    /// Fresh buffers (on the heap: 18 KiB).
    pub(crate) fn new() -> Box<Scratch> {
        Box::new(Scratch {
            codes: [0; BLOCK],
            a: [0.0; MAX_SUBS],
            b: [0.0; MAX_SUBS],
            sums: [SubSums::default(); MAX_SUBS],
            values: [0.0; BLOCK],
        })
    }
}

/// Accumulate the whole ggml blocks of `bytes` (of `kernel`'s type) into `acc`, block of
/// [`BLOCK`] values by block, as `acc.push` would with the dequantized values. Returns the
/// number of values, or `None` (and leaves `acc` alone) when `kernel` has no code-sum path.
pub(crate) fn accumulate(
    kernel: Kernel,
    bytes: &[u8],
    acc: &mut Accumulator,
    scratch: &mut Scratch,
) -> Option<u64> {
    let lay = layout(kernel)?;
    let per_group = BLOCK / lay.block;
    let mut n = 0u64;
    for group in bytes.chunks(per_group * lay.size) {
        let blocks = group.len() / lay.size;
        if blocks == 0 {
            break;
        }
        let group = &group[..blocks * lay.size];
        let values = blocks * lay.block;
        match summarise_group(&lay, group, scratch) {
            Some(s) => acc.merge_block(s),
            None => {
                let got = kernel.dequantize(group, &mut scratch.values[..values]);
                acc.push(&scratch.values[..got]);
            }
        }
        n += values as u64;
    }
    Some(n)
}

/// Integer sums over one sub-block's codes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct SubSums {
    /// Σu.
    u1: u32,
    /// Σu².
    u2: u32,
    /// Smallest and largest code.
    min: u8,
    max: u8,
    /// Σu and count over the codes `u >= t` (the sign threshold).
    above: u32,
    count: u32,
}

/// The moments of one block of codes, or `None` when a scale is not finite or ggml would
/// round a value (then the caller dequantizes).
fn summarise_group(lay: &Layout, group: &[u8], s: &mut Scratch) -> Option<BlockSummary> {
    let blocks = group.len() / lay.size;
    let subs_per_block = lay.block / lay.sub;
    for (k, blk) in group.chunks_exact(lay.size).enumerate() {
        let c = k * lay.block;
        let j = k * subs_per_block;
        (lay.unpack)(
            blk,
            &mut s.codes[c..c + lay.block],
            &mut s.a[j..j + subs_per_block],
            &mut s.b[j..j + subs_per_block],
        );
    }
    let subs = blocks * subs_per_block;
    let (a, b) = (&s.a[..subs], &s.b[..subs]);
    if !a.iter().chain(b).all(|x| x.is_finite()) {
        return None;
    }
    let mut thresholds = [0u8; MAX_SUBS];
    let mut beyond = [false; MAX_SUBS];
    for j in 0..subs {
        let t = threshold(a[j] as f64, b[j] as f64, lay.top);
        thresholds[j] = t.min(255) as u8;
        beyond[j] = t > u32::from(lay.top);
    }
    sums(
        lay.sub,
        &s.codes[..subs * lay.sub],
        &thresholds[..subs],
        &mut s.sums[..subs],
    );
    if lay.check {
        for j in 0..subs {
            let u = &s.sums[j];
            if !exact_in_f32(a[j], b[j], u.min, u.max) {
                return None;
            }
        }
    }
    Some(combine(lay.sub, a, b, &s.sums[..subs], &beyond[..subs]))
}

/// The first code `u` (0..=top + 1) from which `a·u − b` has the sign it has at the top
/// code: for `a > 0` the first `u` with `a·u >= b`, for `a < 0` the first with `a·u < b`.
/// Products `a·u` of an f32 and a byte are exact in f64, so the comparisons are exact.
fn threshold(a: f64, b: f64, top: u8) -> u32 {
    let top = u32::from(top);
    let past = |u: u32| {
        let x = a * u as f64;
        if a > 0.0 {
            x >= b
        } else {
            x < b
        }
    };
    if a == 0.0 || past(0) {
        return 0;
    }
    if !past(top) {
        return top + 1;
    }
    // past(0) is false and past(top) true: start from the quotient, then step to the exact
    // boundary (at most a step or two: the division is correctly rounded).
    let guess = (b / a).ceil();
    let mut t = if guess.is_finite() {
        guess.clamp(1.0, top as f64) as u32
    } else {
        top
    };
    while t > 1 && past(t - 1) {
        t -= 1;
    }
    while !past(t) {
        t += 1;
    }
    t
}

/// The lowest set bit of a finite f32 as a power of two in f64 (`+Inf` for zero).
fn lowest_bit(x: f32) -> f64 {
    let bits = x.to_bits() & 0x7fff_ffff;
    if bits == 0 {
        return f64::INFINITY;
    }
    let exp = (bits >> 23) as i32;
    let man = bits & 0x7f_ffff;
    // Normal numbers have the implicit bit; both have a unit of 2^(max(exp, 1) - 150).
    let sig = if exp == 0 { man } else { man | 0x80_0000 };
    let e = exp.max(1) - 150 + sig.trailing_zeros() as i32;
    f64::from_bits(((e + 1023) as u64) << 52)
}

/// True when f32 arithmetic gives `a·u − b` exactly for every code `u` in `lo..=hi`: all
/// those values are multiples of `g`, the smaller of the lowest set bits of `a` and `b`, and
/// they are exact when below `2^24·g` in magnitude; a linear function is largest at an end.
/// (`a·u` itself is exact: `a` has at most 17 significant bits and `u` at most 5 for these
/// types, which the `a·hi` bound checks too.)
fn exact_in_f32(a: f32, b: f32, lo: u8, hi: u8) -> bool {
    let limit = F32_SPAN * lowest_bit(a).min(lowest_bit(b));
    let product = (a as f64 * hi as f64).abs() < F32_SPAN * lowest_bit(a);
    let end = |u: u8| (a as f64 * u as f64 - b as f64).abs();
    product && end(lo) < limit && end(hi) < limit
}

/// Combine the sub-blocks of one block: first-pass mean from the sub-block sums, then the
/// exact sub-block means' deviations from it (corrected two-pass), plus each sub-block's own
/// sum of squared deviations, exact up to one rounding.
fn combine(sub: usize, a: &[f32], b: &[f32], sums: &[SubSums], beyond: &[bool]) -> BlockSummary {
    let len = sub as f64;
    // `sub` is a power of two, so dividing by it is exact.
    let inv_len = 1.0 / len;
    let n = (a.len() * sub) as f64;
    let mut total = 0.0;
    for ((&a, &b), s) in a.iter().zip(b).zip(sums) {
        total += a as f64 * s.u1 as f64 - len * b as f64;
    }
    let c = total / n;
    let (mut dev, mut dev2, mut within, mut abs) = (0.0, 0.0, 0.0, 0.0);
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    for (((&a, &b), s), &beyond) in a.iter().zip(b).zip(sums).zip(beyond) {
        let (a, b) = (a as f64, b as f64);
        let u1 = s.u1 as f64;
        // The sub-block mean a·U1/len − b, exactly, as a double-double.
        let (hi, lo) = two_sum(a * u1 * inv_len, -b);
        let d = (hi - c) + lo;
        dev += d;
        dev2 += d * d;
        // len·U2 − U1² is an exact integer (< 2^36).
        let spread = (sub as i64 * i64::from(s.u2) - i64::from(s.u1) * i64::from(s.u1)) as f64;
        within += (a * a) * spread;
        let (above, count) = if beyond {
            (0.0, 0.0)
        } else {
            (s.above as f64, s.count as f64)
        };
        let upper = a * above - b * count;
        let lower = a * (u1 - above) - b * (len - count);
        abs += if a > 0.0 {
            upper - lower
        } else if a < 0.0 {
            lower - upper
        } else {
            len * b.abs()
        };
        let (x, y) = (a * s.min as f64 - b, a * s.max as f64 - b);
        let (lo_v, hi_v) = if a >= 0.0 { (x, y) } else { (y, x) };
        min = min.min(lo_v);
        max = max.max(hi_v);
    }
    let dev_sum = dev * len;
    let ss = dev2 * len + within * inv_len;
    let m2 = (ss - dev_sum * dev_sum / n).max(0.0);
    let (mean, mean_lo) = fast_two_sum(c, dev_sum / n);
    BlockSummary {
        count: n as u64,
        mean,
        mean_lo,
        m2,
        min,
        max,
        abs_sum: abs,
        sq_sum: m2 + n * (mean * mean),
    }
}

/// Integer sums of every sub-block of `sub` codes, `t[j]` the threshold of sub-block `j`.
fn sums(sub: usize, codes: &[u8], t: &[u8], out: &mut [SubSums]) {
    #[cfg(target_arch = "x86_64")]
    {
        if avx2::available() {
            // SAFETY: the CPU supports AVX2.
            unsafe { avx2::sums(sub, codes, t, out) };
            return;
        }
    }
    sums_portable(sub, codes, t, out)
}

fn sums_portable(sub: usize, codes: &[u8], t: &[u8], out: &mut [SubSums]) {
    for ((c, &t), o) in codes.chunks_exact(sub).zip(t).zip(out.iter_mut()) {
        *o = sub_sums(c, t);
    }
}

#[inline(always)]
fn sub_sums(codes: &[u8], t: u8) -> SubSums {
    let mut s = SubSums {
        min: u8::MAX,
        ..SubSums::default()
    };
    for &u in codes {
        let w = u32::from(u);
        s.u1 += w;
        s.u2 += w * w;
        s.min = s.min.min(u);
        s.max = s.max.max(u);
        let ge = u32::from(u >= t);
        s.above += w * ge;
        s.count += ge;
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Unpacking: one ggml block into codes and (a, b) per sub-block. The byte layouts are those
// of the dequantizers in `ggml.rs` (which document them); the codes are the dequantizers'
// integers shifted to be unsigned, and each `a`, `b` is formed with the same f32 operations
// as the dequantizer forms its scale and offset.

#[inline(always)]
fn half_at(b: &[u8], i: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[i], b[i + 1]]))
}

#[inline(always)]
fn nibbles(qs: &[u8], codes: &mut [u8]) {
    let (lo, hi) = codes.split_at_mut(qs.len());
    for ((l, h), &q) in lo.iter_mut().zip(hi).zip(qs) {
        *l = q & 0x0f;
        *h = q >> 4;
    }
}

fn unpack_q4_0(b: &[u8], codes: &mut [u8], a: &mut [f32], off: &mut [f32]) {
    let d = half_at(b, 0);
    nibbles(&b[2..18], codes);
    // y = (u - 8)·d
    a[0] = d;
    off[0] = 8.0 * d;
}

fn unpack_q4_1(b: &[u8], codes: &mut [u8], a: &mut [f32], off: &mut [f32]) {
    nibbles(&b[4..20], codes);
    // y = u·d + m
    a[0] = half_at(b, 0);
    off[0] = -half_at(b, 2);
}

#[inline(always)]
fn fifth_bits(qh: u32, codes: &mut [u8]) {
    for (j, c) in codes.iter_mut().enumerate().take(32) {
        *c |= (((qh >> j) & 1) << 4) as u8;
    }
}

fn unpack_q5_0(b: &[u8], codes: &mut [u8], a: &mut [f32], off: &mut [f32]) {
    let d = half_at(b, 0);
    nibbles(&b[6..22], codes);
    fifth_bits(u32::from_le_bytes([b[2], b[3], b[4], b[5]]), codes);
    a[0] = d;
    off[0] = 16.0 * d;
}

fn unpack_q5_1(b: &[u8], codes: &mut [u8], a: &mut [f32], off: &mut [f32]) {
    nibbles(&b[8..24], codes);
    fifth_bits(u32::from_le_bytes([b[4], b[5], b[6], b[7]]), codes);
    a[0] = half_at(b, 0);
    off[0] = -half_at(b, 2);
}

fn unpack_q8(b: &[u8], start: usize, codes: &mut [u8], a: &mut [f32], off: &mut [f32]) {
    let d = half_at(b, 0);
    for (c, &q) in codes.iter_mut().zip(&b[start..start + 32]) {
        // i8 q as u = q + 128.
        *c = q ^ 0x80;
    }
    a[0] = d;
    off[0] = 128.0 * d;
}

fn unpack_q8_0(b: &[u8], codes: &mut [u8], a: &mut [f32], off: &mut [f32]) {
    unpack_q8(b, 2, codes, a, off)
}

fn unpack_q8_1(b: &[u8], codes: &mut [u8], a: &mut [f32], off: &mut [f32]) {
    unpack_q8(b, 4, codes, a, off)
}

fn unpack_q2_k(b: &[u8], codes: &mut [u8], a: &mut [f32], off: &mut [f32]) {
    let scales = &b[0..16];
    let qs = &b[16..80];
    let d = half_at(b, 80);
    let dmin = half_at(b, 82);
    for half in 0..2 {
        let q = &qs[half * 32..half * 32 + 32];
        for j in 0..4 {
            for g in 0..2 {
                let out = half * 128 + j * 32 + g * 16;
                for l in 0..16 {
                    codes[out + l] = (q[g * 16 + l] >> (2 * j)) & 3;
                }
            }
        }
    }
    for (i, &sc) in scales.iter().enumerate() {
        // y = (d·(sc & 15))·u − dmin·(sc >> 4)
        a[i] = d * (sc & 0x0f) as f32;
        off[i] = dmin * (sc >> 4) as f32;
    }
}

fn unpack_q3_k(b: &[u8], codes: &mut [u8], a: &mut [f32], off: &mut [f32]) {
    let hmask = &b[0..32];
    let qs = &b[32..96];
    let packed = &b[96..108];
    let d = half_at(b, 108);
    for (i, (a, off)) in a.iter_mut().zip(off.iter_mut()).enumerate().take(16) {
        let low = if i < 8 {
            packed[i] & 0x0f
        } else {
            packed[i - 8] >> 4
        };
        let high = (packed[8 + i % 4] >> (2 * (i / 4))) & 3;
        // y = (d·s)·(u − 4) with the signed six-bit scale s.
        *a = d * (i32::from(low | (high << 4)) - 32) as f32;
        *off = 4.0 * *a;
    }
    for half in 0..2 {
        let q = &qs[half * 32..half * 32 + 32];
        for j in 0..4 {
            let m = 1u8 << (4 * half + j);
            for g in 0..2 {
                let out = half * 128 + j * 32 + g * 16;
                for l in 0..16 {
                    let k = g * 16 + l;
                    let high = if hmask[k] & m != 0 { 4 } else { 0 };
                    codes[out + l] = ((q[k] >> (2 * j)) & 3) + high;
                }
            }
        }
    }
}

/// Scale and min of sub-block `j` of Q4_K / Q5_K (as `ggml::scale_min_k4`).
#[inline(always)]
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

#[inline(always)]
fn k4_scales(b: &[u8], a: &mut [f32], off: &mut [f32]) {
    let d = half_at(b, 0);
    let dmin = half_at(b, 2);
    for j in 0..8 {
        let (sc, m) = scale_min_k4(j, &b[4..16]);
        // y = (d·sc)·u − dmin·m
        a[j] = d * sc as f32;
        off[j] = dmin * m as f32;
    }
}

fn unpack_q4_k(b: &[u8], codes: &mut [u8], a: &mut [f32], off: &mut [f32]) {
    k4_scales(b, a, off);
    for p in 0..4 {
        nibbles(
            &b[16 + p * 32..16 + p * 32 + 32],
            &mut codes[p * 64..p * 64 + 64],
        );
    }
}

fn unpack_q5_k(b: &[u8], codes: &mut [u8], a: &mut [f32], off: &mut [f32]) {
    k4_scales(b, a, off);
    let qh = &b[16..48];
    for p in 0..4 {
        let out = &mut codes[p * 64..p * 64 + 64];
        nibbles(&b[48 + p * 32..48 + p * 32 + 32], out);
        let (lo, hi) = out.split_at_mut(32);
        for l in 0..32 {
            lo[l] |= ((qh[l] >> (2 * p)) & 1) << 4;
            hi[l] |= ((qh[l] >> (2 * p + 1)) & 1) << 4;
        }
    }
}

fn unpack_q6_k(b: &[u8], codes: &mut [u8], a: &mut [f32], off: &mut [f32]) {
    let d = half_at(b, 208);
    for (i, (a, off)) in a.iter_mut().zip(off.iter_mut()).enumerate().take(16) {
        // y = (d·sc)·(u − 32)
        *a = d * (b[192 + i] as i8) as f32;
        *off = 32.0 * *a;
    }
    for half in 0..2 {
        let ql = &b[half * 64..half * 64 + 64];
        let qh = &b[128 + half * 32..128 + half * 32 + 32];
        let out = &mut codes[half * 128..half * 128 + 128];
        for l in 0..32 {
            out[l] = (ql[l] & 0x0f) | ((qh[l] & 3) << 4);
            out[l + 32] = (ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4);
            out[l + 64] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
            out[l + 96] = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
        }
    }
}

/// The code sums with AVX2: 32 codes per register.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::SubSums;

    /// True when the CPU has AVX2 (cached by the standard library after the first call).
    #[inline(always)]
    pub(super) fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx2")
    }

    /// [`super::sums_portable`], with the same results.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn sums(sub: usize, codes: &[u8], t: &[u8], out: &mut [SubSums]) {
        let subs = out.len().min(t.len()).min(codes.len() / sub);
        let p = codes.as_ptr();
        let zero = _mm256_setzero_si256();
        let ones = _mm256_set1_epi8(1);
        let mut j = 0;
        while j < subs {
            // One register: one sub-block of 32, or two of 16 (one per 128-bit half).
            let v = _mm256_loadu_si256(p.add(j * sub).cast());
            let tv = if sub == 32 {
                _mm256_set1_epi8(t[j] as i8)
            } else {
                _mm256_setr_m128i(_mm_set1_epi8(t[j] as i8), _mm_set1_epi8(t[j + 1] as i8))
            };
            // u >= t  <=>  max(u, t) == u
            let ge = _mm256_cmpeq_epi8(_mm256_max_epu8(v, tv), v);
            let s1 = _mm256_sad_epu8(v, zero);
            let sa = _mm256_sad_epu8(_mm256_and_si256(v, ge), zero);
            let sc = _mm256_sad_epu8(_mm256_and_si256(ge, ones), zero);
            // Squares: widen to 16 bits, multiply-add pairs into 32-bit lanes.
            let lo = _mm256_unpacklo_epi8(v, zero);
            let hi = _mm256_unpackhi_epi8(v, zero);
            let sq = _mm256_add_epi32(_mm256_madd_epi16(lo, lo), _mm256_madd_epi16(hi, hi));
            let mut q1 = [0u64; 4];
            let mut qa = [0u64; 4];
            let mut qc = [0u64; 4];
            let mut q2 = [0u32; 8];
            _mm256_storeu_si256(q1.as_mut_ptr().cast(), s1);
            _mm256_storeu_si256(qa.as_mut_ptr().cast(), sa);
            _mm256_storeu_si256(qc.as_mut_ptr().cast(), sc);
            _mm256_storeu_si256(q2.as_mut_ptr().cast(), sq);
            // Per 128-bit half: min and max of its 16 bytes.
            let (lo_min, lo_max) = min_max16(_mm256_castsi256_si128(v));
            let (hi_min, hi_max) = min_max16(_mm256_extracti128_si256::<1>(v));
            // unpack{lo,hi} interleave within 128-bit halves: lanes 0-3 of q2 hold the
            // squares of the low half, 4-7 those of the high half.
            let half = |k: usize, mn: u8, mx: u8| SubSums {
                u1: (q1[2 * k] + q1[2 * k + 1]) as u32,
                u2: q2[4 * k] + q2[4 * k + 1] + q2[4 * k + 2] + q2[4 * k + 3],
                min: mn,
                max: mx,
                above: (qa[2 * k] + qa[2 * k + 1]) as u32,
                count: (qc[2 * k] + qc[2 * k + 1]) as u32,
            };
            let (a, b) = (half(0, lo_min, lo_max), half(1, hi_min, hi_max));
            if sub == 32 {
                out[j] = SubSums {
                    u1: a.u1 + b.u1,
                    u2: a.u2 + b.u2,
                    min: a.min.min(b.min),
                    max: a.max.max(b.max),
                    above: a.above + b.above,
                    count: a.count + b.count,
                };
                j += 1;
            } else {
                out[j] = a;
                out[j + 1] = b;
                j += 2;
            }
        }
    }

    /// Smallest and largest of 16 bytes.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn min_max16(v: __m128i) -> (u8, u8) {
        let mask = _mm_set1_epi16(0x00ff);
        // Pairs of bytes to one 16-bit lane each, then the unsigned-16-bit minimum.
        let mn = _mm_min_epu8(v, _mm_srli_epi16::<8>(v));
        let mn = _mm_minpos_epu16(_mm_and_si128(mn, mask));
        let inv = _mm_xor_si128(v, _mm_set1_epi8(-1));
        let mx = _mm_min_epu8(inv, _mm_srli_epi16::<8>(inv));
        let mx = _mm_minpos_epu16(_mm_and_si128(mx, mask));
        (_mm_cvtsi128_si32(mn) as u8, !(_mm_cvtsi128_si32(mx) as u8))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_bit_of_normals_and_subnormals() {
        assert_eq!(lowest_bit(1.0), 1.0);
        assert_eq!(lowest_bit(3.0), 1.0);
        assert_eq!(lowest_bit(-6.0), 2.0);
        assert_eq!(lowest_bit(0.75), 0.25);
        assert_eq!(lowest_bit(f32::from_bits(1)), 2f64.powi(-149));
        assert_eq!(lowest_bit(f32::MIN_POSITIVE), 2f64.powi(-126));
        assert_eq!(lowest_bit(0.0), f64::INFINITY);
    }

    #[test]
    fn exactness_check_matches_f32_arithmetic() {
        // Against brute force: every code of random scales, computed as ggml does in f32.
        let mut s = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let (mut exact, mut inexact) = (0, 0);
        for _ in 0..20_000 {
            let d = f16_to_f32((next() % 0x7c00) as u16);
            let dmin = f16_to_f32((next() % 0x7c00) as u16);
            let a = d * (next() % 64) as f32;
            let b = dmin * (next() % 64) as f32;
            let (lo, hi) = ((next() % 16) as u8, 15u8);
            let lo = lo.min(hi);
            let all =
                (lo..=hi).all(|u| (a * u as f32 - b) as f64 == a as f64 * u as f64 - b as f64);
            if exact_in_f32(a, b, lo, hi) {
                assert!(all, "claimed exact: a {a} b {b} codes {lo}..={hi}");
                exact += 1;
            } else {
                inexact += 1;
            }
        }
        assert!(exact > 1000 && inexact > 1000, "{exact} {inexact}");
    }

    #[test]
    fn thresholds_split_signs_exactly() {
        for (a, b) in [
            (0.5, 3.0),
            (0.5, 3.1),
            (-0.25, -1.0),
            (1.0, -5.0),
            (1.0, 100.0),
            (0.0, 2.0),
            (-1.0, 5.0),
            (3.0, 0.0),
        ] {
            let t = threshold(a, b, 15);
            for u in 0..=15u32 {
                let v = a * u as f64 - b;
                let upper = u >= t;
                if a > 0.0 {
                    assert_eq!(upper, v >= 0.0, "a {a} b {b} u {u} t {t}");
                } else if a < 0.0 {
                    assert_eq!(upper, v < 0.0, "a {a} b {b} u {u} t {t}");
                }
            }
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn simd_and_portable_sums_agree() {
        if !avx2::available() {
            eprintln!("SKIPPED: simd_and_portable_sums_agree: no AVX2 on this CPU");
            return;
        }
        let mut s = 99u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for sub in [16usize, 32] {
            for top in [3u8, 15, 63, 255] {
                let codes: Vec<u8> = (0..BLOCK)
                    .map(|_| (next() % (top as u64 + 1)) as u8)
                    .collect();
                let subs = BLOCK / sub;
                let t: Vec<u8> = (0..subs)
                    .map(|_| (next() % (top as u64 + 1)) as u8)
                    .collect();
                let mut x = vec![SubSums::default(); subs];
                let mut y = vec![SubSums::default(); subs];
                sums_portable(sub, &codes, &t, &mut x);
                // SAFETY: AVX2 is present (checked above).
                unsafe { avx2::sums(sub, &codes, &t, &mut y) };
                assert_eq!(x, y, "sub {sub} top {top}");
            }
        }
    }
}

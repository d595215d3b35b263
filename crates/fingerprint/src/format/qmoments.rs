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

use super::ggml::{half_at, q3_k_scales, scale_min_k4, Kernel};
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
    kernel: Kernel,
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
}

fn layout(kernel: Kernel) -> Option<Layout> {
    let l = |block, size, sub, top, check| {
        Some(Layout {
            kernel,
            block,
            size,
            sub,
            top,
            check,
        })
    };
    match kernel {
        Kernel::Q4_0 => l(32, 18, 32, 15, false),
        Kernel::Q4_1 => l(32, 20, 32, 15, true),
        Kernel::Q5_0 => l(32, 22, 32, 31, false),
        Kernel::Q5_1 => l(32, 24, 32, 31, true),
        Kernel::Q8_0 => l(32, 34, 32, 255, false),
        Kernel::Q8_1 => l(32, 36, 32, 255, false),
        Kernel::Q2_K => l(256, 84, 16, 3, true),
        Kernel::Q3_K => l(256, 110, 16, 7, false),
        Kernel::Q4_K => l(256, 144, 32, 15, true),
        Kernel::Q5_K => l(256, 176, 32, 31, true),
        Kernel::Q6_K => l(256, 210, 16, 63, false),
        // Q8_K's scale is a full f32, so its products round: no exact form. Plain types have
        // nothing to gain.
        Kernel::Q8_K | Kernel::F32 | Kernel::F16 | Kernel::BF16 => None,
    }
}

/// True when this kernel has a code-sum path ([`accumulate`] accepts it).
pub(crate) fn supported(kernel: Kernel) -> bool {
    layout(kernel).is_some()
}

/// Integer sums over each sub-block's codes (one entry per sub-block).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Sums {
    /// Σu.
    u1: [u32; MAX_SUBS],
    /// Σu².
    u2: [u32; MAX_SUBS],
    /// Smallest and largest code.
    min: [u8; MAX_SUBS],
    max: [u8; MAX_SUBS],
    /// Σu and count over the codes `u >= t` (the sign threshold).
    above: [u32; MAX_SUBS],
    count: [u32; MAX_SUBS],
}

impl Sums {
    const fn new() -> Self {
        Sums {
            u1: [0; MAX_SUBS],
            u2: [0; MAX_SUBS],
            min: [0; MAX_SUBS],
            max: [0; MAX_SUBS],
            above: [0; MAX_SUBS],
            count: [0; MAX_SUBS],
        }
    }
}

/// Buffers for one block of [`BLOCK`] values.
pub(crate) struct Scratch {
    codes: [u8; BLOCK],
    a: [f32; MAX_SUBS],
    b: [f32; MAX_SUBS],
    /// Sign threshold per sub-block (see [`thresholds`]), and whether it lies past the top code.
    t: [u8; MAX_SUBS],
    beyond: [bool; MAX_SUBS],
    sums: Sums,
    /// Per-sub-block terms of [`combine`].
    terms: [[f64; MAX_SUBS]; 7],
    values: [f32; BLOCK],
}

impl Scratch {
    /// Fresh buffers (on the heap: about 26 KiB).
    pub(crate) fn new() -> Box<Scratch> {
        Box::new(Scratch {
            codes: [0; BLOCK],
            a: [0.0; MAX_SUBS],
            b: [0.0; MAX_SUBS],
            t: [0; MAX_SUBS],
            beyond: [false; MAX_SUBS],
            sums: Sums::new(),
            terms: [[0.0; MAX_SUBS]; 7],
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
    #[cfg(target_arch = "x86_64")]
    {
        if avx2::available() {
            // SAFETY: the CPU supports AVX2.
            return Some(unsafe { avx2::accumulate(&lay, bytes, acc, scratch) });
        }
    }
    Some(accumulate_with(&lay, bytes, acc, scratch, sums_portable))
}

/// [`accumulate`] with a given code-sum kernel (inlined into each instruction set's copy).
#[inline(always)]
fn accumulate_with(
    lay: &Layout,
    bytes: &[u8],
    acc: &mut Accumulator,
    s: &mut Scratch,
    sums: impl Fn(usize, &[u8], &[u8], &mut Sums),
) -> u64 {
    let per_group = BLOCK / lay.block;
    let mut n = 0u64;
    for group in bytes.chunks(per_group * lay.size) {
        let blocks = group.len() / lay.size;
        if blocks == 0 {
            break;
        }
        let group = &group[..blocks * lay.size];
        let values = blocks * lay.block;
        match summarise_group(lay, group, s, &sums) {
            Some(summary) => acc.merge_block(summary),
            None => {
                let got = lay.kernel.dequantize(group, &mut s.values[..values]);
                acc.push(&s.values[..got]);
            }
        }
        n += values as u64;
    }
    n
}

/// The moments of one block of codes, or `None` when a scale is not finite or ggml would
/// round a value (then the caller dequantizes).
#[inline(always)]
fn summarise_group(
    lay: &Layout,
    group: &[u8],
    s: &mut Scratch,
    sums: &impl Fn(usize, &[u8], &[u8], &mut Sums),
) -> Option<BlockSummary> {
    let blocks = group.len() / lay.size;
    let per_block = lay.block / lay.sub;
    for (k, blk) in group.chunks_exact(lay.size).enumerate() {
        let c = k * lay.block;
        let j = k * per_block;
        unpack(
            lay.kernel,
            blk,
            &mut s.codes[c..c + lay.block],
            &mut s.a[j..j + per_block],
            &mut s.b[j..j + per_block],
        );
    }
    let subs = blocks * per_block;
    let (a, b) = (&s.a[..subs], &s.b[..subs]);
    let mut finite = true;
    for (&a, &b) in a.iter().zip(b) {
        finite &= a.is_finite() & b.is_finite();
    }
    if !finite {
        return None;
    }
    let [tf, ..] = &mut s.terms;
    thresholds(
        a,
        b,
        lay.top,
        &mut tf[..subs],
        &mut s.t[..subs],
        &mut s.beyond[..subs],
    );
    sums(
        lay.sub,
        &s.codes[..subs * lay.sub],
        &s.t[..subs],
        &mut s.sums,
    );
    if lay.check && !exact_in_f32(a, b, &s.sums, subs) {
        return None;
    }
    Some(combine(
        lay.sub,
        a,
        b,
        &s.sums,
        &s.beyond[..subs],
        &mut s.terms,
    ))
}

/// Per sub-block, the first code `u` (0..=top + 1) from which `a·u − b` has the sign it has at
/// the top code: for `a > 0` the first `u` with `a·u >= b`, for `a < 0` the first with
/// `a·u < b` (any for `a = 0`). Products `a·u` of an f32 and a byte are exact in f64, so the
/// comparisons are exact; the correctly rounded quotient is off by at most one, which one
/// step each way corrects. `t` gets it capped at 255, `beyond` whether it is past the top.
#[inline(always)]
fn thresholds(a: &[f32], b: &[f32], top: u8, tf: &mut [f64], t: &mut [u8], beyond: &mut [bool]) {
    let done = {
        #[cfg(target_arch = "x86_64")]
        {
            if avx2::available() {
                // SAFETY: the CPU supports AVX2.
                unsafe { avx2::thresholds(a, b, top as f64, tf) }
            } else {
                0
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        0
    };
    thresholds_portable(&a[done..], &b[done..], top, &mut tf[done..]);
    let top = top as f64;
    for ((&u, t), beyond) in tf.iter().zip(t.iter_mut()).zip(beyond.iter_mut()) {
        *beyond = u > top;
        *t = u.min(255.0) as u8;
    }
}

/// The thresholds of [`thresholds`] as f64, one sub-block at a time.
#[inline(always)]
fn thresholds_portable(a: &[f32], b: &[f32], top: u8, tf: &mut [f64]) {
    let top = top as f64;
    for ((&a, &b), tf) in a.iter().zip(b).zip(tf.iter_mut()) {
        let (a, b) = (a as f64, b as f64);
        let q = b / a;
        let guess = if a > 0.0 { q.ceil() } else { q.floor() + 1.0 };
        // `max` drops a NaN guess (a = 0).
        let u = guess.max(0.0).min(top + 1.0);
        let past = |u: f64| if a > 0.0 { a * u >= b } else { a * u < b };
        let u = if u > 0.0 && past(u - 1.0) { u - 1.0 } else { u };
        *tf = if u <= top && !past(u) { u + 1.0 } else { u };
    }
}

/// The lowest set bit of a finite f32 as a power of two (`+Inf` for zero): the value minus
/// itself with that bit cleared (exact: same exponent), or the value itself when its
/// significand field is empty (a power of two).
#[inline(always)]
fn lowest_bit(x: f32) -> f32 {
    let bits = x.to_bits() & 0x7fff_ffff;
    let whole = f32::from_bits(bits);
    let low = if bits & 0x7f_ffff == 0 {
        whole
    } else {
        whole - f32::from_bits(bits & bits.wrapping_sub(1))
    };
    if bits == 0 {
        f32::INFINITY
    } else {
        low
    }
}

/// True when f32 arithmetic gives `a·u − b` exactly for every code `u` between each
/// sub-block's smallest and largest: those values are multiples of `g`, the smaller of the
/// lowest set bits of `a` and `b`, and are exact when below `2^24·g` in magnitude; a linear
/// function is largest at an end. (`a·u` itself is exact: `a` has at most 17 significant
/// bits and `u` at most 5 for these types, which the `a·max` bound checks too.)
#[inline(always)]
fn exact_in_f32(a: &[f32], b: &[f32], sums: &Sums, subs: usize) -> bool {
    let mut ok = true;
    for j in 0..subs {
        let (la, lb) = (lowest_bit(a[j]), lowest_bit(b[j]));
        let limit = F32_SPAN * la.min(lb) as f64;
        let (x, y) = (a[j] as f64, b[j] as f64);
        let (lo, hi) = (sums.min[j] as f64, sums.max[j] as f64);
        ok &= ((x * hi).abs() < F32_SPAN * la as f64)
            & ((x * lo - y).abs() < limit)
            & ((x * hi - y).abs() < limit);
    }
    ok
}

/// Combine the sub-blocks of one block: first-pass mean from the sub-block sums, then the
/// exact sub-block means' deviations from it (corrected two-pass), plus each sub-block's own
/// sum of squared deviations, exact up to one rounding. Element-wise terms first, then sums
/// over [`WAYS`] interleaved partial sums folded in a fixed order (so the compiler can
/// vectorise them and the result does not depend on how).
#[inline(always)]
fn combine(
    sub: usize,
    a: &[f32],
    b: &[f32],
    s: &Sums,
    beyond: &[bool],
    terms: &mut [[f64; MAX_SUBS]; 7],
) -> BlockSummary {
    let subs = a.len();
    // Pad to a multiple of WAYS with sub-blocks that add nothing.
    let padded = subs.next_multiple_of(WAYS);
    let len = sub as f64;
    // `sub` is a power of two, so dividing by it is exact.
    let inv_len = 1.0 / len;
    let n = (subs * sub) as f64;
    let [sum, within, abs, lo, hi, mean, mean_lo] = terms;
    for j in 0..subs {
        let (x, y) = (a[j] as f64, b[j] as f64);
        let (u1, u2) = (s.u1[j] as f64, s.u2[j] as f64);
        sum[j] = x * u1 - len * y;
        // len·U2 − U1² is an exact integer (< 2^27), exact in f64 too.
        within[j] = (x * x) * (len * u2 - u1 * u1);
        let (above, count) = if beyond[j] {
            (0.0, 0.0)
        } else {
            (s.above[j] as f64, s.count[j] as f64)
        };
        let upper = x * above - y * count;
        let lower = x * (u1 - above) - y * (len - count);
        abs[j] = if x > 0.0 {
            upper - lower
        } else if x < 0.0 {
            lower - upper
        } else {
            len * y.abs()
        };
        let (p, q) = (x * s.min[j] as f64 - y, x * s.max[j] as f64 - y);
        lo[j] = if x >= 0.0 { p } else { q };
        hi[j] = if x >= 0.0 { q } else { p };
        // The sub-block mean a·U1/len − b, exactly, as a double-double.
        (mean[j], mean_lo[j]) = two_sum(x * u1 * inv_len, -y);
    }
    for j in subs..padded {
        (sum[j], within[j], abs[j]) = (0.0, 0.0, 0.0);
        (lo[j], hi[j]) = (f64::INFINITY, f64::NEG_INFINITY);
    }
    let mut total = [0.0; WAYS];
    for j in (0..padded).step_by(WAYS) {
        for w in 0..WAYS {
            total[w] += sum[j + w];
        }
    }
    let c = fold(total, |x, y| x + y) / n;
    let (mut dev, mut dev2, mut inner, mut abs_sum) =
        ([0.0; WAYS], [0.0; WAYS], [0.0; WAYS], [0.0; WAYS]);
    let (mut min, mut max) = ([f64::INFINITY; WAYS], [f64::NEG_INFINITY; WAYS]);
    for (m, &m_lo) in mean[..subs].iter_mut().zip(&mean_lo[..subs]) {
        *m = (*m - c) + m_lo;
    }
    mean[subs..padded].fill(0.0);
    for j in (0..padded).step_by(WAYS) {
        for w in 0..WAYS {
            let d = mean[j + w];
            dev[w] += d;
            dev2[w] += d * d;
            inner[w] += within[j + w];
            abs_sum[w] += abs[j + w];
            min[w] = if lo[j + w] < min[w] {
                lo[j + w]
            } else {
                min[w]
            };
            max[w] = if hi[j + w] > max[w] {
                hi[j + w]
            } else {
                max[w]
            };
        }
    }
    let add = |x: f64, y: f64| x + y;
    let dev_sum = fold(dev, add) * len;
    let ss = fold(dev2, add) * len + fold(inner, add) * inv_len;
    let m2 = (ss - dev_sum * dev_sum / n).max(0.0);
    let (mean, mean_lo) = fast_two_sum(c, dev_sum / n);
    BlockSummary {
        count: n as u64,
        mean,
        mean_lo,
        m2,
        min: fold(min, f64::min),
        max: fold(max, f64::max),
        abs_sum: fold(abs_sum, add),
        sq_sum: m2 + n * (mean * mean),
    }
}

/// Partial sums per reduction in [`combine`].
const WAYS: usize = 4;

/// `WAYS` partial results in a fixed tree order.
#[inline(always)]
fn fold(l: [f64; WAYS], f: impl Fn(f64, f64) -> f64) -> f64 {
    f(f(l[0], l[1]), f(l[2], l[3]))
}

/// The code sums of every sub-block of `sub` codes, `t[j]` the threshold of sub-block `j`.
fn sums_portable(sub: usize, codes: &[u8], t: &[u8], out: &mut Sums) {
    for (j, (c, &t)) in codes.chunks_exact(sub).zip(t).enumerate() {
        let (mut u1, mut u2, mut above, mut count) = (0u32, 0u32, 0u32, 0u32);
        let (mut min, mut max) = (u8::MAX, 0u8);
        for &u in c {
            let w = u32::from(u);
            u1 += w;
            u2 += w * w;
            min = min.min(u);
            max = max.max(u);
            let ge = u32::from(u >= t);
            above += w * ge;
            count += ge;
        }
        out.u1[j] = u1;
        out.u2[j] = u2;
        out.min[j] = min;
        out.max[j] = max;
        out.above[j] = above;
        out.count[j] = count;
    }
}

/// Decode one ggml block of `kernel` (one of [`layout`]'s).
#[inline(always)]
fn unpack(kernel: Kernel, b: &[u8], codes: &mut [u8], a: &mut [f32], off: &mut [f32]) {
    match kernel {
        Kernel::Q4_0 => unpack_q4_0(b, codes, a, off),
        Kernel::Q4_1 => unpack_q4_1(b, codes, a, off),
        Kernel::Q5_0 => unpack_q5_0(b, codes, a, off),
        Kernel::Q5_1 => unpack_q5_1(b, codes, a, off),
        Kernel::Q8_0 => unpack_q8(b, 2, codes, a, off),
        Kernel::Q8_1 => unpack_q8(b, 4, codes, a, off),
        Kernel::Q2_K => unpack_q2_k(b, codes, a, off),
        Kernel::Q3_K => unpack_q3_k(b, codes, a, off),
        Kernel::Q4_K => unpack_q4_k(b, codes, a, off),
        Kernel::Q5_K => unpack_q5_k(b, codes, a, off),
        Kernel::Q6_K => unpack_q6_k(b, codes, a, off),
        Kernel::Q8_K | Kernel::F32 | Kernel::F16 | Kernel::BF16 => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Unpacking: one ggml block into codes and (a, b) per sub-block. The byte layouts are those
// of the dequantizers in `ggml.rs` (which document them); the codes are the dequantizers'
// integers shifted to be unsigned, and each `a`, `b` is formed with the same f32 operations
// as the dequantizer forms its scale and offset.

#[inline(always)]
fn nibbles(qs: &[u8], codes: &mut [u8]) {
    let (lo, hi) = codes.split_at_mut(qs.len());
    for ((l, h), &q) in lo.iter_mut().zip(hi).zip(qs) {
        *l = q & 0x0f;
        *h = q >> 4;
    }
}

#[inline(always)]
fn unpack_q4_0(b: &[u8], codes: &mut [u8], a: &mut [f32], off: &mut [f32]) {
    let d = half_at(b, 0);
    nibbles(&b[2..18], codes);
    // y = (u - 8)·d
    a[0] = d;
    off[0] = 8.0 * d;
}

#[inline(always)]
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

#[inline(always)]
fn unpack_q5_0(b: &[u8], codes: &mut [u8], a: &mut [f32], off: &mut [f32]) {
    let d = half_at(b, 0);
    nibbles(&b[6..22], codes);
    fifth_bits(u32::from_le_bytes([b[2], b[3], b[4], b[5]]), codes);
    a[0] = d;
    off[0] = 16.0 * d;
}

#[inline(always)]
fn unpack_q5_1(b: &[u8], codes: &mut [u8], a: &mut [f32], off: &mut [f32]) {
    nibbles(&b[8..24], codes);
    fifth_bits(u32::from_le_bytes([b[4], b[5], b[6], b[7]]), codes);
    a[0] = half_at(b, 0);
    off[0] = -half_at(b, 2);
}

#[inline(always)]
fn unpack_q8(b: &[u8], start: usize, codes: &mut [u8], a: &mut [f32], off: &mut [f32]) {
    let d = half_at(b, 0);
    for (c, &q) in codes.iter_mut().zip(&b[start..start + 32]) {
        // i8 q as u = q + 128.
        *c = q ^ 0x80;
    }
    a[0] = d;
    off[0] = 128.0 * d;
}

#[inline(always)]
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

#[inline(always)]
fn unpack_q3_k(b: &[u8], codes: &mut [u8], a: &mut [f32], off: &mut [f32]) {
    let hmask = &b[0..32];
    let qs = &b[32..96];
    let packed = &b[96..108];
    let d = half_at(b, 108);
    let scales = q3_k_scales(packed);
    for ((a, off), s) in a.iter_mut().zip(off.iter_mut()).zip(scales) {
        // y = (d·s)·(u − 4) with the signed six-bit scale s.
        *a = d * s as f32;
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

#[inline(always)]
fn unpack_q4_k(b: &[u8], codes: &mut [u8], a: &mut [f32], off: &mut [f32]) {
    k4_scales(b, a, off);
    for p in 0..4 {
        nibbles(
            &b[16 + p * 32..16 + p * 32 + 32],
            &mut codes[p * 64..p * 64 + 64],
        );
    }
}

#[inline(always)]
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

#[inline(always)]
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

/// The AVX2 copy: code sums 32 codes per register, the rest compiled for AVX2.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{accumulate_with, Layout, Sums};
    use crate::stats::Accumulator;

    /// True when the CPU has AVX2 (cached by the standard library after the first call).
    #[inline(always)]
    pub(super) fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx2")
    }

    /// [`super::accumulate`] compiled for AVX2.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn accumulate(
        lay: &Layout,
        bytes: &[u8],
        acc: &mut Accumulator,
        s: &mut super::Scratch,
    ) -> u64 {
        // SAFETY (closure): this function only runs when AVX2 is present.
        accumulate_with(lay, bytes, acc, s, |sub, codes, t, out| unsafe {
            sums(sub, codes, t, out)
        })
    }

    /// [`super::sums_portable`], with the same results.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn sums(sub: usize, codes: &[u8], t: &[u8], out: &mut Sums) {
        let subs = t.len().min(codes.len() / sub).min(out.u1.len());
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
            // The three sums share each 64-bit lane as 16-bit fields (a sub-block's are below
            // 32·255 < 2^16), so one horizontal add serves all three.
            let packed = _mm256_add_epi64(
                _mm256_add_epi64(s1, _mm256_slli_epi64::<16>(sa)),
                _mm256_slli_epi64::<32>(sc),
            );
            // Squares: widen to 16 bits, multiply-add pairs into 32-bit lanes.
            let lo = _mm256_unpacklo_epi8(v, zero);
            let hi = _mm256_unpackhi_epi8(v, zero);
            let sq = _mm256_add_epi32(_mm256_madd_epi16(lo, lo), _mm256_madd_epi16(hi, hi));
            // Within each 128-bit half: the two 64-bit lanes, the four 32-bit lanes, summed.
            let packed = _mm256_add_epi64(packed, _mm256_shuffle_epi32::<0x4e>(packed));
            let sq = _mm256_add_epi32(sq, _mm256_shuffle_epi32::<0x4e>(sq));
            let sq = _mm256_add_epi32(sq, _mm256_shuffle_epi32::<0xb1>(sq));
            let field = |x: u64, k: u32| ((x >> (16 * k)) & 0xffff) as u32;
            let p0 = _mm256_extract_epi64::<0>(packed) as u64;
            let p1 = _mm256_extract_epi64::<2>(packed) as u64;
            let q0 = _mm256_extract_epi32::<0>(sq) as u32;
            let q1 = _mm256_extract_epi32::<4>(sq) as u32;
            let vlo = _mm256_castsi256_si128(v);
            let vhi = _mm256_extracti128_si256::<1>(v);
            if sub == 32 {
                let x = p0 + p1;
                out.u1[j] = field(x, 0);
                out.above[j] = field(x, 1);
                out.count[j] = field(x, 2);
                out.u2[j] = q0 + q1;
                let (mn, mx) = min_max16(_mm_min_epu8(vlo, vhi), _mm_max_epu8(vlo, vhi));
                (out.min[j], out.max[j]) = (mn, mx);
                j += 1;
            } else {
                for (k, x) in [p0, p1].into_iter().enumerate() {
                    out.u1[j + k] = field(x, 0);
                    out.above[j + k] = field(x, 1);
                    out.count[j + k] = field(x, 2);
                }
                (out.u2[j], out.u2[j + 1]) = (q0, q1);
                let (lo_min, lo_max) = min_max16(vlo, vlo);
                let (hi_min, hi_max) = min_max16(vhi, vhi);
                (out.min[j], out.min[j + 1]) = (lo_min, hi_min);
                (out.max[j], out.max[j + 1]) = (lo_max, hi_max);
                j += 2;
            }
        }
    }

    /// [`super::thresholds_portable`] four sub-blocks at a time, with the same IEEE
    /// operations (so the same results); returns how many it did (a multiple of four).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn thresholds(a: &[f32], b: &[f32], top: f64, tf: &mut [f64]) -> usize {
        let n = a.len().min(b.len()).min(tf.len()) / 4 * 4;
        let zero = _mm256_setzero_pd();
        let one = _mm256_set1_pd(1.0);
        let top_v = _mm256_set1_pd(top);
        let top1 = _mm256_set1_pd(top + 1.0);
        let mut j = 0;
        while j < n {
            let x = _mm256_cvtps_pd(_mm_loadu_ps(a.as_ptr().add(j)));
            let y = _mm256_cvtps_pd(_mm_loadu_ps(b.as_ptr().add(j)));
            let pos = _mm256_cmp_pd::<_CMP_GT_OQ>(x, zero);
            let q = _mm256_div_pd(y, x);
            let guess = _mm256_blendv_pd(
                _mm256_add_pd(_mm256_floor_pd(q), one),
                _mm256_ceil_pd(q),
                pos,
            );
            // max(NaN, 0) = 0, as f64::max.
            let u = _mm256_min_pd(_mm256_max_pd(guess, zero), top1);
            let past = |u: __m256d| {
                let p = _mm256_mul_pd(x, u);
                _mm256_blendv_pd(
                    _mm256_cmp_pd::<_CMP_LT_OQ>(p, y),
                    _mm256_cmp_pd::<_CMP_GE_OQ>(p, y),
                    pos,
                )
            };
            let down = _mm256_sub_pd(u, one);
            let step = _mm256_and_pd(_mm256_cmp_pd::<_CMP_GT_OQ>(u, zero), past(down));
            let u = _mm256_blendv_pd(u, down, step);
            let up = _mm256_andnot_pd(past(u), _mm256_cmp_pd::<_CMP_LE_OQ>(u, top_v));
            let u = _mm256_blendv_pd(u, _mm256_add_pd(u, one), up);
            _mm256_storeu_pd(tf.as_mut_ptr().add(j), u);
            j += 4;
        }
        n
    }

    /// The smallest byte of `small` and the largest of `large`.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn min_max16(small: __m128i, large: __m128i) -> (u8, u8) {
        let mask = _mm_set1_epi16(0x00ff);
        // Pairs of bytes to one 16-bit lane each, then the unsigned-16-bit minimum.
        let mn = _mm_min_epu8(small, _mm_srli_epi16::<8>(small));
        let mn = _mm_minpos_epu16(_mm_and_si128(mn, mask));
        let inv = _mm_xor_si128(large, _mm_set1_epi8(-1));
        let mx = _mm_min_epu8(inv, _mm_srli_epi16::<8>(inv));
        let mx = _mm_minpos_epu16(_mm_and_si128(mx, mask));
        (_mm_cvtsi128_si32(mn) as u8, !(_mm_cvtsi128_si32(mx) as u8))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::ggml::f16_to_f32;

    #[test]
    fn lowest_bit_of_normals_and_subnormals() {
        assert_eq!(lowest_bit(1.0), 1.0);
        assert_eq!(lowest_bit(3.0), 1.0);
        assert_eq!(lowest_bit(-6.0), 2.0);
        assert_eq!(lowest_bit(0.75), 0.25);
        assert_eq!(lowest_bit(f32::from_bits(1)), f32::from_bits(1));
        assert_eq!(lowest_bit(f32::from_bits(6)), f32::from_bits(2));
        assert_eq!(lowest_bit(f32::MIN_POSITIVE), f32::MIN_POSITIVE);
        assert_eq!(lowest_bit(0.0), f32::INFINITY);
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
            let mut sums = Sums::new();
            (sums.min[0], sums.max[0]) = (lo, hi);
            if exact_in_f32(&[a], &[b], &sums, 1) {
                assert!(all, "claimed exact: a {a} b {b} codes {lo}..={hi}");
                exact += 1;
            } else {
                inexact += 1;
            }
        }
        assert!(exact > 1000 && inexact > 1000, "{exact} {inexact}");
    }

    /// The AVX2 thresholds equal the portable ones on awkward scales (zero, negative, huge
    /// quotients, exact boundaries).
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn simd_and_portable_thresholds_agree() {
        if !avx2::available() {
            eprintln!("SKIPPED: simd_and_portable_thresholds_agree: no AVX2");
            return;
        }
        let a = [
            0.5f32, 0.5, -0.25, 1.0, 1.0, 0.0, -1.0, 3.0, 1e-30, -1e-30, 0.0, 7.0,
        ];
        let b = [
            3.0f32,
            3.1,
            -1.0,
            -5.0,
            100.0,
            2.0,
            5.0,
            0.0,
            1.0,
            1.0,
            -0.0,
            7.0 * 9.0,
        ];
        for top in [3u8, 15, 255] {
            let (mut x, mut y) = ([0.0; 12], [0.0; 12]);
            thresholds_portable(&a, &b, top, &mut x);
            // SAFETY: AVX2 is present (checked above).
            let n = unsafe { avx2::thresholds(&a, &b, top as f64, &mut y) };
            assert_eq!(n, 12);
            assert_eq!(x.map(|v| v as u32), y.map(|v| v as u32), "top {top}");
        }
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
            let (mut tf, mut t, mut beyond) = ([0.0], [0u8], [false]);
            thresholds(&[a as f32], &[b as f32], 15, &mut tf, &mut t, &mut beyond);
            let t = if beyond[0] { 16 } else { u32::from(t[0]) };
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
                let (mut x, mut y) = (Sums::new(), Sums::new());
                sums_portable(sub, &codes, &t, &mut x);
                // SAFETY: AVX2 is present (checked above).
                unsafe { avx2::sums(sub, &codes, &t, &mut y) };
                assert_eq!(x, y, "sub {sub} top {top}");
            }
        }
    }

    /// Whole blocks through both copies (portable and AVX2): the same accumulator, bit for
    /// bit, on random bytes of every type (random scales include Inf, NaN and rounding cases,
    /// so the dequantizing fallback runs too).
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn simd_and_portable_accumulate_agree_bit_for_bit() {
        if !avx2::available() {
            eprintln!("SKIPPED: simd_and_portable_accumulate_agree_bit_for_bit: no AVX2");
            return;
        }
        let mut s = 7u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let kernels = [
            Kernel::Q4_0,
            Kernel::Q4_1,
            Kernel::Q5_0,
            Kernel::Q5_1,
            Kernel::Q8_0,
            Kernel::Q8_1,
            Kernel::Q2_K,
            Kernel::Q3_K,
            Kernel::Q4_K,
            Kernel::Q5_K,
            Kernel::Q6_K,
        ];
        for kernel in kernels {
            let lay = layout(kernel).unwrap();
            let bytes: Vec<u8> = (0..37 * 8 * lay.size).map(|_| next() as u8).collect();
            let (mut x, mut y) = (Accumulator::new(), Accumulator::new());
            let (mut sx, mut sy) = (Scratch::new(), Scratch::new());
            let n = accumulate_with(&lay, &bytes, &mut x, &mut sx, sums_portable);
            // SAFETY: AVX2 is present (checked above).
            let m = unsafe { avx2::accumulate(&lay, &bytes, &mut y, &mut sy) };
            assert_eq!(n, m);
            assert_eq!(format!("{x:?}"), format!("{y:?}"), "{kernel:?}");
            assert!(x.finite() > 0, "{kernel:?}");
        }
    }
}

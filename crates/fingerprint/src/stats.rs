//! Streaming, mergeable per-tensor statistics accumulated in f64.
//!
//! Values arrive in chunks. Each block of at most [`BLOCK`] values is summarised exactly as a
//! corrected two-pass computation would (block mean, then the sum of squared deviations with
//! the rounding correction of Björck's corrected two-pass algorithm), and blocks are merged
//! with Chan, Golub and LeVeque's pairwise update. A block (8 KiB of f32) stays in L1 cache
//! between its two passes, so the second pass costs arithmetic, not memory traffic. The sum of
//! squares behind the L2 norm is recovered per block as `m2 + n·mean²` (two non-negative
//! terms, so no cancellation) rather than accumulated. Non-finite values are counted (NaN and
//! ±Inf separately) and excluded from every moment: they never leak into a mean or a standard
//! deviation.
//!
//! Both passes are plain sums over eight fixed lanes with no per-element division. On
//! x86_64 an AVX2 kernel (chosen at run time with `is_x86_feature_detected!`) holds the lanes
//! in two 256-bit registers and prefetches ahead of the first pass; elsewhere a portable
//! kernel runs. Both perform the same IEEE operations on the same lanes in the same order
//! (Rust never contracts `a * b + c` into a fused multiply-add), so they return the same bits,
//! which a test checks.
//!
//! Means are carried as double-doubles (a value and its rounding error), so the difference of
//! two block means in Chan's update stays exact even when the mean dwarfs the spread.
//!
//! f64 weights can lie where squares leave the f64 range (|x| near 1e160 overflows a square,
//! near 1e-300 one underflows to zero). A block of f64 values whose largest magnitude is outside
//! [[`SAFE_LO`], [`SAFE_HI`]] is scaled by a power of two (exact) so that its largest magnitude
//! is about 1, summarised, and merged with its scale: the accumulator keeps its sums of squares
//! and of magnitudes in units of a power of two ([`Accumulator`]'s `scale`), so the standard
//! deviation, L2 norm and mean magnitude of such tensors are computed, not lost to overflow or
//! underflow. f32, f16 and bf16 values (widened to f64) never leave the safe range, so their
//! path and results are unchanged.
//!
//! Results are a pure function of the sequence of chunks and of the order of merges, which the
//! engine fixes, so a fingerprint is bit-for-bit identical at any thread count.

use serde::{Deserialize, Serialize};

/// Values summarised in one exact block before merging.
pub const BLOCK: usize = 2048;
/// Independent partial sums per block (the lane structure every kernel shares).
const LANES: usize = 8;

/// Largest magnitude of a block summarised without scaling: 2^400 (a squared deviation of
/// twice that, summed over a block, stays below f64's 2^1024).
pub const SAFE_HI: f64 = f64::from_bits((1023 + 400) << 52);
/// Smallest non-zero largest magnitude of a block summarised without scaling: 2^-400 (squares
/// of the smallest deviations f64 resolves next to it, 2^-452, stay normal).
pub const SAFE_LO: f64 = f64::from_bits((1023 - 400) << 52);

/// A value that statistics can be accumulated over (`f32` and `f64`; sealed).
pub trait Element: Copy + Send + Sync + sealed::Sealed {
    /// Widen to f64 (exact for f32, f16 and bf16).
    fn to_f64(self) -> f64;
}

mod sealed {
    /// How the SIMD kernel loads an element type.
    pub enum Width {
        /// 4-byte IEEE binary32.
        F32,
        /// 8-byte IEEE binary64.
        F64,
    }

    /// Implemented only for `f32` and `f64`: the kernels read memory according to `WIDTH`.
    pub trait Sealed {
        const WIDTH: Width;
    }

    impl Sealed for f32 {
        const WIDTH: Width = Width::F32;
    }

    impl Sealed for f64 {
        const WIDTH: Width = Width::F64;
    }
}

impl Element for f32 {
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl Element for f64 {
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
}

/// Running statistics of a stream of values; mergeable.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Accumulator {
    count: u64,
    /// The mean as an unevaluated sum `mean + mean_lo` (a double-double), so that the
    /// differences of means in Chan's update stay exact when the mean dwarfs the spread.
    mean: f64,
    mean_lo: f64,
    m2: f64,
    min: f64,
    max: f64,
    /// `abs_sum` is in units of `2^scale`, `m2` and `sq_sum` in units of `4^scale` (0 except for
    /// f64 data outside the safe range: see the module docs).
    scale: i32,
    abs_sum: f64,
    sq_sum: f64,
    nan: u64,
    inf: u64,
}

impl Default for Accumulator {
    fn default() -> Self {
        Self::new()
    }
}

/// Moments of one block of finite values (at most [`BLOCK`] of them).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct BlockSummary {
    /// Number of values.
    pub(crate) count: u64,
    /// The mean as a double-double `mean + mean_lo`.
    pub(crate) mean: f64,
    pub(crate) mean_lo: f64,
    /// Sum of squared deviations from the mean.
    pub(crate) m2: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    /// Sum of absolute values.
    pub(crate) abs_sum: f64,
    /// Sum of squares (`m2 + count·mean²`).
    pub(crate) sq_sum: f64,
}

impl Accumulator {
    /// An empty accumulator.
    pub const fn new() -> Self {
        Accumulator {
            count: 0,
            mean: 0.0,
            mean_lo: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            scale: 0,
            abs_sum: 0.0,
            sq_sum: 0.0,
            nan: 0,
            inf: 0,
        }
    }

    /// Number of finite values seen.
    pub fn finite(&self) -> u64 {
        self.count
    }

    /// Number of NaN values seen.
    pub fn nan(&self) -> u64 {
        self.nan
    }

    /// Number of ±Inf values seen.
    pub fn inf(&self) -> u64 {
        self.inf
    }

    /// Add a chunk of values, in order.
    pub fn push<T: Element>(&mut self, values: &[T]) {
        #[cfg(target_arch = "x86_64")]
        {
            if avx2::available() {
                // SAFETY: the CPU supports AVX2.
                unsafe { avx2::push(self, values) };
                return;
            }
        }
        self.push_blocks(values, |block, _| summarise_portable(block));
    }

    /// Cut `values` into blocks and fold each in; `summarise` also sees what follows the
    /// block (for prefetching).
    #[inline(always)]
    fn push_blocks<T: Element>(
        &mut self,
        values: &[T],
        summarise: impl Fn(&[T], &[T]) -> Option<BlockSummary>,
    ) {
        let mut rest = values;
        while !rest.is_empty() {
            let (block, next) = rest.split_at(rest.len().min(BLOCK));
            match summarise(block, next) {
                // Only f64 values can leave the safe range (a constant test for f32).
                Some(summary)
                    if matches!(T::WIDTH, sealed::Width::F32)
                        || in_safe_range(summary.min, summary.max) =>
                {
                    self.merge_block(summary)
                }
                _ => self.push_with_nonfinite(block),
            }
            rest = next;
        }
    }

    /// Slow path for a block holding at least one NaN or Inf (count them, keep the rest), or
    /// f64 values outside the safe range (summarised scaled by a power of two).
    #[cold]
    #[inline(never)]
    fn push_with_nonfinite<T: Element>(&mut self, block: &[T]) {
        let mut finite = Vec::with_capacity(block.len());
        for &v in block {
            let x = v.to_f64();
            if x.is_nan() {
                self.nan += 1;
            } else if x.is_infinite() {
                self.inf += 1;
            } else {
                finite.push(x);
            }
        }
        let Some(min) = finite.iter().copied().reduce(f64::min) else {
            return;
        };
        let max = finite.iter().copied().fold(min, f64::max);
        if in_safe_range(min, max) {
            if let Some(summary) = summarise(&finite) {
                self.merge_block(summary);
                return;
            }
        }
        // Scale by 2^-e so the largest magnitude is about 1: exact (a power of two), and the
        // sums and squares of the scaled block cannot overflow or underflow.
        let e = max.abs().max(min.abs()).log2().ceil() as i32;
        let scaled: Vec<f64> = finite.iter().map(|&x| ldexp(x, -e)).collect();
        let Some(b) = summarise(&scaled) else {
            unreachable!("a block of magnitudes at most 2 has finite sums")
        };
        self.merge_scaled(
            BlockSummary {
                mean: ldexp(b.mean, e),
                mean_lo: ldexp(b.mean_lo, e),
                min,
                max,
                ..b
            },
            e,
        );
    }

    /// Fold in the moments of the next block, exactly as [`Self::push`] folds each block.
    #[inline(always)]
    pub(crate) fn merge_block(&mut self, b: BlockSummary) {
        if b.count == 0 {
            return;
        }
        if self.scale != 0 {
            return self.merge_scaled(b, 0);
        }
        self.merge_moments(b.count, b.mean, b.mean_lo, b.m2);
        self.min = self.min.min(b.min);
        self.max = self.max.max(b.max);
        self.abs_sum += b.abs_sum;
        self.sq_sum += b.sq_sum;
    }

    /// Fold in a block whose `abs_sum` is in units of `2^scale` and `m2`, `sq_sum` in units of
    /// `4^scale` (mean, min and max in true units). The finer scale is brought to the coarser
    /// one: what underflows there is below the rounding of the larger terms.
    #[cold]
    fn merge_scaled(&mut self, b: BlockSummary, scale: i32) {
        if b.count == 0 {
            return;
        }
        if self.count == 0 {
            // Nothing to carry over: the sums are zero.
            self.scale = scale;
        } else if scale > self.scale {
            self.rescale(scale);
        }
        let d = scale - self.scale;
        self.merge_moments(b.count, b.mean, b.mean_lo, ldexp(b.m2, 2 * d));
        self.min = self.min.min(b.min);
        self.max = self.max.max(b.max);
        self.abs_sum += ldexp(b.abs_sum, d);
        self.sq_sum += ldexp(b.sq_sum, 2 * d);
    }

    /// Express the scaled sums in units of `2^scale` (`scale >= self.scale`).
    fn rescale(&mut self, scale: i32) {
        let d = self.scale - scale;
        self.m2 = ldexp(self.m2, 2 * d);
        self.sq_sum = ldexp(self.sq_sum, 2 * d);
        self.abs_sum = ldexp(self.abs_sum, d);
        self.scale = scale;
    }

    /// Chan, Golub and LeVeque's update, with the means carried as double-doubles.
    #[inline(always)]
    fn merge_moments(&mut self, count: u64, mean: f64, mean_lo: f64, m2: f64) {
        if self.count == 0 {
            self.count = count;
            self.mean = mean;
            self.mean_lo = mean_lo;
            self.m2 = m2;
            return;
        }
        let n_a = self.count as f64;
        let n_b = count as f64;
        let n = n_a + n_b;
        // The high parts are close when the spread is small relative to the mean, so their
        // difference is exact (Sterbenz); the low parts carry what rounding left out.
        let delta = (mean - self.mean) + (mean_lo - self.mean_lo);
        let (hi, err) = two_sum(self.mean, delta * (n_b / n));
        (self.mean, self.mean_lo) = fast_two_sum(hi, self.mean_lo + err);
        // `m2` is in units of 4^scale; so is the squared (scaled) difference of the means.
        let ds = if self.scale == 0 {
            delta
        } else {
            ldexp(delta, -self.scale)
        };
        self.m2 += m2 + ds * ds * (n_a * n_b / n);
        self.count += count;
    }

    /// Merge another accumulator into this one (Chan et al.'s parallel update).
    pub fn merge(&mut self, other: &Accumulator) {
        self.nan += other.nan;
        self.inf += other.inf;
        if other.count == 0 {
            return;
        }
        if self.scale != 0 || other.scale != 0 {
            let b = BlockSummary {
                count: other.count,
                mean: other.mean,
                mean_lo: other.mean_lo,
                m2: other.m2,
                min: other.min,
                max: other.max,
                abs_sum: other.abs_sum,
                sq_sum: other.sq_sum,
            };
            return self.merge_scaled(b, other.scale);
        }
        self.merge_moments(other.count, other.mean, other.mean_lo, other.m2);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.abs_sum += other.abs_sum;
        self.sq_sum += other.sq_sum;
    }

    /// The finished statistics.
    pub fn finish(&self) -> TensorStats {
        let numel = self.count + self.nan + self.inf;
        let some = |x: f64| (self.count > 0).then_some(x);
        let n = self.count as f64;
        TensorStats {
            numel,
            mean: some(self.mean + self.mean_lo),
            std: some(ldexp((self.m2.max(0.0) / n).sqrt(), self.scale)),
            min: some(self.min),
            max: some(self.max),
            abs_mean: some(ldexp(self.abs_sum / n, self.scale)),
            l2: some(ldexp(self.sq_sum.sqrt(), self.scale)),
            nan: self.nan,
            inf: self.inf,
        }
    }
}

/// Exact moments of a block with the fastest kernel available, or `None` when it holds a
/// non-finite value (or its sums overflow).
fn summarise<T: Element>(block: &[T]) -> Option<BlockSummary> {
    #[cfg(target_arch = "x86_64")]
    {
        if avx2::available() {
            // SAFETY: the CPU supports AVX2.
            return unsafe { avx2::summarise(block, &[]) };
        }
    }
    summarise_portable(block)
}

/// Per-lane partial results of the first pass over a block.
struct Pass1 {
    sum: [f64; LANES],
    abs: [f64; LANES],
    lo: [f64; LANES],
    hi: [f64; LANES],
}

// Lane `l` of several arrays at once: an index loop says it best.
#[allow(clippy::needless_range_loop)]
impl Pass1 {
    const fn new() -> Self {
        Pass1 {
            sum: [0.0; LANES],
            abs: [0.0; LANES],
            lo: [f64::INFINITY; LANES],
            hi: [f64::NEG_INFINITY; LANES],
        }
    }

    /// One row of `LANES` values, value `l` into lane `l`. Every kernel performs exactly these
    /// operations per lane.
    #[inline(always)]
    fn row(&mut self, x: &[f64; LANES]) {
        for l in 0..LANES {
            self.sum[l] += x[l];
            self.abs[l] += x[l].abs();
            self.lo[l] = if x[l] < self.lo[l] { x[l] } else { self.lo[l] };
            self.hi[l] = if x[l] > self.hi[l] { x[l] } else { self.hi[l] };
        }
    }

    /// The last, partial row (`rem.len() < LANES`). Missing lanes add `+0.0` and compare
    /// against ±Inf, which leaves them unchanged: a lane sum is never `-0.0` (it starts at
    /// `+0.0`, and round-to-nearest gives `+0.0` for every exact zero sum of non-zero terms).
    #[inline(always)]
    fn tail<T: Element>(&mut self, rem: &[T]) {
        if rem.is_empty() {
            return;
        }
        let mut x = [0.0; LANES];
        let mut lo = [f64::INFINITY; LANES];
        let mut hi = [f64::NEG_INFINITY; LANES];
        for (l, &v) in rem.iter().enumerate().take(LANES) {
            x[l] = v.to_f64();
            lo[l] = x[l];
            hi[l] = x[l];
        }
        for l in 0..LANES {
            self.sum[l] += x[l];
            self.abs[l] += x[l].abs();
            self.lo[l] = if lo[l] < self.lo[l] {
                lo[l]
            } else {
                self.lo[l]
            };
            self.hi[l] = if hi[l] > self.hi[l] {
                hi[l]
            } else {
                self.hi[l]
            };
        }
    }

    /// The block mean before correction, or `None` when the sum is not finite (a NaN or Inf
    /// in the block, or overflow).
    #[inline(always)]
    fn mean(&self, count: usize) -> Option<f64> {
        let total = fold(&self.sum);
        total.is_finite().then(|| total / count as f64)
    }
}

/// Per-lane partial results of the second pass: deviations from the first-pass mean.
struct Pass2 {
    dev: [f64; LANES],
    dev2: [f64; LANES],
}

// Lane `l` of several arrays at once: an index loop says it best.
#[allow(clippy::needless_range_loop)]
impl Pass2 {
    const fn new() -> Self {
        Pass2 {
            dev: [0.0; LANES],
            dev2: [0.0; LANES],
        }
    }

    #[inline(always)]
    fn row(&mut self, x: &[f64; LANES], mean: f64) {
        for l in 0..LANES {
            let d = x[l] - mean;
            self.dev[l] += d;
            self.dev2[l] += d * d;
        }
    }

    /// The last, partial row; missing lanes add `+0.0` (see [`Pass1::tail`]).
    #[inline(always)]
    fn tail<T: Element>(&mut self, rem: &[T], mean: f64) {
        if rem.is_empty() {
            return;
        }
        let mut d = [0.0; LANES];
        for (l, &v) in rem.iter().enumerate().take(LANES) {
            d[l] = v.to_f64() - mean;
        }
        for l in 0..LANES {
            self.dev[l] += d[l];
            self.dev2[l] += d[l] * d[l];
        }
    }
}

/// Combine both passes into the block's moments (Björck's corrected two-pass).
#[inline(always)]
fn block_summary(count: usize, p1: &Pass1, mean: f64, p2: &Pass2) -> Option<BlockSummary> {
    let n = count as f64;
    let dev_sum = fold(&p2.dev);
    let ss = fold(&p2.dev2);
    // Squared deviations can overflow where the values did not.
    if !ss.is_finite() {
        return None;
    }
    let m2 = (ss - dev_sum * dev_sum / n).max(0.0);
    // The exact block mean is `mean + dev_sum / n`; keep both parts.
    let (mean, mean_lo) = fast_two_sum(mean, dev_sum / n);
    Some(BlockSummary {
        count: count as u64,
        mean,
        mean_lo,
        m2,
        min: fold_with(&p1.lo, f64::min),
        max: fold_with(&p1.hi, f64::max),
        abs_sum: fold(&p1.abs),
        sq_sum: m2 + n * (mean * mean),
    })
}

/// True when a block with this minimum and maximum is summarised without scaling: its largest
/// magnitude is zero or within [[`SAFE_LO`], [`SAFE_HI`]].
#[inline(always)]
fn in_safe_range(min: f64, max: f64) -> bool {
    let m = max.max(-min);
    m <= SAFE_HI && (m >= SAFE_LO || m == 0.0)
}

/// `x · 2^e`, exact unless the result leaves the normal range (a scale factor of 1 when `e` is
/// 0, so unscaled statistics keep their bits).
#[inline]
fn ldexp(mut x: f64, mut e: i32) -> f64 {
    if e == 0 {
        return x;
    }
    let pow2 = |e: i32| f64::from_bits(((e + 1023) as u64) << 52);
    while e > 1023 {
        x *= pow2(1023);
        e -= 1023;
    }
    while e < -1022 {
        x *= pow2(-1022);
        e += 1022;
    }
    x * pow2(e)
}

/// `a + b` and its rounding error (Knuth's TwoSum).
#[inline(always)]
pub(crate) fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

/// `a + b` and its rounding error, for `|a| >= |b|` or `a == 0` (Dekker's FastTwoSum).
#[inline(always)]
pub(crate) fn fast_two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    (s, b - (s - a))
}

/// The reference kernel: plain Rust over the lanes, for any target.
fn summarise_portable<T: Element>(block: &[T]) -> Option<BlockSummary> {
    if block.is_empty() {
        return None;
    }
    let widen = |c: &[T]| -> [f64; LANES] { std::array::from_fn(|l| c[l].to_f64()) };
    let mut p1 = Pass1::new();
    let mut rows = block.chunks_exact(LANES);
    for c in &mut rows {
        p1.row(&widen(c));
    }
    let rem = rows.remainder();
    p1.tail(rem);
    let mean = p1.mean(block.len())?;
    let mut p2 = Pass2::new();
    for c in block.chunks_exact(LANES) {
        p2.row(&widen(c), mean);
    }
    p2.tail(rem, mean);
    block_summary(block.len(), &p1, mean, &p2)
}

/// Sum of the lanes in a fixed tree order.
#[inline(always)]
fn fold(lanes: &[f64; LANES]) -> f64 {
    fold_with(lanes, |a, b| a + b)
}

#[inline(always)]
fn fold_with(l: &[f64; LANES], f: impl Fn(f64, f64) -> f64) -> f64 {
    f(
        f(f(l[0], l[4]), f(l[1], l[5])),
        f(f(l[2], l[6]), f(l[3], l[7])),
    )
}

/// The AVX2 kernel: lanes 0–3 in one 256-bit register, lanes 4–7 in another.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::sealed::Width;
    use super::{block_summary, Accumulator, BlockSummary, Element, Pass1, Pass2, LANES};

    /// Bytes ahead of the first pass to prefetch: the best of 1–8 KiB on the benchmark machine
    /// (bench/README.md) with data in DRAM, where hardware prefetch alone left the loop waiting
    /// on memory (0.8 instead of 0.6 ns per value).
    const PREFETCH_BYTES: usize = 2048;

    /// True when the CPU has AVX2 (cached by the standard library after the first call).
    #[inline(always)]
    pub(super) fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx2")
    }

    /// [`Accumulator::push`] compiled for AVX2.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn push<T: Element>(acc: &mut Accumulator, values: &[T]) {
        // SAFETY (closure): this function only runs when AVX2 is present.
        acc.push_blocks(values, |block, next| unsafe { summarise(block, next) });
    }

    /// Lanes 0–3 and 4–7 of the `LANES` values at `p`, widened to f64.
    ///
    /// # Safety
    /// AVX2, and `LANES` readable values of type `T` at `p`.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn load<T: Element>(p: *const T) -> (__m256d, __m256d) {
        match T::WIDTH {
            Width::F32 => {
                let v = _mm256_loadu_ps(p.cast::<f32>());
                (
                    _mm256_cvtps_pd(_mm256_castps256_ps128(v)),
                    _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v)),
                )
            }
            Width::F64 => {
                let q = p.cast::<f64>();
                (_mm256_loadu_pd(q), _mm256_loadu_pd(q.add(4)))
            }
        }
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn lanes(a: __m256d, b: __m256d) -> [f64; LANES] {
        let mut out = [0.0; LANES];
        _mm256_storeu_pd(out.as_mut_ptr(), a);
        _mm256_storeu_pd(out.as_mut_ptr().add(4), b);
        out
    }

    /// The block's moments, as [`super::summarise_portable`] computes them, bit for bit.
    /// `next` (what follows the block in memory) is only prefetched.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn summarise<T: Element>(block: &[T], next: &[T]) -> Option<BlockSummary> {
        if block.is_empty() {
            return None;
        }
        let full = block.len() / LANES * LANES;
        let p = block.as_ptr();
        // Prefetch targets stay inside `block` followed by `next`: when `next` is empty or
        // not contiguous with `block`, only `block` is prefetched.
        let contiguous =
            next.is_empty() || std::ptr::eq(p.wrapping_add(block.len()), next.as_ptr());
        let window = block.len() + if contiguous { next.len() } else { 0 };
        let ahead = PREFETCH_BYTES / std::mem::size_of::<T>();

        let sign = _mm256_set1_pd(-0.0);
        let (mut s0, mut s1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        let (mut a0, mut a1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        let (mut lo0, mut lo1) = (_mm256_set1_pd(f64::INFINITY), _mm256_set1_pd(f64::INFINITY));
        let (mut hi0, mut hi1) = (
            _mm256_set1_pd(f64::NEG_INFINITY),
            _mm256_set1_pd(f64::NEG_INFINITY),
        );
        let mut i = 0;
        while i < full {
            if i + ahead < window {
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(i + ahead).cast::<i8>());
            }
            let (x0, x1) = load(p.add(i));
            // The same operations as `Pass1::row`: x + s, |x| + a, x < lo ? x : lo, ...
            s0 = _mm256_add_pd(s0, x0);
            s1 = _mm256_add_pd(s1, x1);
            a0 = _mm256_add_pd(a0, _mm256_andnot_pd(sign, x0));
            a1 = _mm256_add_pd(a1, _mm256_andnot_pd(sign, x1));
            lo0 = _mm256_min_pd(x0, lo0);
            lo1 = _mm256_min_pd(x1, lo1);
            hi0 = _mm256_max_pd(x0, hi0);
            hi1 = _mm256_max_pd(x1, hi1);
            i += LANES;
        }
        let mut p1 = Pass1 {
            sum: lanes(s0, s1),
            abs: lanes(a0, a1),
            lo: lanes(lo0, lo1),
            hi: lanes(hi0, hi1),
        };
        let rem = &block[full..];
        p1.tail(rem);
        let mean = p1.mean(block.len())?;

        let m = _mm256_set1_pd(mean);
        let (mut d0, mut d1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        let (mut q0, mut q1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        let mut i = 0;
        while i < full {
            let (x0, x1) = load(p.add(i));
            let (e0, e1) = (_mm256_sub_pd(x0, m), _mm256_sub_pd(x1, m));
            d0 = _mm256_add_pd(d0, e0);
            d1 = _mm256_add_pd(d1, e1);
            q0 = _mm256_add_pd(q0, _mm256_mul_pd(e0, e0));
            q1 = _mm256_add_pd(q1, _mm256_mul_pd(e1, e1));
            i += LANES;
        }
        let mut p2 = Pass2 {
            dev: lanes(d0, d1),
            dev2: lanes(q0, q1),
        };
        p2.tail(rem, mean);
        block_summary(block.len(), &p1, mean, &p2)
    }
}

/// Summary statistics of one tensor (or one role's slice of a fused tensor).
///
/// Moments are over the finite values only; `nan` and `inf` count the rest. Every moment is
/// `None` when no finite value was seen. `std` is the population standard deviation (ddof 0);
/// the published HonestAGI code called `torch.std` (ddof 1), which is
/// `std * sqrt(numel / (numel - 1))` and can be derived from `numel`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorStats {
    /// Number of elements, finite or not.
    pub numel: u64,
    /// Mean of the finite values.
    pub mean: Option<f64>,
    /// Population standard deviation (ddof 0) of the finite values.
    pub std: Option<f64>,
    /// Smallest finite value.
    pub min: Option<f64>,
    /// Largest finite value.
    pub max: Option<f64>,
    /// Mean absolute value of the finite values.
    pub abs_mean: Option<f64>,
    /// Euclidean norm of the finite values.
    pub l2: Option<f64>,
    /// Number of NaN values.
    pub nan: u64,
    /// Number of ±Inf values.
    pub inf: u64,
}

impl TensorStats {
    /// Standard deviation with `ddof` degrees of freedom removed (0: population, 1: sample).
    pub fn std_ddof(&self, ddof: u32) -> Option<f64> {
        let finite = self.numel - self.nan - self.inf;
        let std = self.std?;
        (finite > ddof as u64).then(|| std * (finite as f64 / (finite - ddof as u64) as f64).sqrt())
    }

    /// True when the tensor held NaN or Inf values.
    pub fn has_nonfinite(&self) -> bool {
        self.nan > 0 || self.inf > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    #[test]
    fn matches_two_pass_on_small_data() {
        let xs: Vec<f64> = (0..10_001)
            .map(|i| ((i * 7919) % 1000) as f64 / 37.0 - 3.0)
            .collect();
        let mut acc = Accumulator::new();
        acc.push(&xs);
        let s = acc.finish();
        let (mean, std) = naive(&xs);
        assert!((s.mean.unwrap() - mean).abs() < 1e-12 * mean.abs().max(1.0));
        assert!((s.std.unwrap() - std).abs() < 1e-12 * std);
        assert_eq!(s.numel, 10_001);
        assert_eq!(s.min, Some(-3.0));
    }

    #[test]
    fn chunking_and_merging_agree() {
        let xs: Vec<f32> = (0..50_000).map(|i| ((i as f32) * 0.618).sin()).collect();
        let mut whole = Accumulator::new();
        whole.push(&xs);
        let mut merged = Accumulator::new();
        for part in xs.chunks(3_333) {
            let mut a = Accumulator::new();
            a.push(part);
            merged.merge(&a);
        }
        let (a, b) = (whole.finish(), merged.finish());
        assert!((a.std.unwrap() - b.std.unwrap()).abs() < 1e-13);
        assert!((a.mean.unwrap() - b.mean.unwrap()).abs() < 1e-15);
    }

    #[test]
    fn nonfinite_values_are_counted_not_used() {
        let xs = [1.0f32, f32::NAN, 3.0, f32::INFINITY, f32::NEG_INFINITY];
        let mut acc = Accumulator::new();
        acc.push(&xs);
        let s = acc.finish();
        assert_eq!((s.numel, s.nan, s.inf), (5, 1, 2));
        assert_eq!(s.mean, Some(2.0));
        assert_eq!(s.std, Some(1.0));
        assert!(s.has_nonfinite());
    }

    #[test]
    fn all_nan_gives_no_moments() {
        let mut acc = Accumulator::new();
        acc.push(&[f32::NAN; 10]);
        let s = acc.finish();
        assert_eq!(s.std, None);
        assert_eq!(s.nan, 10);
    }

    #[test]
    fn ddof_one_matches_sample_std() {
        let mut acc = Accumulator::new();
        acc.push(&[1.0f64, 2.0, 3.0, 4.0]);
        let s = acc.finish();
        let sample = (5.0f64 / 3.0).sqrt();
        assert!((s.std_ddof(1).unwrap() - sample).abs() < 1e-15);
    }

    /// Large mean, tiny variance, ~1e9 elements simulated as one block summary repeated by
    /// merging: the result must match the exact answer to near machine precision.
    #[test]
    fn adversarial_large_mean_tiny_variance() {
        // Block: 1e6 + {-1e-3, +1e-3} alternating; exact std is 1e-3, mean 1e6.
        let block: Vec<f64> = (0..BLOCK)
            .map(|i| 1e6 + if i % 2 == 0 { -1e-3 } else { 1e-3 })
            .collect();
        let mut unit = Accumulator::new();
        unit.push(&block);
        let mut total = Accumulator::new();
        // 2^19 blocks of 2048 = 1.07e9 elements, merged in a balanced tree like the engine.
        let mut level = vec![unit; 1 << 10];
        while level.len() > 1 {
            level = level
                .chunks(2)
                .map(|p| {
                    let mut a = p[0];
                    a.merge(&p[1]);
                    a
                })
                .collect();
        }
        let kilo = level[0];
        for _ in 0..(1 << 9) {
            total.merge(&kilo);
        }
        let s = total.finish();
        assert_eq!(s.numel, 1 << 30);
        let rel = (s.std.unwrap() - 1e-3).abs() / 1e-3;
        assert!(rel < 1e-6, "relative error {rel}");
        assert!((s.mean.unwrap() - 1e6).abs() < 1e-9);
    }

    /// A deterministic stream of pseudo-random values in [-0.5, 0.5) (xorshift64).
    fn noise(seed: u64, n: usize) -> Vec<f64> {
        let mut s = seed | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
            })
            .collect()
    }

    fn bits(b: &Option<BlockSummary>) -> Option<[u64; 8]> {
        b.map(|b| {
            [
                b.count,
                b.mean.to_bits(),
                b.mean_lo.to_bits(),
                b.m2.to_bits(),
                b.min.to_bits(),
                b.max.to_bits(),
                b.abs_sum.to_bits(),
                b.sq_sum.to_bits(),
            ]
        })
    }

    /// The AVX2 kernel returns exactly the portable kernel's bits, for every remainder length,
    /// both element types, signed zeros, large offsets and blocks with NaN or Inf.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn simd_and_portable_kernels_agree_bit_for_bit() {
        if !avx2::available() {
            eprintln!("SKIPPED: simd_and_portable_kernels_agree_bit_for_bit: no AVX2 on this CPU");
            return;
        }
        let base = noise(7, 3 * BLOCK);
        let mut checked = 0;
        for (scale, offset) in [(1.0, 0.0), (0.02, 0.0), (1e-3, 1e6), (3e30, -1e31)] {
            let xs: Vec<f64> = base.iter().map(|x| x * scale + offset).collect();
            let mut with_zeros = xs.clone();
            for (i, x) in with_zeros.iter_mut().enumerate().step_by(5) {
                *x = if i % 2 == 0 { 0.0 } else { -0.0 };
            }
            let mut with_nan = xs.clone();
            with_nan[BLOCK / 3] = f64::NAN;
            with_nan[BLOCK + 5] = f64::INFINITY;
            for data in [&xs, &with_zeros, &with_nan] {
                let narrow: Vec<f32> = data.iter().map(|&x| x as f32).collect();
                for len in (0..=2 * LANES + 1).chain([BLOCK / 2 + 3, BLOCK - 1, BLOCK]) {
                    for start in [0, 1, BLOCK - 7] {
                        let (b64, n64) = data[start..].split_at(len);
                        let (b32, n32) = narrow[start..].split_at(len);
                        // SAFETY: AVX2 is present (checked above).
                        let (v64, v32) =
                            unsafe { (avx2::summarise(b64, n64), avx2::summarise(b32, n32)) };
                        assert_eq!(bits(&v64), bits(&summarise_portable(b64)), "f64 {len}");
                        assert_eq!(bits(&v32), bits(&summarise_portable(b32)), "f32 {len}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 200);
    }

    /// Whole accumulators agree too, whichever kernel pushes the chunks.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn simd_and_portable_accumulators_agree_bit_for_bit() {
        if !avx2::available() {
            eprintln!(
                "SKIPPED: simd_and_portable_accumulators_agree_bit_for_bit: no AVX2 on this CPU"
            );
            return;
        }
        let xs: Vec<f32> = noise(11, 100_003).iter().map(|&x| x as f32).collect();
        let mut fast = Accumulator::new();
        let mut slow = Accumulator::new();
        for chunk in xs.chunks(9_999) {
            fast.push(chunk);
            slow.push_blocks(chunk, |b, _| summarise_portable(b));
        }
        let (f, s) = (fast.finish(), slow.finish());
        assert_eq!(f.std.unwrap().to_bits(), s.std.unwrap().to_bits());
        assert_eq!(f.mean.unwrap().to_bits(), s.mean.unwrap().to_bits());
        assert_eq!(f.l2.unwrap().to_bits(), s.l2.unwrap().to_bits());
        assert_eq!(f.abs_mean.unwrap().to_bits(), s.abs_mean.unwrap().to_bits());
        assert_eq!(f, s);
    }

    /// Mean, std, L2 and mean |x| of a sum computed with Neumaier's compensated summation
    /// (a reference independent of the kernel's lanes and blocks).
    fn compensated(xs: &[f64]) -> (f64, f64, f64, f64) {
        fn neumaier(it: impl Iterator<Item = f64>) -> f64 {
            let (mut sum, mut c) = (0.0f64, 0.0f64);
            for x in it {
                let t = sum + x;
                c += if sum.abs() >= x.abs() {
                    (sum - t) + x
                } else {
                    (x - t) + sum
                };
                sum = t;
            }
            sum + c
        }
        let n = xs.len() as f64;
        let mean0 = neumaier(xs.iter().copied()) / n;
        // Corrected two-pass around the rounded mean: subtracting (Σd)²/n removes the
        // n·(mean - mean0)² that the rounding of the mean adds to Σd².
        let dev = neumaier(xs.iter().map(|x| x - mean0));
        let mean = mean0 + dev / n;
        let m2 = neumaier(xs.iter().map(|x| (x - mean0) * (x - mean0))) - dev * (dev / n);
        let sq = neumaier(xs.iter().map(|x| x * x));
        let abs = neumaier(xs.iter().map(|x| x.abs()));
        (mean, (m2 / n).sqrt(), sq.sqrt(), abs / n)
    }

    /// Large mean, tiny spread, pushed in uneven chunks and merged: every statistic agrees
    /// with a compensated reference. A one-pass `E[x²] - E[x]²` would return 0 or garbage here.
    #[test]
    fn adversarial_data_matches_compensated_reference() {
        let n = 1 << 20;
        for (mean, spread) in [(1e6, 1e-3), (-3e4, 1e-7), (0.25, 1e-9)] {
            let xs: Vec<f64> = noise(3, n).iter().map(|x| mean + spread * x).collect();
            let mut acc = Accumulator::new();
            let mut at = 0;
            for (k, len) in [1usize, 4093, 70_001, 1 << 18].iter().cycle().enumerate() {
                if at >= n {
                    break;
                }
                let end = (at + len + k).min(n);
                let mut part = Accumulator::new();
                part.push(&xs[at..end]);
                acc.merge(&part);
                at = end;
            }
            let s = acc.finish();
            let (m, sd, l2, am) = compensated(&xs);
            let rel = |a: f64, b: f64| ((a - b) / b).abs();
            assert!(rel(s.mean.unwrap(), m) < 1e-15, "mean {mean} {spread}");
            let e = rel(s.std.unwrap(), sd);
            assert!(e < 1e-13, "std {mean} {spread}: {e}");
            assert!(rel(s.l2.unwrap(), l2) < 1e-14, "l2 {mean} {spread}");
            assert!(rel(s.abs_mean.unwrap(), am) < 1e-14, "abs {mean} {spread}");
        }
    }

    /// On weight-like data every statistic agrees with the compensated reference to ~1e-15.
    #[test]
    fn weight_like_data_matches_compensated_reference() {
        let xs: Vec<f64> = noise(5, 300_001)
            .iter()
            .map(|&x| ((x * 0.04 + 1e-3) as f32) as f64)
            .collect();
        let narrow: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
        let mut acc = Accumulator::new();
        for chunk in narrow.chunks(16_384) {
            acc.push(chunk);
        }
        let s = acc.finish();
        let (m, sd, l2, am) = compensated(&xs);
        let rel = |a: f64, b: f64| ((a - b) / b).abs();
        assert!(rel(s.mean.unwrap(), m) < 1e-13);
        assert!(rel(s.std.unwrap(), sd) < 1e-14);
        assert!(rel(s.l2.unwrap(), l2) < 1e-14);
        assert!(rel(s.abs_mean.unwrap(), am) < 1e-14);
        assert_eq!(s.min, narrow.iter().map(|&x| x as f64).reduce(f64::min));
        assert_eq!(s.max, narrow.iter().map(|&x| x as f64).reduce(f64::max));
    }

    /// Finite values whose squares overflow f64 take the one-value-at-a-time path and still
    /// give the exact mean, min and max.
    #[test]
    fn huge_finite_values_fall_back_safely() {
        let xs = [1e300f64, -1e300, 1e300, -1e300, 2.0];
        let mut acc = Accumulator::new();
        acc.push(&xs);
        let s = acc.finish();
        assert_eq!((s.numel, s.nan, s.inf), (5, 0, 0));
        assert_eq!((s.min, s.max), (Some(-1e300), Some(1e300)));
        assert!((s.mean.unwrap() - 0.4).abs() < 1e-3 * 1e300);
        // std of {±1e300 twice, 2}: sqrt(4/5 · 1e600 − mean²), computed scaled.
        let want = 1e300 * 0.8f64.sqrt();
        assert!(rel(s.std.unwrap(), want) < 1e-14, "{:?}", s.std);
        assert!(rel(s.l2.unwrap(), 2e300) < 1e-14, "{:?}", s.l2);
    }

    fn rel(a: f64, b: f64) -> f64 {
        (a - b).abs() / b.abs()
    }

    /// f64 values whose squares overflow (1e160) or underflow (1e-300) get the moments of the
    /// same values scaled to about 1, scaled back: chunked, merged, with NaN, and mixed with
    /// ordinary values.
    #[test]
    fn f64_moments_neither_overflow_nor_underflow() {
        let base = noise(11, 5000);
        let reference = |xs: &[f64]| {
            let mut a = Accumulator::new();
            a.push(xs);
            a.finish()
        };
        let r = reference(&base);
        for scale in [1e160, -3e200, 1e300, 1e-300, 3e-310, 1e-200] {
            let xs: Vec<f64> = base.iter().map(|&x| x * scale).collect();
            // Whole, and in chunks merged pairwise.
            let whole = reference(&xs);
            let mut merged = Accumulator::new();
            for part in xs.chunks(777) {
                let mut a = Accumulator::new();
                a.push(part);
                merged.merge(&a);
            }
            for s in [whole, merged.finish()] {
                let tol = if scale.abs() < 1e-300 { 1e-9 } else { 1e-13 };
                let check = |got: Option<f64>, want: f64, what: &str| {
                    let g = got.unwrap();
                    assert!(rel(g, want) < tol, "{what} at scale {scale}: {g} vs {want}");
                };
                check(s.std, r.std.unwrap() * scale.abs(), "std");
                check(s.mean, r.mean.unwrap() * scale, "mean");
                check(s.abs_mean, r.abs_mean.unwrap() * scale.abs(), "abs_mean");
                check(s.l2, r.l2.unwrap() * scale.abs(), "l2");
                assert!(s.std.unwrap() > 0.0);
            }
        }
        // A NaN in a block of tiny values: counted, the rest still scaled.
        let mut xs: Vec<f64> = base.iter().map(|&x| x * 1e-300).collect();
        xs[3] = f64::NAN;
        let s = reference(&xs);
        assert_eq!(s.nan, 1);
        assert!(s.std.unwrap() > 0.9 * r.std.unwrap() * 1e-300);
        // Tiny blocks then ordinary ones: the tiny ones vanish below the rounding.
        let mut mixed: Vec<f64> = base[..BLOCK].iter().map(|&x| x * 1e-300).collect();
        mixed.extend_from_slice(&base[BLOCK..]);
        let s = reference(&mixed);
        let tail = reference(&base[BLOCK..]);
        let n = mixed.len() as f64;
        let m = BLOCK as f64;
        // std² of the mix = ((n − m)·(tail var + tail mean²) ) / n − mean², tiny part ≈ 0.
        let tm = tail.mean.unwrap();
        let tv = tail.std.unwrap().powi(2);
        let mean = tm * (n - m) / n;
        let want = ((n - m) * (tv + tm * tm) / n - mean * mean).sqrt();
        assert!(rel(s.std.unwrap(), want) < 1e-12, "{:?} vs {want}", s.std);
    }
}

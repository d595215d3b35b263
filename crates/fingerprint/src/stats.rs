//! Streaming, mergeable per-tensor statistics accumulated in f64.
//!
//! Values arrive in chunks. Each block of at most [`BLOCK`] values is summarised exactly as a
//! corrected two-pass computation would (block mean, then the sum of squared deviations with
//! the rounding correction of Björck's corrected two-pass algorithm), and blocks are merged
//! with Chan, Golub and LeVeque's pairwise update. The inner loops are plain sums over
//! fixed-width lanes with no per-element division, so they vectorise. Non-finite values are
//! counted (NaN and ±Inf separately) and excluded from every moment: they never leak into a
//! mean or a standard deviation.
//!
//! Results are a pure function of the sequence of chunks and of the order of merges, which the
//! engine fixes, so a fingerprint is bit-for-bit identical at any thread count.

use serde::{Deserialize, Serialize};

/// Values summarised in one exact block before merging.
pub const BLOCK: usize = 2048;
const LANES: usize = 8;

/// A value that statistics can be accumulated over.
pub trait Element: Copy + Send + Sync {
    /// Widen to f64 (exact for f32, f16 and bf16).
    fn to_f64(self) -> f64;
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
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
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

/// Moments of one block of finite values.
struct BlockSummary {
    count: u64,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
    abs_sum: f64,
    sq_sum: f64,
}

impl Accumulator {
    /// An empty accumulator.
    pub const fn new() -> Self {
        Accumulator {
            count: 0,
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
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
        for block in values.chunks(BLOCK) {
            if let Some(summary) = summarise_finite(block) {
                self.merge_block(summary);
            } else {
                self.push_with_nonfinite(block);
            }
        }
    }

    /// Slow path for a block holding at least one NaN or Inf: count them, keep the rest.
    #[cold]
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
        if let Some(summary) = summarise_finite(&finite) {
            self.merge_block(summary);
        } else if !finite.is_empty() {
            // Finite values whose squares overflow f64: fall back to one value at a time.
            for x in finite {
                self.merge_block(BlockSummary {
                    count: 1,
                    mean: x,
                    m2: 0.0,
                    min: x,
                    max: x,
                    abs_sum: x.abs(),
                    sq_sum: x * x,
                });
            }
        }
    }

    fn merge_block(&mut self, b: BlockSummary) {
        if b.count == 0 {
            return;
        }
        self.merge_moments(b.count, b.mean, b.m2);
        self.min = self.min.min(b.min);
        self.max = self.max.max(b.max);
        self.abs_sum += b.abs_sum;
        self.sq_sum += b.sq_sum;
    }

    fn merge_moments(&mut self, count: u64, mean: f64, m2: f64) {
        if self.count == 0 {
            self.count = count;
            self.mean = mean;
            self.m2 = m2;
            return;
        }
        let n_a = self.count as f64;
        let n_b = count as f64;
        let n = n_a + n_b;
        let delta = mean - self.mean;
        self.mean += delta * (n_b / n);
        self.m2 += m2 + delta * delta * (n_a * n_b / n);
        self.count += count;
    }

    /// Merge another accumulator into this one (Chan et al.'s parallel update).
    pub fn merge(&mut self, other: &Accumulator) {
        self.nan += other.nan;
        self.inf += other.inf;
        if other.count == 0 {
            return;
        }
        self.merge_moments(other.count, other.mean, other.m2);
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
            mean: some(self.mean),
            std: some((self.m2.max(0.0) / n).sqrt()),
            min: some(self.min),
            max: some(self.max),
            abs_mean: some(self.abs_sum / n),
            l2: some(self.sq_sum.sqrt()),
            nan: self.nan,
            inf: self.inf,
        }
    }
}

/// Exact moments of a block, or `None` when it holds a non-finite value (or squares overflow).
#[inline]
fn summarise_finite<T: Element>(block: &[T]) -> Option<BlockSummary> {
    if block.is_empty() {
        return None;
    }
    let mut sum = [0.0f64; LANES];
    let mut sq = [0.0f64; LANES];
    let mut abs = [0.0f64; LANES];
    let mut lo = [f64::INFINITY; LANES];
    let mut hi = [f64::NEG_INFINITY; LANES];
    let mut chunks = block.chunks_exact(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            let x = c[l].to_f64();
            sum[l] += x;
            sq[l] += x * x;
            abs[l] += x.abs();
            lo[l] = if x < lo[l] { x } else { lo[l] };
            hi[l] = if x > hi[l] { x } else { hi[l] };
        }
    }
    for (l, &v) in chunks.remainder().iter().enumerate() {
        let x = v.to_f64();
        sum[l] += x;
        sq[l] += x * x;
        abs[l] += x.abs();
        lo[l] = if x < lo[l] { x } else { lo[l] };
        hi[l] = if x > hi[l] { x } else { hi[l] };
    }
    let sq_sum = fold(&sq);
    // Any NaN or Inf makes the sum of squares non-finite; so does overflow.
    if !sq_sum.is_finite() {
        return None;
    }
    let count = block.len();
    let total = fold(&sum);
    let mean = total / count as f64;

    let mut dev = [0.0f64; LANES];
    let mut dev2 = [0.0f64; LANES];
    let mut chunks = block.chunks_exact(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            let d = c[l].to_f64() - mean;
            dev[l] += d;
            dev2[l] += d * d;
        }
    }
    for (l, &v) in chunks.remainder().iter().enumerate() {
        let d = v.to_f64() - mean;
        dev[l] += d;
        dev2[l] += d * d;
    }
    let dev_sum = fold(&dev);
    // Corrected two-pass: subtract the rounding error of the mean.
    let m2 = (fold(&dev2) - dev_sum * dev_sum / count as f64).max(0.0);
    Some(BlockSummary {
        count: count as u64,
        mean: mean + dev_sum / count as f64,
        m2,
        min: lo.iter().copied().fold(f64::INFINITY, f64::min),
        max: hi.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        abs_sum: fold(&abs),
        sq_sum,
    })
}

#[inline(always)]
fn fold(lanes: &[f64; LANES]) -> f64 {
    ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5]))
        + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]))
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
}

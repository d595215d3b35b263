//! Pure statistics on `&[f64]`: moments, z-scores, Pearson and Spearman correlation, linear
//! interpolation onto a normalised grid, polynomial detrending, quantiles, the one-sample
//! Kolmogorov–Smirnov test against U(0, 1) and Clopper–Pearson intervals.
//!
//! Public functions validate their input (n, NaN, zero spread) and return typed errors.
//! The `*_kernel` functions used on hot paths assume finite input of the right length and
//! return `None` when the statistic is undefined.

use std::cmp::Ordering;

use crate::error::{Error, Result};

/// A set of values whose spread is at most this fraction of its largest magnitude is treated as
/// having zero spread: its z-score or correlation is undefined. 1e-12 is about 4500 ulps of
/// relative precision, far below any real variation of a per-layer std and far above the
/// rounding residue of a mean of equal values.
pub const ZERO_SPREAD_REL: f64 = 1e-12;

fn check_finite(what: &str, xs: &[f64]) -> Result<()> {
    match xs.iter().find(|x| !x.is_finite()) {
        Some(&value) => Err(Error::NonFiniteInput {
            what: what.to_owned(),
            value,
        }),
        None => Ok(()),
    }
}

fn check_len(what: &str, n: usize, needed: usize) -> Result<()> {
    if n < needed {
        return Err(Error::TooFewValues {
            what: what.to_owned(),
            n,
            needed,
        });
    }
    Ok(())
}

fn no_spread(what: &str) -> Error {
    Error::ZeroSpread {
        model: what.to_owned(),
        role: "input".to_owned(),
        after: String::new(),
    }
}

/// Arithmetic mean.
pub fn mean(xs: &[f64]) -> Result<f64> {
    check_len("mean", xs.len(), 1)?;
    check_finite("mean", xs)?;
    Ok(xs.iter().sum::<f64>() / xs.len() as f64)
}

/// Population standard deviation (ddof 0), two-pass.
pub fn pop_std(xs: &[f64]) -> Result<f64> {
    let m = mean(xs)?;
    Ok(pop_std_about(xs, m))
}

fn pop_std_about(xs: &[f64], m: f64) -> f64 {
    (xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / xs.len() as f64).sqrt()
}

fn max_abs(xs: &[f64]) -> f64 {
    xs.iter().fold(0.0f64, |a, x| a.max(x.abs()))
}

/// Coefficient of variation: population std over |mean|; `None` when the mean is zero.
pub fn coefficient_of_variation(xs: &[f64]) -> Result<Option<f64>> {
    let m = mean(xs)?;
    let s = pop_std_about(xs, m);
    Ok((m != 0.0).then(|| s / m.abs()))
}

/// z-score with the population std: `(x - mean) / std`. Needs two values and non-zero spread.
pub fn zscore(xs: &[f64]) -> Result<Vec<f64>> {
    check_len("z-score", xs.len(), 2)?;
    check_finite("z-score", xs)?;
    zscore_kernel(xs).ok_or_else(|| no_spread("z-score"))
}

/// [`zscore`] on validated input; `None` on zero spread.
pub(crate) fn zscore_kernel(xs: &[f64]) -> Option<Vec<f64>> {
    let m = xs.iter().sum::<f64>() / xs.len() as f64;
    let s = pop_std_about(xs, m);
    if s.is_nan() || s <= ZERO_SPREAD_REL * max_abs(xs) {
        return None;
    }
    Some(xs.iter().map(|x| (x - m) / s).collect())
}

/// Pearson correlation of two equal-length series. Needs two values and non-zero spread in
/// each; the result is clamped to [-1, 1].
pub fn pearson(x: &[f64], y: &[f64]) -> Result<f64> {
    if x.len() != y.len() {
        return Err(Error::invalid(
            "pearson: lengths",
            format!("{} and {}", x.len(), y.len()),
            "must be equal",
        ));
    }
    check_len("pearson", x.len(), 2)?;
    check_finite("pearson", x)?;
    check_finite("pearson", y)?;
    pearson_kernel(x, y).ok_or_else(|| no_spread("pearson"))
}

/// [`pearson`] on validated input of equal length; `None` when n < 2 or a spread is zero.
#[inline]
pub(crate) fn pearson_kernel(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len();
    if n < 2 || y.len() != n {
        return None;
    }
    let nf = n as f64;
    let mx = x.iter().sum::<f64>() / nf;
    let my = y.iter().sum::<f64>() / nf;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    let (mut ax, mut ay) = (0.0f64, 0.0f64);
    for (&a, &b) in x.iter().zip(y) {
        let dx = a - mx;
        let dy = b - my;
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
        ax = ax.max(a.abs());
        ay = ay.max(b.abs());
    }
    let tol = ZERO_SPREAD_REL * ZERO_SPREAD_REL * nf;
    if sxx.is_nan() || syy.is_nan() || sxx <= tol * ax * ax || syy <= tol * ay * ay {
        return None;
    }
    Some((sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0))
}

/// One series' share of [`pearson_kernel`], computed once so that many correlations against
/// it cost one dot product each: deviations from the mean, their sum of squares and the
/// largest magnitude. [`pearson_centered`] of two of these equals [`pearson_kernel`] of the
/// series bit for bit (same operations in the same order).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Centered {
    dev: Vec<f64>,
    ss: f64,
    max_abs: f64,
}

impl Centered {
    /// Centre `x` (reusing this value's buffer).
    pub(crate) fn set(&mut self, x: &[f64]) {
        let n = x.len() as f64;
        let m = x.iter().sum::<f64>() / n;
        self.dev.clear();
        let (mut ss, mut ax) = (0.0, 0.0f64);
        for &a in x {
            let d = a - m;
            self.dev.push(d);
            ss += d * d;
            ax = ax.max(a.abs());
        }
        self.ss = ss;
        self.max_abs = ax;
    }

    /// The centred form of `x`.
    #[cfg(test)]
    pub(crate) fn of(x: &[f64]) -> Self {
        let mut c = Centered::default();
        c.set(x);
        c
    }
}

/// [`pearson_kernel`] of two series from their [`Centered`] forms, bit for bit.
#[inline]
pub(crate) fn pearson_centered(x: &Centered, y: &Centered) -> Option<f64> {
    let n = x.dev.len();
    if n < 2 || y.dev.len() != n {
        return None;
    }
    let nf = n as f64;
    let mut sxy = 0.0;
    for (&dx, &dy) in x.dev.iter().zip(&y.dev) {
        sxy += dx * dy;
    }
    let (sxx, syy, ax, ay) = (x.ss, y.ss, x.max_abs, y.max_abs);
    let tol = ZERO_SPREAD_REL * ZERO_SPREAD_REL * nf;
    if sxx.is_nan() || syy.is_nan() || sxx <= tol * ax * ax || syy <= tol * ay * ay {
        return None;
    }
    Some((sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0))
}

/// Ranks (1-based), ties given their average rank; the order uses `total_cmp`.
pub fn ranks(xs: &[f64]) -> Result<Vec<f64>> {
    check_finite("ranks", xs)?;
    let mut out = vec![0.0; xs.len()];
    let mut idx = Vec::new();
    ranks_kernel(xs, &mut idx, &mut out);
    Ok(out)
}

/// [`ranks`] into caller buffers.
pub(crate) fn ranks_kernel(xs: &[f64], idx: &mut Vec<usize>, out: &mut [f64]) {
    idx.clear();
    idx.extend(0..xs.len());
    idx.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut i = 0;
    while i < idx.len() {
        let mut j = i + 1;
        while j < idx.len() && xs[idx[j]] == xs[idx[i]] {
            j += 1;
        }
        // Positions i..j (0-based) share the average of ranks i+1..=j.
        let r = (i + j + 1) as f64 / 2.0;
        for &k in &idx[i..j] {
            out[k] = r;
        }
        i = j;
    }
}

/// Spearman rank correlation: Pearson correlation of the average ranks.
pub fn spearman(x: &[f64], y: &[f64]) -> Result<f64> {
    let (rx, ry) = (ranks(x)?, ranks(y)?);
    pearson(&rx, &ry).map_err(|e| match e {
        Error::ZeroSpread { .. } => no_spread("spearman"),
        e => e,
    })
}

/// Linearly interpolate `src` (at positions j/(m-1)) onto `n` points at i/(n-1), as
/// `numpy.interp` does. Needs `src.len() >= 2` and `n >= 2`.
pub fn interpolate(src: &[f64], n: usize) -> Result<Vec<f64>> {
    check_len("interpolate: source", src.len(), 2)?;
    check_len("interpolate: target", n, 2)?;
    check_finite("interpolate", src)?;
    let mut out = vec![0.0; n];
    interpolate_kernel(src, &mut out);
    Ok(out)
}

/// [`interpolate`] into `out` (its length is the target length; both lengths >= 2).
///
/// Positions are computed in exact integer arithmetic: target i sits at source position
/// `i (m-1) / (n-1)`, split into an integer part and an exact fraction.
pub(crate) fn interpolate_kernel(src: &[f64], out: &mut [f64]) {
    let m = src.len() as u64;
    let n = out.len() as u64;
    debug_assert!(m >= 2 && n >= 2);
    let (mm, nn) = (m - 1, n - 1);
    for (i, o) in out.iter_mut().enumerate() {
        let num = i as u64 * mm;
        let j = (num / nn) as usize;
        let rem = num % nn;
        *o = if rem == 0 {
            src[j]
        } else {
            let f = rem as f64 / nn as f64;
            src[j] + f * (src[j + 1] - src[j])
        };
    }
}

/// Orthonormal basis of polynomials of degree 0..=order sampled on the grid i/(n-1), stored
/// column after column (`order + 1` columns of length `n`). Modified Gram–Schmidt, applied
/// twice for stability. `n` must exceed `order`.
pub(crate) fn poly_basis(n: usize, order: usize) -> Vec<f64> {
    let mut q = vec![0.0; n * (order + 1)];
    let denom = (n.max(2) - 1) as f64;
    for k in 0..=order {
        let (done, rest) = q.split_at_mut(k * n);
        let col = &mut rest[..n];
        for (i, c) in col.iter_mut().enumerate() {
            *c = (i as f64 / denom).powi(k as i32);
        }
        for _ in 0..2 {
            for prev in done.chunks_exact(n) {
                let d: f64 = prev.iter().zip(col.iter()).map(|(a, b)| a * b).sum();
                for (c, p) in col.iter_mut().zip(prev) {
                    *c -= d * p;
                }
            }
        }
        let norm = col.iter().map(|c| c * c).sum::<f64>().sqrt();
        for c in col.iter_mut() {
            *c /= norm;
        }
    }
    q
}

/// Residual of `x` after projecting out the columns of `basis` (see [`poly_basis`]).
pub(crate) fn residual_kernel(x: &[f64], basis: &[f64], out: &mut [f64]) {
    let n = x.len();
    out.copy_from_slice(x);
    for col in basis.chunks_exact(n) {
        let d: f64 = col.iter().zip(out.iter()).map(|(a, b)| a * b).sum();
        for (o, c) in out.iter_mut().zip(col) {
            *o -= d * c;
        }
    }
}

/// Residuals of a least-squares polynomial fit of the given order on the grid i/(n-1).
/// Needs more values than coefficients.
pub fn detrend(xs: &[f64], order: usize) -> Result<Vec<f64>> {
    check_len("detrend", xs.len(), order + 2)?;
    check_finite("detrend", xs)?;
    let basis = poly_basis(xs.len(), order);
    let mut out = vec![0.0; xs.len()];
    residual_kernel(xs, &basis, &mut out);
    Ok(out)
}

/// Lag-1 autocorrelation `sum e_t e_(t-1) / sum e_t^2` of a series (mean not removed: meant
/// for residuals). `None` for fewer than 2 values or zero sum of squares.
pub(crate) fn lag1_kernel(e: &[f64]) -> Option<f64> {
    if e.len() < 2 {
        return None;
    }
    let ss: f64 = e.iter().map(|x| x * x).sum();
    if ss.is_nan() || ss <= 0.0 {
        return None;
    }
    let c: f64 = e.windows(2).map(|w| w[0] * w[1]).sum();
    Some(c / ss)
}

/// Linear-interpolation quantile (type 7, as `numpy.quantile`'s default) of sorted values.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> Result<f64> {
    check_len("quantile", sorted.len(), 1)?;
    if !(0.0..=1.0).contains(&q) {
        return Err(Error::invalid("quantile", q, "must lie in [0, 1]"));
    }
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    Ok(sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo]))
}

/// Median (average of the two middle values for an even count).
pub fn median(xs: &[f64]) -> Result<f64> {
    check_finite("median", xs)?;
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    quantile_sorted(&v, 0.5)
}

/// Result of a one-sample Kolmogorov–Smirnov test.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Ks {
    /// Sample size.
    pub n: usize,
    /// The statistic D = sup |F_n(x) - x|.
    pub d: f64,
    /// Asymptotic p-value (see [`kolmogorov_q`]).
    pub p: f64,
}

/// One-sample KS test of values in [0, 1] against the uniform distribution. Needs one value.
pub fn ks_uniform(xs: &[f64]) -> Result<Ks> {
    check_len("ks", xs.len(), 1)?;
    check_finite("ks", xs)?;
    if let Some(&x) = xs.iter().find(|x| !(0.0..=1.0).contains(*x)) {
        return Err(Error::invalid("ks: value", x, "must lie in [0, 1]"));
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len() as f64;
    let mut d = 0.0f64;
    for (i, &x) in v.iter().enumerate() {
        d = d.max((i + 1) as f64 / n - x).max(x - i as f64 / n);
    }
    let sn = n.sqrt();
    let p = kolmogorov_q((sn + 0.12 + 0.11 / sn) * d);
    Ok(Ks { n: v.len(), d, p })
}

/// Complementary Kolmogorov distribution Q(λ) = P(K > λ) = 2 Σ (-1)^(k-1) exp(-2k²λ²).
///
/// With Stephens' small-sample correction λ = (√n + 0.12 + 0.11/√n) D this gives the KS
/// p-value to about two significant digits for n ≥ 5 (Stephens 1970, J. R. Stat. Soc. B 32;
/// Press et al., Numerical Recipes, 3rd ed., §6.14 and §14.3.3). For λ < 1.18 the dual series
/// 1 - √(2π)/λ Σ exp(-(2k-1)²π²/(8λ²)) converges faster and is used instead.
pub fn kolmogorov_q(lambda: f64) -> f64 {
    if lambda.is_nan() || lambda <= 0.0 {
        return 1.0;
    }
    if lambda < 1.18 {
        let y = (-std::f64::consts::PI * std::f64::consts::PI / (8.0 * lambda * lambda)).exp();
        let s: f64 = (0..8).map(|k| y.powi((2 * k + 1) * (2 * k + 1))).sum();
        (1.0 - (2.0 * std::f64::consts::PI).sqrt() / lambda * s).clamp(0.0, 1.0)
    } else {
        let x = (-2.0 * lambda * lambda).exp();
        let mut s = 0.0;
        let mut sign = 1.0;
        for k in 1..=100i32 {
            let term = x.powi(k * k);
            s += sign * term;
            if term < 1e-17 {
                break;
            }
            sign = -sign;
        }
        (2.0 * s).clamp(0.0, 1.0)
    }
}

/// Clopper–Pearson ("exact") two-sided interval for a binomial proportion with `k` successes
/// in `n` trials, at the given confidence (e.g. 0.95). Closed forms at k = 0 and k = n; else
/// the beta quantiles, found by bisection on statrs' regularized incomplete beta function.
pub fn clopper_pearson(k: u64, n: u64, confidence: f64) -> Result<(f64, f64)> {
    if n == 0 {
        return Err(Error::TooFewValues {
            what: "Clopper-Pearson interval".into(),
            n: 0,
            needed: 1,
        });
    }
    if k > n {
        return Err(Error::invalid(
            "Clopper-Pearson: successes",
            k,
            "exceed the trials",
        ));
    }
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(Error::invalid(
            "confidence",
            confidence,
            "must lie in (0, 1)",
        ));
    }
    let a = (1.0 - confidence) / 2.0;
    let (kf, nf) = (k as f64, n as f64);
    let lo = if k == 0 {
        0.0
    } else if k == n {
        a.powf(1.0 / nf)
    } else {
        beta_quantile(kf, nf - kf + 1.0, a)
    };
    let hi = if k == n {
        1.0
    } else if k == 0 {
        1.0 - a.powf(1.0 / nf)
    } else {
        beta_quantile(kf + 1.0, nf - kf, 1.0 - a)
    };
    Ok((lo, hi))
}

/// The x with I_x(a, b) = q, by bisection (I is increasing in x). 200 halvings reach the
/// resolution of f64 anywhere in [0, 1].
fn beta_quantile(a: f64, b: f64, q: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        let v = statrs::function::beta::checked_beta_reg(a, b, mid).unwrap_or(f64::NAN);
        match v.partial_cmp(&q) {
            Some(Ordering::Less) => lo = mid,
            Some(_) => hi = mid,
            // Not reachable for a, b > 0 and mid in (0, 1); keep the bracket.
            None => break,
        }
    }
    0.5 * (lo + hi)
}

/// The smallest f64 greater than `x` (finite `x`).
pub(crate) fn next_up(x: f64) -> f64 {
    if x.is_nan() || x == f64::INFINITY {
        return x;
    }
    if x == 0.0 {
        return f64::from_bits(1);
    }
    let bits = x.to_bits();
    f64::from_bits(if x > 0.0 { bits + 1 } else { bits - 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn centred_pearson_equals_the_kernel_bit_for_bit() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let mut c = Centered::default();
        for n in [2, 3, 7, 30, 64, 129] {
            for _ in 0..50 {
                let x: Vec<f64> = (0..n).map(|i| next() + 0.01 * i as f64).collect();
                let y: Vec<f64> = (0..n).map(|_| 3.0 * next() - 1.0).collect();
                c.set(&y);
                let got = pearson_centered(&Centered::of(&x), &c);
                let want = pearson_kernel(&x, &y);
                assert_eq!(got.map(f64::to_bits), want.map(f64::to_bits), "n = {n}");
            }
        }
        // Zero spread is refused by both.
        let flat = [2.0; 5];
        let x = [1.0, 2.0, 3.0, 4.0, 6.0];
        assert_eq!(pearson_kernel(&flat, &x), None);
        assert_eq!(
            pearson_centered(&Centered::of(&flat), &Centered::of(&x)),
            None
        );
    }

    #[test]
    fn pearson_hand_example() {
        // x = [1, 2, 4]: mean 7/3, deviations (-4/3, -1/3, 5/3), sum of squares 14/3.
        // y = [2, 1, 3]: mean 2, deviations (0, -1, 1), sum of squares 2.
        // Cross products: 0 + 1/3 + 5/3 = 2, so r = 2 / sqrt(28/3) = sqrt(3/7).
        let r = pearson(&[1.0, 2.0, 4.0], &[2.0, 1.0, 3.0]).unwrap();
        assert!(close(r, (3.0f64 / 7.0).sqrt(), 1e-15), "{r}");
    }

    #[test]
    fn pearson_rejects_degenerate_input() {
        assert!(matches!(
            pearson(&[1.0], &[2.0]),
            Err(Error::TooFewValues { n: 1, .. })
        ));
        assert!(matches!(
            pearson(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]),
            Err(Error::ZeroSpread { .. })
        ));
        // Equal values whose mean does not round-trip still count as zero spread.
        assert!(matches!(
            pearson(&[0.1, 0.1, 0.1], &[1.0, 2.0, 3.0]),
            Err(Error::ZeroSpread { .. })
        ));
        assert!(matches!(
            pearson(&[1.0, f64::NAN], &[1.0, 2.0]),
            Err(Error::NonFiniteInput { .. })
        ));
        assert!(matches!(
            pearson(&[1.0, 2.0], &[1.0, 2.0, 3.0]),
            Err(Error::InvalidArgument { .. })
        ));
    }

    #[test]
    fn zscore_has_mean_zero_and_unit_population_std() {
        let z = zscore(&[3.0, 1.0, 4.0, 1.0, 5.0]).unwrap();
        assert!(close(mean(&z).unwrap(), 0.0, 1e-15));
        assert!(close(pop_std(&z).unwrap(), 1.0, 1e-15));
        assert!(matches!(zscore(&[2.0, 2.0]), Err(Error::ZeroSpread { .. })));
        assert!(matches!(zscore(&[2.0]), Err(Error::TooFewValues { .. })));
    }

    #[test]
    fn ranks_average_ties() {
        assert_eq!(
            ranks(&[10.0, 20.0, 10.0, 30.0]).unwrap(),
            vec![1.5, 3.0, 1.5, 4.0]
        );
        // Spearman of a monotone transform is 1.
        let x = [0.3, 0.1, 0.7, 0.2];
        let y: Vec<f64> = x.iter().map(|v: &f64| v.exp()).collect();
        assert!(close(spearman(&x, &y).unwrap(), 1.0, 1e-15));
    }

    #[test]
    fn interpolation_matches_hand_values() {
        // [1, 2, 4] at 0, 1/2, 1 onto 5 points 0, 1/4, ..., 1: source positions 0, .5, 1, 1.5, 2.
        let v = interpolate(&[1.0, 2.0, 4.0], 5).unwrap();
        assert_eq!(v, vec![1.0, 1.5, 2.0, 3.0, 4.0]);
        // Same length is the identity.
        assert_eq!(
            interpolate(&[1.0, 5.0, 2.0], 3).unwrap(),
            vec![1.0, 5.0, 2.0]
        );
        assert!(interpolate(&[1.0], 3).is_err());
    }

    #[test]
    fn detrend_removes_polynomials_exactly() {
        let x: Vec<f64> = (0..9)
            .map(|i| {
                let t = i as f64 / 8.0;
                2.0 - 3.0 * t + 0.5 * t * t
            })
            .collect();
        for r in detrend(&x, 2).unwrap() {
            assert!(r.abs() < 1e-13, "{r}");
        }
        // Order 1 leaves the quadratic part, which is orthogonal to constants.
        let r1 = detrend(&x, 1).unwrap();
        assert!(r1.iter().sum::<f64>().abs() < 1e-13);
        assert!(r1.iter().any(|r| r.abs() > 1e-3));
        assert!(matches!(
            detrend(&[1.0, 2.0, 3.0], 2),
            Err(Error::TooFewValues { .. })
        ));
    }

    #[test]
    fn quantiles_match_numpy_type_7() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_sorted(&v, 0.5).unwrap(), 2.5);
        // numpy.quantile([1,2,3,4], 0.95) = 3.85
        assert!(close(quantile_sorted(&v, 0.95).unwrap(), 3.85, 1e-12));
        assert_eq!(median(&[5.0, 1.0, 3.0]).unwrap(), 3.0);
        assert!(quantile_sorted(&[], 0.5).is_err());
        assert!(quantile_sorted(&v, 1.5).is_err());
    }

    #[test]
    fn clopper_pearson_known_values() {
        // R: binom.test(5, 10)$conf.int = 0.1870860 0.8129140
        let (lo, hi) = clopper_pearson(5, 10, 0.95).unwrap();
        assert!(
            close(lo, 0.187_086_0, 1e-7) && close(hi, 0.812_914_0, 1e-7),
            "{lo} {hi}"
        );
        // k = 0: upper = 1 - 0.025^(1/10) = 0.3084971
        let (lo, hi) = clopper_pearson(0, 10, 0.95).unwrap();
        assert_eq!(lo, 0.0);
        assert!(close(hi, 0.308_497_2, 1e-7), "{hi}");
        // R: binom.test(1, 1000)$conf.int = 2.531749e-05 5.558924e-03
        let (lo, hi) = clopper_pearson(1, 1000, 0.95).unwrap();
        assert!(
            close(lo, 2.531_749e-5, 1e-10) && close(hi, 5.558_924e-3, 1e-9),
            "{lo} {hi}"
        );
        assert!(clopper_pearson(0, 0, 0.95).is_err());
        assert!(clopper_pearson(3, 2, 0.95).is_err());
    }

    #[test]
    fn kolmogorov_tail_matches_tabulated_critical_values() {
        // scipy.special.kolmogorov at the same points (both series are exact to ~1e-12).
        for (l, q) in [
            (1.2238, 0.10002342783567782),
            (1.3581, 0.0499996304316674),
            (1.6276, 0.010001537333060776),
            (1.1799, 0.12351204971188676),
            (1.1801, 0.12339559161939295),
            (0.5, 0.9639452436648751),
            (2.5, 7.453306344157342e-06),
        ] {
            assert!(
                close(kolmogorov_q(l), q, 1e-11),
                "Q({l}) = {} vs {q}",
                kolmogorov_q(l)
            );
        }
        assert_eq!(kolmogorov_q(0.0), 1.0);
        assert!(kolmogorov_q(0.2) > 0.999_999);
    }

    #[test]
    fn ks_accepts_a_uniform_grid_and_rejects_a_skewed_one() {
        let grid: Vec<f64> = (0..1000).map(|i| (i as f64 + 0.5) / 1000.0).collect();
        let ks = ks_uniform(&grid).unwrap();
        assert!(ks.d <= 0.0005 + 1e-12 && ks.p > 0.999, "{ks:?}");
        let skewed: Vec<f64> = grid.iter().map(|u| u * u).collect();
        let ks = ks_uniform(&skewed).unwrap();
        assert!(ks.d > 0.2 && ks.p < 1e-20, "{ks:?}");
        assert!(ks_uniform(&[]).is_err());
        assert!(ks_uniform(&[1.5]).is_err());
    }

    #[test]
    fn next_up_is_strictly_greater() {
        for x in [-1.0, -1e-300, 0.0, 0.5, 1e300] {
            assert!(next_up(x) > x);
        }
    }
}

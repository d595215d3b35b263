//! Exact null distributions of the matching tests, and p-value combination, in log space.
//!
//! **Coincidences of two matchings.** Let `m` units of one model be matched injectively into
//! the `n ≥ m` units of another, twice: `σ1` and `σ2`. When `σ1` is a uniformly random
//! injection independent of `σ2` (see [`super`] for when that holds), the number of
//! coincidences `K = #{i : σ1(i) = σ2(i)}` has
//!
//! ```text
//! P(K = k) = C(m, k) / (n)_k · S(m − k, n − k),   S(a, b) = Σ_{j=0..a} (−1)^j C(a, j) / (b)_j
//! ```
//!
//! where `(n)_k = n (n−1) … (n−k+1)`: choose the `k` coinciding units, then count by
//! inclusion–exclusion the injections of the other `m − k` that avoid `σ2` everywhere. For
//! `m = n` this is the number of fixed points of a uniform random permutation,
//! `P(K = k) = (1/k!) Σ_{j ≤ n−k} (−1)^j / j!`, which tends to Poisson(1). The terms of `S`
//! alternate and fall at least as fast as `1/j!`, so the sum is computed to full double
//! precision without cancellation, and every probability is kept as a natural logarithm: the
//! tail `P(K ≥ n) = 1/n!` of a 4096-unit layer is `10^-13019`, far below the smallest f64.
//!
//! **Discreteness.** `K` is discrete and mostly 0 or 1 under the null, so `P(K ≥ k)` is a
//! valid but conservative p-value (at `K = 0` it is 1). Fisher's method needs p-values that
//! are uniform under the null, so layers enter it through the randomized p-value
//! `P(K > k) + U · P(K = k)` with `U` uniform on (0, 1] from a seeded stream, which is exactly
//! uniform under the null (the randomized test of Lehmann & Romano, *Testing Statistical
//! Hypotheses*, 3rd ed., §3.2). For a copied layer the two differ by at most `P(K = k)`, a
//! negligible amount.
//!
//! **Fisher's method.** `X = −2 Σ ln p_l` is chi-square with `2L` degrees of freedom under the
//! null (Fisher 1932, *Statistical Methods for Research Workers*, 4th ed., §21.1). For an even
//! number of degrees of freedom the survival function has the closed form
//! `P(X > x) = e^{−x/2} Σ_{k<L} (x/2)^k / k!` (the Poisson–gamma identity), evaluated here as a
//! log-sum-exp, so `log10 p` is exact wherever `p` itself would underflow.

use serde::{Deserialize, Serialize};
use statrs::function::gamma::ln_gamma;

/// `ln C(n, k)`.
fn ln_choose(n: u64, k: u64) -> f64 {
    if k == 0 || k == n {
        return 0.0;
    }
    ln_gamma(n as f64 + 1.0) - ln_gamma(k as f64 + 1.0) - ln_gamma((n - k) as f64 + 1.0)
}

/// `ln (n)_k = ln n!/(n−k)!`.
fn ln_falling(n: u64, k: u64) -> f64 {
    if k == 0 {
        return 0.0;
    }
    ln_gamma(n as f64 + 1.0) - ln_gamma((n - k) as f64 + 1.0)
}

/// `S(a, b) = Σ_{j=0..a} (−1)^j C(a, j) / (b)_j` for `a ≤ b`: the fraction of injections of
/// `a` points into `b` that avoid a fixed injection at every point. Terms alternate and shrink
/// by at least `1/(j+1)` each, so partial sums bracket the limit.
fn avoid_fraction(a: u64, b: u64) -> f64 {
    debug_assert!(a <= b);
    let mut sum = 1.0f64;
    let mut term = 1.0f64;
    for j in 0..a {
        // term_{j+1} = term_j (a − j) / ((j + 1)(b − j)); b − j ≥ 1 since j < a ≤ b.
        term *= (a - j) as f64 / ((j + 1) as f64 * (b - j) as f64);
        if j % 2 == 0 {
            sum -= term;
        } else {
            sum += term;
        }
        if term < 1e-20 * sum.abs() {
            break;
        }
    }
    sum.max(0.0)
}

/// `ln P(K = k)` for `m` units matched into `n ≥ m` (−∞ for impossible values).
pub fn ln_pmf(m: u64, n: u64, k: u64) -> f64 {
    if m > n || k > m {
        return f64::NEG_INFINITY;
    }
    let s = avoid_fraction(m - k, n - k);
    if s <= 0.0 {
        return f64::NEG_INFINITY;
    }
    ln_choose(m, k) - ln_falling(n, k) + s.ln()
}

/// `ln P(K ≥ k)` for `m` units matched into `n ≥ m`.
pub fn ln_sf(m: u64, n: u64, k: u64) -> f64 {
    if k == 0 {
        return 0.0;
    }
    if k > m {
        return f64::NEG_INFINITY;
    }
    // The pmf falls like 1/k! beyond k = 1: 400 terms reach far below f64 resolution.
    let last = m.min(k.saturating_add(400));
    log_sum_exp((k..=last).map(|j| ln_pmf(m, n, j)))
}

/// `ln(P(K > k) + u · P(K = k))`, the randomized p-value, for `u` in (0, 1].
pub fn ln_randomized(m: u64, n: u64, k: u64, u: f64) -> f64 {
    let above = ln_sf(m, n, k.saturating_add(1));
    let at = ln_pmf(m, n, k) + u.ln();
    log_add_exp(above, at)
}

/// `ln P(X = k)` for `X ~ Binomial(t, π)`, `0 < π < 1`.
pub fn ln_binomial_pmf(t: u64, pi: f64, k: u64) -> f64 {
    if k > t {
        return f64::NEG_INFINITY;
    }
    ln_choose(t, k) + k as f64 * pi.ln() + (t - k) as f64 * (-pi).ln_1p()
}

/// `ln P(X ≥ k)` for `X ~ Binomial(t, π)`, `0 < π < 1`, summed exactly in log space.
pub fn ln_binomial_sf(t: u64, pi: f64, k: u64) -> f64 {
    if k == 0 {
        return 0.0;
    }
    if k > t {
        return f64::NEG_INFINITY;
    }
    log_sum_exp((k..=t).map(|j| ln_binomial_pmf(t, pi, j))).min(0.0)
}

/// `ln(P(X > k) + u · P(X = k))` for `X ~ Binomial(t, π)` and `u` in (0, 1].
pub fn ln_binomial_randomized(t: u64, pi: f64, k: u64, u: f64) -> f64 {
    log_add_exp(
        ln_binomial_sf(t, pi, k.saturating_add(1)),
        ln_binomial_pmf(t, pi, k) + u.ln(),
    )
    .min(0.0)
}

/// `ln(e^a + e^b)`.
pub fn log_add_exp(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a >= b { (a, b) } else { (b, a) };
    if hi == f64::NEG_INFINITY {
        return hi;
    }
    hi + (lo - hi).exp().ln_1p()
}

/// `ln Σ e^{x_i}` (−∞ for an empty or all −∞ input).
pub fn log_sum_exp(xs: impl IntoIterator<Item = f64>) -> f64 {
    let v: Vec<f64> = xs.into_iter().collect();
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if hi == f64::NEG_INFINITY {
        return hi;
    }
    hi + v.iter().map(|&x| (x - hi).exp()).sum::<f64>().ln()
}

/// `ln P(X > x)` for X chi-square with `2 l` degrees of freedom (`l ≥ 1`), exact:
/// `−x/2 + ln Σ_{k<l} (x/2)^k / k!`.
pub fn ln_chi2_sf_even(x: f64, l: u64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return 0.0;
    }
    let h = x / 2.0;
    let ln_h = h.ln();
    let terms = (0..l).map(|k| k as f64 * ln_h - ln_gamma(k as f64 + 1.0));
    (-h + log_sum_exp(terms)).min(0.0)
}

/// p-values combined by Fisher's method.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fisher {
    /// `X = −2 Σ ln p`.
    pub chi2: f64,
    /// Degrees of freedom, twice the number of p-values.
    pub dof: u64,
    /// The combined p-value (0 when it underflows; see `log10_p`).
    pub p: f64,
    /// log10 of the combined p-value, exact where `p` underflows.
    pub log10_p: f64,
}

/// Combine p-values given as natural logarithms (each ≤ 0). `None` for an empty input.
pub fn fisher(ln_ps: &[f64]) -> Option<Fisher> {
    if ln_ps.is_empty() {
        return None;
    }
    let chi2 = -2.0 * ln_ps.iter().map(|&l| l.min(0.0)).sum::<f64>();
    let l = ln_ps.len() as u64;
    let ln_p = ln_chi2_sf_even(chi2, l);
    Some(Fisher {
        chi2,
        dof: 2 * l,
        p: ln_p.exp(),
        log10_p: ln_p / std::f64::consts::LN_10,
    })
}

/// `ln P(Z > z)` for a standard normal Z: from `erfc` up to z = 8, then the asymptotic series
/// `φ(z)/z · (1 − 1/z² + 3/z⁴ − 15/z⁶)` (relative error below 1e-6 there).
pub fn ln_normal_sf(z: f64) -> f64 {
    if z < 8.0 {
        return (0.5 * statrs::function::erf::erfc(z / std::f64::consts::SQRT_2)).ln();
    }
    let z2 = z * z;
    let series = 1.0 - 1.0 / z2 + 3.0 / (z2 * z2) - 15.0 / (z2 * z2 * z2);
    -0.5 * z2 - z.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln() + series.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every injection of `m` points into `n`, by brute force.
    fn injections(m: usize, n: usize) -> Vec<Vec<usize>> {
        fn rec(m: usize, n: usize, cur: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
            if cur.len() == m {
                out.push(cur.clone());
                return;
            }
            for j in 0..n {
                if !cur.contains(&j) {
                    cur.push(j);
                    rec(m, n, cur, out);
                    cur.pop();
                }
            }
        }
        let mut out = Vec::new();
        rec(m, n, &mut Vec::new(), &mut out);
        out
    }

    #[test]
    fn pmf_matches_enumeration() {
        for (m, n) in [
            (1, 1),
            (2, 2),
            (3, 3),
            (4, 4),
            (5, 5),
            (2, 5),
            (3, 6),
            (4, 7),
            (1, 4),
        ] {
            let all = injections(m, n);
            // σ2 fixed: the identity on 0..m (any fixed injection gives the same law).
            let mut counts = vec![0u64; m + 1];
            for f in &all {
                counts[(0..m).filter(|&i| f[i] == i).count()] += 1;
            }
            for k in 0..=m {
                let exact = counts[k] as f64 / all.len() as f64;
                let got = ln_pmf(m as u64, n as u64, k as u64).exp();
                assert!(
                    (got - exact).abs() < 1e-12,
                    "m {m} n {n} k {k}: {got} vs {exact}"
                );
                let tail: f64 = counts[k..].iter().sum::<u64>() as f64 / all.len() as f64;
                let got = ln_sf(m as u64, n as u64, k as u64).exp();
                assert!((got - tail).abs() < 1e-12, "sf m {m} n {n} k {k}");
            }
        }
    }

    #[test]
    fn large_layers_tend_to_poisson_and_stay_finite() {
        // P(K = k) → e^{-1}/k! for m = n large.
        for k in 0..6u64 {
            let got = ln_pmf(4096, 4096, k);
            let poisson = -1.0 - ln_gamma(k as f64 + 1.0);
            assert!((got - poisson).abs() < 1e-9, "k {k}");
        }
        // All units coincide: 1/n!.
        let all = ln_sf(4096, 4096, 4096);
        assert!((all + ln_gamma(4097.0)).abs() < 1e-6);
        assert!(all.is_finite() && all / std::f64::consts::LN_10 < -13000.0);
        // Mass sums to one.
        let total = log_sum_exp((0..=50).map(|k| ln_pmf(1024, 4864, k)));
        assert!(total.abs() < 1e-12);
        // Mean m/n.
        let mean: f64 = (0..=50u64)
            .map(|k| k as f64 * ln_pmf(1024, 4864, k).exp())
            .sum();
        assert!((mean - 1024.0 / 4864.0).abs() < 1e-12);
    }

    #[test]
    fn randomized_p_is_uniform() {
        // P(p_rand ≤ α) = α exactly: check by summing over k and integrating u.
        let (m, n) = (6u64, 9u64);
        for alpha in [0.01, 0.1, 0.37, 0.8] {
            let mut prob = 0.0;
            for k in 0..=m {
                let above = ln_sf(m, n, k + 1).exp();
                let at = ln_pmf(m, n, k).exp();
                // p = above + u·at ≤ α  ⇔  u ≤ (α − above)/at
                let frac = ((alpha - above) / at).clamp(0.0, 1.0);
                prob += at * frac;
            }
            assert!((prob - alpha).abs() < 1e-12, "{alpha}: {prob}");
        }
        let r = ln_randomized(100, 100, 0, 1.0);
        assert!(r.abs() < 1e-12);
    }

    #[test]
    fn fisher_matches_statrs_and_survives_underflow() {
        use statrs::distribution::{ChiSquared, ContinuousCDF};
        for (x, l) in [(0.5, 1u64), (3.0, 2), (20.0, 5), (100.0, 30), (7.0, 40)] {
            let want = ChiSquared::new(2.0 * l as f64).unwrap().sf(x);
            let got = ln_chi2_sf_even(x, l).exp();
            assert!(
                (got - want).abs() < 1e-12 * want.max(1e-300) + 1e-15,
                "{x} {l}"
            );
        }
        let f = fisher(&[-3000.0, -2500.0, -0.1]).unwrap();
        assert_eq!(f.dof, 6);
        assert_eq!(f.p, 0.0);
        assert!(f.log10_p < -2000.0 && f.log10_p.is_finite());
        let one = fisher(&[0.2f64.ln()]).unwrap();
        assert!((one.p - 0.2).abs() < 1e-12);
        assert!(fisher(&[]).is_none());
    }

    #[test]
    fn binomial_tail_matches_statrs() {
        use statrs::distribution::{Binomial, DiscreteCDF};
        for (t, pi, k) in [
            (10u64, 0.1, 3u64),
            (40, 1.0 / 21.0, 5),
            (7, 0.5, 0),
            (7, 0.5, 7),
        ] {
            let b = Binomial::new(pi, t).unwrap();
            let want = if k == 0 { 1.0 } else { b.sf(k - 1) };
            let got = ln_binomial_sf(t, pi, k).exp();
            assert!((got - want).abs() < 1e-12, "{t} {pi} {k}: {got} vs {want}");
        }
        // A copied layer: 512 of 512 units against 30 coincidences in 20 draws.
        let l = ln_binomial_sf(542, 1.0 / 21.0, 512) / std::f64::consts::LN_10;
        assert!(l < -600.0 && l.is_finite(), "{l}");
        assert_eq!(ln_binomial_sf(5, 0.3, 6), f64::NEG_INFINITY);
        assert!(ln_binomial_randomized(5, 0.3, 0, 1.0).abs() < 1e-12);
    }

    #[test]
    fn normal_tail() {
        for z in [0.0, 1.0, 3.0, 7.9] {
            let want = 0.5 * statrs::function::erf::erfc(z / std::f64::consts::SQRT_2);
            assert!((ln_normal_sf(z) - want.ln()).abs() < 1e-9);
        }
        // Continuity across the switch, and far tail finite.
        assert!(
            (ln_normal_sf(8.0) - (0.5 * statrs::function::erf::erfc(8.0 / 2f64.sqrt())).ln()).abs()
                < 1e-5
        );
        assert!(ln_normal_sf(40.0).is_finite() && ln_normal_sf(40.0) < -800.0);
    }
}

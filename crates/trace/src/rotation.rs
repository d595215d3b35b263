//! Random rotations of a residual basis, the draws of the calibrated null of the matching test
//! ([`super::csu`]).
//!
//! **Haar rotations.** A Haar-distributed orthogonal matrix is the `Q` factor of the QR
//! decomposition of an `n × n` standard Gaussian matrix, with the signs of `R`'s diagonal moved
//! into `Q` (Mezzadri, "How to generate random matrices from the classical compact groups",
//! Notices AMS 54(5), 2007). Done by Householder reflections, step `k` reflects a fresh
//! Gaussian vector of length `n − k` (the lower part of column `k` after the earlier
//! reflections is again standard Gaussian, by the rotation invariance of the Gaussian), so `Q`
//! is stored as its `n` reflection vectors, `O(n²)` numbers drawn in `O(n²)` time, and applied
//! to a vector in `O(n²)` without ever forming the matrix (Stewart, "The efficient generation
//! of random orthogonal matrices with an application to condition estimators", SIAM J. Numer.
//! Anal. 17(3), 1980).

use ndarray::{Array2, Axis};
use rand::Rng;
use rand_distr::StandardNormal;

/// One random orthogonal matrix `Q`, kept in factored form.
pub(crate) struct Orthogonal {
    n: usize,
    /// Householder vectors: entry `k` has length `n − k` and unit norm.
    reflections: Vec<Vec<f64>>,
    /// The final diagonal of signs.
    signs: Vec<f64>,
}

impl Orthogonal {
    /// Draw a Haar-random `Q` of size `n` with `rng`.
    pub(crate) fn haar(n: usize, rng: &mut impl Rng) -> Self {
        let mut reflections = Vec::with_capacity(n);
        let mut signs = Vec::with_capacity(n);
        for k in 0..n {
            let mut x: Vec<f64> = (0..n - k).map(|_| rng.sample(StandardNormal)).collect();
            let norm = x.iter().map(|v| v * v).sum::<f64>().sqrt();
            let s = if x[0] < 0.0 { -1.0 } else { 1.0 };
            x[0] += s * norm;
            let un = x.iter().map(|v| v * v).sum::<f64>().sqrt();
            if un > 0.0 {
                x.iter_mut().for_each(|v| *v /= un);
            }
            // H_k x = −s‖x‖ e_0, so R's diagonal entry has sign −s: moved into Q.
            signs.push(-s);
            reflections.push(x);
        }
        Orthogonal {
            n,
            reflections,
            signs,
        }
    }

    /// Replace every row `v` of `rows` (`[·, n]`) by `Q v`.
    pub(crate) fn apply_rows(&self, rows: &mut Array2<f32>) {
        debug_assert_eq!(rows.ncols(), self.n);
        let mut v = vec![0f64; self.n];
        for mut row in rows.axis_iter_mut(Axis(0)) {
            for (d, (&x, &s)) in row.iter().zip(&self.signs).enumerate() {
                v[d] = x as f64 * s;
            }
            // Q = H_0 H_1 ⋯ H_{n−1} D: apply D first, then H_{n−1}, …, H_0.
            for (k, u) in self.reflections.iter().enumerate().rev() {
                let tail = &mut v[k..];
                let dot: f64 = tail.iter().zip(u).map(|(a, b)| a * b).sum();
                tail.iter_mut()
                    .zip(u)
                    .for_each(|(a, b)| *a -= 2.0 * dot * b);
            }
            row.iter_mut().zip(&v).for_each(|(r, &x)| *r = x as f32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use null::rng;

    fn matrix(n: usize, seed: u64) -> Array2<f32> {
        let q = Orthogonal::haar(n, &mut rng::stream(seed, 0));
        let mut m = Array2::<f32>::eye(n);
        q.apply_rows(&mut m);
        m
    }

    #[test]
    fn draws_are_orthogonal() {
        for n in [1, 2, 7, 64] {
            let m = matrix(n, 3);
            let g = m.dot(&m.t());
            for i in 0..n {
                for j in 0..n {
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!((g[(i, j)] - want).abs() < 1e-5, "n {n} ({i},{j})");
                }
            }
        }
    }

    /// A Haar rotation moves a fixed unit vector to a uniform point on the sphere: in three
    /// dimensions each coordinate is then uniform on [−1, 1] (Archimedes), and every entry
    /// has mean 0 and second moment 1/n.
    #[test]
    fn haar_columns_are_uniform_on_the_sphere() {
        let draws = 4000;
        let xs: Vec<f64> = (0..draws)
            .map(|s| (matrix(3, s)[(0, 2)] as f64 + 1.0) / 2.0)
            .collect();
        let ks = null::stats::ks_uniform(&xs).unwrap();
        assert!(ks.p > 1e-3, "KS p = {}", ks.p);
        let n = 16;
        let (mut m1, mut m2) = (0.0, 0.0);
        for s in 0..draws {
            let e = matrix(n, 10_000 + s)[(3, 5)] as f64;
            m1 += e;
            m2 += e * e;
        }
        let (m1, m2) = (m1 / draws as f64, m2 / draws as f64);
        // Standard errors: sqrt(1/(n draws)) = 0.004 for the mean, about 0.002 for m2.
        assert!(m1.abs() < 0.02, "mean {m1}");
        assert!((m2 - 1.0 / n as f64).abs() < 0.01, "second moment {m2}");
    }
}

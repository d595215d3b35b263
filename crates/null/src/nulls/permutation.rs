//! The dimension-permutation null for vector measures ([`crate::vectors`]).
//!
//! Two models that share weights share them dimension by dimension: element k of one model's
//! norm vector descends from element k of the other's. Permuting the dimensions of the second
//! model keeps every one of its vectors' values (their mean, spread, shape of distribution)
//! and the correspondence of its layers, and destroys only that alignment. A measure whose
//! value barely moves under the permutation carries no information about shared weights;
//! one that drops to about zero does.
//!
//! One draw applies one uniformly random permutation of `0..width` to every layer of the
//! second model and recomputes the same-layer mean. Draw `i` uses ChaCha8 stream `i` of the
//! seed ([`crate::rng::stream`]); draws run in parallel and are collected in index order, so
//! the null is bit-for-bit identical at any thread count. The p-value is upper-tailed
//! (`(1 + #{null >= observed}) / (1 + n)`) with its Monte-Carlo standard error.

use rand::Rng;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::nulls::{NullInfo, NullResult, Sampling};
use crate::rng::stream;
use crate::vectors::{same_layer, LayerVectors, VectorMeasure};

/// What the permutation null keeps and destroys.
pub fn info(measure: VectorMeasure) -> NullInfo {
    NullInfo {
        name: format!("permutation-{}", measure.name()),
        preserves: "every vector's values (mean, spread, distribution) and the layer \
                    correspondence of both models"
            .into(),
        destroys: "the alignment of dimensions between the two models (one random permutation \
                   of the second model's dimensions per draw, applied to all its layers)"
            .into(),
    }
}

/// The null's draws and the test of the observed same-layer mean against them.
#[derive(Clone, Debug, PartialEq)]
pub struct PermutationTest {
    /// The test (observed same-layer mean, n, seed, p, Monte-Carlo error).
    pub result: NullResult,
    /// The same-layer mean under each draw, in draw order.
    pub samples: Vec<f64>,
}

/// A uniformly random permutation of `0..n` (Fisher–Yates).
fn permutation(rng: &mut impl Rng, n: usize) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.gen_range(0..=i);
        p.swap(i, j);
    }
    p
}

/// Test the same-layer mean of `measure` between `a` and `b` against `samples` draws of the
/// dimension-permutation null with `seed`.
pub fn test(
    a: &LayerVectors,
    b: &LayerVectors,
    measure: VectorMeasure,
    samples: usize,
    seed: u64,
) -> Result<PermutationTest> {
    let width = match (a.width(), b.width()) {
        (Some(x), Some(y)) if x == y => x,
        (x, y) => {
            return Err(Error::invalid(
                "vector widths",
                format!("{x:?} vs {y:?}"),
                "the permutation null needs two models whose vectors all have one width",
            ))
        }
    };
    if samples == 0 {
        return Err(Error::EmptyNull {
            name: info(measure).name,
            reason: "zero draws asked for".into(),
        });
    }
    let observed = same_layer(a, b, measure)?.mean;
    let draws: Vec<f64> = (0..samples as u64)
        .into_par_iter()
        .map(|i| {
            let perm = permutation(&mut stream(seed, i), width);
            let permuted = LayerVectors {
                model: b.model.clone(),
                role: b.role.clone(),
                layers: b
                    .layers
                    .iter()
                    .map(|(l, v)| (*l, perm.iter().map(|&k| v[k]).collect()))
                    .collect(),
            };
            same_layer(a, &permuted, measure).map(|s| s.mean)
        })
        .collect::<Result<_>>()?;
    let result = NullResult::from_scores(
        &info(measure),
        observed,
        &draws,
        Some(seed),
        Sampling::MonteCarlo,
    )?;
    Ok(PermutationTest {
        result,
        samples: draws,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use fingerprint::Role;

    fn lv(name: &str, layers: Vec<Vec<f64>>) -> LayerVectors {
        LayerVectors {
            model: name.into(),
            role: Role::MlpNorm,
            layers: layers
                .into_iter()
                .enumerate()
                .map(|(i, v)| (i as u32, v))
                .collect(),
        }
    }

    /// Gains near 1 with a pattern: `k`-th element of layer `l` of model `seed`.
    fn gains(seed: u64, layers: usize, width: usize) -> Vec<Vec<f64>> {
        let mut rng = stream(seed, 1_000_000);
        (0..layers)
            .map(|_| (0..width).map(|_| 1.0 + 0.2 * rng.gen::<f64>()).collect())
            .collect()
    }

    #[test]
    fn raw_cosine_is_blind_to_alignment_and_centred_is_not() {
        let a = lv("a", gains(1, 4, 64));
        let related = lv(
            "a'",
            a.layers
                .iter()
                .map(|(_, v)| v.iter().map(|x| x + 0.001).collect())
                .collect(),
        );
        let unrelated = lv("b", gains(2, 4, 64));
        // Unrelated: raw cosine high (near 1) but not above its permutation null.
        let raw = test(&a, &unrelated, VectorMeasure::Cosine, 199, 7).unwrap();
        assert!(raw.result.observed > 0.98, "{}", raw.result.observed);
        assert!(raw.result.p > 0.01, "p {}", raw.result.p);
        let min = raw.samples.iter().cloned().fold(f64::INFINITY, f64::min);
        assert!(min > 0.98, "permuted raw cosines stay high: {min}");
        // Related: the centred cosine is far above its null.
        let c = test(&a, &related, VectorMeasure::CentredCosine, 199, 7).unwrap();
        assert!(c.result.observed > 0.99);
        assert_eq!(c.result.exceed, 0);
        assert_eq!(c.result.p, 1.0 / 200.0);
        assert_eq!(c.result.seed, Some(7));
        assert!(c.result.mc_error > 0.0);
    }

    #[test]
    fn draws_are_bit_identical_at_any_thread_count() {
        let a = lv("a", gains(3, 3, 40));
        let b = lv("b", gains(4, 3, 40));
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| test(&a, &b, VectorMeasure::CentredCosine, 300, 11).unwrap())
        };
        let one = run(1);
        for t in [2, 3, 4] {
            let other = run(t);
            assert_eq!(
                one.samples.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                other
                    .samples
                    .iter()
                    .map(|x| x.to_bits())
                    .collect::<Vec<_>>()
            );
            assert_eq!(one.result, other.result);
        }
        // another seed gives other draws
        let other = test(&a, &b, VectorMeasure::CentredCosine, 300, 12).unwrap();
        assert_ne!(one.samples, other.samples);
    }

    #[test]
    fn unequal_widths_and_zero_draws_are_refused() {
        let a = lv("a", gains(1, 2, 8));
        let b = lv("b", gains(2, 2, 9));
        assert!(test(&a, &b, VectorMeasure::Cosine, 10, 1).is_err());
        let b = lv("b", gains(2, 2, 8));
        assert!(test(&a, &b, VectorMeasure::Cosine, 0, 1).is_err());
    }
}

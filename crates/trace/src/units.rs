//! Degenerate hidden units, left out of the matching before it starts.
//!
//! Units whose weight vectors are tied (all zero, constant, exact duplicates) or undefined
//! (non-finite) have equal cosines with everything, so a linear assignment places them by
//! index order in *both* views and they "coincide" without any shared unit: a pruned or zeroed
//! layer would otherwise look copied from any model. Such units are excluded on both sides,
//! counted per layer, and a layer left with fewer than [`MIN_UNITS`] units is refused.

use std::collections::HashMap;

use ndarray::{Array2, ArrayView1};
use serde::{Deserialize, Serialize};

/// Fewest usable units a layer needs to be tested. Below it the layer is mostly dead (pruned
/// or zeroed), what is left is too little to carry a lineage claim, and the calibrated null's
/// count of coincidences (about one unit at chance) cannot be told from a copy of a handful.
pub const MIN_UNITS: usize = 32;

/// A vector whose spread over its coordinates is below this fraction of its mean magnitude is
/// constant up to rounding: f32 keeps about 7 significant digits (ε = 1.2e-7), so a spread of
/// 1e-6 of the magnitude is rounding noise on a constant row, not a direction.
pub const CONSTANT_RELATIVE_SPREAD: f64 = 1e-6;

/// Unit vectors are compared as duplicates after scaling to unit length and rounding each
/// coordinate to a multiple of 2⁻²⁰ (about 1e-6, a few f32 ulps at the typical coordinate size
/// 1/√hidden): scalar multiples and bit-level copies collide, distinct trained units do not.
pub const DUPLICATE_RESOLUTION: f64 = (1u64 << 20) as f64;

/// Units left out of one model's layer, by reason (a unit counts once, under the first reason
/// that applies, in this order).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Excluded {
    /// A non-finite weight (NaN or ±∞) in either view.
    pub non_finite: usize,
    /// All weights zero in either view (pruned or dead units).
    pub zero: usize,
    /// All weights equal (and not zero) in either view: zero variance over the coordinates.
    pub constant: usize,
    /// The same direction as another unit of the same layer in either view (all copies are
    /// left out: the assignment cannot tell them apart).
    pub duplicate: usize,
}

impl Excluded {
    /// Units left out in all.
    pub fn total(&self) -> usize {
        self.non_finite + self.zero + self.constant + self.duplicate
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flaw {
    NonFinite,
    Zero,
    Constant,
}

fn flaw(v: ArrayView1<'_, f32>) -> Option<Flaw> {
    if v.iter().any(|x| !x.is_finite()) {
        return Some(Flaw::NonFinite);
    }
    if v.iter().all(|&x| x == 0.0) {
        return Some(Flaw::Zero);
    }
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let spread = (v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
    let magnitude = v.iter().map(|&x| (x as f64).abs()).sum::<f64>() / n;
    (spread <= CONSTANT_RELATIVE_SPREAD * magnitude).then_some(Flaw::Constant)
}

fn direction_key(v: ArrayView1<'_, f32>) -> Vec<i64> {
    let norm = v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    v.iter()
        .map(|&x| (x as f64 / norm * DUPLICATE_RESOLUTION).round() as i64)
        .collect()
}

/// The usable units of a layer seen through its views (`[units, hidden]` each, same units),
/// in index order, and what was left out.
pub(crate) fn screen(views: &[Array2<f32>]) -> (Vec<usize>, Excluded) {
    let units = views.first().map_or(0, |v| v.nrows());
    let mut out = Excluded::default();
    let mut bad = vec![false; units];
    for (u, slot) in bad.iter_mut().enumerate() {
        let worst = views
            .iter()
            .filter_map(|v| flaw(v.row(u)))
            .min_by_key(|f| match f {
                Flaw::NonFinite => 0,
                Flaw::Zero => 1,
                Flaw::Constant => 2,
            });
        match worst {
            Some(Flaw::NonFinite) => out.non_finite += 1,
            Some(Flaw::Zero) => out.zero += 1,
            Some(Flaw::Constant) => out.constant += 1,
            None => continue,
        }
        *slot = true;
    }
    let mut dup = vec![false; units];
    for v in views {
        let mut first: HashMap<Vec<i64>, usize> = HashMap::new();
        for u in (0..units).filter(|&u| !bad[u]) {
            match first.entry(direction_key(v.row(u))) {
                std::collections::hash_map::Entry::Occupied(e) => {
                    dup[u] = true;
                    dup[*e.get()] = true;
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(u);
                }
            }
        }
    }
    out.duplicate = dup.iter().filter(|&&d| d).count();
    let keep = (0..units).filter(|&u| !bad[u] && !dup[u]).collect();
    (keep, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn each_flaw_is_counted_once() {
        let up = array![
            [1.0f32, 2.0, 3.0],   // 0 fine
            [0.0, 0.0, 0.0],      // 1 zero
            [0.5, 0.5, 0.5],      // 2 constant
            [f32::NAN, 0.0, 1.0], // 3 non-finite
            [2.0, 4.0, 6.0],      // 4 duplicate of 0 (scalar multiple)
            [3.0, -1.0, 2.0],     // 5 fine in up
            [-1.0, 0.0, 2.0],     // 6 fine
        ];
        let down = array![
            [1.0f32, 0.0, 1.0],
            [1.0, 2.0, 0.0],
            [1.0, 2.0, 1.0],
            [0.0, 0.0, 0.0],
            [1.0, 1.0, 2.0],
            [0.0, 0.0, f32::INFINITY], // 5 non-finite in down
            [2.0, 1.0, 0.0],
        ];
        let (keep, ex) = screen(&[up, down]);
        assert_eq!(keep, vec![6]);
        assert_eq!(
            ex,
            Excluded {
                non_finite: 2,
                zero: 1,
                constant: 1,
                duplicate: 2
            }
        );
        assert_eq!(ex.total(), 6);
    }

    #[test]
    fn trained_like_units_are_kept() {
        let v = array![[0.1f32, -0.2, 0.3], [0.1, -0.2, 0.30001], [1e-30, 0.0, 0.0]];
        let (keep, ex) = screen(&[v]);
        assert_eq!(keep, vec![0, 1, 2]);
        assert_eq!(ex.total(), 0);
    }
}

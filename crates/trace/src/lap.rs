//! Cosine similarity between unit vectors and the linear assignment that maximizes it.
//!
//! The assignment is solved by the `lsap` crate, a port of SciPy's
//! `linear_sum_assignment` (the shortest augmenting path method of Crouse, "On implementing
//! 2D rectangular assignment algorithms", IEEE TAES 52(4), 2016, in the Jonker–Volgenant
//! family). It accepts rectangular problems, which neuron subsampling needs (a sample of one
//! model's units matched into all of the other's), works in f64, and reproduces SciPy's
//! answers, which is what Zhu et al.'s reference code calls.

use ndarray::{Array2, ArrayView2, Axis};

use super::{Error, Result};

/// Largest cost matrix solved (elements): 64 M entries, 512 MiB of f64.
pub const MAX_COST_ELEMENTS: usize = 1 << 26;

/// Rows scaled to unit length (a zero row stays zero, so its cosine with anything is 0).
pub fn normalize_rows(a: ArrayView2<'_, f32>) -> Array2<f32> {
    let mut out = a.to_owned();
    for mut row in out.axis_iter_mut(Axis(0)) {
        let norm = row
            .iter()
            .map(|&v| (v as f64) * (v as f64))
            .sum::<f64>()
            .sqrt();
        if norm > 0.0 && norm.is_finite() {
            let inv = (1.0 / norm) as f32;
            row.mapv_inplace(|v| v * inv);
        } else {
            row.fill(0.0);
        }
    }
    out
}

/// Cosine similarity of every row of `a` with every row of `b`: `[a.rows, b.rows]`.
/// Non-finite entries (from non-finite weights) become 0.
pub fn cosine(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
    if a.ncols() != b.ncols() {
        return Err(Error::Invalid {
            what: "cosine".into(),
            reason: format!(
                "vectors of different lengths ({} and {})",
                a.ncols(),
                b.ncols()
            ),
        });
    }
    let an = normalize_rows(a);
    let bn = normalize_rows(b);
    let mut c = an.dot(&bn.t());
    c.mapv_inplace(|v| if v.is_finite() { v } else { 0.0 });
    Ok(c)
}

/// The injection of rows into columns (`rows ≤ cols`) maximizing the summed similarity:
/// entry `i` is the column matched to row `i`.
pub fn assign_max(sim: &Array2<f32>) -> Result<Vec<usize>> {
    let (r, c) = sim.dim();
    if r > c {
        return Err(Error::Assignment {
            rows: r,
            cols: c,
            reason: "more rows than columns".into(),
        });
    }
    if r.saturating_mul(c) > MAX_COST_ELEMENTS {
        return Err(Error::Assignment {
            rows: r,
            cols: c,
            reason: format!("over the limit of {MAX_COST_ELEMENTS} entries (subsample units)"),
        });
    }
    if r == 0 {
        return Ok(Vec::new());
    }
    let cost: Vec<f64> = sim.iter().map(|&v| v as f64).collect();
    let (rows, cols) = lsap::solve(r, c, &cost, true).map_err(|e| Error::Assignment {
        rows: r,
        cols: c,
        reason: format!("{e:?}"),
    })?;
    let mut out = vec![usize::MAX; r];
    for (i, j) in rows.into_iter().zip(cols) {
        if let Some(slot) = out.get_mut(i) {
            *slot = j;
        }
    }
    if out.iter().any(|&j| j >= c) {
        return Err(Error::Assignment {
            rows: r,
            cols: c,
            reason: "the solver left a row unassigned".into(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn assignment_beats_greedy_and_is_injective() {
        // Greedy would take (0,0)=0.9 and then (1,1)=0.1; the optimum is 0.8 + 0.85.
        let s = array![[0.9f32, 0.8, 0.0], [0.85, 0.1, 0.0]];
        assert_eq!(assign_max(&s).unwrap(), vec![1, 0]);
        let t = array![[0.0f32, 1.0], [1.0, 0.0], [0.5, 0.5]];
        assert!(matches!(assign_max(&t), Err(Error::Assignment { .. })));
    }

    #[test]
    fn cosine_of_rows() {
        let a = array![[1.0f32, 0.0], [0.0, 0.0]];
        let b = array![[2.0f32, 0.0], [1.0, 1.0], [-3.0, 0.0]];
        let c = cosine(a.view(), b.view()).unwrap();
        assert!((c[(0, 0)] - 1.0).abs() < 1e-6);
        assert!((c[(0, 1)] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert!((c[(0, 2)] + 1.0).abs() < 1e-6);
        assert!(c.row(1).iter().all(|&v| v == 0.0));
        assert!(cosine(a.view(), array![[1.0f32]].view()).is_err());
    }
}

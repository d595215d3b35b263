//! Multiple-testing adjustments for many pairwise p-values.
//!
//! * [`bh`]: Benjamini–Hochberg q-values (J. R. Stat. Soc. B 57, 1995): the step-up adjusted
//!   p-values `q_(i) = min_{j >= i} min(1, m p_(j) / j)`; rejecting all q <= α controls the
//!   false discovery rate at α under independence or positive dependence.
//! * [`holm`]: Holm's step-down adjusted p-values (Scand. J. Stat. 6, 1979):
//!   `adj_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))`; rejecting adj <= α controls the
//!   family-wise error rate at α under any dependence.
//!
//! Both return values in the input order; ties keep their input order (stable sort on
//! `total_cmp`).

use rayon::slice::ParallelSliceMut;

use crate::error::{Error, Result};

fn check(ps: &[f64]) -> Result<()> {
    for &p in ps {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::invalid("p-value", p, "must lie in [0, 1]"));
        }
    }
    Ok(())
}

/// Indices of `ps` in ascending order, ties in input order: (p, index) pairs sorted by p, then
/// index, which is a total order, so an unstable sort gives the stable sort's result (and the
/// values travel with the indices, so the sort reads memory in order).
fn order(ps: &[f64]) -> Vec<usize> {
    let mut v: Vec<(f64, usize)> = ps.iter().copied().zip(0..).collect();
    v.par_sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    v.into_iter().map(|(_, i)| i).collect()
}

/// Benjamini–Hochberg q-values. An empty input gives an empty output.
pub fn bh(ps: &[f64]) -> Result<Vec<f64>> {
    check(ps)?;
    Ok(bh_ordered(ps, &order(ps)))
}

fn bh_ordered(ps: &[f64], idx: &[usize]) -> Vec<f64> {
    let m = ps.len();
    let mut out = vec![0.0; m];
    let mut running = 1.0f64;
    for (rank, &i) in idx.iter().enumerate().rev() {
        let q = (ps[i] * m as f64 / (rank + 1) as f64).min(1.0);
        running = running.min(q);
        out[i] = running;
    }
    out
}

/// Holm-adjusted p-values. An empty input gives an empty output.
pub fn holm(ps: &[f64]) -> Result<Vec<f64>> {
    check(ps)?;
    Ok(holm_ordered(ps, &order(ps)))
}

/// [`bh`] and [`holm`] of the same p-values, sorting them once.
pub fn bh_and_holm(ps: &[f64]) -> Result<(Vec<f64>, Vec<f64>)> {
    check(ps)?;
    let idx = order(ps);
    Ok((bh_ordered(ps, &idx), holm_ordered(ps, &idx)))
}

fn holm_ordered(ps: &[f64], idx: &[usize]) -> Vec<f64> {
    let m = ps.len();
    let mut out = vec![0.0; m];
    let mut running = 0.0f64;
    for (rank, &i) in idx.iter().enumerate() {
        let a = (ps[i] * (m - rank) as f64).min(1.0);
        running = running.max(a);
        out[i] = running;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-12, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn match_r_p_adjust() {
        // R: p.adjust(c(0.01, 0.04, 0.03, 0.005, 0.2), "BH")
        //    0.0250000 0.0500000 0.0500000 0.0250000 0.2000000
        let p = [0.01, 0.04, 0.03, 0.005, 0.2];
        close(&bh(&p).unwrap(), &[0.025, 0.05, 0.05, 0.025, 0.2]);
        // R: p.adjust(c(0.01, 0.04, 0.03, 0.005, 0.2), "holm")
        //    0.040 0.090 0.090 0.025 0.200
        close(&holm(&p).unwrap(), &[0.04, 0.09, 0.09, 0.025, 0.2]);
    }

    #[test]
    fn edge_cases() {
        assert!(bh(&[]).unwrap().is_empty());
        assert!(holm(&[]).unwrap().is_empty());
        assert_eq!(bh(&[0.3]).unwrap(), vec![0.3]);
        assert!(bh(&[f64::NAN]).is_err());
        assert!(holm(&[1.5]).is_err());
        // Ties and the cap at 1.
        close(&holm(&[0.5, 0.5, 0.5]).unwrap(), &[1.0, 1.0, 1.0]);
        close(&bh(&[0.5, 0.5, 0.5]).unwrap(), &[0.5, 0.5, 0.5]);
    }
}

//! Surrogate nulls for a single pair, when no panel is at hand.
//!
//! The first model's curves are held fixed; the second model's (z-scored) curves are replaced
//! by surrogates that keep some of their structure and destroy the rest, and the measure is
//! recomputed. Swap the arguments to resample the other model.
//!
//! | null | preserves | destroys |
//! |---|---|---|
//! | `shuffle` | the set of per-layer values | depth order: trend, autocorrelation, alignment |
//! | `circular` | order and autocorrelation (except at one wrap point) | alignment with depth; the trend is broken at the wrap |
//! | `block` | order within blocks of ℓ layers | order beyond ℓ layers, hence the trend |
//! | `trend-ar` | the fitted polynomial depth trend, residual norm and lag-1 autocorrelation | the particular residual pattern |
//! | `trend-dct` (alias `surrogate`) | the fitted polynomial depth trend and the cosine amplitude spectrum of the residual | the signs of the residual's cosine components: the particular residual pattern |
//!
//! **The shuffle null is anti-conservative.** Real std curves trend with depth, and two
//! independent trending curves correlate far more often than two shuffled ones (Yule's
//! nonsense correlation). A layer shuffle destroys the trend, so its null is too narrow and
//! its p-values too small. The block bootstrap and circular shift share the defect to a lesser
//! degree. The trend surrogates keep the second model's own trend and ask whether the pair
//! agrees beyond what that trend and the residual's autocorrelation explain.
//!
//! Calibration on simulated independent random-walk-plus-trend pairs
//! ([`crate::calibrate::run_full`] defaults: 24 layers, 2,000 pairs, 999 samples), fraction of
//! null pairs with p <= 0.05 for `honestagi`: panel 0.054, shuffle 0.74, circular 0.61, block
//! 0.65, trend-ar 0.095, trend-dct 0.058 (for `detrended`: 0.051, 0.24, 0.12, 0.13, 0.098,
//! 0.049; `detrended2` with trend-dct 0.068; for `diff` every null is within 0.05–0.074,
//! differencing having removed the trend).
//! With 12 or 48 layers or a rougher walk, trend-dct stays within 0.047–0.057 for `honestagi`.
//! `trend-ar` is mildly anti-conservative because the lag-1 autocorrelation of a short
//! detrended residual underestimates its persistence; `trend-dct` keeps the whole spectrum.
//! **No single-pair surrogate knows what unrelated models share beyond their own trend:** when
//! the generator gives every model a smooth non-polynomial shape (small walk steps, large
//! random curvature), even trend-dct rejects 10% at 0.05. Only a panel of real unrelated
//! models calibrates that; prefer the panel null whenever one exists.
//!
//! Details:
//! * `shuffle` and `block` apply the same layer permutation / block draw to every role of a
//!   sample (roles of equal length), keeping the within-layer structure across roles.
//! * `circular` enumerates all L − 1 non-zero shifts exactly (no seed); p cannot go below 1/L.
//! * `block` uses moving blocks of length ℓ = max(2, round(L^(1/3))) (the n^(1/3) rate of Hall,
//!   Horowitz & Jing 1995, Biometrika 82), drawn with replacement and concatenated to length L.
//! * `trend-ar` and `trend-dct` fit a least-squares polynomial (order 2 by default) in depth on
//!   the grid i/(L−1). `trend-ar` draws a stationary AR(1) series with the residual's lag-1
//!   autocorrelation φ (clamped to ±0.98); `trend-dct` flips the sign of each non-constant
//!   DCT-II component of the residual at random. Both then project out the polynomial part
//!   (so the surrogate's fitted trend equals the original's exactly), rescale to the original
//!   residual's norm, and add the trend back.
//! * Monte-Carlo samples use stream i of ChaCha8 seeded by the seed ([`crate::rng`]), run in
//!   parallel and are collected in order: identical at any thread count. A sample on which the
//!   measure is undefined (zero spread) is discarded and counted.

use std::fmt;
use std::str::FromStr;

use rand::seq::SliceRandom;
use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::curves::Curves;
use crate::error::{Error, Result};
use crate::measure::{score, score_same_keys, Measure, Prepared, Scratch};
use crate::nulls::{NullInfo, NullResult, Sampling};
use crate::rng;
use crate::stats::{lag1_kernel, poly_basis, residual_kernel};

/// Most Monte-Carlo samples per null.
pub const MAX_SAMPLES: usize = 10_000_000;

/// Largest |φ| of the fitted AR(1), keeping the surrogate stationary.
pub const MAX_AR: f64 = 0.98;

/// Default number of Monte-Carlo samples.
pub const DEFAULT_SAMPLES: usize = 9_999;

/// A surrogate null.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SurrogateKind {
    /// Naive layer shuffle (anti-conservative on trending curves).
    Shuffle,
    /// All circular shifts.
    Circular,
    /// Moving-block bootstrap with the given block length (default: the L^(1/3) rule).
    Block(Option<usize>),
    /// Polynomial trend of the given order + AR(1) residual surrogate.
    TrendAr(u8),
    /// Polynomial trend of the given order + residual with randomised DCT signs (phase
    /// randomisation of the mirror-extended residual).
    TrendDct(u8),
}

impl SurrogateKind {
    /// The trend-preserving surrogate that `surrogate` names: a DCT trend of order 2 with
    /// phase-randomised residuals.
    pub const TREND: SurrogateKind = SurrogateKind::TrendDct(2);

    /// Every kind with default parameters.
    pub const ALL: [SurrogateKind; 5] = [
        SurrogateKind::Shuffle,
        SurrogateKind::Circular,
        SurrogateKind::Block(None),
        SurrogateKind::TrendAr(2),
        SurrogateKind::TrendDct(2),
    ];

    /// What the null keeps and destroys.
    pub fn info(&self) -> NullInfo {
        let (preserves, destroys) = match self {
            SurrogateKind::Shuffle => (
                "the multiset of per-layer values of the second model".to_string(),
                "depth order: trend, autocorrelation and alignment (anti-conservative: real \
                 curves share depth trends)"
                    .to_string(),
            ),
            SurrogateKind::Circular => (
                "the order and autocorrelation of the second model's curves, except at one wrap \
                 point"
                    .to_string(),
                "alignment with depth; the depth trend is broken at the wrap point".to_string(),
            ),
            SurrogateKind::Block(l) => (
                format!(
                    "order within blocks of {} layers",
                    l.map_or("max(2, round(L^(1/3)))".to_string(), |l| l.to_string())
                ),
                "order beyond one block, hence the depth trend (anti-conservative on trending \
                 curves)"
                    .to_string(),
            ),
            SurrogateKind::TrendAr(p) => (
                format!(
                    "the second model's fitted depth trend (polynomial of order {p}), residual \
                     variance and lag-1 autocorrelation"
                ),
                "the particular layer-by-layer residual pattern".to_string(),
            ),
            SurrogateKind::TrendDct(p) => (
                format!(
                    "the second model's fitted depth trend (polynomial of order {p}) and the \
                     cosine-transform amplitude spectrum (hence autocorrelation) of its residual"
                ),
                "the signs (phases) of the residual's cosine components: the particular \
                 layer-by-layer pattern"
                    .to_string(),
            ),
        };
        NullInfo {
            name: self.to_string(),
            preserves,
            destroys,
        }
    }

    /// Fewest layers a curve needs for this surrogate.
    pub fn min_layers(&self) -> usize {
        match self {
            SurrogateKind::TrendAr(p) | SurrogateKind::TrendDct(p) => *p as usize + 4,
            _ => 3,
        }
    }
}

impl fmt::Display for SurrogateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SurrogateKind::Shuffle => f.write_str("shuffle"),
            SurrogateKind::Circular => f.write_str("circular"),
            SurrogateKind::Block(None) => f.write_str("block"),
            SurrogateKind::Block(Some(l)) => write!(f, "block:{l}"),
            SurrogateKind::TrendAr(2) => f.write_str("trend-ar"),
            SurrogateKind::TrendAr(p) => write!(f, "trend-ar:{p}"),
            SurrogateKind::TrendDct(2) => f.write_str("trend-dct"),
            SurrogateKind::TrendDct(p) => write!(f, "trend-dct:{p}"),
        }
    }
}

impl FromStr for SurrogateKind {
    type Err = Error;
    /// `shuffle`, `circular`, `block`, `block:L`, `trend-ar`, `trend-ar:P`, `trend-dct`,
    /// `trend-dct:P` (`surrogate` and `phase` are aliases of `trend-dct`, i.e. [`SurrogateKind::TREND`]).
    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason: &str| Error::Parse {
            what: "surrogate null".into(),
            value: s.into(),
            reason: reason.into(),
        };
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (s, None),
        };
        let num = |a: &str| {
            a.parse::<usize>()
                .map_err(|_| bad("parameter must be a count"))
        };
        Ok(match (name, arg) {
            ("shuffle", None) => SurrogateKind::Shuffle,
            ("circular", None) => SurrogateKind::Circular,
            ("block", None) => SurrogateKind::Block(None),
            ("block", Some(a)) => match num(a)? {
                l if l >= 1 => SurrogateKind::Block(Some(l)),
                _ => return Err(bad("block length must be at least 1")),
            },
            ("trend-ar", None) => SurrogateKind::TrendAr(2),
            ("trend-ar", Some(a)) => match num(a)? {
                p @ 0..=3 => SurrogateKind::TrendAr(p as u8),
                _ => return Err(bad("trend order must be 0..=3")),
            },
            ("surrogate" | "phase" | "trend-dct", None) => SurrogateKind::TrendDct(2),
            ("surrogate" | "phase" | "trend-dct", Some(a)) => match num(a)? {
                p @ 0..=3 => SurrogateKind::TrendDct(p as u8),
                _ => return Err(bad("trend order must be 0..=3")),
            },
            _ => {
                return Err(bad(
                    "expected shuffle, circular, block[:L], trend-ar[:ORDER] or \
                     trend-dct[:ORDER] (aliases surrogate, phase)",
                ))
            }
        })
    }
}

impl Serialize for SurrogateKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SurrogateKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The block length rule: max(2, round(L^(1/3))), at most L.
pub fn default_block_len(layers: usize) -> usize {
    ((layers as f64).cbrt().round() as usize).max(2).min(layers)
}

/// Options of a surrogate null.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SurrogateOptions {
    /// Which surrogate.
    pub kind: SurrogateKind,
    /// The measure.
    pub measure: Measure,
    /// Monte-Carlo samples (ignored by `circular`, which enumerates).
    pub samples: usize,
    /// Seed.
    pub seed: u64,
}

/// The null scores of a surrogate null.
#[derive(Clone, Debug, PartialEq)]
pub struct SurrogateScores {
    /// One score per valid sample, in sample order.
    pub scores: Vec<f64>,
    /// Samples on which the measure was undefined.
    pub discarded: u64,
}

/// Per-role fit of the trend + residual model.
struct TrendFit {
    trend: Vec<f64>,
    basis: Vec<f64>,
    phi: f64,
    resid_norm: f64,
    /// DCT-II coefficients of the residual.
    dct: Vec<f64>,
    /// cos(pi m / (2n)), m = 0..4n.
    #[cfg(test)]
    cos4: Vec<f64>,
    /// The inverse transform's terms `(2/n) c_k cos(pi k (2t + 1) / (2n))`, row k, column t,
    /// rounded exactly as [`dct_signs`] forms them: a sign flip of component k adds the
    /// negated term, which is the same as flipping the sign of the whole product.
    terms: Vec<f64>,
}

fn fit_trend(z: &[f64], order: usize) -> Option<TrendFit> {
    let n = z.len();
    let basis = poly_basis(n, order);
    let mut resid = vec![0.0; n];
    residual_kernel(z, &basis, &mut resid);
    let trend: Vec<f64> = z.iter().zip(&resid).map(|(a, r)| a - r).collect();
    let resid_norm = resid.iter().map(|r| r * r).sum::<f64>().sqrt();
    let scale = z.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    if resid_norm.is_nan() || resid_norm <= crate::measure::RESIDUAL_REL * scale * (n as f64).sqrt()
    {
        return None;
    }
    let phi = lag1_kernel(&resid).unwrap_or(0.0).clamp(-MAX_AR, MAX_AR);
    let w = std::f64::consts::PI / (2 * n) as f64;
    let cos4: Vec<f64> = (0..4 * n).map(|m| (w * m as f64).cos()).collect();
    // c_k = sum_t e_t cos(pi k (2t + 1) / (2n))
    let dct: Vec<f64> = (0..n)
        .map(|k| {
            resid
                .iter()
                .enumerate()
                .map(|(t, r)| r * cos4[(k * (2 * t + 1)) % (4 * n)])
                .sum()
        })
        .collect();
    let dct: Vec<f64> = dct;
    let mut terms = vec![0.0; n * n];
    for k in 1..n {
        for t in 0..n {
            terms[k * n + t] = 2.0 / n as f64 * dct[k] * cos4[(k * (2 * t + 1)) % (4 * n)];
        }
    }
    Some(TrendFit {
        trend,
        basis,
        phi,
        resid_norm,
        dct,
        #[cfg(test)]
        cos4,
        terms,
    })
}

/// The residual's cosine expansion with a random sign on every non-constant component:
/// e_t = c_0/n + (2/n) sum_k s_k c_k cos(pi k (2t + 1) / (2n)). This is phase randomisation
/// (Theiler et al. 1992, Physica D 58) of the mirror-extended series, whose phases must stay 0
/// or pi to keep the mirror symmetry; unlike the plain DFT version it has no wrap-around jump
/// between the last and first layer to leak power into high frequencies, so the surrogate keeps
/// the red spectrum of a trending curve's residual. For a Gaussian process whose covariance the
/// cosine basis diagonalises (random walks, AR(1) with phi near 1, approximately) the signs are
/// exchangeable under the null.
#[cfg(test)]
fn dct_signs(f: &TrendFit, n: usize, r: &mut impl Rng) -> Vec<f64> {
    let signs: Vec<f64> = (0..n)
        .map(|k| if k > 0 && r.gen::<bool>() { -1.0 } else { 1.0 })
        .collect();
    (0..n)
        .map(|t| {
            let mut x = f.dct[0] / n as f64;
            for (k, (s, c)) in signs.iter().zip(&f.dct).enumerate().skip(1) {
                x += 2.0 / n as f64 * s * c * f.cos4[(k * (2 * t + 1)) % (4 * n)];
            }
            x
        })
        .collect()
}

/// [`dct_signs`] into `out` (length n), bit for bit: the same random draws, and every
/// `x_t` accumulates the same terms in the same order (k ascending); only the loops are
/// swapped, so that the n sums run side by side instead of one after another.
fn dct_signs_into(f: &TrendFit, r: &mut impl Rng, out: &mut [f64]) {
    let n = out.len();
    out.fill(f.dct[0] / n as f64);
    for k in 1..n {
        let s = if r.gen::<bool>() { -1.0 } else { 1.0 };
        for (x, &term) in out.iter_mut().zip(&f.terms[k * n..(k + 1) * n]) {
            *x += s * term;
        }
    }
}

/// Residualise `e` against the trend basis, rescale it to the original residual norm and add
/// the trend back, into `out` (`res`: scratch of the same length).
fn with_trend_into(f: &TrendFit, e: &[f64], res: &mut [f64], out: &mut [f64]) {
    residual_kernel(e, &f.basis, res);
    let norm = res.iter().map(|x| x * x).sum::<f64>().sqrt();
    let scale = if norm > 0.0 { f.resid_norm / norm } else { 0.0 };
    for ((o, t), x) in out.iter_mut().zip(&f.trend).zip(res.iter()) {
        *o = t + scale * x;
    }
}

/// Per-thread buffers of the sampler.
#[derive(Default)]
struct SampleBuf {
    e: Vec<f64>,
    res: Vec<f64>,
    /// Index maps of shuffle and block: (length, map), one per distinct curve length.
    maps: Vec<(usize, Vec<usize>)>,
    idx: Vec<usize>,
    ranks: Vec<f64>,
}

/// A sampler of surrogate versions of one model's prepared curves.
struct Sampler<'a> {
    kind: SurrogateKind,
    b: &'a Prepared,
    fits: Vec<TrendFit>,
}

impl<'a> Sampler<'a> {
    fn new(kind: SurrogateKind, b: &'a Prepared) -> Result<Self> {
        let mut fits = Vec::new();
        for (key, z) in b.keys().iter().zip(b.curves()) {
            if z.len() < kind.min_layers() {
                return Err(Error::TooFewLayers {
                    model: b.model().to_owned(),
                    role: key.clone(),
                    layers: z.len(),
                    needed: kind.min_layers(),
                    what: format!("the {kind} null"),
                });
            }
            if let SurrogateKind::TrendAr(p) | SurrogateKind::TrendDct(p) = kind {
                fits.push(fit_trend(z, p as usize).ok_or_else(|| Error::ZeroSpread {
                    model: b.model().to_owned(),
                    role: key.clone(),
                    after: format!(" after removing an order-{p} trend (the {kind} null)"),
                })?);
            }
        }
        Ok(Sampler { kind, b, fits })
    }

    /// Number of samples: the exact enumeration size for `circular`.
    fn count(&self, samples: usize) -> usize {
        match self.kind {
            SurrogateKind::Circular => self.b.curves().iter().map(Vec::len).max().unwrap_or(1) - 1,
            _ => samples,
        }
    }

    /// The surrogate of sample `i`.
    #[cfg(test)]
    fn sample(&self, i: usize, seed: u64) -> Prepared {
        let mut out = self.b.clone();
        self.sample_into(i, seed, true, &mut out, &mut SampleBuf::default());
        out
    }

    /// Overwrite `out` (a clone of the resampled model) with the surrogate of sample `i`;
    /// `ranks`: whether the measure needs the curves' ranks.
    fn sample_into(
        &self,
        i: usize,
        seed: u64,
        ranks: bool,
        out: &mut Prepared,
        buf: &mut SampleBuf,
    ) {
        let mut r = rng::stream(seed, i as u64);
        // One index map per distinct curve length, drawn in key order.
        let mut maps_used = 0;
        for (k, (z, o)) in self.b.curves().iter().zip(out.curves_mut()).enumerate() {
            let n = z.len();
            match self.kind {
                SurrogateKind::TrendAr(_) => {
                    let f = &self.fits[k];
                    let s_inn = (1.0 - f.phi * f.phi).sqrt();
                    buf.e.clear();
                    let mut prev = rng::normal(&mut r);
                    buf.e.push(prev);
                    for _ in 1..n {
                        prev = f.phi * prev + s_inn * rng::normal(&mut r);
                        buf.e.push(prev);
                    }
                    buf.res.resize(n, 0.0);
                    with_trend_into(f, &buf.e, &mut buf.res, o);
                }
                SurrogateKind::TrendDct(_) => {
                    let f = &self.fits[k];
                    buf.e.resize(n, 0.0);
                    dct_signs_into(f, &mut r, &mut buf.e);
                    buf.res.resize(n, 0.0);
                    with_trend_into(f, &buf.e, &mut buf.res, o);
                }
                SurrogateKind::Circular => {
                    let shift = (i + 1) % n;
                    for (t, x) in o.iter_mut().enumerate() {
                        *x = z[(t + shift) % n];
                    }
                }
                SurrogateKind::Shuffle | SurrogateKind::Block(_) => {
                    let pos = match buf.maps[..maps_used].iter().position(|(len, _)| *len == n) {
                        Some(p) => p,
                        None => {
                            if buf.maps.len() == maps_used {
                                buf.maps.push((0, Vec::new()));
                            }
                            let (len, m) = &mut buf.maps[maps_used];
                            *len = n;
                            m.clear();
                            match self.kind {
                                SurrogateKind::Shuffle => {
                                    m.extend(0..n);
                                    m.shuffle(&mut r);
                                }
                                SurrogateKind::Block(l) => {
                                    let l = l.unwrap_or_else(|| default_block_len(n)).min(n);
                                    while m.len() < n {
                                        let start = r.gen_range(0..=n - l);
                                        m.extend(start..start + l);
                                    }
                                    m.truncate(n);
                                }
                                _ => unreachable!("only shuffle and block use index maps"),
                            }
                            maps_used += 1;
                            maps_used - 1
                        }
                    };
                    for (x, &j) in o.iter_mut().zip(&buf.maps[pos].1) {
                        *x = z[j];
                    }
                }
            }
        }
        out.refresh(ranks, &mut buf.idx, &mut buf.ranks);
    }
}

fn check_samples(opts: &SurrogateOptions) -> Result<()> {
    if opts.kind != SurrogateKind::Circular && !(1..=MAX_SAMPLES).contains(&opts.samples) {
        return Err(Error::invalid(
            "samples",
            opts.samples,
            &format!("must lie in 1..={MAX_SAMPLES}"),
        ));
    }
    Ok(())
}

/// The null scores of `opts.kind` for the pair (a, b): a fixed, b resampled.
pub fn surrogate_scores(
    a: &Prepared,
    b: &Prepared,
    opts: &SurrogateOptions,
) -> Result<SurrogateScores> {
    check_samples(opts)?;
    let sampler = Sampler::new(opts.kind, b)?;
    // Surface role mismatches and length errors once, not per sample.
    score(a, b, opts.measure, &mut Scratch::default())?;
    let n = sampler.count(opts.samples);
    let ranks = opts.measure == Measure::Spearman;
    let raw: Vec<Option<f64>> = (0..n)
        .into_par_iter()
        .map_init(
            || (Scratch::default(), b.clone(), SampleBuf::default()),
            |(scratch, s, buf), i| {
                sampler.sample_into(i, opts.seed, ranks, s, buf);
                score_same_keys(a, s, opts.measure, scratch).ok()
            },
        )
        .collect();
    let discarded = raw.iter().filter(|x| x.is_none()).count() as u64;
    Ok(SurrogateScores {
        scores: raw.into_iter().flatten().collect(),
        discarded,
    })
}

/// Test the pair's observed score against a surrogate null (prepared curves).
pub fn test_prepared(a: &Prepared, b: &Prepared, opts: &SurrogateOptions) -> Result<NullResult> {
    let observed = score(a, b, opts.measure, &mut Scratch::default())?;
    let s = surrogate_scores(a, b, opts)?;
    let info = opts.kind.info();
    if s.scores.is_empty() {
        return Err(Error::EmptyNull {
            name: info.name,
            reason: format!("all {} surrogates were degenerate", s.discarded),
        });
    }
    let (seed, sampling) = match opts.kind {
        SurrogateKind::Circular => (None, Sampling::Exhaustive),
        _ => (Some(opts.seed), Sampling::MonteCarlo),
    };
    let mut r = NullResult::from_scores(&info, observed, &s.scores, seed, sampling)?;
    r.discarded = s.discarded;
    if matches!(opts.kind, SurrogateKind::Shuffle | SurrogateKind::Block(_)) {
        r.notes.push(
            "anti-conservative on curves with depth trends (nonsense correlation): a small p \
             here is not evidence of lineage"
                .into(),
        );
    }
    Ok(r)
}

/// Test the pair (a, b) against a surrogate null: b's curves are resampled, a's held fixed.
pub fn test(a: &Curves, b: &Curves, opts: &SurrogateOptions) -> Result<NullResult> {
    test_prepared(&Prepared::new(a)?, &Prepared::new(b)?, opts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::curves;

    fn pair() -> (Curves, Curves) {
        let a: Vec<f64> = (0..16)
            .map(|i| (i as f64 * 0.7).sin() + 0.1 * i as f64)
            .collect();
        let b: Vec<f64> = (0..16)
            .map(|i| (i as f64 * 0.7).sin() + 0.05 * (i % 3) as f64)
            .collect();
        (
            curves("a", &[("attn_q", &a), ("attn_k", &a)]),
            curves("b", &[("attn_q", &b), ("attn_k", &b)]),
        )
    }

    #[test]
    fn parse_and_display() {
        for s in [
            "shuffle",
            "circular",
            "block",
            "block:4",
            "trend-ar",
            "trend-ar:1",
            "trend-dct",
            "trend-dct:1",
        ] {
            assert_eq!(s.parse::<SurrogateKind>().unwrap().to_string(), s);
        }
        assert_eq!(
            "surrogate".parse::<SurrogateKind>().unwrap(),
            SurrogateKind::TrendDct(2)
        );
        for s in ["block:0", "trend-ar:9", "fourier", "block:x", "trend-dct:7"] {
            assert!(s.parse::<SurrogateKind>().is_err(), "{s}");
        }
        assert_eq!(default_block_len(30), 3);
        assert_eq!(default_block_len(6), 2);
        assert_eq!(default_block_len(48), 4);
    }

    #[test]
    fn circular_enumerates_all_shifts() {
        let (a, b) = pair();
        let opts = SurrogateOptions {
            kind: SurrogateKind::Circular,
            measure: Measure::HonestAgi,
            samples: 0,
            seed: 0,
        };
        let r = test(&a, &b, &opts).unwrap();
        assert_eq!(r.n, 15);
        assert_eq!(r.seed, None);
        assert_eq!(r.mc_error, 0.0);
        assert_eq!(r.sampling, Sampling::Exhaustive);
    }

    #[test]
    fn monte_carlo_is_reproducible_and_thread_independent() {
        let (a, b) = pair();
        for kind in [
            SurrogateKind::Shuffle,
            SurrogateKind::Block(None),
            SurrogateKind::TrendAr(2),
        ] {
            let opts = SurrogateOptions {
                kind,
                measure: Measure::HonestAgi,
                samples: 500,
                seed: 42,
            };
            let one = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap()
                .install(|| test(&a, &b, &opts).unwrap());
            let three = rayon::ThreadPoolBuilder::new()
                .num_threads(3)
                .build()
                .unwrap()
                .install(|| test(&a, &b, &opts).unwrap());
            assert_eq!(one, three, "{kind}");
            assert_eq!(one.n + one.discarded, 500);
            assert_eq!(one.seed, Some(42));
            assert!(one.mc_error > 0.0 || one.p == 1.0 / 501.0);
            let (pa, pb) = (Prepared::new(&a).unwrap(), Prepared::new(&b).unwrap());
            let s42 = surrogate_scores(&pa, &pb, &opts).unwrap();
            let s43 = surrogate_scores(&pa, &pb, &SurrogateOptions { seed: 43, ..opts }).unwrap();
            assert_ne!(s42.scores, s43.scores, "{kind}: the seed must matter");
        }
    }

    #[test]
    fn trend_surrogates_keep_the_fitted_trend() {
        let (_, b) = pair();
        let pb = Prepared::new(&b).unwrap();
        for kind in [SurrogateKind::TrendAr(2), SurrogateKind::TrendDct(2)] {
            let sampler = Sampler::new(kind, &pb).unwrap();
            let s = sampler.sample(3, 7);
            let basis = poly_basis(16, 2);
            let (mut r0, mut r1) = (vec![0.0; 16], vec![0.0; 16]);
            residual_kernel(&pb.curves()[0], &basis, &mut r0);
            residual_kernel(&s.curves()[0], &basis, &mut r1);
            // Same trend: the differences lie entirely in the residual space.
            for t in 0..16 {
                let trend0 = pb.curves()[0][t] - r0[t];
                let trend1 = s.curves()[0][t] - r1[t];
                assert!((trend0 - trend1).abs() < 1e-12, "{kind}");
            }
            // Same residual norm, different residual.
            let n0: f64 = r0.iter().map(|x| x * x).sum();
            let n1: f64 = r1.iter().map(|x| x * x).sum();
            assert!((n0 - n1).abs() < 1e-10 * n0, "{kind}");
            assert!(
                r0.iter().zip(&r1).any(|(x, y)| (x - y).abs() > 1e-3),
                "{kind}"
            );
        }
    }

    #[test]
    fn in_place_sampling_equals_the_reference_bit_for_bit() {
        let (_, b) = pair();
        let pb = Prepared::new(&b).unwrap();
        let f = fit_trend(&pb.curves()[0], 2).unwrap();
        let n = f.dct.len();
        let mut out = vec![0.0; n];
        for i in 0..20 {
            let want = dct_signs(&f, n, &mut rng::stream(5, i));
            dct_signs_into(&f, &mut rng::stream(5, i), &mut out);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&want), bits(&out), "sample {i}");
        }
        // A reused buffer gives what a fresh one gives, for every kind.
        for kind in SurrogateKind::ALL {
            let sampler = Sampler::new(kind, &pb).unwrap();
            let mut reused = pb.clone();
            let mut buf = SampleBuf::default();
            for i in [0, 1, 2, 7, 3] {
                sampler.sample_into(i, 11, true, &mut reused, &mut buf);
                assert_eq!(reused, sampler.sample(i, 11), "{kind} sample {i}");
            }
        }
    }

    #[test]
    fn dct_with_all_signs_kept_reconstructs_the_residual() {
        let (_, b) = pair();
        let pb = Prepared::new(&b).unwrap();
        let f = fit_trend(&pb.curves()[0], 2).unwrap();
        let n = f.dct.len();
        let back: Vec<f64> = (0..n)
            .map(|t| {
                f.dct[0] / n as f64
                    + (1..n)
                        .map(|k| 2.0 / n as f64 * f.dct[k] * f.cos4[(k * (2 * t + 1)) % (4 * n)])
                        .sum::<f64>()
            })
            .collect();
        for (t, x) in back.iter().enumerate() {
            let resid = pb.curves()[0][t] - f.trend[t];
            assert!((x - resid).abs() < 1e-12, "{t}: {x} vs {resid}");
        }
    }

    #[test]
    fn errors() {
        let (a, b) = pair();
        let bad = SurrogateOptions {
            kind: SurrogateKind::Shuffle,
            measure: Measure::HonestAgi,
            samples: 0,
            seed: 1,
        };
        assert!(matches!(
            test(&a, &b, &bad),
            Err(Error::InvalidArgument { .. })
        ));
        // A pure quadratic has no residual for trend-ar:2.
        let quad: Vec<f64> = (0..8).map(|i| (i * i) as f64).collect();
        let q = curves("q", &[("attn_q", &quad), ("attn_k", &quad)]);
        let opts = SurrogateOptions {
            kind: SurrogateKind::TrendAr(2),
            samples: 10,
            ..bad
        };
        assert!(matches!(test(&a, &q, &opts), Err(Error::ZeroSpread { .. })));
        let short = curves(
            "s",
            &[
                ("attn_q", &[1.0, 3.0, 2.0, 4.0]),
                ("attn_k", &[1.0, 3.0, 2.0, 4.0]),
            ],
        );
        assert!(matches!(
            test(&a, &short, &opts),
            Err(Error::TooFewLayers { .. })
        ));
    }
}

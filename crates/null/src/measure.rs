//! Similarity measures between two models' curves.
//!
//! # The published measure (`honestagi`)
//! HonestAGI's fingerprint (July 2025; arXiv 2507.03014, withdrawn; reimplemented in LeaFBench,
//! arXiv 2508.19843, and described step by step in the project's `method.md`):
//! 1. per role r in {q, k, v, o} and layer i, sigma(i, r) = std of the weight matrix;
//! 2. per role, z-score the curve over depth with the population std;
//! 3. if the depths differ, linearly interpolate the shorter z-curve onto the longer one's
//!    normalised positions i/(L-1);
//! 4. Pearson correlation per role; the score is the mean over roles. LeaFBench reports
//!    `(sum r + 4) / 8`, the mean rescaled to [0, 1]; [`Similarity::rescaled`] is
//!    `(sum r + k) / (2k)` for k roles, the same for k = 4.
//!
//! Pearson's r is invariant under an affine map of either series and linear interpolation
//! commutes with affine maps, so step 2 does not change the result (beyond rounding); it is done
//! anyway, as published.
//!
//! # Measures that ask "is it just the depth trend?"
//! Per-layer std curves of transformers share strong depth trends, and two trending series
//! correlate whether or not they are related (Yule's "nonsense correlation", 1926). The other
//! measures take the same aligned z-curves (steps 1–3) and then:
//! * `spearman`: Pearson correlation of average ranks (robust to outlying layers);
//! * `detrended` / `detrended2`: Pearson correlation of the residuals after a least-squares
//!   polynomial fit of order 1 / 2 in depth on the grid i/(L-1);
//! * `diff`: Pearson correlation of first differences (layer-to-layer changes).
//!
//! Minimum aligned lengths ([`Measure::min_aligned`]) keep every correlation over at least
//! three free points: 3 for `honestagi`/`spearman`, 4 for `diff`, order + 4 for `detrended`.
//!
//! # Curves that cannot carry a signal
//! * A curve whose spread is zero (relative spread below [`crate::stats::ZERO_SPREAD_REL`]) has
//!   no z-score: [`Error::ZeroSpread`]. A transformed curve (residuals, differences, ranks) with
//!   no spread gives the same error.
//! * A curve whose coefficient of variation is below [`LOW_SPREAD_CV`] is scored but flagged
//!   ([`Flag::LowSpread`]): z-scoring blows its tiny variation up to unit variance, so its
//!   correlation with anything is a correlation of noise. Gemma-3-270m is the published case:
//!   the std of its q/k/v projections is 0.03954–0.03955 ≈ 1/√640 in every layer (CV ≈ 1e-4).
//! * llama.cpp's Q4_K_M recipe gives some `attn_v` and `ffn_down` tensors more bits (Q6_K/Q8_0
//!   instead of Q4_K/Q5_0) by a rule over the tensor count (first and last eighth, every third
//!   in between). Two files with the same layer count and tensor order share the pattern
//!   whatever the model, and the extra bits shift the std slightly in exactly those layers, so
//!   the pattern can itself correlate across unrelated models. A curve whose layers have mixed
//!   dtypes is flagged ([`Flag::MixedQuantization`]); two curves with the same pattern are
//!   flagged again ([`Flag::SharedQuantizationPattern`]).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::curves::Curves;
use crate::error::{Error, Result};
use crate::stats::{
    interpolate_kernel, pearson_centered, pearson_kernel, poly_basis, ranks_kernel,
    residual_kernel, zscore_kernel, Centered,
};

/// Coefficient of variation (std / mean over depth) below which a curve is flagged as too flat
/// to carry signal.
///
/// 1%: quantization to 4–5 bits adds an error whose variance inflates a matrix's std by a few
/// tenths of a percent, by an amount that depends on the quant type chosen per layer; a curve
/// that varies by less than about 1% of its level over the whole depth can therefore be
/// reshaped by quantization alone. Gemma-3-270m's q/k/v curves (CV ≈ 1e-4) fall far below it;
/// the real trending curves of MiniLM, MPNet, Qwen2.5 and SmolLM2 lie at 0.02–0.5.
pub const LOW_SPREAD_CV: f64 = 0.01;

/// Every measure's score lies in `[-MAX_ABS_SCORE, MAX_ABS_SCORE]` (correlations and their
/// averages): an observed or published similarity outside it cannot be one of these scores
/// (a percentage, a distance, a typo) and is refused rather than tested.
pub const MAX_ABS_SCORE: f64 = 1.0;

/// Check that `value` (named `what`) can be a similarity score: finite and within
/// [`MAX_ABS_SCORE`]; a value that reads as a percentage says so.
pub fn check_score(what: &str, value: f64) -> Result<()> {
    if !value.is_finite() {
        return Err(Error::invalid(what, value, "must be finite"));
    }
    if value.abs() > MAX_ABS_SCORE {
        let hint = if value.abs() <= 100.0 {
            " (a percentage? divide by 100)"
        } else {
            ""
        };
        return Err(Error::invalid(
            what,
            value,
            &format!("outside the range of every similarity measure, [-{MAX_ABS_SCORE}, {MAX_ABS_SCORE}]{hint}"),
        ));
    }
    Ok(())
}

/// Residuals (after detrending) smaller than this fraction of the input's magnitude are rounding
/// noise: the curve was a polynomial of the fitted order.
pub const RESIDUAL_REL: f64 = 1e-9;

/// A similarity measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Measure {
    /// The published HonestAGI measure: Pearson correlation of aligned z-curves.
    HonestAgi,
    /// Spearman rank correlation of the aligned z-curves.
    Spearman,
    /// Pearson correlation after removing a polynomial depth trend of order 1 or 2.
    Detrended(u8),
    /// Pearson correlation of first differences of the aligned z-curves.
    Diff,
}

impl Measure {
    /// Every measure, in report order.
    pub const ALL: [Measure; 5] = [
        Measure::HonestAgi,
        Measure::Spearman,
        Measure::Detrended(1),
        Measure::Detrended(2),
        Measure::Diff,
    ];

    /// The measure's name: `honestagi`, `spearman`, `detrended`, `detrended2`, `diff`.
    pub fn name(&self) -> String {
        match self {
            Measure::HonestAgi => "honestagi".into(),
            Measure::Spearman => "spearman".into(),
            Measure::Detrended(1) => "detrended".into(),
            Measure::Detrended(p) => format!("detrended{p}"),
            Measure::Diff => "diff".into(),
        }
    }

    /// Fewest aligned points the measure needs.
    pub fn min_aligned(&self) -> usize {
        match self {
            Measure::HonestAgi | Measure::Spearman => 3,
            Measure::Diff => 4,
            Measure::Detrended(p) => *p as usize + 4,
        }
    }

    /// One line saying what the measure computes.
    pub fn description(&self) -> &'static str {
        match self {
            Measure::HonestAgi => {
                "Pearson r of z-scored per-layer std curves (shorter interpolated onto the longer \
                 grid), mean over roles; the published HonestAGI measure"
            }
            Measure::Spearman => "Spearman rank correlation of the aligned z-curves",
            Measure::Detrended(1) => {
                "Pearson r of the aligned z-curves after removing a linear depth trend"
            }
            Measure::Detrended(_) => {
                "Pearson r of the aligned z-curves after removing a quadratic depth trend"
            }
            Measure::Diff => "Pearson r of the layer-to-layer differences of the aligned z-curves",
        }
    }
}

impl fmt::Display for Measure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl FromStr for Measure {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "honestagi" | "pearson" => Measure::HonestAgi,
            "spearman" => Measure::Spearman,
            "detrended" | "detrended1" => Measure::Detrended(1),
            "detrended2" => Measure::Detrended(2),
            "diff" => Measure::Diff,
            _ => {
                return Err(Error::Parse {
                    what: "measure".into(),
                    value: s.into(),
                    reason: "expected honestagi, spearman, detrended, detrended2 or diff".into(),
                })
            }
        })
    }
}

impl Serialize for Measure {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Measure {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Options of a comparison.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeasureOptions {
    /// The measure.
    pub measure: Measure,
    /// Coefficient of variation below which a curve is flagged ([`LOW_SPREAD_CV`]).
    pub low_spread_cv: f64,
}

impl Default for MeasureOptions {
    fn default() -> Self {
        MeasureOptions {
            measure: Measure::HonestAgi,
            low_spread_cv: LOW_SPREAD_CV,
        }
    }
}

impl MeasureOptions {
    /// Default options with the given measure.
    pub fn new(measure: Measure) -> Self {
        MeasureOptions {
            measure,
            ..Default::default()
        }
    }
}

/// Something a reader of a similarity should know.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Flag {
    /// A curve is too flat to carry signal (see [`LOW_SPREAD_CV`]).
    LowSpread {
        /// Model.
        model: String,
        /// Role key.
        role: String,
        /// Its coefficient of variation.
        cv: f64,
        /// The threshold.
        threshold: f64,
    },
    /// The depths differ: the shorter curves were interpolated.
    DepthMismatch {
        /// Layers of the first model (longest curve).
        a_layers: usize,
        /// Layers of the second model.
        b_layers: usize,
    },
    /// A curve's layers have mixed storage types (a mixed-precision quantization recipe).
    MixedQuantization {
        /// Model.
        model: String,
        /// Role key.
        role: String,
        /// Per layer: `x` where the dtype differs from the curve's most common one, else `.`.
        pattern: String,
    },
    /// Both models' curves of a role have the same mixed-precision layer pattern.
    SharedQuantizationPattern {
        /// Role key.
        role: String,
        /// The shared pattern.
        pattern: String,
    },
    /// A model's tensors held NaN or Inf values (excluded from its statistics).
    NonFiniteWeights {
        /// Model.
        model: String,
    },
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Flag::LowSpread {
                model,
                role,
                cv,
                threshold,
            } => write!(
                f,
                "{model}: {role} is nearly flat over depth (CV {cv:.2e} < {threshold}); its \
                 correlation reflects noise, not lineage"
            ),
            Flag::DepthMismatch { a_layers, b_layers } => write!(
                f,
                "depths differ ({a_layers} vs {b_layers} layers): the shorter curves were \
                 interpolated onto the longer grid"
            ),
            Flag::MixedQuantization {
                model,
                role,
                pattern,
            } => write!(
                f,
                "{model}: {role} mixes quantization types over layers ({pattern}); the recipe's \
                 layer pattern can shape the curve"
            ),
            Flag::SharedQuantizationPattern { role, pattern } => write!(
                f,
                "{role}: both models share the quantization layer pattern {pattern}, which \
                 llama.cpp assigns by layer count, not by model"
            ),
            Flag::NonFiniteWeights { model } => {
                write!(
                    f,
                    "{model}: NaN or Inf weights were excluded from the statistics"
                )
            }
        }
    }
}

/// The similarity of two models.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Similarity {
    /// The measure.
    pub measure: Measure,
    /// First model.
    pub a: String,
    /// Second model.
    pub b: String,
    /// Longest curve of each model.
    pub layers: (usize, usize),
    /// Correlation per role key.
    pub per_role: BTreeMap<String, f64>,
    /// Mean of the per-role correlations.
    pub score: f64,
    /// `(sum r + k) / (2k)`: the score rescaled to [0, 1] (LeaFBench's `(sum r + 4) / 8`).
    pub rescaled: f64,
    /// Caveats.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<Flag>,
}

/// z-scored curves of one model, ready for fast repeated comparison.
///
/// Besides the z-curves it keeps what every same-depth comparison would otherwise recompute
/// per pair: each curve's centred form (for Pearson) and its average ranks, centred (for
/// Spearman). Scores through these equal, bit for bit, scores computed from the curves alone.
#[derive(Clone, Debug, PartialEq)]
pub struct Prepared {
    model: String,
    keys: Vec<String>,
    curves: Vec<Vec<f64>>,
    /// Centred z-curves.
    centered: Vec<Centered>,
    /// Centred average ranks of each curve; empty when not computed (see
    /// [`Prepared::refresh`]), in which case Spearman ranks in the scratch instead.
    ranks: Vec<Centered>,
}

impl Prepared {
    /// z-score every curve (population std). Fails on a curve with zero spread.
    pub fn new(c: &Curves) -> Result<Self> {
        c.validate()?;
        let mut keys = Vec::with_capacity(c.roles.len());
        let mut curves = Vec::with_capacity(c.roles.len());
        for (k, curve) in &c.roles {
            let z = zscore_kernel(&curve.values).ok_or_else(|| Error::ZeroSpread {
                model: c.model.clone(),
                role: k.clone(),
                after: String::new(),
            })?;
            keys.push(k.clone());
            curves.push(z);
        }
        Ok(Self::from_parts(c.model.clone(), keys, curves))
    }

    /// Prepared curves from already-transformed values (surrogates of z-curves); all measures
    /// are invariant under affine maps of a curve, so these need no second z-scoring.
    pub(crate) fn from_parts(model: String, keys: Vec<String>, curves: Vec<Vec<f64>>) -> Self {
        let mut p = Prepared {
            model,
            keys,
            curves,
            centered: Vec::new(),
            ranks: Vec::new(),
        };
        p.refresh(true, &mut Vec::new(), &mut Vec::new());
        p
    }

    /// Recompute the centred curves (and, with `ranks`, the centred ranks; without, drop
    /// them) after [`Prepared::curves_mut`] changed the curves, reusing every buffer.
    pub(crate) fn refresh(&mut self, ranks: bool, idx: &mut Vec<usize>, buf: &mut Vec<f64>) {
        let k = self.curves.len();
        self.centered.resize_with(k, Centered::default);
        for (c, z) in self.centered.iter_mut().zip(&self.curves) {
            c.set(z);
        }
        if !ranks {
            self.ranks.clear();
            return;
        }
        self.ranks.resize_with(k, Centered::default);
        for (r, z) in self.ranks.iter_mut().zip(&self.curves) {
            buf.clear();
            buf.resize(z.len(), 0.0);
            ranks_kernel(z, idx, buf);
            r.set(buf);
        }
    }

    /// The curves, to be overwritten in place (then call [`Prepared::refresh`]).
    pub(crate) fn curves_mut(&mut self) -> &mut [Vec<f64>] {
        &mut self.curves
    }

    /// Model name.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Role keys, sorted.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// The z-curves, in key order.
    pub fn curves(&self) -> &[Vec<f64>] {
        &self.curves
    }
}

/// Reusable buffers for the per-pair kernel (one per thread).
#[derive(Debug, Default)]
pub struct Scratch {
    x: Vec<f64>,
    y: Vec<f64>,
    u: Vec<f64>,
    v: Vec<f64>,
    idx: Vec<usize>,
    /// Polynomial bases by (length, order); few distinct lengths occur in practice.
    bases: Vec<((usize, u8), Vec<f64>)>,
}

/// Most cached bases per scratch (the cache is cleared beyond this).
const MAX_CACHED_BASES: usize = 64;

/// Why a role's correlation is undefined.
#[derive(Debug)]
enum Degenerate {
    Short { len: usize, needed: usize },
    NoSpread(&'static str),
}

/// One role's correlation: role `k` of `pa` and `pb`.
fn role_kernel(
    m: Measure,
    pa: &Prepared,
    pb: &Prepared,
    k: usize,
    s: &mut Scratch,
) -> std::result::Result<f64, Degenerate> {
    let (a, b) = (&pa.curves[k][..], &pb.curves[k][..]);
    let n = a.len().max(b.len());
    let needed = m.min_aligned();
    if n < needed || a.len() < 2 || b.len() < 2 {
        return Err(Degenerate::Short { len: n, needed });
    }
    if a.len() == b.len() {
        match m {
            Measure::HonestAgi => {
                return pearson_centered(&pa.centered[k], &pb.centered[k])
                    .ok_or(Degenerate::NoSpread(""));
            }
            Measure::Spearman if !pa.ranks.is_empty() && !pb.ranks.is_empty() => {
                return pearson_centered(&pa.ranks[k], &pb.ranks[k])
                    .ok_or(Degenerate::NoSpread(" after ranking"));
            }
            _ => {}
        }
    }
    let Scratch {
        x,
        y,
        u,
        v,
        idx,
        bases,
    } = s;
    let (xa, yb): (&[f64], &[f64]) = if a.len() == b.len() {
        (a, b)
    } else if a.len() < b.len() {
        x.resize(n, 0.0);
        interpolate_kernel(a, x);
        (&x[..], b)
    } else {
        y.resize(n, 0.0);
        interpolate_kernel(b, y);
        (a, &y[..])
    };
    match m {
        Measure::HonestAgi => pearson_kernel(xa, yb).ok_or(Degenerate::NoSpread("")),
        Measure::Spearman => {
            u.resize(n, 0.0);
            v.resize(n, 0.0);
            ranks_kernel(xa, idx, u);
            ranks_kernel(yb, idx, v);
            pearson_kernel(u, v).ok_or(Degenerate::NoSpread(" after ranking"))
        }
        Measure::Detrended(p) => {
            let pos = match bases.iter().position(|(k, _)| *k == (n, p)) {
                Some(pos) => pos,
                None => {
                    if bases.len() >= MAX_CACHED_BASES {
                        bases.clear();
                    }
                    bases.push(((n, p), poly_basis(n, p as usize)));
                    bases.len() - 1
                }
            };
            let basis = &bases[pos].1;
            u.resize(n, 0.0);
            v.resize(n, 0.0);
            residual_kernel(xa, basis, u);
            residual_kernel(yb, basis, v);
            let tiny = |r: &[f64], src: &[f64]| {
                let mr = r.iter().fold(0.0f64, |m, x| m.max(x.abs()));
                let ms = src.iter().fold(0.0f64, |m, x| m.max(x.abs()));
                mr.is_nan() || mr <= RESIDUAL_REL * ms
            };
            if tiny(u, xa) || tiny(v, yb) {
                return Err(Degenerate::NoSpread(" after detrending"));
            }
            pearson_kernel(u, v).ok_or(Degenerate::NoSpread(" after detrending"))
        }
        Measure::Diff => {
            u.clear();
            u.extend(xa.windows(2).map(|w| w[1] - w[0]));
            v.clear();
            v.extend(yb.windows(2).map(|w| w[1] - w[0]));
            pearson_kernel(u, v).ok_or(Degenerate::NoSpread(" after differencing"))
        }
    }
}

fn degenerate_error(d: Degenerate, a: &str, b: &str, role: &str, m: Measure) -> Error {
    match d {
        Degenerate::Short { len, needed } => Error::TooFewLayers {
            model: format!("{a} vs {b}"),
            role: role.to_owned(),
            layers: len,
            needed,
            what: format!("measure {m}"),
        },
        Degenerate::NoSpread(after) => Error::ZeroSpread {
            model: format!("{a} vs {b}"),
            role: role.to_owned(),
            after: after.to_owned(),
        },
    }
}

fn check_keys(a: &Prepared, b: &Prepared) -> Result<()> {
    if a.keys == b.keys {
        return Ok(());
    }
    for k in &a.keys {
        if !b.keys.contains(k) {
            return Err(Error::RoleMismatch {
                role: k.clone(),
                present_in: a.model.clone(),
                missing_in: b.model.clone(),
            });
        }
    }
    let k = b.keys.iter().find(|k| !a.keys.contains(k));
    Err(Error::RoleMismatch {
        role: k.cloned().unwrap_or_default(),
        present_in: b.model.clone(),
        missing_in: a.model.clone(),
    })
}

/// Per-role correlations of two prepared models, in key order, through the same kernel as
/// every other path (so pairwise, matrix and Monte-Carlo scores agree bit for bit).
pub fn role_scores(
    a: &Prepared,
    b: &Prepared,
    m: Measure,
    scratch: &mut Scratch,
    out: &mut Vec<f64>,
) -> Result<()> {
    check_keys(a, b)?;
    out.clear();
    for (k, key) in a.keys.iter().enumerate() {
        let r = role_kernel(m, a, b, k, scratch)
            .map_err(|d| degenerate_error(d, &a.model, &b.model, key, m))?;
        out.push(r);
    }
    Ok(())
}

/// The score (mean of per-role correlations) of two prepared models.
pub fn score(a: &Prepared, b: &Prepared, m: Measure, scratch: &mut Scratch) -> Result<f64> {
    check_keys(a, b)?;
    score_same_keys(a, b, m, scratch)
}

/// [`score`] of two models known to have the same role keys (checked once by the caller, not
/// per pair or per Monte-Carlo sample).
pub(crate) fn score_same_keys(
    a: &Prepared,
    b: &Prepared,
    m: Measure,
    scratch: &mut Scratch,
) -> Result<f64> {
    debug_assert_eq!(a.keys, b.keys);
    let mut sum = 0.0;
    for (k, key) in a.keys.iter().enumerate() {
        sum += role_kernel(m, a, b, k, scratch)
            .map_err(|d| degenerate_error(d, &a.model, &b.model, key, m))?;
    }
    Ok(sum / a.curves.len() as f64)
}

fn pattern_text(p: &[bool]) -> String {
    p.iter().map(|&x| if x { 'x' } else { '.' }).collect()
}

/// Caveats about a pair of curve sets (see [`Flag`]).
pub fn flags(a: &Curves, b: &Curves, low_spread_cv: f64) -> Vec<Flag> {
    let mut out = Vec::new();
    for c in [a, b] {
        if c.nonfinite {
            out.push(Flag::NonFiniteWeights {
                model: c.model.clone(),
            });
        }
    }
    if a.roles
        .iter()
        .any(|(k, c)| b.roles.get(k).is_some_and(|d| d.len() != c.len()))
    {
        out.push(Flag::DepthMismatch {
            a_layers: a.max_layers(),
            b_layers: b.max_layers(),
        });
    }
    for c in [a, b] {
        for (role, curve) in &c.roles {
            if let Some(cv) = curve.cv() {
                if cv < low_spread_cv {
                    out.push(Flag::LowSpread {
                        model: c.model.clone(),
                        role: role.clone(),
                        cv,
                        threshold: low_spread_cv,
                    });
                }
            }
        }
    }
    for c in [a, b] {
        for (role, curve) in &c.roles {
            if let Some(p) = curve.quant_pattern() {
                out.push(Flag::MixedQuantization {
                    model: c.model.clone(),
                    role: role.clone(),
                    pattern: pattern_text(&p),
                });
            }
        }
    }
    for (role, ca) in &a.roles {
        if let (Some(pa), Some(pb)) = (
            ca.quant_pattern(),
            b.roles.get(role).and_then(|c| c.quant_pattern()),
        ) {
            if pa == pb {
                out.push(Flag::SharedQuantizationPattern {
                    role: role.clone(),
                    pattern: pattern_text(&pa),
                });
            }
        }
    }
    out
}

/// Compare two models' curves with one measure. Both must hold the same role keys.
pub fn similarity(a: &Curves, b: &Curves, opts: &MeasureOptions) -> Result<Similarity> {
    if opts.low_spread_cv.is_nan() || opts.low_spread_cv < 0.0 {
        return Err(Error::invalid(
            "low_spread_cv",
            opts.low_spread_cv,
            "must be a non-negative number",
        ));
    }
    let (pa, pb) = (Prepared::new(a)?, Prepared::new(b)?);
    let mut scratch = Scratch::default();
    let mut rs = Vec::new();
    role_scores(&pa, &pb, opts.measure, &mut scratch, &mut rs)?;
    let k = rs.len() as f64;
    let sum: f64 = rs.iter().sum();
    Ok(Similarity {
        measure: opts.measure,
        a: a.model.clone(),
        b: b.model.clone(),
        layers: (a.max_layers(), b.max_layers()),
        per_role: pa.keys.iter().cloned().zip(rs.iter().copied()).collect(),
        score: sum / k,
        rescaled: (sum + k) / (2.0 * k),
        flags: flags(a, b, opts.low_spread_cv),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::curves;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn honestagi_hand_example_same_depth() {
        // z-scoring does not change Pearson's r; see stats::tests::pearson_hand_example:
        // r([1, 2, 4], [2, 1, 3]) = sqrt(3/7) = 0.6546536707...
        let a = curves("a", &[("r", &[1.0, 2.0, 4.0])]);
        let b = curves("b", &[("r", &[2.0, 1.0, 3.0])]);
        let s = similarity(&a, &b, &MeasureOptions::default()).unwrap();
        let r = (3.0f64 / 7.0).sqrt();
        assert!(close(s.per_role["r"], r, 1e-15));
        assert!(close(s.score, r, 1e-15));
        assert!(close(s.rescaled, (r + 1.0) / 2.0, 1e-15));
        assert!(s.flags.is_empty(), "{:?}", s.flags);
    }

    #[test]
    fn honestagi_hand_example_interpolated() {
        // a = [1, 2, 4] (3 layers) onto b's 5-point grid: [1, 1.5, 2, 3, 4] (mean 2.3).
        // b = [0, 1, 1, 2, 5] (mean 1.8).
        // Deviations: a (-1.3, -0.8, -0.3, 0.7, 1.7), b (-1.8, -0.8, -0.8, 0.2, 3.2).
        // Sxy = 2.34 + 0.64 + 0.24 + 0.14 + 5.44 = 8.8
        // Sxx = 1.69 + 0.64 + 0.09 + 0.49 + 2.89 = 5.8
        // Syy = 3.24 + 0.64 + 0.64 + 0.04 + 10.24 = 14.8
        // r = 8.8 / sqrt(5.8 * 14.8) = 0.949812361...
        let a = curves("a", &[("r", &[1.0, 2.0, 4.0])]);
        let b = curves("b", &[("r", &[0.0, 1.0, 1.0, 2.0, 5.0])]);
        let s = similarity(&a, &b, &MeasureOptions::default()).unwrap();
        let r = 8.8 / (5.8f64 * 14.8).sqrt();
        assert!(close(s.score, r, 1e-14), "{} vs {r}", s.score);
        // Symmetric in its arguments.
        let t = similarity(&b, &a, &MeasureOptions::default()).unwrap();
        assert_eq!(s.score, t.score);
        assert!(matches!(
            s.flags.as_slice(),
            [Flag::DepthMismatch {
                a_layers: 3,
                b_layers: 5
            }]
        ));
    }

    #[test]
    fn mean_over_roles_and_rescaling() {
        let a = curves(
            "a",
            &[
                ("attn_q", &[1.0, 2.0, 4.0]),
                ("attn_k", &[1.0, 2.0, 3.0]),
                ("attn_v", &[3.0, 2.0, 1.0]),
                ("attn_o", &[1.0, 3.0, 2.0]),
            ],
        );
        let b = curves(
            "b",
            &[
                ("attn_q", &[2.0, 1.0, 3.0]),
                ("attn_k", &[1.0, 2.0, 3.0]),
                ("attn_v", &[1.0, 2.0, 3.0]),
                ("attn_o", &[1.0, 3.0, 2.0]),
            ],
        );
        let s = similarity(&a, &b, &MeasureOptions::default()).unwrap();
        let rq = (3.0f64 / 7.0).sqrt();
        assert!(close(s.per_role["attn_q"], rq, 1e-15));
        assert!(close(s.per_role["attn_k"], 1.0, 1e-15));
        assert!(close(s.per_role["attn_v"], -1.0, 1e-15));
        assert!(close(s.per_role["attn_o"], 1.0, 1e-15));
        assert!(close(s.score, (rq + 1.0) / 4.0, 1e-15));
        assert!(close(s.rescaled, (rq + 1.0 + 4.0) / 8.0, 1e-15));
    }

    #[test]
    fn degenerate_inputs_are_typed_errors() {
        let flat = curves("flat", &[("r", &[0.5, 0.5, 0.5, 0.5])]);
        let ok = curves("ok", &[("r", &[1.0, 2.0, 4.0, 3.0])]);
        let e = similarity(&flat, &ok, &MeasureOptions::default()).unwrap_err();
        assert!(
            matches!(e, Error::ZeroSpread { ref model, .. } if model == "flat"),
            "{e}"
        );
        // Three layers are too few for differences and detrending.
        let a = curves("a", &[("r", &[1.0, 2.0, 4.0])]);
        let b = curves("b", &[("r", &[2.0, 1.0, 3.0])]);
        for m in [Measure::Diff, Measure::Detrended(1), Measure::Detrended(2)] {
            let e = similarity(&a, &b, &MeasureOptions::new(m)).unwrap_err();
            assert!(
                matches!(e, Error::TooFewLayers { layers: 3, .. }),
                "{m}: {e}"
            );
        }
        // A straight line has no residual after linear detrending.
        let line = curves("line", &[("r", &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])]);
        let wiggly = curves("w", &[("r", &[1.0, 3.0, 2.0, 5.0, 4.0, 6.0])]);
        let e =
            similarity(&line, &wiggly, &MeasureOptions::new(Measure::Detrended(1))).unwrap_err();
        assert!(matches!(e, Error::ZeroSpread { ref after, .. } if after.contains("detrend")));
        // Constant differences: zero spread after differencing.
        let e = similarity(&line, &wiggly, &MeasureOptions::new(Measure::Diff)).unwrap_err();
        assert!(matches!(e, Error::ZeroSpread { ref after, .. } if after.contains("differenc")));
        // Different role sets.
        let other = curves("o", &[("s", &[1.0, 2.0, 4.0])]);
        assert!(matches!(
            similarity(&a, &other, &MeasureOptions::default()),
            Err(Error::RoleMismatch { .. })
        ));
        let bad = MeasureOptions {
            low_spread_cv: f64::NAN,
            ..Default::default()
        };
        assert!(similarity(&a, &b, &bad).is_err());
    }

    #[test]
    fn low_spread_and_quantization_flags() {
        // Gemma-3-270m-like flat q curve: 0.03954..0.03955.
        let flat = [0.03954, 0.039545, 0.03955, 0.039541, 0.039549, 0.039543];
        let a = curves("gemma", &[("attn_q", &flat)]);
        let b = curves(
            "other",
            &[("attn_q", &[0.1, 0.09, 0.085, 0.08, 0.083, 0.079])],
        );
        let s = similarity(&a, &b, &MeasureOptions::default()).unwrap();
        assert!(s.score.is_finite());
        assert!(
            matches!(&s.flags[..], [Flag::LowSpread { model, cv, .. }] if model == "gemma" && *cv < 1e-3),
            "{:?}",
            s.flags
        );
        // Shared mixed-quantization pattern.
        let mut qa = a.clone();
        let mut qb = b.clone();
        let pat = ["Q8_0", "Q5_0", "Q5_0", "Q8_0", "Q5_0", "Q8_0"].map(String::from);
        qa.roles.get_mut("attn_q").unwrap().dtypes = pat.to_vec();
        qb.roles.get_mut("attn_q").unwrap().dtypes = pat.to_vec();
        let f = flags(&qa, &qb, LOW_SPREAD_CV);
        assert!(f.iter().any(
            |f| matches!(f, Flag::SharedQuantizationPattern { pattern, .. } if pattern == "x..x.x")
        ));
        assert_eq!(
            f.iter()
                .filter(|f| matches!(f, Flag::MixedQuantization { .. }))
                .count(),
            2
        );
        assert!(f.iter().all(|f| !f.to_string().is_empty()));
    }

    /// Whatever the scale or shape of the input, a measure returns a finite score in [-1, 1]
    /// or a typed error, never NaN.
    #[test]
    fn no_nan_at_any_scale() {
        use crate::rng::{normal, stream};
        let mut r = stream(99, 0);
        for &scale in &[1e-300, 1e-150, 1e-10, 1.0, 1e10, 1e150, 1e300] {
            for shape in 0..5 {
                for (la, lb) in [(6, 6), (5, 9)] {
                    let mut gen = |n: usize| -> Vec<f64> {
                        (0..n)
                            .map(|i| {
                                let v = match shape {
                                    0 => normal(&mut r),
                                    1 => 1.0,
                                    2 => 1.0 + f64::EPSILON * (i % 2) as f64,
                                    3 => (i % 2) as f64,
                                    _ => i as f64,
                                };
                                v * scale
                            })
                            .collect()
                    };
                    let a = Curves::new("a", [("r".to_string(), gen(la))].into()).unwrap();
                    let b = Curves::new("b", [("r".to_string(), gen(lb))].into()).unwrap();
                    for m in Measure::ALL {
                        if let Ok(s) = similarity(&a, &b, &MeasureOptions::new(m)) {
                            assert!(
                                s.score.is_finite() && s.score.abs() <= 1.0,
                                "{m} scale {scale} shape {shape}: {}",
                                s.score
                            );
                            assert!(s.rescaled.is_finite());
                            for f in &s.flags {
                                if let Flag::LowSpread { cv, .. } = f {
                                    assert!(cv.is_finite());
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn measures_parse_and_serialise_by_name() {
        for m in Measure::ALL {
            assert_eq!(m.name().parse::<Measure>().unwrap(), m);
            let j = serde_json::to_string(&m).unwrap();
            assert_eq!(serde_json::from_str::<Measure>(&j).unwrap(), m);
        }
        assert!("cosine".parse::<Measure>().is_err());
    }

    #[test]
    fn detrending_removes_a_shared_trend() {
        // Two curves with the same strong linear trend and opposite wiggles: Pearson is high,
        // detrended Pearson is strongly negative.
        let n = 12;
        let wig = |s: f64| -> Vec<f64> {
            (0..n)
                .map(|i| i as f64 + s * if i % 2 == 0 { 0.5 } else { -0.5 })
                .collect()
        };
        let a = Curves::new("a", [("r".to_string(), wig(1.0))].into()).unwrap();
        let b = Curves::new("b", [("r".to_string(), wig(-1.0))].into()).unwrap();
        let p = similarity(&a, &b, &MeasureOptions::default())
            .unwrap()
            .score;
        let d = similarity(&a, &b, &MeasureOptions::new(Measure::Detrended(1)))
            .unwrap()
            .score;
        let f = similarity(&a, &b, &MeasureOptions::new(Measure::Diff))
            .unwrap()
            .score;
        assert!(p > 0.9, "{p}");
        assert!(d < -0.9, "{d}");
        assert!(f < -0.9, "{f}");
    }
}

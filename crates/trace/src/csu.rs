//! The neuron-matching independence test on same-hidden-size MLP blocks (see [`super`] for
//! the method and its null).

use crate::matrices::sample_indices;
use fingerprint::roles::Expert;
use ndarray::Array2;
use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::exact::{self, Fisher};
use super::lap::{assign_max, cosine};
use super::weights::{ResidualMap, View};
use super::{log10, Error, LayerId, MlpSite, ModelWeights, Result, Skipped, CITATION};
use null::rng;

/// Which two views of each unit are matched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Views {
    /// Gate rows vs up rows when both MLPs are gated, else up rows vs down columns.
    #[default]
    Auto,
    /// Gate rows vs up rows.
    GateUp,
    /// Up rows vs down columns.
    UpDown,
    /// Gate rows vs down columns.
    GateDown,
}

/// How the residual coordinates of model B are put in model A's basis.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResidualAlign {
    /// By the token embeddings when both models have one of the same shape, else assume the
    /// basis is shared (with a note).
    #[default]
    Auto,
    /// By the token embeddings; fail when they are missing or differ in shape.
    Embedding,
    /// Assume the basis is shared.
    None,
}

/// Options of the matching test.
#[derive(Clone, Debug, PartialEq)]
pub struct CsuOptions {
    /// Most units of the narrower model tested per layer (a seeded uniform sample beyond).
    pub max_units: usize,
    /// Seed of the unit samples, the token sample and the randomized p-values.
    pub seed: u64,
    /// The two views.
    pub views: Views,
    /// Residual basis alignment.
    pub residual: ResidualAlign,
    /// Token rows sampled for the embedding alignment.
    pub max_tokens: usize,
    /// Layer pairs (A, B) to test; `None`: the dense MLPs paired by depth position.
    pub pairs: Option<Vec<(LayerId, LayerId)>>,
}

impl Default for CsuOptions {
    fn default() -> Self {
        CsuOptions {
            max_units: 1024,
            seed: 0,
            views: Views::Auto,
            residual: ResidualAlign::Auto,
            max_tokens: 4096,
            pairs: None,
        }
    }
}

impl CsuOptions {
    fn validate(&self) -> Result<()> {
        if self.max_units < 2 {
            return Err(Error::Invalid {
                what: "max_units".into(),
                reason: format!("{} is too few to match (at least 2)", self.max_units),
            });
        }
        if self.max_tokens < 2 {
            return Err(Error::Invalid {
                what: "max_tokens".into(),
                reason: format!("{} is too few (at least 2)", self.max_tokens),
            });
        }
        Ok(())
    }
}

/// The unpermuted-copy test of one layer: first-view matches that are the same unit index.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IdentityTest {
    /// Units matched to the unit of the same index.
    pub matches: u64,
    /// `P(K ≥ matches)` under the null (exact, conservative).
    pub p: f64,
    /// log10 of `p`.
    pub log10_p: f64,
    /// log10 of the randomized p-value that enters Fisher's method.
    pub log10_p_randomized: f64,
}

/// The matching test of one pair of MLPs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerTest {
    /// Layer of model A.
    pub layer_a: LayerId,
    /// Layer of model B.
    pub layer_b: LayerId,
    /// Expert of model A (MoE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expert_a: Option<Expert>,
    /// Expert of model B (MoE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expert_b: Option<Expert>,
    /// The two views matched.
    pub views: [String; 2],
    /// MLP width of A.
    pub width_a: usize,
    /// MLP width of B.
    pub width_b: usize,
    /// The model whose units were sampled and matched into the other's (`a` or `b`).
    pub query: String,
    /// Units tested (sampled from the query model).
    pub units: usize,
    /// Units of the other model they were matched into.
    pub candidates: usize,
    /// Units on which the two views' matches coincide.
    pub coincidences: u64,
    /// Expected coincidences under the null, `units / candidates`.
    pub expected: f64,
    /// `P(K ≥ coincidences)` under the null (exact, conservative).
    pub p: f64,
    /// log10 of `p`.
    pub log10_p: f64,
    /// log10 of the randomized p-value that enters Fisher's method.
    pub log10_p_randomized: f64,
    /// The unpermuted-copy test (equal widths only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityTest>,
    /// Spearman correlation of the two matchings (Zhu et al.'s statistic).
    pub spearman: f64,
    /// log10 of its one-sided p-value by the normal approximation `ρ √(units − 1)`
    /// (approximate; reported for comparison with Zhu et al.).
    pub spearman_log10_p_normal: f64,
    /// Mean cosine of the matched pairs, per view.
    pub mean_cos: [f64; 2],
}

/// How the residual bases were put in correspondence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResidualInfo {
    /// `embedding` or `shared` (assumed).
    pub method: String,
    /// Residual coordinates.
    pub dims: usize,
    /// Token rows used (embedding alignment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<usize>,
    /// Fraction of coordinates matched to the same index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_fraction: Option<f64>,
    /// Coordinates matched with a negative cosine (sign flipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_flips: Option<usize>,
    /// Mean |cos| of the matched embedding columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_abs_cos: Option<f64>,
    /// Why this method.
    pub note: String,
}

/// The matching test of two models.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CsuResult {
    /// `csu`.
    pub test: String,
    /// The method, in a sentence.
    pub method: String,
    /// Its source.
    pub citation: String,
    /// Model A.
    pub model_a: String,
    /// Model B.
    pub model_b: String,
    /// Fisher-combined p-value of the permutation-robust (two-view) test.
    pub p: f64,
    /// log10 of `p`, exact where `p` underflows.
    pub log10_p: f64,
    /// The combination behind `p`.
    pub fisher: Fisher,
    /// Fisher-combined unpermuted-copy test (layers of equal width only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Fisher>,
    /// Per layer pair.
    pub layers: Vec<LayerTest>,
    /// Layers not tested, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
    /// The neuron subsampling, in words.
    pub subsampling: String,
    /// The residual basis alignment.
    pub residual: ResidualInfo,
    /// The seed.
    pub seed: u64,
    /// Caveats.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

pub(crate) const METHOD: &str = "hidden units matched twice by linear assignment on the cosine \
of their weight vectors (two views: gate/up rows, or up rows/down columns); coincidences of the \
two matchings tested against their exact law under independence; layers combined by Fisher's \
method on randomized p-values";

impl CsuResult {
    /// A few lines for a terminal.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "csu: {} vs {}: log10 p = {:.1} (Fisher over {} layer pairs, two-view matching)\n",
            self.model_a,
            self.model_b,
            self.log10_p,
            self.layers.len()
        );
        if let Some(id) = &self.identity {
            s.push_str(&format!(
                "  unpermuted-copy test: log10 p = {:.1}\n",
                id.log10_p
            ));
        }
        for l in &self.layers {
            s.push_str(&format!(
                "  {} ↔ {}: {}/{} coincide (expected {:.2}), log10 p = {:.1}{}\n",
                l.layer_a,
                l.layer_b,
                l.coincidences,
                l.units,
                l.expected,
                l.log10_p,
                match &l.identity {
                    Some(i) => format!("; same index: {} (log10 p {:.1})", i.matches, i.log10_p),
                    None => String::new(),
                }
            ));
        }
        for k in &self.skipped {
            s.push_str(&format!("  skipped {}: {}\n", k.what, k.reason));
        }
        s.push_str(&format!(
            "  units: {}\n  residual basis: {}\n",
            self.subsampling, self.residual.note
        ));
        s
    }
}

/// Run the matching test between two models.
pub fn csu(a: &ModelWeights, b: &ModelWeights, opts: &CsuOptions) -> Result<CsuResult> {
    opts.validate()?;
    let (sites_a, mut skipped) = a.mlp_sites();
    let (sites_b, skipped_b) = b.mlp_sites();
    skipped.extend(skipped_b);
    let dense = |s: &[MlpSite]| -> Vec<MlpSite> {
        s.iter().filter(|s| s.expert.is_none()).cloned().collect()
    };
    let (da, db) = (dense(&sites_a), dense(&sites_b));
    if da.is_empty() || db.is_empty() {
        return Err(Error::NotTestable {
            reason: format!(
                "{} has {} and {} has {} dense MLP blocks with consistent shapes",
                a.name(),
                da.len(),
                b.name(),
                db.len()
            ),
        });
    }
    let mut notes = Vec::new();
    let pairs: Vec<(MlpSite, MlpSite)> = match &opts.pairs {
        Some(list) => {
            let mut out = Vec::new();
            for (la, lb) in list {
                match (
                    da.iter().find(|s| s.layer == *la),
                    db.iter().find(|s| s.layer == *lb),
                ) {
                    (Some(x), Some(y)) => out.push((x.clone(), y.clone())),
                    _ => skipped.push(Skipped {
                        what: format!("layer {la} ↔ {lb}"),
                        reason: "no dense MLP with consistent shapes at one of them".into(),
                    }),
                }
            }
            out
        }
        None => {
            if da.len() != db.len() {
                notes.push(format!(
                    "{} has {} MLP blocks and {} has {}: the first {} are paired by depth \
                     position (use align for a depth-aware pairing)",
                    a.name(),
                    da.len(),
                    b.name(),
                    db.len(),
                    da.len().min(db.len())
                ));
            }
            da.iter().cloned().zip(db.iter().cloned()).collect()
        }
    };
    let hidden_a = da[0].hidden;
    let hidden_b = db[0].hidden;
    if hidden_a != hidden_b {
        return Err(Error::NotTestable {
            reason: format!(
                "hidden sizes differ ({} has {hidden_a}, {} has {hidden_b}): unit vectors live \
                 in residual spaces of different dimension, so no cosine between them exists",
                a.name(),
                b.name()
            ),
        });
    }
    let (map, residual) = residual_map(a, b, hidden_a, opts)?;
    let tests: Vec<(usize, MlpSite, MlpSite)> = pairs
        .into_iter()
        .enumerate()
        .map(|(i, (x, y))| (i, x, y))
        .collect();
    let outcomes: Vec<Result<std::result::Result<LayerTest, Skipped>>> = tests
        .par_iter()
        .map(|(i, x, y)| test_sites(a, x, b, y, map.as_ref(), opts, *i as u64))
        .collect();
    let mut layers = Vec::new();
    let mut ln_two = Vec::new();
    let mut ln_id = Vec::new();
    for o in outcomes {
        match o? {
            Ok(t) => {
                ln_two.push(t.log10_p_randomized * std::f64::consts::LN_10);
                if let Some(id) = &t.identity {
                    ln_id.push(id.log10_p_randomized * std::f64::consts::LN_10);
                }
                layers.push(t);
            }
            Err(s) => skipped.push(s),
        }
    }
    let fisher = exact::fisher(&ln_two).ok_or_else(|| Error::NotTestable {
        reason: format!(
            "no layer pair could be tested: {}",
            skipped
                .iter()
                .map(|s| format!("{}: {}", s.what, s.reason))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    })?;
    Ok(CsuResult {
        test: "csu".into(),
        method: METHOD.into(),
        citation: CITATION.into(),
        model_a: a.name().into(),
        model_b: b.name().into(),
        p: fisher.p,
        log10_p: fisher.log10_p,
        fisher,
        identity: exact::fisher(&ln_id),
        layers,
        skipped,
        subsampling: subsampling_statement(opts),
        residual,
        seed: opts.seed,
        notes,
    })
}

pub(crate) fn subsampling_statement(opts: &CsuOptions) -> String {
    format!(
        "per layer pair, at most {} units of the narrower MLP (all when it has no more; else a \
         uniform sample without replacement, ChaCha8 seeded from seed {} and the pair's \
         position) are matched into all units of the other",
        opts.max_units, opts.seed
    )
}

/// The residual alignment of B to A.
pub(crate) fn residual_map(
    a: &ModelWeights,
    b: &ModelWeights,
    hidden: usize,
    opts: &CsuOptions,
) -> Result<(Option<ResidualMap>, ResidualInfo)> {
    let shared = |note: String| ResidualInfo {
        method: "shared".into(),
        dims: hidden,
        tokens: None,
        identity_fraction: None,
        sign_flips: None,
        mean_abs_cos: None,
        note,
    };
    if opts.residual == ResidualAlign::None {
        return Ok((
            None,
            shared("assumed shared (residual alignment off)".into()),
        ));
    }
    let ea = a.embedding().and_then(|k| a.shape(&k).map(|s| (k, s)));
    let eb = b.embedding().and_then(|k| b.shape(&k).map(|s| (k, s)));
    let found = match (ea, eb) {
        (Some((ka, sa)), Some((kb, sb))) if sa == sb && sa[1] == hidden => Ok((ka, kb, sa[0])),
        (Some((_, sa)), Some((_, sb))) => Err(format!(
            "token embeddings differ in shape ({}×{} vs {}×{}, hidden {hidden})",
            sa[0], sa[1], sb[0], sb[1]
        )),
        _ => Err("a model has no token embedding".to_owned()),
    };
    let (ka, kb, vocab) = match found {
        Ok(f) => f,
        Err(why) if opts.residual == ResidualAlign::Embedding => {
            return Err(Error::NotTestable {
                reason: format!("residual alignment by embeddings: {why}"),
            })
        }
        Err(why) => {
            return Ok((
                None,
                shared(format!(
                    "assumed shared: {why}, so the embeddings cannot align it"
                )),
            ))
        }
    };
    let tokens = sample_indices(
        vocab,
        opts.max_tokens.min(vocab),
        rng::child_seed(opts.seed, u64::MAX / 2),
    );
    let xa = a.load(&ka, Some(&tokens), None)?;
    let xb = b.load(&kb, Some(&tokens), None)?;
    // Columns are residual coordinates: compare them as vectors over the sampled tokens.
    let ca = xa.t().as_standard_layout().into_owned();
    let cb = xb.t().as_standard_layout().into_owned();
    let c = cosine(ca.view(), cb.view())?;
    let abs: Array2<f32> = c.mapv(f32::abs);
    let perm = assign_max(&abs)?;
    let sign: Vec<f32> = perm
        .iter()
        .enumerate()
        .map(|(d, &p)| if c[(d, p)] < 0.0 { -1.0 } else { 1.0 })
        .collect();
    let same = perm.iter().enumerate().filter(|(d, &p)| *d == p).count();
    let flips = sign.iter().filter(|&&s| s < 0.0).count();
    let mean_abs = perm
        .iter()
        .enumerate()
        .map(|(d, &p)| abs[(d, p)] as f64)
        .sum::<f64>()
        / hidden as f64;
    let info = ResidualInfo {
        method: "embedding".into(),
        dims: hidden,
        tokens: Some(tokens.len()),
        identity_fraction: Some(same as f64 / hidden as f64),
        sign_flips: Some(flips),
        mean_abs_cos: Some(mean_abs),
        note: format!(
            "B's residual coordinates matched to A's by linear assignment on |cos| of token \
             embedding columns over {} token rows: {same} of {hidden} kept their index, {flips} \
             flipped sign, mean |cos| {mean_abs:.3}",
            tokens.len()
        ),
    };
    Ok((Some(ResidualMap { perm, sign }), info))
}

/// Which views to match for a pair of sites, or why none fit.
fn views_for(x: &MlpSite, y: &MlpSite, v: Views) -> std::result::Result<[View; 2], String> {
    let both_gated = x.gated && y.gated;
    match v {
        Views::Auto if both_gated => Ok([View::Gate, View::Up]),
        Views::Auto | Views::UpDown => Ok([View::Up, View::Down]),
        Views::GateUp | Views::GateDown if !both_gated => {
            Err("a gate view was asked for but an MLP has no gate projection".into())
        }
        Views::GateUp => Ok([View::Gate, View::Up]),
        Views::GateDown => Ok([View::Gate, View::Down]),
    }
}

/// Spearman correlation of two equal-length lists of distinct values.
fn spearman_distinct(x: &[usize], y: &[usize]) -> f64 {
    let n = x.len();
    if n < 3 {
        return 0.0;
    }
    let ranks = |v: &[usize]| {
        let mut idx: Vec<usize> = (0..n).collect();
        idx.sort_by_key(|&i| v[i]);
        let mut r = vec![0f64; n];
        for (rank, i) in idx.into_iter().enumerate() {
            r[i] = rank as f64;
        }
        r
    };
    let (rx, ry) = (ranks(x), ranks(y));
    let d2: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - b) * (a - b)).sum();
    let nf = n as f64;
    1.0 - 6.0 * d2 / (nf * (nf * nf - 1.0))
}

/// The matching test of one pair of MLP sites; `Err(Skipped)` when they cannot be compared.
/// `index` seeds the unit sample and the randomization.
pub(crate) fn test_sites(
    a: &ModelWeights,
    x: &MlpSite,
    b: &ModelWeights,
    y: &MlpSite,
    map: Option<&ResidualMap>,
    opts: &CsuOptions,
    index: u64,
) -> Result<std::result::Result<LayerTest, Skipped>> {
    let what = {
        let side = |s: &MlpSite| match s.expert {
            Some(e) => format!("{} expert {e}", s.layer),
            None => s.layer.to_string(),
        };
        format!("layer {} ↔ {}", side(x), side(y))
    };
    if x.hidden != y.hidden {
        return Ok(Err(Skipped {
            what,
            reason: format!("hidden sizes {} and {} differ", x.hidden, y.hidden),
        }));
    }
    let views = match views_for(x, y, opts.views) {
        Ok(v) => v,
        Err(reason) => return Ok(Err(Skipped { what, reason })),
    };
    // The narrower MLP is the query: its (sampled) units are matched into all of the other's.
    let a_is_query = x.width <= y.width;
    let (qw, cw) = if a_is_query {
        (x.width, y.width)
    } else {
        (y.width, x.width)
    };
    if qw < 2 {
        return Ok(Err(Skipped {
            what,
            reason: format!("an MLP has {qw} unit(s)"),
        }));
    }
    let m = opts.max_units.min(qw);
    let sample = if m < qw {
        Some(sample_indices(qw, m, rng::child_seed(opts.seed, 2 * index)))
    } else {
        None
    };
    let units: Vec<usize> = sample.clone().unwrap_or_else(|| (0..qw).collect());
    let mut matches: Vec<Vec<usize>> = Vec::with_capacity(2);
    let mut mean_cos = [0.0f64; 2];
    for (vi, &view) in views.iter().enumerate() {
        let va = a.unit_view(
            x,
            view,
            if a_is_query { sample.as_deref() } else { None },
            None,
            None,
        )?;
        let vb = b.unit_view(
            y,
            view,
            if a_is_query { None } else { sample.as_deref() },
            map,
            None,
        )?;
        let sim = if a_is_query {
            cosine(va.view(), vb.view())?
        } else {
            cosine(vb.view(), va.view())?
        };
        let sigma = assign_max(&sim)?;
        mean_cos[vi] = sigma
            .iter()
            .enumerate()
            .map(|(i, &j)| sim[(i, j)] as f64)
            .sum::<f64>()
            / m as f64;
        matches.push(sigma);
    }
    let (s1, s2) = (&matches[0], &matches[1]);
    let k = s1.iter().zip(s2).filter(|(p, q)| p == q).count() as u64;
    let (mu, nu) = (m as u64, cw as u64);
    let mut r = rng::stream(opts.seed, 2 * index + 1);
    let u1: f64 = 1.0 - r.gen::<f64>();
    let u2: f64 = 1.0 - r.gen::<f64>();
    let ln_p = exact::ln_sf(mu, nu, k);
    let identity = (x.width == y.width).then(|| {
        let hits = s1.iter().zip(&units).filter(|(j, u)| *j == *u).count() as u64;
        let ln = exact::ln_sf(mu, nu, hits);
        IdentityTest {
            matches: hits,
            p: ln.exp(),
            log10_p: log10(ln),
            log10_p_randomized: log10(exact::ln_randomized(mu, nu, hits, u2)),
        }
    });
    let rho = spearman_distinct(s1, s2);
    Ok(Ok(LayerTest {
        layer_a: x.layer,
        layer_b: y.layer,
        expert_a: x.expert,
        expert_b: y.expert,
        views: [views[0].label().into(), views[1].label().into()],
        width_a: x.width,
        width_b: y.width,
        query: if a_is_query { "a" } else { "b" }.into(),
        units: m,
        candidates: cw,
        coincidences: k,
        expected: m as f64 / cw as f64,
        p: ln_p.exp(),
        log10_p: log10(ln_p),
        log10_p_randomized: log10(exact::ln_randomized(mu, nu, k, u1)),
        identity,
        spearman: rho,
        spearman_log10_p_normal: log10(exact::ln_normal_sf(rho * ((m as f64) - 1.0).sqrt())),
        mean_cos,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_of_permutations() {
        assert!((spearman_distinct(&[0, 1, 2, 3], &[5, 6, 7, 9]) - 1.0).abs() < 1e-12);
        assert!((spearman_distinct(&[0, 1, 2, 3], &[9, 7, 6, 5]) + 1.0).abs() < 1e-12);
        assert_eq!(spearman_distinct(&[0, 1], &[1, 0]), 0.0);
    }

    #[test]
    fn options_are_checked() {
        let o = CsuOptions {
            max_units: 1,
            ..Default::default()
        };
        assert!(matches!(o.validate(), Err(Error::Invalid { .. })));
    }
}

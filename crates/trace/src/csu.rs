//! The neuron-matching independence test on same-hidden-size MLP blocks (see [`super`] for
//! the method and its null).

use crate::matrices::sample_indices;
use fingerprint::roles::Expert;
use ndarray::{Array2, Axis};
use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::exact::{self, Fisher};
use super::lap::{assign_max, cosine, normalize_rows};
use super::rotation::Orthogonal;
use super::units::{self, Excluded, MIN_UNITS};
use super::weights::{ResidualMap, View};
use super::{log10, Error, LayerId, MlpSite, ModelWeights, Result, Skipped, CITATION};
use null::nulls::NullInfo;
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
    /// Draws of each calibrated null per layer pair (each costs two linear assignments).
    pub null_draws: usize,
}

/// Default draws of the rotation null per layer pair, the number the calibration tables in
/// the crate docs were measured with. The binomial comparison accounts for the error of a
/// null mean estimated from few draws, so more draws add power on weak signals, not validity;
/// a copied layer of `m` units already reaches `P(Bin(m + s, 1/13) ≥ m) ≈ 13^−m` (log10 p
/// about −280 at 256 units). Each draw costs two linear assignments per layer pair.
pub const DEFAULT_NULL_DRAWS: usize = 12;

impl Default for CsuOptions {
    fn default() -> Self {
        CsuOptions {
            max_units: 1024,
            seed: 0,
            views: Views::Auto,
            residual: ResidualAlign::Auto,
            max_tokens: 4096,
            pairs: None,
            null_draws: DEFAULT_NULL_DRAWS,
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
        if self.null_draws == 0 {
            return Err(Error::Invalid {
                what: "null_draws".into(),
                reason: "the calibrated null needs at least one draw".into(),
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

/// The calibrated null of one layer pair: the statistic recomputed after random rotations of
/// the query model's residual basis (see [`basis_null`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NullDraws {
    /// Draws.
    pub draws: usize,
    /// Coincidences in each draw, in draw order.
    pub coincidences: Vec<u64>,
    /// Their mean, the null's expectation of `K`.
    pub mean: f64,
    /// Their variance (n − 1), to compare with the mean (Poisson: equal).
    pub variance: f64,
    /// Draws with at least the observed coincidences.
    pub exceed: u64,
    /// The rank p-value `(1 + exceed) / (1 + draws)` (exact under the null, floored at
    /// `1 / (1 + draws)`).
    pub p_rank: f64,
    /// Its Monte-Carlo standard error `sqrt(p (1 − p) / draws)`.
    pub mc_error: f64,
    /// `P(X ≥ K)` for `X ~ Binomial(K + Σ draws, 1 / (1 + draws))`: the observed count against
    /// the draws' counts, assuming they are Poisson with one mean (see the crate docs).
    pub p: f64,
    /// log10 of `p`, exact far below f64's range.
    pub log10_p: f64,
    /// log10 of the randomized version of `p` that enters Fisher's method.
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
    /// A's units left out as degenerate before matching.
    pub excluded_a: Excluded,
    /// B's units left out as degenerate before matching.
    pub excluded_b: Excluded,
    /// The model whose units were sampled and matched into the other's (`a` or `b`).
    pub query: String,
    /// Units tested (sampled from the query model's usable units).
    pub units: usize,
    /// Usable units of the other model they were matched into.
    pub candidates: usize,
    /// Units on which the two views' matches coincide.
    pub coincidences: u64,
    /// Expected coincidences under the exact law, `units / candidates`.
    pub expected: f64,
    /// The calibrated p-value of the layer pair: the rotation null's `p` (see `basis`).
    pub p: f64,
    /// log10 of `p`.
    pub log10_p: f64,
    /// log10 of the randomized p-value that enters Fisher's method (the rotation null's).
    pub log10_p_randomized: f64,
    /// The rotation null: "do the two layers share directions in a common residual basis?"
    pub basis: NullDraws,
    /// The exact law of independent matchings (reference only: it does not hold for trained
    /// MLPs, whose units' two views are aligned).
    pub exact_law: ExactLaw,
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

/// `K` against the exact law of two independent uniform matchings ([`exact`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExactLaw {
    /// `P(K ≥ coincidences)`.
    pub p: f64,
    /// log10 of `p`.
    pub log10_p: f64,
    /// log10 of the randomized p-value.
    pub log10_p_randomized: f64,
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

/// A calibrated null, stated as every null of nullprint is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NullStatement {
    /// The null's name, what it keeps and what it destroys.
    #[serde(flatten)]
    pub info: NullInfo,
    /// What must hold for its p-values to be valid.
    pub assumes: String,
    /// Draws per layer pair.
    pub draws: usize,
    /// What a rejection means.
    pub rejection_means: String,
}

/// The rotation null: [`LayerTest::basis`].
pub fn basis_null(draws: usize) -> NullStatement {
    NullStatement {
        info: NullInfo {
            name: "rotation".into(),
            preserves: "each model's own geometry: every inner product between its unit \
                        vectors, so each unit's up/down (gate/up) alignment and the layer's \
                        spectrum; the units themselves"
                .into(),
            destroys: "any relation between the two models' residual bases: after a \
                       Haar-random rotation of the query model's residual space, applied to \
                       both views of its units, its vectors point in directions unrelated to \
                       the other model's"
                .into(),
        },
        assumes: "under independence the two models' residual bases are unrelated, i.e. the \
                  pair's law does not change when one model's residual space is rotated (exact \
                  for a model turned by a random orthogonal matrix); the draws' coincidence \
                  counts and the observed one are Poisson with one mean (their dispersion is \
                  reported as `variance`), so the observed count given the total is \
                  Binomial(total, 1/(1 + draws)); layers independent for Fisher's method"
            .into(),
        draws,
        rejection_means: "the two layers' unit vectors share directions in a common residual \
                          basis: shared units (in any order), or only a shared residual basis \
                          with shared features, as in models of one family; this test does not \
                          tell the two apart (the same-index test shows unpermuted shared units)"
            .into(),
    }
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
    /// Fisher-combined p-value of the two-view test against the rotation null ("the models'
    /// layers share directions in a common residual basis": shared units or a shared basis).
    pub p: f64,
    /// log10 of `p`, exact where `p` underflows.
    pub log10_p: f64,
    /// The combination behind `p`.
    pub fisher: Fisher,
    /// The rotation null behind `p`.
    pub null: NullStatement,
    /// What the two-view and same-index results say together, in a sentence.
    pub verdict: String,
    /// Fisher-combined p-value against the exact law of independent matchings (reference
    /// only: it rejects for unrelated trained models).
    pub exact_law: Fisher,
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
of their weight vectors (two views: gate/up rows, or up rows/down columns), degenerate units \
left out; the coincidences K of the two matchings compared with K recomputed after random \
rotations of one model's residual basis; layers combined by Fisher's method on randomized p-values";

/// The level at which [`CsuResult::verdict`] reads the combined p-values.
pub const VERDICT_ALPHA: f64 = 0.01;

/// The verdict sentence from the two-view (rotation null) and same-index combined p-values.
pub(crate) fn verdict(basis: &Fisher, identity: Option<&Fisher>) -> String {
    let lvl = VERDICT_ALPHA.log10();
    let id = identity.map(|f| f.log10_p);
    match (basis.log10_p <= lvl, id.is_some_and(|l| l <= lvl)) {
        (_, true) => format!(
            "shared units, unpermuted: units are matched to the unit of the same index beyond \
             chance (same-index log10 p {:.1}; two-view log10 p {:.1}), at α = {VERDICT_ALPHA}",
            id.unwrap_or(0.0),
            basis.log10_p
        ),
        (true, false) => format!(
            "shared directions in a common residual basis (two-view log10 p {:.1} against \
             random rotations), at α = {VERDICT_ALPHA}: shared units in permuted order, or a \
             shared residual basis without shared units (as in models of one family); this \
             test does not tell the two apart, and the same-index test {}",
            basis.log10_p,
            match id {
                Some(l) => format!("finds no unpermuted shared units (log10 p {l:.1})"),
                None => "was not run (MLP widths differ)".into(),
            }
        ),
        (false, false) => format!(
            "no evidence of relation: two-view log10 p {:.1} against random rotations{}, at \
             α = {VERDICT_ALPHA}",
            basis.log10_p,
            match id {
                Some(l) => format!(", same-index log10 p {l:.1}"),
                None => String::new(),
            }
        ),
    }
}

impl CsuResult {
    /// A few lines for a terminal.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "csu: {} vs {}: log10 p = {:.1} (rotation null, {} draws per layer pair; Fisher \
             over {} layer pairs, two-view matching)\n  {}\n  exact law (reference, does not \
             hold for trained MLPs): log10 p = {:.1}\n",
            self.model_a,
            self.model_b,
            self.log10_p,
            self.null.draws,
            self.layers.len(),
            self.verdict,
            self.exact_law.log10_p,
        );
        if let Some(id) = &self.identity {
            s.push_str(&format!(
                "  unpermuted-copy test: log10 p = {:.1}\n",
                id.log10_p
            ));
        }
        for l in &self.layers {
            let ex = l.excluded_a.total() + l.excluded_b.total();
            s.push_str(&format!(
                "  {} ↔ {}: {}/{} coincide (null mean {:.2}, exact law {:.2}), log10 p = {:.1} \
                 (exact law {:.1}){}{}\n",
                l.layer_a,
                l.layer_b,
                l.coincidences,
                l.units,
                l.basis.mean,
                l.expected,
                l.log10_p,
                l.exact_law.log10_p,
                match &l.identity {
                    Some(i) => format!("; same index: {} (log10 p {:.1})", i.matches, i.log10_p),
                    None => String::new(),
                },
                if ex > 0 {
                    format!(
                        "; degenerate units left out: {} of A, {} of B",
                        l.excluded_a.total(),
                        l.excluded_b.total()
                    )
                } else {
                    String::new()
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
    let mut ln_exact = Vec::new();
    let mut ln_id = Vec::new();
    for o in outcomes {
        match o? {
            Ok(t) => {
                ln_two.push(t.log10_p_randomized * std::f64::consts::LN_10);
                ln_exact.push(t.exact_law.log10_p_randomized * std::f64::consts::LN_10);
                if let Some(id) = &t.identity {
                    ln_id.push(id.log10_p_randomized * std::f64::consts::LN_10);
                }
                layers.push(t);
            }
            Err(s) => skipped.push(s),
        }
    }
    let (Some(fisher), Some(exact_law)) = (exact::fisher(&ln_two), exact::fisher(&ln_exact)) else {
        return Err(Error::NotTestable {
            reason: format!(
                "no layer pair could be tested: {}",
                skipped
                    .iter()
                    .map(|s| format!("{}: {}", s.what, s.reason))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        });
    };
    let identity = exact::fisher(&ln_id);
    Ok(CsuResult {
        test: "csu".into(),
        method: METHOD.into(),
        citation: CITATION.into(),
        model_a: a.name().into(),
        model_b: b.name().into(),
        p: fisher.p,
        log10_p: fisher.log10_p,
        verdict: verdict(&fisher, identity.as_ref()),
        fisher,
        null: basis_null(opts.null_draws),
        exact_law,
        identity,
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
        "per layer pair, degenerate units (non-finite, zero, constant, duplicated) are left out \
         of both models; then at most {} usable units of the model with fewer (all when it has \
         no more; else a uniform sample without replacement) are matched into all usable units \
         of the other; the sample, the {} draws of each null and the randomized p-values use \
         ChaCha8 streams seeded from seed {} and a hash of the pair's own weights",
        opts.max_units, opts.null_draws, opts.seed
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

/// 64-bit FNV-1a over the bits of some matrices: the identity of a layer pair, so that the
/// randomization of each pair differs (Fowler, Noll, Vo; constants from the published
/// specification).
fn fingerprint_bits(seed: u64, mats: &[&Array2<f32>]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    let mut eat = |x: u64| {
        for byte in x.to_le_bytes() {
            h ^= byte as u64;
            h = h.wrapping_mul(PRIME);
        }
    };
    eat(seed);
    for m in mats {
        eat(m.nrows() as u64);
        eat(m.ncols() as u64);
        for &v in m.iter() {
            eat(v.to_bits() as u64);
        }
    }
    h
}

/// Both views' matchings of `q`'s rows into `c`'s rows (unit-length rows), and the mean
/// cosine of each.
fn matchings(q: &[Array2<f32>], c: &[Array2<f32>]) -> Result<(Vec<Vec<usize>>, [f64; 2])> {
    let mut out = Vec::with_capacity(2);
    let mut mean_cos = [0.0f64; 2];
    for (vi, (qv, cv)) in q.iter().zip(c).enumerate() {
        let mut sim = qv.dot(&cv.t());
        sim.mapv_inplace(|v| if v.is_finite() { v } else { 0.0 });
        let sigma = assign_max(&sim)?;
        mean_cos[vi] = sigma
            .iter()
            .enumerate()
            .map(|(i, &j)| sim[(i, j)] as f64)
            .sum::<f64>()
            / qv.nrows().max(1) as f64;
        out.push(sigma);
    }
    Ok((out, mean_cos))
}

fn coincidences(s: &[Vec<usize>]) -> u64 {
    s[0].iter().zip(&s[1]).filter(|(p, q)| p == q).count() as u64
}

/// `K` recomputed after `draws` Haar-random rotations of the query's residual basis (the same
/// rotation for both views of a draw), against the observed `k`.
fn null_draws(
    q: &[Array2<f32>],
    c: &[Array2<f32>],
    seed: u64,
    draws: usize,
    k: u64,
    u: f64,
) -> Result<NullDraws> {
    let h = q[0].ncols();
    let ks: Vec<u64> = (0..draws as u64)
        .into_par_iter()
        .map(|d| {
            let t = Orthogonal::haar(h, &mut rng::stream(seed, d));
            let turned: Vec<Array2<f32>> = q
                .iter()
                .map(|v| {
                    let mut v = v.clone();
                    t.apply_rows(&mut v);
                    v
                })
                .collect();
            Ok(coincidences(&matchings(&turned, c)?.0))
        })
        .collect::<Result<_>>()?;
    let n = ks.len().max(1) as f64;
    let sum: u64 = ks.iter().sum();
    let mean = sum as f64 / n;
    let variance = if ks.len() > 1 {
        ks.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        f64::NAN
    };
    let exceed = ks.iter().filter(|&&x| x >= k).count() as u64;
    let p_rank = (1.0 + exceed as f64) / (1.0 + n);
    let pi = 1.0 / (1.0 + n);
    let ln_p = exact::ln_binomial_sf(k + sum, pi, k);
    Ok(NullDraws {
        draws: ks.len(),
        mean,
        variance,
        exceed,
        p_rank,
        mc_error: (p_rank * (1.0 - p_rank) / n).sqrt(),
        p: ln_p.exp(),
        log10_p: log10(ln_p),
        log10_p_randomized: log10(exact::ln_binomial_randomized(k + sum, pi, k, u)),
        coincidences: ks,
    })
}

/// The matching test of one pair of MLP sites; `Err(Skipped)` when they cannot be compared.
/// The unit sample, the null draws and the randomization are seeded from `opts.seed` and the
/// pair's own weights; `_index` (the pair's position) is not used.
pub(crate) fn test_sites(
    a: &ModelWeights,
    x: &MlpSite,
    b: &ModelWeights,
    y: &MlpSite,
    map: Option<&ResidualMap>,
    opts: &CsuOptions,
    _index: u64,
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
    let load = |w: &ModelWeights, s: &MlpSite, m: Option<&ResidualMap>| -> Result<Vec<_>> {
        views
            .iter()
            .map(|&v| w.unit_view(s, v, None, m, None))
            .collect()
    };
    let va = load(a, x, None)?;
    let vb = load(b, y, map)?;
    let (keep_a, excluded_a) = units::screen(&va);
    let (keep_b, excluded_b) = units::screen(&vb);
    if keep_a.len() < MIN_UNITS || keep_b.len() < MIN_UNITS {
        let side = |name: &str, w: usize, k: usize, e: &Excluded| {
            format!(
                "{name} keeps {k} of {w} units ({} non-finite, {} zero, {} constant, {} \
                 duplicated)",
                e.non_finite, e.zero, e.constant, e.duplicate
            )
        };
        return Ok(Err(Skipped {
            what,
            reason: format!(
                "too few usable units: {}; {}; at least {MIN_UNITS} are needed",
                side(a.name(), x.width, keep_a.len(), &excluded_a),
                side(b.name(), y.width, keep_b.len(), &excluded_b)
            ),
        }));
    }
    let pair_seed = fingerprint_bits(opts.seed, &[&va[0], &va[1], &vb[0], &vb[1]]);
    // The model with fewer usable units is the query: its (sampled) units are matched into
    // all usable units of the other.
    let a_is_query = keep_a.len() <= keep_b.len();
    let (qv, qkeep, cv, ckeep) = if a_is_query {
        (&va, &keep_a, &vb, &keep_b)
    } else {
        (&vb, &keep_b, &va, &keep_a)
    };
    let m = opts.max_units.min(qkeep.len());
    let units: Vec<usize> = sample_indices(qkeep.len(), m, rng::child_seed(pair_seed, 0))
        .into_iter()
        .map(|i| qkeep[i])
        .collect();
    let q: Vec<Array2<f32>> = qv
        .iter()
        .map(|v| normalize_rows(v.select(Axis(0), &units).view()))
        .collect();
    let c: Vec<Array2<f32>> = cv
        .iter()
        .map(|v| normalize_rows(v.select(Axis(0), ckeep).view()))
        .collect();
    let (sig, mean_cos) = matchings(&q, &c)?;
    let k = coincidences(&sig);
    let mut r = rng::stream(pair_seed, 0);
    let mut uniform = || 1.0 - r.gen::<f64>();
    let (u_basis, u_exact, u_id) = (uniform(), uniform(), uniform());
    let basis = null_draws(
        &q,
        &c,
        rng::child_seed(pair_seed, 1),
        opts.null_draws,
        k,
        u_basis,
    )?;
    let (mu, nu) = (m as u64, ckeep.len() as u64);
    let ln_exact = exact::ln_sf(mu, nu, k);
    let identity = (x.width == y.width).then(|| {
        // Under a uniform relabelling of the candidate model's usable units among themselves,
        // the first-view matching restricted to the query units whose index is also usable on
        // the other side is a uniform injection into the usable candidates: the exact law of
        // `eligible` units into `candidates` (degenerate sets shared by both models, such as
        // one pruning pattern, then add nothing).
        let usable: std::collections::BTreeSet<usize> = ckeep.iter().copied().collect();
        let eligible = units.iter().filter(|u| usable.contains(u)).count() as u64;
        let hits = sig[0]
            .iter()
            .zip(&units)
            .filter(|(j, u)| ckeep[**j] == **u)
            .count() as u64;
        let ln = exact::ln_sf(eligible, nu, hits);
        IdentityTest {
            matches: hits,
            p: ln.exp(),
            log10_p: log10(ln),
            log10_p_randomized: log10(exact::ln_randomized(eligible, nu, hits, u_id)),
        }
    });
    let rho = spearman_distinct(&sig[0], &sig[1]);
    Ok(Ok(LayerTest {
        layer_a: x.layer,
        layer_b: y.layer,
        expert_a: x.expert,
        expert_b: y.expert,
        views: [views[0].label().into(), views[1].label().into()],
        width_a: x.width,
        width_b: y.width,
        excluded_a,
        excluded_b,
        query: if a_is_query { "a" } else { "b" }.into(),
        units: m,
        candidates: ckeep.len(),
        coincidences: k,
        expected: m as f64 / ckeep.len() as f64,
        p: basis.p,
        log10_p: basis.log10_p,
        log10_p_randomized: basis.log10_p_randomized,
        basis,
        exact_law: ExactLaw {
            p: ln_exact.exp(),
            log10_p: log10(ln_exact),
            log10_p_randomized: log10(exact::ln_randomized(mu, nu, k, u_exact)),
        },
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

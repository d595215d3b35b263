//! Weight-level lineage tests: neuron matching with calibrated Monte-Carlo nulls (`csu`), depth
//! alignment (`align`) and MoE upcycling detection (`upcycle`).
//!
//! A per-tensor std fingerprint cannot settle a lineage claim: it ignores which neuron is
//! which, and every transformer shares its depth trends. These tests look at the weights
//! themselves, and survive the edits a copier can make for free.
//!
//! # Neuron matching (`csu`)
//!
//! The hidden units of an MLP can be permuted without changing the function: rows of the gate
//! and up projections and columns of the down projection move together. Any index-by-index
//! comparison is then broken, but a *matching* is not. For a layer of each model, each unit is
//! seen through two views, vectors in the residual space:
//!
//! * gated MLPs (Llama, Qwen, Gemma): its gate row and its up row;
//! * ungated MLPs (BERT `intermediate.dense` / `output.dense`, Whisper, GPT-2): its up row and
//!   its down column.
//!
//! Each view gives a linear assignment `σ` of one model's units to the other's that maximizes
//! the summed cosine similarity ([`lap`]). The signed cosine is used, not `|cos|`: flipping
//! the sign of a unit's vectors changes the function of SiLU/GELU units, so it is not a free
//! edit, and `|cos|` would only add spurious matches. The statistic is the number `K` of units
//! on which the two views agree, `σ_gate(i) = σ_up(i)`.
//!
//! *Degenerate units* ([`units`]). Units whose vectors are tied or undefined (all zero,
//! constant, exact duplicates, non-finite) have equal cosines with everything, so both
//! assignments place them in index order and they "coincide" without any shared unit (an
//! independent random model with one zeroed layer reached log10 p −205 against another).
//! They are left out of both models before matching, counted per layer (`excluded_a`,
//! `excluded_b`), and a layer left with fewer than [`units::MIN_UNITS`] usable units is
//! skipped with the counts in its reason (a model with none is not testable).
//!
//! *Why the exact law is not the null.* If the units' two views could be relabelled
//! independently of each other, `σ_1` would be a uniform injection independent of `σ_2` and
//! `K` would have the exact law of [`exact`] (nearly Poisson(1)). That holds for i.i.d.
//! initial weights, not for trained MLPs: a trained unit's up row and down column (or gate
//! and up rows) point in similar directions (mean |cos| 0.3–0.4 in MiniLM), so the two
//! similarity matrices share a component and the two matchings agree more often than
//! independent ones, without any shared unit. On unrelated trained models the exact law
//! rejects far too often (see the table below). It is still reported, as `exact_law`, for
//! reference.
//!
//! *The calibrated null: random rotations of one residual basis* (`basis`, the reported `p`).
//! Each layer pair's `K` is recomputed after `null_draws` Haar-random rotations of the query
//! model's residual space, the same rotation applied to both views of its units
//! ([`rotation`]). It **preserves** each model's own geometry (every inner product between
//! its unit vectors, so each unit's up/down alignment, which is what inflates `K`) and the
//! units themselves; it **destroys** any relation between the two models' residual bases.
//! It **assumes** that under independence the pair's law does not change when one model's
//! residual space is rotated (exact for a model turned by a random orthogonal matrix, and
//! the premise that two independently trained models' bases are unrelated otherwise), and that
//! the draws' counts and the observed one are Poisson with one mean: the observed count given
//! the total `T = K + Σ K_d` is then Binomial(T, 1/(1 + draws)) exactly, whatever the mean,
//! so the estimate of the null mean from few draws is accounted for and a copy of `m` units
//! still reaches `≈ (1 + draws)^−m`. The draws' variance is reported next to their mean to
//! check the Poisson assumption, and so is the rank p-value `(1 + #{K_d ≥ K})/(1 + draws)`
//! (exact, but floored at `1/(1 + draws)`) with its Monte-Carlo error. Every draw has its own
//! ChaCha8 stream, so results are bit-identical at any thread count.
//!
//! *Shared units or a shared basis?* Models of one family can share a residual basis, and
//! features in it, without sharing units layer for layer (all-MiniLM-L6-v2 and
//! paraphrase-MiniLM-L3-v2: no unit keeps its index, yet `K` reaches 57 of 256 units). The
//! rotation null then rightly rejects, but its rejection means "the layers share directions
//! in a common residual basis", not "the layers share units", and `trace` says so: the
//! [`CsuResult::verdict`] reads, at [`csu::VERDICT_ALPHA`], "shared units, unpermuted" only
//! when the same-index test (below, exact) rejects, "shared directions in a common residual
//! basis" (shared units in permuted order, or a shared basis; not told apart) when only the
//! two-view test does, and "no evidence of relation" otherwise. A null that keeps the shared
//! basis and destroys units was tried (random signs of the residual coordinates): it rejected
//! the L6/L3 pair as strongly (log10 p −197), so it does not separate the two and is not used.
//!
//! *Randomization per pair.* The unit sample, the null draws and the uniforms of the
//! randomized p-values are seeded from the user's seed and a 64-bit FNV-1a hash of the layer
//! pair's own weights, so different model pairs do not reuse one stream.
//!
//! Layers are combined by Fisher's method on randomized p-values ([`exact`]), and every
//! p-value is reported as `log10_p`, exact far below f64's range.
//!
//! *Unpermuted copies.* The simpler test counts the units whose first-view match is the unit
//! of the same index, `σ_1(i) = i`. Its null needs only that one model's units can be relabelled
//! jointly (a symmetry every permutation-equivariant training run has), so it is exact for
//! trained models too (relabelling only the usable units among themselves: the law of the
//! query units whose index is usable on both sides, matched into the usable units, so a
//! pruning pattern shared by both models adds nothing), but a permuted copy evades it. It is reported as `identity`.
//!
//! *Residual basis.* Cosines between the two models' unit vectors compare coordinates of the
//! residual stream, which a copier may also permute (and flip in sign: with LayerNorm/RMSNorm
//! the sign of a residual coordinate is free). With [`csu::ResidualAlign::Auto`] the residual
//! coordinates of model B are first matched to A's by a linear assignment on `|cos|` between
//! columns of the two token-embedding matrices (over a seeded sample of token rows), and the
//! signs taken from the matched cosines; this needs equal vocabularies and hidden sizes and is
//! skipped, with a note, otherwise (the residual basis is then assumed shared). A rotation of
//! the residual stream by a general orthogonal matrix is not undone. The nulls act after this
//! alignment.
//!
//! *Subsampling.* A layer with more than `max_units` usable units (default 1024) is tested on
//! a seeded uniform sample of that many usable units of the model with fewer, matched into
//! *all* usable units of the other: a rectangular assignment, which the nulls redo draw by
//! draw. Models whose MLP widths differ (width-pruned copies, fine-grained experts cut from a
//! dense MLP) are handled the same way.
//!
//! *Cost.* Each layer pair costs `2 (1 + null_draws)` linear assignments (default
//! [`csu::DEFAULT_NULL_DRAWS`] = 12: 26). Measured during the calibration below, on a shared
//! 2-core machine under a load average of about 8 (test profile): about 20 s of wall time per
//! 512 × 2048 layer pair. The CI tests therefore use 8 draws and 128–512 units.
//!
//! *Not testable.* Models with different hidden sizes have unit vectors in spaces of different
//! dimension: there is no cosine between them, and the test refuses rather than truncating
//! (all-MiniLM-L6-v2 and SmolLM2 share the MLP width 1536 but not the hidden size, 384 vs 576).
//!
//! Source: S. Zhu, A. Ahmed, R. Kuditipudi, P. Liang, "Independence Tests for Language
//! Models", ICML 2025 (PMLR 267). They match units by cosine with a linear assignment, test the
//! match against the identity with a Spearman correlation for unpermuted copies, match gate and
//! up *activations* on data for the robust test, and combine layers with Fisher's method.
//! nullprint's differences: it matches weight rows (no data needed), counts coinciding matches
//! and refers the count to Monte-Carlo nulls that keep each model's own geometry instead of
//! using Spearman's normal approximation (which is still reported, as `spearman`), leaves
//! degenerate units out, and randomizes the discrete per-layer p-values before combining them.
//!
//! *Calibration on the models at hand* (`tests/calibration.rs`, run with `cargo test -p
//! nullprint-trace --test integration calibrate_ -- --ignored --nocapture`; measured with seed
//! 23 for AntiBERTy × Whisper-base and seeds 0–1 for the MiniLM copies). Per-layer randomized
//! p-values of layer pairs that are unrelated by construction; sizes as rejections / pairs with
//! 95% Clopper–Pearson intervals; the K ≥ 4 column counts layer pairs with at least 4
//! coincidences against the rotation null's expectation (Poisson at each pair's pooled mean)
//! and the exact law's, with the Poisson probability of seeing at least that many:
//!
//! | layer pairs | units × draws | ΣK (rotation-null mean; exact law) | rotation size α = 0.01 | α = 0.05 | exact-law size α = 0.01 | α = 0.05 | K ≥ 4 (rotation; exact law), p |
//! |---|---|---|---|---|---|---|---|
//! | AntiBERTy × Whisper-base MLPs, all 96 (8 × 6 encoder + 6 decoder) | 512 × 12 | 30 (29.2; 24.0) | 2/96 = 0.021 [0.003, 0.073] | 9/96 = 0.094 [0.044, 0.171] | 2/96 = 0.021 [0.003, 0.073] | 6/96 = 0.062 [0.023, 0.131] | 1 (0.07; 0.01), p = 0.07 |
//! | rotated, layer-shifted all-MiniLM-L6-v2, shifts 1–5 × 2 rotations × 6 layers = 60 | 384 × 12 | 48 (40.6; 15.0) | 1/60 = 0.017 [0.000, 0.089] | 5/60 = 0.083 [0.028, 0.184] | 7/60 = 0.117 [0.048, 0.226] | 13/60 = 0.217 [0.121, 0.342] | 0 (0.5; 0.0), p = 1 |
//!
//! The rotation draws' counts have variance/mean 0.98 (AntiBERTy × Whisper) and 1.01 (MiniLM),
//! as the Poisson assumption needs. At α = 0.01 both sets are at level (the MiniLM copies were
//! rejected in 19% of layer pairs by the exact law at full width; here 1.7%). At α = 0.05 both
//! point estimates are above the level (9.4%, 8.3%) though both intervals contain it; the one
//! AntiBERTy × Whisper pair with K = 4 (layer 4 × decoder layer 1, rotation draws 0–1) is the
//! upper tail the rotation null does not fully explain. Not measured here: full width (2048
//! units), which needs hours on two cores. all-MiniLM-L6-v2 vs paraphrase-MiniLM-L3-v2 (one
//! family, no shared units layer for layer) is rejected (log10 p −249 at 256 units, 8 draws)
//! and reported as "shared directions in a common residual basis", not shared units. Random
//! initializations of real shapes and SmolLM2 against random models give uniform calibrated
//! p-values in CI (KS p 0.47, 0.18). Derived models keep their power: int8 ONNX export log10 p
//! −2814 (512 units, 8 draws), SmolLM2 with permuted neurons and noise −7140 (256 units),
//! restacked SmolLM2 (verification of the mapped pairs) −7168.
//!
//! # Depth alignment (`align`)
//!
//! Layers can be duplicated, inserted, dropped or (depth up-scaling) repeated. [`align()`] finds
//! which layer of A each layer of B continues, by a dynamic programme over a per-layer
//! similarity: either weight-level (the correlation of the two layers' unit-permutation
//! invariant Gram matrices `Σ_u v_u v_uᵀ` over a seeded sample of residual coordinates) or
//! fingerprint-level (per-layer vectors of role stds). It reports the mapping and the
//! inserted, duplicated and dropped layers, tests the alignment score against layer-shuffle and
//! circular-shift nulls ([`null::NullResult`], as `compare` does), and, with weights,
//! verifies the mapped layer pairs with the matching test above. The Gram similarity is
//! invariant to unit permutations, so selecting pairs with it leaves the matching test's null
//! unchanged.
//!
//! # MoE upcycling (`upcycle`)
//!
//! A sparse upcycled MoE initializes its experts from a dense model's MLP (Komatsuzaki et al.,
//! "Sparse Upcycling", ICLR 2023). [`upcycle()`] runs the matching test between every expert
//! (and the shared expert) of each MoE layer and the dense MLP of the same layer, reports per
//! layer which experts look copied (Bonferroni over all expert tests), and combines all tests
//! by Fisher's method.
//!
//! # Use
//!
//! ```no_run
//! use trace::ModelWeights;
//! let a = ModelWeights::open("path/to/base")?;
//! let b = ModelWeights::open("path/to/suspect")?;
//! let r = trace::csu(&a, &b, &trace::CsuOptions::default())?;
//! println!("{}", r.summary());
//! # Ok::<(), trace::Error>(())
//! ```

pub mod align;
pub mod calibration;
pub mod csu;
pub mod exact;
pub mod lap;
pub mod matrices;
mod rotation;
pub mod units;
pub mod upcycle;
mod weights;

use std::fmt;

use fingerprint::roles::Stack;
use serde::{Deserialize, Serialize};

pub use align::{align, align_fingerprints, AlignOptions, AlignResult};
pub use csu::{csu, CsuOptions, CsuResult, NullDraws, NullStatement, ResidualAlign, Views};
pub use units::Excluded;
pub use upcycle::{upcycle, UpcycleOptions, UpcycleResult};
pub use weights::{MlpSite, ModelWeights};

/// The method's source, cited in every result.
pub const CITATION: &str = "S. Zhu, A. Ahmed, R. Kuditipudi, P. Liang. Independence Tests for \
Language Models. Proceedings of the 42nd International Conference on Machine Learning (ICML \
2025), PMLR 267.";

/// Result alias for the trace tests.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in a trace test.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading weights failed (the message names the file and tensor).
    #[error(transparent)]
    Weights(#[from] fingerprint::Error),
    /// A statistic or null failed.
    #[error(transparent)]
    Null(#[from] null::Error),
    /// A matrix has a shape the test cannot use.
    #[error("{model}: {key}: {reason}")]
    Shape {
        /// The model.
        model: String,
        /// The matrix (`layer.role@expert`).
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A matrix the test needs is absent.
    #[error("{model}: no matrix {key}")]
    Missing {
        /// The model.
        model: String,
        /// The matrix (`layer.role@expert`).
        key: String,
    },
    /// The two models cannot be compared by this test.
    #[error("not testable: {reason}")]
    NotTestable {
        /// Why.
        reason: String,
    },
    /// An option or argument is out of range.
    #[error("{what}: {reason}")]
    Invalid {
        /// The option.
        what: String,
        /// The rule it breaks.
        reason: String,
    },
    /// The linear assignment could not be solved.
    #[error("linear assignment on a {rows}×{cols} similarity matrix: {reason}")]
    Assignment {
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
        /// Why.
        reason: String,
    },
}

/// A transformer block: its stack (encoder-decoder models only) and index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LayerId {
    /// Encoder or decoder, for encoder-decoder models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<Stack>,
    /// Layer index within the stack.
    pub layer: u32,
}

impl LayerId {
    /// Layer `layer` of a single-stack model.
    pub fn new(layer: u32) -> Self {
        LayerId { stack: None, layer }
    }
}

impl fmt::Display for LayerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.stack {
            Some(s) => write!(f, "{s}.{}", self.layer),
            None => write!(f, "{}", self.layer),
        }
    }
}

/// A layer (or layer pair) a test could not use, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    /// What was skipped (`layer 3`, `layer 3 ↔ 5`, `layer 2 expert 7`).
    pub what: String,
    /// Why.
    pub reason: String,
}

/// log10 of a natural-log probability.
pub(crate) fn log10(ln_p: f64) -> f64 {
    ln_p / std::f64::consts::LN_10
}

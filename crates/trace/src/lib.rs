//! Weight-level lineage tests: neuron matching with exact null distributions (`csu`), depth
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
//! *Null.* If the two models were trained from independent initializations, and the views of
//! one model's units can be relabelled independently of each other without changing the
//! model's distribution, then `σ_1` is a uniform random injection independent of `σ_2`, and
//! `K` has the exact law of [`exact`] (nearly Poisson(1); it does not depend on the weights).
//! The relabelling holds exactly for i.i.d. initial weights, and it is the working assumption
//! of Zhu et al.'s matching test for trained models, which they found to behave like a
//! p-value empirically; the tests of this crate check it on the unrelated real checkpoints at
//! hand (`tests/trace.rs`). Layers are combined by Fisher's method on randomized p-values
//! ([`exact`]), and every p-value is reported as `log10_p`, exact far below f64's range.
//!
//! *Unpermuted copies.* The simpler test counts the units whose first-view match is the unit
//! of the same index, `σ_1(i) = i`. Its null needs only that one model's units can be relabelled
//! jointly (a symmetry every permutation-equivariant training run has), so it is exact for
//! trained models too, but a permuted copy evades it. It is reported as `identity`.
//!
//! *Residual basis.* Cosines between the two models' unit vectors compare coordinates of the
//! residual stream, which a copier may also permute (and flip in sign: with LayerNorm/RMSNorm
//! the sign of a residual coordinate is free). With [`csu::ResidualAlign::Auto`] the residual
//! coordinates of model B are first matched to A's by a linear assignment on `|cos|` between
//! columns of the two token-embedding matrices (over a seeded sample of token rows), and the
//! signs taken from the matched cosines; this needs equal vocabularies and hidden sizes and is
//! skipped, with a note, otherwise (the residual basis is then assumed shared). A rotation of
//! the residual stream by a general orthogonal matrix is not undone.
//!
//! *Subsampling.* A layer with more than `max_units` units (default 1024) is tested on a
//! seeded uniform sample of that many units of the narrower model, matched into *all* units of
//! the other: a rectangular assignment, for which the null above stays exact. Models whose
//! MLP widths differ (width-pruned copies, fine-grained experts cut from a dense MLP) are
//! handled the same way.
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
//! with an exact law instead of using Spearman's normal approximation (which is still reported,
//! as `spearman`), and randomizes the discrete per-layer p-values before combining them.
//!
//! *Calibration on the models at hand* (`tests/trace.rs`; the full-width runs are the ignored
//! test `calibration_full_width`): AntiBERTy vs Whisper-base, all 96 layer pairs, 2048 units
//! each: Kolmogorov–Smirnov p = 0.30 for uniformity of the per-pair p-values. SmolLM2, Gemma-3
//! and Qwen2.5-Coder-0.5B against each other (gate vs up rows, residual coordinates truncated
//! to 576): 27 coincidences in 60 layer pairs where 28.7 were expected, KS p = 0.63. Random
//! initializations of real shapes over 30 seeds, and SmolLM2 against random models, pass the
//! same check in CI. Derived models (noise, permuted neurons, permuted residual stream, int8
//! export, restacked layers, upcycled experts) reach log10 p between −800 and −24 000.
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
pub mod csu;
pub mod exact;
pub mod lap;
pub mod matrices;
pub mod upcycle;
mod weights;

use std::fmt;

use fingerprint::roles::Stack;
use serde::{Deserialize, Serialize};

pub use align::{align, align_fingerprints, AlignOptions, AlignResult};
pub use csu::{csu, CsuOptions, CsuResult, ResidualAlign, Views};
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

//! Similarity measures between model fingerprints, null distributions and p-values.
//!
//! A correlation of 0.927 between two models' per-layer weight statistics means nothing until
//! one knows how often unrelated models reach it. This crate computes the published similarity
//! and better ones, the null distributions to judge them against, and honest p-values. It works
//! on fingerprints (the output of the `fingerprint` crate), so it is fast and needs no weights.
//!
//! # Data flow
//! ```text
//! Fingerprint ──curves::Curves::from_fingerprint──> Curves (per role: std per layer)
//!   Curves × Curves ──measure::similarity──> Similarity { per_role, score, rescaled, flags }
//!   Curves × Curves ──nulls::surrogate::test──> NullResult (shuffle | circular | block | trend-ar)
//!   [Curves] + Labels ──table::PairTable::from_curves──> PairTable (all pairs, related or not)
//!   matrix CSV + Labels ──nulls::published::SimilarityMatrix, PairTable::from_matrix──> PairTable
//!   PairTable + observed ──nulls::panel::test──> PanelReport { null, strata, family_block, fpr }
//!   PairTable ──all_pairs::report──> p, BH q, Holm per pair;  ──roc──> ROC, AUC, held-out threshold
//!   sim / derivation ──calibrate, power──> uniformity of p under the null; power on derivations
//! ```
//!
//! # Modules
//! * [`curves`]: role selection (attention by default; MLP, norms, biases, experts), stack
//!   choice for encoder-decoder models (encoder then decoder by default), ddof 0 or 1.
//! * [`measure`]: `honestagi` (exactly the published method), `spearman`, `detrended`,
//!   `detrended2`, `diff`; flags for flat curves and shared quantization patterns.
//! * [`compare`](mod@compare): one pair with all requested nulls, in the shape `nullprint compare`
//!   reports.
//! * [`nulls`]: panel and published-matrix nulls ([`nulls::panel`], [`nulls::published`]) and surrogate nulls
//!   ([`nulls::surrogate`]), each stating what it preserves and destroys.
//! * [`pvalue`]: `(1 + exceed)/(1 + n)`, log10 p, Monte-Carlo error, rates with
//!   Clopper–Pearson intervals. [`multiple`]: Benjamini–Hochberg and Holm.
//! * [`labels`]: lineage labels (`model,root` / `model,derived_from` or `a,b,label` CSV).
//! * [`published_panel`]: published per-layer tables (GraphNet's included) read as panels,
//!   with provenance, ddof and rounding; [`lineage_rules`]: their lineage labels by written rules.
//! * [`table`]: all pairwise scores. [`all_pairs`]: many comparisons. [`roc`]: ROC, AUC,
//!   leave-one-model-out thresholds.
//! * [`sim`], [`derivation`]: simulated null curves and controlled derivations (positive controls).
//! * [`depth`]: the depth model (same-depth exceedance rates and scores against depth,
//!   predicted at an unseen depth with intervals and a leave-one-depth-out check).
//! * [`calibrate`], [`power`]: the tests of the statistics. [`calibrated`]: single-pair
//!   surrogate p-values referred to their distribution over real unrelated pairs; [`answer`]:
//!   the three verdict classes and the rule that picks one.
//! * [`stats`], [`rng`]: numerical and random-number primitives.
//!
//! # Guarantees
//! * No NaN in any output: undefined statistics (too few layers, zero spread, non-finite input)
//!   are typed [`Error`]s, and low-signal inputs are flagged.
//! * Monte-Carlo results are bit-for-bit identical for a seed at any thread count: sample i
//!   draws from ChaCha8 stream i of the seed, samples are collected in index order.
//! * p-values are never 0 and are also reported as log10.
//!
//! # Minimal use
//! ```
//! use std::collections::BTreeMap;
//! use null::curves::Curves;
//! use null::measure::{similarity, MeasureOptions};
//!
//! let a = Curves::new("a", BTreeMap::from([("attn_q".to_string(), vec![1.0, 2.0, 4.0])]))?;
//! let b = Curves::new("b", BTreeMap::from([("attn_q".to_string(), vec![2.0, 1.0, 3.0])]))?;
//! let s = similarity(&a, &b, &MeasureOptions::default())?;
//! assert!((s.score - (3.0f64 / 7.0).sqrt()).abs() < 1e-12);
//! # Ok::<(), null::Error>(())
//! ```
#![deny(missing_docs)]
// `!(x > t)` is deliberate throughout: it is true for NaN, which must fail the check.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod all_pairs;
pub mod answer;
pub mod calibrate;
pub mod calibrated;
pub mod compare;
pub mod curves;
pub mod depth;
pub mod derivation;
pub mod error;
pub mod labels;
pub mod lineage_rules;
pub mod measure;
pub mod multiple;
pub mod nulls;
pub mod power;
pub mod published_panel;
pub mod pvalue;
pub mod rng;
pub mod roc;
pub mod sampling;
pub mod sim;
pub mod stats;
pub mod table;
#[cfg(test)]
mod testutil;
pub mod vectors;

pub use compare::{compare, CompareOptions, Comparison};
pub use curves::{CurveOptions, Curves, RoleSel, StackChoice};
pub use error::{Error, Result};
pub use labels::{Labels, Relation};
pub use measure::{similarity, Measure, MeasureOptions, Similarity};
pub use nulls::{NullInfo, NullResult};
pub use table::PairTable;

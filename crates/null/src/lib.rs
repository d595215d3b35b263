//! Similarity measures between fingerprints, null distributions and p-values.
#![deny(missing_docs)]

//! Integration tests of the weight-level lineage tests and the matrix reader they use.

mod calibration;
mod checkpoints;
mod matrices;

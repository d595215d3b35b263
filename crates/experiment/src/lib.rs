//! Replay a published model-lineage claim against chance: an experiment file in, a
//! [`report::Report`] out.
//!
//! # Data flow
//! ```text
//! experiments/NAME.toml ──spec::Experiment::load──> Experiment (typed, checked)
//!   + baselines/index.toml (index::PanelIndex) + fingerprints + controls (index::ControlsIndex)
//!   ──analysis::analyse──> Analysis (every number: nulls, sizes, power, controls, ROC, ...)
//!   ──assemble::report──> report::Report (verdict wording from verdict.rs)
//! ```
//!
//! # Where to change what
//! * a verdict threshold or any statistical rule: [`policy`];
//! * the verdict's wording: [`verdict`];
//! * a new experiment-file field: [`spec`] (and its use in [`analysis`]);
//! * a new null or study in a report: [`analysis`] computes it, [`assemble`] maps it to rows;
//! * a new report table or figure: [`assemble`].
//!
//! Nothing here parses arguments or prints: the binary does.
#![deny(missing_docs)]

pub mod analysis;
pub mod answers;
pub mod assemble;
pub mod builtin_panel;
pub mod calibration;
pub mod error;
pub mod index;
pub mod inputs;
pub mod policy;
pub mod positive_controls;
pub mod published;
pub mod seed_lab;
pub mod spec;
pub mod vector_claim;
pub mod verdict;

use std::path::Path;

pub use analysis::{analyse, Analysis, FingerprintModel, Options};
pub use error::{Error, Result};
pub use index::{Control, ControlsIndex, PanelIndex, PanelModel};
pub use spec::Experiment;

/// An experiment, analysed and rendered into a report.
pub struct Reproduced {
    /// Every number.
    pub analysis: Analysis,
    /// The report built from them.
    pub report: report::Report,
    /// One line for the terminal.
    pub headline: String,
}

/// Analyse the experiment file at `path` and build its report. `fingerprint_model` fingerprints
/// the claimed models when their weights are on this machine.
pub fn reproduce(
    path: &Path,
    fingerprint_model: FingerprintModel<'_>,
    opts: &Options,
) -> Result<Reproduced> {
    let analysis = analyse(path, fingerprint_model, opts)?;
    let report = assemble::report(&analysis)?;
    let headline = verdict::headline(&analysis);
    Ok(Reproduced {
        analysis,
        report,
        headline,
    })
}

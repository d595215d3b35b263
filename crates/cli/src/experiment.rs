//! Experiment files (`experiments/NAME.toml`): one declarative file per published claim.
//!
//! Published numbers live here with their citation, never in code; `reproduce` computes
//! everything else from the baseline panel the file names.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// A whole experiment file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Identity and question.
    pub experiment: Header,
    /// The claim under test.
    pub claim: ClaimSpec,
    /// Further published figures.
    #[serde(default)]
    pub published: Vec<PublishedSpec>,
    /// The similarity measure.
    pub measure: MeasureSpec,
    /// The baseline panel.
    pub panel: PanelSpec,
    /// Nulls, seeds and thresholds.
    pub nulls: NullsSpec,
    /// Positive controls.
    #[serde(default)]
    pub controls: Option<ControlsSpec>,
}

/// `[experiment]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// File-name-safe id; the report goes to `reports/<id>/`.
    pub id: String,
    /// Report title.
    pub title: String,
    /// The question the report answers.
    pub question: String,
}

/// `[claim]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimSpec {
    /// What was claimed, in a sentence or two.
    pub description: String,
    /// First model of the claimed pair (absent for a rule tested on the panel alone).
    pub model_a: Option<String>,
    /// Second model of the claimed pair.
    pub model_b: Option<String>,
    /// The published similarity.
    pub value: f64,
    /// Depths of the claimed models, as published.
    pub layers: Option<[usize; 2]>,
    /// The conclusion drawn from it.
    pub conclusion: String,
    /// Source of the value.
    pub citation: String,
    /// Where the first model's weights are when a user has them.
    pub weights_a: Option<String>,
    /// Where the second model's weights are.
    pub weights_b: Option<String>,
}

/// `[[published]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishedSpec {
    /// What the figure is.
    pub label: String,
    /// Its value.
    pub value: f64,
    /// Its source.
    pub citation: String,
    /// Draw it as a mark on the null-distribution and threshold figures.
    #[serde(default)]
    pub mark: bool,
    /// A few words for that mark (default: the label's first words).
    pub short: Option<String>,
}

/// `[measure]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasureSpec {
    /// The headline measure.
    pub name: String,
    /// Roles whose curves enter it.
    pub roles: Vec<String>,
    /// Degrees of freedom of the std (0 or 1).
    #[serde(default)]
    pub ddof: u32,
    /// Further measures reported side by side.
    #[serde(default)]
    pub compare: Vec<String>,
}

/// `[panel]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PanelSpec {
    /// The baselines index, relative to the experiment file.
    pub index: PathBuf,
}

/// `[nulls]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NullsSpec {
    /// Master seed of every Monte-Carlo step.
    pub seed: u64,
    /// Monte-Carlo samples per surrogate null.
    pub samples: usize,
    /// Surrogate nulls to run on `pair`.
    #[serde(default)]
    pub surrogates: Vec<String>,
    /// A comparable real pair of the panel (surrogate nulls, specification curve).
    pub pair: Option<[String; 2]>,
    /// Thresholds at which false-positive rates are reported.
    pub thresholds: Vec<f64>,
    /// Level for power.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
}

fn default_alpha() -> f64 {
    0.01
}

/// `[controls]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlsSpec {
    /// Index of the positive controls built from real weights (`baselines/controls.toml`,
    /// relative to the experiment file): derived checkpoints, fingerprinted by `baselines`.
    #[serde(default)]
    pub weights: Option<String>,
    /// The panel model whose fingerprint the simulated derivations are built from.
    #[serde(default)]
    pub base: Option<String>,
    /// Relative noise levels of the simulated derivations.
    #[serde(default)]
    pub noise: Vec<f64>,
    /// Simulated derived models per derivation.
    #[serde(default)]
    pub replicates: usize,
}

impl Experiment {
    /// Read and check an experiment file.
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let e: Experiment = toml::from_str(&text)
            .with_context(|| format!("{}: not an experiment file", path.display()))?;
        let id = &e.experiment.id;
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            || id.starts_with('.')
        {
            bail!(
                "{}: experiment id {id:?} must be a plain file name",
                path.display()
            );
        }
        if !e.claim.value.is_finite() || e.nulls.thresholds.iter().any(|t| !t.is_finite()) {
            bail!(
                "{}: claim value and thresholds must be finite numbers",
                path.display()
            );
        }
        if e.nulls.samples == 0 || e.nulls.samples > 10_000_000 {
            bail!(
                "{}: nulls.samples must be between 1 and 10,000,000",
                path.display()
            );
        }
        Ok(e)
    }

    /// The positive controls' index, resolved against the experiment file's directory.
    pub fn controls_path(&self, experiment_path: &Path) -> Option<PathBuf> {
        let w = self.controls.as_ref()?.weights.as_ref()?;
        Some(experiment_path.parent().unwrap_or(Path::new(".")).join(w))
    }

    /// The panel index path, resolved against the experiment file's directory.
    pub fn index_path(&self, experiment_path: &Path) -> PathBuf {
        experiment_path
            .parent()
            .unwrap_or(Path::new("."))
            .join(&self.panel.index)
    }
}

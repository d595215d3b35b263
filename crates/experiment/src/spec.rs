//! Experiment files (`experiments/NAME.toml`): one declarative file per published claim.
//!
//! Published numbers live here with their citation, never in code; everything else is computed
//! from the baseline panel the file names. Every field is typed and checked when the file is
//! loaded (errors name the file and the field), before any computation.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use null::curves::RoleSel;
use null::measure::Measure;
use null::nulls::surrogate::SurrogateKind;
use serde::{Deserialize, Deserializer};

use crate::error::{Error, Result};
use crate::policy::{MAX_CONTROL_REPLICATES, MAX_SAMPLES};

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
    /// A published per-layer panel (not part of the project: used when present).
    #[serde(default)]
    pub published_panel: Option<PublishedPanelSpec>,
    /// Models trained by `nullprint lab run` (a labelled null stratum and power curves).
    #[serde(default)]
    pub lab: Option<LabSpec>,
}

/// `[lab]`: the fingerprints `nullprint lab run` wrote, read as a labelled stratum next to the
/// panel (never mixed into it).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabSpec {
    /// Directory of the lab's fingerprints and records (`baselines/lab/NAME`), relative to the
    /// experiment file.
    pub dir: PathBuf,
}

/// `[published_panel]`: a published per-layer table read as a second panel (see
/// [`crate::published`]).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishedPanelSpec {
    /// Directory of the data, relative to the experiment file (overridden by the
    /// `NULLPRINT_PUBLISHED_DATA` environment variable).
    pub dir: PathBuf,
    /// Kinds (`encoder`, `decoder`) of the claimed models, for the matching stratum.
    #[serde(default)]
    pub kinds: Option<[String; 2]>,
    /// Also calibrate the surrogate nulls on the six-layer published panel (about a minute).
    #[serde(default)]
    pub calibrate_surrogates: bool,
    /// The study's figures, committed (relative to the experiment file): used where the data
    /// is absent, checked against a recomputation where it is present, so that the report is
    /// the same on every machine. Written by `nullprint reproduce --write-published-summary`.
    #[serde(default)]
    pub summary: Option<PathBuf>,
}

/// `[experiment]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Plain file name; the report goes to `reports/<id>/`.
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
    pub name: Measure,
    /// Roles whose curves enter it.
    #[serde(deserialize_with = "parsed_list")]
    pub roles: Vec<RoleSel>,
    /// Degrees of freedom of the std (0 or 1).
    #[serde(default)]
    pub ddof: u32,
    /// Further measures reported side by side.
    #[serde(default)]
    pub compare: Vec<Measure>,
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
    pub surrogates: Vec<SurrogateKind>,
    /// A comparable real pair of the panel (surrogate nulls, specification curve).
    pub pair: Option<[String; 2]>,
    /// Thresholds at which false-positive rates are reported.
    pub thresholds: Vec<f64>,
    /// Level for power.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
}

fn default_alpha() -> f64 {
    crate::policy::DEFAULT_ALPHA
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

/// A list of strings, each parsed with `FromStr` (the error names the item).
fn parsed_list<'de, D, T>(d: D) -> std::result::Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: std::fmt::Display,
{
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| {
            s.parse()
                .map_err(|e| serde::de::Error::custom(format!("{s:?}: {e}")))
        })
        .collect()
}

impl Experiment {
    /// Read and check an experiment file: every value in range before anything is computed.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let e: Experiment = toml::from_str(&text).map_err(|source| Error::Schema {
            path: path.into(),
            what: "an experiment file",
            source: Box::new(source),
        })?;
        e.validate(path)?;
        Ok(e)
    }

    fn validate(&self, path: &Path) -> Result<()> {
        let bad = |field: &str, reason: &str| Err(Error::invalid(path, field, reason));
        if !fingerprint::source::is_plain_name(&self.experiment.id) {
            return bad(
                "experiment.id",
                "must be a plain file name (letters, digits, - _ .)",
            );
        }
        if !self.claim.value.is_finite() {
            return bad("claim.value", "must be a finite number");
        }
        if self.nulls.thresholds.iter().any(|t| !t.is_finite()) {
            return bad("nulls.thresholds", "must be finite numbers");
        }
        if self.published.iter().any(|p| !p.value.is_finite()) {
            return bad("published.value", "must be a finite number");
        }
        if self.nulls.samples == 0 || self.nulls.samples > MAX_SAMPLES {
            return bad(
                "nulls.samples",
                &format!("must be between 1 and {MAX_SAMPLES}"),
            );
        }
        if !(self.nulls.alpha > 0.0 && self.nulls.alpha < 1.0) {
            return bad("nulls.alpha", "must be a level strictly between 0 and 1");
        }
        if self.measure.ddof > 1 {
            return bad("measure.ddof", "must be 0 or 1");
        }
        if self.measure.roles.is_empty() {
            return bad("measure.roles", "must name at least one role");
        }
        // Similarities must be scores a measure can give (issue #24: `value = 2.0` was
        // tested and got p = 0.023).
        let score = |field: &str, v: f64| {
            null::measure::check_score("value", v)
                .map_err(|e| Error::invalid(path, field, e.to_string()))
        };
        score("claim.value", self.claim.value)?;
        for p in &self.published {
            score("published.value", p.value)?;
        }
        for &t in &self.nulls.thresholds {
            score("nulls.thresholds", t)?;
        }
        if let Some(c) = &self.controls {
            if c.replicates > MAX_CONTROL_REPLICATES {
                return bad(
                    "controls.replicates",
                    &format!(
                        "must be at most {MAX_CONTROL_REPLICATES} (each is a simulated model)"
                    ),
                );
            }
            if c.noise.iter().any(|n| !(n.is_finite() && *n > 0.0)) {
                return bad("controls.noise", "must be finite relative sizes above 0");
            }
        }
        Ok(())
    }

    /// The headline measure first, then the compared ones (each once).
    pub fn measures(&self) -> Vec<Measure> {
        let mut out = vec![self.measure.name];
        for &m in &self.measure.compare {
            if !out.contains(&m) {
                out.push(m);
            }
        }
        out
    }

    /// The positive controls' index, resolved against the experiment file's directory.
    pub fn controls_path(&self, experiment_path: &Path) -> Option<PathBuf> {
        let w = self.controls.as_ref()?.weights.as_ref()?;
        Some(experiment_path.parent().unwrap_or(Path::new(".")).join(w))
    }

    /// The published-panel data directory: the environment override, else the file's `dir`
    /// resolved against the experiment file's directory; `None` without `[published_panel]`.
    pub fn published_dir(&self, experiment_path: &Path) -> Option<PathBuf> {
        let spec = self.published_panel.as_ref()?;
        Some(crate::published::data_dir(
            &experiment_path
                .parent()
                .unwrap_or(Path::new("."))
                .join(&spec.dir),
        ))
    }

    /// The committed published-panel summary, resolved against the experiment file's
    /// directory; `None` without one.
    pub fn published_summary_path(&self, experiment_path: &Path) -> Option<PathBuf> {
        let spec = self.published_panel.as_ref()?;
        let file = spec.summary.as_ref()?;
        Some(
            experiment_path
                .parent()
                .unwrap_or(Path::new("."))
                .join(file),
        )
    }

    /// The lab's fingerprint directory, resolved against the experiment file's directory;
    /// `None` without `[lab]`.
    pub fn lab_dir(&self, experiment_path: &Path) -> Option<PathBuf> {
        let spec = self.lab.as_ref()?;
        Some(
            experiment_path
                .parent()
                .unwrap_or(Path::new("."))
                .join(&spec.dir),
        )
    }

    /// The panel index path, resolved against the experiment file's directory.
    pub fn index_path(&self, experiment_path: &Path) -> PathBuf {
        experiment_path
            .parent()
            .unwrap_or(Path::new("."))
            .join(&self.panel.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[experiment]
id = "x"
title = "t"
question = "q"
[claim]
description = "d"
value = 0.9
conclusion = "c"
citation = "s"
[measure]
name = "honestagi"
roles = ["attn_q", "attn_k"]
[panel]
index = "index.toml"
[nulls]
seed = 1
samples = 100
thresholds = [0.7]
"#;

    fn load(text: &str) -> Result<Experiment> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("e.toml");
        std::fs::write(&p, text).unwrap();
        Experiment::load(&p)
    }

    #[test]
    fn typed_fields_are_parsed_when_loaded() {
        let e = load(GOOD).unwrap();
        assert_eq!(e.measure.name, Measure::HonestAgi);
        assert_eq!(e.measure.roles.len(), 2);
        assert_eq!(e.nulls.alpha, crate::policy::DEFAULT_ALPHA);
        assert_eq!(e.measures(), vec![Measure::HonestAgi]);
    }

    #[test]
    fn published_panel_section_is_optional_and_resolved() {
        assert!(load(GOOD).unwrap().published_panel.is_none());
        let text = format!(
            "{GOOD}[published_panel]\ndir = \"../data/graphnet\"\nkinds = [\"decoder\", \"decoder\"]\n"
        );
        let e = load(&text).unwrap();
        let spec = e.published_panel.as_ref().unwrap();
        assert_eq!(spec.kinds.as_ref().unwrap()[0], "decoder");
        assert!(!spec.calibrate_surrogates);
        if std::env::var_os(crate::published::DATA_DIR_ENV).is_none() {
            assert_eq!(
                e.published_dir(Path::new("experiments/e.toml")).unwrap(),
                Path::new("experiments/../data/graphnet")
            );
        }
        assert!(load(&format!("{GOOD}[published_panel]\ndirr = \"x\"\n")).is_err());
    }

    #[test]
    fn bad_values_name_the_field() {
        for (from, to, field) in [
            ("name = \"honestagi\"", "name = \"cosine-ish\"", "measure"),
            (
                "roles = [\"attn_q\", \"attn_k\"]",
                "roles = [\"attn_zz@\"]",
                "roles",
            ),
            (
                "thresholds = [0.7]",
                "thresholds = [0.7]\nalpha = 1.5",
                "nulls.alpha",
            ),
            (
                "thresholds = [0.7]",
                "thresholds = [0.7]\nalpha = 0.0",
                "nulls.alpha",
            ),
            ("samples = 100", "samples = 0", "nulls.samples"),
            ("id = \"x\"", "id = \"../x\"", "experiment.id"),
            (
                "thresholds = [0.7]",
                "thresholds = [0.7]\nsurrogates = [\"nope\"]",
                "surrogates",
            ),
        ] {
            let err = load(&GOOD.replace(from, to)).unwrap_err().to_string();
            assert!(err.contains(field), "{to}: {err}");
            assert!(err.contains("e.toml"), "{to}: {err}");
        }
    }
}

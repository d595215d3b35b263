//! The baseline panel's index (`baselines/index.toml`): which fingerprints form the panel,
//! where their weights came from, and their lineage labels.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// One model of the panel.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PanelModel {
    /// Identifier; the fingerprint is `<id>.json` next to the index.
    pub id: String,
    /// Directory of the weights under the models directory.
    pub weights: String,
    /// Expected SHA-256 of the weight file.
    pub sha256: String,
    /// Where the weights came from (package or hub id and revision).
    pub source: String,
    /// Model family (reported, not used for relatedness).
    pub family: String,
    /// The pretrained model whose weights this one descends from: same root = related.
    pub root: String,
    /// Organization (reported).
    pub organization: String,
    /// How it was derived from its root.
    pub derived_from: String,
    /// encoder, decoder or encoder-decoder.
    pub kind: String,
}

impl PanelModel {
    /// The lineage label the null crate uses (same root = related); `layers` when known.
    pub fn label(&self, layers: Option<usize>) -> null::labels::ModelLabel {
        null::labels::ModelLabel {
            root: Some(self.root.clone()),
            derived_from: None,
            family: Some(self.family.clone()),
            org: Some(self.organization.clone()),
            layers,
        }
    }
}

/// The whole index.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PanelIndex {
    /// The models.
    pub model: Vec<PanelModel>,
}

impl PanelIndex {
    /// Read and check an index file (unique ids, ids usable as file names).
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let index: PanelIndex = toml::from_str(&text)
            .with_context(|| format!("{}: not a baselines index", path.display()))?;
        let mut seen = std::collections::BTreeSet::new();
        for m in &index.model {
            if !seen.insert(&m.id) {
                bail!("{}: model id {:?} appears twice", path.display(), m.id);
            }
            if m.id.is_empty()
                || m.id.starts_with('.')
                || !m
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                bail!(
                    "{}: model id {:?} is not a plain file name",
                    path.display(),
                    m.id
                );
            }
        }
        Ok(index)
    }

    /// The fingerprint file of a model: `<dir of index>/<id>.json`.
    pub fn fingerprint_path(index_path: &Path, id: &str) -> PathBuf {
        index_path
            .parent()
            .unwrap_or(Path::new("."))
            .join(format!("{id}.json"))
    }
}

//! The baseline indexes: the panel (`baselines/index.toml`: which fingerprints form the panel,
//! where their weights came from, their lineage labels) and the positive controls
//! (`baselines/controls.toml`: models derived from panel weights by `nullprint derive`, one group
//! per recipe with its seeds). Both are checked when loaded; errors name the file and the field.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use controls::writer::OutDType;
use controls::Recipe;
use serde::Deserialize;

use crate::error::{Error, Result};

/// How an index says that no whole-file SHA-256 was computed (`nullprint panel build` reads
/// weights in HTTP ranges and writes `panel::build::NO_SHA256`, which begins so): such an entry
/// has no hash to check a fingerprint against, and is
/// left out of the same-weights check. Any other `sha256` must be 64 hex digits.
pub const NOT_COMPUTED: &str = "not computed";

/// True when an index `sha256` is an actual hash (not the [`NOT_COMPUTED`] statement).
fn is_computed(sha256: &str) -> bool {
    !sha256.starts_with(NOT_COMPUTED)
}

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
    /// Check that `fp` (read from `path`) is the fingerprint of this model's weights: one of
    /// its files has the index's SHA-256. A fingerprint copied over another model's file, or
    /// one without hashes, is refused; `index` names the model it is the fingerprint of.
    pub fn check_fingerprint(
        &self,
        fp: &fingerprint::Fingerprint,
        path: &Path,
        index: &PanelIndex,
    ) -> Result<()> {
        let hashes: Vec<&str> = fp
            .model
            .files
            .iter()
            .filter_map(|f| f.sha256.as_deref())
            .collect();
        self.check_hashes(&hashes, path, index)
    }

    /// [`Self::check_fingerprint`] given the fingerprint's weight-file hashes.
    pub fn check_hashes(&self, hashes: &[&str], path: &Path, index: &PanelIndex) -> Result<()> {
        if hashes.contains(&self.sha256.as_str()) || !is_computed(&self.sha256) {
            return Ok(());
        }
        let owner = index
            .model
            .iter()
            .find(|m| hashes.contains(&m.sha256.as_str()))
            .map_or(String::new(), |m| format!(" (that of {})", m.id));
        Err(Error::invalid(
            path,
            "model.files[].sha256",
            if hashes.is_empty() {
                format!(
                    "no SHA-256 recorded, so it cannot be checked against the index's {} for {}",
                    self.sha256, self.id
                )
            } else {
                format!(
                    "{} is not the index's {} for {}: this is another model's fingerprint{owner}",
                    hashes.join(", "),
                    self.sha256,
                    self.id
                )
            },
        ))
    }

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

/// The panel index.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PanelIndex {
    /// The models.
    pub model: Vec<PanelModel>,
}

impl PanelIndex {
    /// Read and check an index file (unique ids, ids usable as file names).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, path)
    }

    /// Parse and check the text of an index; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Self> {
        let path = origin;
        let index: PanelIndex = toml::from_str(text).map_err(|source| Error::Schema {
            path: path.into(),
            what: "a baselines index",
            source: Box::new(source),
        })?;
        let mut seen = BTreeSet::new();
        // The same weights under two roots would count a model against itself as unrelated.
        let mut by_hash: std::collections::BTreeMap<&str, &PanelModel> = Default::default();
        for (i, m) in index.model.iter().enumerate() {
            if !fingerprint::source::is_plain_name(&m.id) {
                return Err(Error::invalid(
                    path,
                    format!("model[{i}].id"),
                    format!("{:?} is not a plain file name", m.id),
                ));
            }
            if !seen.insert(&m.id) {
                return Err(Error::invalid(
                    path,
                    format!("model[{i}].id"),
                    format!("{:?} appears twice", m.id),
                ));
            }
            if !is_computed(&m.sha256) {
                // No hash to compare.
            } else if m.sha256.len() != 64 || !m.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::invalid(
                    path,
                    format!("model[{i}].sha256"),
                    format!(
                        "{:?} is not a SHA-256 (64 hex digits) nor {NOT_COMPUTED:?}",
                        m.sha256
                    ),
                ));
            } else if let Some(first) = by_hash.insert(m.sha256.as_str(), m) {
                let why = if first.root != m.root {
                    format!(
                        "{} has the same weights as {} but another root ({:?} vs {:?})",
                        m.id, first.id, m.root, first.root
                    )
                } else {
                    format!(
                        "{} has the same weights as {}: one model under two names",
                        m.id, first.id
                    )
                };
                return Err(Error::invalid(path, format!("model[{i}].sha256"), why));
            }
        }
        Ok(index)
    }

    /// The lineage labels of every model (same root = related), without depths.
    pub fn labels(&self) -> Result<null::Labels> {
        let models = self
            .model
            .iter()
            .map(|m| (m.id.clone(), m.label(None)))
            .collect();
        Ok(null::Labels::new(models, Vec::new())?)
    }

    /// The fingerprint file of a model: `<dir of index>/<id>.json`.
    pub fn fingerprint_path(index_path: &Path, id: &str) -> PathBuf {
        index_path
            .parent()
            .unwrap_or(Path::new("."))
            .join(format!("{id}.json"))
    }
}

/// One recipe applied to one base, with several seeds (`[[control]]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ControlGroup {
    base: String,
    recipe: String,
    seeds: Vec<u64>,
    #[serde(default)]
    dtype: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ControlsFile {
    #[serde(default)]
    control: Vec<ControlGroup>,
}

/// One derived model.
#[derive(Clone, Debug)]
pub struct Control {
    /// `<base>.<recipe slug>.s<seed>`: the fingerprint is `controls/<id>.json`.
    pub id: String,
    /// Group label: `<base>: <recipe>`.
    pub group: String,
    /// The base's panel id.
    pub base: String,
    /// The recipe.
    pub recipe: Recipe,
    /// Seed of the noise.
    pub seed: u64,
    /// Output element type.
    pub dtype: OutDType,
}

/// The positive controls' index, expanded into one [`Control`] per (group, seed).
pub struct ControlsIndex;

impl ControlsIndex {
    /// Read an index and expand it into one [`Control`] per (group, seed).
    pub fn load(path: &Path) -> Result<Vec<Control>> {
        let index: ControlsFile = read_toml(path, "a controls index")?;
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, g) in index.control.iter().enumerate() {
            let field = |name: &str| format!("control[{i}].{name}");
            let recipe: Recipe = g.recipe.parse().map_err(|e: controls::Error| {
                Error::invalid(path, field("recipe"), e.to_string())
            })?;
            let dtype = match &g.dtype {
                Some(d) => d.parse().map_err(|e: controls::Error| {
                    Error::invalid(path, field("dtype"), e.to_string())
                })?,
                None => OutDType::default(),
            };
            if g.seeds.is_empty() {
                return Err(Error::invalid(path, field("seeds"), "no seeds"));
            }
            for &seed in &g.seeds {
                let id = format!("{}.{}.s{seed}", g.base, recipe_stem(&recipe));
                if !seen.insert(id.clone()) {
                    return Err(Error::invalid(
                        path,
                        field("seeds"),
                        format!("control {id} appears twice"),
                    ));
                }
                out.push(Control {
                    id,
                    group: format!("{}: {recipe}", g.base),
                    base: g.base.clone(),
                    recipe,
                    seed,
                    dtype,
                });
            }
        }
        Ok(out)
    }

    /// The fingerprint of a control: `<dir of index>/controls/<id>.json`.
    pub fn fingerprint_path(index_path: &Path, id: &str) -> PathBuf {
        index_path
            .parent()
            .unwrap_or(Path::new("."))
            .join("controls")
            .join(format!("{id}.json"))
    }
}

/// A file-name-safe spelling of a recipe: `upcycle(experts=8, rel=0.05)` →
/// `upcycle-experts8-rel0.05`.
fn recipe_stem(r: &Recipe) -> String {
    r.to_string()
        .chars()
        .filter_map(|c| match c {
            '(' | ',' => Some('-'),
            '=' | ')' | ' ' => None,
            c => Some(c),
        })
        .collect()
}

fn read_toml<T: serde::de::DeserializeOwned>(path: &Path, what: &'static str) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    toml::from_str(&text).map_err(|source| Error::Schema {
        path: path.into(),
        what,
        source: Box::new(source),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_groups_into_named_controls() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("controls.toml");
        std::fs::write(
            &p,
            "[[control]]\nbase = \"m\"\nrecipe = \"upcycle(experts=8, rel=0.05)\"\nseeds = [1, 2]\n",
        )
        .unwrap();
        let c = ControlsIndex::load(&p).unwrap();
        let ids: Vec<&str> = c.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "m.upcycle-experts8-rel0.05.s1",
                "m.upcycle-experts8-rel0.05.s2"
            ]
        );
        assert_eq!(
            ControlsIndex::fingerprint_path(&p, &c[0].id),
            dir.path()
                .join("controls/m.upcycle-experts8-rel0.05.s1.json")
        );
        std::fs::write(
            &p,
            "[[control]]\nbase = \"m\"\nrecipe = \"grow\"\nseeds = [1]\n",
        )
        .unwrap();
        let e = ControlsIndex::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("unknown kind") && e.contains("control[0].recipe"),
            "{e}"
        );
    }

    #[test]
    fn panel_ids_must_be_plain_and_unique() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("index.toml");
        let model = |id: &str| {
            let sha = format!(
                "{:064x}",
                id.len() * 7 + id.bytes().map(usize::from).sum::<usize>()
            );
            format!("[[model]]\nid = \"{id}\"\nweights = \"w\"\nsha256 = \"{sha}\"\nsource = \"s\"\nfamily = \"f\"\nroot = \"r\"\norganization = \"o\"\nderived_from = \"d\"\nkind = \"decoder\"\n")
        };
        std::fs::write(&p, model("a") + &model("a")).unwrap();
        let e = PanelIndex::load(&p).unwrap_err().to_string();
        assert!(e.contains("model[1].id") && e.contains("twice"), "{e}");
        std::fs::write(&p, model("../a")).unwrap();
        let e = PanelIndex::load(&p).unwrap_err().to_string();
        assert!(e.contains("model[0].id"), "{e}");
        std::fs::write(&p, model("a") + &model("b")).unwrap();
        assert_eq!(PanelIndex::load(&p).unwrap().model.len(), 2);
        // Hashes: 64 hex digits or the statement that none was computed; one hash, one model.
        let b_sha = format!("{:064x}", 7 + usize::from(b'b'));
        let a_sha = format!("{:064x}", 7 + usize::from(b'a'));
        std::fs::write(&p, model("a") + &model("b").replace(&b_sha, "s")).unwrap();
        let e = PanelIndex::load(&p).unwrap_err().to_string();
        assert!(e.contains("model[1].sha256") && e.contains("64 hex"), "{e}");
        std::fs::write(&p, model("a") + &model("b").replace(&b_sha, &a_sha)).unwrap();
        let e = PanelIndex::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("model[1].sha256") && e.contains("two names"),
            "{e}"
        );
        let none = format!("{NOT_COMPUTED}: read in HTTP ranges");
        std::fs::write(
            &p,
            model("a").replace(&a_sha, &none) + &model("b").replace(&b_sha, &none),
        )
        .unwrap();
        assert_eq!(PanelIndex::load(&p).unwrap().model.len(), 2);
    }
}

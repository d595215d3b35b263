//! The positive controls' index (`baselines/controls.toml`): models derived from real panel
//! weights by `nullprint derive`, one group per recipe with its seeds. `nullprint baselines`
//! builds and fingerprints them into `controls/<id>.json` next to the index; `reproduce`
//! scores each against its base.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use controls::Recipe;
use serde::Deserialize;

/// One recipe applied to one base, with several seeds.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlGroup {
    /// The panel model (an id of `baselines/index.toml`) whose weights are derived.
    pub base: String,
    /// The recipe, as `nullprint derive --recipe` spells it.
    pub recipe: String,
    /// One derived model per seed.
    pub seeds: Vec<u64>,
    /// Element type of the derived weights (bf16 unless given).
    #[serde(default)]
    pub dtype: Option<String>,
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
    pub dtype: controls::writer::OutDType,
}

/// The whole index.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlsIndex {
    /// The groups, in report order.
    #[serde(default)]
    pub control: Vec<ControlGroup>,
}

impl ControlsIndex {
    /// Read an index and expand it into one [`Control`] per (group, seed).
    pub fn load(path: &Path) -> Result<Vec<Control>> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let index: ControlsIndex = toml::from_str(&text)
            .with_context(|| format!("{}: not a controls index", path.display()))?;
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for g in &index.control {
            let recipe: Recipe = g
                .recipe
                .parse()
                .map_err(|e: String| anyhow::anyhow!("{}: {e}", path.display()))?;
            let dtype = match &g.dtype {
                Some(d) => d
                    .parse()
                    .map_err(|e: String| anyhow::anyhow!("{}: {e}", path.display()))?,
                None => Default::default(),
            };
            if g.seeds.is_empty() {
                bail!("{}: {} {}: no seeds", path.display(), g.base, g.recipe);
            }
            for &seed in &g.seeds {
                let id = format!("{}.{}.s{seed}", g.base, slug(&recipe));
                if !seen.insert(id.clone()) {
                    bail!("{}: control {id} appears twice", path.display());
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
fn slug(r: &Recipe) -> String {
    r.to_string()
        .chars()
        .filter_map(|c| match c {
            '(' | ',' => Some('-'),
            '=' | ')' | ' ' => None,
            c => Some(c),
        })
        .collect()
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
        let e = format!("{:#}", ControlsIndex::load(&p).unwrap_err());
        assert!(e.contains("unknown kind"), "{e}");
    }
}

//! A panel manifest (`panels/*.toml`): the models of a panel, where they are hosted, their
//! expected depth and their lineage labels. Parsed into [`Manifest`] and checked as a whole
//! ([`Manifest::load`]); every error names the file and the entry.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// Deepest model a manifest may declare (the deepest open LLMs have about 130 layers).
pub const MAX_LAYERS: u32 = 1024;

/// What the manifest says about the panel as a whole (`[panel]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PanelMeta {
    /// Short name.
    pub name: String,
    /// What the panel is for and how it was curated.
    pub description: String,
}

/// How a checkpoint came from its parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Relation {
    /// Pretrained from scratch: its own root.
    Base,
    /// Further trained from `derived_from` (instruction tuning, continued pretraining, RL).
    FineTune,
    /// The weights of `derived_from`, quantized or converted.
    Quantized,
    /// Trained from `derived_from`'s weights on another model's outputs (the weights descend
    /// from `derived_from`, not from the teacher).
    Distilled,
}

/// One checkpoint (`[[model]]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Identifier: the fingerprint is `<id>.json` in the panel directory.
    pub id: String,
    /// Hugging Face repository, `ORG/NAME`.
    pub repo: String,
    /// Commit to read (40 hex digits); absent when not pinned (the build records the commit
    /// the hub resolved `main` to).
    #[serde(default)]
    pub revision: Option<String>,
    /// One file of the repository, for repositories holding several GGUF files.
    #[serde(default)]
    pub file: Option<String>,
    /// Expected number of transformer layers; checked against the config at build time.
    pub layers: u32,
    /// Expected hidden size, checked against the config at build time when given.
    #[serde(default)]
    pub hidden: Option<u64>,
    /// The pretrained model whose weights this one descends from (a repository id): same
    /// root = related.
    pub root: String,
    /// How this checkpoint came from `derived_from`.
    pub relation: Relation,
    /// The checkpoint it was made from (a repository id); absent for a base.
    #[serde(default)]
    pub derived_from: Option<String>,
    /// Model family (reported, not used for relatedness).
    pub family: String,
    /// Who published it.
    pub organization: String,
    /// Where the lineage is stated: the model card URL.
    pub card: String,
    /// encoder, decoder or encoder-decoder.
    #[serde(default = "decoder")]
    pub kind: String,
}

fn decoder() -> String {
    "decoder".into()
}

impl Entry {
    /// The remote spec: `hf://ORG/NAME[@REV][/FILE]`.
    pub fn spec(&self) -> String {
        let mut s = format!("hf://{}", self.repo);
        if let Some(r) = &self.revision {
            s.push('@');
            s.push_str(r);
        }
        if let Some(f) = &self.file {
            s.push('/');
            s.push_str(f);
        }
        s
    }
}

/// A parsed and checked manifest.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// `[panel]`.
    pub panel: PanelMeta,
    /// `[[model]]`, in file order (the order shards are assigned in).
    pub model: Vec<Entry>,
}

/// Whether `s` is a Hugging Face repository id `ORG/NAME`.
fn is_repo(s: &str) -> bool {
    let ok = |p: &str| {
        !p.is_empty()
            && !p.starts_with('.')
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    matches!(s.split_once('/'), Some((o, n)) if ok(o) && ok(n))
}

impl Manifest {
    /// Read and check a manifest file.
    pub fn load(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
            path: path.to_owned(),
            source: e,
        })?;
        Manifest::parse(path, &text)
    }

    /// Parse and check manifest text (`path` names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Manifest> {
        let m: Manifest = toml::from_str(text).map_err(|e| Error::Syntax {
            path: path.to_owned(),
            source: Box::new(e),
        })?;
        m.check(path)?;
        Ok(m)
    }

    fn check(&self, path: &Path) -> Result<()> {
        let bad = |i: usize, e: &Entry, field: &str, why: String| Error::Entry {
            path: PathBuf::from(path),
            index: i,
            id: e.id.clone(),
            field: field.to_owned(),
            reason: why,
        };
        if self.model.is_empty() {
            return Err(Error::Entry {
                path: path.to_owned(),
                index: 0,
                id: String::new(),
                field: "model".into(),
                reason: "the manifest lists no model".into(),
            });
        }
        let mut ids = BTreeSet::new();
        let mut specs = BTreeMap::new();
        for (i, e) in self.model.iter().enumerate() {
            if !fingerprint::source::is_plain_name(&e.id) {
                return Err(bad(
                    i,
                    e,
                    "id",
                    format!("{:?} is not a plain file name", e.id),
                ));
            }
            if !ids.insert(e.id.as_str()) {
                return Err(bad(i, e, "id", "appears twice".into()));
            }
            if !is_repo(&e.repo) {
                return Err(bad(i, e, "repo", format!("{:?} is not ORG/NAME", e.repo)));
            }
            if let Some(r) = &e.revision {
                if r.len() != 40 || !r.bytes().all(|c| c.is_ascii_hexdigit()) {
                    return Err(bad(
                        i,
                        e,
                        "revision",
                        format!("{r:?} is not a commit (40 hex digits); leave it out to read main"),
                    ));
                }
            }
            if let Some(f) = &e.file {
                if f.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
                    return Err(bad(
                        i,
                        e,
                        "file",
                        format!("{f:?} is not a path in the repository"),
                    ));
                }
            }
            if e.layers == 0 || e.layers > MAX_LAYERS {
                return Err(bad(
                    i,
                    e,
                    "layers",
                    format!("{} is not in 1..={MAX_LAYERS}", e.layers),
                ));
            }
            if !is_repo(&e.root) {
                return Err(bad(i, e, "root", format!("{:?} is not ORG/NAME", e.root)));
            }
            match (e.relation, &e.derived_from) {
                (Relation::Base, Some(d)) => {
                    return Err(bad(
                        i,
                        e,
                        "derived_from",
                        format!("a base is pretrained from scratch, not derived from {d}"),
                    ))
                }
                (Relation::Base, None) if e.root != e.repo => {
                    return Err(bad(
                        i,
                        e,
                        "root",
                        format!("a base is its own root ({}), not {}", e.repo, e.root),
                    ))
                }
                (Relation::Base, None) => {}
                (_, None) => {
                    return Err(bad(
                        i,
                        e,
                        "derived_from",
                        "a fine-tune, quantization or distillation names its parent".into(),
                    ))
                }
                (_, Some(d)) if !is_repo(d) => {
                    return Err(bad(i, e, "derived_from", format!("{d:?} is not ORG/NAME")))
                }
                (_, Some(_)) => {}
            }
            if !e.card.starts_with("https://") {
                return Err(bad(
                    i,
                    e,
                    "card",
                    format!("{:?} is not an https URL", e.card),
                ));
            }
            if !["decoder", "encoder", "encoder-decoder"].contains(&e.kind.as_str()) {
                return Err(bad(
                    i,
                    e,
                    "kind",
                    format!("{:?} is not decoder, encoder or encoder-decoder", e.kind),
                ));
            }
            if let Some(prev) = specs.insert(e.spec(), i) {
                return Err(bad(
                    i,
                    e,
                    "repo",
                    format!("same checkpoint as model[{prev}]"),
                ));
            }
        }
        // A parent listed in the manifest must agree on the root.
        let by_repo: BTreeMap<&str, &Entry> = self
            .model
            .iter()
            .filter(|e| e.file.is_none())
            .map(|e| (e.repo.as_str(), e))
            .collect();
        for (i, e) in self.model.iter().enumerate() {
            if let Some(p) = e.derived_from.as_deref().and_then(|d| by_repo.get(d)) {
                if p.root != e.root {
                    return Err(bad(
                        i,
                        e,
                        "root",
                        format!("{} but its parent {} has root {}", e.root, p.repo, p.root),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The entries of shard `i` of `n` (0-based): every `n`-th entry from the `i`-th, in file
    /// order, so that the shards partition the manifest the same way on any machine.
    pub fn shard(&self, i: usize, n: usize) -> Vec<&Entry> {
        self.model
            .iter()
            .enumerate()
            .filter(|(k, _)| n > 0 && k % n == i)
            .map(|(_, e)| e)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, repo: &str, extra: &str) -> String {
        format!(
            "[[model]]\nid = \"{id}\"\nrepo = \"{repo}\"\nlayers = 4\nroot = \"{repo}\"\nrelation = \"base\"\nfamily = \"f\"\norganization = \"o\"\ncard = \"https://h/{repo}\"\n{extra}\n"
        )
    }

    fn parse(models: &str) -> Result<Manifest> {
        let text = format!("[panel]\nname = \"t\"\ndescription = \"d\"\n{models}");
        Manifest::parse(Path::new("p.toml"), &text)
    }

    #[test]
    fn errors_name_the_entry_and_field() {
        assert_eq!(
            parse(&(entry("a", "o/a", "") + &entry("b", "o/b", "")))
                .unwrap()
                .model
                .len(),
            2
        );
        let cases = [
            (
                entry("a", "o/a", "") + &entry("a", "o/b", ""),
                "model[1] (a): id",
            ),
            (entry("a", "oa", ""), "model[0] (a): repo"),
            (
                entry("a", "o/a", "revision = \"main\""),
                "model[0] (a): revision",
            ),
            (
                entry("x", "o/a", "derived_from = \"o/z\""),
                "model[0] (x): derived_from",
            ),
            (
                entry("a", "o/a", "").replace("layers = 4", "layers = 0"),
                "model[0] (a): layers",
            ),
            (
                entry("a", "o/a", "").replace("relation = \"base\"", "relation = \"fine-tune\""),
                "model[0] (a): derived_from",
            ),
            (
                entry("a", "o/a", "") + &entry("b", "o/a", ""),
                "model[1] (b): repo",
            ),
        ];
        for (text, want) in cases {
            let e = parse(&text).unwrap_err().to_string();
            assert!(e.contains(want) && e.contains("p.toml"), "{want}: {e}");
        }
        let child = entry("b", "o/b", "derived_from = \"o/a\"")
            .replace("relation = \"base\"", "relation = \"fine-tune\"");
        assert!(parse(&(entry("a", "o/a", "") + &child))
            .unwrap_err()
            .to_string()
            .contains("parent o/a has root o/a"));
        let child = child.replace("root = \"o/b\"", "root = \"o/a\"");
        assert_eq!(
            parse(&(entry("a", "o/a", "") + &child))
                .unwrap()
                .model
                .len(),
            2
        );
    }

    #[test]
    fn shards_partition_the_manifest() {
        let text: String = (0..7)
            .map(|k| entry(&format!("m{k}"), &format!("o/m{k}"), ""))
            .collect();
        let m = parse(&text).unwrap();
        let mut all: Vec<&str> = (0..3)
            .flat_map(|i| m.shard(i, 3))
            .map(|e| e.id.as_str())
            .collect();
        all.sort();
        assert_eq!(all, ["m0", "m1", "m2", "m3", "m4", "m5", "m6"]);
        assert_eq!(
            m.shard(1, 3)
                .iter()
                .map(|e| e.id.as_str())
                .collect::<Vec<_>>(),
            ["m1", "m4"]
        );
    }
}

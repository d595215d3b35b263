//! Lineage labels: which pairs of models are related, unrelated, or of unknown relation.
//!
//! Two CSV forms are read (a header row is required; `#` starts a comment line; cells are
//! trimmed; columns may come in any order):
//!
//! * **Per model**: a `model` column and at least one of `root` and `derived_from`; optional
//!   `family` (architecture family, for stratification), `org` and `layers` (depth, for
//!   stratifying a published matrix). A model's root is its `root` cell, or else the root of the
//!   model it is `derived_from` (followed to the top of the chain; a parent without a label is
//!   its own root). In a file without a `root` column a model with an empty `derived_from` is a
//!   base model, its own root; in a file with one, an empty `root` and `derived_from` means the
//!   root is unknown. Two models are **related** when they share a root or one derives from the
//!   other, **unrelated** when both roots are known and differ, and **unknown** otherwise.
//! * **Per pair**: columns `a`, `b`, `label` with label `related`, `unrelated` or `unknown`.
//!   Pairs not listed are unknown.
//!
//! Pair labels override model labels. Unknown pairs are excluded from every null and counted.
//!
//! For the family-block view of a panel each model gets a block root: its root when known,
//! else the representative of its connected component under the related relation (so per-pair
//! labels also group families), else itself.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Read;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Most label rows read from one file.
pub const MAX_LABEL_ROWS: u64 = 1_000_000;

/// The lineage relation of a pair of models.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Relation {
    /// Same root, or one derives from the other.
    Related,
    /// Different known roots.
    Unrelated,
    /// Not known; excluded from nulls.
    Unknown,
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Relation::Related => "related",
            Relation::Unrelated => "unrelated",
            Relation::Unknown => "unknown",
        })
    }
}

impl FromStr for Relation {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "related" => Ok(Relation::Related),
            "unrelated" => Ok(Relation::Unrelated),
            "unknown" | "" => Ok(Relation::Unknown),
            _ => Err(Error::Parse {
                what: "relation".into(),
                value: s.into(),
                reason: "expected related, unrelated or unknown".into(),
            }),
        }
    }
}

/// What is known about one model's lineage.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelLabel {
    /// The root base model it descends from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// The model it was derived from (fine-tuned, quantized, merged, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub derived_from: Option<String>,
    /// Architecture family, for stratification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// Number of layers, for depth strata when curves are not at hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<usize>,
}

/// A validated set of lineage labels.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Labels {
    models: BTreeMap<String, ModelLabel>,
    pairs: BTreeMap<(String, String), Relation>,
    roots: BTreeMap<String, String>,
    ancestors: BTreeMap<String, BTreeSet<String>>,
    blocks: BTreeMap<String, String>,
    /// The file read, and the line of each id's first mention (files only).
    file: Option<FileIds>,
}

/// Where a labels file mentions each model id, for [`Labels::check_models`].
#[derive(Clone, Debug, Default, PartialEq)]
struct FileIds {
    source_name: String,
    /// True for the per-model form.
    per_model: bool,
    /// id → 1-based line of its first mention as a model (or pair member).
    lines: BTreeMap<String, u64>,
}

/// Relations among a fixed list of models (see [`Labels::index`]).
#[derive(Debug)]
pub struct RelationIndex<'a> {
    labels: &'a Labels,
    ids: Vec<&'a str>,
    /// Interned root of each model.
    root: Vec<Option<u32>>,
    ancestors: Vec<Option<&'a BTreeSet<String>>>,
}

impl RelationIndex<'_> {
    /// The relation of models `i` and `j`: [`Labels::relation`] of their ids.
    pub fn relation(&self, i: usize, j: usize) -> Relation {
        let (a, b) = (self.ids[i], self.ids[j]);
        if a == b {
            return Relation::Related;
        }
        if !self.labels.pairs.is_empty() {
            if let Some(r) = self.labels.pairs.get(&ordered(a, b)) {
                return *r;
            }
        }
        let derives = |x: usize, y: &str| self.ancestors[x].is_some_and(|c| c.contains(y));
        if derives(i, b) || derives(j, a) {
            return Relation::Related;
        }
        match (self.root[i], self.root[j]) {
            (Some(x), Some(y)) if x == y => Relation::Related,
            (Some(_), Some(_)) => Relation::Unrelated,
            _ => Relation::Unknown,
        }
    }
}

fn ordered(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_owned(), b.to_owned())
    } else {
        (b.to_owned(), a.to_owned())
    }
}

struct UnionFind {
    parent: Vec<usize>,
}

impl UnionFind {
    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            let (lo, hi) = (ra.min(rb), ra.max(rb));
            self.parent[hi] = lo;
        }
    }
}

impl Labels {
    /// No labels: every pair is unknown.
    pub fn empty() -> Self {
        Labels::default()
    }

    /// Every listed model is its own root: all pairs among them are unrelated (simulated
    /// panels of independent models).
    pub fn singletons<'a>(ids: impl IntoIterator<Item = &'a str>) -> Result<Self> {
        Labels::new(
            ids.into_iter()
                .map(|id| {
                    (
                        id.to_owned(),
                        ModelLabel {
                            root: Some(id.to_owned()),
                            ..Default::default()
                        },
                    )
                })
                .collect(),
            Vec::new(),
        )
    }

    /// Validate model and pair labels: resolve roots along `derived_from` chains (a loop is an
    /// error), reject a pair labelled twice differently, and group block roots.
    pub fn new(
        models: BTreeMap<String, ModelLabel>,
        pairs: Vec<(String, String, Relation)>,
    ) -> Result<Self> {
        let mut pair_map = BTreeMap::new();
        for (a, b, rel) in pairs {
            if a == b {
                continue;
            }
            let key = ordered(&a, &b);
            if let Some(prev) = pair_map.insert(key.clone(), rel) {
                if prev != rel {
                    return Err(Error::Labels {
                        reason: format!(
                            "pair {} / {} is labelled both {prev} and {rel}",
                            key.0, key.1
                        ),
                    });
                }
            }
        }
        // Roots and ancestors along derived_from chains.
        let mut roots = BTreeMap::new();
        let mut ancestors: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (id, label) in &models {
            let mut seen = BTreeSet::from([id.clone()]);
            let mut chain = BTreeSet::new();
            let mut cur = id.as_str();
            let mut root = label.root.clone();
            let mut lab = Some(label);
            while let Some(parent) = lab.and_then(|l| l.derived_from.as_deref()) {
                if !seen.insert(parent.to_owned()) {
                    return Err(Error::LineageCycle { model: id.clone() });
                }
                chain.insert(parent.to_owned());
                cur = parent;
                lab = models.get(parent);
                if root.is_none() {
                    root = lab.and_then(|l| l.root.clone());
                }
            }
            if root.is_none() && cur != id.as_str() {
                // The top of a chain without an explicit root is its own root.
                root = Some(cur.to_owned());
            }
            if let Some(r) = root {
                roots.insert(id.clone(), r);
            }
            if !chain.is_empty() {
                ancestors.insert(id.clone(), chain);
            }
        }
        // Block roots: connected components of the related relation.
        let mut names: BTreeSet<String> = models.keys().cloned().collect();
        for (a, b) in pair_map.keys() {
            names.insert(a.clone());
            names.insert(b.clone());
        }
        for chain in ancestors.values() {
            names.extend(chain.iter().cloned());
        }
        let names: Vec<String> = names.into_iter().collect();
        let index: BTreeMap<&str, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let mut uf = UnionFind {
            parent: (0..names.len()).collect(),
        };
        let mut by_root: BTreeMap<&str, usize> = BTreeMap::new();
        for (id, r) in &roots {
            let i = index[id.as_str()];
            match by_root.get(r.as_str()) {
                Some(&j) => uf.union(i, j),
                None => {
                    by_root.insert(r, i);
                }
            }
        }
        for (id, chain) in &ancestors {
            for p in chain {
                uf.union(index[id.as_str()], index[p.as_str()]);
            }
        }
        for ((a, b), rel) in &pair_map {
            if *rel == Relation::Related {
                uf.union(index[a.as_str()], index[b.as_str()]);
            }
        }
        // Name each block by its smallest known root, else by its smallest member.
        let mut rep: BTreeMap<usize, (bool, String)> = BTreeMap::new();
        for (i, n) in names.iter().enumerate() {
            let c = uf.find(i);
            let key = match roots.get(n) {
                Some(r) => (false, r.clone()),
                None => (true, n.clone()),
            };
            let e = rep.entry(c).or_insert_with(|| key.clone());
            if key < *e {
                *e = key;
            }
        }
        let blocks = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), rep[&uf.find(i)].1.clone()))
            .collect();
        Ok(Labels {
            models,
            pairs: pair_map,
            roots,
            ancestors,
            blocks,
            file: None,
        })
    }

    /// Check labels read from a file against the models they label (`ids`): every model id the
    /// file names (a `model` row, or a pair member) must be one of `ids`, or an ancestor of one
    /// (a row giving a parent's root); in the per-model form every id must have a row. A typo
    /// would otherwise leave the real model's pairs silently of unknown relation. Labels not
    /// read from a file pass.
    pub fn check_models<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let ids: BTreeSet<&str> = ids.into_iter().collect();
        let mut allowed = ids.clone();
        for id in &ids {
            if let Some(chain) = self.ancestors.get(*id) {
                allowed.extend(chain.iter().map(String::as_str));
            }
        }
        let mut unknown: Vec<(&u64, &String)> = file
            .lines
            .iter()
            .filter(|(id, _)| !allowed.contains(id.as_str()))
            .map(|(id, line)| (line, id))
            .collect();
        unknown.sort();
        if let Some((&line, id)) = unknown.first() {
            let mut examples: Vec<&str> = ids.iter().take(5).copied().collect();
            if ids.len() > 5 {
                examples.push("...");
            }
            return Err(Error::UnknownLabelId {
                source_name: file.source_name.clone(),
                line,
                id: (*id).clone(),
                n: ids.len(),
                examples: examples.join(", "),
            });
        }
        if file.per_model {
            if let Some(id) = ids.iter().find(|id| !file.lines.contains_key(**id)) {
                return Err(Error::UnlabelledModel {
                    source_name: file.source_name.clone(),
                    id: (*id).to_owned(),
                });
            }
        }
        Ok(())
    }

    /// True when there are no labels at all.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty() && self.pairs.is_empty()
    }

    /// The label of a model.
    pub fn model(&self, id: &str) -> Option<&ModelLabel> {
        self.models.get(id)
    }

    /// The resolved root of a model, when known.
    pub fn root(&self, id: &str) -> Option<&str> {
        self.roots.get(id).map(String::as_str)
    }

    /// The block root of a model (root, else related component, else itself).
    pub fn block_root(&self, id: &str) -> String {
        self.blocks
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_owned())
    }

    /// The family label of a model.
    pub fn family(&self, id: &str) -> Option<&str> {
        self.models.get(id).and_then(|l| l.family.as_deref())
    }

    /// The relation of two models (see the module docs).
    pub fn relation(&self, a: &str, b: &str) -> Relation {
        if a == b {
            return Relation::Related;
        }
        if let Some(r) = self.pairs.get(&ordered(a, b)) {
            return *r;
        }
        let derives = |x: &str, y: &str| self.ancestors.get(x).is_some_and(|c| c.contains(y));
        if derives(a, b) || derives(b, a) {
            return Relation::Related;
        }
        match (self.roots.get(a), self.roots.get(b)) {
            (Some(x), Some(y)) if x == y => Relation::Related,
            (Some(_), Some(_)) => Relation::Unrelated,
            _ => Relation::Unknown,
        }
    }

    /// [`Labels::relation`] for pairs of a fixed list of models, with every per-model lookup
    /// done once: the relation of models `i` and `j` of `ids` costs two integer compares unless
    /// pair labels or `derived_from` chains are involved.
    pub fn index<'a>(&'a self, ids: &[&'a str]) -> RelationIndex<'a> {
        let mut interned: BTreeMap<&str, u32> = BTreeMap::new();
        let root = ids
            .iter()
            .map(|id| {
                self.roots.get(*id).map(|r| {
                    let n = interned.len() as u32;
                    *interned.entry(r.as_str()).or_insert(n)
                })
            })
            .collect();
        RelationIndex {
            labels: self,
            ids: ids.to_vec(),
            root,
            ancestors: ids.iter().map(|id| self.ancestors.get(*id)).collect(),
        }
    }

    /// Read a labels CSV (either form; see the module docs).
    pub fn from_reader<R: Read>(r: R, source_name: &str) -> Result<Self> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .trim(csv::Trim::All)
            .comment(Some(b'#'))
            .flexible(false)
            .from_reader(r);
        let csv_err = |e: csv::Error| Error::Csv {
            source_name: source_name.to_owned(),
            line: e.position().map_or(0, |p| p.line()),
            reason: e.to_string(),
        };
        let header: Vec<String> = rdr
            .headers()
            .map_err(csv_err)?
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        let col = |name: &str| header.iter().position(|h| h == name);
        let bad_header = || {
            Error::Csv {
            source_name: source_name.to_owned(),
            line: 1,
            reason: format!(
                "header {header:?}: expected `model` with `root` and/or `derived_from`, or `a,b,label`"
            ),
        }
        };
        let mut models = BTreeMap::new();
        let mut pairs = Vec::new();
        let mut lines: BTreeMap<String, u64> = BTreeMap::new();
        let cell = |rec: &csv::StringRecord, i: Option<usize>| -> Option<String> {
            i.and_then(|i| rec.get(i))
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        if let Some(mcol) = col("model") {
            let (rcol, dcol) = (col("root"), col("derived_from"));
            if rcol.is_none() && dcol.is_none() {
                return Err(bad_header());
            }
            let (fcol, ocol, lcol) = (col("family"), col("org"), col("layers"));
            for (i, rec) in rdr.records().enumerate() {
                let rec = rec.map_err(csv_err)?;
                let line = rec.position().map_or(0, |p| p.line());
                if i as u64 >= MAX_LABEL_ROWS {
                    return Err(Error::TooLarge {
                        what: format!("{source_name}: label rows"),
                        n: i as u64 + 1,
                        max: MAX_LABEL_ROWS,
                    });
                }
                let id = cell(&rec, Some(mcol)).ok_or_else(|| Error::Csv {
                    source_name: source_name.to_owned(),
                    line,
                    reason: "empty model id".into(),
                })?;
                let mut label = ModelLabel {
                    root: cell(&rec, rcol),
                    derived_from: cell(&rec, dcol),
                    family: cell(&rec, fcol),
                    org: cell(&rec, ocol),
                    layers: None,
                };
                if let Some(l) = cell(&rec, lcol) {
                    label.layers = Some(l.parse().map_err(|_| Error::Csv {
                        source_name: source_name.to_owned(),
                        line,
                        reason: format!("layers {l:?} is not a count"),
                    })?);
                }
                if rcol.is_none() && label.derived_from.is_none() {
                    label.root = Some(id.clone());
                }
                if label.derived_from.as_deref() == Some(id.as_str()) {
                    label.derived_from = None;
                }
                lines.entry(id.clone()).or_insert(line);
                if models.insert(id.clone(), label).is_some() {
                    return Err(Error::Csv {
                        source_name: source_name.to_owned(),
                        line,
                        reason: format!("model {id:?} is listed twice"),
                    });
                }
            }
        } else if let (Some(acol), Some(bcol), Some(lcol)) = (col("a"), col("b"), col("label")) {
            for (i, rec) in rdr.records().enumerate() {
                let rec = rec.map_err(csv_err)?;
                let line = rec.position().map_or(0, |p| p.line());
                if i as u64 >= MAX_LABEL_ROWS {
                    return Err(Error::TooLarge {
                        what: format!("{source_name}: label rows"),
                        n: i as u64 + 1,
                        max: MAX_LABEL_ROWS,
                    });
                }
                let get = |c| {
                    cell(&rec, Some(c)).ok_or_else(|| Error::Csv {
                        source_name: source_name.to_owned(),
                        line,
                        reason: "empty model id".into(),
                    })
                };
                let (a, b) = (get(acol)?, get(bcol)?);
                lines.entry(a.clone()).or_insert(line);
                lines.entry(b.clone()).or_insert(line);
                let rel: Relation =
                    rec.get(lcol)
                        .unwrap_or("")
                        .parse()
                        .map_err(|e: Error| Error::Csv {
                            source_name: source_name.to_owned(),
                            line,
                            reason: e.to_string(),
                        })?;
                pairs.push((a, b, rel));
            }
        } else {
            return Err(bad_header());
        }
        let per_model = col("model").is_some();
        let mut labels = Labels::new(models, pairs)?;
        labels.file = Some(FileIds {
            source_name: source_name.to_owned(),
            per_model,
            lines,
        });
        Ok(labels)
    }

    /// Read a labels CSV file.
    pub fn from_path(path: &Path) -> Result<Self> {
        let f = std::fs::File::open(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_reader(std::io::BufReader::new(f), &path.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Labels> {
        Labels::from_reader(text.as_bytes(), "test.csv")
    }

    #[test]
    fn model_roots() {
        let l = parse(
            "model,root,family\n\
             # a comment\n\
             llama-2-7b,llama-2-7b,llama\n\
             vicuna-7b,llama-2-7b,llama\n\
             deepseek-7b,deepseek-7b,llama\n\
             mystery,,\n",
        )
        .unwrap();
        assert_eq!(l.relation("llama-2-7b", "vicuna-7b"), Relation::Related);
        assert_eq!(l.relation("deepseek-7b", "vicuna-7b"), Relation::Unrelated);
        assert_eq!(l.relation("mystery", "vicuna-7b"), Relation::Unknown);
        assert_eq!(l.relation("absent", "vicuna-7b"), Relation::Unknown);
        assert_eq!(l.family("vicuna-7b"), Some("llama"));
        assert_eq!(l.block_root("vicuna-7b"), "llama-2-7b");
    }

    #[test]
    fn derived_from_chains() {
        let l = parse(
            "model,derived_from\n\
             base,\n\
             ft,base\n\
             ft-q4,ft\n\
             other,\n\
             orphan-ft,unlisted-base\n",
        )
        .unwrap();
        assert_eq!(l.root("ft-q4"), Some("base"));
        assert_eq!(l.relation("ft-q4", "base"), Relation::Related);
        assert_eq!(l.relation("ft-q4", "other"), Relation::Unrelated);
        assert_eq!(l.root("orphan-ft"), Some("unlisted-base"));
        assert_eq!(l.relation("orphan-ft", "base"), Relation::Unrelated);
        let e = parse("model,derived_from\na,b\nb,a\n").unwrap_err();
        assert!(matches!(e, Error::LineageCycle { .. }), "{e}");
    }

    #[test]
    fn pair_labels_and_blocks() {
        let l = parse(
            "a,b,label\n\
             m1,m2,related\n\
             m1,m3,unrelated\n\
             m2,m3,unrelated\n\
             m3,m4,unknown\n",
        )
        .unwrap();
        assert_eq!(l.relation("m2", "m1"), Relation::Related);
        assert_eq!(l.relation("m3", "m1"), Relation::Unrelated);
        assert_eq!(l.relation("m3", "m4"), Relation::Unknown);
        assert_eq!(l.relation("m1", "m4"), Relation::Unknown);
        assert_eq!(l.block_root("m1"), l.block_root("m2"));
        assert_ne!(l.block_root("m1"), l.block_root("m3"));
        let e = parse("a,b,label\nx,y,related\ny,x,unrelated\n").unwrap_err();
        assert!(matches!(e, Error::Labels { .. }));
    }

    #[test]
    fn file_ids_are_checked_against_the_models_labelled() {
        let l = parse("model,root\nbase,base\nft,\nwhisper_base,w\n").unwrap();
        let e = l.check_models(["base", "ft", "whisper-base"]).unwrap_err();
        assert!(
            matches!(&e, Error::UnknownLabelId { id, line: 4, .. } if id == "whisper_base"),
            "{e}"
        );
        assert!(e.to_string().contains("test.csv"), "{e}");
        let e = l
            .check_models(["base", "ft", "whisper_base", "x"])
            .unwrap_err();
        assert!(
            matches!(&e, Error::UnlabelledModel { id, .. } if id == "x"),
            "{e}"
        );
        l.check_models(["base", "ft", "whisper_base"]).unwrap();
        // A parent's row is allowed when a labelled model derives from it.
        let l = parse("model,root,derived_from\nbase,llama,\nft,,base\n").unwrap();
        l.check_models(["ft"]).unwrap();
        // Pair form: ids must be known, unlisted models are allowed (their pairs are unknown).
        let l = parse("a,b,label\nm1,m2,related\nm1,m9,unrelated\n").unwrap();
        let e = l.check_models(["m1", "m2", "m3"]).unwrap_err();
        assert!(
            matches!(&e, Error::UnknownLabelId { id, line: 3, .. } if id == "m9"),
            "{e}"
        );
        // Labels built in code are not checked.
        Labels::singletons(["a"])
            .unwrap()
            .check_models(["b"])
            .unwrap();
    }

    #[test]
    fn malformed_csv_is_rejected_with_line() {
        assert!(matches!(
            parse("name,parent\nx,y\n"),
            Err(Error::Csv { line: 1, .. })
        ));
        assert!(matches!(
            parse("model,family\nx,y\n"),
            Err(Error::Csv { .. })
        ));
        assert!(matches!(
            parse("a,b,label\nx,y,cousin\n"),
            Err(Error::Csv { line: 2, .. })
        ));
        assert!(matches!(
            parse("model,root\nx,r\nx,s\n"),
            Err(Error::Csv { .. })
        ));
        assert!(matches!(
            parse("model,root\nx,r,extra\n"),
            Err(Error::Csv { .. })
        ));
        assert!(matches!(
            parse("model,root,layers\nx,r,many\n"),
            Err(Error::Csv { line: 2, .. })
        ));
    }
}

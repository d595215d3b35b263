//! A model's matrices for the trace tests: read on demand from its files, or held in memory
//! (models derived in tests, or loaded once and reused).

use std::collections::{BTreeMap, BTreeSet};

use crate::matrices::{describe_key, ModelMatrices, Orientation, Pick, ReadOptions};
use fingerprint::roles::{Expert, Role, RoleKey};
use ndarray::{Array2, Axis};

use super::{Error, LayerId, Result, Skipped};

/// The weights of one model, addressed by role key, in PyTorch `[out, in]` orientation.
pub struct ModelWeights {
    name: String,
    inner: Inner,
}

enum Inner {
    File(Box<ModelMatrices>),
    Memory(BTreeMap<RoleKey, Array2<f32>>),
}

impl std::fmt::Debug for ModelWeights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.inner {
            Inner::File(_) => "file",
            Inner::Memory(m) => {
                return f
                    .debug_struct("ModelWeights")
                    .field("name", &self.name)
                    .field("in_memory", &m.len())
                    .finish()
            }
        };
        f.debug_struct("ModelWeights")
            .field("name", &self.name)
            .field("source", &kind)
            .finish()
    }
}

/// One MLP (a dense layer's, or one expert's) with consistent shapes.
#[derive(Clone, Debug, PartialEq)]
pub struct MlpSite {
    /// Its layer.
    pub layer: LayerId,
    /// Its expert (`None` for a dense MLP).
    pub expert: Option<Expert>,
    /// Hidden units (rows of up).
    pub width: usize,
    /// Residual-stream size (columns of up).
    pub hidden: usize,
    /// Whether it has a gate projection.
    pub gated: bool,
}

/// One view of a unit: the role and whether the unit is a row or a column of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum View {
    /// Row `u` of the gate projection.
    Gate,
    /// Row `u` of the up projection.
    Up,
    /// Column `u` of the down projection.
    Down,
}

impl View {
    pub(crate) fn label(self) -> &'static str {
        match self {
            View::Gate => "mlp_gate rows",
            View::Up => "mlp_up rows",
            View::Down => "mlp_down columns",
        }
    }

    fn role(self) -> Role {
        match self {
            View::Gate => Role::MlpGate,
            View::Up => Role::MlpUp,
            View::Down => Role::MlpDown,
        }
    }
}

/// A signed permutation of residual coordinates: coordinate `d` of model A corresponds to
/// `sign[d] ×` coordinate `perm[d]` of model B.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ResidualMap {
    pub perm: Vec<usize>,
    pub sign: Vec<f32>,
}

impl ModelWeights {
    /// Resolve a model argument (path, directory, `ollama:NAME`, cached Hugging Face id) and
    /// open its files; matrices are read when a test needs them.
    pub fn open(spec: &str) -> Result<Self> {
        let src = fingerprint::source::resolve(spec)?;
        Ok(Self::from_matrices(ModelMatrices::open(src)?))
    }

    /// Wrap an opened model.
    pub fn from_matrices(m: ModelMatrices) -> Self {
        ModelWeights {
            name: m.name().to_owned(),
            inner: Inner::File(Box::new(m)),
        }
    }

    /// A model held in memory (`[out, in]` matrices by role key).
    pub fn in_memory(name: impl Into<String>, matrices: BTreeMap<RoleKey, Array2<f32>>) -> Self {
        ModelWeights {
            name: name.into(),
            inner: Inner::Memory(matrices),
        }
    }

    /// The model's display name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every matrix's role key.
    pub fn keys(&self) -> Vec<RoleKey> {
        match &self.inner {
            Inner::File(m) => {
                let set: BTreeSet<RoleKey> = m.entries().iter().map(|e| e.key.clone()).collect();
                set.into_iter().collect()
            }
            Inner::Memory(m) => m.keys().cloned().collect(),
        }
    }

    /// `[out, in]` shape of a matrix.
    pub fn shape(&self, key: &RoleKey) -> Option<[usize; 2]> {
        match &self.inner {
            Inner::File(m) => m.entry(key).map(|e| e.shape(Orientation::Auto)),
            Inner::Memory(m) => m.get(key).map(|a| [a.nrows(), a.ncols()]),
        }
    }

    /// Read a matrix, restricted to the given rows and columns (`None`: all).
    pub fn load(
        &self,
        key: &RoleKey,
        rows: Option<&[usize]>,
        cols: Option<&[usize]>,
    ) -> Result<Array2<f32>> {
        let missing = || Error::Missing {
            model: self.name.clone(),
            key: describe_key(key),
        };
        match &self.inner {
            Inner::File(m) => {
                let pick = |s: Option<&[usize]>| match s {
                    Some(ix) => Pick::Indices(ix.to_vec()),
                    None => Pick::All,
                };
                if m.entry(key).is_none() {
                    return Err(missing());
                }
                let opts = ReadOptions {
                    rows: pick(rows),
                    cols: pick(cols),
                    ..Default::default()
                };
                Ok(m.read(key, &opts)?.data)
            }
            Inner::Memory(m) => {
                let a = m.get(key).ok_or_else(missing)?;
                let bad = |what: &str, i: usize, n: usize| Error::Shape {
                    model: self.name.clone(),
                    key: describe_key(key),
                    reason: format!("{what} {i} out of range ({n})"),
                };
                if let Some(&i) = rows.and_then(|r| r.iter().find(|&&i| i >= a.nrows())) {
                    return Err(bad("row", i, a.nrows()));
                }
                if let Some(&i) = cols.and_then(|c| c.iter().find(|&&i| i >= a.ncols())) {
                    return Err(bad("column", i, a.ncols()));
                }
                let a = match rows {
                    Some(r) => a.select(Axis(0), r),
                    None => a.clone(),
                };
                Ok(match cols {
                    Some(c) => a.select(Axis(1), c),
                    None => a,
                })
            }
        }
    }

    /// Load every matrix whose key passes `keep` into memory.
    pub fn materialize(
        &self,
        keep: impl Fn(&RoleKey) -> bool,
    ) -> Result<BTreeMap<RoleKey, Array2<f32>>> {
        let mut out = BTreeMap::new();
        for k in self.keys().into_iter().filter(|k| keep(k)) {
            let a = self.load(&k, None, None)?;
            out.insert(k, a);
        }
        Ok(out)
    }

    /// Whether any matrix belongs to a MoE expert.
    pub fn has_experts(&self) -> bool {
        self.keys().iter().any(|k| {
            k.expert.is_some() && matches!(k.role, Role::MlpUp | Role::MlpDown | Role::MlpGate)
        })
    }

    /// The token embedding's key, when the model has one (`[vocab, hidden]`).
    pub(crate) fn embedding(&self) -> Option<RoleKey> {
        let k = RoleKey {
            stack: None,
            layer: None,
            role: Role::Embed,
            expert: None,
        };
        self.shape(&k).map(|_| k)
    }

    /// Every MLP (dense layers and experts) with consistent shapes, in depth order, and the
    /// ones whose shapes do not fit together.
    pub fn mlp_sites(&self) -> (Vec<MlpSite>, Vec<Skipped>) {
        let mut sites = Vec::new();
        let mut skipped = Vec::new();
        for k in self.keys() {
            if k.role != Role::MlpUp {
                continue;
            }
            let Some(layer) = k.layer else { continue };
            let id = LayerId {
                stack: k.stack,
                layer,
            };
            let with = |role: Role| RoleKey { role, ..k.clone() };
            let what = match k.expert {
                Some(e) => format!("{} layer {id} expert {e}", self.name),
                None => format!("{} layer {id}", self.name),
            };
            let Some([w, h]) = self.shape(&k) else {
                continue;
            };
            let down = self.shape(&with(Role::MlpDown));
            let gate = self.shape(&with(Role::MlpGate));
            let reason = match (down, gate) {
                (None, _) => Some("no mlp_down matrix".to_owned()),
                (Some(d), _) if d != [h, w] => Some(format!(
                    "mlp_up is {w}×{h} but mlp_down is {}×{} (expected {h}×{w})",
                    d[0], d[1]
                )),
                (_, Some(g)) if g != [w, h] => Some(format!(
                    "mlp_up is {w}×{h} but mlp_gate is {}×{}",
                    g[0], g[1]
                )),
                _ if w == 0 || h == 0 => Some("empty matrix".to_owned()),
                _ => None,
            };
            match reason {
                Some(reason) => skipped.push(Skipped { what, reason }),
                None => sites.push(MlpSite {
                    layer: id,
                    expert: k.expert,
                    width: w,
                    hidden: h,
                    gated: gate.is_some(),
                }),
            }
        }
        sites.sort_by_key(|s| (s.layer, s.expert));
        (sites, skipped)
    }

    /// The unit vectors of one view of a site, `[units, hidden]`: rows `units` (all when
    /// `None`), with residual coordinates remapped by `map` and restricted to `coords`.
    pub(crate) fn unit_view(
        &self,
        site: &MlpSite,
        view: View,
        units: Option<&[usize]>,
        map: Option<&ResidualMap>,
        coords: Option<&[usize]>,
    ) -> Result<Array2<f32>> {
        let key = RoleKey {
            stack: site.layer.stack,
            layer: Some(site.layer.layer),
            role: view.role(),
            expert: site.expert,
        };
        // Residual columns to read, in A's coordinate order, and their signs.
        let (cols, signs): (Option<Vec<usize>>, Option<Vec<f32>>) = match (map, coords) {
            (None, None) => (None, None),
            (None, Some(c)) => (Some(c.to_vec()), None),
            (Some(m), c) => {
                let ds: Vec<usize> = match c {
                    Some(c) => c.to_vec(),
                    None => (0..m.perm.len()).collect(),
                };
                let mut cols = Vec::with_capacity(ds.len());
                let mut signs = Vec::with_capacity(ds.len());
                for d in ds {
                    let (Some(&p), Some(&s)) = (m.perm.get(d), m.sign.get(d)) else {
                        return Err(Error::Shape {
                            model: self.name.clone(),
                            key: describe_key(&key),
                            reason: format!("residual coordinate {d} outside the alignment"),
                        });
                    };
                    cols.push(p);
                    signs.push(s);
                }
                (Some(cols), Some(signs))
            }
        };
        let mut v = match view {
            View::Gate | View::Up => self.load(&key, units, cols.as_deref())?,
            View::Down => self
                .load(&key, cols.as_deref(), units)?
                .reversed_axes()
                .as_standard_layout()
                .into_owned(),
        };
        if let Some(signs) = signs {
            for (mut col, &s) in v.axis_iter_mut(Axis(1)).zip(&signs) {
                if s < 0.0 {
                    col.mapv_inplace(|x| -x);
                }
            }
        }
        Ok(v)
    }
}

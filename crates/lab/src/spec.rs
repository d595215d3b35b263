//! Lab files (`labs/NAME.toml`): the recipe, the seeds, the families, expanded into the list of
//! models to train. Loading validates every field; errors name the file and the field.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{Experts, ModelConfig};
use crate::error::{io, Error, Result};
use crate::optim::{Optim, Schedule};

/// Most models one family may hold (a typo guard: a lab file is a budget).
pub const MAX_FAMILY: usize = 256;
/// Deepest lab model (the claim under test is about 48 layers; growth adds a few).
pub const MAX_LAYERS: usize = 128;
/// Widest lab model (CPU training; the lab is meant to fit a laptop budget).
pub const MAX_HIDDEN: usize = 1024;

/// A lab file as written.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LabFile {
    /// The lab's name (`baselines/lab/NAME/`).
    pub name: String,
    /// The training corpus.
    pub corpus: CorpusSpec,
    /// The architecture shared by every model (the depth is per family).
    pub model: ModelSpec,
    /// The optimiser and budget of training from scratch.
    pub optim: OptimSpec,
    /// The families of models.
    #[serde(rename = "family")]
    pub families: Vec<FamilySpec>,
}

/// `[corpus]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CorpusSpec {
    /// The corpus file, relative to the models directory (`just corpus` puts it there).
    pub file: PathBuf,
    /// Its pinned SHA-256.
    pub sha256: String,
    /// The slice `[from, to)` (fractions of the corpus) that training from scratch reads.
    pub train: [f64; 2],
}

/// `[model]`: everything of [`ModelConfig`] except the depth and experts.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Model width.
    pub hidden: usize,
    /// Attention heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// MLP inner width.
    pub intermediate: usize,
    /// Sequence length (bytes).
    pub seq_len: usize,
    /// Rotary base.
    pub rope_theta: f64,
    /// RMSNorm epsilon.
    pub rms_eps: f64,
    /// Initialisation std.
    pub init_std: f64,
}

/// `[optim]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OptimSpec {
    /// Steps of training from scratch.
    pub steps: usize,
    /// Sequences per step.
    pub batch: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Final learning rate (cosine).
    pub min_lr: f64,
    /// Warm-up steps.
    pub warmup: usize,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// AdamW beta1.
    pub beta1: f64,
    /// AdamW beta2.
    pub beta2: f64,
    /// Gradient-norm clip.
    pub clip: f64,
}

/// What a family varies or derives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Model k: init seed `init_seed + k`, data seed `data_seed + k`.
    Independent,
    /// Model k: init seed `init_seed`, data seed `data_seed + k` (data order only).
    SameInit,
    /// Model k: init seed `init_seed + k`, data seed `data_seed` (initialisation only).
    SameData,
    /// Derived from `base`, then trained on a different slice (snapshots at `fractions`).
    Continued,
}

/// The derivation applied before continued training.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Derivation {
    /// None: plain continued training.
    None,
    /// Dense → MoE upcycling (`experts`, `top_k`; router seeded with `init_seed`).
    Upcycle,
    /// Depth growth by `insert` duplicated layers.
    Grow,
}

/// `[[family]]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FamilySpec {
    /// Family name; models are `NAME-KK` (seed families) or `NAME-PPP` (percent of the
    /// base's steps, derived families).
    pub name: String,
    /// What the family varies.
    pub kind: Kind,
    /// Decoder layers (seed families).
    #[serde(default)]
    pub layers: Option<usize>,
    /// Models (seed families).
    #[serde(default)]
    pub count: Option<usize>,
    /// Initialisation seed (base of the sequence), or the router seed of an upcycling.
    #[serde(default)]
    pub init_seed: Option<u64>,
    /// Data-order seed (base of the sequence).
    #[serde(default)]
    pub data_seed: Option<u64>,
    /// The trained model a derived family starts from.
    #[serde(default)]
    pub base: Option<String>,
    /// The derivation before training.
    #[serde(default)]
    pub derivation: Option<Derivation>,
    /// Snapshot points, as fractions of the base's steps (0 = the derived model untrained).
    #[serde(default)]
    pub fractions: Option<Vec<f64>>,
    /// Corpus slice of continued training.
    #[serde(default)]
    pub slice: Option<[f64; 2]>,
    /// Learning rate of continued training (warm-up, then constant).
    #[serde(default)]
    pub lr: Option<f64>,
    /// Experts (upcycling).
    #[serde(default)]
    pub experts: Option<usize>,
    /// Experts per token (upcycling).
    #[serde(default)]
    pub top_k: Option<usize>,
    /// Layers inserted (growth).
    #[serde(default)]
    pub insert: Option<u32>,
}

/// One model to train from scratch.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScratchJob {
    /// Model name.
    pub name: String,
    /// Family name.
    pub family: String,
    /// Family kind.
    pub kind: Kind,
    /// Architecture.
    pub config: ModelConfig,
    /// Optimiser.
    pub optim: Optim,
    /// Initialisation seed.
    pub init_seed: u64,
    /// Data-order seed.
    pub data_seed: u64,
    /// Corpus slice.
    pub slice: [f64; 2],
}

/// One derived family: a derivation of `base`, trained on with snapshots.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DerivedJob {
    /// Family name.
    pub family: String,
    /// The base model (a scratch job of the same lab).
    pub base: String,
    /// The derivation.
    pub derivation: Derivation,
    /// Upcycling shape.
    pub experts: Option<Experts>,
    /// Layers inserted by growth.
    pub insert: Option<u32>,
    /// Router seed (upcycling).
    pub init_seed: u64,
    /// Data-order seed.
    pub data_seed: u64,
    /// Corpus slice.
    pub slice: [f64; 2],
    /// Optimiser of continued training (constant after warm-up, steps = max snapshot).
    pub optim: Optim,
    /// (model name, fraction of the base's steps, step) of each snapshot.
    pub snapshots: Vec<(String, f64, usize)>,
}

/// A validated lab.
#[derive(Clone, Debug)]
pub struct Lab {
    /// The lab file it was read from.
    pub file: PathBuf,
    /// The file as written.
    pub spec: LabFile,
    /// Models trained from scratch, in order.
    pub scratch: Vec<ScratchJob>,
    /// Derived families, trained after their bases.
    pub derived: Vec<DerivedJob>,
}

impl Lab {
    /// Read and validate a lab file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        Self::parse(path, &text)
    }

    /// Validate lab-file text (`path` names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let spec: LabFile = toml::from_str(text).map_err(|e| Error::Spec {
            file: path.into(),
            field: "(file)".into(),
            reason: e.to_string().trim().replace('\n', " "),
        })?;
        expand(path, spec)
    }

    /// Every model name, in training order.
    pub fn model_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.scratch.iter().map(|j| j.name.clone()).collect();
        for d in &self.derived {
            v.extend(d.snapshots.iter().map(|s| s.0.clone()));
        }
        v
    }
}

fn expand(path: &Path, spec: LabFile) -> Result<Lab> {
    let err = |field: &str, reason: String| Error::Spec {
        file: path.into(),
        field: field.into(),
        reason,
    };
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !name_ok(&spec.name) {
        return Err(err(
            "name",
            format!("{:?}: use 1-64 of [A-Za-z0-9_-]", spec.name),
        ));
    }
    let slice_ok = |s: [f64; 2]| s[0] >= 0.0 && s[0] < s[1] && s[1] <= 1.0;
    if !slice_ok(spec.corpus.train) {
        return Err(err(
            "corpus.train",
            format!("{:?}: need 0 <= from < to <= 1", spec.corpus.train),
        ));
    }
    if spec.corpus.sha256.len() != 64 || !spec.corpus.sha256.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(err("corpus.sha256", "must be 64 hex digits".into()));
    }
    let m = &spec.model;
    if m.hidden == 0 || m.hidden > MAX_HIDDEN {
        return Err(err(
            "model.hidden",
            format!("{}: need 1..={MAX_HIDDEN}", m.hidden),
        ));
    }
    let o = &spec.optim;
    let pos = |x: f64| x.is_finite() && x > 0.0;
    if o.steps == 0 || o.batch == 0 {
        return Err(err("optim.steps", "steps and batch must be >= 1".into()));
    }
    if !(pos(o.lr) && o.min_lr.is_finite() && o.min_lr >= 0.0 && o.min_lr <= o.lr) {
        return Err(err(
            "optim.lr",
            format!(
                "need lr > 0 and 0 <= min_lr <= lr, got {} / {}",
                o.lr, o.min_lr
            ),
        ));
    }
    if o.warmup >= o.steps {
        return Err(err(
            "optim.warmup",
            format!("{} must be below steps = {}", o.warmup, o.steps),
        ));
    }
    if !(0.0..1.0).contains(&o.beta1) || !(0.0..1.0).contains(&o.beta2) {
        return Err(err("optim.beta1", "betas must be in [0, 1)".into()));
    }
    if !(pos(o.clip) && o.weight_decay.is_finite() && o.weight_decay >= 0.0) {
        return Err(err(
            "optim.clip",
            "clip must be > 0 and weight_decay >= 0".into(),
        ));
    }
    let optim = Optim {
        steps: o.steps,
        batch: o.batch,
        seq_len: m.seq_len,
        lr: o.lr,
        min_lr: o.min_lr,
        warmup: o.warmup,
        schedule: Schedule::Cosine,
        weight_decay: o.weight_decay,
        beta1: o.beta1,
        beta2: o.beta2,
        clip: o.clip,
    };
    let config = |layers: usize| ModelConfig {
        layers,
        hidden: m.hidden,
        heads: m.heads,
        kv_heads: m.kv_heads,
        intermediate: m.intermediate,
        seq_len: m.seq_len,
        rope_theta: m.rope_theta,
        rms_eps: m.rms_eps,
        init_std: m.init_std,
        experts: None,
    };
    config(1)
        .check()
        .map_err(|(f, r)| err(&format!("model.{f}"), r))?;

    let mut names = BTreeSet::new();
    let mut scratch = Vec::new();
    let mut derived = Vec::new();
    if spec.families.is_empty() {
        return Err(err("family", "the lab has no [[family]]".into()));
    }
    for (i, f) in spec.families.iter().enumerate() {
        let field = |k: &str| format!("family[{i}] ({}).{k}", f.name);
        let need = |v: Option<u64>, k: &str| v.ok_or_else(|| err(&field(k), "missing".into()));
        if !name_ok(&f.name) {
            return Err(err(
                &field("name"),
                format!("{:?}: use 1-64 of [A-Za-z0-9_-]", f.name),
            ));
        }
        let scratch_only = [("layers", f.layers.is_some()), ("count", f.count.is_some())];
        let derived_only = [
            ("base", f.base.is_some()),
            ("derivation", f.derivation.is_some()),
            ("fractions", f.fractions.is_some()),
            ("slice", f.slice.is_some()),
            ("lr", f.lr.is_some()),
            ("experts", f.experts.is_some()),
            ("top_k", f.top_k.is_some()),
            ("insert", f.insert.is_some()),
        ];
        let forbid = |list: &[(&str, bool)]| -> Result<()> {
            match list.iter().find(|(_, set)| *set) {
                Some((k, _)) => Err(err(
                    &field(k),
                    format!("not a field of a {:?} family", f.kind),
                )),
                None => Ok(()),
            }
        };
        let mut add = |n: String| -> Result<String> {
            if !names.insert(n.clone()) {
                return Err(err(&field("name"), format!("model {n} appears twice")));
            }
            Ok(n)
        };
        if f.kind != Kind::Continued {
            forbid(&derived_only)?;
            let layers = f
                .layers
                .ok_or_else(|| err(&field("layers"), "missing".into()))?;
            if layers == 0 || layers > MAX_LAYERS {
                return Err(err(
                    &field("layers"),
                    format!("{layers}: need 1..={MAX_LAYERS}"),
                ));
            }
            let count = f
                .count
                .ok_or_else(|| err(&field("count"), "missing".into()))?;
            if count == 0 || count > MAX_FAMILY {
                return Err(err(
                    &field("count"),
                    format!("{count}: need 1..={MAX_FAMILY}"),
                ));
            }
            let (init, data) = (
                need(f.init_seed, "init_seed")?,
                need(f.data_seed, "data_seed")?,
            );
            for k in 0..count {
                let kk = k as u64;
                let (init_seed, data_seed) = match f.kind {
                    Kind::Independent => (init + kk, data + kk),
                    Kind::SameInit => (init, data + kk),
                    Kind::SameData => (init + kk, data),
                    Kind::Continued => unreachable!("handled below"),
                };
                scratch.push(ScratchJob {
                    name: add(format!("{}-{k:02}", f.name))?,
                    family: f.name.clone(),
                    kind: f.kind,
                    config: config(layers),
                    optim: optim.clone(),
                    init_seed,
                    data_seed,
                    slice: spec.corpus.train,
                });
            }
            continue;
        }
        forbid(&scratch_only)?;
        let base = f
            .base
            .clone()
            .ok_or_else(|| err(&field("base"), "missing".into()))?;
        let Some(base_job) = scratch.iter().find(|j| j.name == base) else {
            return Err(err(
                &field("base"),
                format!("{base:?} is not a model trained from scratch earlier in this lab"),
            ));
        };
        let derivation = f
            .derivation
            .ok_or_else(|| err(&field("derivation"), "missing (none, upcycle, grow)".into()))?;
        let slice = f
            .slice
            .ok_or_else(|| err(&field("slice"), "missing".into()))?;
        if !slice_ok(slice) {
            return Err(err(
                &field("slice"),
                format!("{slice:?}: need 0 <= from < to <= 1"),
            ));
        }
        let tr = spec.corpus.train;
        if slice[0] < tr[1] && tr[0] < slice[1] {
            return Err(err(&field("slice"), format!("{slice:?} overlaps the training slice {tr:?}; continued training reads different text")));
        }
        let fractions = f
            .fractions
            .clone()
            .ok_or_else(|| err(&field("fractions"), "missing".into()))?;
        if fractions.is_empty()
            || fractions
                .iter()
                .any(|x| !(x.is_finite() && *x >= 0.0 && *x <= 100.0))
        {
            return Err(err(
                &field("fractions"),
                format!("{fractions:?}: need 0 <= x <= 100, at least one"),
            ));
        }
        if fractions.windows(2).any(|w| w[0] >= w[1]) {
            return Err(err(
                &field("fractions"),
                "must be strictly increasing".into(),
            ));
        }
        let lr = f.lr.ok_or_else(|| err(&field("lr"), "missing".into()))?;
        if !pos(lr) {
            return Err(err(&field("lr"), format!("{lr}: need > 0")));
        }
        let (experts, insert) = match derivation {
            Derivation::None => {
                forbid(&[
                    ("experts", f.experts.is_some()),
                    ("top_k", f.top_k.is_some()),
                    ("insert", f.insert.is_some()),
                ])?;
                (None, None)
            }
            Derivation::Upcycle => {
                forbid(&[("insert", f.insert.is_some())])?;
                let e = Experts {
                    count: f
                        .experts
                        .ok_or_else(|| err(&field("experts"), "missing".into()))?,
                    top_k: f
                        .top_k
                        .ok_or_else(|| err(&field("top_k"), "missing".into()))?,
                };
                let mut c = base_job.config.clone();
                c.experts = Some(e);
                c.check().map_err(|(k, r)| err(&field(&k), r))?;
                (Some(e), None)
            }
            Derivation::Grow => {
                forbid(&[
                    ("experts", f.experts.is_some()),
                    ("top_k", f.top_k.is_some()),
                ])?;
                let n = f
                    .insert
                    .ok_or_else(|| err(&field("insert"), "missing".into()))?;
                controls::Recipe::Insert { count: n, rel: 0.0 }
                    .layer_map(base_job.config.layers as u32)
                    .map_err(|r| err(&field("insert"), r))?;
                (None, Some(n))
            }
        };
        let steps_of = |x: f64| (x * optim.steps as f64).round() as usize;
        let snapshots = fractions
            .iter()
            .map(|&x| {
                let pct = (x * 100.0).round() as usize;
                Ok((add(format!("{}-{pct:03}", f.name))?, x, steps_of(x)))
            })
            .collect::<Result<Vec<_>>>()?;
        let total = snapshots.last().map_or(0, |s| s.2);
        let cont = Optim {
            steps: total,
            lr,
            min_lr: lr,
            warmup: optim.warmup.min(total.saturating_sub(1)),
            schedule: Schedule::Constant,
            ..optim.clone()
        };
        derived.push(DerivedJob {
            family: f.name.clone(),
            base,
            derivation,
            experts,
            insert,
            init_seed: f.init_seed.unwrap_or(0),
            data_seed: need(f.data_seed, "data_seed")?,
            slice,
            optim: cont,
            snapshots,
        });
    }
    Ok(Lab {
        file: path.into(),
        spec,
        scratch,
        derived,
    })
}

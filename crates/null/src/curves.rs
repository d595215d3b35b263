//! Per-layer curves extracted from a fingerprint: for each selected role, the std of that
//! role's tensor in every layer, in layer order.
//!
//! * **Roles.** Any role a fingerprint has can be selected ([`RoleSel`]): the attention
//!   projections (the default, [`Role::ATTENTION`]), MLP, norms, biases (`attn_q_bias`), and
//!   MoE experts (`mlp_up@3` for routed expert 3, `mlp_up@shared`, or `mlp_up@mean` for the
//!   per-layer mean of the routed experts' stds). The text form of a selector is the curve's
//!   key everywhere (per-role results, JSON).
//! * **Stack.** Encoder-decoder models have an encoder and a decoder stack. With
//!   [`StackChoice::Auto`] a role whose rows carry no stack is used as is; a role present in both
//!   stacks gives the encoder's layers followed by the decoder's (one curve of L_enc + L_dec
//!   points, so a 6+6-layer Whisper reads as 12 layers); a role present in one stack only (the
//!   decoder's cross-attention) uses that stack. [`StackChoice::Encoder`] and
//!   [`StackChoice::Decoder`] pick one stack.
//! * **ddof.** Fingerprints store the population std (ddof 0); `ddof = 1` gives the
//!   Bessel-corrected std that `torch.std` (the published code) returns. With millions of
//!   entries per matrix the two differ by a factor within 1e-6 of 1, nearly constant over depth,
//!   and z-scoring removes a constant factor, so the choice barely matters; it is recorded.
//! * **Checks.** Layers must run 0..L-1 without gaps or duplicates, every value must exist and
//!   be finite, and every curve needs at least [`MIN_LAYERS`] points; each failure is a typed
//!   [`Error`]. A flat curve is valid data here; the measures reject it (zero spread) or flag
//!   it (low spread).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use fingerprint::roles::Stack;
use fingerprint::{Expert, Fingerprint, Role, StdRow, StdRows, TensorRow};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Fewest points a curve may have: a correlation of two points is always ±1.
pub const MIN_LAYERS: usize = 3;

/// Most points a curve may have (a cap against malformed input; real models have < 200).
pub const MAX_LAYERS: usize = 1 << 16;

/// Which expert rows a selector reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExpertSel {
    /// Dense rows only (no expert).
    Dense,
    /// One expert's rows.
    One(Expert),
    /// The mean, per layer, of the stds of all routed experts.
    Mean,
}

/// A role (and expert selection) whose per-layer std forms one curve.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoleSel {
    /// The role.
    pub role: Role,
    /// Which expert rows.
    pub expert: ExpertSel,
}

impl RoleSel {
    /// A dense role.
    pub fn dense(role: Role) -> Self {
        RoleSel {
            role,
            expert: ExpertSel::Dense,
        }
    }

    /// The four attention projections q, k, v, o of the published fingerprint.
    pub fn attention() -> Vec<RoleSel> {
        Role::ATTENTION.into_iter().map(RoleSel::dense).collect()
    }

    /// The curve key: the role's name, with `@N`, `@shared` or `@mean` for experts.
    pub fn key(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for RoleSel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.expert {
            ExpertSel::Dense => write!(f, "{}", self.role),
            ExpertSel::One(e) => write!(f, "{}@{e}", self.role),
            ExpertSel::Mean => write!(f, "{}@mean", self.role),
        }
    }
}

impl FromStr for RoleSel {
    type Err = Error;
    /// `attn_q`, `mlp_up@3`, `mlp_up@shared`, `mlp_up@mean`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason: &str| Error::Parse {
            what: "role".into(),
            value: s.into(),
            reason: reason.into(),
        };
        let (role, expert) = match s.split_once('@') {
            None => (s, ExpertSel::Dense),
            Some((r, "mean")) => (r, ExpertSel::Mean),
            Some((r, "shared")) => (r, ExpertSel::One(Expert::Shared)),
            Some((r, n)) => (
                r,
                ExpertSel::One(Expert::Index(
                    n.parse()
                        .map_err(|_| bad("expert must be a number, `shared` or `mean`"))?,
                )),
            ),
        };
        if role.is_empty() {
            return Err(bad("empty role name"));
        }
        let role: Role = role.parse().unwrap_or(Role::Other(role.to_owned()));
        Ok(RoleSel { role, expert })
    }
}

/// Named role sets for command lines.
pub fn role_set(name: &str) -> Result<Vec<RoleSel>> {
    let dense = |rs: &[Role]| rs.iter().cloned().map(RoleSel::dense).collect();
    Ok(match name {
        "attention" | "attn" => RoleSel::attention(),
        "mlp" => dense(&[Role::MlpGate, Role::MlpUp, Role::MlpDown]),
        "mlp2" => dense(&[Role::MlpUp, Role::MlpDown]),
        "norms" => dense(&[Role::AttnNorm, Role::MlpNorm]),
        "qkv_bias" => dense(&[Role::AttnQ.bias(), Role::AttnK.bias(), Role::AttnV.bias()]),
        other => {
            return other
                .split(',')
                .map(|s| s.trim().parse())
                .collect::<Result<Vec<_>>>()
        }
    })
}

/// Which stack of an encoder-decoder model forms the curves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StackChoice {
    /// Rows without a stack if any; else encoder then decoder; else the one stack present.
    #[default]
    Auto,
    /// Encoder rows only.
    Encoder,
    /// Decoder rows only.
    Decoder,
    /// Encoder layers followed by decoder layers.
    EncoderThenDecoder,
}

impl FromStr for StackChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "auto" => StackChoice::Auto,
            "encoder" => StackChoice::Encoder,
            "decoder" => StackChoice::Decoder,
            "both" | "encoder+decoder" | "encoder_then_decoder" => StackChoice::EncoderThenDecoder,
            _ => {
                return Err(Error::Parse {
                    what: "stack".into(),
                    value: s.into(),
                    reason: "expected auto, encoder, decoder or encoder+decoder".into(),
                })
            }
        })
    }
}

/// How to extract curves from a fingerprint.
#[derive(Clone, Debug, PartialEq)]
pub struct CurveOptions {
    /// Roles to extract; each becomes one curve.
    pub roles: Vec<RoleSel>,
    /// Stack selection for encoder-decoder models.
    pub stack: StackChoice,
    /// Degrees of freedom removed from the std: 0 (population, stored) or 1 (`torch.std`).
    pub ddof: u32,
}

impl Default for CurveOptions {
    fn default() -> Self {
        CurveOptions {
            roles: RoleSel::attention(),
            stack: StackChoice::Auto,
            ddof: 0,
        }
    }
}

/// One role's per-layer values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    /// Value per layer (index = position in the curve).
    pub values: Vec<f64>,
    /// Stored dtype per layer (e.g. `Q4_K`, `F32`), empty when unknown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dtypes: Vec<String>,
    /// Which rows formed it: `plain`, `encoder`, `decoder` or `encoder+decoder`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stack: String,
}

impl Curve {
    /// Number of points.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when the curve has no points (never, for a validated curve).
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Coefficient of variation (population std / |mean|); `None` when the mean is 0.
    pub fn cv(&self) -> Option<f64> {
        crate::stats::coefficient_of_variation(&self.values)
            .ok()
            .flatten()
    }

    /// Per-layer marks of a mixed-precision quantization: `true` where the layer's dtype differs
    /// from the curve's most common dtype. `None` when all layers share one dtype (or dtypes
    /// are unknown). llama.cpp's Q4_K_M recipe gives `attn_v`/`ffn_down` more bits in a layer
    /// pattern that depends only on the layer count and tensor order, not on the model.
    pub fn quant_pattern(&self) -> Option<Vec<bool>> {
        if self.dtypes.len() != self.values.len() || self.dtypes.is_empty() {
            return None;
        }
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for d in &self.dtypes {
            *counts.entry(d.as_str()).or_default() += 1;
        }
        if counts.len() < 2 {
            return None;
        }
        let common = counts
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
            .map(|(d, _)| *d)?;
        Some(self.dtypes.iter().map(|d| d != common).collect())
    }
}

/// A model's curves: one per selected role, keyed by [`RoleSel::key`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Curves {
    /// Model name.
    pub model: String,
    /// Architecture family (`model_type` or architecture of the fingerprint), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// The ddof of the std values.
    pub ddof: u32,
    /// True when the fingerprinted tensors held NaN or Inf values.
    #[serde(default)]
    pub nonfinite: bool,
    /// The curves.
    pub roles: BTreeMap<String, Curve>,
}

impl Curves {
    /// Curves from raw values (synthetic data, derivations, tests), validated like extracted
    /// ones: at least one role, every curve at least [`MIN_LAYERS`] finite values.
    pub fn new(model: impl Into<String>, roles: BTreeMap<String, Vec<f64>>) -> Result<Self> {
        let c = Curves {
            model: model.into(),
            family: None,
            ddof: 0,
            nonfinite: false,
            roles: roles
                .into_iter()
                .map(|(k, values)| {
                    (
                        k,
                        Curve {
                            values,
                            dtypes: Vec::new(),
                            stack: String::new(),
                        },
                    )
                })
                .collect(),
        };
        c.validate()?;
        Ok(c)
    }

    /// Check the invariants [`Curves::new`] promises (for values that came through serde).
    pub fn validate(&self) -> Result<()> {
        if self.roles.is_empty() {
            return Err(Error::NoRoles {
                model: self.model.clone(),
            });
        }
        for (role, c) in &self.roles {
            if c.values.len() < MIN_LAYERS {
                return Err(Error::TooFewLayers {
                    model: self.model.clone(),
                    role: role.clone(),
                    layers: c.values.len(),
                    needed: MIN_LAYERS,
                    what: "a curve".into(),
                });
            }
            if c.values.len() > MAX_LAYERS {
                return Err(Error::TooLarge {
                    what: format!("{}: {role} layers", self.model),
                    n: c.values.len() as u64,
                    max: MAX_LAYERS as u64,
                });
            }
            if let Some((index, &value)) = c.values.iter().enumerate().find(|(_, v)| !v.is_finite())
            {
                return Err(Error::NonFinite {
                    model: self.model.clone(),
                    role: role.clone(),
                    index,
                    value,
                });
            }
        }
        Ok(())
    }

    /// Extract the curves of `opts.roles` from a fingerprint.
    pub fn from_fingerprint(fp: &Fingerprint, opts: &CurveOptions) -> Result<Self> {
        let family = fp
            .model
            .config
            .model_type
            .clone()
            .or_else(|| fp.model.architecture.clone());
        Self::from_rows(&fp.model.name, family, fp.nonfinite, &fp.tensors, opts)
    }

    /// [`Curves::from_fingerprint`] from the lean form of a fingerprint file (the same curves).
    pub fn from_std_rows(fp: &StdRows, opts: &CurveOptions) -> Result<Self> {
        let family = fp.model_type.clone().or_else(|| fp.architecture.clone());
        Self::from_rows(&fp.name, family, fp.nonfinite, &fp.tensors, opts)
    }

    fn from_rows<R: Row>(
        model: &str,
        family: Option<String>,
        nonfinite: bool,
        tensors: &[R],
        opts: &CurveOptions,
    ) -> Result<Self> {
        if opts.ddof > 1 {
            return Err(Error::invalid("ddof", opts.ddof, "must be 0 or 1"));
        }
        let mut roles = BTreeMap::new();
        for sel in &opts.roles {
            let curve = extract(model, tensors, sel, opts)?;
            roles.insert(sel.key(), curve);
        }
        let c = Curves {
            model: model.to_owned(),
            family,
            ddof: opts.ddof,
            nonfinite,
            roles,
        };
        c.validate()?;
        Ok(c)
    }

    /// Parse a fingerprint JSON file's text and extract curves.
    pub fn from_fingerprint_json(
        path: &std::path::Path,
        text: &str,
        opts: &CurveOptions,
    ) -> Result<Self> {
        let fp = Fingerprint::from_json(text).map_err(|e| Error::Fingerprint {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        Self::from_fingerprint(&fp, opts)
    }

    /// Longest curve length.
    pub fn max_layers(&self) -> usize {
        self.roles.values().map(Curve::len).max().unwrap_or(0)
    }

    /// A copy holding only `keys` (in any order).
    pub fn select(&self, keys: &[&str]) -> Result<Self> {
        let mut out = self.clone();
        out.roles.clear();
        for &k in keys {
            let c = self.roles.get(k).ok_or_else(|| Error::MissingRole {
                model: self.model.clone(),
                role: k.to_owned(),
                stack: String::new(),
            })?;
            out.roles.insert(k.to_owned(), c.clone());
        }
        out.validate()?;
        Ok(out)
    }

    /// A copy with curve `from` renamed to `to` (e.g. compare a dense model's `mlp_up` with an
    /// upcycled MoE's `mlp_up@mean`).
    pub fn renamed(&self, from: &str, to: &str) -> Result<Self> {
        let mut out = self.clone();
        let c = out.roles.remove(from).ok_or_else(|| Error::MissingRole {
            model: self.model.clone(),
            role: from.to_owned(),
            stack: String::new(),
        })?;
        out.roles.insert(to.to_owned(), c);
        Ok(out)
    }
}

fn stack_name(s: Option<Stack>) -> &'static str {
    match s {
        None => "plain",
        Some(Stack::Encoder) => "encoder",
        Some(Stack::Decoder) => "decoder",
    }
}

/// A fingerprint row as curves read it: a full [`TensorRow`] or a lean [`StdRow`].
trait Row {
    fn stack(&self) -> Option<Stack>;
    fn layer(&self) -> Option<u32>;
    fn role(&self) -> &Role;
    fn expert(&self) -> Option<Expert>;
    fn dtype(&self) -> &str;
    fn std_ddof(&self, ddof: u32) -> Option<f64>;
}

impl Row for TensorRow {
    fn stack(&self) -> Option<Stack> {
        self.stack
    }
    fn layer(&self) -> Option<u32> {
        self.layer
    }
    fn role(&self) -> &Role {
        &self.role
    }
    fn expert(&self) -> Option<Expert> {
        self.expert
    }
    fn dtype(&self) -> &str {
        &self.dtype
    }
    fn std_ddof(&self, ddof: u32) -> Option<f64> {
        self.stats.std_ddof(ddof)
    }
}

impl Row for StdRow {
    fn stack(&self) -> Option<Stack> {
        self.stack
    }
    fn layer(&self) -> Option<u32> {
        self.layer
    }
    fn role(&self) -> &Role {
        &self.role
    }
    fn expert(&self) -> Option<Expert> {
        self.expert
    }
    fn dtype(&self) -> &str {
        &self.dtype
    }
    fn std_ddof(&self, ddof: u32) -> Option<f64> {
        StdRow::std_ddof(self, ddof)
    }
}

fn matches_expert(row: &impl Row, sel: ExpertSel) -> bool {
    match sel {
        ExpertSel::Dense => row.expert().is_none(),
        ExpertSel::One(e) => row.expert() == Some(e),
        ExpertSel::Mean => matches!(row.expert(), Some(Expert::Index(_))),
    }
}

fn extract<R: Row>(
    model: &str,
    tensors: &[R],
    sel: &RoleSel,
    opts: &CurveOptions,
) -> Result<Curve> {
    let key = sel.key();
    let rows: Vec<&R> = tensors
        .iter()
        .filter(|r| *r.role() == sel.role && r.layer().is_some() && matches_expert(*r, sel.expert))
        .collect();
    let has = |s: Option<Stack>| rows.iter().any(|r| r.stack() == s);
    let stacks: Vec<Option<Stack>> = match opts.stack {
        StackChoice::Auto if has(None) => vec![None],
        StackChoice::Auto => [Some(Stack::Encoder), Some(Stack::Decoder)]
            .into_iter()
            .filter(|&s| has(s))
            .collect(),
        StackChoice::Encoder => vec![Some(Stack::Encoder)],
        StackChoice::Decoder => vec![Some(Stack::Decoder)],
        StackChoice::EncoderThenDecoder => vec![Some(Stack::Encoder), Some(Stack::Decoder)],
    };
    let missing = |stack: &str| Error::MissingRole {
        model: model.to_owned(),
        role: key.clone(),
        stack: stack.to_owned(),
    };
    if stacks.is_empty() {
        return Err(missing(""));
    }
    let mut curve = Curve {
        values: Vec::new(),
        dtypes: Vec::new(),
        stack: stacks
            .iter()
            .map(|&s| stack_name(s))
            .collect::<Vec<_>>()
            .join("+"),
    };
    for stack in stacks {
        let mut by_layer: BTreeMap<u32, Vec<&R>> = BTreeMap::new();
        for r in rows.iter().filter(|r| r.stack() == stack) {
            if let Some(l) = r.layer() {
                by_layer.entry(l).or_default().push(r);
            }
        }
        if by_layer.is_empty() {
            return Err(missing(&format!(" in the {} stack", stack_name(stack))));
        }
        for (expected, (&layer, group)) in by_layer.iter().enumerate() {
            if layer as usize != expected {
                return Err(Error::MissingLayer {
                    model: model.to_owned(),
                    role: key.clone(),
                    layer: expected as u32,
                    present: by_layer.len(),
                });
            }
            if sel.expert != ExpertSel::Mean && group.len() > 1 {
                return Err(Error::DuplicateLayer {
                    model: model.to_owned(),
                    role: key.clone(),
                    layer,
                    count: group.len(),
                });
            }
            let what = || Error::MissingValue {
                model: model.to_owned(),
                role: key.clone(),
                layer,
                what: format!("std (ddof {})", opts.ddof),
            };
            let mut sum = 0.0;
            for r in group {
                sum += r.std_ddof(opts.ddof).ok_or_else(what)?;
            }
            let value = sum / group.len() as f64;
            if !value.is_finite() {
                return Err(Error::NonFinite {
                    model: model.to_owned(),
                    role: key.clone(),
                    index: curve.values.len(),
                    value,
                });
            }
            curve.values.push(value);
            let mut dts: Vec<&str> = group.iter().map(|r| r.dtype()).collect();
            dts.sort_unstable();
            dts.dedup();
            curve.dtypes.push(dts.join("|"));
            if curve.values.len() > MAX_LAYERS {
                return Err(Error::TooLarge {
                    what: format!("{model}: {key} layers"),
                    n: curve.values.len() as u64,
                    max: MAX_LAYERS as u64,
                });
            }
        }
    }
    Ok(curve)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{fingerprint, row};

    #[test]
    fn role_selectors_round_trip() {
        for s in [
            "attn_q",
            "mlp_up@3",
            "mlp_up@shared",
            "mlp_down@mean",
            "attn_q_bias",
        ] {
            assert_eq!(s.parse::<RoleSel>().unwrap().key(), s);
        }
        assert!("mlp_up@x".parse::<RoleSel>().is_err());
        assert!("@3".parse::<RoleSel>().is_err());
        assert_eq!(role_set("attention").unwrap().len(), 4);
        assert_eq!(role_set("attn_q, mlp_up@mean").unwrap().len(), 2);
    }

    #[test]
    fn extracts_attention_curves_in_layer_order() {
        let fp = fingerprint(
            "m",
            (0..4u32)
                .rev()
                .flat_map(|l| {
                    Role::ATTENTION
                        .into_iter()
                        .map(move |r| row(None, l, r, None, 0.1 + l as f64))
                })
                .collect(),
        );
        let c = Curves::from_fingerprint(&fp, &CurveOptions::default()).unwrap();
        assert_eq!(c.roles.len(), 4);
        assert_eq!(c.roles["attn_q"].values, vec![0.1, 1.1, 2.1, 3.1]);
        assert_eq!(c.roles["attn_q"].stack, "plain");
    }

    #[test]
    fn typed_errors_for_bad_fingerprints() {
        let opts = CurveOptions {
            roles: vec![RoleSel::dense(Role::AttnQ)],
            ..Default::default()
        };
        // Gap at layer 1.
        let fp = fingerprint(
            "gap",
            [0, 2, 3]
                .into_iter()
                .map(|l| row(None, l, Role::AttnQ, None, 1.0 + l as f64))
                .collect(),
        );
        assert!(matches!(
            Curves::from_fingerprint(&fp, &opts),
            Err(Error::MissingLayer { layer: 1, .. })
        ));
        // Too few layers.
        let fp = fingerprint(
            "short",
            (0..2)
                .map(|l| row(None, l, Role::AttnQ, None, 1.0))
                .collect(),
        );
        assert!(matches!(
            Curves::from_fingerprint(&fp, &opts),
            Err(Error::TooFewLayers { layers: 2, .. })
        ));
        // Missing role.
        let fp = fingerprint(
            "norole",
            (0..4)
                .map(|l| row(None, l, Role::AttnK, None, 1.0))
                .collect(),
        );
        assert!(matches!(
            Curves::from_fingerprint(&fp, &opts),
            Err(Error::MissingRole { .. })
        ));
        // No finite value in a layer.
        let mut rows: Vec<TensorRow> = (0..4)
            .map(|l| row(None, l, Role::AttnQ, None, 1.0))
            .collect();
        rows[2].stats.std = None;
        assert!(matches!(
            Curves::from_fingerprint(&fingerprint("none", rows), &opts),
            Err(Error::MissingValue { layer: 2, .. })
        ));
        // Duplicate layer.
        let mut rows: Vec<TensorRow> = (0..4)
            .map(|l| row(None, l, Role::AttnQ, None, 1.0))
            .collect();
        rows.push(row(None, 1, Role::AttnQ, None, 2.0));
        assert!(matches!(
            Curves::from_fingerprint(&fingerprint("dup", rows), &opts),
            Err(Error::DuplicateLayer {
                layer: 1,
                count: 2,
                ..
            })
        ));
        // ddof 2 is not offered.
        let fp = fingerprint(
            "ok",
            (0..4)
                .map(|l| row(None, l, Role::AttnQ, None, 1.0))
                .collect(),
        );
        let bad = CurveOptions {
            ddof: 2,
            ..opts.clone()
        };
        assert!(matches!(
            Curves::from_fingerprint(&fp, &bad),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            Curves::new(
                "x",
                BTreeMap::from([("r".to_string(), vec![1.0, f64::NAN, 2.0])])
            ),
            Err(Error::NonFinite { index: 1, .. })
        ));
        assert!(matches!(
            Curves::new("x", BTreeMap::new()),
            Err(Error::NoRoles { .. })
        ));
    }

    #[test]
    fn ddof_one_scales_by_bessel_factor() {
        let fp = fingerprint(
            "m",
            (0..3)
                .map(|l| row(None, l, Role::AttnQ, None, 1.0 + l as f64))
                .collect(),
        );
        let opts = CurveOptions {
            roles: vec![RoleSel::dense(Role::AttnQ)],
            ddof: 1,
            ..Default::default()
        };
        let c = Curves::from_fingerprint(&fp, &opts).unwrap();
        // testutil rows hold 100 elements: factor sqrt(100/99).
        let f = (100.0f64 / 99.0).sqrt();
        assert!((c.roles["attn_q"].values[2] - 3.0 * f).abs() < 1e-15);
        assert_eq!(c.ddof, 1);
    }

    #[test]
    fn encoder_decoder_stacks() {
        let mut rows = Vec::new();
        for l in 0..3 {
            rows.push(row(
                Some(Stack::Encoder),
                l,
                Role::AttnQ,
                None,
                1.0 + l as f64,
            ));
            rows.push(row(
                Some(Stack::Decoder),
                l,
                Role::AttnQ,
                None,
                10.0 + l as f64,
            ));
            rows.push(row(
                Some(Stack::Decoder),
                l,
                Role::XattnQ,
                None,
                20.0 + l as f64,
            ));
        }
        let fp = fingerprint("whisper", rows);
        let sel = |roles: &[Role], stack| CurveOptions {
            roles: roles.iter().cloned().map(RoleSel::dense).collect(),
            stack,
            ddof: 0,
        };
        let c =
            Curves::from_fingerprint(&fp, &sel(&[Role::AttnQ, Role::XattnQ], StackChoice::Auto))
                .unwrap();
        assert_eq!(
            c.roles["attn_q"].values,
            vec![1.0, 2.0, 3.0, 10.0, 11.0, 12.0]
        );
        assert_eq!(c.roles["attn_q"].stack, "encoder+decoder");
        assert_eq!(c.roles["xattn_q"].values, vec![20.0, 21.0, 22.0]);
        assert_eq!(c.roles["xattn_q"].stack, "decoder");
        let d = Curves::from_fingerprint(&fp, &sel(&[Role::AttnQ], StackChoice::Decoder)).unwrap();
        assert_eq!(d.roles["attn_q"].values, vec![10.0, 11.0, 12.0]);
        assert!(matches!(
            Curves::from_fingerprint(&fp, &sel(&[Role::XattnQ], StackChoice::Encoder)),
            Err(Error::MissingRole { .. })
        ));
    }

    #[test]
    fn experts_one_and_mean() {
        let mut rows = Vec::new();
        for l in 0..3 {
            for e in 0..4 {
                rows.push(row(
                    None,
                    l,
                    Role::MlpUp,
                    Some(Expert::Index(e)),
                    (l * 10 + e) as f64,
                ));
            }
            rows.push(row(None, l, Role::MlpUp, Some(Expert::Shared), 100.0));
        }
        let fp = fingerprint("moe", rows);
        let opts = CurveOptions {
            roles: vec!["mlp_up@2".parse().unwrap(), "mlp_up@mean".parse().unwrap()],
            ..Default::default()
        };
        let c = Curves::from_fingerprint(&fp, &opts).unwrap();
        assert_eq!(c.roles["mlp_up@2"].values, vec![2.0, 12.0, 22.0]);
        assert_eq!(c.roles["mlp_up@mean"].values, vec![1.5, 11.5, 21.5]);
        // Dense selection finds no dense MLP.
        let dense = CurveOptions {
            roles: vec![RoleSel::dense(Role::MlpUp)],
            ..Default::default()
        };
        assert!(matches!(
            Curves::from_fingerprint(&fp, &dense),
            Err(Error::MissingRole { .. })
        ));
    }

    #[test]
    fn quant_pattern_marks_minority_dtypes() {
        let c = Curve {
            values: vec![1.0; 5],
            dtypes: ["Q8_0", "Q5_0", "Q5_0", "Q8_0", "Q5_0"]
                .map(String::from)
                .to_vec(),
            stack: String::new(),
        };
        assert_eq!(
            c.quant_pattern(),
            Some(vec![true, false, false, true, false])
        );
        let uniform = Curve {
            dtypes: vec!["F32".into(); 5],
            ..c
        };
        assert_eq!(uniform.quant_pattern(), None);
    }
}

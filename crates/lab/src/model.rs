//! The decoder's parameters, their seeded initialisation and the forward pass.
//!
//! Parameters live in a name → [`Var`] map keyed by their Hugging Face names, so a checkpoint is
//! the map written out. Every operation is one whose gradient candle computes (RMSNorm, rotary
//! embedding, softmax and SwiGLU are written from elementary tensor ops).

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor, Var, D};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::config::{is_norm, tensor_shapes, ModelConfig, VOCAB};
use crate::error::{Context, Error, Result};

/// Tensor values by name: (shape, row-major f32).
pub type Values = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// A model: its configuration and its parameters.
pub struct Model {
    /// The architecture.
    pub config: ModelConfig,
    /// Parameters by Hugging Face tensor name (sorted).
    pub params: BTreeMap<String, Var>,
    cos: Tensor,
    sin: Tensor,
    mask: Tensor,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("config", &self.config)
            .field("tensors", &self.params.len())
            .finish()
    }
}

/// Seeded values of one tensor: N(0, std) for matrices, ones for norms. Tensor `index` (its
/// position in the sorted name list) draws from its own ChaCha stream of `seed`, so a tensor's
/// values do not depend on how many tensors come before it in any other order.
pub fn init_values(name: &str, numel: usize, std: f64, seed: u64, index: u64) -> Vec<f32> {
    if is_norm(name) {
        return vec![1.0; numel];
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index);
    // std > 0 and finite is checked by ModelConfig::check before any model is built.
    let normal = Normal::new(0.0f32, std as f32).unwrap_or(Normal::new(0.0, 1.0).unwrap());
    (0..numel).map(|_| normal.sample(&mut rng)).collect()
}

impl Model {
    /// A freshly initialised model (seeded; identical for a seed on every machine).
    pub fn init(config: ModelConfig, seed: u64, device: &Device) -> Result<Self> {
        let mut shapes = tensor_shapes(&config);
        shapes.sort();
        let mut values = BTreeMap::new();
        for (i, (name, shape)) in shapes.into_iter().enumerate() {
            let n = shape.iter().product();
            let v = init_values(&name, n, config.init_std, seed, i as u64);
            values.insert(name, (shape, v));
        }
        Self::from_values(config, values, device)
    }

    /// A model from explicit values; every tensor of the layout must be present with its shape.
    pub fn from_values(config: ModelConfig, mut values: Values, device: &Device) -> Result<Self> {
        let mut params = BTreeMap::new();
        for (name, shape) in tensor_shapes(&config) {
            let (got, v) = values.remove(&name).ok_or_else(|| Error::Checkpoint {
                path: "<values>".into(),
                reason: format!("tensor {name} missing"),
            })?;
            if got != shape || v.len() != shape.iter().product::<usize>() {
                return Err(Error::Checkpoint {
                    path: "<values>".into(),
                    reason: format!("tensor {name}: shape {got:?}, expected {shape:?}"),
                });
            }
            let t = Tensor::from_vec(v, shape, device).ctx(|| format!("tensor {name}"))?;
            params.insert(name, Var::from_tensor(&t).ctx(|| "var".into())?);
        }
        if let Some(extra) = values.keys().next() {
            return Err(Error::Checkpoint {
                path: "<values>".into(),
                reason: format!("tensor {extra} is not part of this architecture"),
            });
        }
        let (cos, sin) = rope_tables(&config, device)?;
        let t = config.seq_len;
        let mask: Vec<f32> = (0..t * t)
            .map(|k| {
                if k % t > k / t {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
            .collect();
        let mask = Tensor::from_vec(mask, (t, t), device).ctx(|| "mask".into())?;
        Ok(Self {
            config,
            params,
            cos,
            sin,
            mask,
        })
    }

    /// Every parameter's values (name → (shape, row-major f32)).
    pub fn values(&self) -> Result<Values> {
        self.params
            .iter()
            .map(|(n, v)| {
                let t = v.as_tensor();
                let vals = t
                    .flatten_all()
                    .and_then(|f| f.to_vec1::<f32>())
                    .ctx(|| format!("reading {n}"))?;
                Ok((n.clone(), (t.dims().to_vec(), vals)))
            })
            .collect()
    }

    fn w(&self, name: &str) -> candle_core::Result<&Tensor> {
        self.params
            .get(name)
            .map(Var::as_tensor)
            .ok_or_else(|| candle_core::Error::Msg(format!("no tensor {name}")))
    }

    /// Mean next-byte cross-entropy (nats) of `inputs` → `targets`, both `(batch, seq)` u32.
    pub fn loss(&self, inputs: &Tensor, targets: &Tensor) -> candle_core::Result<Tensor> {
        let logits = self.forward(inputs)?;
        candle_nn::loss::cross_entropy(&logits, &targets.flatten_all()?)
    }

    /// Logits `(batch * seq, 256)` of a `(batch, seq)` u32 token tensor.
    pub fn forward(&self, tokens: &Tensor) -> candle_core::Result<Tensor> {
        let c = &self.config;
        let (b, t) = tokens.dims2()?;
        if t > c.seq_len {
            candle_core::bail!(
                "sequence of {t} tokens is longer than seq_len {}",
                c.seq_len
            );
        }
        let n = b * t;
        let mut x = self
            .w("model.embed_tokens.weight")?
            .embedding(&tokens.flatten_all()?)?; // (n, d)
        for l in 0..c.layers {
            let p = format!("model.layers.{l}");
            let h = rms_norm(
                &x,
                self.w(&format!("{p}.input_layernorm.weight"))?,
                c.rms_eps,
            )?;
            x = (x + self.attention(&h, &p, b, t)?)?;
            let h = rms_norm(
                &x,
                self.w(&format!("{p}.post_attention_layernorm.weight"))?,
                c.rms_eps,
            )?;
            let m = match c.experts {
                None => swiglu(
                    &h,
                    self.w(&format!("{p}.mlp.gate_proj.weight"))?,
                    self.w(&format!("{p}.mlp.up_proj.weight"))?,
                    self.w(&format!("{p}.mlp.down_proj.weight"))?,
                )?,
                Some(e) => self.moe(&h, &p, e.count, e.top_k)?,
            };
            x = (x + m)?;
        }
        debug_assert_eq!(x.dims2()?.0, n);
        let x = rms_norm(&x, self.w("model.norm.weight")?, c.rms_eps)?;
        linear(&x, self.w("lm_head.weight")?)
    }

    fn attention(&self, h: &Tensor, p: &str, b: usize, t: usize) -> candle_core::Result<Tensor> {
        let c = &self.config;
        let hd = c.head_dim();
        let heads = |w: &str, nh: usize| -> candle_core::Result<Tensor> {
            linear(h, self.w(&format!("{p}.self_attn.{w}.weight"))?)?
                .reshape((b, t, nh, hd))?
                .transpose(1, 2)?
                .contiguous()
        };
        let cos = self.cos.narrow(0, 0, t)?;
        let sin = self.sin.narrow(0, 0, t)?;
        let q = rope(&heads("q_proj", c.heads)?, &cos, &sin)?;
        let k = repeat_kv(
            &rope(&heads("k_proj", c.kv_heads)?, &cos, &sin)?,
            c.heads / c.kv_heads,
        )?;
        let v = repeat_kv(&heads("v_proj", c.kv_heads)?, c.heads / c.kv_heads)?;
        let scale = 1.0 / (hd as f64).sqrt();
        let scores = (q.matmul(&k.t()?.contiguous()?)? * scale)?;
        let mask = self.mask.narrow(0, 0, t)?.narrow(1, 0, t)?;
        let att = softmax_last(&scores.broadcast_add(&mask)?)?;
        let y = att
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b * t, c.hidden))?;
        linear(&y, self.w(&format!("{p}.self_attn.o_proj.weight"))?)
    }

    /// Mixtral-style MoE: softmax router, each token's top-k experts, weights renormalised over
    /// them. Every expert runs on every token (dense compute, the same output as sparse
    /// dispatch; cheap at lab widths); the top-k mask is a constant of the step.
    fn moe(&self, h: &Tensor, p: &str, count: usize, top_k: usize) -> candle_core::Result<Tensor> {
        let logits = linear(h, self.w(&format!("{p}.block_sparse_moe.gate.weight"))?)?;
        let probs = softmax_last(&logits)?;
        let rows = probs.to_vec2::<f32>()?;
        let mut mask = vec![0f32; rows.len() * count];
        for (r, row) in rows.iter().enumerate() {
            let mut idx: Vec<usize> = (0..count).collect();
            // Descending probability; ties go to the lower expert index (stable sort).
            idx.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
            for &e in &idx[..top_k] {
                mask[r * count + e] = 1.0;
            }
        }
        let mask = Tensor::from_vec(mask, (rows.len(), count), h.device())?;
        let kept = (probs * mask)?;
        let weights = kept.broadcast_div(&kept.sum_keepdim(1)?)?;
        let mut out: Option<Tensor> = None;
        for e in 0..count {
            let q = format!("{p}.block_sparse_moe.experts.{e}");
            let y = swiglu(
                h,
                self.w(&format!("{q}.w1.weight"))?,
                self.w(&format!("{q}.w3.weight"))?,
                self.w(&format!("{q}.w2.weight"))?,
            )?;
            let y = y.broadcast_mul(&weights.narrow(1, e, 1)?)?;
            out = Some(match out {
                None => y,
                Some(o) => (o + y)?,
            });
        }
        out.ok_or_else(|| candle_core::Error::Msg("MoE without experts".into()))
    }
}

/// `x W^T` for `x` of shape `(n, in)` and `W` of shape `(out, in)`.
fn linear(x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    x.matmul(&w.t()?)
}

fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
    let inv = (ms + eps)?.sqrt()?.recip()?;
    x.broadcast_mul(&inv)?.broadcast_mul(w)
}

fn softmax_last(x: &Tensor) -> candle_core::Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?;
    let e = x.broadcast_sub(&max)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

fn swiglu(h: &Tensor, gate: &Tensor, up: &Tensor, down: &Tensor) -> candle_core::Result<Tensor> {
    let g = linear(h, gate)?;
    let u = linear(h, up)?;
    linear(&(g.silu()? * u)?, down)
}

/// Rotary embedding (the Llama "rotate half" convention) on `(b, heads, t, hd)`.
fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor> {
    let hd = x.dim(D::Minus1)?;
    let x1 = x.narrow(D::Minus1, 0, hd / 2)?;
    let x2 = x.narrow(D::Minus1, hd / 2, hd / 2)?;
    let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
    x.broadcast_mul(cos)? + rotated.broadcast_mul(sin)?
}

fn repeat_kv(x: &Tensor, rep: usize) -> candle_core::Result<Tensor> {
    if rep == 1 {
        return Ok(x.clone());
    }
    let (b, kv, t, hd) = x.dims4()?;
    x.unsqueeze(2)?
        .broadcast_as((b, kv, rep, t, hd))?
        .contiguous()?
        .reshape((b, kv * rep, t, hd))
}

fn rope_tables(c: &ModelConfig, device: &Device) -> Result<(Tensor, Tensor)> {
    let hd = c.head_dim();
    let half = hd / 2;
    let mut cos = Vec::with_capacity(c.seq_len * hd);
    let mut sin = Vec::with_capacity(c.seq_len * hd);
    for pos in 0..c.seq_len {
        for j in 0..hd {
            let freq = c.rope_theta.powf(-((2 * (j % half)) as f64) / hd as f64);
            let a = pos as f64 * freq;
            cos.push(a.cos() as f32);
            sin.push(a.sin() as f32);
        }
    }
    let mk = |v: Vec<f32>| {
        Tensor::from_vec(v, (c.seq_len, hd), device)
            .and_then(|t| t.to_dtype(DType::F32))
            .ctx(|| "rotary table".into())
    };
    Ok((mk(cos)?, mk(sin)?))
}

/// Token ids of a byte string (the byte-level tokenizer).
pub fn tokens(bytes: &[u8]) -> Vec<u32> {
    bytes.iter().map(|&b| u32::from(b)).collect()
}

const _: () = assert!(VOCAB == 256, "the byte tokenizer has one id per byte value");

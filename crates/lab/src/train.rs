//! The training loop: AdamW (decoupled weight decay on matrices only), linear warm-up then
//! cosine decay (or a constant rate for continued training), global-norm gradient clipping.

use std::time::Instant;

use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};

use crate::config::is_norm;
use crate::data::Batches;
use crate::error::{Context, Error, Result};
use crate::model::Model;
use crate::optim::Optim;

/// Called with (step, model, losses so far) at each snapshot step.
pub type Snapshot<'a> = dyn FnMut(usize, &Model, &[f32]) -> Result<()> + 'a;

/// One step's progress, for a progress bar.
#[derive(Clone, Copy, Debug)]
pub struct Step {
    /// Steps done (1-based).
    pub step: usize,
    /// Steps in the run.
    pub steps: usize,
    /// Training loss of this step (nats per byte).
    pub loss: f32,
    /// Tokens per second so far in this run.
    pub tokens_per_s: f64,
}

/// Train `model` in place for `optim.steps` steps on `batches`. `snapshot(step, model)` is
/// called after each step listed in `snapshots` (1-based; 0 means before the first step).
/// Returns the loss of every step.
pub fn train(
    name: &str,
    model: &Model,
    batches: &mut Batches<'_>,
    optim: &Optim,
    snapshots: &[usize],
    on_step: &mut dyn FnMut(Step),
    snapshot: &mut Snapshot<'_>,
) -> Result<Vec<f32>> {
    let device = model
        .params
        .values()
        .next()
        .map(|v| v.device().clone())
        .unwrap_or(Device::Cpu);
    let ctx = |what: &str, step: usize| format!("{name}: {what} at step {step}");
    let (mut decayed, mut plain) = (Vec::new(), Vec::new());
    for (n, v) in &model.params {
        if is_norm(n) {
            plain.push(v.clone());
        } else {
            decayed.push(v.clone());
        }
    }
    let params = |wd: f64| ParamsAdamW {
        lr: optim.lr_at(0),
        beta1: optim.beta1,
        beta2: optim.beta2,
        eps: ADAM_EPS,
        weight_decay: wd,
    };
    let mut opt_w = AdamW::new(decayed, params(optim.weight_decay)).ctx(|| ctx("optimiser", 0))?;
    let mut opt_n = AdamW::new(plain, params(0.0)).ctx(|| ctx("optimiser", 0))?;
    let vars: Vec<_> = model.params.values().cloned().collect();
    let mut losses = Vec::with_capacity(optim.steps);
    if snapshots.contains(&0) {
        snapshot(0, model, &losses)?;
    }
    let start = Instant::now();
    for step in 0..optim.steps {
        let (x, y) = batches.next_batch();
        let shape = (optim.batch, optim.seq_len);
        let x = Tensor::from_vec(x, shape, &device).ctx(|| ctx("batch", step + 1))?;
        let y = Tensor::from_vec(y, shape, &device).ctx(|| ctx("batch", step + 1))?;
        let loss = model.loss(&x, &y).ctx(|| ctx("forward", step + 1))?;
        let value = loss.to_scalar::<f32>().ctx(|| ctx("loss", step + 1))?;
        if !value.is_finite() {
            return Err(Error::Diverged {
                model: name.to_string(),
                step: step + 1,
                loss: value,
            });
        }
        let mut grads = loss.backward().ctx(|| ctx("backward", step + 1))?;
        clip(&mut grads, &vars, optim.clip).ctx(|| ctx("clip", step + 1))?;
        let lr = optim.lr_at(step);
        opt_w.set_learning_rate(lr);
        opt_n.set_learning_rate(lr);
        opt_w.step(&grads).ctx(|| ctx("update", step + 1))?;
        opt_n.step(&grads).ctx(|| ctx("update", step + 1))?;
        losses.push(value);
        let secs = start.elapsed().as_secs_f64().max(1e-9);
        on_step(Step {
            step: step + 1,
            steps: optim.steps,
            loss: value,
            tokens_per_s: ((step + 1) * optim.batch * optim.seq_len) as f64 / secs,
        });
        if snapshots.contains(&(step + 1)) {
            snapshot(step + 1, model, &losses)?;
        }
    }
    Ok(losses)
}

/// AdamW epsilon (the usual 1e-8).
const ADAM_EPS: f64 = 1e-8;

/// Scale every gradient by `min(1, max_norm / ||g||)` (global L2 norm over all parameters,
/// summed in parameter-name order so the result does not depend on hashing).
fn clip(
    grads: &mut candle_core::backprop::GradStore,
    vars: &[candle_core::Var],
    max_norm: f64,
) -> candle_core::Result<()> {
    let mut sq = 0f64;
    for v in vars {
        if let Some(g) = grads.get(v.as_tensor()) {
            sq += f64::from(g.sqr()?.sum_all()?.to_scalar::<f32>()?);
        }
    }
    let norm = sq.sqrt();
    if norm > max_norm && norm.is_finite() {
        let s = max_norm / norm;
        for v in vars {
            if let Some(g) = grads.get(v.as_tensor()) {
                let scaled = (g * s)?;
                grads.insert(v.as_tensor(), scaled);
            }
        }
    }
    Ok(())
}

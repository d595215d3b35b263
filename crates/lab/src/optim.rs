//! Optimiser settings of a training run: AdamW with linear warm-up, then cosine decay or a
//! constant rate (read from lab files and recorded with every checkpoint).

use serde::{Deserialize, Serialize};

/// How the learning rate moves after warm-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// Cosine decay from `lr` to `min_lr` at the last step (training from scratch).
    Cosine,
    /// `lr` after warm-up (continued training, snapshots along the way).
    Constant,
}

/// Optimiser settings of one training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Optim {
    /// Optimiser steps.
    pub steps: usize,
    /// Sequences per step.
    pub batch: usize,
    /// Tokens (bytes) per sequence.
    pub seq_len: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Final learning rate of the cosine schedule.
    pub min_lr: f64,
    /// Linear warm-up steps.
    pub warmup: usize,
    /// Schedule after warm-up.
    pub schedule: Schedule,
    /// AdamW decoupled weight decay (matrices; norms get none).
    pub weight_decay: f64,
    /// AdamW beta1.
    pub beta1: f64,
    /// AdamW beta2.
    pub beta2: f64,
    /// Largest global gradient L2 norm (gradients are scaled down to it).
    pub clip: f64,
}

impl Optim {
    /// Learning rate at `step` (0-based).
    pub fn lr_at(&self, step: usize) -> f64 {
        if step < self.warmup {
            return self.lr * (step + 1) as f64 / self.warmup as f64;
        }
        match self.schedule {
            Schedule::Constant => self.lr,
            Schedule::Cosine => {
                let span = self.steps.saturating_sub(self.warmup).max(1) as f64;
                let done = (step - self.warmup) as f64 / span;
                let cos = 0.5 * (1.0 + (std::f64::consts::PI * done.min(1.0)).cos());
                self.min_lr + (self.lr - self.min_lr) * cos
            }
        }
    }
}

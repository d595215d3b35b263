//! Simulated null curves: independent models whose per-layer std curves follow a random walk
//! around a smooth depth trend, the structure that makes unrelated real curves correlate.
//!
//! For each role of each model, with t = i/(L−1):
//! `sigma(i) = level · exp(s·t + c·t² + w_i)`, where the slope s ~ N(slope, slope_sd²) and the
//! curvature c ~ N(0, curvature_sd²) are drawn per role, and `w` is a Gaussian random walk with
//! steps of standard deviation `step`. Everything is positive, like a std. Two models drawn
//! independently are unrelated by construction, yet share the mean trend `slope` and, as random
//! walks, correlate far more widely than white noise would (Yule 1926; Granger & Newbold 1974).

use std::collections::BTreeMap;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::curves::{Curves, MAX_LAYERS, MIN_LAYERS};
use crate::error::{Error, Result};
use crate::rng::normal;

/// Parameters of the random-walk-plus-trend generator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NullModel {
    /// Layers per model.
    pub layers: usize,
    /// Role keys.
    pub roles: Vec<String>,
    /// Typical std level.
    pub level: f64,
    /// Mean log-slope over depth, shared by all models (the common trend).
    pub slope: f64,
    /// Spread of the log-slope between models and roles.
    pub slope_sd: f64,
    /// Spread of the log-curvature.
    pub curvature_sd: f64,
    /// Standard deviation of a random-walk step (log scale).
    pub step: f64,
}

impl Default for NullModel {
    fn default() -> Self {
        NullModel {
            layers: 24,
            roles: ["attn_q", "attn_k", "attn_v", "attn_o"]
                .map(String::from)
                .to_vec(),
            level: 0.05,
            slope: 0.3,
            slope_sd: 0.2,
            curvature_sd: 0.2,
            step: 0.03,
        }
    }
}

impl NullModel {
    /// Check the parameters.
    pub fn validate(&self) -> Result<()> {
        if !(MIN_LAYERS..=MAX_LAYERS).contains(&self.layers) {
            return Err(Error::invalid(
                "layers",
                self.layers,
                &format!("must lie in {MIN_LAYERS}..={MAX_LAYERS}"),
            ));
        }
        if self.roles.is_empty() {
            return Err(Error::invalid("roles", "[]", "at least one role is needed"));
        }
        for (what, v) in [
            ("level", self.level),
            ("slope_sd", self.slope_sd),
            ("curvature_sd", self.curvature_sd),
            ("step", self.step),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::invalid(what, v, "must be finite and non-negative"));
            }
        }
        if !self.slope.is_finite() || self.level == 0.0 {
            return Err(Error::invalid(
                "slope/level",
                self.slope,
                "must be finite, level > 0",
            ));
        }
        Ok(())
    }

    /// One model's curves.
    pub fn draw(&self, name: &str, rng: &mut impl Rng) -> Result<Curves> {
        self.validate()?;
        let l = self.layers;
        let mut roles = BTreeMap::new();
        for key in &self.roles {
            let s = self.slope + self.slope_sd * normal(rng);
            let c = self.curvature_sd * normal(rng);
            let mut w = 0.0;
            let v: Vec<f64> = (0..l)
                .map(|i| {
                    let t = i as f64 / (l - 1) as f64;
                    w += self.step * normal(rng);
                    self.level * (s * t + c * t * t + w).exp()
                })
                .collect();
            roles.insert(key.clone(), v);
        }
        Curves::new(name, roles)
    }

    /// `n` independent models named `{prefix}{i}`.
    pub fn panel(&self, prefix: &str, n: usize, rng: &mut impl Rng) -> Result<Vec<Curves>> {
        (0..n)
            .map(|i| self.draw(&format!("{prefix}{i}"), rng))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;

    #[test]
    fn draws_are_positive_reproducible_and_validated() {
        let m = NullModel::default();
        let a = m.draw("a", &mut stream(1, 0)).unwrap();
        let b = m.draw("a", &mut stream(1, 0)).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.roles.len(), 4);
        assert!(a
            .roles
            .values()
            .all(|c| c.len() == 24 && c.values.iter().all(|&v| v > 0.0)));
        let bad = NullModel {
            layers: 2,
            ..NullModel::default()
        };
        assert!(bad.draw("x", &mut stream(1, 0)).is_err());
        let bad = NullModel {
            step: f64::NAN,
            ..NullModel::default()
        };
        assert!(bad.validate().is_err());
    }
}

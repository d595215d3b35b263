//! MoE upcycling detection: every expert of a MoE layer tested against the dense MLP of the
//! same layer of a candidate parent with the neuron-matching test (see [`super`]).

use fingerprint::roles::Expert;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::csu::{
    residual_map, subsampling_statement, test_sites, CsuOptions, LayerTest, ResidualInfo,
};
use super::exact::{self, Fisher};
use super::{Error, LayerId, MlpSite, ModelWeights, Result, Skipped, CITATION};

/// Options of the upcycling test.
#[derive(Clone, Debug, PartialEq)]
pub struct UpcycleOptions {
    /// The matching test's options (`pairs` is ignored: layers are paired by index).
    pub csu: CsuOptions,
    /// Family-wise level for flagging an expert as copied (Bonferroni over all expert tests).
    pub alpha: f64,
}

impl Default for UpcycleOptions {
    fn default() -> Self {
        UpcycleOptions {
            csu: CsuOptions::default(),
            alpha: 0.01,
        }
    }
}

/// One expert against the dense MLP.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExpertTest {
    /// The expert.
    pub expert: Expert,
    /// Whether its p-value is below the Bonferroni threshold.
    pub copied: bool,
    /// The matching test (model A is the dense parent, model B the MoE).
    pub test: LayerTest,
}

/// One MoE layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpcycleLayer {
    /// The layer.
    pub layer: LayerId,
    /// Its experts' tests.
    pub experts: Vec<ExpertTest>,
    /// The experts flagged as copied.
    pub copied: Vec<Expert>,
}

/// The upcycling test of a MoE model against a dense candidate parent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpcycleResult {
    /// `upcycle`.
    pub test: String,
    /// The method, in a sentence.
    pub method: String,
    /// Its source.
    pub citation: String,
    /// The MoE model.
    pub moe: String,
    /// The dense candidate parent.
    pub dense: String,
    /// Fisher-combined p-value over every expert test (two-view matching).
    pub p: f64,
    /// log10 of `p`.
    pub log10_p: f64,
    /// The combination behind `p`.
    pub fisher: Fisher,
    /// Family-wise level for the flags.
    pub alpha: f64,
    /// log10 of the per-expert threshold, `alpha / tests`.
    pub log10_threshold: f64,
    /// Per MoE layer.
    pub layers: Vec<UpcycleLayer>,
    /// Experts or layers not tested, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
    /// The neuron subsampling, in words.
    pub subsampling: String,
    /// The residual basis alignment.
    pub residual: ResidualInfo,
    /// The seed.
    pub seed: u64,
}

impl UpcycleResult {
    /// A few lines for a terminal.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "upcycle: {} from {}: log10 p = {:.1} (Fisher over {} expert tests)\n",
            self.moe,
            self.dense,
            self.log10_p,
            self.layers.iter().map(|l| l.experts.len()).sum::<usize>()
        );
        for l in &self.layers {
            let copied: Vec<String> = l.copied.iter().map(|e| e.to_string()).collect();
            s.push_str(&format!(
                "  layer {}: {} of {} experts look copied [{}]\n",
                l.layer,
                l.copied.len(),
                l.experts.len(),
                copied.join(", ")
            ));
        }
        for k in &self.skipped {
            s.push_str(&format!("  skipped {}: {}\n", k.what, k.reason));
        }
        s
    }
}

/// Test every expert of `moe` against the dense MLP of the same layer of `dense`.
pub fn upcycle(
    moe: &ModelWeights,
    dense: &ModelWeights,
    opts: &UpcycleOptions,
) -> Result<UpcycleResult> {
    if opts.alpha.is_nan() || opts.alpha <= 0.0 || opts.alpha >= 1.0 {
        return Err(Error::Invalid {
            what: "alpha".into(),
            reason: format!("{} must lie in (0, 1)", opts.alpha),
        });
    }
    let (sites_m, mut skipped) = moe.mlp_sites();
    let (sites_d, skipped_d) = dense.mlp_sites();
    skipped.extend(skipped_d);
    let experts: Vec<&MlpSite> = sites_m.iter().filter(|s| s.expert.is_some()).collect();
    if experts.is_empty() {
        return Err(Error::NotTestable {
            reason: format!("{} has no MoE experts with consistent shapes", moe.name()),
        });
    }
    let parents: Vec<&MlpSite> = sites_d.iter().filter(|s| s.expert.is_none()).collect();
    let Some(first) = parents.first() else {
        return Err(Error::NotTestable {
            reason: format!("{} has no dense MLP blocks", dense.name()),
        });
    };
    if first.hidden != experts[0].hidden {
        return Err(Error::NotTestable {
            reason: format!(
                "hidden sizes differ ({} has {}, {} has {})",
                dense.name(),
                first.hidden,
                moe.name(),
                experts[0].hidden
            ),
        });
    }
    let (map, residual) = residual_map(dense, moe, first.hidden, &opts.csu)?;
    let mut jobs: Vec<(usize, &MlpSite, &MlpSite)> = Vec::new();
    for e in &experts {
        match parents.iter().find(|p| p.layer == e.layer) {
            Some(p) => jobs.push((jobs.len(), p, e)),
            None => skipped.push(Skipped {
                what: format!(
                    "layer {} expert {}",
                    e.layer,
                    e.expert.map(|x| x.to_string()).unwrap_or_default()
                ),
                reason: format!("{} has no dense MLP at this layer", dense.name()),
            }),
        }
    }
    let outcomes: Vec<_> = jobs
        .par_iter()
        .map(|&(i, p, e)| test_sites(dense, p, moe, e, map.as_ref(), &opts.csu, i as u64))
        .collect();
    let mut tests = Vec::new();
    for o in outcomes {
        match o? {
            Ok(t) => tests.push(t),
            Err(s) => skipped.push(s),
        }
    }
    let ln: Vec<f64> = tests
        .iter()
        .map(|t| t.log10_p_randomized * std::f64::consts::LN_10)
        .collect();
    let fisher = exact::fisher(&ln).ok_or_else(|| Error::NotTestable {
        reason: "no expert could be tested".into(),
    })?;
    let log10_threshold = (opts.alpha / tests.len() as f64).log10();
    let mut layers: Vec<UpcycleLayer> = Vec::new();
    for t in tests {
        let Some(expert) = t.expert_b else { continue };
        let copied = t.log10_p <= log10_threshold;
        let entry = ExpertTest {
            expert,
            copied,
            test: t,
        };
        match layers.iter_mut().find(|l| l.layer == entry.test.layer_b) {
            Some(l) => l.experts.push(entry),
            None => layers.push(UpcycleLayer {
                layer: entry.test.layer_b,
                experts: vec![entry],
                copied: Vec::new(),
            }),
        }
    }
    for l in &mut layers {
        l.copied = l
            .experts
            .iter()
            .filter(|e| e.copied)
            .map(|e| e.expert)
            .collect();
    }
    Ok(UpcycleResult {
        test: "upcycle".into(),
        method: format!(
            "each expert's MLP matched against the dense parent's MLP of the same layer: {}",
            super::csu::METHOD
        ),
        citation: format!(
            "{CITATION} Upcycling: A. Komatsuzaki et al., Sparse Upcycling: Training \
             Mixture-of-Experts from Dense Checkpoints, ICLR 2023."
        ),
        moe: moe.name().into(),
        dense: dense.name().into(),
        p: fisher.p,
        log10_p: fisher.log10_p,
        fisher,
        alpha: opts.alpha,
        log10_threshold,
        layers,
        skipped,
        subsampling: subsampling_statement(&opts.csu),
        residual,
        seed: opts.csu.seed,
    })
}

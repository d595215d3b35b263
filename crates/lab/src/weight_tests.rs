//! Weight-level tests of the lab's checkpoints (`nullprint trace`), next to the fingerprints:
//! every pair of one seed family (same recipe, no shared weights: the null, so the size of
//! `trace`'s null on same-recipe models is measured) and every derived snapshot against its
//! base (the power). Written to `BASELINES/trace.json`; reading it needs no training backend.
//!
//! Plain and grown models are tested with `csu` (neuron matching against random rotations of
//! one residual basis; a grown model's layers are paired by depth position, so the layers past
//! the insertion are compared with shifted ones, as a user who did not know would); upcycled
//! MoE snapshots with `upcycle` (each expert against the base's dense MLP of its layer).

use serde::{Deserialize, Serialize};

use crate::spec::Kind;

/// The file in the baselines directory.
pub const TRACE_FILE: &str = "trace.json";
/// Its schema tag.
pub const TRACE_SCHEMA: &str = "nullprint-lab-trace/1";
/// Seed of every test (unit samples, rotations, randomized p-values); each test also mixes
/// in a hash of its own weights, so pairs do not share streams.
pub const TRACE_SEED: u64 = 20_250_704;

/// The weight-level tests of one lab.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WeightTests {
    /// [`TRACE_SCHEMA`].
    pub schema: String,
    /// The lab's name.
    pub lab: String,
    /// [`TRACE_SEED`].
    pub seed: u64,
    /// Rotation-null draws per layer pair.
    pub null_draws: usize,
    /// Every test.
    pub tests: Vec<WeightTest>,
}

/// One test of two checkpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WeightTest {
    /// First model (the base, for a derived snapshot).
    pub a: String,
    /// Second model.
    pub b: String,
    /// SHA-256 of each one's weights (a test is redone when either changes).
    pub sha256: [String; 2],
    /// The family of `b`.
    pub family: String,
    /// The kind of that family: a seed family (the null) or `continued` (derived).
    pub kind: Kind,
    /// `csu` or `upcycle`.
    pub test: String,
    /// log10 of the combined p-value (rotation null for `csu`; Fisher over experts for
    /// `upcycle`); `None` when the pair is not testable (`verdict` says why).
    pub log10_p: Option<f64>,
    /// log10 p of the same-index (unpermuted copy) test, `csu` of equal widths only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_log10_p: Option<f64>,
    /// Layer pairs (or expert tests) combined.
    pub tests_combined: usize,
    /// The test's verdict sentence, or why the pair could not be tested.
    pub verdict: String,
}

impl WeightTests {
    /// Read `trace.json`; `None` when the file is absent.
    pub fn load(dir: &std::path::Path) -> crate::Result<Option<Self>> {
        let path = dir.join(TRACE_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(crate::error::io(&path)(e)),
        };
        let t: WeightTests =
            serde_json::from_slice(&bytes).map_err(|e| crate::Error::Checkpoint {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        if t.schema != TRACE_SCHEMA {
            return Err(crate::Error::Checkpoint {
                path,
                reason: format!("schema {:?}, expected {TRACE_SCHEMA:?}", t.schema),
            });
        }
        if let Some(bad) = t
            .tests
            .iter()
            .find(|x| x.log10_p.is_some_and(|l| l.is_nan() || l > 0.0))
        {
            return Err(crate::Error::Checkpoint {
                path,
                reason: format!(
                    "{} vs {}: log10_p {:?} is not a log p-value",
                    bad.a, bad.b, bad.log10_p
                ),
            });
        }
        Ok(Some(t))
    }
}

#[cfg(feature = "train")]
pub use compute::run_tests;

#[cfg(feature = "train")]
mod compute {
    use std::collections::BTreeMap;

    use trace::{CsuOptions, ModelWeights, UpcycleOptions};

    use super::*;
    use crate::checkpoint;
    use crate::error::{io, Error, Result};
    use crate::run::{Observer, Paths};
    use crate::spec::{Derivation, Lab};

    /// The SHA-256 of `model`'s weights, hashed once per run (a model is in many pairs).
    fn sha256(paths: &Paths, model: &str, known: &mut BTreeMap<String, String>) -> Result<String> {
        if let Some(h) = known.get(model) {
            return Ok(h.clone());
        }
        let dir = paths.scratch.join(model);
        let h = checkpoint::weights_sha256(&dir).ok_or_else(|| Error::Checkpoint {
            path: dir.join(checkpoint::WEIGHTS),
            reason: "missing or unreadable: run the lab first".into(),
        })?;
        known.insert(model.to_owned(), h.clone());
        Ok(h)
    }

    fn open(paths: &Paths, model: &str) -> Result<ModelWeights> {
        let dir = paths.scratch.join(model);
        ModelWeights::open(&dir.to_string_lossy()).map_err(|e| Error::Trace {
            what: dir.display().to_string(),
            source: Box::new(e),
        })
    }

    /// Run every weight-level test whose result is missing from `BASELINES/trace.json` (or
    /// whose weights changed; all with `refresh`), and write the file. Returns the tests run.
    pub fn run_tests(
        lab: &Lab,
        paths: &Paths,
        refresh: bool,
        obs: &mut dyn Observer,
    ) -> Result<usize> {
        let name = &lab.spec.name;
        let csu_opts = CsuOptions {
            seed: TRACE_SEED,
            ..Default::default()
        };
        // Earlier results are reused only when they were computed the same way.
        let old = if refresh {
            None
        } else {
            WeightTests::load(&paths.baselines)?
                .filter(|o| o.seed == TRACE_SEED && o.null_draws == csu_opts.null_draws)
        };
        // (a, b, family, kind, derivation)
        let mut plan: Vec<(String, String, String, Kind, Option<Derivation>)> = Vec::new();
        let mut families: Vec<&str> = Vec::new();
        for j in &lab.scratch {
            if !families.contains(&j.family.as_str()) {
                families.push(&j.family);
            }
        }
        for fam in families {
            let members: Vec<_> = lab.scratch.iter().filter(|j| j.family == fam).collect();
            for (i, x) in members.iter().enumerate() {
                for y in &members[i + 1..] {
                    plan.push((x.name.clone(), y.name.clone(), fam.into(), x.kind, None));
                }
            }
        }
        for d in &lab.derived {
            for (snap, _, _) in &d.snapshots {
                plan.push((
                    d.base.clone(),
                    snap.clone(),
                    d.family.clone(),
                    Kind::Continued,
                    Some(d.derivation),
                ));
            }
        }
        let mut tests = Vec::with_capacity(plan.len());
        let mut ran = 0;
        let mut hashes = BTreeMap::new();
        for (a, b, family, kind, derivation) in plan {
            let sha256 = [
                sha256(paths, &a, &mut hashes)?,
                sha256(paths, &b, &mut hashes)?,
            ];
            let test = match derivation {
                Some(Derivation::Upcycle) => "upcycle",
                _ => "csu",
            };
            if let Some(t) = old.as_ref().and_then(|o| {
                o.tests
                    .iter()
                    .find(|t| t.a == a && t.b == b && t.sha256 == sha256 && t.test == test)
            }) {
                tests.push(t.clone());
                continue;
            }
            // Only now, for a test that runs: the weights themselves.
            let (wa, wb) = (open(paths, &a)?, open(paths, &b)?);
            let mut t = WeightTest {
                a: a.clone(),
                b: b.clone(),
                sha256,
                family,
                kind,
                test: test.into(),
                log10_p: None,
                identity_log10_p: None,
                tests_combined: 0,
                verdict: String::new(),
            };
            // A pair the test cannot compare is recorded as such; any other error stops.
            let outcome = if test == "upcycle" {
                trace::upcycle(
                    &wb,
                    &wa,
                    &UpcycleOptions {
                        csu: csu_opts.clone(),
                        ..Default::default()
                    },
                )
                .map(|r| {
                    t.log10_p = Some(r.log10_p);
                    t.tests_combined = r.layers.iter().map(|l| l.experts.len()).sum();
                    t.verdict = format!(
                        "{} of {} experts look copied (family-wise α = {})",
                        r.layers.iter().map(|l| l.copied.len()).sum::<usize>(),
                        t.tests_combined,
                        r.alpha
                    );
                })
            } else {
                trace::csu(&wa, &wb, &csu_opts).map(|r| {
                    t.log10_p = Some(r.log10_p);
                    t.identity_log10_p = r.identity.as_ref().map(|f| f.log10_p);
                    t.tests_combined = r.layers.len();
                    t.verdict = r.verdict;
                })
            };
            match outcome {
                Ok(()) => {}
                Err(trace::Error::NotTestable { reason }) => {
                    t.verdict = format!("not testable: {reason}")
                }
                Err(e) => {
                    return Err(Error::Trace {
                        what: format!("{a} vs {b}"),
                        source: Box::new(e),
                    })
                }
            }
            obs.line(&format!(
                "{a} vs {b}\t{}\t{}",
                t.test,
                t.log10_p
                    .map_or_else(|| t.verdict.clone(), |l| format!("log10 p {l:.2}"))
            ));
            tests.push(t);
            ran += 1;
        }
        let file = WeightTests {
            schema: TRACE_SCHEMA.into(),
            lab: name.clone(),
            seed: TRACE_SEED,
            null_draws: csu_opts.null_draws,
            tests,
        };
        let path = paths.baselines.join(TRACE_FILE);
        let mut json = serde_json::to_vec_pretty(&file).unwrap_or_default();
        json.push(b'\n');
        output::write_atomic(&path, &json, true).map_err(io(&path))?;
        Ok(ran)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(log10_p: Option<f64>) -> WeightTest {
        WeightTest {
            a: "a".into(),
            b: "b".into(),
            sha256: ["0".repeat(64), "1".repeat(64)],
            family: "f".into(),
            kind: Kind::Independent,
            test: "csu".into(),
            log10_p,
            identity_log10_p: None,
            tests_combined: 3,
            verdict: "no evidence of relation".into(),
        }
    }

    fn write(dir: &std::path::Path, t: &WeightTests) {
        std::fs::write(dir.join(TRACE_FILE), serde_json::to_vec(t).unwrap()).unwrap();
    }

    #[test]
    fn the_file_is_read_back_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        assert!(WeightTests::load(dir.path()).unwrap().is_none());
        let good = WeightTests {
            schema: TRACE_SCHEMA.into(),
            lab: "x".into(),
            seed: TRACE_SEED,
            null_draws: 12,
            tests: vec![test(Some(-0.5)), test(None)],
        };
        write(dir.path(), &good);
        assert_eq!(WeightTests::load(dir.path()).unwrap(), Some(good.clone()));
        for (bad, want) in [
            (
                WeightTests {
                    schema: "other/1".into(),
                    ..good.clone()
                },
                "schema",
            ),
            (
                WeightTests {
                    tests: vec![test(Some(0.5))],
                    ..good.clone()
                },
                "not a log p-value",
            ),
        ] {
            write(dir.path(), &bad);
            let e = WeightTests::load(dir.path()).unwrap_err().to_string();
            assert!(e.contains(want) && e.contains(TRACE_FILE), "{e}");
        }
        std::fs::write(dir.path().join(TRACE_FILE), b"{ truncated").unwrap();
        let e = WeightTests::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains(TRACE_FILE), "{e}");
    }
}

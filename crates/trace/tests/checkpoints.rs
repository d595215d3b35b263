/*!
Weight-level trace tests ([`trace`]) on real checkpoints and on models derived from them
in the tests.

* Null calibration: the matching test's calibrated p-values must be uniform (Kolmogorov–Smirnov) for
  randomly initialized models of real shapes over many seeds, for real models against random
  ones, and for unrelated real models (AntiBERTy vs Whisper-base, the one unrelated pair here
  with equal hidden size and MLP width; and, with their residual coordinates truncated to a
  common size, the gated SmolLM2, Gemma-3 and Qwen2.5 MLPs: under independence any fixed subset
  of coordinates is as good as any other).
* Power: models derived from real weights (fine-tune noise, permuted neurons, permuted and
  sign-flipped residual coordinates, int8 quantization, inserted/duplicated/dropped layers, MoE
  experts upcycled from a dense MLP) must give log10 p < −100 against the calibrated (rotation)
  null, and the alignment must recover the construction exactly. The calibration of that null
  on unrelated trained models is in `calibration.rs`.

Real models are found under `$NULLPRINT_MODELS` (default `~/.cache/nullprint-models`); a test
whose model is absent prints `SKIPPED` and returns.
*/

use std::collections::BTreeMap;

use fingerprint::roles::{Expert, Role, RoleKey};
use ndarray::{Array2, Axis};
use null::rng;
use null::stats::ks_uniform;
use rand::seq::SliceRandom;
use rand_distr::{Distribution, StandardNormal};
use trace::{CsuOptions, LayerId, ModelWeights, ResidualAlign};

type Mats = BTreeMap<RoleKey, Array2<f32>>;

fn open(test: &str, name: &str, file: &str) -> Option<ModelWeights> {
    let p = testkit::real_model(test, name, file)?;
    Some(ModelWeights::open(p.to_str().unwrap()).unwrap())
}

fn is_mlp(k: &RoleKey) -> bool {
    matches!(k.role, Role::MlpGate | Role::MlpUp | Role::MlpDown)
}

fn is_embed(k: &RoleKey) -> bool {
    k.role == Role::Embed && k.layer.is_none()
}

/// The MLP matrices (and the token embedding, when `embed`) of a model, in memory.
fn mlps(w: &ModelWeights, embed: bool) -> Mats {
    w.materialize(|k| k.expert.is_none() && (is_mlp(k) || (embed && is_embed(k))))
        .unwrap()
}

fn key(
    stack: Option<fingerprint::roles::Stack>,
    layer: u32,
    role: Role,
    expert: Option<Expert>,
) -> RoleKey {
    RoleKey {
        stack,
        layer: Some(layer),
        role,
        expert,
    }
}

fn gaussian(rows: usize, cols: usize, std: f32, r: &mut impl rand::Rng) -> Array2<f32> {
    Array2::from_shape_simple_fn((rows, cols), || {
        let z: f32 = StandardNormal.sample(r);
        z * std
    })
}

/// A randomly initialized MLP stack: N(0, 1/in) weights.
fn random_model(layers: u32, width: usize, hidden: usize, gated: bool, seed: u64) -> Mats {
    let mut r = rng::stream(seed, 0);
    let mut m = Mats::new();
    for l in 0..layers {
        let s_in = (1.0 / hidden as f32).sqrt();
        if gated {
            m.insert(
                key(None, l, Role::MlpGate, None),
                gaussian(width, hidden, s_in, &mut r),
            );
        }
        m.insert(
            key(None, l, Role::MlpUp, None),
            gaussian(width, hidden, s_in, &mut r),
        );
        m.insert(
            key(None, l, Role::MlpDown, None),
            gaussian(hidden, width, (1.0 / width as f32).sqrt(), &mut r),
        );
    }
    m
}

/// Every matrix plus Gaussian noise of `rel` times its own std (a stand-in for fine-tuning).
fn add_noise(m: &mut Mats, rel: f32, seed: u64) {
    for (i, a) in m.values_mut().enumerate() {
        let n = a.len() as f32;
        let mean = a.sum() / n;
        let std = (a.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n).sqrt();
        let mut r = rng::stream(seed, 1000 + i as u64);
        a.mapv_inplace(|v| {
            let z: f32 = StandardNormal.sample(&mut r);
            v + rel * std * z
        });
    }
}

/// Permute each layer's (and expert's) hidden units: rows of gate/up, columns of down.
fn permute_units(m: &mut Mats, seed: u64) {
    let sites: Vec<RoleKey> = m
        .keys()
        .filter(|k| k.role == Role::MlpUp)
        .cloned()
        .collect();
    for (i, up) in sites.into_iter().enumerate() {
        let width = m[&up].nrows();
        let mut perm: Vec<usize> = (0..width).collect();
        perm.shuffle(&mut rng::stream(seed, i as u64));
        for role in [Role::MlpGate, Role::MlpUp, Role::MlpDown] {
            let k = RoleKey {
                role: role.clone(),
                ..up.clone()
            };
            if let Some(a) = m.get_mut(&k) {
                let axis = if role == Role::MlpDown {
                    Axis(1)
                } else {
                    Axis(0)
                };
                *a = a.select(axis, &perm);
            }
        }
    }
}

/// Permute and sign-flip the residual coordinates everywhere (embedding columns, gate/up
/// columns, down rows): a function-preserving edit for LayerNorm/RMSNorm models once the norm
/// parameters are permuted too.
fn permute_residual(m: &mut Mats, seed: u64) {
    let hidden = m
        .iter()
        .find(|(k, _)| k.role == Role::MlpUp)
        .map(|(_, a)| a.ncols())
        .unwrap();
    let mut r = rng::stream(seed, 77);
    let mut perm: Vec<usize> = (0..hidden).collect();
    perm.shuffle(&mut r);
    let sign: Vec<f32> = (0..hidden)
        .map(|_| {
            if rand::Rng::gen_bool(&mut r, 0.5) {
                -1.0
            } else {
                1.0
            }
        })
        .collect();
    for (k, a) in m.iter_mut() {
        let axis = if k.role == Role::MlpDown {
            Axis(0)
        } else {
            Axis(1)
        };
        let mut b = a.select(axis, &perm);
        for (i, mut lane) in b.axis_iter_mut(axis).enumerate() {
            if sign[i] < 0.0 {
                lane.mapv_inplace(|v| -v);
            }
        }
        *a = b;
    }
}

/// Keep only residual coordinates `0..h` (calibration of unrelated models of different hidden
/// size: under independence, any fixed subset of coordinates is as good as any other).
fn truncate_hidden(m: &Mats, h: usize) -> Mats {
    m.iter()
        .filter(|(k, _)| is_mlp(k))
        .map(|(k, a)| {
            let b = if k.role == Role::MlpDown {
                a.slice(ndarray::s![..h, ..]).to_owned()
            } else {
                a.slice(ndarray::s![.., ..h]).to_owned()
            };
            (k.clone(), b)
        })
        .collect()
}

/// Null draws in these tests: enough for the calibrated null to exist and for a copied layer
/// of `m` units to reach `P(Bin(m + s, 1/9) ≥ m) ≈ 9^−m`, cheap enough for CI.
const DRAWS: usize = 8;

fn fast(max_units: usize, seed: u64) -> CsuOptions {
    CsuOptions {
        max_units,
        seed,
        null_draws: DRAWS,
        ..Default::default()
    }
}

/// log10 p-values (randomized, as they enter Fisher) of every layer test.
fn layer_ps(r: &trace::CsuResult) -> Vec<f64> {
    r.layers
        .iter()
        .map(|l| 10f64.powf(l.log10_p_randomized))
        .collect()
}

#[track_caller]
fn assert_uniform(ps: &[f64], what: &str) {
    let ks = ks_uniform(ps).unwrap();
    eprintln!("{what}: n = {}, KS D = {:.3}, p = {:.3}", ks.n, ks.d, ks.p);
    assert!(
        ks.p > 1e-3,
        "{what}: p-values not uniform: KS D = {}, p = {} ({ps:?})",
        ks.d,
        ks.p
    );
}

fn all_pairs(a: &ModelWeights, b: &ModelWeights) -> Vec<(LayerId, LayerId)> {
    let la: Vec<LayerId> = a.mlp_sites().0.iter().map(|s| s.layer).collect();
    let lb: Vec<LayerId> = b.mlp_sites().0.iter().map(|s| s.layer).collect();
    la.iter()
        .flat_map(|x| lb.iter().map(move |y| (*x, *y)))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Null calibration
// ---------------------------------------------------------------------------------------

/// Independently initialized models of real shapes (SmolLM2's gated 1536×576 MLP, MiniLM's
/// ungated 1536×384): the per-layer, combined and unpermuted-copy p-values are uniform.
#[test]
fn random_init_pairs_give_uniform_p() {
    for (name, width, hidden, gated) in [
        ("smollm2-shape", 1536, 576, true),
        ("minilm-shape", 1536, 384, false),
    ] {
        let (mut layer, mut combined, mut identity) = (Vec::new(), Vec::new(), Vec::new());
        for seed in 0..30u64 {
            let a = ModelWeights::in_memory("a", random_model(2, width, hidden, gated, 2 * seed));
            let b =
                ModelWeights::in_memory("b", random_model(2, width, hidden, gated, 2 * seed + 1));
            let r = trace::csu(&a, &b, &fast(128, seed)).unwrap();
            assert_eq!(r.layers.len(), 2);
            assert_eq!(r.residual.method, "shared");
            layer.extend(layer_ps(&r));
            combined.push(r.p);
            identity.extend(
                r.layers
                    .iter()
                    .map(|l| 10f64.powf(l.identity.as_ref().unwrap().log10_p_randomized)),
            );
        }
        assert_uniform(&layer, &format!("{name}: per-layer p"));
        assert_uniform(&combined, &format!("{name}: Fisher p"));
        assert_uniform(&identity, &format!("{name}: unpermuted-copy p"));
    }
}

/// A real model against random models of its shapes is a null pair by construction
/// (SmolLM2's first 10 layers, paired by depth with 10 random layers, two seeds).
#[test]
fn real_against_random_gives_uniform_p() {
    let Some(sm) = open("real_against_random", "smollm2-135m-instruct", "model.gguf") else {
        return;
    };
    let a = ModelWeights::in_memory("smollm2", mlps(&sm, false));
    let mut ps = Vec::new();
    for seed in 0..2 {
        let b = ModelWeights::in_memory("random", random_model(10, 1536, 576, true, 100 + seed));
        let r = trace::csu(&a, &b, &fast(128, seed)).unwrap();
        assert_eq!(r.layers.len(), 10);
        ps.extend(layer_ps(&r));
        ps.extend(
            r.layers
                .iter()
                .map(|l| 10f64.powf(l.identity.as_ref().unwrap().log10_p_randomized)),
        );
    }
    assert_uniform(&ps, "smollm2 vs random init (two-view and same-index)");
}

/// AntiBERTy and Whisper-base are unrelated and share hidden size 512 and MLP width 2048 (up
/// rows vs down columns): all 8 × 12 layer pairs.
#[test]
fn unrelated_real_pair_gives_uniform_p() {
    let (Some(ab), Some(wh)) = (
        open("unrelated_real_pair", "antiberty", "pytorch_model.bin"),
        open("unrelated_real_pair", "whisper-base", "model.bin"),
    ) else {
        return;
    };
    let a = ModelWeights::in_memory("antiberty", mlps(&ab, false));
    let b = ModelWeights::in_memory("whisper-base", mlps(&wh, false));
    let r = trace::csu(
        &a,
        &b,
        &CsuOptions {
            pairs: Some(all_pairs(&a, &b)),
            ..fast(256, 1)
        },
    )
    .unwrap();
    assert_eq!(r.layers.len(), 96);
    assert_eq!(
        r.layers[0].views,
        ["mlp_up rows".to_string(), "mlp_down columns".to_string()]
    );
    assert_uniform(&layer_ps(&r), "antiberty vs whisper-base, 96 layer pairs");
    // The default pairing (depth position, 8 disjoint pairs) through the files directly.
    let d = trace::csu(&ab, &wh, &fast(256, 2)).unwrap();
    assert_eq!(d.layers.len(), 8);
    assert!(d.notes.iter().any(|n| n.contains("depth position")));
    assert!(d.log10_p > -3.0, "unrelated pair: log10 p = {}", d.log10_p);
    eprintln!("{}", d.summary());
}

/// Trained gated MLPs of unrelated models (SmolLM2, Gemma-3, Qwen2.5-Coder), residual
/// coordinates truncated to the smallest hidden size (576), gate rows vs up rows.
#[test]
fn unrelated_gated_models_give_uniform_p() {
    let mut ms = Vec::new();
    for (name, file) in [
        ("smollm2-135m-instruct", "model.gguf"),
        ("gemma3-270m", "model.gguf"),
        ("qwen2.5-coder-0.5b-instruct-awq", "model.gguf"),
    ] {
        let Some(w) = open("unrelated_gated_models", name, file) else {
            return;
        };
        ms.push(ModelWeights::in_memory(
            name,
            truncate_hidden(&mlps(&w, false), 576),
        ));
    }
    let mut ps = Vec::new();
    for (i, j) in [(0, 1), (0, 2), (1, 2)] {
        let r = trace::csu(&ms[i], &ms[j], &fast(256, 3)).unwrap();
        assert_eq!(
            r.layers[0].views,
            ["mlp_gate rows".to_string(), "mlp_up rows".to_string()]
        );
        eprintln!("{} vs {}: log10 p = {:.2}", r.model_a, r.model_b, r.log10_p);
        ps.extend(layer_ps(&r));
    }
    assert_eq!(ps.len(), 18 + 24 + 18);
    assert_uniform(&ps, "unrelated gated MLPs");
}

/// MiniLM (384) and SmolLM2 (576) share the MLP width 1536 but not the hidden size: refused.
#[test]
fn different_hidden_sizes_are_not_testable() {
    let (Some(a), Some(b)) = (
        open(
            "different_hidden_sizes",
            "all-minilm-l6-v2",
            "model.safetensors",
        ),
        open(
            "different_hidden_sizes",
            "smollm2-135m-instruct",
            "model.gguf",
        ),
    ) else {
        return;
    };
    match trace::csu(&a, &b, &CsuOptions::default()) {
        Err(trace::Error::NotTestable { reason }) => {
            assert!(reason.contains("384") && reason.contains("576"), "{reason}")
        }
        other => panic!("expected NotTestable, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Power on derived models
// ---------------------------------------------------------------------------------------

/// SmolLM2 (GGUF Q4_1, dequantized) against a copy with 20% noise on every MLP weight and
/// every layer's neurons permuted: the two-view test finds it, the same-index test must not.
/// Without the permutation the same-index test finds it too.
#[test]
fn permuted_noisy_copy_is_detected() {
    let Some(sm) = open("permuted_noisy_copy", "smollm2-135m-instruct", "model.gguf") else {
        return;
    };
    let base = mlps(&sm, false);
    let mut noisy = base.clone();
    add_noise(&mut noisy, 0.2, 9);
    let mut permuted = noisy.clone();
    permute_units(&mut permuted, 10);
    let a = ModelWeights::in_memory("smollm2", base);
    let b = ModelWeights::in_memory("smollm2-noisy-permuted", permuted);
    let r = trace::csu(&a, &b, &fast(256, 4)).unwrap();
    eprintln!("{}", r.summary());
    assert!(r.log10_p < -100.0, "log10 p = {}", r.log10_p);
    assert!(r.verdict.starts_with("shared directions"), "{}", r.verdict);
    assert!(r
        .layers
        .iter()
        .all(|l| l.log10_p < -6.0 && l.coincidences > 200));
    let id = r.identity.as_ref().unwrap();
    assert!(
        id.log10_p > -3.0,
        "permuted copy: same-index log10 p = {}",
        id.log10_p
    );
    let c = ModelWeights::in_memory("smollm2-noisy", noisy);
    let r = trace::csu(&a, &c, &fast(256, 4)).unwrap();
    assert!(r.log10_p < -100.0 && r.identity.unwrap().log10_p < -6.0);
    let json = serde_json::to_value(&r.layers[0]).unwrap();
    for k in [
        "p",
        "log10_p",
        "coincidences",
        "units",
        "candidates",
        "identity",
        "spearman",
    ] {
        assert!(json.get(k).is_some(), "{k}");
    }
}

/// MiniLM with its residual coordinates permuted and sign-flipped, its neurons permuted and
/// noise added: aligned through the token embeddings, still found; without the alignment the
/// unit vectors no longer correspond and the test (rightly) finds nothing.
#[test]
fn residual_permutation_is_undone_by_the_embeddings() {
    let Some(ml) = open(
        "residual_permutation",
        "all-minilm-l6-v2",
        "model.safetensors",
    ) else {
        return;
    };
    let base = mlps(&ml, true);
    let mut d = base.clone();
    permute_residual(&mut d, 11);
    permute_units(&mut d, 12);
    add_noise(&mut d, 0.1, 13);
    let a = ModelWeights::in_memory("minilm", base);
    let b = ModelWeights::in_memory("minilm-derived", d);
    let r = trace::csu(&a, &b, &fast(512, 5)).unwrap();
    eprintln!("{}", r.summary());
    assert_eq!(r.residual.method, "embedding");
    assert!(r.residual.mean_abs_cos.unwrap() > 0.9);
    assert!(r.residual.identity_fraction.unwrap() < 0.05);
    assert!(r.log10_p < -100.0, "log10 p = {}", r.log10_p);
    assert!(r.verdict.starts_with("shared directions"), "{}", r.verdict);
    let off = trace::csu(
        &a,
        &b,
        &CsuOptions {
            residual: ResidualAlign::None,
            ..fast(512, 5)
        },
    )
    .unwrap();
    assert!(off.log10_p > -3.0, "unaligned: log10 p = {}", off.log10_p);
}

/// A real derived pair across formats: MiniLM F32 safetensors vs its int8 ONNX export
/// (MatMul weights stored [in, out], dequantized and transposed by the loader).
#[test]
fn int8_onnx_export_is_a_copy() {
    let (Some(a), Some(b)) = (
        open("int8_onnx_export", "all-minilm-l6-v2", "model.safetensors"),
        open("int8_onnx_export", "all-minilm-l6-v2-int8", "model.onnx"),
    ) else {
        return;
    };
    let r = trace::csu(&a, &b, &fast(512, 6)).unwrap();
    eprintln!("{}", r.summary());
    assert_eq!(r.layers.len(), 6);
    assert_eq!(r.residual.identity_fraction, Some(1.0));
    assert!(r.log10_p < -100.0 && r.identity.as_ref().unwrap().log10_p < -6.0);
    assert!(
        r.verdict.starts_with("shared units, unpermuted"),
        "{}",
        r.verdict
    );
    assert!(r
        .layers
        .iter()
        .all(|l| l.coincidences == 512 && l.identity.as_ref().unwrap().matches == 512));
}

/// Model B built from A's layers: `src[j]` is the A layer B layer j copies (with its neurons
/// permuted and 10% noise), `None` a freshly initialized layer. The embedding is kept.
fn restack(a: &Mats, src: &[Option<u32>], seed: u64) -> Mats {
    let (width, hidden) = {
        let up = a.iter().find(|(k, _)| k.role == Role::MlpUp).unwrap().1;
        (up.nrows(), up.ncols())
    };
    let gated = a.keys().any(|k| k.role == Role::MlpGate);
    let mut out: Mats = a
        .iter()
        .filter(|(k, _)| is_embed(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (j, s) in src.iter().enumerate() {
        let mut layer: Mats = match s {
            Some(i) => a
                .iter()
                .filter(|(k, _)| k.layer == Some(*i) && is_mlp(k))
                .map(|(k, v)| {
                    (
                        RoleKey {
                            layer: Some(j as u32),
                            ..k.clone()
                        },
                        v.clone(),
                    )
                })
                .collect(),
            None => random_model(1, width, hidden, gated, seed + j as u64)
                .into_iter()
                .map(|(k, v)| {
                    (
                        RoleKey {
                            layer: Some(j as u32),
                            ..k
                        },
                        v,
                    )
                })
                .collect(),
        };
        permute_units(&mut layer, seed + 100 + j as u64);
        add_noise(&mut layer, 0.1, seed + 200 + j as u64);
        out.extend(layer);
    }
    out
}

/// Default alignment, verified with the matching test at this file's null draws.
fn verified() -> trace::AlignOptions {
    trace::AlignOptions {
        verify: Some(fast(256, 0)),
        ..Default::default()
    }
}

fn mapped(r: &trace::AlignResult) -> Vec<Option<u32>> {
    r.mapping.iter().map(|m| m.a.map(|l| l.layer)).collect()
}

/// SmolLM2 with layer 3 duplicated, a new layer inserted after layer 5 and layer 10 dropped
/// (every copied layer with permuted neurons and noise): recovered exactly, and the mapped
/// pairs pass the matching test at p < 1e-6.
#[test]
fn inserted_duplicated_and_dropped_layers_are_recovered() {
    let Some(sm) = open("inserted_layers", "smollm2-135m-instruct", "model.gguf") else {
        return;
    };
    let base = mlps(&sm, true);
    let mut src: Vec<Option<u32>> = vec![
        Some(0),
        Some(1),
        Some(2),
        Some(3),
        Some(3),
        Some(4),
        Some(5),
        None,
    ];
    src.extend((6..30).filter(|&i| i != 10).map(Some));
    let b = ModelWeights::in_memory("smollm2-restacked", restack(&base, &src, 20));
    let a = ModelWeights::in_memory("smollm2", base);
    let r = trace::align(&a, &b, &verified()).unwrap();
    eprintln!("{}", r.summary());
    assert_eq!(mapped(&r), src);
    assert_eq!(r.inserted, vec![LayerId::new(7)]);
    assert_eq!(r.duplicated, vec![LayerId::new(3)]);
    assert_eq!(r.dropped, vec![LayerId::new(10)]);
    // The shuffle null can reach 1/1000; the 30 circular shifts only 1/31.
    assert!(
        r.nulls[0].p < 0.01 && r.nulls[1].exceed == 0,
        "{:?}",
        r.nulls
    );
    assert!(r.log10_p < -100.0, "verification log10 p = {}", r.log10_p);
    assert_eq!(r.verification.as_ref().unwrap().layers.len(), 30);
}

/// MiniLM restacked (duplicate, insert, drop) with its residual stream permuted as well.
#[test]
fn restacked_minilm_with_permuted_residual_is_recovered() {
    let Some(ml) = open("restacked_minilm", "all-minilm-l6-v2", "model.safetensors") else {
        return;
    };
    let base = mlps(&ml, true);
    let src = vec![Some(0), Some(1), Some(1), None, Some(2), Some(3), Some(5)];
    let mut d = restack(&base, &src, 30);
    permute_residual(&mut d, 31);
    let a = ModelWeights::in_memory("minilm", base);
    let b = ModelWeights::in_memory("minilm-restacked", d);
    let r = trace::align(&a, &b, &verified()).unwrap();
    eprintln!("{}", r.summary());
    assert_eq!(mapped(&r), src);
    assert_eq!(r.dropped, vec![LayerId::new(4)]);
    assert!(r.log10_p < -100.0, "verification log10 p = {}", r.log10_p);
}

/// Depth alignment from fingerprints alone: SmolLM2's fingerprint restacked row by row.
#[test]
fn fingerprint_alignment_recovers_a_restacked_model() {
    let Some(path) = testkit::real_model(
        "fingerprint_alignment",
        "smollm2-135m-instruct",
        "model.gguf",
    ) else {
        return;
    };
    let src = fingerprint::source::resolve(path.to_str().unwrap()).unwrap();
    let fa = fingerprint::engine::fingerprint(&src, &Default::default()).unwrap();
    let plan: Vec<Option<u32>> = [0, 1, 2, 2, 3, 4, 5]
        .into_iter()
        .map(Some)
        .chain([None])
        .chain((6..30).filter(|&i| i != 20).map(Some))
        .collect();
    let mut fb = fa.clone();
    fb.model.name = "restacked".into();
    fb.tensors = fa
        .tensors
        .iter()
        .filter(|r| r.layer.is_none())
        .cloned()
        .collect();
    for (j, s) in plan.iter().enumerate() {
        let from = s.unwrap_or(15);
        for row in fa.tensors.iter().filter(|r| r.layer == Some(from)) {
            let mut row = row.clone();
            row.layer = Some(j as u32);
            if s.is_none() {
                row.stats.std = row.stats.std.map(|v| v * 1.7);
            }
            fb.tensors.push(row);
        }
    }
    let r = trace::align_fingerprints(&fa, &fb, &trace::AlignOptions::default()).unwrap();
    eprintln!("{}", r.summary());
    assert_eq!(mapped(&r), plan);
    assert_eq!(r.dropped, vec![LayerId::new(20)]);
    assert!(r.nulls[0].p < 0.01);
    assert!(r.verification.is_none() && !r.notes.is_empty());
}

/// A MoE upcycled from four SmolLM2 layers: experts 0–3 are the dense MLP with noise and
/// permuted neurons, expert 4 is freshly initialized, expert 5 is a permuted quarter of the
/// dense units (a fine-grained expert), and the shared expert is a noisy copy.
#[test]
fn upcycled_experts_are_found() {
    let Some(sm) = open("upcycled_experts", "smollm2-135m-instruct", "model.gguf") else {
        return;
    };
    let all = mlps(&sm, true);
    let dense: Mats = all
        .iter()
        .filter(|(k, _)| k.layer.is_none_or(|l| l < 4))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut moe: Mats = dense
        .iter()
        .filter(|(k, _)| is_embed(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for l in 0..4u32 {
        let layer: Vec<(&RoleKey, &Array2<f32>)> =
            dense.iter().filter(|(k, _)| k.layer == Some(l)).collect();
        let experts = (0..6).map(Expert::Index).chain([Expert::Shared]);
        for e in experts {
            let mut m: Mats = match e {
                Expert::Index(4) => random_model(1, 1536, 576, true, 40 + l as u64)
                    .into_iter()
                    .map(|(k, v)| {
                        (
                            RoleKey {
                                layer: Some(l),
                                ..k
                            },
                            v,
                        )
                    })
                    .collect(),
                _ => layer
                    .iter()
                    .map(|(k, v)| ((*k).clone(), (*v).clone()))
                    .collect(),
            };
            if e == Expert::Index(5) {
                for (k, v) in m.iter_mut() {
                    *v = if k.role == Role::MlpDown {
                        v.slice(ndarray::s![.., 384..768]).to_owned()
                    } else {
                        v.slice(ndarray::s![384..768, ..]).to_owned()
                    };
                }
            }
            let mut m: Mats = m
                .into_iter()
                .map(|(k, v)| {
                    (
                        RoleKey {
                            expert: Some(e),
                            ..k
                        },
                        v,
                    )
                })
                .collect();
            permute_units(
                &mut m,
                50 + l as u64 * 10 + u64::from(matches!(e, Expert::Shared)),
            );
            add_noise(&mut m, 0.1, 60 + l as u64);
            moe.extend(m);
        }
    }
    let moe = ModelWeights::in_memory("smollm2-moe", moe);
    let dense = ModelWeights::in_memory("smollm2-4-layers", dense);
    assert!(moe.has_experts() && !dense.has_experts());
    let opts = trace::UpcycleOptions {
        csu: fast(256, 8),
        ..Default::default()
    };
    let r = trace::upcycle(&moe, &dense, &opts).unwrap();
    eprintln!("{}", r.summary());
    assert!(r.log10_p < -100.0, "log10 p = {}", r.log10_p);
    assert_eq!(r.layers.len(), 4);
    let want = vec![
        Expert::Index(0),
        Expert::Index(1),
        Expert::Index(2),
        Expert::Index(3),
        Expert::Index(5),
        Expert::Shared,
    ];
    for l in &r.layers {
        assert_eq!(l.copied, want, "layer {}", l.layer);
        let fine = l
            .experts
            .iter()
            .find(|e| e.expert == Expert::Index(5))
            .unwrap();
        assert_eq!((fine.test.query.as_str(), fine.test.width_b), ("b", 384));
        assert!(l
            .experts
            .iter()
            .filter(|e| e.copied)
            .all(|e| e.test.log10_p < -6.0));
    }
    // A dense model is not a MoE.
    assert!(matches!(
        trace::upcycle(&dense, &dense, &opts),
        Err(trace::Error::NotTestable { .. })
    ));
}
/// The alignment's default threshold (Gram-signature correlation 0.9) separates copies from
/// other layers of the same model: every other layer stays below it, a layer against itself
/// scores 1.
#[test]
fn different_layers_stay_below_the_alignment_threshold() {
    let min = trace::AlignOptions::default().min_correlation;
    for (name, file) in [
        ("all-minilm-l6-v2", "model.safetensors"),
        ("smollm2-135m-instruct", "model.gguf"),
        ("antiberty", "pytorch_model.bin"),
    ] {
        let Some(w) = open("alignment_threshold", name, file) else {
            continue;
        };
        let a = ModelWeights::in_memory(name, mlps(&w, true));
        let s =
            trace::align::similarity_from_weights(&a, &a, &trace::AlignOptions::default()).unwrap();
        let mut off = f64::NEG_INFINITY;
        for (j, row) in s.values.iter().enumerate() {
            for (i, &v) in row.iter().enumerate() {
                if i == j {
                    assert!(v > 0.999_999, "{name}: layer {i} against itself: {v}");
                } else {
                    off = off.max(v);
                }
            }
        }
        eprintln!("{name}: largest correlation between different layers {off:.3}");
        assert!(off < min, "{name}: layers of one model correlate at {off}");
    }
}

/// Uniformity (KS) of the calibrated p-values at full width: every unrelated gated pair (up to
/// 2048 units matched into 4864) and AntiBERTy vs Whisper-base; prints timings. With the
/// rotation null's draws this takes hours on two cores; the size and tail checks of the crate
/// docs' table are `calibration.rs`'s `calibrate_*` tests.
#[test]
#[ignore]
fn calibration_full_width() {
    let mut ms = Vec::new();
    for (name, file) in [
        ("smollm2-135m-instruct", "model.gguf"),
        ("gemma3-270m", "model.gguf"),
        ("qwen2.5-coder-0.5b-instruct-awq", "model.gguf"),
    ] {
        let Some(w) = open("calibration_full_width", name, file) else {
            return;
        };
        ms.push(ModelWeights::in_memory(
            name,
            truncate_hidden(&mlps(&w, false), 576),
        ));
    }
    let mut ps = Vec::new();
    let (mut k, mut expected) = (0u64, 0.0);
    for (i, j) in [(0, 1), (0, 2), (1, 2)] {
        let t = std::time::Instant::now();
        let r = trace::csu(&ms[i], &ms[j], &fast(4096, 5)).unwrap();
        eprintln!(
            "{} vs {}: {} layers in {:.1?}, log10 p = {:.2}",
            r.model_a,
            r.model_b,
            r.layers.len(),
            t.elapsed(),
            r.log10_p
        );
        k += r.layers.iter().map(|l| l.coincidences).sum::<u64>();
        expected += r.layers.iter().map(|l| l.expected).sum::<f64>();
        ps.extend(layer_ps(&r));
    }
    eprintln!("gated pairs: {k} coincidences, {expected:.1} expected");
    assert_uniform(&ps, "unrelated gated MLPs, full width");
    let (Some(ab), Some(wh)) = (
        open("calibration_full_width", "antiberty", "pytorch_model.bin"),
        open("calibration_full_width", "whisper-base", "model.bin"),
    ) else {
        return;
    };
    let a = ModelWeights::in_memory("antiberty", mlps(&ab, false));
    let b = ModelWeights::in_memory("whisper-base", mlps(&wh, false));
    let t = std::time::Instant::now();
    let r = trace::csu(
        &a,
        &b,
        &CsuOptions {
            pairs: Some(all_pairs(&a, &b)),
            ..fast(4096, 6)
        },
    )
    .unwrap();
    eprintln!(
        "antiberty vs whisper-base: 96 pairs of 2048 units in {:.1?}",
        t.elapsed()
    );
    assert_uniform(&layer_ps(&r), "antiberty vs whisper-base, full width");
}

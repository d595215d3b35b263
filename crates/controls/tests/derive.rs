//! Derived checkpoints: exact copies where the recipe copies, the stated noise where it adds
//! noise, identical bytes for a seed at any thread count, refusals with the file and tensor
//! named; and the whole path on a real quantized checkpoint when `just models` has run.

#[path = "../../fingerprint/tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{llama_config, real_model, tiny_llama, write_safetensors, Tensor};
use controls::derive::{derive, Options};
use controls::writer::OutDType;
use controls::{Error, Recipe};
use fingerprint::engine::{self, Options as EngineOptions};
use fingerprint::source::{self, ModelSource};
use fingerprint::{Fingerprint, Role};
use safetensors::tensor::Dtype;
use safetensors::SafeTensors;

const LAYERS: usize = 6;
const HIDDEN: usize = 32;

fn base(dir: &Path) -> ModelSource {
    std::fs::create_dir_all(dir).unwrap();
    write_safetensors(
        &dir.join("model.safetensors"),
        &tiny_llama(LAYERS, HIDDEN, 7),
        Dtype::F32,
    );
    std::fs::write(dir.join("config.json"), llama_config(LAYERS, HIDDEN)).unwrap();
    source::resolve(dir.to_str().unwrap()).unwrap()
}

fn opts(recipe: &str, seed: u64, dtype: OutDType) -> Options {
    Options {
        recipe: recipe.parse().unwrap(),
        seed,
        dtype,
        force: false,
    }
}

fn fingerprint(dir: &Path) -> Fingerprint {
    let src = source::resolve(dir.to_str().unwrap()).unwrap();
    engine::fingerprint(&src, &EngineOptions::default()).unwrap()
}

/// Every tensor of a safetensors file: name → raw bytes.
fn tensors(path: &Path) -> BTreeMap<String, (Vec<usize>, Vec<u8>)> {
    let data = std::fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&data).unwrap();
    st.tensors()
        .into_iter()
        .map(|(n, v)| (n, (v.shape().to_vec(), v.data().to_vec())))
        .collect()
}

fn as_f32(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// Rename a derived tensor's layer index back to the base layer it copies.
fn with_layer(name: &str, layer: u32) -> String {
    let mut parts: Vec<String> = name.split('.').map(String::from).collect();
    parts[2] = layer.to_string();
    parts.join(".")
}

#[test]
fn structural_recipes_without_noise_copy_the_base_layers_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let src = base(&tmp.path().join("base"));
    let original = tensors(&src.files[0]);
    for (recipe, layers) in [
        ("insert(count=2)", LAYERS + 2),
        ("prune(count=2)", LAYERS - 2),
    ] {
        let out = tmp.path().join(recipe);
        let d = derive(&src, &out, &opts(recipe, 1, OutDType::F32)).unwrap();
        assert_eq!(d.manifest.layer_map.len(), layers, "{recipe}");
        let derived = tensors(&d.weights);
        assert_eq!(derived.len(), 3 + 9 * layers, "{recipe}");
        for (name, (shape, bytes)) in &derived {
            let source = match name.strip_prefix("model.layers.") {
                Some(_) => {
                    let l: usize = name.split('.').nth(2).unwrap().parse().unwrap();
                    with_layer(name, d.manifest.layer_map[l])
                }
                None => name.clone(),
            };
            let (s0, b0) = &original[&source];
            assert_eq!((shape, bytes), (s0, b0), "{recipe}: {name} is not {source}");
        }
        let fp = fingerprint(&out);
        assert_eq!(fp.model.config.layers, Some(layers as u64));
        assert!(!fp.tensors.iter().any(|r| matches!(r.role, Role::Other(_))));
    }
}

#[test]
fn upcycling_copies_every_mlp_into_each_expert_and_adds_a_fresh_router() {
    let tmp = tempfile::tempdir().unwrap();
    let src = base(&tmp.path().join("base"));
    let original = tensors(&src.files[0]);
    let out = tmp.path().join("moe");
    let d = derive(&src, &out, &opts("upcycle(experts=3)", 5, OutDType::F32)).unwrap();
    let derived = tensors(&d.weights);
    for l in 0..LAYERS {
        for (dense, w) in [("gate_proj", "w1"), ("up_proj", "w3"), ("down_proj", "w2")] {
            let base = &original[&format!("model.layers.{l}.mlp.{dense}.weight")];
            for e in 0..3 {
                let name = format!("model.layers.{l}.block_sparse_moe.experts.{e}.{w}.weight");
                assert_eq!(&derived[&name], base, "{name}");
            }
        }
        let q = format!("model.layers.{l}.self_attn.q_proj.weight");
        assert_eq!(derived[&q], original[&q]);
        let (shape, router) = &derived[&format!("model.layers.{l}.block_sparse_moe.gate.weight")];
        assert_eq!(shape, &[3, HIDDEN]);
        // A fresh router: N(0, s_ref²), one stream per layer.
        let v = as_f32(router);
        let sd = (v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
        assert!(
            (sd / d.manifest.reference_std - 1.0).abs() < 0.25,
            "router std {sd} vs {}",
            d.manifest.reference_std
        );
    }
    let fp = fingerprint(&out);
    assert_eq!(fp.model.config.experts, Some(3));
    let experts: std::collections::BTreeSet<String> = fp
        .tensors
        .iter()
        .filter(|r| r.role == Role::MlpUp)
        .filter_map(|r| r.expert.map(|e| e.to_string()))
        .collect();
    assert_eq!(experts.into_iter().collect::<Vec<_>>(), ["0", "1", "2"]);
    // Upcycling a MoE is refused.
    let again = derive(
        &source::resolve(out.to_str().unwrap()).unwrap(),
        &tmp.path().join("moe2"),
        &opts("upcycle(experts=2)", 1, OutDType::F32),
    );
    assert!(matches!(again, Err(Error::Recipe { .. })), "{again:?}");
}

#[test]
fn noise_has_the_stated_size_and_is_the_same_at_any_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let src = base(&tmp.path().join("base"));
    let original = tensors(&src.files[0]);
    let run = |threads: usize, seed: u64, name: &str| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let out = tmp.path().join(name);
        pool.install(|| derive(&src, &out, &opts("noise(rel=0.5)", seed, OutDType::F32)))
            .unwrap()
    };
    let one = run(1, 9, "t1");
    let four = run(4, 9, "t4");
    let other = run(2, 10, "seed10");
    let bytes = |d: &controls::Derived| std::fs::read(&d.weights).unwrap();
    assert_eq!(bytes(&one), bytes(&four), "thread count changed the output");
    assert_ne!(bytes(&one), bytes(&other), "the seed changed nothing");
    assert_eq!(
        std::fs::read(&one.manifest_path).unwrap(),
        std::fs::read(&four.manifest_path).unwrap()
    );
    // Differences from the base: mean 0, std 0.5 · s_ref in every tensor (the same absolute
    // size everywhere, whatever the tensor's own scale).
    let sigma = one.manifest.noise_std;
    assert!((sigma / one.manifest.reference_std - 0.5).abs() < 1e-12);
    let derived = tensors(&one.weights);
    let mut all = Vec::new();
    for (name, (_, b)) in &derived {
        let diff: Vec<f64> = as_f32(b)
            .iter()
            .zip(as_f32(&original[name].1))
            .map(|(x, y)| f64::from(*x) - f64::from(y))
            .collect();
        all.extend(diff);
    }
    let n = all.len() as f64;
    let mean = all.iter().sum::<f64>() / n;
    let sd = (all.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / n).sqrt();
    assert!(mean.abs() < 5.0 * sigma / n.sqrt(), "mean {mean}");
    assert!((sd / sigma - 1.0).abs() < 0.02, "noise std {sd} vs {sigma}");
}

#[test]
fn bf16_output_rounds_to_nearest() {
    let tmp = tempfile::tempdir().unwrap();
    let src = base(&tmp.path().join("base"));
    let original = tensors(&src.files[0]);
    let d = derive(
        &src,
        &tmp.path().join("bf16"),
        &opts("prune(count=1)", 1, OutDType::Bf16),
    )
    .unwrap();
    let (_, emb) = &tensors(&d.weights)["model.embed_tokens.weight"];
    let want: Vec<u8> = as_f32(&original["model.embed_tokens.weight"].1)
        .iter()
        .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
        .collect();
    assert_eq!(emb, &want);
}

#[test]
fn refuses_to_overwrite_and_names_what_it_cannot_place() {
    let tmp = tempfile::tempdir().unwrap();
    let src = base(&tmp.path().join("base"));
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("config.json"), "mine").unwrap();
    let e = derive(&src, &out, &opts("noise(rel=0.1)", 1, OutDType::Bf16)).unwrap_err();
    assert!(matches!(e, Error::Exists { .. }), "{e}");
    assert_eq!(std::fs::read(out.join("config.json")).unwrap(), b"mine");
    assert!(!out.join("model.safetensors").exists());

    // A layer tensor with no canonical role.
    let dir = tmp.path().join("odd");
    std::fs::create_dir_all(&dir).unwrap();
    let mut t = tiny_llama(2, HIDDEN, 1);
    t.push(Tensor {
        name: "model.layers.1.self_attn.rotary_mystery.weight".into(),
        shape: vec![4],
        values: vec![1.0; 4],
    });
    write_safetensors(&dir.join("model.safetensors"), &t, Dtype::F32);
    let odd = source::resolve(dir.to_str().unwrap()).unwrap();
    let e = derive(
        &odd,
        &tmp.path().join("o"),
        &opts("noise(rel=0.1)", 1, OutDType::Bf16),
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("model.safetensors") && msg.contains("rotary_mystery"),
        "{msg}"
    );
    // A recipe that does not fit the base.
    let e = derive(
        &src,
        &tmp.path().join("p"),
        &opts("prune(count=5)", 1, OutDType::Bf16),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Recipe { .. }), "{e}");
}

/// The real path: a quantized GGUF (SmolLM2-135M, Q4_1) upcycled and deepened; the derived
/// attention fingerprint follows the base's, layer for layer.
#[test]
fn real_gguf_base_upcycled_and_deepened() {
    let Some(gguf) = real_model(
        "real_gguf_base_upcycled_and_deepened",
        "smollm2-135m-instruct",
        "model.gguf",
    ) else {
        return;
    };
    let src = source::resolve(gguf.to_str().unwrap()).unwrap();
    let attention = Some(Role::ATTENTION.to_vec());
    let base_fp = engine::fingerprint(
        &src,
        &EngineOptions {
            roles: attention.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    let std_of = |fp: &Fingerprint, layer: u32, role: &Role| {
        fp.tensors
            .iter()
            .find(|r| r.layer == Some(layer) && &r.role == role)
            .and_then(|r| r.stats.std)
            .unwrap()
    };
    let tmp = tempfile::tempdir().unwrap();
    for recipe in ["upcycle(experts=2, rel=0.01)", "insert(count=4, rel=0.01)"] {
        let out = tmp.path().join(recipe);
        let d = derive(&src, &out, &opts(recipe, 3, OutDType::Bf16)).unwrap();
        let fp = fingerprint(&out);
        let r: Recipe = recipe.parse().unwrap();
        let layers = 30 + if r.kind() == "insert" { 4 } else { 0 };
        assert_eq!(fp.model.config.layers, Some(layers));
        for (out_layer, &base_layer) in d.manifest.layer_map.iter().enumerate() {
            for role in &Role::ATTENTION {
                let (a, b) = (
                    std_of(&base_fp, base_layer, role),
                    std_of(&fp, out_layer as u32, role),
                );
                // bf16 rounding and noise of 1% of the median std: well under 1% of any std.
                assert!(
                    (b / a - 1.0).abs() < 0.01,
                    "{recipe}: layer {out_layer} {role}: {a} vs {b}"
                );
            }
        }
        if r.kind() == "upcycle" {
            let routers = fp.tensors.iter().filter(|t| t.role == Role::Router).count();
            assert_eq!(routers, 30);
        }
        std::fs::remove_dir_all(&out).unwrap();
    }
}

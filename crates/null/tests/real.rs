//! Real fingerprints: the published measure between all-MiniLM-L6-v2 (6 layers) and
//! all-mpnet-base-v2 (12 layers), fingerprinted from their safetensors weights, against an
//! independent numpy computation from the same files (`scripts/null_reference.py` wrote
//! `tests/data/reference_real.json`).

use fingerprint::engine::{fingerprint, Options};
use fingerprint::{Fingerprint, Role};
use null::curves::{CurveOptions, Curves};
use null::measure::{similarity, Measure, MeasureOptions};

use crate::util::{assert_close, data, model_file};

fn fp(test: &str, name: &str) -> Option<Fingerprint> {
    let path = model_file(test, name, "model.safetensors")?;
    let src = fingerprint::source::resolve(path.to_str().unwrap()).unwrap();
    let opts = Options {
        roles: Some(Role::ATTENTION.to_vec()),
        ..Default::default()
    };
    Some(fingerprint(&src, &opts).unwrap())
}

#[test]
fn compare_real_fingerprints_matches_numpy() {
    let test = "real::compare_real_fingerprints_matches_numpy";
    let (Some(a), Some(b)) = (fp(test, "all-minilm-l6-v2"), fp(test, "all-mpnet-base-v2")) else {
        return;
    };
    let reference = data("reference_real.json");
    for (ddof, curves_key, expected_key) in [
        (0u32, "std_ddof0", "expected"),
        (1, "std_ddof1", "expected_ddof1"),
    ] {
        let opts = CurveOptions {
            ddof,
            ..Default::default()
        };
        let ca = Curves::from_fingerprint(&a, &opts).unwrap();
        let cb = Curves::from_fingerprint(&b, &opts).unwrap();
        // The per-layer stds themselves (f64 accumulation in Rust, float64 numpy).
        for (c, model) in [(&ca, "all-minilm-l6-v2"), (&cb, "all-mpnet-base-v2")] {
            for (role, curve) in &c.roles {
                let want = reference[curves_key][model][role].as_array().unwrap();
                assert_eq!(want.len(), curve.len(), "{model} {role}");
                for (got, w) in curve.values.iter().zip(want) {
                    let w = w.as_f64().unwrap();
                    assert_close(
                        *got,
                        w,
                        1e-12 * w,
                        &format!("{model} {role} std (ddof {ddof})"),
                    );
                }
            }
        }
        for m in Measure::ALL {
            let s = similarity(&ca, &cb, &MeasureOptions::new(m)).unwrap();
            let exp = &reference[expected_key][m.name()];
            for (role, r) in &s.per_role {
                assert_close(
                    *r,
                    exp["per_role"][role].as_f64().unwrap(),
                    1e-9,
                    &format!("{m} {role}"),
                );
            }
            assert_close(
                s.score,
                exp["score"].as_f64().unwrap(),
                1e-9,
                &format!("{m} ddof {ddof}"),
            );
            assert_close(
                s.rescaled,
                exp["rescaled"].as_f64().unwrap(),
                1e-9,
                &format!("{m} rescaled"),
            );
            if m == Measure::HonestAgi && ddof == 0 {
                eprintln!(
                    "honestagi all-minilm-l6-v2 vs all-mpnet-base-v2: score {:.6}, per role {:?}, flags {:?}",
                    s.score, s.per_role, s.flags
                );
                assert_eq!(s.layers, (6, 12));
            }
        }
    }
}

#[test]
fn real_curves_have_signal_and_identity_scores_one() {
    let test = "real::real_curves_have_signal_and_identity_scores_one";
    let Some(a) = fp(test, "all-minilm-l6-v2") else {
        return;
    };
    let ca = Curves::from_fingerprint(&a, &CurveOptions::default()).unwrap();
    for (role, c) in &ca.roles {
        let cv = c.cv().unwrap();
        eprintln!("all-minilm-l6-v2 {role}: CV {cv:.4}");
        assert!(cv > null::measure::LOW_SPREAD_CV, "{role}: {cv}");
    }
    let s = similarity(&ca, &ca, &MeasureOptions::default()).unwrap();
    assert_close(s.score, 1.0, 1e-12, "self-similarity");
    assert!(s.flags.is_empty(), "{:?}", s.flags);
    // The fingerprint survives a JSON round trip unchanged.
    let back = Curves::from_fingerprint_json(
        std::path::Path::new("mem.json"),
        &a.to_json(),
        &CurveOptions::default(),
    )
    .unwrap();
    assert_eq!(back, ca);
}

/// GGUF fingerprints of two unrelated Q4_K_M models: Gemma-3-270m's flat q/k/v curves are
/// flagged, and both models' `attn_v` carry llama.cpp's layer-dependent quant-type pattern
/// (the patterns documented in models.md: gemma3 `885585585585585888`, qwen-0.5b
/// `885855888885585585585855`, 8 = Q8_0 marked `x`).
#[test]
fn gguf_quirks_are_flagged() {
    let test = "real::gguf_quirks_are_flagged";
    let gemma = model_file(test, "gemma3-270m", "model.gguf");
    let qwen = model_file(test, "qwen2.5-coder-0.5b-instruct-awq", "model.gguf");
    let (Some(gemma), Some(qwen)) = (gemma, qwen) else {
        return;
    };
    let load = |p: &std::path::Path| {
        let src = fingerprint::source::resolve(p.to_str().unwrap()).unwrap();
        let opts = Options {
            roles: Some(Role::ATTENTION.to_vec()),
            ..Default::default()
        };
        Curves::from_fingerprint(&fingerprint(&src, &opts).unwrap(), &CurveOptions::default())
            .unwrap()
    };
    let (g, q) = (load(&gemma), load(&qwen));
    let s = similarity(&g, &q, &MeasureOptions::default()).unwrap();
    let text: Vec<String> = s.flags.iter().map(|f| f.to_string()).collect();
    eprintln!(
        "gemma3-270m vs qwen2.5-coder-0.5b: {:.4}\n  {}",
        s.score,
        text.join("\n  ")
    );
    use null::measure::Flag;
    let low: Vec<&str> = s
        .flags
        .iter()
        .filter_map(|f| match f {
            Flag::LowSpread { model, role, .. } if model == &g.model => Some(role.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(low, ["attn_k", "attn_q", "attn_v"]);
    let pattern = |model: &str| {
        s.flags.iter().find_map(|f| match f {
            Flag::MixedQuantization {
                model: m,
                role,
                pattern,
            } if m == model && role == "attn_v" => Some(pattern.clone()),
            _ => None,
        })
    };
    assert_eq!(pattern(&g.model).as_deref(), Some("xx..x..x..x..x.xxx"));
    assert_eq!(
        pattern(&q.model).as_deref(),
        Some("xx.x..xxxxx..x..x..x.x..")
    );
    assert!(s.score.is_finite());
}

/// Isotropic noise added to the real weights of all-MiniLM-L6-v2 at a fine-tuning-like
/// relative magnitude (‖δW‖/‖W‖ = 0.1) inflates every matrix's std by the same factor
/// sqrt(1 + 0.01), which z-scoring removes: the published measure cannot tell the noisy copy
/// from the original (score ~1), so `derive::Derivation::Noise`'s per-layer perturbation is the
/// harder, worst case.
#[test]
fn isotropic_weight_noise_is_invisible_to_std_curves() {
    use fingerprint::format::{open, Format, Values};
    use fingerprint::Accumulator;
    let test = "real::isotropic_weight_noise_is_invisible_to_std_curves";
    let Some(path) = model_file(test, "all-minilm-l6-v2", "model.safetensors") else {
        return;
    };
    let reader = open(&path, Format::Safetensors).unwrap();
    let names = [
        ("attn_q", "attention.self.query"),
        ("attn_k", "attention.self.key"),
        ("attn_v", "attention.self.value"),
        ("attn_o", "attention.output.dense"),
    ];
    let mut clean = std::collections::BTreeMap::new();
    let mut noisy = std::collections::BTreeMap::new();
    let rel = 0.1;
    for (k, (role, name)) in names.iter().enumerate() {
        let (mut c, mut n) = (Vec::new(), Vec::new());
        for layer in 0..6 {
            let full = format!("encoder.layer.{layer}.{name}.weight");
            let idx = reader
                .tensors()
                .iter()
                .position(|t| t.name == full)
                .unwrap();
            let numel = reader.tensors()[idx].numel();
            let mut w: Vec<f32> = Vec::new();
            reader
                .read(idx, 0..numel, &mut |v| match v {
                    Values::F32(x) => w.extend_from_slice(x),
                    Values::F64(x) => w.extend(x.iter().map(|&v| v as f32)),
                })
                .unwrap();
            let rms =
                (w.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>() / w.len() as f64).sqrt();
            let mut rng = null::rng::stream(17, (k * 6 + layer) as u64);
            let wn: Vec<f64> = w
                .iter()
                .map(|&x| x as f64 + rel * rms * null::rng::normal(&mut rng))
                .collect();
            let (mut a, mut b) = (Accumulator::new(), Accumulator::new());
            a.push(&w);
            b.push(&wn);
            c.push(a.finish().std.unwrap());
            n.push(b.finish().std.unwrap());
        }
        clean.insert(role.to_string(), c);
        noisy.insert(role.to_string(), n);
    }
    let a = Curves::new("minilm", clean).unwrap();
    let b = Curves::new("minilm+noise", noisy).unwrap();
    let s = similarity(&a, &b, &MeasureOptions::default()).unwrap();
    eprintln!(
        "all-minilm-l6-v2 vs isotropic 10% weight noise: honestagi {:.6}",
        s.score
    );
    assert!(s.score > 0.999, "{}", s.score);
    // The curve-level worst case at the same magnitude is far from invisible.
    let worst = null::derivation::Derivation::Noise { rel }
        .apply(&a, &mut null::rng::stream(17, 99))
        .unwrap();
    let w = similarity(&a, &worst, &MeasureOptions::default()).unwrap();
    eprintln!(
        "  per-layer 10% std perturbation (derive::Noise): {:.4}",
        w.score
    );
    assert!(w.score < s.score);
}

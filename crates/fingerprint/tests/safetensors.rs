//! The safetensors path end to end: real weights against an independent numpy computation,
//! sharded and unsharded copies, the four ways of naming a model, and broken files.

mod common;

use std::path::Path;

use common::*;
use fingerprint::engine::{self, Options};
use fingerprint::{source, Error, Fingerprint, Role};
use safetensors::tensor::Dtype;

fn fp(spec: &str) -> Fingerprint {
    engine::fingerprint(&source::resolve(spec).unwrap(), &Options::default()).unwrap()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(f64::MIN_POSITIVE)
}

#[test]
fn minilm_statistics_match_numpy_float64() {
    let Some(path) = real_model(
        "minilm_statistics_match_numpy_float64",
        "all-minilm-l6-v2",
        "model.safetensors",
    ) else {
        return;
    };
    let expected: serde_json::Value =
        serde_json::from_str(include_str!("data/safetensors/all-minilm-l6-v2.json")).unwrap();
    let fp = fp(path.to_str().unwrap());
    let tensors = expected["tensors"].as_object().unwrap();
    let mut checked = 0;
    for row in &fp.tensors {
        let e = &tensors[&row.tensor];
        assert_eq!(
            row.stats.numel,
            e["numel"].as_u64().unwrap(),
            "{}",
            row.tensor
        );
        let (std, mean) = (e["std"].as_f64().unwrap(), e["mean"].as_f64().unwrap());
        assert!(
            rel(row.stats.std.unwrap(), std) <= 1e-9,
            "{}: std {} vs numpy {std}",
            row.tensor,
            row.stats.std.unwrap()
        );
        assert!(
            (row.stats.mean.unwrap() - mean).abs() <= 1e-9 * std,
            "{}: mean",
            row.tensor
        );
        checked += 1;
    }
    assert_eq!(
        checked,
        tensors.len(),
        "every float tensor numpy saw is fingerprinted"
    );
    for role in Role::ATTENTION {
        let curve = fp.curve(&role, None, |s| s.std);
        assert_eq!(curve.len(), 6, "{role}: six layers");
    }
    // The integer position_ids buffer is listed as skipped, not silently dropped.
    assert!(fp
        .skipped
        .iter()
        .any(|s| s.tensor == "embeddings.position_ids" && s.dtype == "I64"));
    assert_eq!(fp.model.config.layers, Some(6));
}

#[test]
fn sharded_equals_unsharded_in_every_float_dtype() {
    let tensors = tiny_llama(4, 64, 7);
    for dtype in [Dtype::F32, Dtype::F16, Dtype::BF16, Dtype::F64] {
        let dir = tempfile::tempdir().unwrap();
        let single = dir.path().join("single");
        std::fs::create_dir_all(&single).unwrap();
        write_safetensors(&single.join("model.safetensors"), &tensors, dtype);
        std::fs::write(single.join("config.json"), llama_config(4, 64)).unwrap();
        let sharded = dir.path().join("sharded");
        write_sharded(&sharded, &tensors, dtype, 3);
        std::fs::write(sharded.join("config.json"), llama_config(4, 64)).unwrap();
        let a = fp(single.to_str().unwrap());
        let b = fp(sharded.to_str().unwrap());
        assert_eq!(
            a.tensors, b.tensors,
            "{dtype:?}: sharded and unsharded differ"
        );
        assert_eq!(a.tensors.len(), tensors.len());
        assert_eq!(b.model.files.len(), 3);
        assert_eq!(a.tensors[0].dtype, format!("{dtype:?}"));
    }
}

#[test]
fn low_precision_values_are_widened_exactly() {
    // bf16 of 1.0, 2.0, 3.0 are exact: mean 2, std sqrt(2/3).
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.safetensors");
    let t = Tensor {
        name: "model.layers.0.self_attn.q_proj.weight".into(),
        shape: vec![3, 1],
        values: vec![1.0, 2.0, 3.0],
    };
    write_safetensors(&p, &[t], Dtype::BF16);
    let f = fp(p.to_str().unwrap());
    assert_eq!(f.tensors[0].stats.mean, Some(2.0));
    assert!((f.tensors[0].stats.std.unwrap() - (2.0f64 / 3.0).sqrt()).abs() < 1e-15);
}

/// A file, its directory, a sharded copy and a repo id in a Hugging Face cache: one fingerprint.
#[test]
fn same_model_four_ways() {
    let tmp = tempfile::tempdir().unwrap();
    // The real MiniLM when present, else a generated model (the test never skips entirely).
    let (file, config) = match real_model(
        "same_model_four_ways",
        "all-minilm-l6-v2",
        "model.safetensors",
    ) {
        Some(p) => (p.clone(), p.with_file_name("config.json")),
        None => {
            let d = tmp.path().join("gen");
            std::fs::create_dir_all(&d).unwrap();
            write_safetensors(
                &d.join("model.safetensors"),
                &tiny_llama(3, 32, 1),
                Dtype::F32,
            );
            std::fs::write(d.join("config.json"), llama_config(3, 32)).unwrap();
            (d.join("model.safetensors"), d.join("config.json"))
        }
    };
    let dir = file.parent().unwrap();
    // Sharded copy: read every tensor back through the safetensors crate and write 3 shards.
    let bytes = std::fs::read(&file).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<_> = st.names().into_iter().cloned().collect();
    names.sort();
    let sharded = tmp.path().join("sharded");
    std::fs::create_dir_all(&sharded).unwrap();
    let mut map = serde_json::Map::new();
    for (i, chunk) in names.chunks(names.len().div_ceil(3)).enumerate() {
        let shard = format!("model-{:05}-of-00003.safetensors", i + 1);
        let views: Vec<_> = chunk
            .iter()
            .map(|n| (n.clone(), st.tensor(n).unwrap()))
            .collect();
        safetensors::serialize_to_file(views, &None, &sharded.join(&shard)).unwrap();
        for n in chunk {
            map.insert(n.clone(), shard.clone().into());
        }
    }
    std::fs::write(
        sharded.join("model.safetensors.index.json"),
        serde_json::json!({"weight_map": map}).to_string(),
    )
    .unwrap();
    std::fs::copy(&config, sharded.join("config.json")).unwrap();
    // Hugging Face cache layout, with the snapshot files as symlinks into blobs/ like the hub.
    let cache = tmp.path().join("hf");
    let repo = cache.join("models--test-org--tiny-model");
    let rev = "0123456789abcdef0123456789abcdef01234567";
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    std::fs::create_dir_all(repo.join("snapshots").join(rev)).unwrap();
    std::fs::write(repo.join("refs/main"), rev).unwrap();
    for (src, name) in [(&file, "model.safetensors"), (&config, "config.json")] {
        let blob = repo.join("blobs").join(name.replace('.', "_"));
        std::fs::copy(src, &blob).unwrap();
        std::os::unix::fs::symlink(&blob, repo.join("snapshots").join(rev).join(name)).unwrap();
    }
    // SAFETY: no other test in this binary reads HF_HUB_CACHE.
    std::env::set_var("HF_HUB_CACHE", &cache);
    let from_repo = fp("test-org/tiny-model");
    std::env::remove_var("HF_HUB_CACHE");

    let from_file = fp(file.to_str().unwrap());
    let from_dir = fp(dir.to_str().unwrap());
    let from_shards = fp(sharded.to_str().unwrap());
    assert!(!from_file.tensors.is_empty());
    assert_eq!(from_file.tensors, from_dir.tensors, "file vs directory");
    assert_eq!(
        from_file.tensors, from_shards.tensors,
        "file vs sharded copy"
    );
    assert_eq!(
        from_file.tensors, from_repo.tensors,
        "file vs HF cache repo id"
    );
    assert_eq!(from_repo.model.revision.as_deref(), Some(rev));
    assert_eq!(
        from_repo.model.repo_id.as_deref(),
        Some("test-org/tiny-model")
    );
    assert_eq!(
        from_file.model.files[0].sha256,
        from_repo.model.files[0].sha256
    );
}

#[test]
fn fused_projections_split_into_the_unfused_statistics() {
    let (h, heads, kv, hd) = (32usize, 4usize, 2usize, 8usize);
    let mut v = Values::new(3);
    let q = v.take(heads * hd * h, 0.1);
    let k = v.take(kv * hd * h, 0.3);
    let vv = v.take(kv * hd * h, 0.05);
    let qkv_h = v.take(3 * h * h, 1.0); // for the full-MHA layouts: q,k,v each [h, h]
    let rows = |m: &[f32], r0: usize, r1: usize| m[r0 * h..r1 * h].to_vec();
    let dir = tempfile::tempdir().unwrap();
    let check =
        |name: &str, fused: Vec<Tensor>, separate: [Vec<f32>; 3], config: serde_json::Value| {
            let d = dir.path().join(name);
            std::fs::create_dir_all(&d).unwrap();
            write_safetensors(&d.join("model.safetensors"), &fused, Dtype::F32);
            std::fs::write(d.join("config.json"), config.to_string()).unwrap();
            let f = fp(d.to_str().unwrap());
            for (role, values) in Role::ATTENTION[..3].iter().zip(separate) {
                let row = f
                    .tensors
                    .iter()
                    .find(|r| &r.role == role)
                    .unwrap_or_else(|| panic!("{name}: no {role}"));
                let mut acc = fingerprint::Accumulator::new();
                acc.push(&values);
                let want = acc.finish();
                assert_eq!(row.stats.numel, want.numel, "{name} {role}");
                assert!(
                    rel(row.stats.std.unwrap(), want.std.unwrap()) < 1e-12,
                    "{name} {role}"
                );
                assert_eq!(
                    (row.stats.min, row.stats.max),
                    (want.min, want.max),
                    "{name} {role}"
                );
            }
        };
    // Phi-3: q rows, then k, then v (grouped-query sizes from the config).
    let mut fused = q.clone();
    fused.extend(&k);
    fused.extend(&vv);
    check(
        "phi3",
        vec![Tensor {
            name: "model.layers.0.self_attn.qkv_proj.weight".into(),
            shape: vec![(heads + 2 * kv) * hd, h],
            values: fused,
        }],
        [q.clone(), k.clone(), vv.clone()],
        serde_json::json!({"model_type": "phi3", "hidden_size": h, "num_attention_heads": heads, "num_key_value_heads": kv}),
    );
    // GPT-NeoX: per head, hd rows of q, then k, then v.
    let (mq, mk, mv) = (
        rows(&qkv_h, 0, h),
        rows(&qkv_h, h, 2 * h),
        rows(&qkv_h, 2 * h, 3 * h),
    );
    let mut neox = Vec::new();
    for head in 0..heads {
        for m in [&mq, &mk, &mv] {
            neox.extend_from_slice(&m[head * hd * h..(head + 1) * hd * h]);
        }
    }
    check(
        "neox",
        vec![Tensor {
            name: "gpt_neox.layers.0.attention.query_key_value.weight".into(),
            shape: vec![3 * h, h],
            values: neox,
        }],
        [mq.clone(), mk.clone(), mv.clone()],
        serde_json::json!({"model_type": "gpt_neox", "hidden_size": h, "num_attention_heads": heads}),
    );
    // GPT-2 Conv1D c_attn: [in, 3*out], the columns of each row are q | k | v.
    let mut conv = Vec::new();
    let (mut tq, mut tk, mut tv) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..h {
        for (m, t) in [(&mq, &mut tq), (&mk, &mut tk), (&mv, &mut tv)] {
            let row: Vec<f32> = (0..h).map(|c| m[c * h + r]).collect(); // transpose
            conv.extend_from_slice(&row);
            t.extend_from_slice(&row);
        }
    }
    check(
        "gpt2",
        vec![Tensor {
            name: "transformer.h.0.attn.c_attn.weight".into(),
            shape: vec![h, 3 * h],
            values: conv,
        }],
        [tq, tk, tv],
        serde_json::json!({"model_type": "gpt2", "n_embd": h, "n_head": heads}),
    );
    // Falcon-7B multi-query: all q heads, then one k head, then one v head.
    let mut mqa = q.clone();
    mqa.extend(&k[..hd * h]);
    mqa.extend(&vv[..hd * h]);
    check(
        "falcon",
        vec![Tensor {
            name: "transformer.h.0.self_attention.query_key_value.weight".into(),
            shape: vec![(heads + 2) * hd, h],
            values: mqa,
        }],
        [q.clone(), k[..hd * h].to_vec(), vv[..hd * h].to_vec()],
        serde_json::json!({"model_type": "falcon", "hidden_size": h, "num_attention_heads": heads, "multi_query": true}),
    );
}

#[test]
fn truncated_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("model.safetensors");
    write_safetensors(&p, &tiny_llama(1, 16, 2), Dtype::F32);
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 100]).unwrap();
    let err = source::resolve(p.to_str().unwrap())
        .and_then(|s| engine::fingerprint(&s, &Options::default()))
        .unwrap_err();
    assert!(matches!(err, Error::Truncated { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(p.to_str().unwrap()) && msg.contains("truncated"),
        "{msg}"
    );
    assert!(!msg.contains('\n'));
    // A header cut short is also a truncation, not a panic.
    std::fs::write(&p, &bytes[..20]).unwrap();
    let err = source::resolve(p.to_str().unwrap())
        .and_then(|s| engine::fingerprint(&s, &Options::default()))
        .unwrap_err();
    assert!(err.to_string().contains(p.to_str().unwrap()), "{err}");
}

#[test]
fn missing_shard_tensor_and_bad_dtype_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let tensors = tiny_llama(2, 16, 4);
    write_sharded(dir.path(), &tensors, Dtype::F32, 2);
    // The index lists a tensor that no shard holds.
    let idx = dir.path().join("model.safetensors.index.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&idx).unwrap()).unwrap();
    v["weight_map"]["model.layers.9.self_attn.q_proj.weight"] =
        "model-00001-of-00002.safetensors".into();
    std::fs::write(&idx, v.to_string()).unwrap();
    let err = engine::fingerprint(
        &source::resolve(dir.path().to_str().unwrap()).unwrap(),
        &Options::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("model.layers.9.self_attn.q_proj.weight"),
        "{err}"
    );

    // An integer attention weight is needed by default: a clear error naming file and tensor.
    let d2 = tempfile::tempdir().unwrap();
    let p = d2.path().join("model.safetensors");
    let raw = vec![0u8; 16 * 16 * 4];
    let view = safetensors::tensor::TensorView::new(Dtype::I32, vec![16, 16], &raw).unwrap();
    safetensors::serialize_to_file(
        vec![("model.layers.0.self_attn.q_proj.weight".to_string(), view)],
        &None,
        &p,
    )
    .unwrap();
    let err = engine::fingerprint(
        &source::resolve(p.to_str().unwrap()).unwrap(),
        &Options::default(),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("q_proj") && msg.contains("I32") && msg.contains(p.to_str().unwrap()),
        "{msg}"
    );
    // ...but not when the user asked only for other roles.
    let opts = Options {
        roles: Some(vec![Role::MlpUp]),
        ..Default::default()
    };
    let f = engine::fingerprint(&source::resolve(p.to_str().unwrap()).unwrap(), &opts).unwrap();
    assert!(f.tensors.is_empty());
}

#[test]
fn nan_weights_are_counted_and_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("model.safetensors");
    let mut t = tiny_llama(1, 16, 5);
    t[1].values[3] = f32::NAN;
    t[1].values[4] = f32::INFINITY;
    write_safetensors(&p, &t, Dtype::F32);
    let f = fp(p.to_str().unwrap());
    assert!(f.nonfinite);
    let row = f.tensors.iter().find(|r| r.tensor == t[1].name).unwrap();
    assert_eq!((row.stats.nan, row.stats.inf), (1, 1));
    assert!(row.stats.std.unwrap().is_finite());
    assert!(f.warnings.iter().any(|w| w.contains(&t[1].name)));
}

#[test]
fn csv_has_the_documented_columns_and_round_trips_floats() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("model.safetensors");
    write_safetensors(&p, &tiny_llama(2, 16, 6), Dtype::F32);
    let f = fp(p.to_str().unwrap());
    let mut buf = Vec::new();
    f.write_csv(&mut buf).unwrap();
    let mut r = csv::Reader::from_reader(buf.as_slice());
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(header, fingerprint::schema::CSV_HEADER);
    for (rec, row) in r.records().zip(&f.tensors) {
        let rec = rec.unwrap();
        assert_eq!(
            rec[9].parse::<f64>().unwrap(),
            row.stats.std.unwrap(),
            "shortest round-trip"
        );
    }
    // JSON round trip is exact too.
    let back = Fingerprint::from_json(&f.to_json()).unwrap();
    assert_eq!(back, f);
    let _ = Path::new("");
}

/*!
ONNX models through the whole path (`source::resolve` → `engine::fingerprint`):
- all-MiniLM-L6-v2 int8 (weight-only int8 with `Cast`/`Mul` dequantization, anonymous
  `val_N` weights): every tensor's statistics against an independent numpy dequantization
  (`scripts/reference_onnx.py`, committed as `tests/data/onnx/all-minilm-l6-v2-int8.json`),
  the derived conventional names, and the per-layer q/k/v/o std against the F32 safetensors
  original (read with nullprint's safetensors reader);
- paraphrase-MiniLM-L3-v2 (F32, anonymous `onnx::MatMul_N` weights): 3 layers × q/k/v/o
  mapped, and every tensor against numpy.
*/

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use fingerprint::engine::{self, Options};
use fingerprint::format::{self, Format, Values};
use fingerprint::roles::Role;
use fingerprint::{source, Accumulator, Fingerprint};

fn rel(a: f64, b: f64) -> f64 {
    if a == b {
        0.0
    } else {
        (a - b).abs() / a.abs().max(b.abs())
    }
}

fn reference(name: &str) -> serde_json::Map<String, serde_json::Value> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/onnx/{name}.json")),
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["tensors"].as_object().unwrap().clone()
}

/// Every row against numpy; every derived name against the reference's. Returns the number
/// of rows checked.
fn check_against_numpy(
    path: &Path,
    fp: &Fingerprint,
    expected: &serde_json::Map<String, serde_json::Value>,
) -> usize {
    let reader = format::open(path, Format::Onnx).unwrap();
    let role_names: HashMap<&str, Option<&str>> = reader
        .tensors()
        .iter()
        .map(|t| (t.name.as_str(), t.role_name.as_deref()))
        .collect();
    for (name, want) in expected {
        let got = role_names
            .get(name.as_str())
            .unwrap_or_else(|| panic!("{name} is not listed"));
        assert_eq!(*got, want["role_name"].as_str(), "{name}: derived name");
    }
    let mut worst = 0.0f64;
    for row in &fp.tensors {
        let want = &expected[&row.tensor];
        assert_eq!(
            row.stats.numel,
            want["numel"].as_u64().unwrap(),
            "{}",
            row.tensor
        );
        let e = rel(row.stats.std.unwrap(), want["std"].as_f64().unwrap());
        assert!(
            e < 1e-9,
            "{}: std {:?} vs numpy {} ({e:e})",
            row.tensor,
            row.stats.std,
            want["std"]
        );
        let m = want["mean"].as_f64().unwrap();
        assert!(
            (row.stats.mean.unwrap() - m).abs() <= 1e-9 * want["std"].as_f64().unwrap(),
            "{}: mean",
            row.tensor
        );
        worst = worst.max(e);
    }
    assert_eq!(
        fp.tensors.len(),
        expected.len(),
        "every float tensor is fingerprinted once"
    );
    eprintln!(
        "{}: {} rows, worst relative std error {worst:e}",
        path.display(),
        fp.tensors.len()
    );
    fp.tensors.len()
}

fn attention(fp: &Fingerprint) -> BTreeMap<(u32, String), f64> {
    fp.tensors
        .iter()
        .filter(|r| Role::ATTENTION.contains(&r.role))
        .map(|r| ((r.layer.unwrap(), r.role.to_string()), r.stats.std.unwrap()))
        .collect()
}

#[test]
fn minilm_int8_dequantizes_and_names_like_numpy_and_the_f32_original() {
    let test = "minilm_int8_dequantizes_and_names_like_numpy_and_the_f32_original";
    let Some(path) = common::real_model(test, "all-minilm-l6-v2-int8", "model.onnx") else {
        return;
    };
    let src = source::resolve(path.to_str().unwrap()).unwrap();
    assert_eq!(src.format, Format::Onnx);
    let fp = engine::fingerprint(&src, &Options::default()).unwrap();
    check_against_numpy(&path, &fp, &reference("all-minilm-l6-v2-int8"));
    // Integer and boolean initializers (shape constants, masks) are skipped, not fatal.
    assert!(
        fp.skipped
            .iter()
            .all(|s| s.dtype == "I64" || s.dtype == "BOOL"),
        "{:?}",
        fp.skipped
    );
    let att = attention(&fp);
    assert_eq!(att.len(), 24, "6 layers × q/k/v/o: {att:?}");
    // Layer 0: val_49, val_57, val_65, val_105 (models.md).
    let q0 = fp
        .tensors
        .iter()
        .find(|r| r.role == Role::AttnQ && r.layer == Some(0))
        .unwrap();
    assert_eq!(q0.tensor, "val_49");
    assert_eq!(q0.dtype, "I8");

    // Against the F32 original: the int8 round-off moves the std by < 1e-4.
    let Some(orig) = common::real_model(test, "all-minilm-l6-v2", "model.safetensors") else {
        return;
    };
    let st = format::open(&orig, Format::Safetensors).unwrap();
    let mut worst = 0.0f64;
    for ((layer, role), std) in &att {
        let suffix = match role.as_str() {
            "attn_q" => "attention.self.query",
            "attn_k" => "attention.self.key",
            "attn_v" => "attention.self.value",
            _ => "attention.output.dense",
        };
        let name = format!("encoder.layer.{layer}.{suffix}.weight");
        let i = st.tensors().iter().position(|t| t.name == name).unwrap();
        let mut acc = Accumulator::new();
        st.read(i, 0..st.tensors()[i].numel(), &mut |v| match v {
            Values::F32(x) => acc.push(x),
            Values::F64(x) => acc.push(x),
        })
        .unwrap();
        let e = rel(*std, acc.finish().std.unwrap());
        assert!(e < 1e-4, "{name}: int8 {std} vs f32 ({e:e})");
        worst = worst.max(e);
    }
    eprintln!("int8 vs f32 safetensors: worst relative std difference {worst:e}");
}

#[test]
fn minilm_l3_maps_three_layers_like_numpy() {
    let test = "minilm_l3_maps_three_layers_like_numpy";
    let Some(path) = common::real_model(test, "paraphrase-minilm-l3-v2", "model.onnx") else {
        return;
    };
    let src = source::resolve(path.parent().unwrap().to_str().unwrap()).unwrap();
    assert_eq!(src.format, Format::Onnx);
    let fp = engine::fingerprint(&src, &Options::default()).unwrap();
    check_against_numpy(&path, &fp, &reference("paraphrase-minilm-l3-v2"));
    let att = attention(&fp);
    let keys: Vec<_> = att.keys().cloned().collect();
    let mut want = Vec::new();
    for l in 0..3 {
        for r in ["attn_k", "attn_o", "attn_q", "attn_v"] {
            want.push((l, r.to_string()));
        }
    }
    assert_eq!(keys, want);
    // models.md: q std 0.0833, 0.0781, 0.0717.
    for (l, q) in [(0, 0.0833), (1, 0.0781), (2, 0.0717)] {
        assert!(
            (att[&(l, "attn_q".to_string())] - q).abs() < 5e-5,
            "layer {l}"
        );
    }
    let q0 = fp
        .tensors
        .iter()
        .find(|r| r.role == Role::AttnQ && r.layer == Some(0))
        .unwrap();
    assert_eq!(q0.tensor, "onnx::MatMul_470");
}

//! Matrix reads ([`trace::matrices`]) on the real checkpoints: shapes in `[out, in]`
//! order across formats, ONNX `MatMul` weights transposed back to the safetensors layout,
//! GGUF blocks dequantized, row/column selections equal to slices of the full matrix, and the
//! memory cap.

use fingerprint::roles::{Role, RoleKey};
use fingerprint::source;
use ndarray::Array2;
use trace::matrices::{ModelMatrices, Orientation, Pick, ReadOptions};

fn key(layer: u32, role: Role) -> RoleKey {
    RoleKey {
        stack: None,
        layer: Some(layer),
        role,
        expert: None,
    }
}

fn open(test: &str, name: &str, file: &str) -> Option<ModelMatrices> {
    let path = testkit::real_model(test, name, file)?;
    let src = source::resolve(path.to_str().unwrap()).unwrap();
    Some(ModelMatrices::open(src).unwrap())
}

fn full(m: &ModelMatrices, k: &RoleKey) -> Array2<f32> {
    m.read(k, &ReadOptions::default()).unwrap().data
}

fn check_selection(m: &ModelMatrices, k: &RoleKey) {
    let whole = full(m, k);
    let (r, c) = whole.dim();
    let opts = ReadOptions {
        rows: Pick::Sample { max: 37, seed: 5 },
        cols: Pick::Indices(vec![c - 1, 0, 3, 3]),
        ..Default::default()
    };
    let part = m.read(k, &opts).unwrap();
    let rows = part.rows.clone().unwrap();
    assert_eq!(rows.len(), 37.min(r));
    assert!(
        part.selection.contains("ChaCha8 seed 5"),
        "{}",
        part.selection
    );
    for (i, &ri) in rows.iter().enumerate() {
        for (j, &cj) in [c - 1, 0, 3, 3].iter().enumerate() {
            assert_eq!(part.data[(i, j)], whole[(ri, cj)], "row {ri} col {cj}");
        }
    }
}

#[test]
fn minilm_safetensors_shapes_and_selection() {
    let Some(m) = open(
        "minilm_safetensors",
        "all-minilm-l6-v2",
        "model.safetensors",
    ) else {
        return;
    };
    let up = m.entry(&key(0, Role::MlpUp)).unwrap();
    assert_eq!(up.shape(Orientation::Auto), [1536, 384]);
    assert_eq!(
        m.entry(&key(5, Role::MlpDown))
            .unwrap()
            .shape(Orientation::Auto),
        [384, 1536]
    );
    check_selection(&m, &key(0, Role::MlpUp));
    check_selection(&m, &key(3, Role::MlpDown));
    let by_name = m
        .read_tensor(
            "encoder.layer.0.intermediate.dense.weight",
            &ReadOptions::default(),
        )
        .unwrap();
    assert_eq!(by_name.data, full(&m, &key(0, Role::MlpUp)));
    assert!(m
        .read_tensor("no.such.weight", &ReadOptions::default())
        .is_err());
    // A bias is not a matrix.
    assert!(m
        .read_tensor(
            "encoder.layer.0.intermediate.dense.bias",
            &ReadOptions::default()
        )
        .is_err());
    // The cap is checked before reading.
    let capped = ReadOptions {
        max_bytes: 1536 * 384 * 4 - 1,
        ..Default::default()
    };
    let e = m.read(&key(0, Role::MlpUp), &capped).unwrap_err();
    assert!(e.to_string().contains("over the cap"), "{e}");
    // Transposing on request.
    let t = m
        .read(
            &key(0, Role::MlpUp),
            &ReadOptions {
                orientation: Orientation::Transposed,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(t.data, full(&m, &key(0, Role::MlpUp)).t());
}

/// The int8 ONNX export holds the same weights as the safetensors file, stored `[in, out]`
/// and quantized per output feature: `Auto` must transpose them back, and every value must lie
/// within half a quantization step (`max|row| / 254`) of the F32 weight.
#[test]
fn onnx_matmul_weights_come_back_in_pytorch_order() {
    let Some(st) = open("onnx_orientation", "all-minilm-l6-v2", "model.safetensors") else {
        return;
    };
    let Some(ox) = open("onnx_orientation", "all-minilm-l6-v2-int8", "model.onnx") else {
        return;
    };
    for (layer, role) in [
        (0, Role::MlpUp),
        (0, Role::MlpDown),
        (1, Role::AttnQ),
        (5, Role::AttnO),
    ] {
        let k = key(layer, role.clone());
        let e = ox.entry(&k).unwrap_or_else(|| panic!("{layer} {role}"));
        assert!(e.auto_transpose_reason().is_some());
        let a = full(&st, &k);
        let b = ox.read(&k, &ReadOptions::default()).unwrap();
        assert!(b.transposed && b.selection.contains("transposed"));
        assert_eq!(a.dim(), b.data.dim(), "{layer} {role}");
        for (ra, rb) in a.rows().into_iter().zip(b.data.rows()) {
            let step = ra.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
            for (x, y) in ra.iter().zip(rb.iter()) {
                assert!(
                    (x - y).abs() <= 0.5 * step * 1.001 + 1e-7,
                    "{layer} {role}: {x} vs {y}"
                );
            }
        }
    }
    // Embeddings feed a Gather: rows already.
    let emb = RoleKey {
        stack: None,
        layer: None,
        role: Role::Embed,
        expert: None,
    };
    assert_eq!(
        ox.entry(&emb).unwrap().shape(Orientation::Auto),
        [30522, 384]
    );
}

#[test]
fn smollm2_gguf_dequantized_matrices() {
    let Some(m) = open("smollm2_gguf", "smollm2-135m-instruct", "model.gguf") else {
        return;
    };
    assert_eq!(
        m.entry(&key(0, Role::MlpGate))
            .unwrap()
            .shape(Orientation::Auto),
        [1536, 576]
    );
    assert_eq!(
        m.entry(&key(29, Role::MlpDown))
            .unwrap()
            .shape(Orientation::Auto),
        [576, 1536]
    );
    check_selection(&m, &key(0, Role::MlpGate));
    check_selection(&m, &key(7, Role::MlpDown));
    let up = full(&m, &key(2, Role::MlpUp));
    let std = {
        let n = up.len() as f64;
        let mean = up.iter().map(|&v| v as f64).sum::<f64>() / n;
        (up.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt()
    };
    assert!(std > 0.01 && std < 1.0, "std {std}");
    let emb = RoleKey {
        stack: None,
        layer: None,
        role: Role::Embed,
        expert: None,
    };
    let e = m
        .read(
            &emb,
            &ReadOptions {
                rows: Pick::Sample { max: 64, seed: 1 },
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(e.data.dim(), (64, 576));
    assert_eq!(e.full_shape, [49152, 576]);
}

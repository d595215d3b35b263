//! GGUF reader tests.
//!
//! 1. Real files (SmolLM2 135M, Gemma 3 270M): every tensor listed as gguf-py lists it, and the
//!    dequantized values of tensors covering every type present hashed and compared bit for
//!    bit with `tests/data/gguf/reference.json` (written by `scripts/gguf_reference.py` with
//!    the `gguf` Python package), the std with numpy's to 1e-9 relative; the engine plans and
//!    fingerprints the SmolLM2 attention tensors.
//! 2. Synthetic files for every decodable type, quantized here from the published block
//!    layouts and dequantized by an independent element-wise reference.
//! 3. Hostile headers built in code: each must fail with a clear error, never a panic.

use std::io::Write;
use std::ops::Range;
use std::path::PathBuf;

use fingerprint::format::ggml::GgmlType;
use fingerprint::format::gguf::{GgufReader, MetaType, MetaValue};
use fingerprint::format::{TensorReader, Values, DECODE_CHUNK};
use fingerprint::{Accumulator, Error};
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------------------------
// A small GGUF writer.

/// Little-endian byte builder for headers.
#[derive(Default, Clone)]
struct Bytes(Vec<u8>);

impl Bytes {
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    fn header(version: u32, n_tensors: u64, n_kv: u64) -> Bytes {
        let mut b = Bytes::default();
        b.0.extend_from_slice(b"GGUF");
        b.u32(version).u64(n_tensors).u64(n_kv);
        b
    }
}

fn meta_code(v: &MetaValue) -> u32 {
    match v {
        MetaValue::U8(_) => 0,
        MetaValue::I8(_) => 1,
        MetaValue::U16(_) => 2,
        MetaValue::I16(_) => 3,
        MetaValue::U32(_) => 4,
        MetaValue::I32(_) => 5,
        MetaValue::F32(_) => 6,
        MetaValue::Bool(_) => 7,
        MetaValue::String(_) => 8,
        MetaValue::Array(_) => 9,
        MetaValue::U64(_) => 10,
        MetaValue::I64(_) => 11,
        MetaValue::F64(_) => 12,
    }
}

fn put_value(b: &mut Bytes, v: &MetaValue) {
    match v {
        MetaValue::U8(x) => b.0.push(*x),
        MetaValue::I8(x) => b.0.push(*x as u8),
        MetaValue::U16(x) => b.0.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I16(x) => b.0.extend_from_slice(&x.to_le_bytes()),
        MetaValue::U32(x) => b.0.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I32(x) => b.0.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F32(x) => b.0.extend_from_slice(&x.to_le_bytes()),
        MetaValue::Bool(x) => b.0.push(*x as u8),
        MetaValue::String(s) => {
            b.str(s);
        }
        MetaValue::Array(items) => {
            b.u32(items.first().map_or(0, meta_code));
            b.u64(items.len() as u64);
            for i in items {
                put_value(b, i);
            }
        }
        MetaValue::U64(x) => b.0.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I64(x) => b.0.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F64(x) => b.0.extend_from_slice(&x.to_le_bytes()),
    }
}

fn put_kv(b: &mut Bytes, key: &str, v: &MetaValue) {
    b.str(key).u32(meta_code(v));
    put_value(b, v);
}

/// A tensor to write: GGUF extents (`ne0` first), ggml type code, raw data.
struct Tensor {
    name: String,
    ne: Vec<u64>,
    ty: u32,
    data: Vec<u8>,
}

/// A complete GGUF file: header, metadata, infos with consecutive aligned offsets, data.
fn gguf_bytes(
    version: u32,
    kvs: &[(&str, MetaValue)],
    tensors: &[Tensor],
    alignment: u64,
) -> Vec<u8> {
    let mut b = Bytes::header(version, tensors.len() as u64, kvs.len() as u64);
    for (k, v) in kvs {
        put_kv(&mut b, k, v);
    }
    let pad = |n: u64| n.div_ceil(alignment) * alignment;
    let mut offset = 0u64;
    for t in tensors {
        b.str(&t.name).u32(t.ne.len() as u32);
        for &d in &t.ne {
            b.u64(d);
        }
        b.u32(t.ty).u64(offset);
        offset = pad(offset + t.data.len() as u64);
    }
    let start = pad(b.0.len() as u64);
    b.0.resize(start as usize, 0);
    for t in tensors {
        b.0.extend_from_slice(&t.data);
        let end = pad(b.0.len() as u64 - start) + start;
        b.0.resize(end as usize, 0);
    }
    b.0
}

fn write_temp(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::File::create(&p)
        .and_then(|mut f| f.write_all(bytes))
        .unwrap();
    p
}

/// Read a whole tensor, checking the chunking contract on the way.
fn read_all(r: &dyn TensorReader, index: usize, range: Range<u64>) -> Vec<f32> {
    let mut out = Vec::new();
    r.read(index, range, &mut |v| match v {
        Values::F32(x) => {
            assert!(
                !x.is_empty() && x.len() <= DECODE_CHUNK,
                "chunk of {}",
                x.len()
            );
            out.extend_from_slice(x)
        }
        Values::F64(_) => panic!("GGUF yields f32"),
    })
    .unwrap();
    out
}

// ---------------------------------------------------------------------------------------------
// 1. Real files against the gguf-py reference.

/// The model's GGUF, or None after saying loudly that the test is skipped.
fn model(test: &str, name: &str) -> Option<PathBuf> {
    let p = testkit::models_dir().join(name).join("model.gguf");
    if p.is_file() {
        Some(p)
    } else {
        // Straight to stderr: the test harness captures eprintln! of passing tests.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: {test}: {} not found (run just models)",
            p.display()
        );
        None
    }
}

fn reference() -> serde_json::Value {
    serde_json::from_str(include_str!("data/gguf/reference.json")).unwrap()
}

/// Stream tensor `index` through the reader: SHA-256 of its little-endian f32 bytes, and its
/// statistics.
fn hash_tensor(r: &GgufReader, index: usize) -> (String, fingerprint::TensorStats) {
    let numel = r.tensors()[index].numel();
    let mut h = Sha256::new();
    let mut acc = Accumulator::new();
    let mut bytes = Vec::with_capacity(DECODE_CHUNK * 4);
    let mut seen = 0u64;
    r.read(index, 0..numel, &mut |v| {
        let Values::F32(x) = v else {
            panic!("GGUF yields f32")
        };
        assert!(x.len() <= DECODE_CHUNK);
        seen += x.len() as u64;
        bytes.clear();
        for v in x {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        h.update(&bytes);
        acc.push(x);
    })
    .unwrap();
    assert_eq!(seen, numel);
    (format!("{:x}", h.finalize()), acc.finish())
}

/// Check a real model against the reference: the tensor list (names, types, shapes), and the
/// dequantized values of every tensor, streamed through the reader and hashed.
fn check_model(test: &str, name: &str) {
    let Some(path) = model(test, name) else {
        return;
    };
    let reference = reference();
    let m = &reference["models"][name];
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        m["bytes"].as_u64().unwrap(),
        "{} is not the file the reference was computed from",
        path.display()
    );
    let r = GgufReader::open(&path).unwrap();
    let expected = m["tensors"].as_array().unwrap();
    assert_eq!(r.tensors().len(), expected.len());
    let mut types = std::collections::BTreeMap::<String, u64>::new();
    for (i, (t, e)) in r.tensors().iter().zip(expected).enumerate() {
        assert_eq!(t.name, e["name"].as_str().unwrap());
        assert_eq!(
            t.dtype.to_string(),
            e["type"].as_str().unwrap(),
            "{}",
            t.name
        );
        let shape: Vec<u64> = e["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        assert_eq!(t.shape, shape, "{}", t.name);
        assert_eq!(t.numel(), e["numel"].as_u64().unwrap());
        let (sha, stats) = hash_tensor(&r, i);
        assert_eq!(
            sha,
            e["sha256"].as_str().unwrap(),
            "{} ({})",
            t.name,
            t.dtype
        );
        let want = e["std"].as_f64().unwrap();
        let got = stats.std.unwrap();
        assert!(
            (got - want).abs() <= 1e-9 * want.abs(),
            "{}: std {got} vs numpy {want}",
            t.name
        );
        let want_mean = e["mean"].as_f64().unwrap();
        assert!((stats.mean.unwrap() - want_mean).abs() <= 1e-9 * want.abs());
        *types.entry(t.dtype.to_string()).or_default() += t.numel();
    }
    eprintln!(
        "{test}: all {} tensors bit-identical; elements per type {types:?}",
        expected.len()
    );
}

#[test]
fn smollm2_matches_gguf_py_bit_for_bit() {
    check_model(
        "smollm2_matches_gguf_py_bit_for_bit",
        "smollm2-135m-instruct",
    );
}

#[test]
fn gemma3_matches_gguf_py_bit_for_bit() {
    check_model("gemma3_matches_gguf_py_bit_for_bit", "gemma3-270m");
}

#[test]
fn smollm2_metadata_and_config() {
    let test = "smollm2_metadata_and_config";
    let Some(path) = model(test, "smollm2-135m-instruct") else {
        return;
    };
    let r = GgufReader::open(&path).unwrap();
    assert_eq!(r.version(), 3);
    assert_eq!(r.alignment(), 32);
    assert_eq!(r.data_offset() % 32, 0);
    assert_eq!(r.architecture().as_deref(), Some("llama"));
    assert_eq!(
        r.metadata_type("tokenizer.ggml.tokens"),
        Some(MetaType::Array)
    );
    assert_eq!(r.metadata_array_len("tokenizer.ggml.tokens"), Some(49152));
    let tokens = r.metadata("tokenizer.ggml.tokens").unwrap();
    assert_eq!(tokens.as_array().unwrap().len(), 49152);
    assert!(tokens.as_array().unwrap()[0].as_str().is_some());
    let c = r.config().unwrap();
    assert_eq!(c.architecture.as_deref(), Some("llama"));
    assert_eq!(
        (c.layers, c.hidden_size, c.heads, c.kv_heads),
        (Some(30), Some(576), Some(9), Some(3))
    );
    assert_eq!(
        (c.intermediate_size, c.vocab_size, c.head_dim()),
        (Some(1536), Some(49152), Some(64))
    );
    // Every key decodes.
    let keys: Vec<String> = r.metadata_keys().map(str::to_owned).collect();
    assert!(keys.len() > 10);
    for k in &keys {
        assert!(r.metadata(k).is_some(), "{k}");
    }
}

#[test]
fn gemma3_config() {
    let Some(path) = model("gemma3_config", "gemma3-270m") else {
        return;
    };
    let r = GgufReader::open(&path).unwrap();
    let c = r.config().unwrap();
    assert_eq!(c.architecture.as_deref(), Some("gemma3"));
    assert_eq!(
        (c.layers, c.hidden_size, c.heads, c.kv_heads, c.head_dim),
        (Some(18), Some(640), Some(4), Some(1), Some(256))
    );
    assert_eq!(
        (c.intermediate_size, c.vocab_size),
        (Some(2048), Some(262144))
    );
}

#[test]
fn smollm2_engine_plans_and_fingerprints_attention() {
    use fingerprint::engine;
    use fingerprint::Role;
    let test = "smollm2_engine_plans_and_fingerprints_attention";
    let Some(path) = model(test, "smollm2-135m-instruct") else {
        return;
    };
    let src = fingerprint::source::resolve(path.to_str().unwrap()).unwrap();
    let plan = engine::plan(&src).unwrap();
    assert_eq!(plan.architecture.as_deref(), Some("llama"));
    assert_eq!(plan.config.layers, Some(30));
    let mut found = std::collections::BTreeSet::new();
    for t in &plan.tensors {
        for a in &t.assignments {
            if Role::ATTENTION.contains(&a.key.role) {
                found.insert((a.key.layer.unwrap(), a.key.role.to_string()));
            }
        }
    }
    assert_eq!(found.len(), 30 * 4);
    for layer in 0..30 {
        for role in ["attn_q", "attn_k", "attn_v", "attn_o"] {
            assert!(found.contains(&(layer, role.to_string())), "{layer} {role}");
        }
    }
    let fp = engine::fingerprint(
        &src,
        &engine::Options {
            roles: Some(Role::ATTENTION.to_vec()),
            ..Default::default()
        },
    )
    .unwrap();
    let reference = reference();
    let attention = reference["models"]["smollm2-135m-instruct"]["attention"]
        .as_array()
        .unwrap();
    assert_eq!(fp.tensors.len(), attention.len());
    for e in attention {
        let row = fp
            .tensors
            .iter()
            .find(|r| r.tensor == e["tensor"].as_str().unwrap())
            .unwrap();
        assert_eq!(row.role.to_string(), e["role"].as_str().unwrap());
        assert_eq!(u64::from(row.layer.unwrap()), e["layer"].as_u64().unwrap());
        let (got, want) = (row.stats.std.unwrap(), e["std"].as_f64().unwrap());
        assert!(
            (got - want).abs() <= 1e-9 * want,
            "{}: {got} vs {want}",
            row.tensor
        );
    }
}

#[test]
fn partial_ranges_concatenate_to_the_whole() {
    let Some(path) = model("partial_ranges_concatenate_to_the_whole", "gemma3-270m") else {
        return;
    };
    let r = GgufReader::open(&path).unwrap();
    // One tensor of each k-quant / legacy type present, read in block-aligned pieces.
    for ty in ["Q4_K", "Q5_0", "Q6_K", "Q8_0", "F32"] {
        let i = r
            .tensors()
            .iter()
            .position(|t| t.dtype.to_string() == ty)
            .unwrap();
        let t = &r.tensors()[i];
        let n = t.numel().min(40 * 1024);
        let whole = read_all(&r, i, 0..n);
        let step = t.block * 37;
        let mut pieces = Vec::new();
        let mut s = 0;
        while s < n {
            let e = (s + step).min(n);
            pieces.extend(read_all(&r, i, s..e));
            s = e;
        }
        assert_eq!(
            whole.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            pieces.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            "{ty}"
        );
        if t.block > 1 {
            let err = r.read(i, 1..t.block, &mut |_| {}).unwrap_err();
            assert!(matches!(err, Error::InvalidTensor { .. }), "{err}");
        }
        let err = r.read(i, 0..t.numel() + t.block, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains(&t.name), "{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Synthetic files: a reference quantizer and an element-wise reference dequantizer per type.

fn f16_bits(x: f32) -> u16 {
    half::f16::from_f32(x).to_bits()
}
fn f16_at(b: &[u8], i: usize) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([b[i], b[i + 1]])).to_f32()
}
/// Round to nearest, halves away from zero (any rounding yields a valid encoding).
fn round(x: f32) -> i32 {
    x.round() as i32
}
/// The element of largest magnitude, with its sign.
fn max_abs(x: &[f32]) -> f32 {
    x.iter()
        .copied()
        .fold(0f32, |m, v| if v.abs() > m.abs() { v } else { m })
}
fn inv(d: f32) -> f32 {
    if d == 0.0 {
        0.0
    } else {
        1.0 / d
    }
}

/// Quantize `x` (a multiple of the type's block) into the type's blocks.
fn quantize(ty: &str, x: &[f32]) -> Vec<u8> {
    let g = GgmlType::from_name(ty).unwrap();
    let mut out = Vec::new();
    for blk in x.chunks(g.block as usize) {
        let start = out.len();
        match ty {
            "F32" => out.extend_from_slice(&blk[0].to_le_bytes()),
            "F16" => out.extend_from_slice(&f16_bits(blk[0]).to_le_bytes()),
            "BF16" => {
                let b = blk[0].to_bits();
                let r = ((b as u64 + 0x7fff + ((b >> 16) & 1) as u64) >> 16) as u16;
                out.extend_from_slice(&r.to_le_bytes());
            }
            "Q4_0" | "Q5_0" => {
                let bits = if ty == "Q4_0" { 4 } else { 5 };
                let half = (1 << (bits - 1)) as f32; // 8 or 16
                let d = max_abs(blk) / -half;
                let id = inv(d);
                let q: Vec<u32> = blk
                    .iter()
                    .map(|v| {
                        ((v * id + half + 0.5).trunc() as i32).clamp(0, (1 << bits) - 1) as u32
                    })
                    .collect();
                out.extend_from_slice(&f16_bits(d).to_le_bytes());
                if bits == 5 {
                    let qh = (0..32).fold(0u32, |h, i| h | ((q[i] >> 4) << i));
                    out.extend_from_slice(&qh.to_le_bytes());
                }
                out.extend((0..16).map(|j| ((q[j] & 15) | ((q[j + 16] & 15) << 4)) as u8));
            }
            "Q4_1" | "Q5_1" => {
                let bits = if ty == "Q4_1" { 4 } else { 5 };
                let (lo, hi) = blk
                    .iter()
                    .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
                let d = (hi - lo) / ((1 << bits) - 1) as f32;
                let id = inv(d);
                let q: Vec<u32> = blk
                    .iter()
                    .map(|v| {
                        (((v - lo) * id + 0.5).trunc() as i32).clamp(0, (1 << bits) - 1) as u32
                    })
                    .collect();
                out.extend_from_slice(&f16_bits(d).to_le_bytes());
                out.extend_from_slice(&f16_bits(lo).to_le_bytes());
                if bits == 5 {
                    let qh = (0..32).fold(0u32, |h, i| h | ((q[i] >> 4) << i));
                    out.extend_from_slice(&qh.to_le_bytes());
                }
                out.extend((0..16).map(|j| ((q[j] & 15) | ((q[j + 16] & 15) << 4)) as u8));
            }
            "Q8_0" | "Q8_1" => {
                let d = max_abs(blk).abs() / 127.0;
                let id = inv(d);
                let q: Vec<i8> = blk
                    .iter()
                    .map(|v| round(v * id).clamp(-127, 127) as i8)
                    .collect();
                out.extend_from_slice(&f16_bits(d).to_le_bytes());
                if ty == "Q8_1" {
                    let s: i32 = q.iter().map(|&v| i32::from(v)).sum();
                    out.extend_from_slice(&f16_bits(d * s as f32).to_le_bytes());
                }
                out.extend(q.iter().map(|&v| v as u8));
            }
            "Q8_K" => {
                let d = max_abs(blk).abs() / 127.0;
                let id = inv(d);
                let q: Vec<i8> = blk
                    .iter()
                    .map(|v| round(v * id).clamp(-127, 127) as i8)
                    .collect();
                out.extend_from_slice(&d.to_le_bytes());
                out.extend(q.iter().map(|&v| v as u8));
                for g in q.chunks(16) {
                    let s: i16 = g.iter().map(|&v| i16::from(v)).sum();
                    out.extend_from_slice(&s.to_le_bytes());
                }
            }
            "Q2_K" => out.extend(quantize_q2_k(blk)),
            "Q3_K" => out.extend(quantize_q3_k(blk)),
            "Q4_K" => out.extend(quantize_q45_k(blk, 4)),
            "Q5_K" => out.extend(quantize_q45_k(blk, 5)),
            "Q6_K" => out.extend(quantize_q6_k(blk)),
            _ => panic!("no quantizer for {ty}"),
        }
        assert_eq!(out.len() - start, g.type_size as usize, "{ty} block size");
    }
    out
}

/// Per-group scale/offset quantization with a shared super-block scale: for each group,
/// `x ≈ (d * sc) * q - (dmin * m)`, with q in 0..=qmax and sc, m in 0..=smax.
fn affine_groups(
    x: &[f32],
    group: usize,
    qmax: i32,
    smax: i32,
) -> (f32, f32, Vec<u8>, Vec<u8>, Vec<i32>) {
    let groups: Vec<(f32, f32)> = x
        .chunks(group)
        .map(|g| {
            let lo = g.iter().copied().fold(f32::MAX, f32::min);
            let hi = g.iter().copied().fold(f32::MIN, f32::max);
            let off = (-lo).max(0.0);
            ((hi + off) / qmax as f32, off)
        })
        .collect();
    let d = groups.iter().map(|g| g.0).fold(0.0, f32::max) / smax as f32;
    let dmin = groups.iter().map(|g| g.1).fold(0.0, f32::max) / smax as f32;
    let (d, dmin) = (
        half::f16::from_f32(d).to_f32(),
        half::f16::from_f32(dmin).to_f32(),
    );
    let sc: Vec<u8> = groups
        .iter()
        .map(|g| round(g.0 * inv(d)).clamp(0, smax) as u8)
        .collect();
    let m: Vec<u8> = groups
        .iter()
        .map(|g| round(g.1 * inv(dmin)).clamp(0, smax) as u8)
        .collect();
    let mut q = Vec::with_capacity(x.len());
    for (gi, g) in x.chunks(group).enumerate() {
        let step = d * sc[gi] as f32;
        let off = dmin * m[gi] as f32;
        for &v in g {
            q.push(round((v + off) * inv(step)).clamp(0, qmax));
        }
    }
    (d, dmin, sc, m, q)
}

fn quantize_q2_k(x: &[f32]) -> Vec<u8> {
    let (d, dmin, sc, m, q) = affine_groups(x, 16, 3, 15);
    let mut b = vec![0u8; 84];
    for s in 0..16 {
        b[s] = sc[s] | (m[s] << 4);
    }
    for (e, &v) in q.iter().enumerate() {
        let (half, j, l) = (e / 128, (e % 128) / 32, e % 32);
        b[16 + half * 32 + l] |= (v as u8) << (2 * j);
    }
    b[80..82].copy_from_slice(&f16_bits(d).to_le_bytes());
    b[82..84].copy_from_slice(&f16_bits(dmin).to_le_bytes());
    b
}

fn quantize_q3_k(x: &[f32]) -> Vec<u8> {
    // Signed: x ≈ (d * sc) * q with sc in -32..=31 and q in -4..=3.
    let group_scale: Vec<f32> = x.chunks(16).map(|g| max_abs(g) / -4.0).collect();
    let d = group_scale.iter().fold(0f32, |m, s| m.max(s.abs())) / 31.0;
    let d = half::f16::from_f32(d).to_f32();
    let sc: Vec<i32> = group_scale
        .iter()
        .map(|s| round(s * inv(d)).clamp(-32, 31))
        .collect();
    let mut b = vec![0u8; 110];
    for (e, &v) in x.iter().enumerate() {
        let q = round(v * inv(d * sc[e / 16] as f32)).clamp(-4, 3) + 4;
        let (half, j, l) = (e / 128, (e % 128) / 32, e % 32);
        b[32 + half * 32 + l] |= ((q & 3) as u8) << (2 * j);
        b[l] |= ((q >> 2) as u8) << (e / 32);
    }
    for (i, &s) in sc.iter().enumerate() {
        let s = (s + 32) as u8;
        if i < 8 {
            b[96 + i] |= s & 15;
        } else {
            b[96 + i - 8] |= (s & 15) << 4;
        }
        b[104 + i % 4] |= (s >> 4) << (2 * (i / 4));
    }
    b[108..110].copy_from_slice(&f16_bits(d).to_le_bytes());
    b
}

fn quantize_q45_k(x: &[f32], bits: u32) -> Vec<u8> {
    let (d, dmin, sc, m, q) = affine_groups(x, 32, (1 << bits) - 1, 63);
    let mut b = vec![0u8; if bits == 4 { 144 } else { 176 }];
    b[0..2].copy_from_slice(&f16_bits(d).to_le_bytes());
    b[2..4].copy_from_slice(&f16_bits(dmin).to_le_bytes());
    for j in 0..4 {
        b[4 + j] = sc[j] | ((sc[j + 4] >> 4) << 6);
        b[4 + j + 4] = m[j] | ((m[j + 4] >> 4) << 6);
        b[4 + j + 8] = (sc[j + 4] & 15) | ((m[j + 4] & 15) << 4);
    }
    let qs = if bits == 4 { 16 } else { 48 };
    for (e, &v) in q.iter().enumerate() {
        let (s, l) = (e / 32, e % 32);
        b[qs + (s / 2) * 32 + l] |= ((v & 15) as u8) << (4 * (s % 2));
        if bits == 5 {
            b[16 + l] |= ((v >> 4) as u8) << s;
        }
    }
    b
}

fn quantize_q6_k(x: &[f32]) -> Vec<u8> {
    let group_scale: Vec<f32> = x.chunks(16).map(|g| max_abs(g) / -32.0).collect();
    let d = group_scale.iter().fold(0f32, |m, s| m.max(s.abs())) / 127.0;
    let d = half::f16::from_f32(d).to_f32();
    let sc: Vec<i32> = group_scale
        .iter()
        .map(|s| round(s * inv(d)).clamp(-128, 127))
        .collect();
    let mut b = vec![0u8; 210];
    for (e, &v) in x.iter().enumerate() {
        let q = (round(v * inv(d * sc[e / 16] as f32)).clamp(-32, 31) + 32) as u8;
        let (half, k, l) = (e / 128, (e % 128) / 32, e % 32);
        b[half * 64 + (k % 2) * 32 + l] |= (q & 15) << (4 * (k / 2));
        b[128 + half * 32 + l] |= (q >> 4) << (2 * k);
    }
    for (i, &s) in sc.iter().enumerate() {
        b[192 + i] = s as i8 as u8;
    }
    b[208..210].copy_from_slice(&f16_bits(d).to_le_bytes());
    b
}

/// Element `e` of one block, straight from the block layouts (a formulation independent of
/// the reader's loops: one element at a time, indices computed as gguf-py's reshapes do).
fn reference_value(ty: &str, b: &[u8], e: usize) -> f32 {
    let nib = |qs: &[u8], e: usize| {
        if e < 16 {
            qs[e] & 15
        } else {
            qs[e - 16] >> 4
        }
    };
    let qh32 = |b: &[u8], at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    match ty {
        "F32" => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        "F16" => f16_at(b, 0),
        "BF16" => half::bf16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32(),
        "Q4_0" => (nib(&b[2..], e) as f32 - 8.0) * f16_at(b, 0),
        "Q4_1" => nib(&b[4..], e) as f32 * f16_at(b, 0) + f16_at(b, 2),
        "Q5_0" => {
            let q = nib(&b[6..], e) as u32 | (((qh32(b, 2) >> e) & 1) << 4);
            (q as f32 - 16.0) * f16_at(b, 0)
        }
        "Q5_1" => {
            let q = nib(&b[8..], e) as u32 | (((qh32(b, 4) >> e) & 1) << 4);
            q as f32 * f16_at(b, 0) + f16_at(b, 2)
        }
        "Q8_0" => (b[2 + e] as i8) as f32 * f16_at(b, 0),
        "Q8_1" => (b[4 + e] as i8) as f32 * f16_at(b, 0),
        "Q8_K" => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) * (b[4 + e] as i8) as f32,
        "Q2_K" => {
            let sc = b[e / 16];
            let (d, dmin) = (f16_at(b, 80), f16_at(b, 82));
            let q = (b[16 + (e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3;
            (d * (sc & 15) as f32) * q as f32 - dmin * (sc >> 4) as f32
        }
        "Q3_K" => {
            let i = e / 16;
            let low = if i < 8 {
                b[96 + i] & 15
            } else {
                b[96 + i - 8] >> 4
            };
            let high = (b[104 + i % 4] >> (2 * (i / 4))) & 3;
            let sc = (low | (high << 4)) as i32 - 32;
            let ql = ((b[32 + (e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3) as i32;
            let hbit = (b[e % 32] >> (e / 32)) & 1;
            let q = ql - if hbit == 1 { 0 } else { 4 };
            (f16_at(b, 108) * sc as f32) * q as f32
        }
        "Q4_K" | "Q5_K" => {
            // gguf-py's formulation of the 6-bit scales: rows d, m, m_d of four bytes.
            let s = e / 32;
            let (dq, mq, md) = (&b[4..8], &b[8..12], &b[12..16]);
            let (sc, m) = if s < 4 {
                (dq[s] & 0x3f, mq[s] & 0x3f)
            } else {
                (
                    (md[s - 4] & 0x0f) | ((dq[s - 4] >> 2) & 0x30),
                    (md[s - 4] >> 4) | ((mq[s - 4] >> 2) & 0x30),
                )
            };
            let qs = if ty == "Q4_K" { 16 } else { 48 };
            let byte = b[qs + (s / 2) * 32 + e % 32];
            let mut q = if s % 2 == 0 { byte & 15 } else { byte >> 4 };
            if ty == "Q5_K" {
                q |= ((b[16 + e % 32] >> s) & 1) << 4;
            }
            (f16_at(b, 0) * sc as f32) * q as f32 - f16_at(b, 2) * m as f32
        }
        "Q6_K" => {
            let (g, l) = (e / 32, e % 32);
            let (half, k) = (g / 4, g % 4);
            let byte = b[half * 64 + (k % 2) * 32 + l];
            let low = if k < 2 { byte & 15 } else { byte >> 4 };
            let high = (b[128 + half * 32 + l] >> (2 * k)) & 3;
            let q = (low | (high << 4)) as i32 - 32;
            let sc = b[192 + e / 16] as i8;
            (f16_at(b, 208) * sc as f32) * q as f32
        }
        _ => panic!("no reference for {ty}"),
    }
}

fn reference_dequantize(ty: &str, bytes: &[u8]) -> Vec<f32> {
    let g = GgmlType::from_name(ty).unwrap();
    bytes
        .chunks(g.type_size as usize)
        .flat_map(|b| (0..g.block as usize).map(move |e| reference_value(ty, b, e)))
        .collect()
}

/// Deterministic test values: a mix of Gaussian-like noise at several scales, a run of zeros
/// (scale 0), a constant run, and a few outliers.
fn test_values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|i| {
            let block = i / 256;
            match block % 5 {
                3 if i % 256 < 64 => 0.0,
                3 if i % 256 < 96 => 0.25,
                _ => {
                    let u: f64 = (0..4).map(|_| next()).sum::<f64>() - 2.0;
                    let scale = [0.02, 1.0, 0.003, 7.5, 0.4][block % 5];
                    let mut v = (u * scale) as f32;
                    if i % 97 == 5 {
                        v *= 6.0;
                    }
                    v
                }
            }
        })
        .collect()
}

/// RMS of the error relative to the RMS of the values, allowed per type.
const TOLERANCE: &[(&str, f32)] = &[
    ("F32", 0.0),
    ("F16", 1e-3),
    ("BF16", 5e-3),
    ("Q8_0", 0.015),
    ("Q8_1", 0.015),
    ("Q8_K", 0.04),
    ("Q6_K", 0.05),
    ("Q5_0", 0.1),
    ("Q5_1", 0.1),
    ("Q5_K", 0.1),
    ("Q4_0", 0.25),
    ("Q4_1", 0.2),
    ("Q4_K", 0.2),
    ("Q3_K", 0.3),
    ("Q2_K", 0.6),
];

#[test]
fn every_decodable_type_round_trips_through_a_gguf_file() {
    let (rows, cols) = (5u64, 512u64);
    let n = (rows * cols) as usize;
    let mut tensors = Vec::new();
    let mut originals = Vec::new();
    for (k, (ty, _)) in TOLERANCE.iter().enumerate() {
        // Per-block errors are judged relative to each block's own scale below, so the
        // values mix scales freely.
        let x = test_values(n, 0x9e37_79b9_7f4a_7c15 ^ k as u64);
        let g = GgmlType::from_name(ty).unwrap();
        tensors.push(Tensor {
            name: format!("blk.{k}.attn_q.weight"),
            ne: vec![cols, rows],
            ty: g.code,
            data: quantize(ty, &x),
        });
        originals.push(x);
    }
    let dir = tempfile::tempdir().unwrap();
    let kvs = [
        ("general.architecture", MetaValue::String("llama".into())),
        ("general.alignment", MetaValue::U32(64)),
    ];
    let path = write_temp(&dir, "all-types.gguf", &gguf_bytes(3, &kvs, &tensors, 64));
    let r = GgufReader::open(&path).unwrap();
    assert_eq!(r.alignment(), 64);
    for (i, ((ty, tol), x)) in TOLERANCE.iter().zip(&originals).enumerate() {
        let t = &r.tensors()[i];
        assert_eq!(t.shape, vec![rows, cols]);
        assert_eq!(t.dtype.to_string(), *ty);
        let g = GgmlType::from_name(ty).unwrap();
        assert_eq!(t.block, g.block);
        let got = read_all(&r, i, 0..t.numel());
        let want = reference_dequantize(ty, &tensors[i].data);
        assert_eq!(got.len(), want.len());
        for (e, (a, b)) in got.iter().zip(&want).enumerate() {
            assert_eq!(a.to_bits(), b.to_bits(), "{ty} element {e}: {a} vs {b}");
        }
        // Close to the originals, judged within each super-block of 256 values so that
        // blocks of tiny values count as much as blocks of large ones.
        let mut worst = 0f32;
        for (blk, (xs, ys)) in x.chunks(256).zip(got.chunks(256)).enumerate() {
            let rms = (xs.iter().map(|v| v * v).sum::<f32>() / xs.len() as f32).sqrt();
            let err = (xs
                .iter()
                .zip(ys)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f32>()
                / xs.len() as f32)
                .sqrt();
            assert!(
                err <= tol * rms + 1e-30,
                "{ty} block {blk}: rms error {err} vs rms {rms}"
            );
            worst = worst.max(err / rms);
        }
        eprintln!("{ty}: worst block rms error / rms = {worst:.2e} (allowed {tol})");
        // Row reads agree with the whole.
        let row = read_all(&r, i, 2 * cols..3 * cols);
        assert_eq!(row, got[2 * cols as usize..3 * cols as usize].to_vec());
    }
}

#[test]
fn version_2_files_and_metadata_of_every_type() {
    let nested = MetaValue::Array(vec![
        MetaValue::Array(vec![MetaValue::I16(-3), MetaValue::I16(4)]),
        MetaValue::Array(vec![MetaValue::I16(5)]),
    ]);
    let kvs = [
        ("general.architecture", MetaValue::String("qwen2".into())),
        ("a.u8", MetaValue::U8(200)),
        ("a.i8", MetaValue::I8(-100)),
        ("a.u16", MetaValue::U16(60000)),
        ("a.i16", MetaValue::I16(-30000)),
        ("a.u32", MetaValue::U32(4_000_000_000)),
        ("a.i32", MetaValue::I32(-2_000_000_000)),
        ("a.f32", MetaValue::F32(1.5)),
        ("a.bool", MetaValue::Bool(true)),
        ("a.string", MetaValue::String("héllo".into())),
        ("a.u64", MetaValue::U64(u64::MAX)),
        ("a.i64", MetaValue::I64(i64::MIN)),
        ("a.f64", MetaValue::F64(-0.125)),
        ("a.nested", nested.clone()),
        (
            "a.bools",
            MetaValue::Array(vec![MetaValue::Bool(false), MetaValue::Bool(true)]),
        ),
        ("qwen2.block_count", MetaValue::U32(2)),
        ("qwen2.embedding_length", MetaValue::U64(64)),
        ("qwen2.attention.head_count", MetaValue::U32(4)),
        (
            "qwen2.attention.head_count_kv",
            MetaValue::Array(vec![MetaValue::I32(2), MetaValue::I32(0)]),
        ),
        ("qwen2.feed_forward_length", MetaValue::U32(128)),
        ("qwen2.expert_count", MetaValue::U32(8)),
        ("qwen2.expert_used_count", MetaValue::U32(2)),
        (
            "tokenizer.ggml.tokens",
            MetaValue::Array(vec![MetaValue::String("a".into()); 7]),
        ),
    ];
    let x = test_values(64, 3);
    let tensors = [Tensor {
        name: "token_embd.weight".into(),
        ne: vec![32, 2],
        ty: 1,
        data: quantize("F16", &x),
    }];
    let dir = tempfile::tempdir().unwrap();
    let path = write_temp(&dir, "v2.gguf", &gguf_bytes(2, &kvs, &tensors, 32));
    let r = GgufReader::open(&path).unwrap();
    assert_eq!(r.version(), 2);
    for (k, v) in &kvs {
        assert_eq!(r.metadata(k).as_ref(), Some(v), "{k}");
    }
    assert_eq!(
        r.metadata_keys().collect::<Vec<_>>(),
        kvs.iter().map(|kv| kv.0).collect::<Vec<_>>()
    );
    assert_eq!(r.metadata_array_len("a.nested"), Some(2));
    assert_eq!(r.metadata_u64("a.i8"), None);
    assert_eq!(r.metadata_u64("a.u16"), Some(60000));
    assert_eq!(r.metadata("missing"), None);
    let c = r.config().unwrap();
    assert_eq!(c.architecture.as_deref(), Some("qwen2"));
    assert_eq!(
        (c.layers, c.hidden_size, c.heads, c.kv_heads),
        (Some(2), Some(64), Some(4), Some(2))
    );
    assert_eq!(
        (
            c.intermediate_size,
            c.experts,
            c.experts_per_token,
            c.vocab_size
        ),
        (Some(128), Some(8), Some(2), Some(7))
    );
    let got = read_all(&r, 0, 0..64);
    let want: Vec<f32> = x.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
    assert_eq!(got, want);
}

#[test]
fn split_parts_open_on_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let x = test_values(256, 9);
    let first = [
        ("general.architecture", MetaValue::String("llama".into())),
        ("llama.block_count", MetaValue::U32(2)),
        ("split.no", MetaValue::U16(0)),
        ("split.count", MetaValue::U16(2)),
        ("split.tensors.count", MetaValue::I32(2)),
    ];
    let second = [
        ("split.no", MetaValue::U16(1)),
        ("split.count", MetaValue::U16(2)),
        ("split.tensors.count", MetaValue::I32(2)),
    ];
    let t = |name: &str| Tensor {
        name: name.into(),
        ne: vec![256],
        ty: 12,
        data: quantize("Q4_K", &x),
    };
    write_temp(
        &dir,
        "m-00001-of-00002.gguf",
        &gguf_bytes(3, &first, &[t("blk.0.attn_q.weight")], 32),
    );
    let p2 = write_temp(
        &dir,
        "m-00002-of-00002.gguf",
        &gguf_bytes(3, &second, &[t("blk.1.attn_q.weight")], 32),
    );
    let r2 = GgufReader::open(&p2).unwrap();
    assert_eq!(r2.architecture(), None);
    assert_eq!(r2.config(), None);
    assert_eq!(read_all(&r2, 0, 0..256).len(), 256);
    let src = fingerprint::source::resolve(dir.path().to_str().unwrap()).unwrap();
    assert_eq!(src.files.len(), 2);
    let plan = fingerprint::engine::plan(&src).unwrap();
    assert_eq!(plan.tensors.len(), 2);
    assert_eq!(plan.config.layers, Some(2));
    assert_eq!(plan.architecture.as_deref(), Some("llama"));
}

#[test]
fn undecodable_types_are_listed_and_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let tensors = [
        Tensor {
            name: "blk.0.attn_q.weight".into(),
            ne: vec![256, 2],
            ty: 16, // IQ2_XXS
            data: vec![0; 2 * 66],
        },
        Tensor {
            name: "blk.0.attn_k.weight".into(),
            ne: vec![32],
            ty: 39, // MXFP4
            data: vec![0; 17],
        },
        Tensor {
            name: "ids".into(),
            ne: vec![4],
            ty: 26, // I32
            data: vec![0; 16],
        },
    ];
    let path = write_temp(&dir, "iq.gguf", &gguf_bytes(3, &[], &tensors, 32));
    let r = GgufReader::open(&path).unwrap();
    for (i, name) in ["IQ2_XXS", "MXFP4", "I32"].iter().enumerate() {
        assert_eq!(
            r.tensors()[i].dtype,
            fingerprint::dtype::DType::Other(name.to_string())
        );
        let err = r.read(i, 0..0, &mut |_| {}).unwrap_err();
        match &err {
            Error::UnsupportedDtype {
                tensor,
                dtype,
                path: p,
            } => {
                assert_eq!(tensor, &tensors[i].name);
                assert_eq!(dtype, name);
                assert_eq!(p, &path);
            }
            other => panic!("{other}"),
        }
    }
    assert_eq!(r.tensors()[0].block, 256);
    assert_eq!(r.tensor_bytes(0).map(|b| b.end - b.start), Some(132));
}

// ---------------------------------------------------------------------------------------------
// 3. Hostile headers.

/// Write `bytes`, open them, and return the error (the test fails if they open).
fn reject(bytes: &[u8]) -> (Error, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_temp(&dir, "hostile.gguf", bytes);
    let err = GgufReader::open(&path).expect_err("hostile file opened");
    // The message names the file.
    assert!(err.to_string().contains("hostile.gguf"), "{err}");
    (err, path)
}

/// One valid tensor info for a 32-element F32 tensor at `offset`.
fn info(b: &mut Bytes, name: &str, ne: &[u64], ty: u32, offset: u64) {
    b.str(name).u32(ne.len() as u32);
    for &d in ne {
        b.u64(d);
    }
    b.u32(ty).u64(offset);
}

fn pad_to(b: &mut Bytes, align: usize, data: usize) {
    let n = b.0.len().div_ceil(align) * align;
    b.0.resize(n + data, 0);
}

#[test]
fn rejects_bad_magic_and_versions() {
    let (e, _) = reject(b"GGML\x03\0\0\0");
    assert!(matches!(e, Error::UnknownFormat { .. }), "{e}");
    for (v, what) in [
        (1, "version 1"),
        (4, "version 4"),
        (0x0300_0000, "big-endian"),
    ] {
        let (e, _) = reject(&Bytes::header(v, 0, 0).0);
        assert!(e.to_string().contains(what), "{e}");
    }
    let (e, _) = reject(b"GG");
    assert!(matches!(e, Error::Truncated { .. }), "{e}");
}

#[test]
fn rejects_truncated_files_everywhere() {
    // A valid file, cut at every length: each prefix fails cleanly.
    let x = test_values(64, 1);
    let bytes = gguf_bytes(
        3,
        &[
            ("general.architecture", MetaValue::String("llama".into())),
            (
                "tokenizer.ggml.tokens",
                MetaValue::Array(vec![MetaValue::String("ab".into()); 3]),
            ),
        ],
        &[Tensor {
            name: "blk.0.attn_q.weight".into(),
            ne: vec![64],
            ty: 8,
            data: quantize("Q8_0", &x),
        }],
        32,
    );
    let dir = tempfile::tempdir().unwrap();
    let full = write_temp(&dir, "full.gguf", &bytes);
    GgufReader::open(&full).unwrap();
    // The file ends with padding after the tensor's 68 bytes: cuts into it still open.
    let data_end = bytes.len() - (96 - 68);
    for cut in 0..data_end {
        let p = write_temp(&dir, "cut.gguf", &bytes[..cut]);
        let err = GgufReader::open(&p).expect_err("truncated file opened");
        assert!(
            matches!(err, Error::Truncated { .. } | Error::InvalidTensor { .. }),
            "cut at {cut}: {err}"
        );
    }
}

#[test]
fn rejects_huge_lengths_and_counts() {
    // Metadata key with an absurd length.
    let mut b = Bytes::header(3, 0, 1);
    b.u64(u64::MAX - 3).u64(0).u64(0);
    let (e, _) = reject(&b.0);
    assert!(e.to_string().contains("metadata key 0"), "{e}");
    // A string value longer than the file.
    let mut b = Bytes::header(3, 0, 1);
    b.str("general.name").u32(8).u64(1 << 40);
    let (e, _) = reject(&b.0);
    assert!(e.to_string().contains("general.name"), "{e}");
    // A string value within the cap but past the end.
    let mut b = Bytes::header(3, 0, 1);
    b.str("general.name").u32(8).u64(1000);
    b.0.extend_from_slice(b"short");
    let (e, _) = reject(&b.0);
    assert!(matches!(e, Error::Truncated { .. }), "{e}");
    // kv count over the cap, and under the cap but more than the file holds.
    let (e, _) = reject(&Bytes::header(3, 0, u64::MAX).0);
    assert!(e.to_string().contains("metadata count"), "{e}");
    let (e, _) = reject(&Bytes::header(3, 0, 60_000).0);
    assert!(matches!(e, Error::Truncated { .. }), "{e}");
    // Tensor count.
    let (e, _) = reject(&Bytes::header(3, 1 << 40, 0).0);
    assert!(e.to_string().contains("tensor count"), "{e}");
    // An array claiming 2^62 elements, and one claiming more u64 than the file holds.
    let mut b = Bytes::header(3, 0, 1);
    b.str("tokenizer.ggml.scores").u32(9).u32(6).u64(1 << 62);
    let (e, _) = reject(&b.0);
    assert!(e.to_string().contains("tokenizer.ggml.scores"), "{e}");
    let mut b = Bytes::header(3, 0, 1);
    b.str("tokenizer.ggml.scores").u32(9).u32(10).u64(1 << 20);
    let (e, _) = reject(&b.0);
    assert!(matches!(e, Error::Truncated { .. }), "{e}");
    // Arrays nested deeper than the cap.
    let mut b = Bytes::header(3, 0, 1);
    b.str("deep").u32(9);
    for _ in 0..40 {
        b.u32(9).u64(1);
    }
    b.u32(0).u64(0);
    let (e, _) = reject(&b.0);
    assert!(e.to_string().contains("nests arrays"), "{e}");
}

#[test]
fn rejects_bad_metadata_values() {
    let mut b = Bytes::header(3, 0, 1);
    b.str("x").u32(13).u32(0);
    let (e, _) = reject(&b.0);
    assert!(e.to_string().contains("unknown value type 13"), "{e}");
    let mut b = Bytes::header(3, 0, 1);
    b.str("x").u32(7);
    b.0.push(2);
    let (e, _) = reject(&b.0);
    assert!(e.to_string().contains("bool"), "{e}");
    let mut b = Bytes::header(3, 0, 2);
    b.str("x").u32(4).u32(1);
    b.str("x").u32(4).u32(2);
    let (e, _) = reject(&b.0);
    assert!(e.to_string().contains("appears twice"), "{e}");
    let mut b = Bytes::header(3, 0, 1);
    b.u64(2);
    b.0.extend_from_slice(&[0xff, 0xfe]);
    b.u32(4).u32(1);
    let (e, _) = reject(&b.0);
    assert!(e.to_string().contains("UTF-8"), "{e}");
}

#[test]
fn rejects_bad_alignment() {
    for (v, ty) in [(0u64, 4u32), (48, 4), (1 << 40, 10)] {
        let mut b = Bytes::header(3, 0, 1);
        b.str("general.alignment").u32(ty);
        if ty == 4 {
            b.u32(v as u32);
        } else {
            b.u64(v);
        }
        let (e, _) = reject(&b.0);
        assert!(e.to_string().contains("general.alignment"), "{v}: {e}");
    }
    let mut b = Bytes::header(3, 0, 1);
    b.str("general.alignment").u32(8).str("32");
    let (e, _) = reject(&b.0);
    assert!(e.to_string().contains("unsigned integer"), "{e}");
}

#[test]
fn rejects_bad_tensor_infos() {
    let one = |ne: &[u64], ty: u32, offset: u64, data: usize| {
        let mut b = Bytes::header(3, 1, 0);
        info(&mut b, "blk.0.attn_q.weight", ne, ty, offset);
        pad_to(&mut b, 32, data);
        b.0
    };
    let named = |e: &Error, what: &str| {
        let s = e.to_string();
        assert!(s.contains("blk.0.attn_q.weight") && s.contains(what), "{s}");
    };
    // Five dimensions.
    let (e, _) = reject(&one(&[1, 1, 1, 1, 32], 0, 0, 128));
    named(&e, "5 dimensions");
    // Element count overflow (each extent fits int64, the product does not).
    let (e, _) = reject(&one(&[1 << 32, 1 << 32], 0, 0, 0));
    named(&e, "overflows");
    let (e, _) = reject(&one(&[1 << 31, 1 << 31, 4], 0, 0, 0));
    named(&e, "overflows");
    // Byte size overflow: fine element count, too many bytes.
    let (e, _) = reject(&one(&[1 << 61, 2], 0, 0, 0));
    named(&e, "overflows");
    // Negative extent as int64.
    let (e, _) = reject(&one(&[u64::MAX], 0, 0, 0));
    named(&e, "negative");
    // Unknown type code and rows that are not whole blocks.
    let (e, _) = reject(&one(&[32], 99, 0, 128));
    named(&e, "unknown ggml type code 99");
    let (e, _) = reject(&one(&[48], 12, 0, 1024));
    named(&e, "not a whole number of Q4_K blocks");
    // Offset out of range, past the end by one byte, and unaligned.
    let (e, _) = reject(&one(&[32], 0, 1 << 40, 128));
    named(&e, "past the end");
    let (e, _) = reject(&one(&[32], 0, 0, 127));
    named(&e, "past the end");
    let (e, _) = reject(&one(&[32], 0, u64::MAX - 31, 128));
    named(&e, "past the end");
    let (e, _) = reject(&one(&[32], 0, 8, 256));
    named(&e, "not a multiple of the alignment");
    // Name too long, not UTF-8, or duplicated.
    let mut b = Bytes::header(3, 1, 0);
    info(&mut b, &"x".repeat(2000), &[32], 0, 0);
    pad_to(&mut b, 32, 128);
    let (e, _) = reject(&b.0);
    assert!(e.to_string().contains("cap"), "{e}");
    let mut b = Bytes::header(3, 2, 0);
    info(&mut b, "w", &[32], 0, 0);
    info(&mut b, "w", &[32], 0, 128);
    pad_to(&mut b, 32, 256);
    let (e, _) = reject(&b.0);
    assert!(e.to_string().contains("appears twice"), "{e}");
}

#[test]
fn rejects_overlapping_tensors() {
    // b starts inside a.
    let mut b = Bytes::header(3, 2, 0);
    info(&mut b, "a", &[64], 0, 0);
    info(&mut b, "b", &[32], 0, 128);
    pad_to(&mut b, 32, 512);
    let (e, _) = reject(&b.0);
    let s = e.to_string();
    assert!(
        s.contains("tensor b") && s.contains("overlaps tensor a"),
        "{s}"
    );
    // Same start; and a long tensor spanning a later small one with an empty one between.
    let mut b = Bytes::header(3, 3, 0);
    info(&mut b, "big", &[256], 0, 0);
    info(&mut b, "empty", &[0], 0, 64);
    info(&mut b, "small", &[8], 0, 512);
    pad_to(&mut b, 32, 2048);
    let (e, _) = reject(&b.0);
    assert!(e.to_string().contains("overlaps tensor big"), "{e}");
    // Touching is fine, and so are empty tensors anywhere.
    let mut b = Bytes::header(3, 3, 0);
    info(&mut b, "a", &[64], 0, 0);
    info(&mut b, "empty", &[0, 5], 0, 64);
    info(&mut b, "b", &[32], 0, 256);
    pad_to(&mut b, 32, 384);
    let dir = tempfile::tempdir().unwrap();
    let p = write_temp(&dir, "ok.gguf", &b.0);
    let r = GgufReader::open(&p).unwrap();
    assert_eq!(r.tensors()[1].shape, vec![5, 0]);
    assert_eq!(read_all(&r, 1, 0..0), Vec::<f32>::new());
}

#[test]
fn hostile_bytes_never_panic() {
    // Flip bytes of a valid header one at a time (plus a few random multi-byte corruptions):
    // opening may succeed or fail, reading what opened must not panic or read out of bounds.
    let x = test_values(512, 2);
    let bytes = gguf_bytes(
        3,
        &[
            ("general.architecture", MetaValue::String("llama".into())),
            ("llama.block_count", MetaValue::U32(1)),
            (
                "tokenizer.ggml.tokens",
                MetaValue::Array(vec![MetaValue::String("tok".into()); 4]),
            ),
        ],
        &[
            Tensor {
                name: "blk.0.attn_q.weight".into(),
                ne: vec![256, 2],
                ty: 14,
                data: quantize("Q6_K", &x),
            },
            Tensor {
                name: "blk.0.attn_k.weight".into(),
                ne: vec![32, 2],
                ty: 2,
                data: quantize("Q4_0", &x[..64]),
            },
        ],
        32,
    );
    let header_len = bytes.len() - 2 * 210 - 64;
    let dir = tempfile::tempdir().unwrap();
    let mut opened = 0;
    for i in 0..header_len {
        for flip in [0xffu8, 0x80, 0x01] {
            let mut b = bytes.clone();
            b[i] ^= flip;
            let p = write_temp(&dir, "flip.gguf", &b);
            if let Ok(r) = GgufReader::open(&p) {
                opened += 1;
                let _ = r.config();
                for k in r.metadata_keys() {
                    let _ = r.metadata(k);
                }
                for (t, info) in r.tensors().iter().enumerate() {
                    let n = info.numel().min(1 << 16);
                    let n = n - n % info.block.max(1);
                    let _ = r.read(t, 0..n, &mut |_| {});
                }
            }
        }
    }
    assert!(opened > 0);
}

/// Mean over q/k/v/o of the Pearson correlation of two models' per-layer std curves.
fn attention_similarity(a: &fingerprint::Fingerprint, b: &fingerprint::Fingerprint) -> f64 {
    let pearson = |x: &[f64], y: &[f64]| {
        let n = x.len() as f64;
        let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
        let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
        let sxx: f64 = x.iter().map(|a| (a - mx) * (a - mx)).sum();
        let syy: f64 = y.iter().map(|b| (b - my) * (b - my)).sum();
        sxy / (sxx * syy).sqrt()
    };
    let roles = fingerprint::Role::ATTENTION;
    let mut total = 0.0;
    for role in &roles {
        let curve = |f: &fingerprint::Fingerprint| -> Vec<f64> {
            f.curve(role, None, |s| s.std)
                .values()
                .map(|v| v.unwrap())
                .collect()
        };
        let (x, y) = (curve(a), curve(b));
        assert_eq!(x.len(), y.len(), "{role}");
        assert!(x.len() >= 3, "{role}: {} layers", x.len());
        total += pearson(&x, &y);
    }
    total / roles.len() as f64
}

/// A q4/q8 quantized copy of a model keeps its fingerprint: the tests quantize the attention
/// weights themselves (the real MiniLM when present, else a generated model) into GGUF files.
#[test]
fn quantized_copies_keep_the_fingerprint() {
    use fingerprint::engine::{fingerprint, Options};
    let dir = tempfile::tempdir().unwrap();
    // (layer, role name in GGUF, rows, cols, values) of the original.
    let mut layers: Vec<(usize, &str, u64, u64, Vec<f32>)> = Vec::new();
    let minilm = testkit::models_dir().join("all-minilm-l6-v2/model.safetensors");
    if minilm.is_file() {
        let r = fingerprint::format::safetensors::SafetensorsReader::open(&minilm).unwrap();
        for (i, t) in r.tensors().iter().enumerate() {
            let Some(rest) = t.name.strip_prefix("encoder.layer.") else {
                continue;
            };
            let (l, suffix) = rest.split_once('.').unwrap();
            let role = match suffix {
                "attention.self.query.weight" => "attn_q",
                "attention.self.key.weight" => "attn_k",
                "attention.self.value.weight" => "attn_v",
                "attention.output.dense.weight" => "attn_output",
                _ => continue,
            };
            let mut v = Vec::new();
            r.read(i, 0..t.numel(), &mut |x| match x {
                Values::F32(x) => v.extend_from_slice(x),
                Values::F64(x) => v.extend(x.iter().map(|&y| y as f32)),
            })
            .unwrap();
            layers.push((l.parse().unwrap(), role, t.shape[0], t.shape[1], v));
        }
    } else {
        let _ = writeln!(
            std::io::stderr(),
            "note: quantized_copies_keep_the_fingerprint: {} not found; using a generated model",
            minilm.display()
        );
        for l in 0..8 {
            for (k, role) in ["attn_q", "attn_k", "attn_v", "attn_output"]
                .iter()
                .enumerate()
            {
                let scale = 0.02 * (1.0 + l as f32 * (1.0 + k as f32) / 4.0);
                let v: Vec<f32> = test_values(64 * 256, (l * 4 + k) as u64)
                    .iter()
                    .map(|x| x * scale)
                    .collect();
                layers.push((l, role, 64, 256, v));
            }
        }
    }
    assert!(layers.len() >= 12);
    let write = |ty: &str| -> fingerprint::Fingerprint {
        let g = GgmlType::from_name(ty).unwrap();
        let tensors: Vec<Tensor> = layers
            .iter()
            .map(|(l, role, rows, cols, v)| Tensor {
                name: format!("blk.{l}.{role}.weight"),
                ne: vec![*cols, *rows],
                ty: g.code,
                data: quantize(ty, v),
            })
            .collect();
        let kvs = [("general.architecture", MetaValue::String("bert".into()))];
        let p = write_temp(
            &dir,
            &format!("{ty}.gguf"),
            &gguf_bytes(3, &kvs, &tensors, 32),
        );
        fingerprint(
            &fingerprint::source::resolve(p.to_str().unwrap()).unwrap(),
            &Options::default(),
        )
        .unwrap()
    };
    let original = write("F32");
    for ty in ["Q8_0", "Q4_0", "Q4_1"] {
        let q = write(ty);
        let s = attention_similarity(&original, &q);
        let _ = writeln!(
            std::io::stderr(),
            "{ty} copy vs original: mean per-role correlation {s:.6}"
        );
        assert!(s > 0.99, "{ty}: {s}");
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Statistics from integer codes (`TensorReader::moments`) against dequantize-then-push.

/// Relative tolerance of the code-sum path against dequantize-then-accumulate: the two sum the
/// same exact values in different orders (rounding differences are ~1e-16).
const MOMENTS_TOLERANCE: f64 = 1e-12;

/// Compare the code-sum statistics of `range` of tensor `index` with those of its dequantized
/// values pushed into an accumulator, work unit by work unit as the engine does. Returns
/// false when the reader has no code-sum path for the tensor's type.
fn moments_agree(r: &GgufReader, index: usize, range: Range<u64>) -> bool {
    let t = &r.tensors()[index];
    let step = (fingerprint::engine::UNIT / t.block).max(1) * t.block;
    let (mut fast, mut slow) = (Accumulator::new(), Accumulator::new());
    let mut s = range.start;
    while s < range.end {
        let e = (s + step).min(range.end);
        let Some(m) = r.moments(index, s..e) else {
            return false;
        };
        fast.merge(&m.unwrap());
        let mut acc = Accumulator::new();
        r.read(index, s..e, &mut |v| match v {
            Values::F32(x) => acc.push(x),
            Values::F64(x) => acc.push(x),
        })
        .unwrap();
        slow.merge(&acc);
        s = e;
    }
    let (f, w) = (fast.finish(), slow.finish());
    let what = format!("{} ({}) {range:?}", t.name, t.dtype);
    assert_eq!((f.numel, f.nan, f.inf), (w.numel, w.nan, w.inf), "{what}");
    let Some(std) = w.std else {
        assert_eq!(f.std, None, "{what}");
        return true;
    };
    let close = |a: Option<f64>, b: Option<f64>, scale: f64, name: &str| {
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(
            (a - b).abs() <= MOMENTS_TOLERANCE * scale,
            "{what}: {name} {a:e} vs {b:e} (dequantized)"
        );
    };
    close(f.std, w.std, std, "std");
    // The mean is judged against the spread: relative to a mean near zero means nothing.
    close(f.mean, w.mean, std.max(w.mean.unwrap().abs()), "mean");
    close(f.l2, w.l2, w.l2.unwrap(), "l2");
    close(f.abs_mean, w.abs_mean, w.abs_mean.unwrap(), "abs_mean");
    assert_eq!((f.min, f.max), (w.min, w.max), "{what}");
    true
}

#[test]
fn moments_from_codes_match_dequantized_on_every_type() {
    let (rows, cols) = (9u64, 768u64);
    let n = (rows * cols) as usize;
    let mut tensors = Vec::new();
    for (k, (ty, _)) in TOLERANCE.iter().enumerate() {
        let x = test_values(n, 0x51ed_2701_a3c5_9e1f ^ k as u64);
        tensors.push(Tensor {
            name: format!("blk.{k}.attn_q.weight"),
            ne: vec![cols, rows],
            ty: GgmlType::from_name(ty).unwrap().code,
            data: quantize(ty, &x),
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let kvs = [("general.architecture", MetaValue::String("llama".into()))];
    let path = write_temp(&dir, "moments.gguf", &gguf_bytes(3, &kvs, &tensors, 32));
    let r = GgufReader::open(&path).unwrap();
    let mut fast = Vec::new();
    for (i, (ty, _)) in TOLERANCE.iter().enumerate() {
        let numel = r.tensors()[i].numel();
        let block = r.tensors()[i].block;
        // The whole tensor, one row, and a range that ends in a partial block of 2048.
        if moments_agree(&r, i, 0..numel) {
            assert!(moments_agree(&r, i, cols..2 * cols));
            assert!(moments_agree(&r, i, block..numel - block));
            fast.push(*ty);
        }
    }
    let want = [
        "Q8_0", "Q8_1", "Q6_K", "Q5_0", "Q5_1", "Q5_K", "Q4_0", "Q4_1", "Q4_K", "Q3_K", "Q2_K",
    ];
    assert_eq!(fast, want, "types with a code-sum path");
}

/// Blocks that the code sums cannot represent exactly are dequantized instead: a Q4_1 block
/// whose minimum has bits far below its scale's (ggml rounds its values), and blocks with
/// non-finite scales (NaN and Inf are counted as before).
#[test]
fn moments_fall_back_where_values_round_or_are_not_finite() {
    let mut data = Vec::new();
    let f16 = |x: f32| f16_bits(x).to_le_bytes();
    // Block 0: d = 1024, m = 2^-10 + 2^-14: 1024·q + m needs more than 24 bits.
    data.extend(f16(1024.0));
    data.extend(f16(0.000_976_562_5 + 0.000_061_035_156));
    data.extend((0..16u8).map(|i| i.wrapping_mul(37)));
    // Block 1: d = Inf.
    data.extend(0x7c00u16.to_le_bytes());
    data.extend(f16(1.0));
    data.extend((0..16u8).map(|i| i.wrapping_mul(11)));
    // Block 2: d = NaN.
    data.extend(0x7e00u16.to_le_bytes());
    data.extend(f16(0.5));
    data.extend((0..16u8).map(|i| i.wrapping_mul(5)));
    // Blocks 3..64: ordinary.
    let x = test_values(61 * 32, 3);
    data.extend(quantize("Q4_1", &x));
    let tensors = vec![Tensor {
        name: "blk.0.attn_q.weight".into(),
        ne: vec![64 * 32, 1],
        ty: GgmlType::from_name("Q4_1").unwrap().code,
        data,
    }];
    let dir = tempfile::tempdir().unwrap();
    let path = write_temp(&dir, "fallback.gguf", &gguf_bytes(3, &[], &tensors, 32));
    let r = GgufReader::open(&path).unwrap();
    assert!(moments_agree(&r, 0, 0..64 * 32));
    let m = r.moments(0, 0..64 * 32).unwrap().unwrap().finish();
    assert!(m.nan > 0 && m.inf > 0, "{m:?}");
    // Only the rounding block, alone.
    assert!(moments_agree(&r, 0, 0..32));
}

/// Every tensor of every real GGUF here: the code sums agree with the dequantized values.
#[test]
fn moments_from_codes_match_dequantized_on_real_models() {
    for name in [
        "smollm2-135m-instruct",
        "gemma3-270m",
        "qwen2.5-coder-0.5b-instruct-awq",
        "qwen2.5-coder-1.5b-instruct",
    ] {
        let Some(path) = model("moments_from_codes_match_dequantized_on_real_models", name) else {
            continue;
        };
        let r = GgufReader::open(&path).unwrap();
        let mut types = std::collections::BTreeMap::<String, usize>::new();
        for i in 0..r.tensors().len() {
            let t = &r.tensors()[i];
            if moments_agree(&r, i, 0..t.numel()) {
                *types.entry(t.dtype.to_string()).or_default() += 1;
            }
        }
        assert!(!types.is_empty(), "{name}: no quantized tensor");
        eprintln!("{name}: code sums agree on tensors per type {types:?}");
    }
}

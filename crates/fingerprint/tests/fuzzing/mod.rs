//! A seeded mutation fuzzer over every parser nullprint runs on untrusted bytes, shared by the
//! bounded CI test (`tests/fuzz.rs`) and the long-run example (`examples/fuzz.rs`, `just fuzz`).
//!
//! Each target starts from valid seed files generated here (plus, when `just models` has run,
//! the first kilobytes of real model files), applies 1 to 4 stacked mutations drawn from a
//! SplitMix64 stream keyed by `(base seed, target, input index)` — truncation (at every point
//! for the first inputs, then at random points), bit flips, random bytes, 32/64-bit length
//! fields set to 0/1/max/near-max/file length, decimal numbers replaced by extremes, dtype
//! names swapped, chunks duplicated or deleted, non-UTF-8 bytes, deep JSON nesting, splices
//! between seeds — and runs the result through the real entry points: `format::open` plus a
//! read of every tensor, and `source::resolve` plus `engine::fingerprint` for directory-level
//! inputs (shard index, config.json, Ollama manifest).
//!
//! Every input runs under `catch_unwind`; a watchdog thread aborts the process, naming the
//! input, when one runs longer than [`Limits::hang`]; a counting global allocator flags any
//! single allocation or live-heap growth over [`Limits::memory`] during one input. A failing
//! input is written to `$TMPDIR/nullprint-fuzz-failures/` for replay.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fingerprint::config::ConfigSummary;
use fingerprint::engine::{self, Options};
use fingerprint::format::onnx_proto::{
    data_type, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
};
use fingerprint::format::{self, Format, TensorReader};
use fingerprint::source;
use prost::Message;

// ---------------------------------------------------------------------------------------------
// Counting allocator

/// Bytes currently allocated.
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// Highest `LIVE` since the last [`reset_peak`].
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// Largest single allocation since the last [`reset_peak`].
static BIGGEST: AtomicUsize = AtomicUsize::new(0);
/// Requests above this are refused outright (the process aborts) instead of being served.
const HARD_CAP: usize = 4 << 30;

/// The system allocator, counting live bytes and the largest request.
pub struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.note(layout.size());
        if layout.size() > HARD_CAP {
            return std::ptr::null_mut();
        }
        let p = System.alloc(layout);
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.note(layout.size());
        if layout.size() > HARD_CAP {
            return std::ptr::null_mut();
        }
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.note(new_size);
        if new_size > HARD_CAP {
            return std::ptr::null_mut();
        }
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            if new_size >= layout.size() {
                let live = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed)
                    + (new_size - layout.size());
                PEAK.fetch_max(live, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

impl Counting {
    fn note(&self, size: usize) {
        BIGGEST.fetch_max(size, Ordering::Relaxed);
    }
}

fn reset_peak() -> usize {
    let live = LIVE.load(Ordering::Relaxed);
    PEAK.store(live, Ordering::Relaxed);
    BIGGEST.store(0, Ordering::Relaxed);
    live
}

// ---------------------------------------------------------------------------------------------
// Watchdog

/// Milliseconds since [`EPOCH`] at which the running input started; 0 when idle.
static STARTED: AtomicU64 = AtomicU64::new(0);
static CURRENT: Mutex<String> = Mutex::new(String::new());
static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

fn now_ms() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

fn start_watchdog(hang: Duration) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        now_ms();
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(200));
            let s = STARTED.load(Ordering::Relaxed);
            if s != 0 && now_ms().saturating_sub(s) > hang.as_millis() as u64 {
                let what = CURRENT.lock().map(|c| c.clone()).unwrap_or_default();
                eprintln!("FUZZ HANG: over {hang:?} on {what}");
                std::process::exit(3);
            }
        });
    });
}

// ---------------------------------------------------------------------------------------------
// Random numbers and mutations

/// SplitMix64.
pub struct Rng(u64);

impl Rng {
    /// A stream keyed by its seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const EXTREMES_64: [u64; 10] = [
    0,
    1,
    2,
    u64::MAX,
    u64::MAX - 1,
    i64::MAX as u64,
    1 << 32,
    (1 << 32) - 1,
    1 << 62,
    0x8000_0000_0000_0001,
];
const EXTREMES_32: [u32; 8] = [
    0,
    1,
    2,
    u32::MAX,
    u32::MAX - 1,
    i32::MAX as u32,
    0x8000_0000,
    255,
];
const NUMBERS: [&str; 12] = [
    "0",
    "1",
    "-1",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775807",
    "4294967296",
    "1e308",
    "-0.0",
    "99999999999999999999999999",
    "1.5",
    "2",
];
const TOKENS: [&str; 22] = [
    "F32", "F16", "BF16", "F64", "I8", "U8", "BOOL", "F8_E4M3", "I64", "XX", "", "\"", "{", "}",
    "[", "]", "null", "true", ",", ":", "\\u0000", "\\ud800",
];

/// Apply one random mutation to `data`; returns its description.
fn mutate(rng: &mut Rng, data: &mut Vec<u8>, seeds: &[Vec<u8>]) -> String {
    let len = data.len();
    let at = |rng: &mut Rng| rng.below(len + 1);
    match rng.below(13) {
        0 => {
            let n = at(rng);
            data.truncate(n);
            format!("truncate@{n}")
        }
        1 | 2 => {
            let k = 1 + rng.below(8);
            let mut d = Vec::new();
            for _ in 0..k {
                if data.is_empty() {
                    break;
                }
                let i = rng.below(data.len());
                let b = rng.below(8);
                data[i] ^= 1 << b;
                d.push(format!("{i}.{b}"));
            }
            format!("bitflip[{}]", d.join(","))
        }
        3 => {
            if data.is_empty() {
                return "noop".into();
            }
            let i = rng.below(data.len());
            let v = rng.next() as u8;
            data[i] = v;
            format!("byte@{i}={v:#x}")
        }
        4 => {
            // A little-endian u32 length/count/offset field set to an extreme.
            if data.len() < 4 {
                return "noop".into();
            }
            let i = rng.below(data.len() - 3);
            let v = if rng.below(4) == 0 {
                (data.len() as u32).wrapping_add(rng.below(3) as u32)
            } else {
                EXTREMES_32[rng.below(EXTREMES_32.len())]
            };
            data[i..i + 4].copy_from_slice(&v.to_le_bytes());
            format!("u32@{i}={v}")
        }
        5 => {
            if data.len() < 8 {
                return "noop".into();
            }
            let i = rng.below(data.len() - 7);
            let v = if rng.below(4) == 0 {
                (data.len() as u64).wrapping_add(rng.below(3) as u64)
            } else {
                EXTREMES_64[rng.below(EXTREMES_64.len())]
            };
            data[i..i + 8].copy_from_slice(&v.to_le_bytes());
            format!("u64@{i}={v}")
        }
        6 => {
            // A decimal number (JSON offsets/shapes, pickle text) replaced by an extreme.
            let runs: Vec<(usize, usize)> = digit_runs(data);
            if runs.is_empty() {
                return "noop".into();
            }
            let (s, e) = runs[rng.below(runs.len())];
            let n = NUMBERS[rng.below(NUMBERS.len())];
            data.splice(s..e, n.bytes());
            format!("number@{s}={n}")
        }
        7 => {
            // A token (dtype name, JSON punctuation) replaced by another.
            let t = TOKENS[rng.below(TOKENS.len())];
            let from = TOKENS[rng.below(10)];
            match find(data, from.as_bytes(), rng) {
                Some(i) if !from.is_empty() => {
                    data.splice(i..i + from.len(), t.bytes());
                    format!("token@{i}:{from}->{t:?}")
                }
                _ => {
                    let i = at(rng);
                    data.splice(i..i, t.bytes());
                    format!("insert@{i}={t:?}")
                }
            }
        }
        8 => {
            // Duplicate a chunk (duplicated names, repeated records).
            if data.is_empty() {
                return "noop".into();
            }
            let s = rng.below(data.len());
            let n = 1 + rng.below((data.len() - s).min(256));
            let chunk = data[s..s + n].to_vec();
            let i = at(rng).min(data.len());
            data.splice(i..i, chunk);
            format!("dup[{s}..+{n}]@{i}")
        }
        9 => {
            if data.is_empty() {
                return "noop".into();
            }
            let s = rng.below(data.len());
            let n = 1 + rng.below((data.len() - s).min(64));
            data.drain(s..s + n);
            format!("delete[{s}..+{n}]")
        }
        10 => {
            // Non-UTF-8 bytes (inside names, usually).
            let i = at(rng);
            let bad: &[u8] = match rng.below(4) {
                0 => &[0xff],
                1 => &[0xc3],
                2 => &[0xed, 0xa0, 0x80],
                _ => &[0x00],
            };
            data.splice(i..i, bad.iter().copied());
            format!("nonutf8@{i}")
        }
        11 => {
            // Deep nesting.
            let depth = [64, 1000, 100_000][rng.below(3)];
            let i = at(rng);
            let (open, close) = if rng.below(2) == 0 {
                ("[", "]")
            } else {
                ("{\"a\":", "}")
            };
            let mut s = open.repeat(depth);
            if rng.below(2) == 0 {
                s.push_str(&close.repeat(depth));
            }
            data.splice(i..i, s.bytes());
            format!("nest{depth}@{i}")
        }
        _ => {
            // Splice: our head, another seed's tail.
            let other = &seeds[rng.below(seeds.len())];
            let i = at(rng);
            let j = rng.below(other.len() + 1);
            data.truncate(i);
            data.extend_from_slice(&other[j..]);
            format!("splice@{i}+{j}")
        }
    }
}

fn digit_runs(data: &[u8]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < data.len() {
        if data[i].is_ascii_digit() {
            let s = i;
            while i < data.len() && data[i].is_ascii_digit() {
                i += 1;
            }
            runs.push((s, i));
        } else {
            i += 1;
        }
    }
    runs
}

fn find(data: &[u8], pat: &[u8], rng: &mut Rng) -> Option<usize> {
    if pat.is_empty() || data.len() < pat.len() {
        return None;
    }
    let hits: Vec<usize> = data
        .windows(pat.len())
        .enumerate()
        .filter(|(_, w)| *w == pat)
        .map(|(i, _)| i)
        .collect();
    (!hits.is_empty()).then(|| hits[rng.below(hits.len())])
}

// ---------------------------------------------------------------------------------------------
// Seeds

fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut r = Rng::new(seed);
    (0..n)
        .map(|_| ((r.next() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0)
        .collect()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f16_bytes(v: &[f32]) -> Vec<u8> {
    v.iter()
        .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
        .collect()
}

/// Safetensors files: a tiny llama-shaped model in several dtypes.
pub fn safetensors_seeds() -> Vec<Vec<u8>> {
    use safetensors::tensor::{Dtype, TensorView};
    let names = [
        ("model.embed_tokens.weight", vec![8, 4]),
        ("model.layers.0.self_attn.q_proj.weight", vec![4, 4]),
        ("model.layers.0.self_attn.k_proj.weight", vec![2, 4]),
        ("model.layers.0.mlp.up_proj.weight", vec![8, 4]),
        ("model.layers.0.input_layernorm.weight", vec![4]),
        ("model.layers.1.self_attn.q_proj.weight", vec![4, 4]),
    ];
    let mut out = Vec::new();
    for (k, dtype) in [Dtype::F32, Dtype::F16, Dtype::BF16, Dtype::F64]
        .into_iter()
        .enumerate()
    {
        let bytes: Vec<Vec<u8>> = names
            .iter()
            .enumerate()
            .map(|(i, (_, s))| {
                let v = values(s.iter().product(), (k * 10 + i) as u64);
                match dtype {
                    Dtype::F32 => f32_bytes(&v),
                    Dtype::F16 => f16_bytes(&v),
                    Dtype::BF16 => v
                        .iter()
                        .flat_map(|x| half::bf16::from_f32(*x).to_le_bytes())
                        .collect(),
                    _ => v.iter().flat_map(|x| (*x as f64).to_le_bytes()).collect(),
                }
            })
            .collect();
        let views: Vec<(String, TensorView<'_>)> = names
            .iter()
            .zip(&bytes)
            .map(|((n, s), b)| (n.to_string(), TensorView::new(dtype, s.clone(), b).unwrap()))
            .collect();
        out.push(safetensors::serialize(views, &None).unwrap());
    }
    out
}

fn gguf_str(b: &mut Vec<u8>, s: &str) {
    b.extend((s.len() as u64).to_le_bytes());
    b.extend(s.as_bytes());
}

/// GGUF v3 files: string, integer, float and array metadata; F32, F16, Q8_0 and Q4_0 tensors.
pub fn gguf_seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for alignment in [32u64, 8] {
        let q8: Vec<u8> = (0..2)
            .flat_map(|k| {
                let mut blk = half::f16::from_f32(0.01 * (k + 1) as f32)
                    .to_le_bytes()
                    .to_vec();
                blk.extend((0..32).map(|i| (i as i8 - 16) as u8));
                blk
            })
            .collect();
        let q4: Vec<u8> = {
            let mut blk = half::f16::from_f32(0.02).to_le_bytes().to_vec();
            blk.extend((0..16u8).map(|i| i.wrapping_mul(17)));
            blk
        };
        let tensors: Vec<(&str, Vec<u64>, u32, Vec<u8>)> = vec![
            (
                "token_embd.weight",
                vec![4, 8],
                0,
                f32_bytes(&values(32, 1)),
            ),
            (
                "blk.0.attn_q.weight",
                vec![4, 4],
                1,
                f16_bytes(&values(16, 2)),
            ),
            ("blk.0.attn_k.weight", vec![32, 2], 8, q8),
            ("blk.1.attn_q.weight", vec![32, 1], 2, q4),
            ("output_norm.weight", vec![4], 0, f32_bytes(&values(4, 3))),
        ];
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend((tensors.len() as u64).to_le_bytes());
        b.extend(5u64.to_le_bytes());
        gguf_str(&mut b, "general.architecture");
        b.extend(8u32.to_le_bytes());
        gguf_str(&mut b, "llama");
        gguf_str(&mut b, "llama.block_count");
        b.extend(4u32.to_le_bytes());
        b.extend(2u32.to_le_bytes());
        gguf_str(&mut b, "llama.rope.freq_base");
        b.extend(6u32.to_le_bytes());
        b.extend(10000f32.to_le_bytes());
        gguf_str(&mut b, "tokenizer.ggml.tokens");
        b.extend(9u32.to_le_bytes());
        b.extend(8u32.to_le_bytes());
        b.extend(3u64.to_le_bytes());
        for t in ["<s>", "a", "b"] {
            gguf_str(&mut b, t);
        }
        gguf_str(&mut b, "general.alignment");
        b.extend(4u32.to_le_bytes());
        b.extend((alignment as u32).to_le_bytes());
        let pad = |n: u64| n.div_ceil(alignment) * alignment;
        let mut offset = 0u64;
        for (name, ne, ty, data) in &tensors {
            gguf_str(&mut b, name);
            b.extend((ne.len() as u32).to_le_bytes());
            for d in ne {
                b.extend(d.to_le_bytes());
            }
            b.extend(ty.to_le_bytes());
            b.extend(offset.to_le_bytes());
            offset = pad(offset + data.len() as u64);
        }
        let start = pad(b.len() as u64) as usize;
        b.resize(start, 0);
        for (_, _, _, data) in &tensors {
            b.extend(data);
            let end = pad((b.len() - start) as u64) as usize + start;
            b.resize(end, 0);
        }
        out.push(b);
    }
    out
}

// The zip and pickle-string writers are shared with the PyTorch tests.
use testkit::zip::unicode;
pub use testkit::zip::zip;

/// A state-dict pickle: `(name, storage kind, storage key, offset, shape)` per tensor.
fn state_dict(tensors: &[(&str, &str, &str, u8, &[u8])]) -> Vec<u8> {
    let mut p = vec![0x80, 2];
    p.extend(b"ccollections\nOrderedDict\nq\x00)Rq\x01(");
    for (name, kind, key, offset, shape) in tensors {
        unicode(&mut p, name);
        p.extend(b"ctorch._utils\n_rebuild_tensor_v2\nq\x02((");
        unicode(&mut p, "storage");
        p.extend(format!("ctorch\n{kind}\n").bytes());
        unicode(&mut p, key);
        unicode(&mut p, "cpu");
        p.extend(b"K\x10tQ");
        p.extend([b'K', *offset]);
        // Shape and contiguous strides.
        let mut strides = vec![1u8; shape.len()];
        for i in (0..shape.len().saturating_sub(1)).rev() {
            strides[i] = strides[i + 1] * shape[i + 1];
        }
        for dims in [shape, &strides[..]] {
            p.push(b'(');
            for d in dims {
                p.extend([b'K', *d]);
            }
            p.push(b't');
        }
        p.extend(b"\x89h\x00)RtR");
    }
    p.extend(b"u.");
    p
}

/// PyTorch zip checkpoints: float, half and bfloat16 storages, a shared storage with offsets.
pub fn torch_seeds() -> Vec<Vec<u8>> {
    let f = f32_bytes(&values(16, 7));
    let h = f16_bytes(&values(16, 8));
    let pk1 = state_dict(&[
        (
            "encoder.layer.0.attention.self.query.weight",
            "FloatStorage",
            "0",
            0,
            &[2, 4],
        ),
        (
            "encoder.layer.0.attention.self.key.weight",
            "FloatStorage",
            "0",
            8,
            &[2, 4],
        ),
        (
            "encoder.layer.0.attention.self.value.weight",
            "HalfStorage",
            "1",
            0,
            &[4, 4],
        ),
    ]);
    let pk2 = state_dict(&[
        (
            "model.layers.0.self_attn.q_proj.weight",
            "BFloat16Storage",
            "1",
            0,
            &[16],
        ),
        ("model.norm.weight", "FloatStorage", "0", 4, &[3, 4]),
    ]);
    vec![
        zip(&[
            ("m/data.pkl", &pk1),
            ("m/data/0", &f),
            ("m/data/1", &h),
            ("m/version", b"3\n"),
        ]),
        zip(&[
            ("archive/data.pkl", &pk2),
            ("archive/data/0", &f),
            ("archive/data/1", &h),
        ]),
    ]
}

fn init(name: &str, dims: &[i64], dt: i32, raw: Vec<u8>) -> TensorProto {
    TensorProto {
        dims: dims.to_vec(),
        data_type: dt,
        name: name.into(),
        raw_data: raw.into(),
        ..Default::default()
    }
}

/// ONNX models: raw, `float_data` and `int32_data` (f16) initializers, an int8 weight with a
/// `DequantizeLinear` node, and MatMul nodes naming their weights.
pub fn onnx_seeds() -> Vec<Vec<u8>> {
    let mut a = init(
        "onnx::MatMul_1",
        &[4, 4],
        data_type::FLOAT,
        f32_bytes(&values(16, 4)),
    );
    let mut b = init(
        "encoder.layer.0.attention.self.key.bias",
        &[4],
        data_type::FLOAT,
        vec![],
    );
    b.float_data = values(4, 5);
    let mut c = init(
        "encoder.layer.0.attention.self.value.weight",
        &[2, 4],
        10,
        vec![],
    );
    c.int32_data = values(8, 6)
        .iter()
        .map(|x| half::f16::from_f32(*x).to_bits() as i32)
        .collect();
    let q = init("w_q", &[4, 4], data_type::INT8, (0..16u8).collect());
    let s = init("w_scale", &[], data_type::FLOAT, f32_bytes(&[0.05]));
    let z = init("w_zero", &[], data_type::INT8, vec![0]);
    let d = init("encoder.layer.1.output.dense.weight", &[3], 11, vec![0; 24]);
    let node = |op: &str, name: &str, input: &[&str], output: &str| NodeProto {
        input: input.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        name: name.into(),
        op_type: op.into(),
        ..Default::default()
    };
    a.name = "onnx::MatMul_1".into();
    let graph = GraphProto {
        node: vec![
            node(
                "MatMul",
                "/encoder/layer.0/attention/self/query/MatMul",
                &["x", "onnx::MatMul_1"],
                "y",
            ),
            node("DequantizeLinear", "dq", &["w_q", "w_scale", "w_zero"], "w"),
            node(
                "MatMul",
                "/encoder/layer.1/attention/self/key/MatMul",
                &["y", "w"],
                "o",
            ),
        ],
        name: "g".into(),
        initializer: vec![a, b, c, q, s, z, d],
        input: vec![],
    };
    let model = ModelProto {
        ir_version: 8,
        producer_name: "pytorch".into(),
        graph: Some(graph),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 14,
        }],
    };
    let mut with_external = model.clone();
    let g = with_external.graph.as_mut().unwrap();
    let mut e = init("encoder.layer.0.intermediate.dense.weight", &[2], 1, vec![]);
    e.data_location = 1;
    e.external_data = vec![
        fingerprint::format::onnx_proto::StringStringEntryProto {
            key: "location".into(),
            value: "model.onnx".into(),
        },
        fingerprint::format::onnx_proto::StringStringEntryProto {
            key: "offset".into(),
            value: "0".into(),
        },
        fingerprint::format::onnx_proto::StringStringEntryProto {
            key: "length".into(),
            value: "8".into(),
        },
    ];
    g.initializer.push(e);
    vec![model.encode_to_vec(), with_external.encode_to_vec()]
}

fn ct2_str(b: &mut Vec<u8>, s: &str) {
    b.extend(((s.len() + 1) as u16).to_le_bytes());
    b.extend(s.as_bytes());
    b.push(0);
}

/// CTranslate2 `model.bin` files: version 6 with f32, f16, int8 + scale variables and an
/// alias; version 3 with item sizes.
pub fn ct2_seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for version in [6u32, 3] {
        let mut b = version.to_le_bytes().to_vec();
        ct2_str(&mut b, "WhisperSpec");
        b.extend(1u32.to_le_bytes());
        let vars: Vec<(&str, Vec<u32>, u8, Vec<u8>)> = vec![
            (
                "encoder/layer_0/self_attention/linear_0/weight",
                vec![6, 2],
                if version >= 4 { 4 } else { 0 },
                if version >= 4 {
                    f16_bytes(&values(12, 9))
                } else {
                    f32_bytes(&values(12, 9))
                },
            ),
            (
                "encoder/layer_0/ffn/linear_0/weight",
                vec![2, 4],
                1,
                (0..8).collect(),
            ),
            (
                "encoder/layer_0/ffn/linear_0/weight_scale",
                vec![2],
                0,
                f32_bytes(&[20.0, 40.0]),
            ),
            (
                "decoder/embeddings/weight",
                vec![3, 2],
                0,
                f32_bytes(&values(6, 10)),
            ),
        ];
        b.extend((vars.len() as u32).to_le_bytes());
        for (name, dims, code, data) in &vars {
            ct2_str(&mut b, name);
            b.push(dims.len() as u8);
            for d in dims {
                b.extend(d.to_le_bytes());
            }
            if version >= 4 {
                b.push(*code);
                b.extend((data.len() as u32).to_le_bytes());
            } else {
                let item = if *code == 0 { 4u8 } else { 1 };
                b.push(item);
                b.extend(((data.len() / item as usize) as u32).to_le_bytes());
            }
            b.extend(data);
        }
        b.extend(1u32.to_le_bytes());
        ct2_str(&mut b, "decoder/projection/weight");
        ct2_str(&mut b, "decoder/embeddings/weight");
        out.push(b);
    }
    out
}

/// Shard indexes naming the two shards of [`sharded_dir_files`].
pub fn index_seeds() -> Vec<Vec<u8>> {
    let v = serde_json::json!({
        "metadata": {"total_size": 96},
        "weight_map": {
            "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
            "model.layers.0.self_attn.q_proj.weight": "model-00001-of-00002.safetensors",
            "model.layers.0.self_attn.k_proj.weight": "model-00002-of-00002.safetensors",
            "model.layers.1.self_attn.q_proj.weight": "model-00002-of-00002.safetensors"
        }
    });
    vec![
        serde_json::to_vec_pretty(&v).unwrap(),
        serde_json::to_vec(&v).unwrap(),
    ]
}

/// The two shards the index seeds refer to.
fn sharded_dir_files() -> Vec<(String, Vec<u8>)> {
    use safetensors::tensor::{Dtype, TensorView};
    let shard = |names: &[&str], seed: u64| {
        let data: Vec<Vec<u8>> = names
            .iter()
            .enumerate()
            .map(|(i, _)| f32_bytes(&values(8, seed + i as u64)))
            .collect();
        let views: Vec<(String, TensorView<'_>)> = names
            .iter()
            .zip(&data)
            .map(|(n, d)| {
                (
                    n.to_string(),
                    TensorView::new(Dtype::F32, vec![2, 4], d).unwrap(),
                )
            })
            .collect();
        safetensors::serialize(views, &None).unwrap()
    };
    vec![
        (
            "model-00001-of-00002.safetensors".into(),
            shard(
                &[
                    "model.embed_tokens.weight",
                    "model.layers.0.self_attn.q_proj.weight",
                ],
                20,
            ),
        ),
        (
            "model-00002-of-00002.safetensors".into(),
            shard(
                &[
                    "model.layers.0.self_attn.k_proj.weight",
                    "model.layers.1.self_attn.q_proj.weight",
                ],
                30,
            ),
        ),
    ]
}

/// `config.json` files of a llama, a BERT and a Whisper model.
pub fn config_seeds() -> Vec<Vec<u8>> {
    [
        serde_json::json!({
            "architectures": ["LlamaForCausalLM"], "model_type": "llama",
            "num_hidden_layers": 2, "hidden_size": 4, "num_attention_heads": 2,
            "num_key_value_heads": 1, "intermediate_size": 8, "vocab_size": 8,
            "rope_theta": 10000.0, "torch_dtype": "float32", "tie_word_embeddings": false
        }),
        serde_json::json!({
            "architectures": ["BertModel"], "model_type": "bert", "num_hidden_layers": 6,
            "hidden_size": 384, "num_attention_heads": 12, "intermediate_size": 1536,
            "text_config": {"hidden_size": 4, "num_hidden_layers": 1}
        }),
        serde_json::json!({
            "model_type": "whisper", "d_model": 512, "encoder_layers": 6, "decoder_layers": 6,
            "encoder_attention_heads": 8, "head_dim": null, "num_experts": 4
        }),
    ]
    .iter()
    .map(|v| serde_json::to_vec_pretty(v).unwrap())
    .collect()
}

const OLLAMA_BLOB: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Ollama manifests pointing at a GGUF blob.
pub fn ollama_seeds() -> Vec<Vec<u8>> {
    let v = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "digest": format!("sha256:{OLLAMA_BLOB}"), "size": 485},
        "layers": [
            {"mediaType": "application/vnd.ollama.image.template",
             "digest": format!("sha256:{}", "f".repeat(64)), "size": 10},
            {"mediaType": "application/vnd.ollama.image.model",
             "digest": format!("sha256:{OLLAMA_BLOB}"), "size": 1000}
        ]
    });
    vec![
        serde_json::to_vec_pretty(&v).unwrap(),
        serde_json::to_vec(&v).unwrap(),
    ]
}

/// The first `n` bytes of real model files, when `just models` has fetched them.
fn real_heads(files: &[(&str, &str)], n: usize) -> Vec<Vec<u8>> {
    let dir = testkit::models_dir();
    let mut out = Vec::new();
    for (model, file) in files {
        let p = dir.join(model).join(file);
        match std::fs::File::open(&p) {
            Ok(f) => {
                let mut head = Vec::new();
                std::io::Read::read_to_end(&mut std::io::Read::take(f, n as u64), &mut head)
                    .unwrap();
                out.push(head);
            }
            Err(_) => eprintln!(
                "SKIPPED (seed only): fuzz: {} not found (run `just models`)",
                p.display()
            ),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Targets

/// What a target feeds its mutated bytes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A weight file of this format, opened with `format::open` (file name given).
    File(Format, &'static str),
    /// `model.safetensors.index.json` in a directory of two valid shards.
    Index,
    /// `config.json` next to a valid safetensors file.
    Config,
    /// An Ollama manifest naming a valid GGUF blob.
    Ollama,
    /// A header held in memory, as a file read over the network is parsed (`from_head`,
    /// with the input's length as the file's).
    Head(Format),
}

/// One parser under test.
pub struct Target {
    /// Short name.
    pub name: &'static str,
    /// Entry point.
    pub kind: Kind,
    /// Starting inputs: the generated (valid) ones first, then real-file prefixes.
    pub seeds: Vec<Vec<u8>>,
    /// How many of `seeds` are generated and must be accepted as they are.
    pub valid: usize,
}

/// Every target, with its seeds.
pub fn targets() -> Vec<Target> {
    let with = |mut s: Vec<Vec<u8>>, real: Vec<Vec<u8>>| {
        s.extend(real);
        s
    };
    vec![
        Target {
            name: "safetensors",
            kind: Kind::File(Format::Safetensors, "model.safetensors"),
            valid: safetensors_seeds().len(),
            seeds: with(
                safetensors_seeds(),
                real_heads(&[("all-minilm-l6-v2", "model.safetensors")], 16 << 10),
            ),
        },
        Target {
            name: "gguf",
            kind: Kind::File(Format::Gguf, "model.gguf"),
            valid: gguf_seeds().len(),
            seeds: gguf_seeds(),
        },
        Target {
            name: "torch",
            kind: Kind::File(Format::Torch, "pytorch_model.bin"),
            valid: torch_seeds().len(),
            seeds: torch_seeds(),
        },
        Target {
            name: "onnx",
            kind: Kind::File(Format::Onnx, "model.onnx"),
            valid: onnx_seeds().len(),
            seeds: with(
                onnx_seeds(),
                real_heads(&[("paraphrase-minilm-l3-v2", "model.onnx")], 8 << 10),
            ),
        },
        Target {
            name: "ct2",
            kind: Kind::File(Format::Ct2, "model.bin"),
            valid: ct2_seeds().len(),
            seeds: with(
                ct2_seeds(),
                real_heads(&[("whisper-base", "model.bin")], 16 << 10),
            ),
        },
        Target {
            name: "safetensors-head",
            kind: Kind::Head(Format::Safetensors),
            valid: safetensors_seeds().len(),
            seeds: safetensors_seeds(),
        },
        Target {
            name: "gguf-head",
            kind: Kind::Head(Format::Gguf),
            valid: gguf_seeds().len(),
            seeds: gguf_seeds(),
        },
        Target {
            name: "index.json",
            kind: Kind::Index,
            valid: index_seeds().len(),
            seeds: index_seeds(),
        },
        Target {
            name: "config.json",
            kind: Kind::Config,
            valid: config_seeds().len(),
            seeds: config_seeds(),
        },
        Target {
            name: "ollama",
            kind: Kind::Ollama,
            valid: ollama_seeds().len(),
            seeds: ollama_seeds(),
        },
    ]
}

/// Bounds on one input.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Wall-clock time before the watchdog declares a hang.
    pub hang: Duration,
    /// Largest single allocation, and largest live-heap growth, allowed per input.
    pub memory: usize,
    /// Elements decoded per tensor at most (a mutated shape may describe a large tensor whose
    /// bytes a lenient reader still accepts; reading it all would only cost time).
    pub read_cap: u64,
    /// Every n-th accepted weight file also goes through `source::resolve` + the engine.
    pub engine_every: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            hang: Duration::from_secs(30),
            memory: 256 << 20,
            read_cap: 1 << 22,
            engine_every: 8,
        }
    }
}

/// Per-target results.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    /// Inputs run.
    pub inputs: u64,
    /// Inputs a parser accepted (every tensor read without error).
    pub accepted: u64,
    /// Inputs refused with an error.
    pub refused: u64,
    /// Panics (each a failure).
    pub panics: u64,
    /// Allocation cap violations (each a failure).
    pub over_cap: u64,
    /// Largest single allocation seen, bytes.
    pub biggest_alloc: usize,
    /// Largest live-heap growth seen, bytes.
    pub peak_growth: usize,
    /// Descriptions of failing inputs (first few).
    pub failures: Vec<String>,
}

/// A fuzzing session for one target: a scratch directory laid out for its kind.
struct Harness {
    dir: tempfile::TempDir,
    input: PathBuf,
    spec: String,
}

impl Harness {
    fn new(kind: Kind) -> Harness {
        // Inputs are rewritten millions of times: a RAM-backed directory when there is one
        // (about 30 times faster than a disk-backed /tmp here).
        let dir = tempfile::tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .unwrap();
        let root = dir.path().to_path_buf();
        let (input, spec) = match kind {
            Kind::Head(_) => {
                let d = root.join("m");
                std::fs::create_dir_all(&d).unwrap();
                (d.join("model.head"), String::new())
            }
            Kind::File(_, name) => {
                let d = root.join("m");
                std::fs::create_dir_all(&d).unwrap();
                (d.join(name), String::new())
            }
            Kind::Index => {
                let d = root.join("m");
                std::fs::create_dir_all(&d).unwrap();
                for (n, b) in sharded_dir_files() {
                    std::fs::write(d.join(n), b).unwrap();
                }
                (
                    d.join("model.safetensors.index.json"),
                    d.to_str().unwrap().to_owned(),
                )
            }
            Kind::Config => {
                let d = root.join("m");
                std::fs::create_dir_all(&d).unwrap();
                std::fs::write(d.join("model.safetensors"), &safetensors_seeds()[0]).unwrap();
                (d.join("config.json"), d.to_str().unwrap().to_owned())
            }
            Kind::Ollama => {
                // One store per process (OLLAMA_MODELS is set once, before any reader runs);
                // one model name per harness, so concurrent tests never share a manifest.
                static STORE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
                static NEXT: AtomicUsize = AtomicUsize::new(0);
                let store = STORE.get_or_init(|| {
                    let d = tempfile::tempdir_in("/dev/shm")
                        .or_else(|_| tempfile::tempdir())
                        .unwrap()
                        .keep();
                    std::fs::create_dir_all(d.join("blobs")).unwrap();
                    std::fs::write(
                        d.join("blobs").join(format!("sha256-{OLLAMA_BLOB}")),
                        &gguf_seeds()[0],
                    )
                    .unwrap();
                    std::env::set_var("OLLAMA_MODELS", &d);
                    d
                });
                let name = format!("fuzz{}", NEXT.fetch_add(1, Ordering::Relaxed));
                let man = store
                    .join("manifests/registry.ollama.ai/library")
                    .join(&name);
                std::fs::create_dir_all(&man).unwrap();
                (man.join("latest"), format!("ollama:{name}:latest"))
            }
        };
        Harness { dir, input, spec }
    }
}

/// Read every tensor of an opened file (each capped at `cap` elements); `Err` on the first
/// refusal. Values are summed so the decode cannot be optimized away.
fn read_all(r: &dyn TensorReader, cap: u64) -> fingerprint::Result<f64> {
    let mut sum = 0f64;
    let n = r.tensors().len();
    for i in 0..n {
        let t = &r.tensors()[i];
        let numel = t.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        let numel = numel.unwrap_or(u64::MAX);
        let block = t.block.max(1);
        let end = if numel > cap {
            (cap / block).max(1).saturating_mul(block).min(numel)
        } else {
            numel
        };
        r.read(i, 0..end, &mut |v| match v {
            format::Values::F32(x) => sum += x.iter().map(|&v| v as f64).sum::<f64>(),
            format::Values::F64(x) => sum += x.iter().sum::<f64>(),
        })?;
    }
    let _ = r.architecture();
    let _ = r.config();
    Ok(sum)
}

fn run_engine(spec: &str) -> fingerprint::Result<()> {
    let src = source::resolve(spec)?;
    let fp = engine::fingerprint(&src, &Options::default())?;
    // Serializing is where a NaN would turn into an error or a `null`.
    let _ = serde_json::to_string(&fp);
    Ok(())
}

/// Run one input; `Ok(true)` when accepted.
fn run_one(kind: Kind, h: &Harness, i: u64, limits: &Limits) -> fingerprint::Result<bool> {
    match kind {
        Kind::File(fmt, _) => {
            let r = format::open(&h.input, fmt)?;
            read_all(r.as_ref(), limits.read_cap)?;
            drop(r);
            if i % limits.engine_every == 0 {
                run_engine(h.input.to_str().unwrap())?;
            }
            Ok(true)
        }
        Kind::Config => {
            ConfigSummary::from_file(&h.input)?;
            run_engine(&h.spec)?;
            Ok(true)
        }
        Kind::Index | Kind::Ollama => {
            run_engine(&h.spec)?;
            Ok(true)
        }
        Kind::Head(fmt) => {
            let bytes = std::fs::read(&h.input).map_err(|e| fingerprint::Error::io(&h.input, e))?;
            let len = bytes.len() as u64;
            if fmt == Format::Gguf {
                fingerprint::format::gguf::GgufReader::from_head(&h.input, bytes, len)?;
            } else {
                fingerprint::format::safetensors::SafetensorsReader::from_head(
                    &h.input, bytes, len,
                )?;
            }
            Ok(true)
        }
    }
}

fn save_failure(target: &str, i: u64, data: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join("nullprint-fuzz-failures");
    let _ = std::fs::create_dir_all(&dir);
    let p = dir.join(format!("{target}-{i}.bin"));
    let _ = std::fs::write(&p, data);
    p
}

/// Run `count` mutated inputs through `target`; `base` keys the random stream.
pub fn fuzz_target(target: &Target, count: u64, base: u64, limits: &Limits) -> Counts {
    start_watchdog(limits.hang);
    let h = Harness::new(target.kind);
    let mut counts = Counts::default();
    let key = target.name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |a, b| {
        (a ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    // Even inputs first truncate the first seed at every length; the rest are mutations.
    let first_len = target.seeds[0].len() as u64;
    for i in 0..count {
        let mut rng = Rng::new(base ^ key ^ i.wrapping_mul(0xA076_1D64_78BD_642F));
        rng.next();
        let systematic = i % 2 == 0 && i / 2 <= first_len;
        let (mut data, mut what) = if systematic {
            let n = (i / 2) as usize;
            (
                target.seeds[0][..n].to_vec(),
                vec![format!("seed0 truncate@{n}")],
            )
        } else {
            let s = rng.below(target.seeds.len());
            (target.seeds[s].clone(), vec![format!("seed{s}")])
        };
        if !systematic {
            for _ in 0..1 + rng.below(4) {
                what.push(mutate(&mut rng, &mut data, &target.seeds));
            }
        }
        let desc = format!(
            "target {} input {i} (base seed {base:#x}): {}",
            target.name,
            what.join(" ")
        );
        std::fs::write(&h.input, &data).unwrap();
        *CURRENT.lock().unwrap() = desc.clone();
        let before = reset_peak();
        STARTED.store(now_ms(), Ordering::Relaxed);
        let out =
            std::panic::catch_unwind(AssertUnwindSafe(|| run_one(target.kind, &h, i, limits)));
        STARTED.store(0, Ordering::Relaxed);
        let growth = PEAK.load(Ordering::Relaxed).saturating_sub(before);
        let biggest = BIGGEST.load(Ordering::Relaxed);
        counts.inputs += 1;
        counts.biggest_alloc = counts.biggest_alloc.max(biggest);
        counts.peak_growth = counts.peak_growth.max(growth);
        let mut fail = None;
        match out {
            Ok(Ok(_)) => counts.accepted += 1,
            Ok(Err(e)) => {
                counts.refused += 1;
                // Every refusal must be one printable line.
                let msg = e.to_string();
                if msg.is_empty() {
                    fail = Some("empty error message".to_string());
                }
            }
            Err(p) => {
                counts.panics += 1;
                let m = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                fail = Some(format!("PANIC {m}"));
            }
        }
        if biggest > limits.memory || growth > limits.memory {
            counts.over_cap += 1;
            fail = Some(format!(
                "OVER CAP: single allocation {biggest} B, live growth {growth} B (cap {} B)",
                limits.memory
            ));
        }
        if let Some(f) = fail {
            let saved = save_failure(target.name, i, &data);
            let line = format!("{f} on {desc} (saved to {})", saved.display());
            eprintln!("FUZZ FAILURE: {line}");
            if counts.failures.len() < 20 {
                counts.failures.push(line);
            }
        }
    }
    drop(h.dir);
    counts
}

/// Print one summary line per target.
pub fn report(results: &BTreeMap<&'static str, (Counts, Duration)>) {
    let mut out = std::io::stderr().lock();
    for (name, (c, t)) in results {
        let _ = writeln!(
            out,
            "fuzz {name:<12} inputs {:>9}  accepted {:>8}  refused {:>9}  panics {}  hangs 0  \
             over-cap {}  biggest alloc {} KiB  peak growth {} KiB  {:.1} s",
            c.inputs,
            c.accepted,
            c.refused,
            c.panics,
            c.over_cap,
            c.biggest_alloc >> 10,
            c.peak_growth >> 10,
            t.as_secs_f64()
        );
    }
}

/// The seed files, for tests that check they are valid to begin with.
pub fn seed_dir_check(target: &Target) -> Vec<String> {
    let h = Harness::new(target.kind);
    let mut bad = Vec::new();
    for (k, s) in target.seeds.iter().take(target.valid).enumerate() {
        std::fs::write(&h.input, s).unwrap();
        if let Err(e) = run_one(target.kind, &h, 0, &Limits::default()) {
            bad.push(format!("{} seed {k}: {e}", target.name));
        }
    }
    bad
}

/// Where an input file of a target lives (for replaying saved failures).
pub fn replay(target: &Target, data: &[u8]) -> String {
    let h = Harness::new(target.kind);
    std::fs::write(&h.input, data).unwrap();
    let path: &Path = &h.input;
    match std::panic::catch_unwind(AssertUnwindSafe(|| {
        run_one(target.kind, &h, 0, &Limits::default())
    })) {
        Ok(Ok(_)) => format!("{}: accepted", path.display()),
        Ok(Err(e)) => format!("refused: {e}"),
        Err(_) => "PANIC".into(),
    }
}

/// Mutated safetensors and GGUF inputs on which the mapped reader (`format::open`) and the
/// header-only reader of remote files (`from_head`, the input's length as the file's) disagree
/// about accepting the header: `(target, input number, which accepted)`.
pub fn head_disagreements(count: u64, base: u64) -> Vec<String> {
    use fingerprint::format::gguf::GgufReader;
    use fingerprint::format::safetensors::SafetensorsReader;
    let dir = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    for (name, fmt, seeds) in [
        ("safetensors", Format::Safetensors, safetensors_seeds()),
        ("gguf", Format::Gguf, gguf_seeds()),
    ] {
        let path = dir.path().join(name);
        let mut rng = Rng(base ^ name.len() as u64);
        for i in 0..count {
            let mut data = seeds[(rng.next() % seeds.len() as u64) as usize].clone();
            mutate(&mut rng, &mut data, &seeds);
            std::fs::write(&path, &data).unwrap();
            let mapped = format::open(&path, fmt).is_ok();
            let len = data.len() as u64;
            let held = match fmt {
                Format::Gguf => GgufReader::from_head(&path, data.clone(), len).is_ok(),
                _ => SafetensorsReader::from_head(&path, data.clone(), len).is_ok(),
            };
            if mapped != held {
                out.push(format!(
                    "{name} #{i}: mapped {mapped}, held {held}: {:?}",
                    String::from_utf8_lossy(&data[..data.len().min(200)])
                ));
            }
        }
    }
    out
}

//! One test per error class a user can meet: the binary exits 1 with exactly one line on
//! stderr naming the file (and the tensor where there is one), and never a Rust panic. Plus
//! the numeric edge cases (NaN weights, constant tensors, short or flat curves) that must give
//! a defined result or a clear error, never a NaN in the output, and byte-identical
//! fingerprints at 1 and 4 threads.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn nullprint(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let cache = tempfile::tempdir().unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_nullprint"));
    c.args(args).env("NULLPRINT_CACHE", cache.path());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run nullprint")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit code 1, one line on stderr containing every needle, no panic anywhere.
fn one_line_error(o: &Output, needles: &[&str]) -> String {
    let err = stderr(o);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(
        !err.contains("panicked") && !out.contains("panicked"),
        "{err}"
    );
    assert!(!err.contains("RUST_BACKTRACE"), "{err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} missing from {err:?}");
    }
    err
}

/// A safetensors file of `(name, dtype, shape, raw bytes)` tensors, written by hand.
fn safetensors(path: &Path, tensors: &[(&str, &str, &[usize], Vec<u8>)]) -> PathBuf {
    let mut header = serde_json::Map::new();
    let mut data: Vec<u8> = Vec::new();
    for (name, dtype, shape, bytes) in tensors {
        let start = data.len();
        data.extend(bytes);
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let bytes = testkit::safetensors(&header.into(), &data);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(path, bytes).unwrap();
    path.to_path_buf()
}

fn f32s(v: impl IntoIterator<Item = f32>) -> Vec<u8> {
    v.into_iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Deterministic values in [-1, 1) (SplitMix64).
fn noise(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (((z >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0) * scale
        })
        .collect()
}

/// A llama-like model of `layers` layers of q/k/v/o `[8, 8]`; `q(layer)` gives the q values.
fn model(path: &Path, layers: usize, seed: u64, q: &dyn Fn(usize) -> Vec<f32>) -> PathBuf {
    let names: Vec<(String, Vec<u8>)> = (0..layers)
        .flat_map(|l| {
            ["q_proj", "k_proj", "v_proj", "o_proj"]
                .iter()
                .enumerate()
                .map(move |(i, p)| (l, i, *p))
        })
        .map(|(l, i, p)| {
            let v = if p == "q_proj" {
                q(l)
            } else {
                noise(64, seed * 1000 + (l * 4 + i) as u64, 0.02 * (l + 1) as f32)
            };
            (format!("model.layers.{l}.self_attn.{p}.weight"), f32s(v))
        })
        .collect();
    let tensors: Vec<(&str, &str, &[usize], Vec<u8>)> = names
        .iter()
        .map(|(n, b)| (n.as_str(), "F32", &[8usize, 8][..], b.clone()))
        .collect();
    safetensors(path, &tensors)
}

fn normal_q(seed: u64) -> impl Fn(usize) -> Vec<f32> {
    move |l| noise(64, seed * 77 + l as u64, 0.03 * (l + 2) as f32)
}

/// Every number in a JSON document is finite, and no summary statistic is `null` (serde_json
/// writes a NaN as `null`, so a `null` where a number belongs is how a NaN would leak).
fn assert_no_nan(text: &str) {
    fn walk(v: &serde_json::Value, key: &str, text: &str) {
        match v {
            serde_json::Value::Null => assert!(
                !matches!(
                    key,
                    "p" | "log10_p"
                        | "score"
                        | "rescaled"
                        | "mc_error"
                        | "mean"
                        | "std"
                        | "l2"
                        | "abs_mean"
                        | "per_role"
                ),
                "{key} is null (a NaN?) in {text}"
            ),
            serde_json::Value::Number(n) => {
                assert!(
                    n.as_f64().is_some_and(f64::is_finite),
                    "{key}: {n} in {text}"
                )
            }
            serde_json::Value::String(s) => {
                let l = s.to_ascii_lowercase();
                assert!(
                    !matches!(
                        l.as_str(),
                        "nan" | "inf" | "-inf" | "infinity" | "-infinity"
                    ),
                    "{key}: {s:?} in {text}"
                )
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, key, text)),
            serde_json::Value::Object(o) => o.iter().for_each(|(k, x)| {
                // A role's entry under per_role is held to the same rule as per_role.
                walk(x, if key == "per_role" { key } else { k }, text)
            }),
            serde_json::Value::Bool(_) => {}
        }
    }
    let v: serde_json::Value = serde_json::from_str(text).expect("output is valid JSON");
    walk(&v, "", text);
}

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("nope.safetensors");
    let o = nullprint(&["fingerprint", p.to_str().unwrap()], &[]);
    one_line_error(&o, &["nope.safetensors"]);
}

#[test]
fn truncated_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = model(&dir.path().join("m.safetensors"), 2, 1, &normal_q(1));
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 100]).unwrap();
    let o = nullprint(&["fingerprint", p.to_str().unwrap(), "--no-hash"], &[]);
    one_line_error(&o, &["m.safetensors"]);
}

#[test]
fn bad_json_header() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.safetensors");
    let header = b"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]";
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header);
    bytes.extend([0u8; 8]);
    std::fs::write(&p, bytes).unwrap();
    let o = nullprint(&["fingerprint", p.to_str().unwrap()], &[]);
    one_line_error(&o, &["m.safetensors"]);
}

#[test]
fn wrong_dtype_for_a_needed_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let q = "model.layers.0.self_attn.q_proj.weight";
    let p = safetensors(
        &dir.path().join("m.safetensors"),
        &[
            (q, "I64", &[2, 2], vec![0u8; 32]),
            (
                "model.layers.0.self_attn.k_proj.weight",
                "F32",
                &[2, 2],
                f32s([0.1, 0.2, 0.3, 0.4]),
            ),
        ],
    );
    let o = nullprint(&["fingerprint", p.to_str().unwrap()], &[]);
    one_line_error(&o, &["m.safetensors", q, "I64"]);
}

#[test]
fn fused_split_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let t = "model.layers.0.self_attn.qkv_proj.weight";
    // 7 rows: no q/k/v split of 7 rows matches any head layout.
    let p = safetensors(
        &dir.path().join("m.safetensors"),
        &[(t, "F32", &[7, 4], f32s(noise(28, 3, 0.1)))],
    );
    let o = nullprint(&["fingerprint", p.to_str().unwrap()], &[]);
    one_line_error(&o, &["m.safetensors", t, "fused"]);
}

#[test]
fn nan_weights_are_flagged_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let p = model(&dir.path().join("m.safetensors"), 2, 4, &|l| {
        let mut v = noise(64, 40 + l as u64, 0.05);
        if l == 1 {
            v[3] = f32::NAN;
            v[9] = f32::INFINITY;
        }
        v
    });
    let o = nullprint(&["fingerprint", p.to_str().unwrap(), "--no-hash"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let q1 = v["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["tensor"] == "model.layers.1.self_attn.q_proj.weight")
        .expect("layer-1 q row");
    // Flagged: the non-finite values are counted ...
    assert_eq!(q1["nan"], 1, "{q1}");
    assert_eq!(q1["inf"], 1, "{q1}");
    // ... and the moments are finite numbers (over the finite values) or absent, never NaN.
    for k in ["mean", "std"] {
        let s = &q1[k];
        assert!(
            s.is_null() || s.as_f64().is_some_and(f64::is_finite),
            "{k}: {s}"
        );
    }
    assert_no_nan(&String::from_utf8_lossy(&o.stdout));
}

/// Fingerprint `model` to stdout (JSON) with `threads` rayon threads; the command line is the
/// same for every thread count, so the provenance is too.
fn fingerprint_json(model: &Path, threads: &str) -> Vec<u8> {
    let o = Command::new(env!("CARGO_BIN_EXE_nullprint"))
        .args([
            "fingerprint",
            model.to_str().unwrap(),
            "--no-hash",
            "--no-cache",
        ])
        .env("RAYON_NUM_THREADS", threads)
        .output()
        .expect("run nullprint");
    assert!(o.status.success(), "{}", stderr(&o));
    o.stdout
}

/// Compare output: either success with finite numbers, or one clear error line.
fn compare(a: &Path, b: &Path) -> Output {
    nullprint(
        &[
            "compare",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--null",
            "shuffle",
            "--samples",
            "200",
            "--format",
            "json",
        ],
        &[],
    )
}

#[test]
fn zero_spread_curve_in_compare() {
    let dir = tempfile::tempdir().unwrap();
    // Model A: every layer's q is the same constant tensor: std 0 at every layer, a flat curve.
    let a = model(&dir.path().join("a.safetensors"), 4, 5, &|_| vec![0.25; 64]);
    let b = model(&dir.path().join("b.safetensors"), 4, 6, &normal_q(6));
    let o = compare(&a, &b);
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    if o.status.success() {
        assert_no_nan(&String::from_utf8_lossy(&o.stdout));
    } else {
        // Names the file and the role.
        one_line_error(
            &o,
            &[&format!("{}: ", a.display()), "attn_q", "zero spread"],
        );
    }
}

#[test]
fn short_curves_and_mismatched_roles_in_compare() {
    let dir = tempfile::tempdir().unwrap();
    // Two layers: fewer than the 3 points a curve correlation needs.
    let a = model(&dir.path().join("a.safetensors"), 2, 7, &normal_q(7));
    let b = model(&dir.path().join("b.safetensors"), 2, 8, &normal_q(8));
    let o = compare(&a, &b);
    // A clear refusal naming the file and the role.
    one_line_error(
        &o,
        &[&format!("{}: ", a.display()), "2 layers", "at least 3"],
    );
    // Disjoint role sets: A has only q, B only k.
    let only = |path: &Path, p: &str, seed: u64| {
        let names: Vec<(String, Vec<u8>)> = (0..4)
            .map(|l| {
                (
                    format!("model.layers.{l}.self_attn.{p}.weight"),
                    f32s(noise(16, seed + l, 0.1 * (l + 1) as f32)),
                )
            })
            .collect();
        let t: Vec<(&str, &str, &[usize], Vec<u8>)> = names
            .iter()
            .map(|(n, b)| (n.as_str(), "F32", &[4usize, 4][..], b.clone()))
            .collect();
        safetensors(path, &t)
    };
    let a = only(&dir.path().join("qa.safetensors"), "q_proj", 10);
    let b = only(&dir.path().join("kb.safetensors"), "k_proj", 20);
    let o = compare(&a, &b);
    one_line_error(&o, &[&format!("{}: ", a.display()), "no attn_k rows"]);
}

#[test]
fn normal_compare_has_finite_numbers() {
    // The control for the checks above: the same path with well-formed curves succeeds, and
    // the NaN check passes on real output.
    let dir = tempfile::tempdir().unwrap();
    let a = model(&dir.path().join("a.safetensors"), 4, 12, &normal_q(12));
    let b = model(&dir.path().join("b.safetensors"), 4, 13, &normal_q(13));
    let o = compare(&a, &b);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert_no_nan(&text);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(v["score"].as_f64().is_some(), "{text}");
}

#[test]
fn unknown_format() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("weights.dat");
    std::fs::write(&p, b"this is not a weight file at all").unwrap();
    let o = nullprint(&["fingerprint", p.to_str().unwrap()], &[]);
    one_line_error(&o, &["weights.dat"]);
}

#[test]
fn existing_output_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(&dir.path().join("m.safetensors"), 2, 9, &normal_q(9));
    let out = dir.path().join("fp.json");
    std::fs::write(&out, b"precious").unwrap();
    let o = nullprint(
        &[
            "fingerprint",
            m.to_str().unwrap(),
            "--no-hash",
            "-o",
            out.to_str().unwrap(),
        ],
        &[],
    );
    one_line_error(&o, &["fp.json"]);
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
}

#[test]
fn ollama_manifest_missing() {
    let store = tempfile::tempdir().unwrap();
    let o = nullprint(
        &["fingerprint", "ollama:nosuchmodel:7b"],
        &[("OLLAMA_MODELS", store.path())],
    );
    one_line_error(&o, &["nosuchmodel", "manifest"]);
}

#[test]
fn hf_repo_not_in_cache() {
    let cache = tempfile::tempdir().unwrap();
    let o = nullprint(
        &["fingerprint", "nosuch-org/nosuch-model"],
        &[("HF_HUB_CACHE", cache.path())],
    );
    one_line_error(&o, &["nosuch-org/nosuch-model"]);
}

#[test]
fn fingerprints_are_byte_identical_at_1_and_4_threads() {
    let dir = tempfile::tempdir().unwrap();
    // Small tensors (parallel across tensors), and a second model whose 3M-element tensors
    // span several 1M-element work units (parallel within a tensor, merged in order).
    let m = model(&dir.path().join("m.safetensors"), 6, 11, &|l| {
        noise(64, 500 + l as u64, 0.04)
    });
    let big: Vec<(String, Vec<u8>)> = (0..2)
        .map(|l| {
            (
                format!("model.layers.{l}.mlp.up_proj.weight"),
                f32s(noise(3 * 1024 * 1024, 900 + l, 0.02)),
            )
        })
        .collect();
    let mut tensors: Vec<(&str, &str, &[usize], Vec<u8>)> = big
        .iter()
        .map(|(n, b)| (n.as_str(), "F32", &[3072usize, 1024][..], b.clone()))
        .collect();
    let q: Vec<(String, Vec<u8>)> = (0..3)
        .map(|l| {
            (
                format!("model.layers.{l}.self_attn.q_proj.weight"),
                f32s(noise(256 * 1024, 700 + l, 0.03)),
            )
        })
        .collect();
    tensors.extend(
        q.iter()
            .map(|(n, b)| (n.as_str(), "F32", &[512usize, 512][..], b.clone())),
    );
    let big_model = safetensors(&dir.path().join("big/model.safetensors"), &tensors);
    for (i, model) in [m, big_model].iter().enumerate() {
        let one = fingerprint_json(model, "1");
        let four = fingerprint_json(model, "4");
        assert!(!one.is_empty());
        assert!(
            one == four,
            "model {i}: fingerprint differs between 1 and 4 threads"
        );
    }
}

#[test]
fn derive_errors_name_the_recipe_or_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let base = model(&dir.path().join("m.safetensors"), 6, 3, &normal_q(3));
    let out = dir.path().join("out");
    let b = base.to_str().unwrap();
    let o = out.to_str().unwrap();
    let bad = nullprint(&["derive", b, "--recipe", "grow(count=2)", "-o", o], &[]);
    one_line_error(&bad, &["--recipe", "unknown kind"]);
    let bad = nullprint(&["derive", b, "--recipe", "prune(count=5)", "-o", o], &[]);
    one_line_error(&bad, &["prune count"]);
    let ok = nullprint(
        &["derive", b, "--recipe", "insert(count=2, rel=0.1)", "-o", o],
        &[],
    );
    assert!(ok.status.success(), "{}", stderr(&ok));
    let before = std::fs::read(out.join("model.safetensors")).unwrap();
    let again = nullprint(&["derive", b, "--recipe", "noise(rel=1)", "-o", o], &[]);
    one_line_error(&again, &["model.safetensors", "--force"]);
    assert_eq!(
        std::fs::read(out.join("model.safetensors")).unwrap(),
        before
    );
    // The derived model is a model: 8 layers, every tensor mapped.
    let fp = nullprint(&["fingerprint", o, "--no-hash"], &[]);
    assert!(fp.status.success(), "{}", stderr(&fp));
    let v: serde_json::Value = serde_json::from_slice(&fp.stdout).unwrap();
    assert_eq!(v["model"]["config"]["layers"], 8);
}

//! The `nullprint` binary as a user meets it: outputs, refusals, and one-line errors.

use std::path::Path;
use std::process::{Command, Output};

fn nullprint(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nullprint"))
        .args(args)
        .output()
        .expect("run nullprint")
}

/// A tiny valid safetensors file with one layer of q/k/v/o.
fn tiny_model(dir: &Path) -> std::path::PathBuf {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (i, p) in ["q_proj", "k_proj", "v_proj", "o_proj"].iter().enumerate() {
        let start = data.len();
        for j in 0..16 {
            data.extend_from_slice(&((i * 16 + j) as f32 * 0.01 - 0.3).to_le_bytes());
        }
        header.insert(
            format!("model.layers.0.self_attn.{p}.weight"),
            serde_json::json!({"dtype": "F32", "shape": [4, 4], "data_offsets": [start, data.len()]}),
        );
    }
    let bytes = testkit::safetensors(&header.into(), &data);
    let p = dir.join("model.safetensors");
    std::fs::write(&p, bytes).unwrap();
    p
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn fingerprint_writes_json_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let out = dir.path().join("fp.json");
    let o = nullprint(&[
        "fingerprint",
        model.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let first = std::fs::read(&out).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(v["schema"], "nullprint.fingerprint");
    assert_eq!(v["tensors"].as_array().unwrap().len(), 4);
    assert_eq!(v["model"]["files"][0]["sha256"].as_str().unwrap().len(), 64);

    std::fs::write(&out, b"user data").unwrap();
    let o = nullprint(&[
        "fingerprint",
        model.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(&out).unwrap(),
        b"user data",
        "never written over"
    );

    let o = nullprint(&[
        "fingerprint",
        model.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--force",
    ]);
    assert!(o.status.success());
    assert_ne!(std::fs::read(&out).unwrap(), b"user data");
}

#[test]
fn fingerprint_csv_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let o = nullprint(&["fingerprint", model.to_str().unwrap(), "--format", "csv"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "model,stack,layer,role,expert,tensor,dtype,numel,mean,std,min,max,abs_mean,l2,nan,inf"
    );
    assert_eq!(lines.count(), 4);
}

#[test]
fn truncated_file_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&model, &bytes[..bytes.len() - 10]).unwrap();
    let o = nullprint(&["fingerprint", model.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(model.to_str().unwrap()) && err.contains("truncated"),
        "{err}"
    );
    assert!(!err.contains("panicked"));
}

#[test]
fn roles_lists_the_mapping() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let o = nullprint(&["roles", model.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("model.layers.0.self_attn.o_proj.weight") && text.contains("attn_o"),
        "{text}"
    );
}

#[test]
fn unknown_model_is_one_clear_line() {
    let o = nullprint(&["fingerprint", "/no/such/model"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o).lines().count(), 1);
    assert!(stderr(&o).contains("/no/such/model"));
}

#[test]
fn cache_serves_repeats_and_ignores_corrupt_entries() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let cache = dir.path().join("cache");
    let run = |extra: &[&str]| {
        let mut args = vec!["fingerprint", model.to_str().unwrap(), "--format", "csv"];
        args.extend_from_slice(extra);
        let o = Command::new(env!("CARGO_BIN_EXE_nullprint"))
            .args(&args)
            .env("NULLPRINT_CACHE", &cache)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        o.stdout
    };
    let first = run(&[]);
    let entries: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        entries.len(),
        1,
        "one entry, no temporary files: {entries:?}"
    );
    assert_eq!(run(&[]), first, "served from the cache");
    // A corrupt entry (as a crash could leave it in place by hand) is ignored, not trusted.
    std::fs::write(&entries[0], b"{ not json").unwrap();
    assert_eq!(run(&[]), first);
    assert_eq!(run(&["--no-cache"]), first);
}

#[test]
fn list_and_shard_split_the_work() {
    let dir = tempfile::tempdir().unwrap();
    let mut specs = String::from("# models, one per line\n");
    for i in 0..5 {
        let d = dir.path().join(format!("m{i}"));
        std::fs::create_dir_all(&d).unwrap();
        tiny_model(&d);
        specs.push_str(&format!("{}\n", d.display()));
    }
    let list = dir.path().join("models.txt");
    std::fs::write(&list, specs).unwrap();
    let out = dir.path().join("fps");
    let mut seen = Vec::new();
    for shard in ["0/2", "1/2"] {
        let o = nullprint(&[
            "fingerprint",
            "--list",
            list.to_str().unwrap(),
            "--shard",
            shard,
            "-o",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    for e in std::fs::read_dir(&out).unwrap() {
        seen.push(e.unwrap().file_name().to_string_lossy().into_owned());
    }
    seen.sort();
    assert_eq!(
        seen,
        ["m0.json", "m1.json", "m2.json", "m3.json", "m4.json"]
    );
    let o = nullprint(&[
        "fingerprint",
        "--list",
        list.to_str().unwrap(),
        "--shard",
        "2/2",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success(), "shard index out of range is refused");
}

#[test]
fn calibrate_writes_a_report_with_rates_and_qq_plots() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cal");
    let o = nullprint(&[
        "calibrate",
        "--replicates",
        "20",
        "--samples",
        "19",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let tables = r["computed"]["false_positive_rates"].as_array().unwrap();
    assert!(!tables.is_empty());
    for t in tables {
        for row in t["rows"].as_array().unwrap() {
            assert_eq!(row["n"], 20);
            let rate = row["rate"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&rate));
        }
    }
    assert!(out.join("figures").read_dir().unwrap().count() >= 2);
}

/// The committed baseline fingerprint of a panel model.
fn baseline(id: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../baselines/{id}.json"))
        .display()
        .to_string()
}

#[test]
fn compare_leads_with_the_answer_and_calibrates_surrogate_p_values() {
    // Two real models that share no weights (Qwen2.5-Coder-0.5B and SmolLM2-135M): the raw
    // trend-dct p is about 1e-4, far below any level, but the null rejects real unrelated
    // pairs far more often than its level. The answer must not accuse.
    let a = baseline("qwen2.5-coder-0.5b-instruct-awq");
    let b = baseline("smollm2-135m-instruct");
    let o = nullprint(&["compare", &a, &b, "--null", "trend-dct", "--samples", "999"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    let first = text.lines().next().unwrap();
    assert!(
        !first.contains("consistent with shared weights")
            && (first.contains("cannot tell") || first.contains("not distinguishable")),
        "{first}"
    );
    assert!(
        text.lines().nth(1).unwrap().contains("rests on: panel p"),
        "{text}"
    );
    // Both models are in the built-in panel: they are left out of it, by curves, not names.
    assert!(text.contains("left out of the panel"), "{text}");
    // The raw p carries its measured size; its calibrated p follows.
    assert!(
        text.contains("size on real unrelated pairs: rejects"),
        "{text}"
    );
    assert!(text.contains("null trend-dct calibrated"), "{text}");
    // Each note once.
    let dependence = text.matches("pairs in a panel are not independent").count();
    assert_eq!(dependence, 1, "{text}");

    // JSON: the answer, then the nulls; the same seed gives the same numbers.
    let json = |extra: &[&str]| {
        let mut args = vec!["compare", &a, &b, "--null", "trend-dct", "--samples", "999"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--format", "json"]);
        let o = nullprint(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let j = json(&[]);
    assert_ne!(j["answer"]["answer"], "shared_weights");
    assert_eq!(j["nulls"][2]["name"], "trend-dct calibrated");
    assert_eq!(j, json(&["--threads", "1"]));
    // Without a panel nothing is calibrated: the answer abstains and the raw p says why.
    let j = json(&["--panel", "none"]);
    assert_eq!(j["answer"]["answer"], "cannot_tell");
    let note = j["nulls"][0]["notes"].to_string();
    assert!(note.contains("uncalibrated"), "{note}");
}

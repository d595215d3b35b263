//! `nullprint reproduce` end to end: the committed HonestAGI report is what the committed
//! experiment and baselines produce, byte for byte, at any thread count.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn reproduce(out: &Path, threads: &str) -> serde_json::Value {
    let o = Command::new(env!("CARGO_BIN_EXE_nullprint"))
        .current_dir(workspace())
        .args([
            "--threads",
            threads,
            "reproduce",
            "experiments/honestagi.toml",
            "-o",
        ])
        .arg(out)
        .env("NULLPRINT_CACHE", out.with_extension("cache"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap()
}

#[test]
fn committed_report_is_reproduced_at_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let one = reproduce(&dir.path().join("one"), "1");
    let two = reproduce(&dir.path().join("two"), "2");
    assert_eq!(one, two, "1 and 2 threads give the same report");
    let committed: serde_json::Value = serde_json::from_slice(
        &std::fs::read(workspace().join("reports/honestagi/report.json")).unwrap(),
    )
    .unwrap();
    // The report names the build that wrote it, as `nullprint --version` does.
    let version = Command::new(env!("CARGO_BIN_EXE_nullprint"))
        .arg("--version")
        .output()
        .unwrap();
    let version = String::from_utf8(version.stdout).unwrap();
    assert_eq!(
        format!(
            "nullprint {}\n",
            one["provenance"]["version"].as_str().unwrap()
        ),
        version
    );
    // The committed report was written by this release (its commit is older than the commit
    // holding it, so that part cannot match).
    let committed_version = committed["provenance"]["version"].as_str().unwrap();
    assert!(
        committed_version == env!("CARGO_PKG_VERSION")
            || committed_version.starts_with(concat!(env!("CARGO_PKG_VERSION"), " (git ")),
        "reports/honestagi/report.json was written by nullprint {committed_version}"
    );
    // Everything but the command line (it names the output directory) and the build is
    // identical.
    let strip = |mut v: serde_json::Value| {
        v["provenance"]["command_line"] = serde_json::Value::Null;
        v["provenance"]["version"] = serde_json::Value::Null;
        v
    };
    assert_eq!(
        strip(one.clone()),
        strip(committed),
        "reports/honestagi/report.json is stale: run `just reproduce honestagi`"
    );
    // The claim is cited, never computed, when its weights are absent.
    assert_eq!(one["claim"]["statistic"]["value"], 0.927);
    assert!(one["verdict"]["cannot_say"]
        .as_str()
        .unwrap()
        .contains("not public"));
}

/// A safetensors model with `layers` layers of q/k/v/o whose std grows with depth.
fn layered_model(path: &Path, layers: usize, seed: u64) {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    let mut state = seed;
    for l in 0..layers {
        for p in ["q_proj", "k_proj", "v_proj", "o_proj"] {
            let start = data.len();
            for _ in 0..256 {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5;
                data.extend_from_slice(&(u * 0.02 * (1.0 + l as f32)).to_le_bytes());
            }
            header.insert(
                format!("model.layers.{l}.self_attn.{p}.weight"),
                serde_json::json!({"dtype": "F32", "shape": [16, 16], "data_offsets": [start, data.len()]}),
            );
        }
    }
    let bytes = testkit::safetensors(&header.into(), &data);
    std::fs::write(path, bytes).unwrap();
}

/// When the user holds both claimed models, the claim is recomputed from them, not cited.
#[test]
fn claim_is_recomputed_when_its_weights_are_present() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        dir.path().join("a.safetensors"),
        dir.path().join("b.safetensors"),
    );
    layered_model(&a, 6, 1);
    layered_model(&b, 6, 2);
    let text = std::fs::read_to_string(workspace().join("experiments/honestagi.toml")).unwrap();
    let text = text
        .replace(
            "\"IntervitensInc/pangu-pro-moe-model\"",
            &format!("{:?}", a.display().to_string()),
        )
        .replace(
            "\"Qwen/Qwen2.5-14B\"",
            &format!("{:?}", b.display().to_string()),
        )
        .replace(
            "\"../baselines/index.toml\"",
            &format!(
                "{:?}",
                workspace()
                    .join("baselines/index.toml")
                    .display()
                    .to_string()
            ),
        )
        .replace(
            "\"../baselines/controls.toml\"",
            &format!(
                "{:?}",
                workspace()
                    .join("baselines/controls.toml")
                    .display()
                    .to_string()
            ),
        )
        .replace(
            "\"../baselines/lab/honestagi\"",
            &format!(
                "{:?}",
                workspace()
                    .join("baselines/lab/honestagi")
                    .display()
                    .to_string()
            ),
        )
        .replace("replicates = 100", "replicates = 5");
    let exp = dir.path().join("claim.toml");
    std::fs::write(&exp, text).unwrap();
    let out = dir.path().join("report");
    let o = Command::new(env!("CARGO_BIN_EXE_nullprint"))
        .args(["reproduce"])
        .arg(&exp)
        .arg("-o")
        .arg(&out)
        .env("NULLPRINT_CACHE", dir.path().join("cache"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let tested = &r["computed"]["nulls"][0]["tested"];
    assert_eq!(tested["kind"], "computed", "{tested}");
    assert_eq!(tested["label"], "recomputed claim");
    let v = tested["value"].as_f64().unwrap();
    assert!(v.is_finite() && (-1.0..=1.0).contains(&v));
    assert_ne!(v, 0.927);
    assert!(r["verdict"]["cannot_say"]
        .as_str()
        .unwrap()
        .contains("fingerprinted from the weights"));
}

/// A positive control's fingerprint must be the one its index describes: a stale record (other
/// seed) or a missing file stops `reproduce` with the file named.
#[test]
fn stale_or_missing_controls_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("experiments")).unwrap();
    std::fs::create_dir_all(root.join("baselines/controls")).unwrap();
    std::fs::create_dir_all(root.join("baselines/lab/honestagi")).unwrap();
    std::fs::copy(
        workspace().join("experiments/honestagi.toml"),
        root.join("experiments/honestagi.toml"),
    )
    .unwrap();
    for sub in ["baselines", "baselines/controls", "baselines/lab/honestagi"] {
        for e in std::fs::read_dir(workspace().join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                std::fs::copy(&p, root.join(sub).join(p.file_name().unwrap())).unwrap();
            }
        }
    }
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_nullprint"))
            .current_dir(root)
            .args([
                "reproduce",
                "experiments/honestagi.toml",
                "-o",
                "out",
                "--force",
            ])
            .env("NULLPRINT_CACHE", root.join("cache"))
            .output()
            .unwrap()
    };
    let id = "smollm2-135m-instruct.noise-rel1.s2";
    let path = root.join(format!("baselines/controls/{id}.json"));
    let original = std::fs::read(&path).unwrap();
    let mut fp: serde_json::Value = serde_json::from_slice(&original).unwrap();
    fp["model"]["derived"]["seed"] = serde_json::json!(7);
    std::fs::write(&path, serde_json::to_vec(&fp).unwrap()).unwrap();
    let o = run();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains(id) && err.contains("stale"), "{err}");
    std::fs::remove_file(&path).unwrap();
    let o = run();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains(id) && err.contains("just baselines"), "{err}");
    std::fs::write(&path, &original).unwrap();
    let o = run();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Largest committed report directory: a report a reviewer downloads and reads in a minute.
const MAX_REPORT_BYTES: u64 = 2_000_000;

#[test]
fn the_committed_report_is_small_and_leads_with_its_answer() {
    let dir = workspace().join("reports/honestagi");
    let mut total = 0;
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                total += meta.len();
            }
        }
    }
    assert!(
        total < MAX_REPORT_BYTES,
        "reports/honestagi holds {total} bytes"
    );
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let verdict = md.split("## Verdict").nth(1).unwrap();
    let answer = verdict.trim_start().lines().next().unwrap();
    assert!(
        [
            "**Cannot tell",
            "**Not distinguishable",
            "**Consistent with shared weights"
        ]
        .iter()
        .any(|a| answer.starts_with(a)),
        "{answer}"
    );
    let findings = verdict
        .split("[The verdict in full]")
        .next()
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("- "))
        .count();
    assert!((1..=5).contains(&findings), "{findings} findings");
    // The headline figure, the claim on the depth-matched nulls, comes with the answer.
    let head = verdict.split("[The verdict in full]").next().unwrap();
    assert!(
        head.contains("![Figure 1: ") && head.contains("figures/claim-on-matched-nulls.svg"),
        "{head}"
    );
}

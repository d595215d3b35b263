//! `nullprint reproduce experiments/solar-glm.toml` end to end: the committed Solar-vs-GLM
//! report is what the committed experiment and vector fingerprints produce, at any thread
//! count (as the HonestAGI report is tested in reproduce.rs).

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
            "experiments/solar-glm.toml",
            "-o",
        ])
        .arg(out)
        .env("NULLPRINT_CACHE", out.with_extension("cache"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap()
}

/// Every CSV of a report directory (tables and figure data), by relative path.
fn csvs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for sub in ["", "figures"] {
        let Ok(rd) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "csv") {
                let name = p.strip_prefix(dir).unwrap().display().to_string();
                out.push((name, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn committed_solar_glm_report_is_reproduced_at_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let (one_dir, two_dir) = (dir.path().join("one"), dir.path().join("two"));
    let one = reproduce(&one_dir, "1");
    let two = reproduce(&two_dir, "2");
    let strip = |mut v: serde_json::Value| {
        v["provenance"]["command_line"] = serde_json::Value::Null;
        v["provenance"]["version"] = serde_json::Value::Null;
        v
    };
    assert_eq!(strip(one.clone()), strip(two), "1 and 2 threads");
    let committed_dir = workspace().join("reports/solar-glm");
    let committed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(committed_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(
        strip(one.clone()),
        strip(committed),
        "reports/solar-glm/report.json is stale: run `just reproduce solar-glm`"
    );
    let ours = csvs(&one_dir);
    assert!(
        ours.len() >= 6,
        "{:?}",
        ours.iter().map(|c| &c.0).collect::<Vec<_>>()
    );
    assert_eq!(ours, csvs(&two_dir), "CSV files at 1 and 2 threads");
    assert_eq!(ours, csvs(&committed_dir), "committed CSV files are stale");
    // The claim is cited, and the report carries both measures' permutation nulls.
    assert_eq!(one["claim"]["statistic"]["value"], 0.989);
    let nulls = one["computed"]["nulls"].as_array().unwrap();
    assert!(nulls.iter().any(|n| n["name"]
        .as_str()
        .unwrap()
        .starts_with("permutation, centred-cosine")));
    assert!(nulls
        .iter()
        .all(|n| n["seed"].is_u64() && n["mc_error"].is_f64()));
}

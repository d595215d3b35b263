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
    // Everything but the command line (it names the output directory) is identical.
    let strip = |mut v: serde_json::Value| {
        v["provenance"]["command_line"] = serde_json::Value::Null;
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

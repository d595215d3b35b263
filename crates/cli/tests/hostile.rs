//! The careless or hostile user (issue #24): outputs that must never lose or damage the user's
//! files, hand-edited inputs whose meaning is checked on load, and bounded resources. Each test
//! is one case of the issue (or the class it stands for); all run on tiny synthetic models in
//! well under a second each.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nullprint"))
}

fn run(args: &[&str], cache: &Path) -> Output {
    bin()
        .args(args)
        .env("NULLPRINT_CACHE", cache)
        .output()
        .expect("run nullprint")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit code 1 and one line on stderr holding every needle; no panic.
fn refused(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let last = err.lines().last().unwrap_or_default();
    for n in needles {
        assert!(last.contains(n), "{n:?} missing from {err:?}");
    }
}

fn ok(o: &Output) {
    assert!(o.status.success(), "{}", stderr(o));
}

/// A safetensors file of F32 `[8, 8]` q/k/v/o tensors over `layers` layers (values from `seed`).
fn model(path: &Path, layers: usize, seed: u64) -> PathBuf {
    let mut header = serde_json::Map::new();
    let mut data: Vec<u8> = Vec::new();
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for l in 0..layers {
        for p in ["q_proj", "k_proj", "v_proj", "o_proj"] {
            let start = data.len();
            for _ in 0..64 {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let x = ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.05 * (l + 1) as f32;
                data.extend(x.to_le_bytes());
            }
            header.insert(
                format!("model.layers.{l}.self_attn.{p}.weight"),
                serde_json::json!({"dtype": "F32", "shape": [8, 8], "data_offsets": [start, data.len()]}),
            );
        }
    }
    let mut h = serde_json::to_vec(&header).unwrap();
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut bytes = (h.len() as u64).to_le_bytes().to_vec();
    bytes.extend(h);
    bytes.extend(data);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    path.to_path_buf()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn mkfifo(p: &Path) {
    let st = Command::new("mkfifo").arg(p).status().unwrap();
    assert!(st.success());
}

/// Every file under `dir` (relative path -> bytes), hidden ones included.
fn snapshot(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    fn walk(root: &Path, d: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap_or_default());
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

/// Names in `dir` that start with a dot (temporary files or directories left behind).
fn hidden(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

/// A small report (the p-value calibration at a few replicates: 0.3 s) written to `out`.
fn calibrate(out: &Path, seed: u64, force: bool, cache: &Path) -> Output {
    let seed = seed.to_string();
    let mut args = vec![
        "calibrate",
        "--replicates",
        "20",
        "--samples",
        "19",
        "--seed",
        &seed,
        "-o",
        s(out),
    ];
    if force {
        args.push("--force");
    }
    run(&args, cache)
}

/// Every file the report's manifest lists has the listed SHA-256, and nothing of the report is
/// missing: the directory holds one report, whole.
fn report_is_whole(dir: &Path) -> bool {
    use sha2::{Digest, Sha256};
    let Ok(text) = std::fs::read_to_string(dir.join("files.sha256")) else {
        return false;
    };
    text.lines().all(|l| {
        let (h, p) = l.split_once("  ").unwrap();
        std::fs::read(dir.join(p)).is_ok_and(|b| {
            let d: String = Sha256::digest(&b)
                .iter()
                .map(|x| format!("{x:02x}"))
                .collect();
            d == h
        })
    })
}

// ---- Outputs ---------------------------------------------------------------------------

#[test]
fn fingerprint_output_never_replaces_a_fifo_or_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(&dir.path().join("m/model.safetensors"), 2, 1);
    let fifo = dir.path().join("out.json");
    mkfifo(&fifo);
    let o = run(
        &["fingerprint", s(&m), "-o", s(&fifo), "--force"],
        dir.path(),
    );
    refused(&o, &["out.json", "not a regular file"]);
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo_like());
    let precious = dir.path().join("precious.txt");
    std::fs::write(&precious, b"keep").unwrap();
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(&precious, &link).unwrap();
    let o = run(
        &["fingerprint", s(&m), "-o", s(&link), "--force"],
        dir.path(),
    );
    refused(&o, &["link.json", "not a regular file"]);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(&precious).unwrap(), b"keep");
    assert!(hidden(dir.path()).is_empty(), "{:?}", hidden(dir.path()));
}

trait FifoLike {
    fn is_fifo_like(&self) -> bool;
}
impl FifoLike for std::fs::FileType {
    fn is_fifo_like(&self) -> bool {
        use std::os::unix::fs::FileTypeExt;
        self.is_fifo()
    }
}

#[test]
fn list_with_two_models_of_one_base_name_is_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let a = model(&dir.path().join("a/model/model.safetensors"), 2, 1);
    let b = model(&dir.path().join("b/model/model.safetensors"), 2, 2);
    let list = dir.path().join("list.txt");
    let (ma, mb) = (a.parent().unwrap(), b.parent().unwrap());
    std::fs::write(&list, format!("{}\n{}\n", s(ma), s(mb))).unwrap();
    let out = dir.path().join("out");
    let o = run(
        &["fingerprint", "--list", s(&list), "-o", s(&out), "--force"],
        dir.path(),
    );
    refused(&o, &["would both be written to", "model.json"]);
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().count() == 0);
}

#[test]
fn derive_refuses_to_write_into_its_base() {
    let dir = tempfile::tempdir().unwrap();
    let base = model(&dir.path().join("base/model.safetensors"), 4, 3);
    let before = std::fs::read(&base).unwrap();
    let root = base.parent().unwrap();
    let o = run(
        &[
            "derive",
            s(root),
            "--recipe",
            "noise(rel=0.1)",
            "-o",
            s(root),
            "--force",
        ],
        dir.path(),
    );
    refused(&o, &["where the base model is"]);
    assert_eq!(std::fs::read(&base).unwrap(), before);
    // A hard link to the base's weights inside the output directory is the base too.
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::hard_link(&base, out.join("model.safetensors")).unwrap();
    let o = run(
        &[
            "derive",
            s(&base),
            "--recipe",
            "noise(rel=0.1)",
            "-o",
            s(&out),
            "--force",
        ],
        dir.path(),
    );
    refused(&o, &["model.safetensors", "where the base model is"]);
    assert_eq!(std::fs::read(&base).unwrap(), before);
}

#[test]
fn forced_report_deletes_only_what_its_manifest_vouches_for() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("thesis.tex"), b"years of work").unwrap();
    std::fs::write(d.join("files.sha256"), b"aa  thesis.tex\n").unwrap();
    ok(&calibrate(&d, 1, true, dir.path()));
    assert_eq!(
        std::fs::read(d.join("thesis.tex")).unwrap(),
        b"years of work"
    );
    assert!(report_is_whole(&d));
    // A second forced run replaces the report and still keeps the user's file.
    let first = std::fs::read(d.join("report.json")).unwrap();
    ok(&calibrate(&d, 2, true, dir.path()));
    assert_ne!(std::fs::read(d.join("report.json")).unwrap(), first);
    assert_eq!(
        std::fs::read(d.join("thesis.tex")).unwrap(),
        b"years of work"
    );
    assert!(report_is_whole(&d));
    // A report file edited by hand is not overwritten, even with --force.
    std::fs::write(d.join("report.md"), b"my edits").unwrap();
    let before = snapshot(&d);
    refused(
        &calibrate(&d, 3, true, dir.path()),
        &["report.md", "files.sha256"],
    );
    assert_eq!(snapshot(&d), before);
    assert!(hidden(dir.path()).is_empty(), "{:?}", hidden(dir.path()));
}

#[test]
fn a_symlinked_figures_directory_is_never_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    ok(&calibrate(&d, 1, false, dir.path()));
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("keep.svg"), b"mine").unwrap();
    std::fs::remove_dir_all(d.join("figures")).unwrap();
    std::os::unix::fs::symlink(&outside, d.join("figures")).unwrap();
    refused(&calibrate(&d, 2, true, dir.path()), &["figures", "symlink"]);
    assert_eq!(snapshot(&outside).len(), 1);
    assert_eq!(std::fs::read(outside.join("keep.svg")).unwrap(), b"mine");
}

/// Run `nullprint ARGS` with writes limited to `kib` KiB per file (SIGXFSZ ignored, so a write
/// past the limit fails as on a full disk).
fn with_file_limit(kib: u64, args: &[&str], cache: &Path) -> Output {
    Command::new("bash")
        .arg("-c")
        .arg(format!("trap '' XFSZ; ulimit -f {kib}; exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_nullprint"))
        .args(args)
        .env("NULLPRINT_CACHE", cache)
        .output()
        .unwrap()
}

#[test]
fn a_failed_write_leaves_the_old_report_whole_and_no_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    // A fresh report that cannot be written leaves nothing that looks like a report.
    let args = |seed: &'static str, force: bool| {
        let mut v = vec![
            "calibrate",
            "--replicates",
            "20",
            "--samples",
            "19",
            "--seed",
            seed,
        ];
        v.extend(["-o", s(&d)]);
        if force {
            v.push("--force");
        }
        v
    };
    let o = with_file_limit(100, &args("1", false), dir.path());
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!d.exists());
    assert!(hidden(dir.path()).is_empty(), "{:?}", hidden(dir.path()));
    // Over an existing report, the old one stays, whole.
    ok(&calibrate(&d, 1, false, dir.path()));
    let before = snapshot(&d);
    let o = with_file_limit(100, &args("2", true), dir.path());
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("File too large"), "{}", stderr(&o));
    assert_eq!(snapshot(&d), before);
    assert!(hidden(dir.path()).is_empty(), "{:?}", hidden(dir.path()));
}

#[test]
fn sigint_at_any_moment_leaves_the_old_report_or_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    ok(&calibrate(&d, 1, false, dir.path()));
    let mut old = snapshot(&d);
    for (i, delay_ms) in [0u64, 30, 60, 100, 150, 200, 300, 500]
        .into_iter()
        .enumerate()
    {
        let mut child = bin()
            .args([
                "calibrate",
                "--replicates",
                "20",
                "--samples",
                "19",
                "--force",
            ])
            .args(["--seed", &(10 + i).to_string(), "-o", s(&d)])
            .env("NULLPRINT_CACHE", dir.path())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let finished = child.wait().unwrap().success();
        assert!(report_is_whole(&d), "after SIGINT at {delay_ms} ms");
        let now = snapshot(&d);
        // Interrupted, it may still have swapped the new report in just before the signal:
        // either way the manifest vouches for every file (no mixture of old and new).
        if finished {
            assert_ne!(now, old, "a finished run wrote its report");
        }
        assert!(hidden(dir.path()).is_empty(), "{:?}", hidden(dir.path()));
        old = now;
    }
}

#[test]
fn concurrent_writers_without_force_write_once() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(&dir.path().join("m/model.safetensors"), 2, 1);
    let out = dir.path().join("same.json");
    let children: Vec<_> = (0..8)
        .map(|_| {
            bin()
                .args(["fingerprint", s(&m), "--no-cache", "-o", s(&out)])
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let wrote = children
        .into_iter()
        .map(|mut c| c.wait().unwrap().success() as usize)
        .sum::<usize>();
    assert_eq!(wrote, 1, "exactly one writer may succeed");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert!(v["tensors"].is_array());
    assert!(hidden(dir.path()).is_empty(), "{:?}", hidden(dir.path()));
}

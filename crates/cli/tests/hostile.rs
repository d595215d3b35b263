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
    let bytes = testkit::safetensors(&header.into(), &data);
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

/// Every cell of a CSV text (a plain splitter: the cells tested hold no quotes or commas).
fn cells(text: &str) -> Vec<String> {
    text.lines()
        .flat_map(|l| l.split(','))
        .map(|c| c.trim_matches('"').to_string())
        .collect()
}

/// A cell a spreadsheet would run as a formula: text beginning with `=`, `+`, `-`, `@`, tab or
/// CR (numbers such as -0.5 excepted).
fn formula(c: &str) -> bool {
    c.starts_with(['=', '+', '-', '@', '\t', '\r']) && c.parse::<f64>().is_err()
}

#[test]
fn csv_cells_a_spreadsheet_would_run_are_neutralised() {
    let dir = tempfile::tempdir().unwrap();
    // A model whose directory (its name in the fingerprint) is a formula.
    let m = model(&dir.path().join("=1+2/model.safetensors"), 4, 1);
    let csv = dir.path().join("fp.csv");
    ok(&run(
        &[
            "fingerprint",
            s(&m),
            "--no-cache",
            "--format",
            "csv",
            "-o",
            s(&csv),
        ],
        dir.path(),
    ));
    let text = std::fs::read_to_string(&csv).unwrap();
    let c = cells(&text);
    assert!(c.iter().any(|c| c == "'=1+2"), "{text}");
    assert!(!c.iter().any(|c| formula(c)), "{text}");
    // Report CSVs: a published figure labelled like a formula.
    let exp = experiment(dir.path(), |t| {
        t.replacen(
            "label = \"deepseek-llm-7b vs llama-2-7b (independent models), same method\"",
            "label = \"=1+2\"",
            1,
        )
        .replacen("short = \"deepseek vs llama-2\"", "short = \"@SUM(A1)\"", 1)
    });
    let out = dir.path().join("out");
    ok(&run(&["reproduce", s(&exp), "-o", s(&out)], dir.path()));
    let mut all = Vec::new();
    for (name, bytes) in snapshot(&out) {
        if name.ends_with(".csv") {
            all.extend(cells(&String::from_utf8(bytes).unwrap()));
        }
    }
    for want in ["'=1+2", "'@SUM(A1)"] {
        assert!(all.iter().any(|c| c == want), "{want} missing");
    }
    let bad: Vec<&String> = all.iter().filter(|c| formula(c)).collect();
    assert!(bad.is_empty(), "{bad:?}");
    // Negative numbers stay numbers.
    assert!(
        all.iter()
            .any(|c| c.starts_with('-') && c.parse::<f64>().is_ok()),
        "no negative number in the report's CSVs"
    );
    assert!(!all
        .iter()
        .any(|c| c.starts_with("'-") && c[1..].parse::<f64>().is_ok()));
}

// ---- Inputs whose meaning is checked on load -------------------------------------------

/// Fingerprint `model` into `out` (JSON).
fn fingerprint_to(model: &Path, out: &Path, cache: &Path) {
    ok(&run(
        &["fingerprint", s(model), "--no-cache", "-o", s(out)],
        cache,
    ));
}

/// Edit a fingerprint JSON file in place.
fn edit(path: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, serde_json::to_vec(&v).unwrap()).unwrap();
}

#[test]
fn fingerprints_whose_statistics_cannot_be_are_refused_on_load() {
    let dir = tempfile::tempdir().unwrap();
    let panel = dir.path().join("panel");
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        let m = model(
            &dir.path().join(format!("{name}/model.safetensors")),
            4,
            i as u64 + 1,
        );
        fingerprint_to(&m, &panel.join(format!("{name}.json")), dir.path());
    }
    let (a, b) = (panel.join("a.json"), panel.join("b.json"));
    ok(&run(&["compare", s(&a), s(&b)], dir.path()));
    type Edit = fn(&mut serde_json::Value);
    let cases: [(&str, Edit); 4] = [
        ("negative", |v| {
            let sd = v["tensors"][0]["std"].as_f64().unwrap();
            v["tensors"][0]["std"] = (-sd).into();
        }),
        ("above max", |v| v["tensors"][1]["min"] = 10.0.into()),
        ("outside [min", |v| v["tensors"][2]["mean"] = 10.0.into()),
        ("more than half the range", |v| {
            v["tensors"][3]["std"] = 10.0.into()
        }),
    ];
    let good = std::fs::read(&a).unwrap();
    for (needle, f) in cases {
        std::fs::write(&a, &good).unwrap();
        edit(&a, f);
        refused(
            &run(&["compare", s(&a), s(&b)], dir.path()),
            &["a.json", needle],
        );
        // The panel reader (curves only) refuses it too.
        if needle == "negative" {
            refused(
                &run(&["matrix", s(&panel)], dir.path()),
                &["a.json", "std", needle],
            );
        }
    }
}

#[test]
fn similarities_outside_every_measure_range_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("labels.csv");
    std::fs::write(&labels, "model,root\nx,x\ny,y\nz,z\n").unwrap();
    let matrix = dir.path().join("m.csv");
    let write = |cells: [&str; 3]| {
        let [xy, xz, yz] = cells;
        std::fs::write(
            &matrix,
            format!(",x,y,z\nx,1,{xy},{xz}\ny,{xy},1,{yz}\nz,{xz},{yz},1\n"),
        )
        .unwrap();
    };
    write(["0.1", "0.2", "0.3"]);
    let null = |obs: &str| {
        run(
            &[
                "null",
                "--observed",
                obs,
                "--matrix",
                s(&matrix),
                "--labels",
                s(&labels),
            ],
            dir.path(),
        )
    };
    ok(&null("0.5"));
    refused(&null("2.0"), &["observed score = 2", "outside"]);
    write(["10", "20", "30"]);
    refused(&null("0.9"), &["m.csv", "x / y", "a percentage"]);
    write(["0.1", "5.0", "0.3"]);
    refused(&null("0.5"), &["m.csv", "x / z", "outside"]);
}

#[test]
fn labels_naming_a_model_that_is_not_there_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("labels.csv");
    let matrix = dir.path().join("m.csv");
    std::fs::write(&matrix, ",x,y,z\nx,1,0.1,0.2\ny,0.1,1,0.3\nz,0.2,0.3,1\n").unwrap();
    let null = |args: &[&str]| {
        let mut a = vec!["null", "--observed", "0.5", "--labels", s(&labels)];
        a.extend(args);
        run(&a, dir.path())
    };
    std::fs::write(&labels, "model,root\nx,x\ny,y\nz,z\n").unwrap();
    ok(&null(&["--matrix", s(&matrix)]));
    // A typo: `z` would silently be of unknown relation to every model.
    std::fs::write(&labels, "model,root\nx,x\ny,y\nzz,z\n").unwrap();
    refused(
        &null(&["--matrix", s(&matrix)]),
        &["labels.csv", "line 4", "\"zz\"", "not one of the 3 models"],
    );
    // A model with no row at all.
    std::fs::write(&labels, "model,root\nx,x\ny,y\n").unwrap();
    refused(
        &null(&["--matrix", s(&matrix)]),
        &["labels.csv", "no row for model \"z\""],
    );
    // Pair labels: an id that is not in the matrix.
    std::fs::write(&labels, "a,b,label\nx,y,unrelated\nx,q,unrelated\n").unwrap();
    refused(&null(&["--matrix", s(&matrix)]), &["labels.csv", "\"q\""]);
    // The same check for a panel directory (`null --panel`, `matrix --labels`).
    let panel = dir.path().join("panel");
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        let m = model(
            &dir.path().join(format!("{name}/model.safetensors")),
            4,
            i as u64 + 1,
        );
        fingerprint_to(&m, &panel.join(format!("{name}.json")), dir.path());
    }
    std::fs::write(&labels, "model,root\na,a\nb,b\nc,c\n").unwrap();
    ok(&null(&["--panel", s(&panel)]));
    std::fs::write(&labels, "model,root\na,a\nb,b\nC,c\n").unwrap();
    refused(&null(&["--panel", s(&panel)]), &["labels.csv", "\"C\""]);
    refused(
        &run(&["matrix", s(&panel), "--labels", s(&labels)], dir.path()),
        &["labels.csv", "\"C\""],
    );
}

#[test]
fn published_matrices_and_tables_name_file_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("labels.csv");
    std::fs::write(&labels, "model,root\nx,x\ny,y\nz,z\n").unwrap();
    let matrix = dir.path().join("m.csv");
    let null = || {
        run(
            &[
                "null",
                "--observed",
                "0.5",
                "--matrix",
                s(&matrix),
                "--labels",
                s(&labels),
            ],
            dir.path(),
        )
    };
    // A matrix in percent whose cells all happen to be at most 1: its diagonal gives it away.
    std::fs::write(
        &matrix,
        ",x,y,z\nx,100,0.5,0.2\ny,0.5,100,0.9\nz,0.2,0.9,100\n",
    )
    .unwrap();
    refused(&null(), &["m.csv", "line 2", "row x, column x", "percent"]);
    // A distance matrix (zero diagonal) is not a similarity matrix.
    std::fs::write(&matrix, ",x,y,z\nx,0,0.5,0.2\ny,0.5,0,0.9\nz,0.2,0.9,0\n").unwrap();
    refused(&null(), &["m.csv", "row x, column x", "distance"]);
    // Out of range: the line, row and column of the cell.
    std::fs::write(&matrix, ",x,y,z\nx,1,0.5,0.2\ny,0.5,1,1.5\nz,0.2,1.5,1\n").unwrap();
    refused(&null(), &["m.csv", "line 3", "row y, column z", "outside"]);
    // Not symmetric within the stated tolerance.
    std::fs::write(&matrix, ",x,y,z\nx,1,0.5,0.2\ny,0.51,1,0.3\nz,0.2,0.3,1\n").unwrap();
    refused(
        &null(),
        &["m.csv", "matrix[x][y] = 0.5", "matrix[y][x] = 0.51"],
    );

    // A published per-layer std table (the experiment's [published_panel]) with a role cut short.
    let data = dir.path().join("published");
    std::fs::create_dir(&data).unwrap();
    let table = data.join("attention_std_long.csv");
    let mut text = String::from("model,stack,layer,role,std\n");
    for l in 0..6 {
        for (k, role) in ["attn_q", "attn_k", "attn_v", "attn_o"].iter().enumerate() {
            if !(l >= 4 && *role == "attn_v") {
                text.push_str(&format!("m,,{l},{role},{}\n", 0.01 * (l + k + 1) as f64));
            }
        }
    }
    std::fs::write(&table, &text).unwrap();
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let reproduce = || {
        bin()
            .args([
                "reproduce",
                s(&ws.join("experiments/honestagi.toml")),
                "-o",
                s(&dir.path().join("out")),
            ])
            .env("NULLPRINT_CACHE", dir.path())
            .env("NULLPRINT_PUBLISHED_DATA", &data)
            .output()
            .unwrap()
    };
    refused(
        &reproduce(),
        &[
            "attention_std_long.csv",
            "line 2",
            "attn_v",
            "4 of the 6 layers",
        ],
    );
    // A negative std: file, line and column.
    std::fs::write(
        &table,
        text.replacen("m,,2,attn_k,0.04", "m,,2,attn_k,-0.04", 1),
    )
    .unwrap();
    refused(
        &reproduce(),
        &[
            "attention_std_long.csv",
            "line 11",
            "std \"-0.04\"",
            "non-negative",
        ],
    );
    assert!(!dir.path().join("out").exists());
}

/// A copy of experiments/normal-below-0.7.toml in `dir`, its panel index made absolute, with
/// `edit` applied to the text.
fn experiment(dir: &Path, edit: impl FnOnce(String) -> String) -> PathBuf {
    let ws = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap();
    let text = std::fs::read_to_string(ws.join("experiments/normal-below-0.7.toml")).unwrap();
    let index = ws.join("baselines/index.toml");
    let text = text.replace(
        "\"../baselines/index.toml\"",
        &format!("{:?}", index.display().to_string()),
    );
    let p = dir.join("exp.toml");
    std::fs::write(&p, edit(text)).unwrap();
    p
}

#[test]
fn experiment_values_are_checked_before_any_computation() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let reproduce = |p: &Path| run(&["reproduce", s(p), "-o", s(&out)], dir.path());
    let cases = [
        ("value = 0.7\n", "value = 2.0\n", "claim.value"),
        ("alpha = 0.01", "alpha = nan", "nulls.alpha"),
        ("alpha = 0.01", "alpha = 1.0", "nulls.alpha"),
        ("samples = 10000", "samples = 1000000", "nulls.samples"),
        (
            "thresholds = [0.5, 0.7, 0.9]",
            "thresholds = [50, 70]",
            "nulls.thresholds",
        ),
        ("value = 0.91", "value = 91", "published.value"),
    ];
    for (from, to, field) in cases {
        let p = experiment(dir.path(), |t| {
            assert!(t.contains(from), "{from}");
            t.replacen(from, to, 1)
        });
        refused(&reproduce(&p), &["exp.toml", field]);
        assert!(!out.exists());
    }
}

/// A safetensors file of one F64 `[64, 64]` tensor `x_i = scale · u_i` (u uniform in ±0.5 from
/// a fixed generator); returns the path and the population std of the u.
fn f64_model(path: &Path, scale: f64) -> (PathBuf, f64) {
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let u: Vec<f64> = (0..4096)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        })
        .collect();
    let n = u.len() as f64;
    let mean = u.iter().sum::<f64>() / n;
    let std = (u.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt();
    let data: Vec<u8> = u.iter().flat_map(|x| (x * scale).to_le_bytes()).collect();
    let header = serde_json::json!({"model.layers.0.self_attn.q_proj.weight":
        {"dtype": "F64", "shape": [64, 64], "data_offsets": [0, data.len()]}});
    let bytes = testkit::safetensors(&header, &data);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    (path.to_path_buf(), std)
}

#[test]
fn f64_weights_near_the_ends_of_the_range_get_their_std() {
    let dir = tempfile::tempdir().unwrap();
    for scale in [1e160, -1e200, 1e-300, 1.0] {
        let (m, std_u) = f64_model(
            &dir.path().join(format!("{scale:e}/model.safetensors")),
            scale,
        );
        let out = dir.path().join(format!("{scale:e}.json"));
        fingerprint_to(&m, &out, dir.path());
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        let t = &v["tensors"][0];
        let std = t["std"]
            .as_f64()
            .unwrap_or_else(|| panic!("std at {scale}: {t}"));
        let want = std_u * scale.abs();
        assert!(
            ((std - want) / want).abs() < 1e-12,
            "std at {scale}: {std} vs {want}"
        );
        let l2 = t["l2"]
            .as_f64()
            .unwrap_or_else(|| panic!("l2 at {scale}: {t}"));
        assert!(l2 > 0.0 && l2.is_finite());
    }
}

// ---- Resources and special files -------------------------------------------------------

/// Run and wait at most `secs` seconds (a hang fails the test instead of stalling it).
fn run_within(args: &[&str], cache: &Path, secs: u64) -> Output {
    let child = bin()
        .args(args)
        .env("NULLPRINT_CACHE", cache)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let id = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(std::time::Duration::from_secs(secs)) {
        Ok(o) => o.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &id.to_string()])
                .status();
            panic!("nullprint {args:?} hung for {secs} s");
        }
    }
}

#[test]
fn fifos_and_broken_symlinks_are_refused_not_waited_on_or_looked_up() {
    let dir = tempfile::tempdir().unwrap();
    let panel = dir.path().join("panel");
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        let m = model(
            &dir.path().join(format!("{name}/model.safetensors")),
            4,
            i as u64 + 1,
        );
        fingerprint_to(&m, &panel.join(format!("{name}.json")), dir.path());
    }
    mkfifo(&panel.join("fifo.json"));
    let o = run_within(&["matrix", s(&panel)], dir.path(), 30);
    refused(&o, &["fifo.json", "FIFO"]);
    let o = run_within(
        &["null", "--observed", "0.5", "--panel", s(&panel)],
        dir.path(),
        30,
    );
    refused(&o, &["fifo.json", "FIFO"]);
    std::fs::remove_file(panel.join("fifo.json")).unwrap();
    let dangling = dir.path().join("dangling");
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
    let loop_a = dir.path().join("loop_a");
    std::os::unix::fs::symlink(dir.path().join("loop_b"), &loop_a).unwrap();
    std::os::unix::fs::symlink(&loop_a, dir.path().join("loop_b")).unwrap();
    for p in [&dangling, &loop_a] {
        let o = run_within(&["fingerprint", s(p)], dir.path(), 30);
        refused(&o, &["dangling or looping symlink"]);
        assert!(!stderr(&o).contains("Hugging Face"), "{}", stderr(&o));
    }
    let link = panel.join("z.json");
    std::os::unix::fs::symlink(&dangling, &link).unwrap();
    refused(
        &run_within(&["matrix", s(&panel)], dir.path(), 30),
        &["z.json", "dangling"],
    );
}

#[test]
fn an_oversized_fingerprint_json_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(&dir.path().join("a/model.safetensors"), 4, 1);
    let a = dir.path().join("a.json");
    fingerprint_to(&m, &a, dir.path());
    // A sparse 300 MB file: no disk used, and never read.
    let big = dir.path().join("big.json");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(300 << 20)
        .unwrap();
    refused(
        &run(&["compare", s(&big), s(&a)], dir.path()),
        &["big.json", "more than"],
    );
}

#[test]
fn threads_are_capped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(&dir.path().join("a/model.safetensors"), 2, 1);
    let o = run_within(
        &["--threads", "100000", "fingerprint", s(&m), "--no-cache"],
        dir.path(),
        60,
    );
    ok(&o);
    assert!(
        stderr(&o).contains("--threads 100000 capped at 256"),
        "{}",
        stderr(&o)
    );
}

// ---- Cache ------------------------------------------------------------------------------

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

#[test]
fn the_cache_never_vouches_for_bytes_rewritten_with_the_old_mtime() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let m = model(&dir.path().join("m/model.safetensors"), 2, 1);
    // Pad the file past the 1 MiB the key reads with one more tensor, 2 MiB of f32 zeros.
    let mut bytes = std::fs::read(&m).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let data_len = bytes.len() - 8 - n;
    header["lm_head.weight"] = serde_json::json!({
        "dtype": "F32", "shape": [512, 1024], "data_offsets": [data_len, data_len + (2 << 20)]
    });
    let mut out = testkit::safetensors(&header, &bytes[8 + n..]);
    out.resize(out.len() + (2 << 20), 0);
    std::fs::write(&m, &out).unwrap();
    let fp = |args: &[&str]| -> serde_json::Value {
        let o = run(&[&["fingerprint", s(&m)][..], args].concat(), &cache);
        ok(&o);
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let first = fp(&[]);
    assert_eq!(first["model"]["files"][0]["sha256"], sha256_hex(&out));
    // The same size, a byte changed past 1 MiB, the modification time kept (`cp -p`).
    let edited = dir.path().join("edited.safetensors");
    bytes = out.clone();
    let last = bytes.len() - 4;
    bytes[last..].copy_from_slice(&1.0f32.to_le_bytes());
    std::fs::write(&edited, &bytes).unwrap();
    let st = Command::new("touch")
        .arg("-r")
        .arg(&m)
        .arg(&edited)
        .status()
        .unwrap();
    assert!(st.success());
    let st = Command::new("cp")
        .arg("-p")
        .arg(&edited)
        .arg(&m)
        .status()
        .unwrap();
    assert!(st.success());
    let second = fp(&[]);
    assert_eq!(second["model"]["files"][0]["sha256"], sha256_hex(&bytes));
    assert_ne!(
        first["tensors"], second["tensors"],
        "statistics of the new bytes"
    );
}

// ---- Panel fingerprints against the index ----------------------------------------------

/// A copy of the committed baselines (index and fingerprints) in `dir`, and an experiment
/// file reading it.
fn panel_copy(dir: &Path) -> (PathBuf, PathBuf) {
    let ws = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap();
    let copy = dir.join("baselines");
    std::fs::create_dir(&copy).unwrap();
    for e in std::fs::read_dir(ws.join("baselines")).unwrap().flatten() {
        let p = e.path();
        if p.is_file() && (p.extension().is_some_and(|x| x == "json") || p.ends_with("index.toml"))
        {
            std::fs::copy(&p, copy.join(e.file_name())).unwrap();
        }
    }
    let text = std::fs::read_to_string(ws.join("experiments/normal-below-0.7.toml")).unwrap();
    let exp = dir.join("exp.toml");
    std::fs::write(
        &exp,
        text.replace("\"../baselines/index.toml\"", "\"baselines/index.toml\""),
    )
    .unwrap();
    (copy, exp)
}

#[test]
fn panel_fingerprints_must_match_the_index_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let (copy, exp) = panel_copy(dir.path());
    let out = dir.path().join("out");
    let reproduce = || run(&["reproduce", s(&exp), "-o", s(&out)], dir.path());
    ok(&reproduce());
    std::fs::remove_dir_all(&out).unwrap();
    // Another model's fingerprint under this model's name.
    std::fs::copy(copy.join("whisper-base.json"), copy.join("antiberty.json")).unwrap();
    refused(
        &reproduce(),
        &["antiberty.json", "sha256", "another model's fingerprint"],
    );
    assert!(!out.exists());
}

#[test]
fn the_same_weights_under_two_roots_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (copy, exp) = panel_copy(dir.path());
    let index = copy.join("index.toml");
    let text = std::fs::read_to_string(&index).unwrap();
    // Give a model of another root the first model's hash.
    let blocks: Vec<&str> = text.split("[[model]]").skip(1).collect();
    let field = |b: &str, key: &str| -> String {
        b.lines().find(|l| l.starts_with(key)).unwrap().to_string()
    };
    let (sha0, root0) = (field(blocks[0], "sha256 = "), field(blocks[0], "root = "));
    let other = blocks
        .iter()
        .find(|b| field(b, "root = ") != root0)
        .unwrap();
    let edited = text.replacen(&field(other, "sha256 = "), &sha0, 1);
    std::fs::write(&index, edited).unwrap();
    let out = dir.path().join("out");
    refused(
        &run(&["reproduce", s(&exp), "-o", s(&out)], dir.path()),
        &["index.toml", "same weights", "another root"],
    );
}

#[test]
fn null_panel_fingerprints_are_checked_against_the_index_and_for_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let (copy, _) = panel_copy(dir.path());
    let null = |panel: &Path| {
        run(
            &["null", "--observed", "0.9", "--panel", s(panel)],
            dir.path(),
        )
    };
    ok(&null(&copy));
    // Another model's fingerprint under this model's name: both are named.
    let antiberty = std::fs::read(copy.join("antiberty.json")).unwrap();
    std::fs::copy(copy.join("whisper-base.json"), copy.join("antiberty.json")).unwrap();
    refused(
        &null(&copy),
        &[
            "antiberty.json",
            "another model's fingerprint",
            "whisper-base",
        ],
    );
    std::fs::write(copy.join("antiberty.json"), antiberty).unwrap();
    // A fingerprint the index does not list.
    std::fs::copy(copy.join("whisper-base.json"), copy.join("extra.json")).unwrap();
    refused(&null(&copy), &["extra.json", "not in", "index.toml"]);
    std::fs::remove_file(copy.join("extra.json")).unwrap();
    // The same weights under two names in the index (same root).
    let index = copy.join("index.toml");
    let text = std::fs::read_to_string(&index).unwrap();
    let block = |id: &str| {
        let start = text.find(&format!("id = \"{id}\"")).unwrap();
        text[start..].split("[[model]]").next().unwrap().to_string()
    };
    let sha = |b: &str| {
        b.lines()
            .find(|l| l.starts_with("sha256 = "))
            .unwrap()
            .to_string()
    };
    let (a, b) = (block("all-minilm-l6-v2"), block("all-minilm-l6-v2-int8"));
    std::fs::write(&index, text.replacen(&sha(&b), &sha(&a), 1)).unwrap();
    refused(&null(&copy), &["index.toml", "same weights", "two names"]);
    // Without an index: two files of the same weights are one model under two names.
    let plain = dir.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    for f in ["whisper-base", "antiberty", "gemma3-270m"] {
        std::fs::copy(
            copy.join(format!("{f}.json")),
            plain.join(format!("{f}.json")),
        )
        .unwrap();
    }
    let labels = dir.path().join("labels.csv");
    let mut rows = String::from("model,root\nwhisper-base,w\nantiberty,a\ngemma3-270m,g\n");
    std::fs::write(&labels, &rows).unwrap();
    let labelled = || {
        run(
            &[
                "null",
                "--observed",
                "0.9",
                "--panel",
                s(&plain),
                "--labels",
                s(&labels),
            ],
            dir.path(),
        )
    };
    ok(&labelled());
    std::fs::copy(
        copy.join("whisper-base.json"),
        plain.join("whisper-copy.json"),
    )
    .unwrap();
    rows.push_str("whisper-copy,c\n");
    std::fs::write(&labels, &rows).unwrap();
    refused(
        &labelled(),
        &["whisper-copy.json", "same weights", "whisper-base.json"],
    );
    refused(
        &run(&["matrix", s(&plain)], dir.path()),
        &["whisper-copy.json", "same weights"],
    );
}

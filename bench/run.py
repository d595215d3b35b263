#!/usr/bin/env python3
"""`just bench`: nullprint side by side with the tools users have today, on the same files.

Method and knobs: bench/README.md (`run.py --render` rebuilds results.md from results.json
without measuring). Standard library only; the reference tools (numpy,
safetensors, gguf) run in bench/work/.venv, which this script creates from
bench/requirements.txt (PyPI only). Results go to bench/results/results.{md,json}
(BENCH_NAME=NAME: NAME.{md,json}).
"""

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WORK = BENCH / "work"
VENV = WORK / ".venv"
PY = VENV / "bin" / "python"
RESULTS = BENCH / "results"
# The release binary: $NULLPRINT_BIN, else under $CARGO_TARGET_DIR (as `just build` puts it).
NULLPRINT = Path(os.environ.get("NULLPRINT_BIN")
                 or ROOT / os.environ.get("CARGO_TARGET_DIR", "target") / "release" / "nullprint")
MODELS = Path(os.environ.get("NULLPRINT_MODELS", Path.home() / ".cache" / "nullprint-models"))

REPEATS = int(os.environ.get("BENCH_REPEATS", "5"))
REF_REPEATS = int(os.environ.get("BENCH_REF_REPEATS", "3"))
COLD = os.environ.get("BENCH_COLD", "1") != "0"
LARGE = os.environ.get("BENCH_LARGE", "0") == "1"
ONLY = [s for s in os.environ.get("BENCH_ONLY", "").split(",") if s]
# Report file names under bench/results/ (NAME.md, NAME.json).
NAME = os.environ.get("BENCH_NAME", "results")
# Only for numpy: these are tuned for the build machine's OpenBLAS and break it elsewhere.
NUMPY_ENV = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}

# Targets of issues 9 and 20 (warm page cache, this class of machine): `--no-hash` throughput
# as a share of `cat`'s, per dtype; speedup over the reference; and the default command (which
# hashes every file) against SHA-256 alone on the same files.
TARGET_OF_CAT = {"F32": 0.5, "BF16": 0.6, "k-quant": 0.5}
TARGET_SPEEDUP = {"F32": 10.0, "BF16": 20.0, "k-quant": 100.0}
TARGET_HASH_RATIO = 1.15


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout.strip()


def try_sh(cmd):
    try:
        return sh(cmd)
    except (OSError, subprocess.CalledProcessError):
        return None


# ---------------------------------------------------------------------------------------------
# Setup: venv, inputs


def ensure_venv():
    WORK.mkdir(parents=True, exist_ok=True)
    if not PY.exists():
        log(f"bench: creating {VENV} (numpy, safetensors, gguf from PyPI)")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    need = (BENCH / "requirements.txt").read_text()
    stamp = VENV / "requirements.installed"
    if not stamp.exists() or stamp.read_text() != need:
        subprocess.run(
            [str(PY), "-m", "pip", "install", "--quiet", "-r", str(BENCH / "requirements.txt")],
            check=True,
        )
        stamp.write_text(need)


def package_versions():
    code = "import numpy, safetensors, gguf.constants as g, importlib.metadata as m; " + (
        "print(numpy.__version__, safetensors.__version__, m.version('gguf'))"
    )
    out = sh([str(PY), "-c", code], env=NUMPY_ENV).split()
    return {"python": sh([str(PY), "-c", "import platform; print(platform.python_version())"]),
            "numpy": out[0], "safetensors": out[1], "gguf": out[2]}


def free_bytes(path):
    return shutil.disk_usage(path).free


def synthetic_inputs():
    """(name, dtype, GB) of the generated safetensors checkpoints."""
    sizes = [1, 4] + ([16] if LARGE else [])
    return [(f"synthetic-{dt}-{gb}gb", dt, gb) for gb in sizes for dt in ("bf16", "f32")]


def generate(notes):
    WORK.mkdir(parents=True, exist_ok=True)
    out = []
    for name, dtype, gb in synthetic_inputs():
        if ONLY and name not in ONLY:
            continue
        d = WORK / name
        if not d.exists():
            need = gb * 1e9 * 1.05 + 2e9
            if free_bytes(WORK) < need:
                msg = f"SKIPPED: {name}: needs {need / 1e9:.0f} GB free under {WORK}, have {free_bytes(WORK) / 1e9:.0f} GB"
                log(msg)
                notes.append(msg)
                continue
            log(f"bench: generating {name} (once; kept in {WORK})")
            subprocess.run([str(PY), str(BENCH / "gen_checkpoint.py"), str(d), "--dtype", dtype,
                            "--gb", str(gb)], check=True, env=NUMPY_ENV)
        out.append(safetensors_input(name, d, dtype.upper(), "synthetic"))
    return out


def safetensors_input(name, path, dtype, origin):
    files = sorted(path.glob("*.safetensors")) if path.is_dir() else [path]
    return {"name": name, "format": "safetensors", "dtype": dtype, "origin": origin,
            "path": str(path), "files": [str(f) for f in files],
            "bytes": sum(f.stat().st_size for f in files)}


def real_inputs(notes):
    out = []
    mpnet = MODELS / "all-mpnet-base-v2"
    if (mpnet / "model.safetensors").exists():
        out.append(safetensors_input("all-mpnet-base-v2", mpnet, "F32", "real"))
    else:
        msg = f"SKIPPED: all-mpnet-base-v2: {mpnet / 'model.safetensors'} not found (run just models all)"
        log(msg)
        notes.append(msg)
    qwen = MODELS / "qwen2.5-coder-1.5b-instruct" / "model.gguf"
    if qwen.exists():
        out.append(gguf_input("qwen2.5-coder-1.5b-q4_k_m", qwen, "real"))
    else:
        msg = f"qwen2.5-coder-1.5b-instruct GGUF not found at {qwen} (run just models all): using a synthetic k-quant GGUF instead"
        log(msg)
        notes.append(msg)
        synth = WORK / "synthetic-q4_k_m-1gb.gguf"
        if not synth.exists():
            subprocess.run([str(PY), str(BENCH / "gen_gguf.py"), str(synth), "--gb", "1"],
                           check=True, env=NUMPY_ENV)
        out.append(gguf_input("synthetic-q4_k_m-1gb", synth, "synthetic"))
    return [i for i in out if not ONLY or i["name"] in ONLY]


def gguf_input(name, path, origin):
    return {"name": name, "format": "gguf", "dtype": "k-quant", "origin": origin,
            "path": str(path), "files": [str(path)], "bytes": path.stat().st_size}


# ---------------------------------------------------------------------------------------------
# Running and measuring


def parse_status(pid):
    """Resident-memory fields of /proc/PID/status in KiB, or None once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    out = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem"):
            out[key] = int(rest.split()[0])
    return out


def run(cmd, env=None, sample=False):
    """Run `cmd`; return wall seconds, peak RSS (KiB, from wait4) and, with `sample`, the
    peaks of /proc/PID/status read every millisecond."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
        peaks = {}
        if sample:
            while True:
                pid, status, ru = os.wait4(p.pid, os.WNOHANG)
                if pid:
                    break
                st = parse_status(p.pid)
                if st:
                    for k, v in st.items():
                        peaks[k] = max(peaks.get(k, 0), v)
                time.sleep(0.001)
        else:
            _, status, ru = os.wait4(p.pid, 0)
        seconds = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({p.returncode}):\n{err.read().decode(errors='replace')}")
    return {"seconds": seconds, "cpu_seconds": ru.ru_utime + ru.ru_stime,
            "maxrss_kib": ru.ru_maxrss, "peaks_kib": peaks}


def drop_caches():
    """Empty the page cache (root only). True when it worked."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def commands(inp, out_dir):
    np_out = out_dir / f"{inp['name']}.nullprint.json"
    ref_out = out_dir / f"{inp['name']}.reference.json"
    cat = ["cat", *inp["files"]]
    nullprint = [str(NULLPRINT), "fingerprint", "--no-cache", "--no-hash", inp["path"],
                 "-o", str(np_out), "--force"]
    one_thread = [nullprint[0], "--threads", "1", *nullprint[1:]]
    # The default command: the same, hashing every file (SHA-256) for the provenance.
    hashed = [x for x in nullprint if x != "--no-hash"]
    if inp["format"] == "gguf":
        ref = [str(PY), str(BENCH / "reference_gguf.py"), str(ref_out), inp["path"]]
    else:
        ref = [str(PY), str(BENCH / "reference_numpy.py"), str(ref_out), inp["path"]]
    return cat, nullprint, one_thread, hashed, ref, np_out, ref_out


def sha256_tools(files):
    """SHA-256 alone on the same files, with the tools users have (each hashes the files one
    after the other, as they are run)."""
    out = {}
    if shutil.which("openssl"):
        out["openssl_sha256"] = ["openssl", "dgst", "-sha256", *files]
    if shutil.which("sha256sum"):
        out["sha256sum"] = ["sha256sum", *files]
    return out


def summary(runs, nbytes):
    times = [r["seconds"] for r in runs]
    cpu = [r["cpu_seconds"] for r in runs]
    return {"seconds": times, "min": min(times), "median": statistics.median(times),
            "gbps_median": nbytes / statistics.median(times) / 1e9,
            "gbps_best": nbytes / min(times) / 1e9,
            "cpu_seconds": cpu, "cpu_median": statistics.median(cpu)}


def agreement(np_out, ref_out):
    """Largest relative difference of nullprint's std from the reference's, over tensors
    that map to one row (fused tensors split into several roles are left out)."""
    rows = json.loads(Path(np_out).read_text())["tensors"]
    ref = json.loads(Path(ref_out).read_text())["tensors"]
    count = {}
    for r in rows:
        count[r["tensor"]] = count.get(r["tensor"], 0) + 1
    worst, n = 0.0, 0
    for r in rows:
        name = r["tensor"]
        if count[name] != 1 or name not in ref or r["std"] is None or not ref[name]:
            continue
        worst = max(worst, abs(r["std"] - ref[name]) / abs(ref[name]))
        n += 1
    return {"tensors_compared": n, "tensors_nullprint": len(rows), "tensors_reference": len(ref),
            "max_rel_diff_std": worst}


def bench_input(inp, out_dir, cold_ok):
    cat, nullprint, one_thread, hashed, ref, np_out, ref_out = commands(inp, out_dir)
    hashers = sha256_tools(inp["files"])
    nbytes = inp["bytes"]
    log(f"bench: {inp['name']} ({nbytes / 1e9:.2f} GB, {len(inp['files'])} file(s)): warm-up")
    run(cat)
    run(nullprint)
    t = {"cat": [], "nullprint": [], "nullprint_1_thread": [], "nullprint_hashed": [],
         **{k: [] for k in hashers}, "reference": []}
    for r in range(max(REPEATS, REF_REPEATS)):
        if r < REPEATS:
            t["cat"].append(run(cat))
            t["nullprint"].append(run(nullprint))
            t["nullprint_1_thread"].append(run(one_thread))
            t["nullprint_hashed"].append(run(hashed))
            for k, cmd in hashers.items():
                t[k].append(run(cmd))
        if r < REF_REPEATS:
            t["reference"].append(run(ref, env=NUMPY_ENV))
        log(f"  repeat {r + 1}: " + ", ".join(f"{k} {v[-1]['seconds']:.3f}s" for k, v in t.items() if len(v) > r))
    ref_rss = max(x["maxrss_kib"] for x in t["reference"])
    out = {"warm": {k: summary(v, nbytes) for k, v in t.items()},
           "commands": {"cat": cat, "nullprint": nullprint, "nullprint_1_thread": one_thread,
                        "nullprint_hashed": hashed, **hashers, "reference": ref}}
    log("  memory: sampling nullprint's /proc/PID/status every 1 ms")
    mem = run(nullprint, sample=True)
    out["memory"] = {
        "nullprint_peak_rss_anon_mib": mem["peaks_kib"].get("RssAnon", 0) / 1024,
        "nullprint_peak_rss_file_mib": mem["peaks_kib"].get("RssFile", 0) / 1024,
        "nullprint_vmhwm_mib": mem["maxrss_kib"] / 1024,
        "reference_vmhwm_mib": ref_rss / 1024,
    }
    out["agreement"] = agreement(np_out, ref_out)
    if cold_ok:
        c = {}
        for name, cmd, env in (("cat", cat, None), ("nullprint", nullprint, None),
                               ("reference", ref, NUMPY_ENV)):
            drop_caches()
            c[name] = summary([run(cmd, env=env)], nbytes)
        out["cold"] = c
        log("  cold: " + ", ".join(f"{k} {v['min']:.3f}s" for k, v in c.items()))
    return out


# ---------------------------------------------------------------------------------------------
# Panel-scale commands (issue 9: matrix on 1,000 fingerprints < 1 s; surrogate nulls with
# 100,000 samples < 1 s per pair)


def synthetic_fingerprints(template, n, out_dir):
    """`n` fingerprints derived from a real one by perturbing every statistic (seeded)."""
    import random

    base = json.loads(Path(template).read_text())
    rng = random.Random(9)
    out_dir.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        fp = json.loads(json.dumps(base))
        fp["model"]["name"] = f"synthetic-{i:04d}"
        scale = rng.lognormvariate(0, 0.3)
        for r in fp["tensors"]:
            if r.get("std") is not None:
                r["std"] = r["std"] * scale * rng.lognormvariate(0, 0.1)
        (out_dir / f"synthetic-{i:04d}.json").write_text(json.dumps(fp))


def bench_panel(notes):
    help_text = try_sh([str(NULLPRINT), "--help"]) or ""
    have = {c: f"  {c} " in help_text for c in ("matrix", "compare")}
    out = {}
    template_model = MODELS / "smollm2-135m-instruct" / "model.gguf"
    if not template_model.exists():
        msg = f"SKIPPED: panel commands: {template_model} not found (run just models)"
        log(msg)
        notes.append(msg)
        return out
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        template = tmp / "template.json"
        run([str(NULLPRINT), "fingerprint", "--no-cache", "--no-hash", str(template_model),
             "-o", str(template)])
        if have["matrix"]:
            panel = tmp / "panel"
            synthetic_fingerprints(template, 1000, panel)
            times = [run([str(NULLPRINT), "matrix", str(panel), "--format", "json"])["seconds"]
                     for _ in range(REF_REPEATS)]
            out["matrix_1000"] = {"seconds": times, "min": min(times),
                                  "median": statistics.median(times), "target_seconds": 1.0}
            log(f"bench: matrix of 1,000 fingerprints: median {statistics.median(times):.3f}s")
        else:
            notes.append("nullprint matrix does not exist in this build: not timed")
        if have["compare"]:
            pair = tmp / "pair"
            synthetic_fingerprints(template, 2, pair)
            a, b = sorted(pair.iterdir())
            times = [run([str(NULLPRINT), "compare", str(a), str(b), "--null", "surrogate",
                          "--samples", "100000", "--format", "json"])["seconds"]
                     for _ in range(REF_REPEATS)]
            out["surrogate_100k_pair"] = {"seconds": times, "min": min(times),
                                          "median": statistics.median(times),
                                          "target_seconds": 1.0}
            log(f"bench: compare with 100,000 surrogate samples: median {statistics.median(times):.3f}s")
        else:
            notes.append("nullprint compare (surrogate nulls) does not exist in this build: not timed")
    # Weight-level trace tests on real pairs (issue 11): related (MiniLM F32 vs its int8 ONNX
    # copy) and unrelated with equal MLP shapes (AntiBERTy vs Whisper-base).
    if "  trace " in help_text:
        for key, a, b in [("trace_minilm_int8", "all-minilm-l6-v2", "all-minilm-l6-v2-int8"),
                          ("trace_antiberty_whisper", "antiberty", "whisper-base")]:
            pa, pb = MODELS / a, MODELS / b
            if not (pa.exists() and pb.exists()):
                notes.append(f"SKIPPED: trace {a} vs {b}: models not found (run just models all)")
                continue
            times = [run([str(NULLPRINT), "trace", str(pa), str(pb), "--test", "all",
                          "--format", "json"])["seconds"] for _ in range(REF_REPEATS)]
            out[key] = {"seconds": times, "min": min(times), "median": statistics.median(times),
                        "target_seconds": None}
            log(f"bench: trace {a} vs {b}: median {statistics.median(times):.3f}s")
    return out


# ---------------------------------------------------------------------------------------------
# Machine description and report


def machine():
    lscpu = {}
    for line in (try_sh(["lscpu"]) or "").splitlines():
        k, _, v = line.partition(":")
        lscpu[k.strip()] = v.strip()
    mem = next((l.split()[1] for l in Path("/proc/meminfo").read_text().splitlines()
                if l.startswith("MemTotal")), "0")
    fs = try_sh(["findmnt", "-T", str(WORK), "-n", "-o", "SOURCE,FSTYPE"]) or "?"
    dev = fs.split()[0].rsplit("/", 1)[-1] if fs != "?" else ""
    rota = Path(f"/sys/block/{dev}/queue/rotational")
    return {
        "cpu": lscpu.get("Model name", platform.processor()),
        "cpus": os.cpu_count(),
        "hypervisor": lscpu.get("Hypervisor vendor"),
        "cpu_flags_simd": [f for f in ("sse2", "avx2", "avx512f", "f16c") if f in lscpu.get("Flags", "").split()],
        "ram_gib": int(mem) / 1024 / 1024,
        "filesystem": fs,
        "disk_rotational_flag": rota.read_text().strip() if rota.exists() else None,
        "kernel": platform.release(),
    }


def software():
    commit = try_sh(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = try_sh(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"])
    return {"nullprint": try_sh([str(NULLPRINT), "--version"]),
            "git": f"{commit}{' (uncommitted changes)' if dirty else ''}",
            "rustc": try_sh(["rustc", "--version"]), **package_versions()}


def fmt_gbps(s):
    return f"{s['gbps_median']:.2f}"


def markdown(report):
    m, sw = report["machine"], report["software"]
    lines = [
        "# nullprint benchmark",
        "",
        f"Machine: {m['cpu']} ({', '.join(m['cpu_flags_simd'])}), {m['cpus']} CPUs "
        f"({m['hypervisor'] + ' guest' if m['hypervisor'] else 'bare metal'}), "
        f"{m['ram_gib']:.0f} GiB RAM, {m['filesystem']} (rotational flag {m['disk_rotational_flag']}), "
        f"Linux {m['kernel']}. Load average before/after: {report['load_before']} / {report['load_after']}.",
        f"Software: {sw['nullprint']} ({sw['git']}), {sw['rustc']}; references: Python {sw['python']}, "
        f"numpy {sw['numpy']}, safetensors {sw['safetensors']}, gguf {sw['gguf']}.",
        f"Method: bench/README.md. {REPEATS} runs of `cat` and nullprint, {REF_REPEATS} of each "
        "reference, interleaved; GB/s = bytes / median wall time (1 GB = 1e9 bytes). "
        "nullprint uses every core (the 1-thread column shows the scaling); the references are "
        "single-threaded, as users run them. Speedup = reference / nullprint wall time; CPU-time "
        "ratio = the same with user+sys CPU seconds, which other load on the machine disturbs less.",
        "",
        "## Warm page cache",
        "",
        "| input | format | GB | cat GB/s | nullprint GB/s | nullprint / cat | reference | reference GB/s | speedup | target | 1 thread GB/s | CPU-time ratio | peak anon MiB | max rel. diff of std |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in report["inputs"]:
        w = r["warm"]
        ratio = w["cat"]["median"] / w["nullprint"]["median"]
        speed = w["reference"]["median"] / w["nullprint"]["median"]
        want = TARGET_SPEEDUP.get(r["dtype"])
        target = []
        of_cat = TARGET_OF_CAT.get(r["dtype"])
        if of_cat:
            target.append(f"{'ok' if ratio >= of_cat else 'MISSED'} >= {of_cat:.0%} of cat")
        if want:
            target.append(f"{'ok' if speed >= want else 'MISSED'} >= {want:.0f}x")
        ref = "gguf-py" if r["format"] == "gguf" else "numpy"
        lines.append(
            f"| {r['name']} | {r['format']} {r['dtype']} | {r['bytes'] / 1e9:.2f} | {fmt_gbps(w['cat'])} "
            f"| {fmt_gbps(w['nullprint'])} | {ratio:.0%} | {ref} | {fmt_gbps(w['reference'])} | {speed:.1f}x "
            f"| {'; '.join(target)} | {fmt_gbps(w['nullprint_1_thread'])} "
            f"| {w['reference']['cpu_median'] / w['nullprint']['cpu_median']:.1f}x "
            f"| {r['memory']['nullprint_peak_rss_anon_mib']:.1f} "
            f"| {r['agreement']['max_rel_diff_std']:.1e} |"
        )
    lines += [
        "",
        "## The default command (hashes every file) against SHA-256 alone",
        "",
        "`nullprint fingerprint --no-cache PATH` (no `--no-hash`: every weight file's SHA-256 goes "
        "into the provenance, computed on threads of its own while the statistics run) against "
        "`openssl dgst -sha256 FILES` and `sha256sum FILES` on the same files, interleaved in the "
        "same run. Ratio = nullprint median wall time / the faster tool's median.",
        "",
        "| input | files | nullprint default s | openssl s | sha256sum s | ratio | target |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in report["inputs"]:
        w = r["warm"]
        if "nullprint_hashed" not in w:
            continue
        tools = [w[k]["median"] for k in ("openssl_sha256", "sha256sum") if k in w]
        if not tools:
            continue
        ratio = w["nullprint_hashed"]["median"] / min(tools)
        cell = lambda k: f"{w[k]['median']:.3f}" if k in w else "—"
        lines.append(
            f"| {r['name']} | {r['files']} | {w['nullprint_hashed']['median']:.3f} | {cell('openssl_sha256')} "
            f"| {cell('sha256sum')} | {ratio:.2f}x "
            f"| {'ok' if ratio <= TARGET_HASH_RATIO else 'MISSED'} <= {TARGET_HASH_RATIO}x |")
    cold = [r for r in report["inputs"] if r.get("cold")]
    lines += ["", "## Cold page cache", ""]
    if cold:
        lines += [
            "One run each after `sync; echo 3 > /proc/sys/vm/drop_caches`.",
            "",
            "| input | GB | cat GB/s | nullprint GB/s | nullprint / cat | reference GB/s | speedup |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in cold:
            c = r["cold"]
            lines.append(
                f"| {r['name']} | {r['bytes'] / 1e9:.2f} | {fmt_gbps(c['cat'])} | {fmt_gbps(c['nullprint'])} "
                f"| {c['cat']['median'] / c['nullprint']['median']:.0%} | {fmt_gbps(c['reference'])} "
                f"| {c['reference']['median'] / c['nullprint']['median']:.1f}x |"
            )
    else:
        lines.append(f"Not measured: {report['cold']}.")
    lines += [
        "",
        "## Memory",
        "",
        "Peak anonymous memory is the largest `RssAnon` of /proc/PID/status sampled every 1 ms "
        "(heap, stacks; not the memory-mapped weights). VmHWM also counts the file-backed pages "
        "of the mapped weights, which the kernel can drop at any time.",
        "",
        "| input | nullprint peak RssAnon MiB | nullprint peak RssFile MiB | nullprint VmHWM MiB | reference VmHWM MiB |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in report["inputs"]:
        mm = r["memory"]
        lines.append(
            f"| {r['name']} | {mm['nullprint_peak_rss_anon_mib']:.1f} | {mm['nullprint_peak_rss_file_mib']:.0f} "
            f"| {mm['nullprint_vmhwm_mib']:.0f} | {mm['reference_vmhwm_mib']:.0f} |"
        )
    lines += ["", "## Times (wall seconds, min / median; CPU seconds, median)", "",
              "| input | cat | nullprint | nullprint, 1 thread | reference |", "|---|---:|---:|---:|---:|"]
    for r in report["inputs"]:
        w = r["warm"]
        lines.append(f"| {r['name']} | " + " | ".join(
            f"{w[k]['min']:.3f} / {w[k]['median']:.3f}; CPU {w[k]['cpu_median']:.3f}"
            for k in ("cat", "nullprint", "nullprint_1_thread", "reference")) + " |")
    p = report.get("panel") or {}
    lines += ["", "## Panel scale", ""]
    if p:
        lines += ["| command | min s | median s | target |", "|---|---:|---:|---|"]
        names = {"matrix_1000": "`nullprint matrix` on 1,000 synthetic fingerprints",
                 "surrogate_100k_pair": "`nullprint compare --null surrogate --samples 100000`, one pair",
                 "trace_minilm_int8": "`nullprint trace --test all`, all-MiniLM-L6-v2 vs its int8 ONNX copy",
                 "trace_antiberty_whisper": "`nullprint trace --test all`, AntiBERTy vs Whisper-base"}
        for k, v in p.items():
            if v["target_seconds"] is None:
                target = "—"
            else:
                ok = "ok" if v["median"] < v["target_seconds"] else "MISSED"
                target = f"{ok} < {v['target_seconds']:.0f} s"
            lines.append(f"| {names[k]} | {v['min']:.3f} | {v['median']:.3f} | {target} |")
    else:
        lines.append("Not measured.")
    if report["notes"]:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in report["notes"]]
    return "\n".join(lines) + "\n"


def main():
    if sys.argv[1:] == ["--render"]:
        # Re-render results.md from results.json (after editing this script's report layout).
        report = json.loads((RESULTS / f"{NAME}.json").read_text())
        (RESULTS / f"{NAME}.md").write_text(markdown(report))
        print(markdown(report))
        return
    if not NULLPRINT.exists():
        sys.exit(f"bench: {NULLPRINT} not found: run `just build` (or `just bench`) first")
    notes = []
    ensure_venv()
    inputs = generate(notes) + real_inputs(notes)
    cold_ok = COLD and drop_caches()
    cold_why = ("measured" if cold_ok else
                "disabled (BENCH_COLD=0)" if not COLD else
                "not permitted (writing /proc/sys/vm/drop_caches needs root)")
    if not cold_ok:
        notes.append(f"cold-cache runs {cold_why}")
    report = {
        "schema": "nullprint-bench", "schema_version": 1,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": machine(), "software": software(),
        "settings": {"repeats": REPEATS, "reference_repeats": REF_REPEATS, "large": LARGE},
        "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "cold": cold_why, "notes": notes, "inputs": [],
    }
    with tempfile.TemporaryDirectory(dir=WORK) as out_dir:
        for inp in inputs:
            res = bench_input(inp, Path(out_dir), cold_ok)
            report["inputs"].append({k: v for k, v in inp.items() if k != "files"}
                                    | {"files": len(inp["files"])} | res)
    report["panel"] = bench_panel(notes)
    report["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    md = markdown(report)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{NAME}.json").write_text(json.dumps(report, indent=1) + "\n")
    (RESULTS / f"{NAME}.md").write_text(md)
    print(md)
    log(f"bench: wrote {RESULTS / NAME}.md and .json")


if __name__ == "__main__":
    main()

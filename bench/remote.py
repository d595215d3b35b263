#!/usr/bin/env python3
"""Remote reads: the attention fingerprint of real models served over the loopback hub
(testkit's `loopback_hub` example) with injected latency and a bandwidth cap.

For each model: bytes read (from the fingerprint's provenance, headers included), wall time of
`nullprint fingerprint URL` (median of BENCH_REPEATS runs), and the throughput those bytes
reached against the cap. Standard library only. Results: bench/results/remote.{json,md}.

Knobs: BENCH_LATENCY_MS (50), BENCH_RATE_MBPS (200, MB = 10^6 bytes), BENCH_REPEATS (3),
NULLPRINT_BIN, BENCH_HUB (the loopback_hub binary), BENCH_NAME (remote), NULLPRINT_MODELS. Needs release builds of both binaries:
    cargo build --release --locked -p nullprint
    cargo build --release --locked -p nullprint-testkit --example loopback_hub
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / os.environ.get("CARGO_TARGET_DIR", "target") / "release"
NULLPRINT = Path(os.environ.get("NULLPRINT_BIN") or TARGET / "nullprint")
HUB = Path(os.environ.get("BENCH_HUB") or TARGET / "examples" / "loopback_hub")
# Report file names under bench/results/ (NAME.md, NAME.json).
NAME = os.environ.get("BENCH_NAME", "remote")
MODELS = Path(os.environ.get("NULLPRINT_MODELS", Path.home() / ".cache" / "nullprint-models"))
LATENCY_MS = int(os.environ.get("BENCH_LATENCY_MS", "50"))
RATE_MBPS = int(os.environ.get("BENCH_RATE_MBPS", "200"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
# The goal: at least this share of the cap on the bytes that must be read.
GOAL = 0.8

CASES = [
    ("qwen2.5-coder-1.5b-instruct", "model.gguf"),
    ("all-mpnet-base-v2", "model.safetensors"),
]


def main():
    for exe in (NULLPRINT, HUB):
        if not exe.exists():
            sys.exit(f"{exe} missing: build it first (see this script's docstring)")
    cases = [(n, f) for n, f in CASES if (MODELS / n / f).is_file()]
    for n, f in CASES:
        if (n, f) not in cases:
            print(f"SKIPPED: {MODELS / n / f} not found (run `just models all`)", file=sys.stderr)
    if not cases:
        return
    args = [str(HUB), "--latency-ms", str(LATENCY_MS), "--rate-mbps", str(RATE_MBPS)]
    for n, f in cases:
        args.append(f"/{n}/{f}={MODELS / n / f}")
        cfg = MODELS / n / "config.json"
        if cfg.is_file():
            args.append(f"/{n}/config.json={cfg}")
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    hub = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        base = hub.stdout.readline().strip()
        rows = []
        for n, f in cases:
            url = f"{base}/{n}/{f}"
            times, fp = [], None
            for _ in range(REPEATS):
                with tempfile.TemporaryDirectory() as tmp:
                    out = Path(tmp) / "fp.json"
                    t0 = time.perf_counter()
                    subprocess.run([str(NULLPRINT), "fingerprint", url, "-o", str(out), "--no-cache"],
                                   check=True, capture_output=True)
                    times.append(time.perf_counter() - t0)
                    fp = json.loads(out.read_text())
            files = fp["model"]["files"]
            read = sum(x["remote"]["bytes_read"] for x in files)
            size = sum(x["size"] for x in files)
            t = statistics.median(times)
            rate = read / t / 1e6
            rows.append({
                "model": n, "file": f, "size": size, "bytes_read": read,
                "seconds": t, "times": times, "mb_per_s": rate,
                "share_of_cap": rate / RATE_MBPS, "tensors": len(fp["tensors"]),
            })
            print(f"{n}: read {read / 1e6:.1f} of {size / 1e6:.1f} MB in {t:.2f} s "
                  f"= {rate:.0f} MB/s ({100 * rate / RATE_MBPS:.0f}% of the {RATE_MBPS} MB/s cap)",
                  file=sys.stderr)
    finally:
        hub.kill()
    load_after = " ".join(f"{x:.2f}" for x in os.getloadavg())
    machine = f"{os.cpu_count()} CPUs, {' '.join(os.uname()[2:3])}"
    report = {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "machine": machine,
              "nullprint": str(NULLPRINT), "hub": str(HUB),
              "load_before": load_before, "load_after": load_after,
              "latency_ms": LATENCY_MS, "rate_mb_per_s": RATE_MBPS, "repeats": REPEATS,
              "goal_share_of_cap": GOAL, "rows": rows}
    res = ROOT / "bench" / "results"
    res.mkdir(parents=True, exist_ok=True)
    (res / f"{NAME}.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"# Remote reads over the loopback hub ({LATENCY_MS} ms latency, {RATE_MBPS} MB/s cap)",
             "", f"{report['date']}; {machine}; load average (1, 5, 15 min) {load_before} before, "
             f"{load_after} after; binaries {NULLPRINT.relative_to(ROOT) if NULLPRINT.is_relative_to(ROOT) else NULLPRINT}, "
             f"{HUB.relative_to(ROOT) if HUB.is_relative_to(ROOT) else HUB}.",
             "", "| model | file size | bytes read | time (median) | throughput | share of cap |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['size'] / 1e6:.1f} MB | {r['bytes_read'] / 1e6:.1f} MB "
                     f"| {r['seconds']:.2f} s | {r['mb_per_s']:.0f} MB/s "
                     f"| {100 * r['share_of_cap']:.0f}% (goal {100 * GOAL:.0f}%) |")
    (res / f"{NAME}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Independent numpy/scipy reference values for crates/null's similarity measures.

Writes two JSON files that the Rust tests of crates/null read (the tests never run Python):

* crates/null/tests/data/reference_synthetic.json: small hand-written and seeded random curves
  (values stored in the file) with every measure's per-role and mean correlations.
* crates/null/tests/data/reference_real.json: the per-layer std of the q/k/v/o attention
  weights of all-minilm-l6-v2 (6 layers) and all-mpnet-base-v2 (12 layers), read straight from
  their safetensors files with numpy (header parsed by hand, no nullprint code involved), and
  every measure between the two models (the 6-layer curves are interpolated onto the 12-layer
  grid, as the published method does).

The published HonestAGI method (see ../shared/method.md): per role, the per-layer std curve
(ddof 0 here; torch.std's ddof 1 is also written out), z-scored with the population std, the
shorter curve linearly interpolated onto the longer one's grid i/(L-1), Pearson correlation per
role, mean over roles; LeaFBench's rescaling is (sum r + 4) / 8.

Usage (numpy and scipy in a venv):

    python3 scripts/null_reference.py [--models DIR] [--out crates/null/tests/data]

DIR defaults to $NULLPRINT_MODELS or ~/.cache/nullprint-models. The real-model file is skipped
with a message when the models are absent.
"""
from __future__ import annotations

import argparse
import json
import os
import struct
import sys
from pathlib import Path

import numpy as np
from scipy import stats

ROLES = ["attn_q", "attn_k", "attn_v", "attn_o"]

# Tensor names per model and role, from ../shared/models.md.
REAL = {
    "all-minilm-l6-v2": {
        "layers": 6,
        "names": {
            "attn_q": "encoder.layer.{i}.attention.self.query.weight",
            "attn_k": "encoder.layer.{i}.attention.self.key.weight",
            "attn_v": "encoder.layer.{i}.attention.self.value.weight",
            "attn_o": "encoder.layer.{i}.attention.output.dense.weight",
        },
    },
    "all-mpnet-base-v2": {
        "layers": 12,
        "names": {
            "attn_q": "encoder.layer.{i}.attention.attn.q.weight",
            "attn_k": "encoder.layer.{i}.attention.attn.k.weight",
            "attn_v": "encoder.layer.{i}.attention.attn.v.weight",
            "attn_o": "encoder.layer.{i}.attention.attn.o.weight",
        },
    },
}

DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


def read_safetensors(path: Path, wanted: set[str]) -> dict[str, np.ndarray]:
    """The named tensors of a safetensors file, as float64 arrays."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        base = 8 + n
        out = {}
        for name in sorted(wanted):
            meta = header[name]
            start, end = meta["data_offsets"]
            f.seek(base + start)
            raw = f.read(end - start)
            arr = np.frombuffer(raw, dtype=DTYPES[meta["dtype"]]).astype(np.float64)
            out[name] = arr.reshape(meta["shape"])
        return out


def zscore(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / x.std(ddof=0)


def align(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """z-score both, then interpolate the shorter onto the longer one's grid i/(L-1)."""
    za, zb = zscore(a), zscore(b)
    if len(za) == len(zb):
        return za, zb
    short, long_ = (za, zb) if len(za) < len(zb) else (zb, za)
    grid = np.arange(len(long_)) / (len(long_) - 1)
    own = np.arange(len(short)) / (len(short) - 1)
    interp = np.interp(grid, own, short)
    return (interp, long_) if len(za) < len(zb) else (long_, interp)


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.corrcoef(x, y)[0, 1])


def detrend(x: np.ndarray, order: int) -> np.ndarray:
    t = np.arange(len(x)) / (len(x) - 1)
    coef = np.polyfit(t, x, order)
    return x - np.polyval(coef, t)


def role_measure(measure: str, a: np.ndarray, b: np.ndarray) -> float:
    x, y = align(a, b)
    if measure == "honestagi":
        return pearson(x, y)
    if measure == "spearman":
        return float(stats.spearmanr(x, y).statistic)
    if measure == "detrended":
        return pearson(detrend(x, 1), detrend(y, 1))
    if measure == "detrended2":
        return pearson(detrend(x, 2), detrend(y, 2))
    if measure == "diff":
        return pearson(np.diff(x), np.diff(y))
    raise ValueError(measure)


MEASURES = ["honestagi", "spearman", "detrended", "detrended2", "diff"]


def all_measures(a: dict[str, list[float]], b: dict[str, list[float]]) -> dict:
    out = {}
    for m in MEASURES:
        per_role = {r: role_measure(m, np.array(a[r]), np.array(b[r])) for r in a}
        score = float(np.mean(list(per_role.values())))
        out[m] = {
            "per_role": per_role,
            "score": score,
            "rescaled": (sum(per_role.values()) + len(per_role)) / (2 * len(per_role)),
        }
    return out


def synthetic() -> dict:
    rng = np.random.default_rng(20250704)
    cases = []
    # Hand-written: the worked example of the Rust unit tests (3 layers vs 3, and 3 vs 5).
    cases.append(
        {
            "name": "hand_3_vs_3",
            "a": {"r": [1.0, 2.0, 4.0]},
            "b": {"r": [2.0, 1.0, 3.0]},
        }
    )
    cases.append(
        {
            "name": "hand_3_vs_5",
            "a": {"r": [1.0, 2.0, 4.0]},
            "b": {"r": [0.0, 1.0, 1.0, 2.0, 5.0]},
        }
    )
    # Seeded random-walk-plus-trend curves with four roles, equal and different depths.
    for name, la, lb in [
        ("rw_12_vs_12", 12, 12),
        ("rw_24_vs_30", 24, 30),
        ("rw_48_vs_48", 48, 48),
        ("rw_7_vs_40", 7, 40),
    ]:
        def curve(n: int) -> list[float]:
            t = np.arange(n) / (n - 1)
            walk = np.cumsum(rng.normal(0, 0.01, n))
            return [float(v) for v in 0.05 + 0.02 * t + 0.01 * t * t + walk + 0.1]

        cases.append(
            {
                "name": name,
                "a": {r: curve(la) for r in ROLES},
                "b": {r: curve(lb) for r in ROLES},
            }
        )
    for c in cases:
        c["expected"] = all_measures(c["a"], c["b"])
    return {
        "generator": "scripts/null_reference.py (numpy %s, scipy %s)"
        % (np.__version__, __import__("scipy").__version__),
        "cases": cases,
    }


def real(models: Path) -> dict | None:
    curves = {}
    curves_ddof1 = {}
    for model, spec in REAL.items():
        path = models / model / "model.safetensors"
        if not path.exists():
            print(f"SKIPPED real reference: {path} not found", file=sys.stderr)
            return None
        names = {
            r: [spec["names"][r].format(i=i) for i in range(spec["layers"])] for r in ROLES
        }
        tensors = read_safetensors(path, {n for ns in names.values() for n in ns})
        curves[model] = {r: [float(tensors[n].std(ddof=0)) for n in names[r]] for r in ROLES}
        curves_ddof1[model] = {
            r: [float(tensors[n].std(ddof=1)) for n in names[r]] for r in ROLES
        }
    a, b = (curves[m] for m in REAL)
    a1, b1 = (curves_ddof1[m] for m in REAL)
    return {
        "generator": "scripts/null_reference.py (numpy %s)" % np.__version__,
        "models": list(REAL),
        "std_ddof0": curves,
        "std_ddof1": curves_ddof1,
        "expected": all_measures(a, b),
        "expected_ddof1": all_measures(a1, b1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_models = os.environ.get(
        "NULLPRINT_MODELS", str(Path.home() / ".cache" / "nullprint-models")
    )
    ap.add_argument("--models", type=Path, default=Path(default_models))
    ap.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "crates" / "null" / "tests" / "data",
    )
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "reference_synthetic.json", "w") as f:
        json.dump(synthetic(), f, indent=1)
        f.write("\n")
    r = real(args.models)
    if r is not None:
        with open(args.out / "reference_real.json", "w") as f:
            json.dump(r, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()

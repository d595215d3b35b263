#!/usr/bin/env python3
"""Reference dequantization of real GGUF files, for nullprint's GGUF reader tests.

For every tensor of each model's `model.gguf`, dequantize it with the `gguf` package
(`gguf.quants.dequantize`, the llama.cpp project's own Python reader) and record:

- `sha256`: SHA-256 of the dequantized values as little-endian f32 bytes, in row-major order
  (GGUF `ne0` innermost), i.e. exactly the byte stream nullprint's reader hands its sink;
- `std`: the population standard deviation (ddof 0) computed by numpy in float64;
- `mean`, `type`, `shape` (outermost first) and `numel`.

An `attention` table repeats the std of each `blk.N.attn_{q,k,v,output}.weight` per layer and
role, so it can be reused as an independent baseline.

    python3 -m venv /tmp/ggufenv && /tmp/ggufenv/bin/pip install gguf numpy
    /tmp/ggufenv/bin/python scripts/gguf_reference.py \
        --out crates/fingerprint/tests/data/gguf/reference.json \
        smollm2-135m-instruct gemma3-270m

Models are looked up in $NULLPRINT_MODELS (default ~/.cache/nullprint-models)/<name>/model.gguf.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import gguf
from gguf.quants import dequantize

ATTN = re.compile(r"^blk\.(\d+)\.attn_(q|k|v|output)\.weight$")
ROLE = {"q": "attn_q", "k": "attn_k", "v": "attn_v", "output": "attn_o"}


def models_dir() -> Path:
    env = os.environ.get("NULLPRINT_MODELS")
    return Path(env) if env else Path.home() / ".cache" / "nullprint-models"


def describe(path: Path) -> dict:
    reader = gguf.GGUFReader(str(path), "r")
    tensors = []
    attention = []
    for t in reader.tensors:
        values = dequantize(t.data, t.tensor_type)
        values = np.ascontiguousarray(values, dtype="<f4")
        shape = [int(d) for d in reversed(t.shape.tolist())]
        assert values.size == int(np.prod(shape, dtype=np.int64)), t.name
        wide = values.astype(np.float64)
        row = {
            "name": t.name,
            "type": t.tensor_type.name,
            "shape": shape,
            "numel": int(values.size),
            "sha256": hashlib.sha256(values.tobytes(order="C")).hexdigest(),
            "mean": float(wide.mean()),
            "std": float(wide.std(ddof=0)),
        }
        tensors.append(row)
        m = ATTN.match(t.name)
        if m:
            attention.append(
                {"layer": int(m.group(1)), "role": ROLE[m.group(2)], "tensor": t.name, "std": row["std"]}
            )
        print(f"  {t.name:40s} {t.tensor_type.name:6s} {row['std']:.6g}", file=sys.stderr)
    attention.sort(key=lambda r: (r["layer"], ["attn_q", "attn_k", "attn_v", "attn_o"].index(r["role"])))
    return {
        "file": path.name,
        "bytes": path.stat().st_size,
        "tensors": tensors,
        "attention": attention,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("models", nargs="+", help="model names under $NULLPRINT_MODELS")
    args = ap.parse_args()
    out = {
        "generator": "scripts/gguf_reference.py",
        "gguf_py": gguf.__version__ if hasattr(gguf, "__version__") else _version("gguf"),
        "numpy": np.__version__,
        "models": {},
    }
    for name in args.models:
        path = models_dir() / name / "model.gguf"
        print(f"{path}", file=sys.stderr)
        out["models"][name] = describe(path)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(dump(out))
    return 0


def dump(out: dict) -> str:
    """JSON with one tensor (or attention row) per line, so diffs stay readable."""
    models = []
    for name, m in out["models"].items():
        rows = lambda key: ",\n".join("    " + json.dumps(r) for r in m[key])
        models.append(
            f'  {json.dumps(name)}: {{"file": {json.dumps(m["file"])}, "bytes": {m["bytes"]},\n'
            f'   "tensors": [\n{rows("tensors")}\n   ],\n'
            f'   "attention": [\n{rows("attention")}\n   ]}}'
        )
    head = {k: v for k, v in out.items() if k != "models"}
    text = json.dumps(head)[:-1] + ', "models": {\n' + ",\n".join(models) + "\n}}\n"
    assert json.loads(text) == out
    return text


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


if __name__ == "__main__":
    sys.exit(main())

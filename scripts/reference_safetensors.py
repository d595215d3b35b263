#!/usr/bin/env python3
"""Independent float64 reference statistics of a safetensors file, for nullprint's tests.

Parses the safetensors header with the standard library (not the Rust crate, not the
`safetensors` package), reads each floating-point tensor with numpy, upcasts to float64 and
records numpy's mean and population std (ddof 0) per tensor, plus the file's SHA-256.

    python3 scripts/reference_safetensors.py MODEL.safetensors > expected.json
"""
import hashlib
import json
import struct
import sys

import numpy as np


def bf16_to_f32(raw: bytes) -> np.ndarray:
    u16 = np.frombuffer(raw, dtype="<u2").astype(np.uint32)
    return (u16 << 16).view(np.float32)


def main(path: str) -> None:
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, info in sorted(header.items()):
        if name == "__metadata__":
            continue
        lo, hi = info["data_offsets"]
        raw = data[base + lo : base + hi]
        dt = info["dtype"]
        if dt == "F32":
            x = np.frombuffer(raw, dtype="<f4")
        elif dt == "F16":
            x = np.frombuffer(raw, dtype="<f2")
        elif dt == "F64":
            x = np.frombuffer(raw, dtype="<f8")
        elif dt == "BF16":
            x = bf16_to_f32(raw)
        else:
            continue
        x = x.astype(np.float64)
        out[name] = {"numel": int(x.size), "mean": float(x.mean()), "std": float(x.std(ddof=0))}
    doc = {
        "file_sha256": hashlib.sha256(data).hexdigest(),
        "method": "numpy float64: x.astype(float64).std(ddof=0), header parsed with json/struct",
        "numpy": np.__version__,
        "tensors": out,
    }
    json.dump(doc, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])

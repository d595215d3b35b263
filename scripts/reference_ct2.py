#!/usr/bin/env python3
"""Independent float64 reference statistics of a CTranslate2 model.bin, for nullprint's tests.

Parses the file with `struct` (binary version 6 layout: version, spec name, revision,
variables, aliases), reads each float variable with numpy, upcasts to float64 and records
numpy's mean and population std (ddof 0). Fused projections are also split the way
CTranslate2 stacks them, independently of nullprint: `self_attention/linear_0` rows in equal
thirds (q, k, v) and the decoder cross-attention `attention/linear_1` rows in halves (k, v),
for the weight and the bias alike. int8/int16 variables with a `<name>_scale` companion are
dequantized as CTranslate2 does on CPU: q * (1/scale) in float32, one scale per row (int8)
or one for the tensor (int16).

    python3 scripts/reference_ct2.py model.bin > expected.json
"""
import hashlib
import json
import struct
import sys

import numpy as np

DTYPES = {0: "<f4", 1: "i1", 2: "<i2", 3: "<i4", 4: "<f2", 5: "bf16"}


def main(path: str) -> None:
    data = open(path, "rb").read()
    pos = 0

    def take(fmt):
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return vals

    def string():
        nonlocal pos
        (n,) = take("H")
        s = data[pos : pos + n - 1].decode()
        assert data[pos + n - 1] == 0
        pos += n
        return s

    (version,) = take("I")
    assert version >= 4, "this script reads binary versions 4 to 6"
    spec = string()
    (revision,) = take("I")
    (count,) = take("I")
    raw = {}
    for _ in range(count):
        name = string()
        (rank,) = take("B")
        shape = list(take("I" * rank)) if rank else []
        dtype, nbytes = take("BI")
        buf = data[pos : pos + nbytes]
        pos += nbytes
        if DTYPES[dtype] == "bf16":
            x = (np.frombuffer(buf, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            x = np.frombuffer(buf, DTYPES[dtype])
        raw[name] = (dtype, shape, x)
    (naliases,) = take("I")
    for _ in range(naliases):
        string()
        string()
    assert pos == len(data), "the alias table must end at end of file"

    values = {}
    for name, (dtype, shape, x) in raw.items():
        if name.endswith("_scale") and name[: -len("_scale")] in raw:
            continue
        if dtype in (0, 4, 5):
            values[name] = (shape, x.astype(np.float32))
        elif dtype in (1, 2) and shape and name + "_scale" in raw:
            s = raw[name + "_scale"][2].astype(np.float32)
            per = x.size if s.size == 1 else shape[-1]
            inv = (np.float32(1.0) / s).astype(np.float32)
            q = x.astype(np.float32).reshape(-1, per)
            values[name] = (shape, (q * inv.reshape(-1, 1)).ravel())

    def stats(v):
        v = v.astype(np.float64)
        return {"numel": int(v.size), "mean": float(v.mean()), "std": float(v.std(ddof=0))}

    out = {}
    for name, (shape, x) in sorted(values.items()):
        out[name] = stats(x)
        rows = shape[0] if shape else 0
        width = x.size // rows if rows else 0
        if "/self_attention/linear_0/" in name:
            parts = ["attn_q", "attn_k", "attn_v"]
        elif "/attention/linear_1/" in name and "self_attention" not in name:
            parts = ["xattn_k", "xattn_v"]
        else:
            continue
        step = rows // len(parts)
        for i, role in enumerate(parts):
            if name.endswith("bias"):
                role += "_bias"
            out[f"{name}#{role}"] = stats(x[i * step * width : (i + 1) * step * width])
    doc = {
        "file_sha256": hashlib.sha256(data).hexdigest(),
        "spec": spec,
        "revision": revision,
        "method": "struct-parsed model.bin + numpy float64: x.astype(float64).std(ddof=0); fused rows split in equal parts; 'name#role' keys are the split parts",
        "numpy": np.__version__,
        "tensors": out,
    }
    json.dump(doc, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])

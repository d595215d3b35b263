#!/usr/bin/env python3
"""The per-tensor statistic computed the way users do it today: numpy + safetensors.

For every tensor of every shard: load it whole with `safetensors` (numpy framework), upcast
to float64, call `.std()` (population, ddof 0, as nullprint reports). numpy has no bfloat16,
so BF16 tensors are read as raw uint16 from the file and widened with a 16-bit shift (exact;
this is the cheapest numpy-only way, so the comparison does not flatter nullprint).

Usage: reference_numpy.py OUT.json FILE_OR_DIR...
Writes {"tensors": {name: std}, "seconds": compute time} to OUT.json.
"""

import json
import os
import struct
import sys
import time

import numpy as np
from safetensors import safe_open


def shards(args):
    out = []
    for a in args:
        if os.path.isdir(a):
            out += sorted(os.path.join(a, f) for f in os.listdir(a) if f.endswith(".safetensors"))
        else:
            out.append(a)
    return out


def header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        meta = json.loads(f.read(n))
    meta.pop("__metadata__", None)
    return 8 + n, meta


def main():
    out_path, inputs = sys.argv[1], sys.argv[2:]
    t0 = time.perf_counter()
    stds = {}
    for path in shards(inputs):
        start, meta = header(path)
        with safe_open(path, framework="numpy") as f:
            for name in f.keys():
                info = meta[name]
                if info["dtype"] == "BF16":
                    lo, hi = info["data_offsets"]
                    raw = np.fromfile(path, dtype="<u2", count=(hi - lo) // 2, offset=start + lo)
                    x = (raw.astype(np.uint32) << 16).view(np.float32)
                else:
                    x = f.get_tensor(name)
                stds[name] = float(x.astype(np.float64).std())
    seconds = time.perf_counter() - t0
    with open(out_path, "w") as f:
        json.dump({"tensors": stds, "seconds": seconds}, f)


if __name__ == "__main__":
    main()

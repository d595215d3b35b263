#!/usr/bin/env python3
"""The per-tensor statistic of a GGUF file computed with the `gguf` Python package (gguf-py).

For every tensor: `GGUFReader` maps the file, `gguf.quants.dequantize` turns the raw blocks
into float32 (the same values ggml's reference dequantizers give), and numpy takes the
float64 population standard deviation, as nullprint reports it.

Usage: reference_gguf.py OUT.json FILE.gguf
Writes {"tensors": {name: std}, "seconds": compute time} to OUT.json.
"""

import json
import sys
import time

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


def main():
    out_path, path = sys.argv[1], sys.argv[2]
    t0 = time.perf_counter()
    reader = GGUFReader(path)
    stds = {}
    for t in reader.tensors:
        x = dequantize(t.data, t.tensor_type)
        stds[t.name] = float(np.asarray(x).astype(np.float64).std())
    seconds = time.perf_counter() - t0
    with open(out_path, "w") as f:
        json.dump({"tensors": stds, "seconds": seconds}, f)


if __name__ == "__main__":
    main()

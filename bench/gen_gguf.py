#!/usr/bin/env python3
"""Write a synthetic Llama-style GGUF file with k-quant weights, for the benchmark.

Used when the real Qwen2.5-Coder-1.5B GGUF (`just models`) is not present. The gguf package
can dequantize k-quants but not quantize them, so the blocks are random bytes with their
f16 scales (`d`, `dmin`) set to small finite values: every block is a valid Q4_K or Q6_K
block and dequantizes to ordinary finite weights. The layout mirrors a Q4_K_M file: attention
and gate/up matrices Q4_K, value and down projections Q6_K, norms F32.

Usage: gen_gguf.py OUT.gguf [--gb SIZE] [--seed S]
"""

import argparse
import os

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import GGUFWriter
from gguf.constants import GGML_QUANT_SIZES

HIDDEN = 2048
INTERMEDIATE = 5632
HEADS = 32
KV_HEADS = 4
VOCAB = 32000
# Byte offset of the f16 super-block scales in each block (ggml-common.h).
SCALE_OFFSETS = {Q.Q4_K: (0, 2), Q.Q6_K: (208,)}


def layer(i):
    kv = KV_HEADS * HIDDEN // HEADS
    p = f"blk.{i}."
    return [
        (p + "attn_norm.weight", [HIDDEN], Q.F32),
        (p + "attn_q.weight", [HIDDEN, HIDDEN], Q.Q4_K),
        (p + "attn_k.weight", [kv, HIDDEN], Q.Q4_K),
        (p + "attn_v.weight", [kv, HIDDEN], Q.Q6_K),
        (p + "attn_output.weight", [HIDDEN, HIDDEN], Q.Q4_K),
        (p + "ffn_norm.weight", [HIDDEN], Q.F32),
        (p + "ffn_gate.weight", [INTERMEDIATE, HIDDEN], Q.Q4_K),
        (p + "ffn_up.weight", [INTERMEDIATE, HIDDEN], Q.Q4_K),
        (p + "ffn_down.weight", [HIDDEN, INTERMEDIATE], Q.Q6_K),
    ]


def nbytes(shape, qtype):
    block, size = GGML_QUANT_SIZES[qtype]
    rows = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    return rows * (shape[-1] // block) * size


def data(shape, qtype, rng):
    """Row-major rows x bytes-per-row uint8 array of valid blocks (or f32 values)."""
    if qtype == Q.F32:
        return (1.0 + 0.05 * rng.standard_normal(shape)).astype(np.float32)
    block, size = GGML_QUANT_SIZES[qtype]
    rows = int(np.prod(shape[:-1]))
    blocks = rng.integers(0, 256, size=(rows, shape[-1] // block, size), dtype=np.uint8)
    for off in SCALE_OFFSETS[qtype]:
        d = rng.uniform(1e-4, 2e-3, size=blocks.shape[:2]).astype("<f2")
        blocks[:, :, off : off + 2] = d.view(np.uint8).reshape(*blocks.shape[:2], 2)
    return blocks.reshape(rows, -1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=9)
    a = ap.parse_args()

    head = [("token_embd.weight", [VOCAB, HIDDEN], Q.Q4_K)]
    tail = [("output_norm.weight", [HIDDEN], Q.F32), ("output.weight", [VOCAB, HIDDEN], Q.Q6_K)]
    fixed = sum(nbytes(s, q) for _, s, q in head + tail)
    per_layer = sum(nbytes(s, q) for _, s, q in layer(0))
    layers = max(1, round((a.gb * 1e9 - fixed) / per_layer))
    tensors = head + [t for i in range(layers) for t in layer(i)] + tail

    tmp = a.out + ".tmp"
    w = GGUFWriter(tmp, arch="llama")
    w.add_name("nullprint bench synthetic k-quant model")
    w.add_block_count(layers)
    w.add_context_length(4096)
    w.add_embedding_length(HIDDEN)
    w.add_feed_forward_length(INTERMEDIATE)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(15)  # MOSTLY_Q4_K_M
    for name, shape, qtype in tensors:
        if qtype == Q.F32:
            w.add_tensor_info(name, shape, np.dtype(np.float32), nbytes(shape, qtype))
        else:
            block, size = GGML_QUANT_SIZES[qtype]
            byte_shape = [*shape[:-1], shape[-1] // block * size]
            w.add_tensor_info(name, byte_shape, np.dtype(np.uint8), nbytes(shape, qtype), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    rng = np.random.default_rng(a.seed)
    for name, shape, qtype in tensors:
        w.write_tensor_data(data(shape, qtype, rng))
    w.close()
    os.replace(tmp, a.out)
    print(f"{a.out}: {layers} layers, {os.path.getsize(a.out) / 1e9:.2f} GB (Q4_K/Q6_K)")


if __name__ == "__main__":
    main()

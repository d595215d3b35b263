#!/usr/bin/env python3
"""Write a synthetic, sharded Llama-style safetensors checkpoint for the benchmark.

The checkpoint has the layout of a Hugging Face Llama model (embedding, per-layer attention
q/k/v/o with grouped KV heads, gated MLP, RMSNorm weights, final norm, LM head), a
`config.json` and a `model.safetensors.index.json`, so nullprint maps every tensor to a role
exactly as for a downloaded model. Values are Gaussian with a per-tensor standard deviation
(drawn from a seeded generator), so per-tensor statistics differ from tensor to tensor.

Usage: gen_checkpoint.py OUT_DIR --dtype {bf16,f32,f16} --gb SIZE [--shard-mb MB] [--seed S]

Writes into OUT_DIR.tmp and renames it to OUT_DIR when complete, so an interrupted run never
leaves a half-written checkpoint that looks finished.
"""

import argparse
import json
import os
import shutil
import struct

import numpy as np

HIDDEN = 2048
INTERMEDIATE = 5632
HEADS = 32
KV_HEADS = 4
VOCAB = 32000
CHUNK = 1 << 22  # elements generated at a time (bounded memory while writing)


def layer_tensors(i):
    head_dim = HIDDEN // HEADS
    kv = KV_HEADS * head_dim
    p = f"model.layers.{i}."
    return [
        (p + "input_layernorm.weight", [HIDDEN]),
        (p + "self_attn.q_proj.weight", [HIDDEN, HIDDEN]),
        (p + "self_attn.k_proj.weight", [kv, HIDDEN]),
        (p + "self_attn.v_proj.weight", [kv, HIDDEN]),
        (p + "self_attn.o_proj.weight", [HIDDEN, HIDDEN]),
        (p + "post_attention_layernorm.weight", [HIDDEN]),
        (p + "mlp.gate_proj.weight", [INTERMEDIATE, HIDDEN]),
        (p + "mlp.up_proj.weight", [INTERMEDIATE, HIDDEN]),
        (p + "mlp.down_proj.weight", [HIDDEN, INTERMEDIATE]),
    ]


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def plan(target_bytes, itemsize):
    head = [("model.embed_tokens.weight", [VOCAB, HIDDEN])]
    tail = [("model.norm.weight", [HIDDEN]), ("lm_head.weight", [VOCAB, HIDDEN])]
    fixed = sum(numel(s) for _, s in head + tail) * itemsize
    per_layer = sum(numel(s) for _, s in layer_tensors(0)) * itemsize
    layers = max(1, round((target_bytes - fixed) / per_layer))
    tensors = list(head)
    for i in range(layers):
        tensors += layer_tensors(i)
    return layers, tensors + tail


def encode(x, dtype):
    """float32 array -> little-endian bytes of `dtype` (bf16 rounds to nearest even)."""
    if dtype == "f32":
        return x.astype("<f4", copy=False).tobytes()
    if dtype == "f16":
        return x.astype("<f2").tobytes()
    u = x.view(np.uint32)
    rounded = (u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
    return rounded.astype("<u2").tobytes()


def write_shard(path, tensors, dtype, itemsize, rng):
    header = {"__metadata__": {"format": "pt", "generator": "nullprint bench/gen_checkpoint.py"}}
    offset = 0
    for name, shape in tensors:
        size = numel(shape) * itemsize
        header[name] = {
            "dtype": {"bf16": "BF16", "f32": "F32", "f16": "F16"}[dtype],
            "shape": shape,
            "data_offsets": [offset, offset + size],
        }
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for name, shape in tensors:
            n = numel(shape)
            if name.endswith("norm.weight"):
                std, mean = 0.05, 1.0
            else:
                std, mean = float(rng.uniform(0.005, 0.05)), 0.0
            done = 0
            while done < n:
                k = min(CHUNK, n - done)
                x = rng.standard_normal(k, dtype=np.float32)
                x *= np.float32(std)
                x += np.float32(mean)
                f.write(encode(x, dtype))
                done += k


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--dtype", choices=["bf16", "f32", "f16"], required=True)
    ap.add_argument("--gb", type=float, required=True, help="approximate total size in GB (1e9 bytes)")
    ap.add_argument("--shard-mb", type=float, default=500.0, help="largest shard in MB (1e6 bytes)")
    ap.add_argument("--seed", type=int, default=9)
    a = ap.parse_args()

    itemsize = {"bf16": 2, "f32": 4, "f16": 2}[a.dtype]
    layers, tensors = plan(a.gb * 1e9, itemsize)
    shard_cap = a.shard_mb * 1e6
    shards, cur, cur_bytes = [], [], 0
    for name, shape in tensors:
        size = numel(shape) * itemsize
        if cur and cur_bytes + size > shard_cap:
            shards.append(cur)
            cur, cur_bytes = [], 0
        cur.append((name, shape))
        cur_bytes += size
    shards.append(cur)

    tmp = a.out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    rng = np.random.default_rng(a.seed)
    weight_map, total = {}, 0
    for k, shard in enumerate(shards):
        fname = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        write_shard(os.path.join(tmp, fname), shard, a.dtype, itemsize, rng)
        for name, shape in shard:
            weight_map[name] = fname
            total += numel(shape) * itemsize
    with open(os.path.join(tmp, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=1)
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "num_hidden_layers": layers,
        "vocab_size": VOCAB,
        "torch_dtype": {"bf16": "bfloat16", "f32": "float32", "f16": "float16"}[a.dtype],
    }
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    shutil.rmtree(a.out, ignore_errors=True)
    os.rename(tmp, a.out)
    print(f"{a.out}: {layers} layers, {len(shards)} shards, {total / 1e9:.2f} GB {a.dtype}")


if __name__ == "__main__":
    main()

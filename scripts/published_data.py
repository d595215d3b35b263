#!/usr/bin/env python3
"""Extract per-layer attention std curves from a GraphNet checkout into nullprint's documented
long schema (model,stack,layer,role,std), for `null::published` (Layout::Long).

GraphNet (github.com/PaddlePaddle/GraphNet, MIT) stores, for every sample, a weight_meta.py
whose classes give each weight tensor's name, shape, mean and std (rounded to 3 decimals;
torch's std, ddof 1). This script keeps the attention projections of numbered layers:

  <stack>_modules_<layer>_modules_<module>_modules_<proj>_parameters_weight_

with <proj> one of the names in PROJ below, and writes one row per model, stack (stack and
attention module joined by ':'), layer and role. Values are copied as published (no
re-rounding). Usage:

  python3 scripts/published_data.py GRAPHNET_CHECKOUT OUT_DIR

It writes OUT_DIR/attention_std_long.csv and prints counts. Standard library only.
"""
import csv
import os
import re
import sys

# Projection module name -> nullprint role. A name absent here is not an attention projection.
PROJ = {
    "q_proj": "attn_q", "query": "attn_q", "q": "attn_q", "linear_q": "attn_q", "wq": "attn_q",
    "k_proj": "attn_k", "key": "attn_k", "k": "attn_k", "linear_k": "attn_k", "wk": "attn_k",
    "v_proj": "attn_v", "value": "attn_v", "v": "attn_v", "linear_v": "attn_v", "wv": "attn_v",
    "o_proj": "attn_o", "out_proj": "attn_o", "o": "attn_o", "linear_out": "attn_o",
    "wo": "attn_o", "dense": "attn_o",
    "qkv": "attn_qkv", "query_key_value": "attn_qkv", "c_attn": "attn_qkv",
}
# The attention module must say so (keeps an MLP `dense` or `wo` out).
ATTN = re.compile(r"attn|attention|Attention", re.I)
NAME = re.compile(r"^L_self_modules_(?P<stack>.+?)_modules_(?P<layer>\d+)_modules_"
                  r"(?P<module>.+)_modules_(?P<proj>[A-Za-z_]+?)_parameters_weight_$")
CLASS = re.compile(r'name = "(?P<name>[^"]+)"\s*\n(?:\s*\w+ = .*\n)*?\s*std = (?P<std>[-0-9.e]+)')


def module_name(m):
    m = m.replace("_modules_", ".")
    # BERT-style `attention.self` (q, k, v) and `attention.output` (o) form one module.
    for tail in (".self", ".output"):
        if m.endswith(tail):
            m = m[: -len(tail)]
    return m


def main(src, out_dir):
    rows, samples = [], 0
    root = os.path.join(src, "samples")
    for dirpath, _, files in sorted(os.walk(root)):
        if "weight_meta.py" not in files:
            continue
        samples += 1
        model = os.path.relpath(dirpath, root)
        text = open(os.path.join(dirpath, "weight_meta.py"), encoding="utf-8").read()
        for m in CLASS.finditer(text):
            n = NAME.match(m.group("name"))
            if not n or n.group("proj") not in PROJ or not ATTN.search(n.group("module")):
                continue
            stack = n.group("stack").replace("_modules_", ".")
            rows.append((model, f"{stack}:{module_name(n.group('module'))}",
                         int(n.group("layer")), PROJ[n.group("proj")], m.group("std")))
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "attention_std_long.csv")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "stack", "layer", "role", "std"])
        w.writerows(sorted(set(rows)))
    print(f"{samples} samples, {len(set(rows))} rows -> {path}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])

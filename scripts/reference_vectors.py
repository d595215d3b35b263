#!/usr/bin/env python3
"""Independent numpy reference for the vector claim (experiments/solar-glm.toml).

Reads the attention and MLP normalisation weights of every model of baselines/vectors/ straight
from the weight files (safetensors and CTranslate2 parsed with the standard library, PyTorch zip
with scripts/reference_torch.py's stub unpickler, ONNX with the `onnx` package, GGUF with the
`gguf` package), maps names to (role, layer) with its own patterns (not nullprint's role
table), and computes in float64 with numpy: the raw cosine and the Pearson r (np.corrcoef) of
same-role vectors at every shared layer, their means, and the claim's sigma,
(same-layer mean - mean of layer 0 against every other layer of both models) / its sd (ddof 1).
It also records the SHA-256 of each vector's float32 little-endian bytes, which must equal the
hash the vector fingerprint records. The two derived controls exist only as fingerprints (their
checkpoints are deleted after `just baselines`), so their vectors are decoded from
baselines/vectors/controls/*.json (base64) instead, and marked so.

    python3 scripts/reference_vectors.py "$NULLPRINT_MODELS" \
        > crates/experiment/tests/data/solar-glm-numpy.json

Needs numpy, onnx and gguf (pip install numpy onnx gguf).
"""
import base64
import hashlib
import json
import os
import re
import struct
import sys
import zipfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_torch  # noqa: E402  (the project's own stub unpickler)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# model id -> (file, list of (pattern, role))
BERT = [
    (r"encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.weight$", "attn_norm"),
    (r"encoder\.layer\.(\d+)\.output\.LayerNorm\.weight$", "mlp_norm"),
]
MODELS = {
    "all-minilm-l6-v2": ("model.safetensors", BERT),
    "all-minilm-l6-v2-int8": ("model.onnx", BERT),
    "paraphrase-minilm-l3-v2": ("model.onnx", BERT),
    "antiberty": ("pytorch_model.bin", BERT),
    "whisper-base": (
        "model.bin",
        [
            (r"^encoder/layer_(\d+)/self_attention/layer_norm/gamma$", "attn_norm"),
            (r"^encoder/layer_(\d+)/ffn/layer_norm/gamma$", "mlp_norm"),
        ],
    ),
    "all-mpnet-base-v2": (
        "model.safetensors",
        [
            (r"encoder\.layer\.(\d+)\.attention\.LayerNorm\.weight$", "attn_norm"),
            (r"encoder\.layer\.(\d+)\.output\.LayerNorm\.weight$", "mlp_norm"),
        ],
    ),
    "smollm2-135m-instruct": (
        "model.gguf",
        [(r"^blk\.(\d+)\.attn_norm\.weight$", "attn_norm"), (r"^blk\.(\d+)\.ffn_norm\.weight$", "mlp_norm")],
    ),
    "nomic-embed-text-v1.5": (
        "model.gguf",
        [
            (r"^blk\.(\d+)\.attn_output_norm\.weight$", "attn_norm"),
            (r"^blk\.(\d+)\.layer_output_norm\.weight$", "mlp_norm"),
        ],
    ),
}
CONTROLS = ["smollm2-135m-instruct.noise-rel1.s1", "smollm2-135m-instruct.noise-rel3.s2"]
# Equal-width pairs, as the experiment forms them (panel order, then controls).
PAIRS = [
    ("all-minilm-l6-v2", "all-minilm-l6-v2-int8"),
    ("all-minilm-l6-v2", "paraphrase-minilm-l3-v2"),
    ("all-minilm-l6-v2-int8", "paraphrase-minilm-l3-v2"),
    ("antiberty", "whisper-base"),
    ("all-mpnet-base-v2", "nomic-embed-text-v1.5"),
    ("smollm2-135m-instruct", CONTROLS[0]),
    ("smollm2-135m-instruct", CONTROLS[1]),
    (CONTROLS[0], CONTROLS[1]),
]
ROLES = ["attn_norm", "mlp_norm"]


def tensors_safetensors(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        a, b = info["data_offsets"]
        yield name, np.frombuffer(data[base + a : base + b], "<f4")


def tensors_onnx(path):
    import onnx
    from onnx import numpy_helper

    m = onnx.load(path)
    for t in m.graph.initializer:
        if t.data_type == onnx.TensorProto.FLOAT:
            yield t.name, numpy_helper.to_array(t).astype("<f4").ravel()


def tensors_torch(path):
    z = zipfile.ZipFile(path)
    pkl = [n for n in z.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
    prefix = pkl[0][: -len("data.pkl")]
    with z.open(pkl[0]) as f:
        state = reference_torch.StateDictUnpickler(f).load()
    for name, t in reference_torch.flatten(state):
        st = t["storage"]
        if st["type"] != "FloatStorage" or len(t["size"]) != 1:
            continue
        flat = reference_torch.elements(z.read(f"{prefix}data/{st['key']}"), st["type"])
        yield name, flat[t["offset"] : t["offset"] + t["size"][0] * t["stride"][0] : t["stride"][0]]


def tensors_ct2(path):
    data = open(path, "rb").read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return v

    def string():
        nonlocal pos
        (n,) = take("H")
        s = data[pos : pos + n - 1].decode()
        pos += n
        return s

    take("I")
    string()
    take("I")
    (count,) = take("I")
    for _ in range(count):
        name = string()
        (rank,) = take("B")
        take("I" * rank)
        dtype, nbytes = take("BI")
        buf = data[pos : pos + nbytes]
        pos += nbytes
        if dtype == 4:  # float16
            yield name, np.frombuffer(buf, "<f2").astype("<f4")
        elif dtype == 0:
            yield name, np.frombuffer(buf, "<f4")


def tensors_gguf(path):
    import gguf

    r = gguf.GGUFReader(path)
    for t in r.tensors:
        if t.tensor_type == gguf.GGMLQuantizationType.F32:
            yield t.name, np.asarray(t.data, dtype="<f4").ravel()


READERS = {
    "model.safetensors": tensors_safetensors,
    "model.onnx": tensors_onnx,
    "pytorch_model.bin": tensors_torch,
    "model.bin": tensors_ct2,
    "model.gguf": tensors_gguf,
}


def from_weights(models_dir, mid):
    file, patterns = MODELS[mid]
    path = os.path.join(models_dir, mid, file)
    out = {r: {} for r in ROLES}
    for name, x in READERS[file](path):
        for pat, role in patterns:
            m = re.search(pat, name)
            if m:
                assert int(m.group(1)) not in out[role], (mid, name)
                out[role][int(m.group(1))] = np.asarray(x, dtype="<f4").copy()
    sha = hashlib.sha256(open(path, "rb").read()).hexdigest()
    return out, {"source": "weights", "file": f"{mid}/{file}", "file_sha256": sha}


def from_fingerprint(cid):
    path = os.path.join(ROOT, "baselines", "vectors", "controls", cid + ".json")
    fp = json.load(open(path))
    out = {r: {} for r in ROLES}
    for v in fp["vectors"]:
        if v["role"] in ROLES and v.get("layer") is not None:
            out[v["role"]][v["layer"]] = np.frombuffer(base64.b64decode(v["f32le_base64"]), "<f4")
    return out, {"source": "vector fingerprint (base64)", "file": os.path.relpath(path, ROOT)}


def cos(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def pearson(a, b):
    return float(np.corrcoef(a.astype(np.float64), b.astype(np.float64))[0, 1])


def first_layer_baseline(v, f):
    layers = sorted(v)
    return [f(v[layers[0]], v[l]) for l in layers[1:]]


def main(models_dir):
    vec, sources = {}, {}
    for mid in MODELS:
        vec[mid], sources[mid] = from_weights(models_dir, mid)
    for cid in CONTROLS:
        vec[cid], sources[cid] = from_fingerprint(cid)
    hashes = {
        mid: {r: {str(l): hashlib.sha256(x.astype("<f4").tobytes()).hexdigest() for l, x in sorted(v[r].items())} for r in ROLES}
        for mid, v in vec.items()
    }
    pairs = []
    for a, b in PAIRS:
        for role in ROLES:
            va, vb = vec[a][role], vec[b][role]
            shared = sorted(set(va) & set(vb))
            row = {"pair": f"{a} vs {b}", "role": role, "layers": shared}
            for name, f in (("cosine", cos), ("centred-cosine", pearson)):
                per = [f(va[l], vb[l]) for l in shared]
                base = first_layer_baseline(va, f) + first_layer_baseline(vb, f)
                mean = float(np.mean(per))
                row[name] = {
                    "per_layer": per,
                    "mean": mean,
                    "baseline_mean": float(np.mean(base)),
                    "baseline_sd": float(np.std(base, ddof=1)),
                    "sigma": float((mean - np.mean(base)) / np.std(base, ddof=1)),
                }
            pairs.append(row)
    doc = {
        "method": "numpy float64 from the weight files (own name patterns); cosine = a.b/(|a||b|), "
        "centred = np.corrcoef; sigma = (same-layer mean - mean(layer 0 vs other layers, both models)) / sd (ddof 1)",
        "numpy": np.__version__,
        "sources": sources,
        "vector_sha256": hashes,
        "pairs": pairs,
    }
    json.dump(doc, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("NULLPRINT_MODELS", os.path.expanduser("~/.cache/nullprint-models")))

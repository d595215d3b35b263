#!/usr/bin/env python3
"""Independent float64 reference statistics of an ONNX model's weights, for nullprint's tests.

Loads the model with the `onnx` package, reads initializers with `onnx.numpy_helper`, and
records numpy's mean and population std (ddof 0) in float64 for:
- every floating-point initializer, under its own name;
- every weight-only quantized weight the graph dequantizes as `Cast(X_q, to=FLOAT)` ->
  `Mul(., X_scale)`, computed as numpy does it in float32 (`q.astype(float32) * scale`,
  broadcast), under the `Mul` output name; its `_q` and `_scale` inputs are then not listed.
For each entry whose name does not end in `.weight`/`.bias`, `role_name` is the name the bias
`Add` after its `MatMul` gives it (`...query.bias` -> `...query.weight`), when there is one.

    python3 scripts/reference_onnx.py model.onnx > expected.json
"""
import hashlib
import json
import sys

import numpy as np
import onnx
from onnx import numpy_helper

FLOAT = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16)


def main(path: str) -> None:
    model = onnx.load(path)
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    values = {}
    hidden = set()
    for n in g.node:
        if n.op_type != "Cast" or n.input[0] not in inits:
            continue
        q = inits[n.input[0]]
        if q.data_type not in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8):
            continue
        to = [a.i for a in n.attribute if a.name == "to"]
        uses = consumers.get(n.output[0], [])
        if to != [onnx.TensorProto.FLOAT] or len(uses) != 1 or uses[0].op_type != "Mul":
            continue
        mul = uses[0]
        other = mul.input[1] if mul.input[0] == n.output[0] else mul.input[0]
        if other not in inits:
            continue
        qa = numpy_helper.to_array(q).astype(np.float32)
        sa = numpy_helper.to_array(inits[other]).astype(np.float32)
        w = qa * sa
        assert w.shape == qa.shape
        values[mul.output[0]] = w
        hidden.update([q.name, other])
    for name, t in inits.items():
        if name in hidden or t.data_type not in FLOAT:
            continue
        values[name] = numpy_helper.to_array(t)

    def bias_name(value):
        for n in consumers.get(value, []):
            if n.op_type != "MatMul":
                continue
            for add in consumers.get(n.output[0], []):
                if add.op_type != "Add":
                    continue
                for i in add.input:
                    if i != n.output[0] and i in inits and i.endswith(".bias"):
                        return i[: -len(".bias")] + ".weight"
        return None

    out = {}
    for name, x in sorted(values.items()):
        x = np.asarray(x, dtype=np.float64).ravel()
        entry = {"numel": int(x.size), "mean": float(x.mean()), "std": float(x.std(ddof=0))}
        if not (name.endswith(".weight") or name.endswith(".bias")):
            role = bias_name(name)
            if role:
                entry["role_name"] = role
        out[name] = entry
    doc = {
        "file_sha256": hashlib.sha256(open(path, "rb").read()).hexdigest(),
        "method": "onnx + numpy: Cast/Mul dequantization in float32 (q.astype(float32) * scale), then x.astype(float64).std(ddof=0)",
        "numpy": np.__version__,
        "onnx": onnx.__version__,
        "tensors": out,
    }
    json.dump(doc, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])

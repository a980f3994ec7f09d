# replicate: DeepID2, FaceNet, center loss and L-Softmax on MNIST, from raw data to figures.
# `just reproduce-all` regenerates every table and figure; `just test` is what CI runs.

set shell := ["bash", "-euo", "pipefail", "-c"]

bin := "target/release/replicate"

# List the recipes.
default:
    @just --list

# Build the `replicate` binary (optimised: debug builds are ~10x slower).
build:
    cargo build --release --locked

# Fill data/mnist (files already there, then $MNIST_MIRROR, then the Hugging Face hub) and
# data/lfw (files already there, then $LFW_MIRROR), each checked in full.
data: build
    #!/usr/bin/env bash
    set -uo pipefail
    {{bin}} data
    status=$?
    if [ "$status" -eq 3 ]; then
        echo "Trying the Hugging Face hub (building with --features hub; this compiles candle-datasets once)..."
        cargo run --release --locked --features hub -- data
    else
        exit "$status"
    fi

# Run every experiment (finished runs are skipped), then redraw every figure and REPORT.md.
reproduce-all profile="quick": data
    {{bin}} reproduce-all --profile {{profile}}

# Run one experiment: just run center-loss [--profile smoke] [--set key=value]...
run experiment *args: data
    {{bin}} run {{experiment}} {{args}}

# Formatting and lints, unit and integration tests (optimised build), smoke runs read back from
# Python, notebooks.
test: data lint
    cargo test --release --locked
    just kernels-avx2
    just smoke-tables
    python3 scripts/check_tables.py results
    REPLICATE_PROFILE=smoke just notebooks

# The kernels' tests again on the AVX2 path, where the CPU has a wider one (AVX-512): one build
# tests both paths.
kernels-avx2:
    #!/usr/bin/env bash
    set -euo pipefail
    if grep -qw avx512f /proc/cpuinfo 2>/dev/null && grep -qw avx2 /proc/cpuinfo; then
        REPLICATE_ISA=avx2 cargo test --release --locked --test kernels
        REPLICATE_ISA=avx2 cargo test --release --locked --lib nn::kernels
    else
        echo "kernels-avx2: this CPU's widest path is AVX2 or narrower, which the tests above ran on"
    fi

# A one-node Slurm cluster on localhost (installs slurm-wlm and munge if missing): the smoke
# profile of two experiments as the 3-task array jobs `replicate plan --slurm 3` prints, merged,
# and compared with the same plans run without Slurm.
slurm-smoke: data
    bash scripts/slurm_smoke.sh

# rustfmt (rustfmt.toml) and clippy with every warning an error.
lint:
    cargo fmt --check
    cargo clippy --release --locked --all-targets -- -D warnings

# Every experiment on the smoke profile in a temporary directory, its tables opened with pandas.
smoke-tables: build
    #!/usr/bin/env bash
    set -euo pipefail
    out=$(mktemp -d)
    trap 'rm -rf "$out"' EXIT
    {{bin}} --results-dir "$out" reproduce-all --profile smoke
    python3 scripts/check_tables.py "$out"

# Speed of LeNets++ and of the face backbone (candle's ops vs our kernels) and of the triplet
# mining rules.
bench: build
    {{bin}} bench

# The same network in PyTorch, alternated with ours (creates bench/.venv; PyTorch is a large download).
bench-pytorch pairs="5": build
    #!/usr/bin/env bash
    set -euo pipefail
    if [ ! -x bench/.venv/bin/python ]; then
        python3 -m venv bench/.venv
        bench/.venv/bin/pip install -q torch numpy
    fi
    bench/.venv/bin/python bench/compare.py --ours {{bin}} --pairs {{pairs}}

# Execute every notebook against the committed results and keep the outputs in notebooks/, so a
# reader on GitHub sees each figure, table and verdict (needs the Rust kernel, like `notebooks`).
render-notebooks:
    #!/usr/bin/env bash
    set -euo pipefail
    mkdir -p target/evcxr
    cp Cargo.lock target/evcxr/Cargo.lock
    for nb in notebooks/*.ipynb; do
        echo "rendering $nb"
        jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.kernel_name=rust \
            --ExecutePreprocessor.startup_timeout=3600 --ExecutePreprocessor.timeout=3600 "$nb"
    done
    python3 scripts/check_notebooks.py notebooks/*.ipynb

# Execute every notebook headless with the Rust kernel; fails if a cell fails.
notebooks:
    #!/usr/bin/env bash
    set -euo pipefail
    # The notebooks' crate builds with the workspace's pinned versions.
    mkdir -p target/evcxr
    cp Cargo.lock target/evcxr/Cargo.lock
    rm -rf target/notebooks
    for nb in notebooks/*.ipynb; do
        echo "executing $nb"
        # The kernel compiles the crate (evcxr.toml's dependency) before it answers: minutes, once.
        jupyter nbconvert --to notebook --execute --ExecutePreprocessor.kernel_name=rust \
            --ExecutePreprocessor.startup_timeout=3600 --ExecutePreprocessor.timeout=3600 \
            --output-dir target/notebooks "$nb"
    done
    python3 scripts/check_notebooks.py target/notebooks/*.ipynb

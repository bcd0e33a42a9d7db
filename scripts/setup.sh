#!/usr/bin/env bash
# Set up a fresh machine: a virtualenv in .venv with pooldbapi and the given extras.
# Usage: scripts/setup.sh [extras]   e.g. scripts/setup.sh test
# PYTHON=/path/to/python3.X picks the interpreter (default: python3; 3.11 or newer).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
extras="${1:-}"
python="${PYTHON:-python3}"

if ! command -v "$python" >/dev/null 2>&1; then
    echo "pooldbapi needs Python 3.11 or newer: '$python' was not found" \
         "(install python3, or set PYTHON=/path/to/python3.11)" >&2
    exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "pooldbapi needs Python 3.11 or newer; '$python' is $("$python" --version 2>&1)" \
         "(set PYTHON=/path/to/python3.11 or newer)" >&2
    exit 1
fi

# A .venv left half-made by an interrupted run is made again.
if [ -d .venv ] && ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
    echo "removing an incomplete .venv"
    rm -rf .venv
fi
if [ ! -d .venv ]; then
    if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
        # Debian and Ubuntu ship venv's pip bootstrap in a package of its own
        version="$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
        apt_install "python${version}-venv"
    fi
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
if [ -n "$extras" ]; then
    .venv/bin/python -m pip install --quiet -e ".[$extras]"
else
    .venv/bin/python -m pip install --quiet -e .
fi

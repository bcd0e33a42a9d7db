#!/usr/bin/env bash
# Set up (first time) and run `pooldbapi demo` on embedded SQLite containers.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/pooldbapi demo "$@"

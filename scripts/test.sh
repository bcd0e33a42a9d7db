#!/usr/bin/env bash
# Set up (first time) everything the tests need and run the whole suite:
# PostgreSQL server binaries from Debian's packages where missing, then the Python packages.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pg() { ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }
if need_pg; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing PostgreSQL server binaries (Debian package postgresql)"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
fi
scripts/setup.sh test
exec .venv/bin/python -m pytest tests README.md "$@"

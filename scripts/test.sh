#!/usr/bin/env bash
# Set up (first time) everything the tests need and run the whole suite: PostgreSQL server
# binaries and nginx from Debian's packages where missing, the Node packages of the OData test
# service (SAP CAP), then the Python packages.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing from Debian's packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ! -d tests/odata_service/node_modules ]; then
    echo "installing the OData test service's Node packages (npm ci)"
    (cd tests/odata_service && npm ci --no-audit --no-fund --loglevel=error)
fi
scripts/setup.sh test
exec .venv/bin/python -m pytest tests README.md "$@"

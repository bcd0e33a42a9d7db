#!/usr/bin/env bash
# Set up (first time) everything the tests need and run the whole suite: PostgreSQL server
# binaries, nginx and Redis from the distribution's packages where missing; Node.js 20 or newer (from
# the npm registry where the distribution's is older) and the Node packages of the OData test
# service (SAP CAP), with a C++ tool chain for the one native module; then the Python packages.
# Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=("$(apt_first nginx-light nginx)")
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
command -v make >/dev/null 2>&1 || missing+=(make)
if [ ${#missing[@]} -gt 0 ]; then
    apt_install "${missing[@]}"
fi

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(node_major)" -lt 20 ]; then
    # SAP CAP 9 needs Node.js 20 or newer; the npm registry carries Node.js as a package. npm
    # comes from there too: the distribution's node-gyp links native modules against its own
    # libnode (an older Node), which crashes under the newer one.
    echo "installing Node.js 22 and npm 10 from the npm registry (found: $(node --version 2>&1 || true))"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo npm install --global --no-audit --no-fund --loglevel=error node@22 npm@10
    hash -r
    if [ "$(node_major)" -lt 20 ]; then
        echo "Node.js 20 or newer is needed for the OData test service; found $(node --version)" >&2
        exit 1
    fi
fi

# Node.js from the npm registry trusts only the CAs it was built with, the distribution's trusts
# the system's: give it the system's too (a network whose proxy signs with a CA of its own)
if [ -z "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
fi

# node-gyp must build the native module against the running Node's own headers (not another
# installed Node's, nor a download): those installed with it, whose major version matches
node_headers() {
    local bin home dir major
    bin="$(readlink -f "$(command -v node)")"
    home="$(dirname "$(dirname "$bin")")"
    major="$(node_major)"
    for dir in "$home" "$home"/node_modules/node-*; do
        if grep -qs "define NODE_MAJOR_VERSION $major\$" "$dir/include/node/node_version.h"; then
            echo "$dir"
            return
        fi
    done
}
if [ -z "${npm_config_nodedir:-}" ]; then
    headers="$(node_headers)"
    [ -n "$headers" ] && export npm_config_nodedir="$headers"
fi
native_loads() {
    (cd tests/odata_service && node -e 'require("better-sqlite3")(":memory:").close()') \
        >/dev/null 2>&1
}

marker=tests/odata_service/node_modules/.pooldbapi-installed
if [ -f "$marker" ] && { ! native_loads || [ tests/odata_service/package-lock.json -nt "$marker" ]; }; then
    rm -f "$marker"  # built for another Node, or the packages changed: install again
fi
if [ ! -f "$marker" ]; then
    echo "installing the OData test service's Node packages (npm ci; a first run compiles one"
    echo "native module, a few minutes)"
    for attempt in 1 2; do
        rm -rf tests/odata_service/node_modules  # an interrupted install is started afresh
        if (cd tests/odata_service && npm ci --no-audit --no-fund --loglevel=error) \
                && native_loads; then
            touch "$marker"
            break
        fi
        [ "$attempt" -eq 2 ] && { echo "npm ci failed twice" >&2; exit 1; }
        echo "npm ci failed; trying once more"
    done
fi

scripts/setup.sh test
# the code stays clean: ruff over everything, mypy strict over the package, the layers kept
# (import-linter: the contracts in pyproject.toml)
.venv/bin/ruff check --quiet pooldbapi tests benchmarks scripts
.venv/bin/mypy pooldbapi
.venv/bin/lint-imports --no-cache
exec .venv/bin/python -m pytest tests README.md "$@"

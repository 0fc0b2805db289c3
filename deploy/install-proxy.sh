#!/usr/bin/env bash
# Install JupyterHub's proxy, configurable-http-proxy, from npm into a folder of its own and print the path
# of its executable. Node.js and npm come from the system (Debian/Ubuntu: installed with apt-get when missing
# and run as root). Used by deploy/setup.sh and by tests/test_hub.py (so `python3 course.py test` installs it).
#
#   deploy/install-proxy.sh [PREFIX]     default PREFIX: $COURSE_PROXY_PREFIX or ~/.cache/drl-course/proxy
set -euo pipefail
VERSION=5.3.0  # the version the hub test ran with
PREFIX="${1:-${COURSE_PROXY_PREFIX:-$HOME/.cache/drl-course/proxy}}"
BIN="$PREFIX/node_modules/.bin/configurable-http-proxy"
if [ -x "$BIN" ] && [ "$("$BIN" --version 2>/dev/null)" = "$VERSION" ]; then
    echo "$BIN"
    exit 0
fi
if ! command -v npm >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing Node.js and npm with apt-get" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm >&2
    else
        echo "npm is missing: install Node.js (with npm), then run $0 again" >&2
        exit 1
    fi
fi
mkdir -p "$PREFIX"
npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error "configurable-http-proxy@$VERSION" >&2
"$BIN" --version >/dev/null
echo "$BIN"

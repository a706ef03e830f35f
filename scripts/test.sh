#!/usr/bin/env bash
# Install everything the tests need, then lint and run the whole suite.
# Extra arguments go to pytest (e.g. `scripts/test.sh -k quota`).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh --test
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest "$@"

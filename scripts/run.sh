#!/usr/bin/env bash
# Run LoRA Studio on its embedded default: a local SQLite file, demo LoRAs on first run,
# and the offline preview generator unless FAL_KEY is set. Extra arguments go to streamlit.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
.venv/bin/python -m lora_core.demo
exec .venv/bin/python -m streamlit run streamlit_app.py "$@"

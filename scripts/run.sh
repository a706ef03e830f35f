#!/usr/bin/env bash
# Run LoRA Studio on its embedded default: a local SQLite file with demo LoRAs on first run,
# and the offline preview generator unless FAL_KEY is set. Serves http://localhost:8501 to
# this machine only; extra arguments go to `streamlit run` (e.g. --server.address 0.0.0.0).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
.venv/bin/python -m lora_core.cli.demo || echo "Starting without demo data."
exec .venv/bin/python -m streamlit run streamlit_app.py --server.address localhost "$@"

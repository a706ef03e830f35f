#!/usr/bin/env bash
# One LoRA Studio replica on 127.0.0.1:PORT, for nginx to put in front (see README "Run
# several replicas"). Settings come from the environment (or deploy/replicas.env, if it
# exists): every replica needs the same TURSO_DATABASE_URL/TURSO_AUTH_TOKEN, the same S3
# settings (STORAGE_BACKEND=s3 …), FAL_KEY, and the same STREAMLIT_SERVER_COOKIE_SECRET.
#   deploy/replica.sh 8501
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${1:?usage: deploy/replica.sh PORT}"

if [ -f deploy/replicas.env ]; then
    set -a
    # shellcheck disable=SC1091
    . deploy/replicas.env
    set +a
fi
: "${TURSO_DATABASE_URL:?every replica needs the shared database: set TURSO_DATABASE_URL}"
: "${STREAMLIT_SERVER_COOKIE_SECRET:?set STREAMLIT_SERVER_COOKIE_SECRET, the same for every replica}"
if [ "${STORAGE_BACKEND:-local}" != "s3" ]; then
    echo "Replicas must share their images: set STORAGE_BACKEND=s3 (and S3_BUCKET …)." >&2
    exit 1
fi

exec .venv/bin/streamlit run streamlit_app.py \
    --server.headless true \
    --server.address 127.0.0.1 \
    --server.port "$PORT" \
    --server.fileWatcherType none \
    --browser.gatherUsageStats false

"""Starting and stopping the real app (`streamlit run`) on a loopback port: shared by the
browser tests and the cold-start benchmark."""

from __future__ import annotations

import subprocess
from pathlib import Path

from deploy.stack import is_up, stop_process

CHROMIUM = "/usr/bin/chromium"  # Debian's, installed by scripts/setup.sh --test
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # fal's images come from the fake fal server, whose certificate is from a throwaway
    # test CA that Chromium does not know.
    "--ignore-certificate-errors",
]


def streamlit_flags(port: int, secrets_file: Path) -> list[str]:
    """`streamlit run streamlit_app.py` as the tests run it: headless, on 127.0.0.1, static
    files served (also set in .streamlit/config.toml; repeated so a run never depends on
    that file), and only `secrets_file` as secrets (never the repo's own)."""
    return [
        "run",
        "streamlit_app.py",
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--server.enableStaticServing",
        "true",
        "--secrets.files",
        str(secrets_file),
    ]


def is_healthy(url: str) -> bool:
    """Whether the Streamlit server at `url` says it is ready (its health check answers
    200 "ok" only then; 503 while it starts or stops)."""
    return is_up(f"{url}/_stcore/health")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate, then kill if it will not go: as `deploy.stack` stops its processes."""
    stop_process(process)

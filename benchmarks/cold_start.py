"""Cold start: from `streamlit run` to the first fully rendered gallery in headless Chromium.

    .venv/bin/python benchmarks/cold_start.py [--repeat 3] [--images 4000]

A temporary SQLite database is seeded with 200 LoRAs and `--images` images
(benchmarks/seed.py). Each run starts `streamlit run streamlit_app.py` with the flags the
browser tests use (tests/browser/conftest.py) on a free loopback port, polls
`/_stcore/health` until the server answers (**server ready**), then opens `/` in an already
launched headless Chromium and waits until the gallery shows its first page: 24 LoRA cards,
the last card's title and the pager (**first render**, from the `streamlit run` start;
**page** = first render minus server ready). **Warm page** opens the gallery again in a new
tab on the same server: what a second visitor waits. Medians over `--repeat` runs; goal:
first render under 3 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.seed import seeded_engine, temporary_url  # noqa: E402
from lora_core.settings import Settings  # noqa: E402
from tests.support.appserver import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    is_healthy,
    stop,
    streamlit_flags,
)
from tests.support.net import free_port  # noqa: E402

LORAS = 200
TIMEOUT_SECONDS = 60.0
PAGE_SIZE = 24  # as app_pages/gallery.py
# Every LoRA card is a `.ls-lora-card` with its LoRA's id (`data-lora`) whose title is a
# heading (a `role="heading"` of `ui.components.lora_card`); newest first, so lora-0023 ends the
# first page, followed by the pager.
FIRST_PAGE_JS = """([count, last]) => {
    const cards = document.querySelectorAll('.ls-lora-card');
    const title = document.querySelector(`.ls-lora-card[data-lora="${last}"] [role="heading"]`);
    const pager = document.querySelector('.st-key-gallery_page');
    return cards.length >= count && title !== null && title.textContent.includes('style')
        && pager !== null;
}"""


def open_gallery(browser, url: str) -> None:  # noqa: ANN001
    """Open the gallery in a fresh context and wait for its first page."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(url, wait_until="commit", timeout=TIMEOUT_SECONDS * 1000)
        page.wait_for_function(
            FIRST_PAGE_JS,
            arg=[PAGE_SIZE, f"lora-{PAGE_SIZE - 1:04d}"],
            polling="raf",
            timeout=TIMEOUT_SECONDS * 1000,
        )
    finally:
        context.close()


def one_run(browser, work: Path, database_url: str) -> tuple[float, float, float]:  # noqa: ANN001
    """(server ready, first render, warm page) in seconds."""
    secrets_file = work / "secrets.toml"  # the repo's own secrets never apply
    secrets_file.write_text("")
    setting_names = {name.upper() for name in Settings.model_fields}
    env = {name: value for name, value in os.environ.items() if name not in setting_names}
    env.update(
        DATABASE_URL=database_url,
        MEDIA_DIR=str(work / "media"),
        PYTHONUNBUFFERED="1",
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = work / f"streamlit-{port}.log"
    with log_path.open("wb") as log:
        start = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", *streamlit_flags(port, secrets_file)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        while not is_healthy(url):
            if process.poll() is not None or time.perf_counter() - start > TIMEOUT_SECONDS:
                raise RuntimeError(f"streamlit did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.02)
        ready = time.perf_counter() - start
        open_gallery(browser, url)
        rendered = time.perf_counter() - start
        warm_start = time.perf_counter()
        open_gallery(browser, url)
        warm = time.perf_counter() - warm_start
    finally:
        stop(process)
    return ready, rendered, warm


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--images", type=int, default=4_000)
    args = parser.parse_args()
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    print(f"machine: {cores} cores ({usable} usable), Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as directory, sync_playwright() as playwright:
        database_url = temporary_url(directory, "cold-start")
        seeded_engine(database_url, images=args.images, loras=LORAS).dispose()
        print(f"database: SQLite, {LORAS} LoRAs, {args.images:,} images")
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        print(f"{'run':<5} {'ready s':>8} {'first render s':>15} {'page s':>7} {'warm page s':>12}")
        runs = []
        try:
            for number in range(1, args.repeat + 1):
                ready, rendered, warm = one_run(browser, Path(directory), database_url)
                runs.append((ready, rendered, warm))
                print(
                    f"{number:<5} {ready:8.2f} {rendered:15.2f} {rendered - ready:7.2f} "
                    f"{warm:12.2f}"
                )
        finally:
            browser.close()
    ready, rendered, warm = (statistics.median(column) for column in zip(*runs, strict=True))
    print(
        f"{'median':<5} {ready:8.2f} {rendered:15.2f} {rendered - ready:7.2f} {warm:12.2f}"
        f"   ready share {ready / rendered:.0%}"
    )
    print("goal: first render (from `streamlit run`) under 3 s")


if __name__ == "__main__":
    main()

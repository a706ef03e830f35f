"""Screenshots of every page at 1400 and 390 px, for `docs/screenshots/` and the README.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Starts the app on the demo data (a temporary database, preview images, no fal key) and
photographs the first screen of each page in headless Chromium, as a person opening it
on a desktop and on a phone would see it. Needs `./scripts/setup.sh --test` (Chromium).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

from deploy.stack import free_port, stop_process  # noqa: E402
from tests.support.appserver import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

WIDTHS = {1400: 900, 390: 844}  # width: height of the first screen
COMPARE = "compare?compare_loras=wtrclr&compare_loras=clayfig&compare_prompt=a+fox+reading+a+book"


def start_app(database: Path, media: str) -> tuple[subprocess.Popen[bytes], str]:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database}",
        "MEDIA_DIR": str(ROOT / "static" / "media" / media),
        "MEDIA_URL_PREFIX": f"app/static/media/{media}",
        "FAL_KEY": "",
    }
    subprocess.run([sys.executable, "-m", "lora_core.cli.demo", "--force"], env=env, check=True)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless",
         "true", "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _attempt in range(100):
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as response:
                if response.read() == b"ok":
                    return process, url
        except OSError:
            time.sleep(0.2)
    stop_process(process)
    raise SystemExit("the app did not start")


def settle(page: Page) -> None:
    """Streamlit finished the run and every image on screen has loaded."""
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=15_000)
    page.wait_for_function(
        "[...document.images].every(img => img.loading === 'lazy' || img.complete)"
    )
    page.wait_for_timeout(600)


def open_details(page: Page) -> None:
    """A LoRA page with its first image's details open (clicked again if the first click
    landed while Streamlit was still drawing the card)."""
    page.goto("/lora?id=demo-watercolor")
    large = page.get_by_role("dialog").locator("figure.ls-large img")
    for _attempt in range(3):
        settle(page)
        page.locator("figure.ls-card a.ls-open").first.click()
        try:
            expect(large).to_be_visible(timeout=3_000)
            return
        except AssertionError:
            continue
    expect(large).to_be_visible()


def shoot(page: Page, out: Path, name: str, width: int) -> None:
    settle(page)
    page.screenshot(path=out / f"{name}-{width}.png")
    print(f"{name}-{width}.png")


def photograph(url: str, out: Path) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for width, height in WIDTHS.items():
            page = browser.new_page(base_url=url, viewport={"width": width, "height": height})
            for name, path in (
                ("gallery", "/"),
                ("lora", "/lora?id=demo-watercolor"),
                ("history", "/history"),
                ("compare", f"/{COMPARE}"),
                ("train", "/train"),
            ):
                page.goto(path)
                expect(page.locator("h1").first).to_be_visible(timeout=15_000)
                shoot(page, out, name, width)
            open_details(page)
            shoot(page, out, "image-details", width)
            page.goto("/lab")  # the sweep form first, then the demo's sweep
            expect(page.get_by_role("button", name="Start sweep")).to_be_visible()
            shoot(page, out, "lab", width)
            link = page.get_by_role("link", name=re.compile("a lighthouse on a cliff.*3×2"))
            page.goto(link.get_attribute("href") or "/lab")  # as a shared link opens it
            page.mouse.move(0, 0)
            expect(page.locator(".ls-sweep figure.ls-card img")).to_have_count(6)
            shoot(page, out, "sweep", width)
            page.goto("/lab?suite_lora=demo-watercolor")  # a LoRA's "Run a suite"
            expect(page.get_by_role("button", name="Run the suite").first).to_be_visible()
            shoot(page, out, "suites", width)
            if width == max(WIDTHS):  # one run is enough: the phone opens its grid
                page.get_by_role("button", name="Run the suite").first.click()
                expect(page).to_have_url(re.compile(r"sweep=\w+"), timeout=15_000)
                run_url = page.url
            page.goto(run_url)
            expect(page.locator(".ls-sweep figure.ls-card img")).to_have_count(6, timeout=30_000)
            shoot(page, out, "suite-run", width)
            page.goto("/lora?id=demo-claymation")
            page.locator(".st-key-open_generate button").click()
            expect(page.get_by_role("dialog").get_by_role("textbox")).to_be_focused()
            shoot(page, out, "generate-dialog", width)
            page.close()
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    arguments = parser.parse_args()
    arguments.out.mkdir(parents=True, exist_ok=True)
    media = f"screenshots-{os.getpid()}"
    with tempfile.TemporaryDirectory() as folder:
        process, url = start_app(Path(folder) / "demo.sqlite", media)
        try:
            photograph(url, arguments.out)
        finally:
            stop_process(process)
            shutil.rmtree(ROOT / "static" / "media" / media, ignore_errors=True)


if __name__ == "__main__":
    main()

"""A quick demo on Streamlit Community Cloud: the repository's tracked files alone (no
setup script, no secrets, nothing configured), started with `streamlit run
streamlit_app.py`. The first visitors see demo LoRAs with pictures, and a preview generation
works, even when two processes start on the same empty disk at once."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import REPO_ROOT
from tests.conftest import SETTING_NAMES
from tests.support.appserver import is_healthy, stop
from tests.support.net import free_port

DEMO_TITLES = ("wtrclr", "neonnoir", "clayfig", "blprnt", "inktrain")


def tracked_files_copy(target: Path) -> Path:
    """What Cloud clones: the repository's tracked files, and nothing else (no .venv, no
    data/, no static/media, no secrets)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def start_like_cloud(app_dir: Path, home: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`streamlit run streamlit_app.py` in the checkout, no setting in the environment."""
    env = {name: value for name, value in os.environ.items() if name not in SETTING_NAMES}
    env.update(HOME=str(home), PYTHONUNBUFFERED="1")  # no ~/.streamlit of this machine
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
         "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1"],
        cwd=app_dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return process, f"http://127.0.0.1:{port}"


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    """Two app processes started at the same moment on one fresh checkout."""
    app_dir = tracked_files_copy(tmp_path / "app")
    home = tmp_path / "home"
    home.mkdir()
    started = [start_like_cloud(app_dir, home) for _ in range(2)]
    try:
        deadline = time.monotonic() + 60
        for process, url in started:
            while not is_healthy(url):
                assert process.poll() is None, "the app exited"
                assert time.monotonic() < deadline, "the app never became healthy"
                time.sleep(0.2)
        yield app_dir, [url for _process, url in started]
    finally:
        for process, _url in started:
            stop(process)


def open_gallery(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.get_by_role("heading", name="LoRA Gallery")).to_be_visible(timeout=60_000)


def test_a_quick_demo_on_cloud_shows_loras_with_pictures_and_generates(
    cloud: tuple[Path, list[str]], browser: Browser
) -> None:
    app_dir, urls = cloud
    # Both processes' first visitors arrive together: each process fills the empty default
    # database as it builds its parts; only one of them may.
    pages = [browser.new_page(viewport={"width": 1400, "height": 900}) for _ in urls]
    for page, url in zip(pages, urls, strict=True):
        page.goto(url)
    for page in pages:
        expect(page.get_by_role("heading", name="LoRA Gallery")).to_be_visible(timeout=60_000)
    page = pages[0]
    for title in DEMO_TITLES:
        expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()
    expect(page.get_by_text("No LoRAs yet")).to_have_count(0)
    page.wait_for_function(
        """() => {
            const images = [...document.querySelectorAll('figure.ls-card img')];
            return images.length >= 3 && images.every(img => img.complete && img.naturalWidth);
        }""",
        timeout=30_000,
    )
    with closing(sqlite3.connect(app_dir / "data" / "lora_studio.db")) as connection:
        assert connection.execute("SELECT count(*) FROM lora_trainings").fetchone()[0] == 5
        assert connection.execute("SELECT count(*) FROM generated_images").fetchone()[0] == 18

    page.goto(f"{urls[1]}/lora?id=demo-blueprint")  # the other process
    page.locator(".st-key-open_generate button").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("textbox", name="Prompt").fill("a harbour at dawn")
    dialog.get_by_role("button", name="Generate 4 Images").click()
    expect(dialog.locator("figure.ls-result img")).to_have_count(4, timeout=30_000)
    page.wait_for_function(
        """() => [...document.querySelectorAll('[role=dialog] figure.ls-result img')]
                 .every(img => img.complete && img.naturalWidth > 0)"""
    )
    for page in pages:
        page.close()

"""Page weight and time to images: a LoRA's page of 24 images, full images vs thumbnails.

    .venv/bin/python benchmarks/page_weight.py

A LoRA with 24 images of real size (1024 x 1024 JPEGs of about 200 KB, as fal returns them)
is stored in the local media folder twice over: once as everything stored before thumbnails
(**full**: grids load the images themselves), once with thumbnails (**thumbnails**). For
each, a fresh app (`streamlit run`, the browser tests' flags) and a fresh Chromium context:
Streamlit's own assets are loaded first by opening a page without images (a **warm
cache**), then the LoRA's page is opened and Chromium's DevTools protocol counts every byte
it receives (HTTP bodies and headers as sent, WebSocket frames):

- **first screen**: bytes until every image in the 1400 x 900 viewport has loaded;
- **whole page**: bytes once the page is scrolled to its end and all 24 have loaded
  (they load lazily); goal <= 1 MB with thumbnails.

Then the same on a throttled network ("Fast 3G": 562 ms latency, 1.44 Mbit/s down), in a new
context with a warm cache: seconds from opening the page to its first image, and to the
first screen's images all loaded, against the same page of a LoRA without images (**no
images**: the heading drawn). Goal: the first screen within 2 x the page with no images.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PIL import Image, ImageFilter  # noqa: E402

from lora_core import thumbnails  # noqa: E402
from lora_core.data.clock import to_iso, utc_now  # noqa: E402
from lora_core.data.db import create_db_engine, session_scope  # noqa: E402
from lora_core.data.models import GeneratedImage, LoraStatus, LoraTraining  # noqa: E402
from lora_core.data.schema import ensure_schema  # noqa: E402
from lora_core.settings import Settings  # noqa: E402
from lora_core.storage import LocalMediaStore  # noqa: E402
from tests.support.appserver import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    is_healthy,
    stop,
    streamlit_flags,
)
from tests.support.net import free_port  # noqa: E402

IMAGES = 24
VIEWPORT = {"width": 1400, "height": 900}
FAST_3G = {
    "offline": False,
    "latency": 562.5,
    "downloadThroughput": 1.44 * 1024 * 1024 / 8,
    "uploadThroughput": 675 * 1024 / 8,
}
TIMEOUT_MS = 180_000

SCREEN_LOADED_JS = """() => {
    const images = [...document.querySelectorAll('figure.ls-card img')];
    const onScreen = images.filter(i => i.getBoundingClientRect().top < window.innerHeight);
    return onScreen.length > 0 && onScreen.every(i => i.complete && i.naturalWidth > 0);
}"""
FIRST_IMAGE_JS = """() => [...document.querySelectorAll('figure.ls-card img')]
    .some(i => i.complete && i.naturalWidth > 0)"""
ALL_LOADED_JS = """(count) => {
    const images = [...document.querySelectorAll('figure.ls-card img')];
    const waiting = images.filter(i => !(i.complete && i.naturalWidth > 0));
    if (waiting.length) waiting[0].scrollIntoView({block: 'center'});
    return images.length >= count && waiting.length === 0;
}"""


def fal_like_jpeg(seed: int) -> bytes:
    """A 1024 x 1024 JPEG of about 200 KB: soft shapes and grain, like a generated image."""
    rng = random.Random(seed)
    image = Image.effect_noise((1024, 1024), 48).convert("RGB")
    tint = Image.new("RGB", (1024, 1024), tuple(rng.randrange(40, 220) for _ in range(3)))
    image = Image.blend(image, tint, 0.55).filter(ImageFilter.GaussianBlur(1.1))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92)
    return out.getvalue()


def seed(database_url: str, store: LocalMediaStore, *, with_thumbnails: bool) -> int:
    """A LoRA with 24 images (and one with none); the images' total size in bytes."""
    engine = create_db_engine(database_url)
    ensure_schema(engine)
    total = 0
    with session_scope(engine) as session:
        for lora_id in ("bench", "empty"):
            session.add(
                LoraTraining(
                    id=lora_id, request_id=f"bench-{lora_id}", user="ann",
                    trigger_word=lora_id, steps=1000, status=LoraStatus.COMPLETED,
                    lora_weights_url="https://example.invalid/w.safetensors",
                    created_at=to_iso(utc_now()),
                )
            )  # fmt: skip
        for number in range(IMAGES):
            data = fal_like_jpeg(number)
            total += len(data)
            url = store.save(f"bench/{number}.jpg", data)
            thumbnail = (
                store.save(
                    f"bench/{number}.thumb.webp",
                    thumbnails.make(data),
                    content_type=thumbnails.CONTENT_TYPE,
                )
                if with_thumbnails
                else None
            )
            session.add(
                GeneratedImage(
                    id=f"img-{number:02d}", lora_training_id="bench", user="ann",
                    prompt=f"image {number}", image_url=url, thumbnail_url=thumbnail,
                    image_width=1024, image_height=1024,
                    created_at=to_iso(utc_now()), batch_id=f"batch-{number // 4}",
                )
            )  # fmt: skip
        session.commit()
    engine.dispose()
    return total


class Bytes:
    """Every byte Chromium receives for one page, from the DevTools protocol."""

    def __init__(self, cdp) -> None:  # noqa: ANN001
        self.total = 0
        cdp.send("Network.enable")
        cdp.on("Network.loadingFinished", self._http)
        cdp.on("Network.webSocketFrameReceived", self._frame)

    def _http(self, event: dict) -> None:
        self.total += int(event.get("encodedDataLength", 0))

    def _frame(self, event: dict) -> None:
        self.total += len(event["response"].get("payloadData", ""))


def weigh(browser, url: str) -> tuple[int, int]:  # noqa: ANN001
    """(first screen bytes, whole page bytes) of the LoRA's page, Streamlit's assets warm."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.goto(f"{url}/lora?id=empty")  # Streamlit's scripts and styles into the cache
        page.get_by_role("heading", name="empty").wait_for(timeout=TIMEOUT_MS)
        page.close()
        page = context.new_page()
        counter = Bytes(context.new_cdp_session(page))
        page.goto(f"{url}/lora?id=bench")
        page.wait_for_function(SCREEN_LOADED_JS, polling=100, timeout=TIMEOUT_MS)
        first_screen = counter.total
        page.wait_for_function(ALL_LOADED_JS, arg=IMAGES, polling=200, timeout=TIMEOUT_MS)
        return first_screen, counter.total
    finally:
        context.close()


def timings(browser, url: str) -> tuple[float, float, float]:  # noqa: ANN001
    """Seconds on Fast 3G with a warm cache: (no images page, first image, first screen)."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.goto(f"{url}/history?lora=none")  # Streamlit's assets, and no images
        page.get_by_role("heading", name="History").wait_for(timeout=TIMEOUT_MS)
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", FAST_3G)
        start = time.perf_counter()
        page.goto(f"{url}/lora?id=empty")
        page.get_by_role("heading", name="empty").wait_for(timeout=TIMEOUT_MS)
        no_images = time.perf_counter() - start
        start = time.perf_counter()
        page.goto(f"{url}/lora?id=bench")
        page.wait_for_function(FIRST_IMAGE_JS, polling="raf", timeout=TIMEOUT_MS)
        first = time.perf_counter() - start
        page.wait_for_function(SCREEN_LOADED_JS, polling="raf", timeout=TIMEOUT_MS)
        screen = time.perf_counter() - start
        return no_images, first, screen
    finally:
        context.close()


def serve(work: Path, database_url: str, media: Path, prefix: str) -> tuple[str, object]:
    secrets_file = work / "secrets.toml"  # the repo's own secrets never apply
    secrets_file.write_text("")
    names = {name.upper() for name in Settings.model_fields}
    env = {name: value for name, value in os.environ.items() if name not in names}
    env.update(DATABASE_URL=database_url, MEDIA_DIR=str(media), MEDIA_URL_PREFIX=prefix)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", *streamlit_flags(port, secrets_file)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not is_healthy(url):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("streamlit did not start")
        time.sleep(0.05)
    return url, process


def measure(browser, directory: Path, mode: str, how):  # noqa: ANN001, ANN201
    """`how(browser, url)` on a fresh app over a freshly stored LoRA; (bytes stored, result)."""
    token = secrets.token_hex(4)
    media = ROOT / "static" / "media" / f"bench-{token}"
    prefix = f"app/static/media/bench-{token}"
    work = directory / token
    work.mkdir()
    database_url = f"sqlite:///{work / 'bench.db'}"
    try:
        stored = seed(
            database_url, LocalMediaStore(media, prefix), with_thumbnails=mode == "thumbnails"
        )
        url, process = serve(work, database_url, media, prefix)
        try:
            return stored, how(browser, url)
        finally:
            stop(process)
    finally:
        shutil.rmtree(media, ignore_errors=True)


def main() -> None:
    from playwright.sync_api import sync_playwright

    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as directory, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for mode in ("full", "thumbnails"):
                # A fresh database and app for each measure: a grid that meets an image
                # without a thumbnail has one made, so "full" holds for one first view only.
                stored, (first_screen, whole) = measure(browser, Path(directory), mode, weigh)
                _stored, (no_images, first, screen) = measure(
                    browser, Path(directory), mode, timings
                )
                rows.append((mode, stored, first_screen, whole, no_images, first, screen))
        finally:
            browser.close()
    print(f"24 images of {rows[0][1] / IMAGES / 1024:.0f} KB on average; a warm cache\n")
    print("| grids show | first screen KB | whole page KB | Fast 3G: no images s "
          "| first image s | first screen s | first screen / no images |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for mode, _stored, first_screen, whole, no_images, first, screen in rows:
        print(
            f"| {mode} | {first_screen / 1024:,.0f} | {whole / 1024:,.0f} | {no_images:.1f} "
            f"| {first:.1f} | {screen:.1f} | {screen / no_images:.1f} |"
        )
    full, thumbs = rows
    ratio = thumbs[3] / full[3]
    print(f"\nwhole page: thumbnails / full = {ratio:.2f}; goal <= 1 MB with thumbnails")


if __name__ == "__main__":
    main()

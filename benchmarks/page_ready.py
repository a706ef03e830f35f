"""Page ready against the floor: how long a page takes in a real browser, next to the
simplest Streamlit page there is, in one run.

    .venv/bin/python benchmarks/page_ready.py [--repeat 5]

The **floor** is a Streamlit page that shows one image (`st.image` of one thumbnail),
served by the same Streamlit with the app's flags and `.streamlit/config.toml`, from a
second process on this machine. The app's pages are served from a database of six LoRAs
(one with 24 images in six batches, five with four), a finished 3 x 3 sweep, every image
stored locally with its thumbnail, as the app stores them:

- **gallery** (`/`), **LoRA page** (`/lora?id=bench`, its 24 images), **History**
  (`/history`), **sweep** (the Lab's grid of the sweep, `/lab?sweep=…`).

One headless Chromium at 1400 x 900, Streamlit's assets warm (each page opened once
first). Each measure opens the page in a new tab (a new Streamlit session, as a link
followed or a reload does) and times from asking for it to **ready**: the script
finished (`data-test-script-state="notRunning"`) and every image on the first screen
drawn. The pages take turns, `--repeat` rounds; medians. With each page: the WebSocket
messages the browser received and the elements drawn (`stElementContainer`), per render.

Goal (issue #35): each page's median <= 1.5 x the floor's.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.page_weight import fal_like_jpeg  # noqa: E402
from lora_core import thumbnails  # noqa: E402
from lora_core.data.clock import to_iso, utc_now  # noqa: E402
from lora_core.data.db import create_db_engine, session_scope  # noqa: E402
from lora_core.data.models import (  # noqa: E402
    BatchStatus,
    GeneratedImage,
    GenerationBatch,
    LoraStatus,
    LoraTraining,
    Sweep,
)
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

VIEWPORT = {"width": 1400, "height": 900}
TIMEOUT_MS = 60_000
SWEEP_ID = "bench-sweep"

FLOOR_SCRIPT = """import os

import streamlit as st

st.image(os.environ["FLOOR_IMAGE"], caption="one image")
"""

# Ready: the script finished, and every image on the first screen drawn (History's
# previews in its table too).
READY_JS = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
    const main = document.querySelector('[data-testid="stMain"]');
    const images = [...main.querySelectorAll('img')];
    const onScreen = images.filter(i => i.getBoundingClientRect().top < window.innerHeight);
    return onScreen.length > 0 && onScreen.every(i => i.complete && i.naturalWidth > 0);
}"""
ELEMENTS_JS = "() => document.querySelectorAll('[data-testid=\"stElementContainer\"]').length"


@dataclass
class Measure:
    seconds: list[float]
    messages: list[int]
    elements: list[int]


def seed(database_url: str, store: LocalMediaStore) -> Path:
    """The LoRAs, batches, images and sweep above; the path of one thumbnail (the floor's)."""
    engine = create_db_engine(database_url)
    ensure_schema(engine)
    now = utc_now()
    thumb_path: Path | None = None
    counter = iter(range(10_000))

    def image_row(lora_id: str, batch_id: str, prompt: str, minutes: int) -> GeneratedImage:
        nonlocal thumb_path
        number = next(counter)
        data = fal_like_jpeg(number)
        url = store.save(f"ready/{number}.jpg", data)
        thumb = store.save(f"ready/{number}.thumb.webp", thumbnails.make(data),
                           content_type=thumbnails.CONTENT_TYPE)  # fmt: skip
        if thumb_path is None:
            thumb_path = store.root / f"ready/{number}.thumb.webp"
        return GeneratedImage(
            id=f"img-{number:03d}", lora_training_id=lora_id, user="ann@example.com",
            prompt=prompt, image_url=url, thumbnail_url=thumb, image_width=1024,
            image_height=1024, created_at=to_iso(now - timedelta(minutes=minutes)),
            batch_id=batch_id, seed=str(number),
        )  # fmt: skip

    def batch_row(
        batch_id: str, lora_id: str, prompt: str, minutes: int, **cell: object
    ) -> GenerationBatch:
        return GenerationBatch(
            id=batch_id, lora_training_id=lora_id, user="ann@example.com", prompt=prompt,
            status=BatchStatus.SUCCEEDED, created_at=to_iso(now - timedelta(minutes=minutes)),
            lora_scale=1.0, num_inference_steps=28, guidance_scale=3.5, image_size="square_hd",
            num_images=4 if not cell else 1, **cell,
        )  # fmt: skip

    with session_scope(engine) as session:
        loras = ["bench"] + [f"style-{n}" for n in range(5)]
        for number, lora_id in enumerate(loras):
            session.add(
                LoraTraining(
                    id=lora_id, request_id=f"req-{lora_id}", user="ann@example.com",
                    trigger_word=lora_id.replace("-", ""), steps=1000,
                    status=LoraStatus.COMPLETED,
                    lora_weights_url="https://example.invalid/w.safetensors",
                    created_at=to_iso(now - timedelta(days=10, minutes=number)),
                )
            )  # fmt: skip
        minutes = 0
        for lora_id in loras:
            for batch in range(6 if lora_id == "bench" else 1):
                minutes += 5
                batch_id = f"batch-{lora_id}-{batch}"
                prompt = f"a lighthouse on a cliff, take {batch}"
                session.add(batch_row(batch_id, lora_id, prompt, minutes))
                for _ in range(4):
                    session.add(image_row(lora_id, batch_id, prompt, minutes))
        session.add(
            Sweep(id=SWEEP_ID, user="ann@example.com", lora_training_id="bench",
                  prompt="a red fox", x_kind="scale", x_values="[0.5, 0.75, 1.0]",
                  y_kind="seed", y_values='["1", "2", "3"]', lora_scale=1.0,
                  num_inference_steps=28, guidance_scale=3.5, image_size="square_hd",
                  seed="7", created_at=to_iso(now - timedelta(minutes=1)))
        )  # fmt: skip
        for y in range(3):
            for x in range(3):
                batch_id = f"cell-{x}-{y}"
                session.add(batch_row(batch_id, "bench", "a red fox", 1, sweep_id=SWEEP_ID,
                                      sweep_x=x, sweep_y=y))  # fmt: skip
                session.add(image_row("bench", batch_id, "a red fox", 1))
        session.commit()
    engine.dispose()
    assert thumb_path is not None
    return thumb_path


def serve(work: Path, script: str, env_extra: dict[str, str]) -> tuple[str, subprocess.Popen]:
    """`script` under `streamlit run`, with the app's flags, from the repo (its config)."""
    secrets_file = work / "secrets.toml"  # the repo's own secrets never apply
    secrets_file.write_text("")
    names = {name.upper() for name in Settings.model_fields}
    env = {name: value for name, value in os.environ.items() if name not in names}
    env.update(env_extra)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    flags = streamlit_flags(port, secrets_file)
    flags[flags.index("streamlit_app.py")] = script
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", *flags], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not is_healthy(url):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"streamlit did not start: {script}")
        time.sleep(0.05)
    return url, process


def open_once(context, url: str) -> tuple[float, int, int]:  # noqa: ANN001
    """(seconds to ready, WebSocket messages received, elements drawn) in a new tab."""
    page = context.new_page()
    frames = [0]
    page.on(
        "websocket",
        lambda ws: ws.on("framereceived", lambda _f: frames.__setitem__(0, frames[0] + 1)),
    )
    try:
        start = time.perf_counter()
        page.goto(url)
        try:
            page.wait_for_function(READY_JS, polling="raf", timeout=TIMEOUT_MS)
        except Exception:
            page.screenshot(path=ROOT / "test-output" / "page_ready_timeout.png")
            raise RuntimeError(f"not ready: {url}") from None
        seconds = time.perf_counter() - start
        return seconds, frames[0], int(page.evaluate(ELEMENTS_JS))
    finally:
        page.close()


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", nargs="*", help="pages to measure besides the floor")
    args = parser.parse_args()
    token = secrets.token_hex(4)
    media = ROOT / "static" / "media" / f"ready-{token}"
    prefix = f"app/static/media/ready-{token}"
    processes = []
    try:
        with tempfile.TemporaryDirectory() as directory, sync_playwright() as playwright:
            work = Path(directory)
            database_url = f"sqlite:///{work / 'ready.db'}"
            thumb = seed(database_url, LocalMediaStore(media, prefix))
            (work / "floor.py").write_text(FLOOR_SCRIPT)
            floor_url, floor = serve(work, str(work / "floor.py"), {"FLOOR_IMAGE": str(thumb)})
            app_url, app = serve(work, "streamlit_app.py", {
                "DATABASE_URL": database_url, "MEDIA_DIR": str(media),
                "MEDIA_URL_PREFIX": prefix, "RECOVERY_SWEEP_SECONDS": "0",
            })  # fmt: skip
            processes += [floor, app]
            pages = {
                "floor": floor_url,
                "gallery": f"{app_url}/",
                "LoRA page (24 images)": f"{app_url}/lora?id=bench",
                "History": f"{app_url}/history",
                "sweep grid": f"{app_url}/lab?sweep={SWEEP_ID}",
            }
            if args.only:
                pages = {k: v for k, v in pages.items() if k == "floor" or k in args.only}
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport=VIEWPORT)
            for url in pages.values():  # assets, and each page's first run, warm
                open_once(context, url)
                open_once(context, url)
            measures = {name: Measure([], [], []) for name in pages}
            for _ in range(args.repeat):
                for name, url in pages.items():
                    seconds, messages, elements = open_once(context, url)
                    measures[name].seconds.append(seconds)
                    measures[name].messages.append(messages)
                    measures[name].elements.append(elements)
            browser.close()
    finally:
        for process in processes:
            stop(process)
        shutil.rmtree(media, ignore_errors=True)
    floor_ms = statistics.median(measures["floor"].seconds) * 1000
    print(f"median of {args.repeat}, 1400 x 900, a new tab each time, assets warm\n")
    print("| page | ready ms | / floor | messages | elements |")
    print("| --- | --- | --- | --- | --- |")
    for name, measure in measures.items():
        ms = statistics.median(measure.seconds) * 1000
        print(
            f"| {name} | {ms:.0f} | {ms / floor_ms:.2f} | "
            f"{statistics.median(measure.messages):.0f} | "
            f"{statistics.median(measure.elements):.0f} |"
        )
    print("\ngoal: every page <= 1.5 x the floor")


if __name__ == "__main__":
    main()

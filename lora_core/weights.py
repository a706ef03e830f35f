"""A LoRA's weights: our durable copy of fal's files, and the URL fal is given to generate.

fal's media expires, and a LoRA whose weights URL has expired is dead. So when a training
completes (or a LoRA is registered with "keep a copy", or `python -m lora_core.repair`
runs), the weights and the training's config file are copied into our store; fal's URL
stays in `lora_weights_url` as the original. Generating then gives fal a URL it can
download: fal's while it answers, else our copy when the store is public (an S3 bucket with
a public URL; a local folder serves only this app's pages). When neither works,
`WeightsUnavailable` says exactly that before a slot is spent.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import Engine, update
from sqlmodel import col

from lora_core import storage
from lora_core.db import session_scope
from lora_core.errors import WeightsUnavailable
from lora_core.models import LoraTraining

MAX_WEIGHTS_BYTES = 2 * 1024**3
DOWNLOAD_TIMEOUT_SECONDS = 60
PROBE_SECONDS = 5
# A weights URL's answer is asked again after this long (per process).
PROBE_CACHE_SECONDS = 300
_probed: dict[str, tuple[float, bool | None]] = {}

NO_COPY = (
    "This LoRA's weights have expired on fal and no copy of them was kept, so images "
    "can't be generated from it."
)
LOCAL_COPY = (
    "This LoRA's weights have expired on fal. LoRA Studio keeps a copy, but in its local "
    "media folder, which fal cannot download from: store media in an S3 bucket with a "
    "public URL (STORAGE_BACKEND=s3) to generate from the copy."
)


def copy_files(*, engine: Engine, store: storage.MediaStore, lora: LoraTraining) -> LoraTraining:
    """Copy the LoRA's weights (and its training's config file) into `store` and record our
    URLs. A file that cannot be fetched now is left without a copy (`repair` tries again);
    nothing is raised for it. Returns the LoRA as stored afterwards."""
    values: dict[str, str] = {}
    for source, column, name in (
        (lora.lora_weights_url, "weights_copy_url", "weights.safetensors"),
        (lora.config_url, "config_copy_url", "config.json"),
    ):
        if source and storage.is_remote(source) and getattr(lora, column) is None:
            copy = _copy(store, source, f"loras/{lora.id}/{name}")
            if copy is not None:
                values[column] = copy
    if not values:
        return lora
    with session_scope(engine) as session:
        session.execute(
            update(LoraTraining).where(col(LoraTraining.id) == lora.id).values(**values)
        )
        session.commit()
        stored = session.get(LoraTraining, lora.id)
    assert stored is not None
    return stored


def _copy(store: storage.MediaStore, url: str, relative_path: str) -> str | None:
    """Stream `url` to a temporary file, then into the store; None when either fails."""
    with tempfile.TemporaryDirectory(prefix="lora-studio-weights-") as folder:
        path = Path(folder) / "download"
        try:
            with (
                httpx.stream(
                    "GET", url, timeout=DOWNLOAD_TIMEOUT_SECONDS, follow_redirects=True
                ) as response,
                path.open("wb") as file,
            ):
                response.raise_for_status()
                for chunk in response.iter_bytes():
                    if file.tell() + len(chunk) > MAX_WEIGHTS_BYTES:
                        return None
                    file.write(chunk)
            content_type = (
                "application/json"
                if relative_path.endswith(".json")
                else "application/octet-stream"
            )
            return store.save_file(relative_path, path, content_type=content_type)
        except (httpx.HTTPError, OSError, ValueError):
            return None


def answers(url: str) -> bool | None:
    """Whether `url` still serves its file: True (2xx/3xx), False (a 4xx: gone, expired or
    refused), None (no answer here, which says nothing of what fal can reach). Asked once
    per `PROBE_CACHE_SECONDS` per URL."""
    now = time.monotonic()
    cached = _probed.get(url)
    if cached is not None and now - cached[0] < PROBE_CACHE_SECONDS:
        return cached[1]
    try:
        with httpx.Client(timeout=PROBE_SECONDS, follow_redirects=True) as client:
            response = client.head(url)
            if response.status_code in (403, 405, 501):  # some hosts only answer GET
                response = client.get(url, headers={"Range": "bytes=0-0"})
        answer: bool | None = response.status_code < 400
    except (httpx.HTTPError, httpx.InvalidURL):
        answer = None
    _probed[url] = (now, answer)
    return answer


def forget_answers() -> None:
    """Ask every URL afresh (tests; an operator who fixed a host)."""
    _probed.clear()


def url_for_fal(lora: LoraTraining) -> str:
    """The weights URL to give fal: fal's own while it answers (or cannot be asked from
    here), else our copy when fal can download it; WeightsUnavailable otherwise."""
    original = lora.lora_weights_url or ""
    if original and answers(original) is not False:
        return original
    copy = lora.weights_copy_url
    if copy and storage.is_remote(copy):
        return copy
    raise WeightsUnavailable(LOCAL_COPY if copy else NO_COPY)

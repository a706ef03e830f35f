"""A LoRA's weights: our durable copy of fal's files, and the URL fal is given to generate.

fal's media expires, and a LoRA whose weights URL has expired is dead. So when a training
completes (or a LoRA is registered with "keep a copy", or `python -m lora_core.cli.repair`
runs), the weights and the training's config file are copied into our store; fal's URL
stays in `lora_weights_url` as the original. Generating then gives fal a URL it can
download: fal's while it answers, else our copy when the store is public (an S3 bucket with
a public URL; a local folder serves only this app's pages). When neither works,
`WeightsUnavailable` says exactly that before a slot is spent.
"""

from __future__ import annotations

import ipaddress
import socket
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Engine, update
from sqlmodel import col

from lora_core import storage, web
from lora_core.data.db import session_scope
from lora_core.data.models import LoraTraining
from lora_core.errors import WeightsUnavailable

MAX_WEIGHTS_BYTES = 2 * 1024**3
DOWNLOAD_TIMEOUT_SECONDS = 60
PROBE_SECONDS = 3
MAX_REDIRECTS = 5
# A weights URL's answer is asked again after this long (per process).
PROBE_CACHE_SECONDS = 300
_probed: dict[str, tuple[float, bool | None]] = {}
# Answers that say a file is gone for whoever asks: an expired signed URL (S3, GCS, fal's
# CDN) answers 403, a deleted file 404 or 410.
GONE = frozenset({403, 404, 410})

NO_COPY = (
    "This LoRA's weights have expired on fal and no copy of them was kept, so images "
    "can't be generated from it."
)
LOCAL_COPY = (
    "This LoRA's weights have expired on fal. LoRA Studio keeps a copy, but in its local "
    "media folder, which fal cannot download from: store media in an S3 bucket with a "
    "public URL (STORAGE_BACKEND=s3) to generate from the copy."
)


def copy_files(
    *,
    engine: Engine,
    store: storage.MediaStore,
    lora: LoraTraining,
    allow_private_hosts: bool = False,
) -> LoraTraining:
    """Copy the LoRA's weights (and its training's config file) into `store` and record our
    URLs. A file that cannot be fetched now is left without a copy (`repair` tries again);
    nothing is raised for it. Files on a private network (or this machine) are only
    fetched with `allow_private_hosts`, so that a stored URL cannot make the server copy
    its own network's secrets into the store. Returns the LoRA as stored afterwards."""
    values: dict[str, str] = {}
    for source, column, name in (
        (lora.lora_weights_url, "weights_copy_url", "weights.safetensors"),
        (lora.config_url, "config_copy_url", "config.json"),
    ):
        if source and storage.is_remote(source) and getattr(lora, column) is None:
            copy = _copy(store, source, f"loras/{lora.id}/{name}", allow_private_hosts)
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


def _copy(
    store: storage.MediaStore, url: str, relative_path: str, allow_private_hosts: bool
) -> str | None:
    """Stream `url` to a temporary file, then into the store; None when either fails.
    Redirects are followed by hand, each hop's host checked."""
    with (
        tempfile.TemporaryDirectory(prefix="lora-studio-weights-") as folder,
        web.client(timeout=DOWNLOAD_TIMEOUT_SECONDS) as client,
    ):
        path = Path(folder) / "download"
        try:
            for _hop in range(MAX_REDIRECTS + 1):
                if not allow_private_hosts and not _public(url):
                    return None
                with client.stream("GET", url) as response:
                    if response.is_redirect and response.next_request is not None:
                        url = str(response.next_request.url)
                        continue
                    response.raise_for_status()
                    with path.open("wb") as file:
                        for chunk in response.iter_bytes():
                            if file.tell() + len(chunk) > MAX_WEIGHTS_BYTES:
                                return None
                            file.write(chunk)
                    break
            else:
                return None
            kind = (
                "application/json"
                if relative_path.endswith(".json")
                else "application/octet-stream"
            )
            return store.save_file(relative_path, path, content_type=kind)
        except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError):
            return None


def _public(url: str) -> bool:
    """Every address the URL's host resolves to is on the public internet."""
    host = urlsplit(url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        return False
    return all(ipaddress.ip_address(str(a).split("%", 1)[0]).is_global for a in addresses)


def answers(url: str, *, allow_private_hosts: bool = False) -> bool | None:
    """Whether `url` still serves its file: True (it answers), False (403, 404 or 410: gone;
    an expired signed URL answers 403), None (anything else, or no answer from here, or a
    private host not asked: none of which says what fal can reach). Asked once per
    `PROBE_CACHE_SECONDS` per URL, for at most about `PROBE_SECONDS`."""
    now = time.monotonic()
    cached = _probed.get(url)
    if cached is not None and now - cached[0] < PROBE_CACHE_SECONDS:
        return cached[1]
    answer: bool | None = None
    if allow_private_hosts or _public(url):
        try:
            with web.client(timeout=PROBE_SECONDS) as client:
                status = client.head(url).status_code
                if status in (403, 405, 501) and time.monotonic() - now < PROBE_SECONDS:
                    status = client.get(url, headers={"Range": "bytes=0-0"}).status_code
            answer = True if status < 400 else (False if status in GONE else None)
        except (httpx.HTTPError, httpx.InvalidURL):
            answer = None
    _probed[url] = (now, answer)
    return answer


def fallback_for_fal(lora: LoraTraining, *, failed_url: str) -> str | None:
    """fal said it could not download `failed_url`: remember it as gone (no probe, cached or
    new, will offer it again for a while), and give the weights URL fal should get instead,
    our copy, when fal can download it and it is another file; None when there is none."""
    _probed[failed_url] = (time.monotonic(), False)
    copy = lora.weights_copy_url
    if copy and copy != failed_url and storage.is_remote(copy):
        return copy
    return None


def where_fal_downloads(lora: LoraTraining) -> str:
    """Which file fal is given for this LoRA, in a sentence for its page (from what is
    known now, without asking any host)."""
    original, copy = lora.lora_weights_url or "", lora.weights_copy_url
    remote_copy = bool(copy) and storage.is_remote(copy or "")
    if original and _probed.get(original, (0.0, None))[1] is False:
        if remote_copy:
            return "fal downloads our copy: the original weights URL no longer answers."
        if copy:
            return LOCAL_COPY
        return NO_COPY
    if remote_copy:
        return "fal downloads the original weights URL; if it stops answering, our copy."
    if copy:
        return (
            "fal downloads the original weights URL. Our copy is in LoRA Studio's local "
            "media folder, which fal cannot reach: once the original expires, store media in "
            "an S3 bucket with a public URL (STORAGE_BACKEND=s3) to keep generating."
        )
    return "fal downloads the original weights URL; no copy is kept."


def forget_answers() -> None:
    """Ask every URL afresh (tests; an operator who fixed a host)."""
    _probed.clear()


def url_for_fal(lora: LoraTraining, *, allow_private_hosts: bool = False) -> str:
    """The weights URL to give fal: fal's own while it answers (or cannot be asked from
    here), else our copy when fal can download it; WeightsUnavailable otherwise."""
    original = lora.lora_weights_url or ""
    if original and answers(original, allow_private_hosts=allow_private_hosts) is not False:
        return original
    copy = lora.weights_copy_url
    if copy and storage.is_remote(copy):
        return copy
    raise WeightsUnavailable(LOCAL_COPY if copy else NO_COPY)

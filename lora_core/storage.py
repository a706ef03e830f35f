"""Where images live: our own copies, and the URL that serves them.

fal's image URLs expire, so every image fal returns is copied here (4 at once) and served
from our URL; fal's URL is kept beside it. The default store is a folder under Streamlit's
static directory, so every stored image has a URL that opens in a new browser tab
(`app/static/media/...`). A copy that fails leaves fal's URL in place for `repair` to retry.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

COPY_TIMEOUT_SECONDS = 30
MAX_IMAGE_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class LocalMediaStore:
    root: Path
    url_prefix: str

    def save(self, relative_path: str, data: bytes) -> str:
        """Write `data` under the store and return the URL that serves it."""
        target = (self.root / relative_path).resolve()
        if not target.is_relative_to(self.root.resolve()):
            raise ValueError(f"path escapes the media folder: {relative_path}")
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(target.suffix + ".part")
        temporary.write_bytes(data)
        temporary.replace(target)
        return f"{self.url_prefix}/{relative_path}"

    def path_for(self, url: str) -> Path | None:
        """The file behind one of our URLs, or None for a URL we did not issue."""
        prefix = f"{self.url_prefix}/"
        if not url.startswith(prefix):
            return None
        return self.root / url.removeprefix(prefix)


def _download(client: httpx.Client, url: str) -> bytes:
    response = client.get(url)
    response.raise_for_status()
    if len(response.content) > MAX_IMAGE_BYTES:
        raise ValueError(f"{url} is larger than {MAX_IMAGE_BYTES} bytes")
    return response.content


def copy_images(store: LocalMediaStore, sources: Sequence[tuple[str, str]]) -> list[str | None]:
    """Copy each `(url, relative_path)` into `store`, all at once.

    Returns our URL for each source, or None where the copy failed (the caller keeps the
    original URL then). Never raises for a failed download.
    """
    if not sources:
        return []

    def copy(source: tuple[str, str]) -> str | None:
        url, relative_path = source
        try:
            return store.save(relative_path, _download(client, url))
        except (httpx.HTTPError, OSError, ValueError):
            return None

    with (
        httpx.Client(timeout=COPY_TIMEOUT_SECONDS, follow_redirects=True) as client,
        ThreadPoolExecutor(max_workers=len(sources)) as pool,
    ):
        return list(pool.map(copy, sources))


def is_remote(url: str) -> bool:
    return url.startswith(("https://", "http://"))

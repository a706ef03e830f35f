"""Thumbnails: the small WebP every grid shows instead of the full image.

fal's images are 1024 x 1024 JPEGs of 100-300 KB, so a grid of 24 full images costs several
megabytes before anyone clicks. A thumbnail is at most `LONG_SIDE` px on its long side, WebP
at `QUALITY` (10-25 KB), stored in the same store as its image (local folder or bucket), so
it is served the same way; `generated_images.thumbnail_url` records it. The full image is
shown only on its details view and when opened in a new tab.

Images without one (the original app's rows, everything stored before thumbnails) get it
from `python -m lora_core.cli.repair`, or lazily: a grid that meets one shows the full image
that time and asks the `ThumbnailQueue` for it, which makes it in the background.
"""

from __future__ import annotations

import io
import logging
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import Engine, select, update
from sqlmodel import col

from lora_core.data.db import session_scope
from lora_core.data.models import GeneratedImage

log = logging.getLogger(__name__)

LONG_SIDE = 384
QUALITY = 75
CONTENT_TYPE = "image/webp"


class NotAnImage(ValueError):
    """The bytes are not an image Pillow can read."""


def make(data: bytes, *, long_side: int = LONG_SIDE, quality: int = QUALITY) -> bytes:
    """A WebP of `data` at most `long_side` px on its long side (never enlarged)."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = ImageOps.exif_transpose(opened)
            image.thumbnail((long_side, long_side), Image.Resampling.LANCZOS)
            if image.mode not in ("RGB", "RGBA"):
                image = image.convert("RGB")
            out = io.BytesIO()
            image.save(out, "WEBP", quality=quality, method=4)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError) as error:
        raise NotAnImage(str(error)) from error
    return out.getvalue()


def path_beside(relative_path: str) -> str:
    """Where an image's thumbnail is stored: `fal/b/0.jpg` → `fal/b/0.thumb.webp`."""
    path = PurePosixPath(relative_path)
    return str(path.with_name(f"{path.stem}.thumb.webp"))


@dataclass(frozen=True)
class Missing:
    """An image without a thumbnail: where to read it, and where its thumbnail goes."""

    image_id: str
    image_url: str

    @property
    def relative_path(self) -> str:
        return f"thumbs/{self.image_id}.thumb.webp"


def missing(*, engine: Engine, limit: int, after: str = "") -> list[Missing]:
    """Up to `limit` images without a thumbnail (safety-filtered ones never get one), in id
    order after `after`: a resumable walk over the whole table."""
    with session_scope(engine) as session:
        rows = session.execute(
            select(col(GeneratedImage.id), col(GeneratedImage.image_url))
            .where(col(GeneratedImage.thumbnail_url).is_(None))
            .where(col(GeneratedImage.nsfw).is_not(True))
            .where(col(GeneratedImage.id) > after)
            .order_by(col(GeneratedImage.id))
            .limit(limit)
        ).all()
    return [Missing(image_id=row[0], image_url=row[1]) for row in rows]


def record(*, engine: Engine, made: dict[str, str]) -> None:
    """Store each image's thumbnail URL (image id → URL), one transaction."""
    if not made:
        return
    with session_scope(engine) as session:
        for image_id, url in made.items():
            session.execute(
                update(GeneratedImage)
                .where(col(GeneratedImage.id) == image_id)
                .values(thumbnail_url=url)
            )
        session.commit()


class ThumbnailQueue:
    """Thumbnails made in the background for images a grid met without one.

    `request` never blocks the page: it queues the ids it has not seen (the queue is
    bounded; what does not fit is asked for again on a later view) and a daemon thread,
    started on first use, makes and records them with `make_one`, an image id and URL in,
    the thumbnail's URL out (None when it could not be made; it is not asked again in this
    process, and `repair` tries again).
    """

    def __init__(
        self, *, engine: Engine, make_one: Callable[[Missing], str | None], size: int = 256
    ) -> None:
        self._engine = engine
        self._make_one = make_one
        self._queue: queue.Queue[Missing | None] = queue.Queue(maxsize=size)
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def request(self, images: Iterable[Missing]) -> None:
        with self._lock:
            for image in images:
                if image.image_id in self._seen:
                    continue
                try:
                    self._queue.put_nowait(image)
                except queue.Full:
                    return
                self._seen.add(image.image_id)
            if self._thread is None and self._queue.qsize():
                self._thread = threading.Thread(target=self._work, name="thumbnails", daemon=True)
                self._thread.start()

    def wait_until_idle(self, timeout: float = 30) -> None:
        """For tests and scripts: until every queued thumbnail was made (or given up)."""
        done = threading.Event()
        threading.Thread(target=lambda: (self._queue.join(), done.set()), daemon=True).start()
        done.wait(timeout)

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def _work(self) -> None:
        while (image := self._queue.get()) is not None:
            try:
                url = self._make_one(image)
                if url is not None:
                    record(engine=self._engine, made={image.image_id: url})
            except Exception:
                log.exception("Could not make the thumbnail of image %s", image.image_id)
            finally:
                self._queue.task_done()
        self._queue.task_done()

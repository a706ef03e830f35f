"""Copy into our store what still lives only on fal's (expiring) URLs.

    python -m lora_core.cli.repair

- Images of ours still served from fal's URL. A copy fails when fal's CDN is briefly
  unreachable; generation then keeps fal's URL (nothing is lost) and this command finishes
  the job later. Only our own rows (with a batch) are touched: rows of the original app
  keep their URLs, which that app must be able to open.
- The weights (and training config) of every completed LoRA that has no copy yet: trained
  here before copies were kept, by the original app, or registered without one. Their
  `lora_weights_url` stays the original.
- A thumbnail for every image that has none (`lora_core.thumbnails`): the original app's
  rows and everything stored before thumbnails. In chunks, each committed as it is done,
  so an interrupted run resumes where it stopped; a progress line on stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import Engine, select, update
from sqlmodel import col

from lora_core import thumbnails, web, weights
from lora_core.data.db import create_db_engine, session_scope
from lora_core.data.models import GeneratedImage, LoraStatus, LoraTraining
from lora_core.errors import LoraStudioError
from lora_core.gallery import downloads
from lora_core.gallery.downloads import FETCH_TIMEOUT_SECONDS
from lora_core.settings import load_settings, read_secrets_file
from lora_core.storage import MediaStore, build_store, copy_images, is_remote

CHUNK = 8
THUMBNAIL_CHUNK = 64


@dataclass(frozen=True)
class RepairReport:
    copied: int
    failed: int


def repair_images(*, engine: Engine, store: MediaStore) -> RepairReport:
    with session_scope(engine) as session:
        pending = session.execute(
            select(GeneratedImage.id, GeneratedImage.batch_id, GeneratedImage.original_url)
            .where(col(GeneratedImage.batch_id).is_not(None))
            .where(col(GeneratedImage.original_url).is_not(None))
            .where(col(GeneratedImage.image_url) == col(GeneratedImage.original_url))
        ).all()
    copied = failed = 0
    for start in range(0, len(pending), CHUNK):
        chunk = pending[start : start + CHUNK]
        copies = copy_images(
            store, [(url, f"fal/{batch_id}/{image_id}.jpg") for image_id, batch_id, url in chunk]
        )
        with session_scope(engine) as session:
            for (image_id, _batch_id, _url), copy in zip(chunk, copies, strict=True):
                if copy is None:
                    failed += 1
                    continue
                session.execute(
                    update(GeneratedImage)
                    .where(col(GeneratedImage.id) == image_id)
                    .values(image_url=copy.url, thumbnail_url=copy.thumbnail_url)
                )
                copied += 1
            session.commit()
    return RepairReport(copied=copied, failed=failed)


def repair_thumbnails(
    *, engine: Engine, store: MediaStore, progress: Callable[[int, int], None] | None = None
) -> RepairReport:
    """Make the missing thumbnails, THUMBNAIL_CHUNK at once; `progress(done, failed)` after
    each chunk. An image that cannot be read is skipped (it stays without one and is tried
    again next time)."""
    made = failed = 0
    after = ""
    with web.client(timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=True) as client:
        while chunk := thumbnails.missing(engine=engine, limit=THUMBNAIL_CHUNK, after=after):
            with ThreadPoolExecutor(max_workers=CHUNK) as pool:
                urls = list(
                    pool.map(
                        lambda image: downloads.make_thumbnail(image, store=store, client=client),
                        chunk,
                    )
                )
            thumbnails.record(
                engine=engine,
                made={
                    image.image_id: url
                    for image, url in zip(chunk, urls, strict=True)
                    if url is not None
                },
            )
            made += sum(url is not None for url in urls)
            failed += sum(url is None for url in urls)
            after = chunk[-1].image_id
            if progress is not None:
                progress(made, failed)
    return RepairReport(copied=made, failed=failed)


def _print_progress(made: int, failed: int) -> None:
    print(f"\rThumbnails: {made} made, {failed} unreadable", end="", file=sys.stderr, flush=True)


def repair_weights(
    *, engine: Engine, store: MediaStore, allow_private_hosts: bool = False
) -> RepairReport:
    """Copy the weights (and config files) of completed LoRAs that have no copy yet."""
    with session_scope(engine) as session:
        loras = list(
            session.scalars(
                select(LoraTraining)
                .where(col(LoraTraining.status) == LoraStatus.COMPLETED)
                .where(col(LoraTraining.lora_weights_url).is_not(None))
                .where(
                    col(LoraTraining.weights_copy_url).is_(None)
                    | (
                        col(LoraTraining.config_url).is_not(None)
                        & col(LoraTraining.config_copy_url).is_(None)
                    )
                )
            )
        )
    copied = failed = 0
    for lora in loras:
        if not is_remote(lora.lora_weights_url or ""):
            continue  # a preview LoRA: nothing to fetch
        stored = weights.copy_files(
            engine=engine, store=store, lora=lora, allow_private_hosts=allow_private_hosts
        )
        if stored.weights_copy_url and (stored.config_copy_url or not stored.config_url):
            copied += 1
        else:
            failed += 1
    return RepairReport(copied=copied, failed=failed)


def main() -> int:
    try:
        settings = load_settings(read_secrets_file())
        engine = create_db_engine(settings.database.direct)
        store = build_store(settings)
        images = repair_images(engine=engine, store=store)
        loras = repair_weights(
            engine=engine, store=store, allow_private_hosts=settings.allow_private_weights_urls
        )
        thumbs = repair_thumbnails(engine=engine, store=store, progress=_print_progress)
        print(file=sys.stderr)
    except LoraStudioError as error:
        print(f"Nothing repaired: {error}", file=sys.stderr)
        return 1
    print(f"Copied {images.copied} images; {images.failed} still unreachable.")
    print(f"Copied the weights of {loras.copied} LoRAs; {loras.failed} still unreachable.")
    print(f"Made {thumbs.copied} thumbnails; {thumbs.failed} images could not be read.")
    return 0 if images.failed == loras.failed == 0 else 2  # an unreadable image: no harm


if __name__ == "__main__":
    sys.exit(main())

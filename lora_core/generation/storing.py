"""A finished batch stored: fal's images copied into our store (with their thumbnails and
the recipe written into each file), then the image rows (their prompt's words indexed for
search) and the batch's success written in one transaction, only while the batch is still
pending, so that two processes finishing it both can never store it twice. Used by
`service` (a generation waited for) and `recovery` (one nobody waited for)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import Engine, Integer, cast, func, select, update
from sqlmodel import Session, col

from lora_core import storage
from lora_core.data.clock import to_iso, utc_now
from lora_core.data.db import session_scope
from lora_core.data.models import (
    BatchStatus,
    GeneratedImage,
    GenerationBatch,
)
from lora_core.generation.generators import (
    GeneratedImageData,
)
from lora_core.search import indexing


def store_batch(
    *,
    engine: Engine,
    batch_id: str,
    lora_id: str,
    user: str,
    prompt: str,
    result_images: list[GeneratedImageData],
    seed: str | None,
    request_id: str | None,
    store: storage.MediaStore | None,
    label: Callable[[bytes], bytes] | None = None,
) -> list[GeneratedImage]:
    """Copy fal's images to our store, then insert the image rows and mark the batch
    succeeded, in one transaction. A failed copy keeps fal's URL (see `lora_core.cli.repair`).
    A batch no longer pending (another process finished it) keeps what it has: its rows.
    `label` writes the recipe into each copy. Long by its arguments: what one batch is."""
    durable = _durable_copies(store, batch_id, [image.url for image in result_images], label)
    finished = utc_now()
    rows = [
        GeneratedImage(
            id=uuid.uuid4().hex,
            lora_training_id=lora_id,
            user=user,
            prompt=prompt,
            image_url=copy.url if (copy := durable[index]) else image.url,
            thumbnail_url=copy.thumbnail_url if copy else None,
            original_url=image.url if storage.is_remote(image.url) else None,
            nsfw=image.nsfw,
            image_width=image.width,
            image_height=image.height,
            seed=seed,
            # One millisecond apart, so "newest first" lists a batch in fal's order.
            created_at=to_iso(finished - timedelta(milliseconds=index)),
            batch_id=batch_id,
        )
        for index, image in enumerate(result_images)
    ]
    outcome = {
        "status": BatchStatus.SUCCEEDED,
        "error": None,
        "images_returned": len(rows),
        "images_flagged": sum(1 for row in rows if row.nsfw),
        "finished_at": to_iso(finished),
        "duration_ms": cast(
            (func.julianday(to_iso(finished)) - func.julianday(col(GenerationBatch.created_at)))
            * 86_400_000,
            Integer,
        ),
    }
    if request_id is not None:
        outcome["fal_request_id"] = request_id
    with session_scope(engine) as session:
        # The batch first (on SQLite this takes the write lock): only a batch still pending
        # is finished, so two processes finishing it both can never store it twice.
        finished_here = session.execute(
            update(GenerationBatch)
            .where(col(GenerationBatch.id) == batch_id)
            .where(col(GenerationBatch.status) == BatchStatus.PENDING)
            .values(**outcome)
        ).rowcount
        if finished_here != 1:
            session.rollback()
            return images_of_batch(session, batch_id)
        session.add_all(rows)
        session.flush()
        indexing.index_images(session, rows)  # searchable by their words at once
        session.commit()
    return rows


def _durable_copies(
    store: storage.MediaStore | None,
    batch_id: str,
    urls: list[str],
    label: Callable[[bytes], bytes] | None = None,
) -> list[storage.Copied | None]:
    """Our copy (with its thumbnail) of each remote URL; None where there is no copy."""
    remote = [index for index, url in enumerate(urls) if storage.is_remote(url)]
    copies = (
        storage.copy_images(
            store, [(urls[i], f"fal/{batch_id}/{i}.jpg") for i in remote], label=label
        )
        if store is not None
        else [None] * len(remote)
    )
    durable: list[storage.Copied | None] = [None] * len(urls)
    for index, copy in zip(remote, copies, strict=True):
        durable[index] = copy
    return durable


def images_of_batch(session: Session, batch_id: str) -> list[GeneratedImage]:
    """A stored batch's images in fal's order (stored a millisecond apart, newest first)."""
    return list(
        session.scalars(
            select(GeneratedImage)
            .where(col(GeneratedImage.batch_id) == batch_id)
            .order_by(col(GeneratedImage.created_at).desc())
        )
    )

"""A page of images as the generations that made them: consecutive images of one batch,
of one click of the original app, or of one sweep's cells, shown as one group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import Session, col

from lora_core import legacy
from lora_core.data.models import GeneratedImage, GenerationBatch


@dataclass(frozen=True)
class ImageGroup:
    """Consecutive images of one generation: same batch (or, for rows written by the
    original app, which have no batch, the same user, prompt and second)."""

    prompt: str
    user: str
    created_at: str
    images: list[GeneratedImage]
    sweep_id: str | None = None  # the cells of an X/Y sweep, one image each


def _batch_key(image: GeneratedImage, sweeps: Mapping[str, str]) -> tuple[str, ...]:
    if image.batch_id and image.batch_id in sweeps:
        return ("sweep", sweeps[image.batch_id])
    if image.batch_id:
        return ("batch", image.batch_id)
    return ("legacy", *legacy.click_key(image))


def sweeps_of(*, session: Session, images: Sequence[GeneratedImage]) -> dict[str, str]:
    """{batch id: sweep id} for the images that are cells of a sweep (one query)."""
    batch_ids = {image.batch_id for image in images if image.batch_id}
    if not batch_ids:
        return {}
    rows = session.execute(
        select(col(GenerationBatch.id), col(GenerationBatch.sweep_id)).where(
            col(GenerationBatch.id).in_(batch_ids), col(GenerationBatch.sweep_id).is_not(None)
        )
    ).all()
    return {row[0]: row[1] for row in rows}


def group_by_batch(
    images: list[GeneratedImage], sweeps: Mapping[str, str] | None = None
) -> list[ImageGroup]:
    """Group a newest-first list of images into its generations, keeping the order; the
    cells of one sweep (`sweeps`: batch id to sweep id) make one group."""
    groups: list[ImageGroup] = []
    last_key: tuple[str, ...] | None = None
    for image in images:
        key = _batch_key(image, sweeps or {})
        if key != last_key:
            sweep_id = key[1] if key[0] == "sweep" else None
            groups.append(ImageGroup(image.prompt, image.user, image.created_at, [], sweep_id))
            last_key = key
        groups[-1].images.append(image)
    return groups

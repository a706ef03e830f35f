"""A page of images as the generations that made them: consecutive images of one batch,
of one click of the original app, or of one sweep's cells, shown as one group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlmodel import Session

from lora_core import legacy
from lora_core.data.models import GeneratedImage
from lora_core.gallery import queries
from lora_core.gallery.queries import BatchFacts
from lora_core.generation import stacks


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


@dataclass(frozen=True)
class BatchNotes:
    """What a LoRA page says of its images' batches: the sweep each cell belongs to, and
    the other LoRAs of each stacked batch ("with wtrclr at 0.6")."""

    sweeps: dict[str, str]
    marks: dict[str, str]


def batch_notes(
    *,
    session: Session,
    images: Sequence[GeneratedImage],
    lora_id: str,
    batches: Mapping[str, BatchFacts] | None = None,
) -> BatchNotes:
    """`BatchNotes` for a page of `lora_id`'s images, from their batches' facts (read here
    in one statement unless given, as `queries.list_lora_images_with_batches` reads them
    with the images); for stacked batches, one query for the added LoRAs and one for names.
    """
    if batches is None:
        batches = queries.batch_facts(
            session=session, batch_ids=(image.batch_id for image in images if image.batch_id)
        )
    sweeps = {batch_id: fact.sweep_id for batch_id, fact in batches.items() if fact.sweep_id}
    added = stacks.stacks_of(session, [batch_id for batch_id, f in batches.items() if f.stacked])
    stacked = {batch_id: (batches[batch_id].first_scale, more) for batch_id, more in added.items()}
    marks = stacks.marks_of(session, images=images, lora_id=lora_id, stacked=stacked)
    return BatchNotes(sweeps, marks)


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

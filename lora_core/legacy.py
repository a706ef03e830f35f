"""Everything about the original web app's rows, which share our database.

The original app writes `generated_images` rows with no batch: one click is the images of
one user, LoRA and prompt within the same second (`click_key`). Its plan counted four
images as one generation, so the quota counts them that way (`images_in_window`,
`slots_for`), the galleries group them by click, and History adopts each click as a batch
row of ours (`adopt_legacy_images`), once.
"""

from __future__ import annotations

from sqlalchemy import BindParameter, ColumnElement, Engine, select, update
from sqlmodel import col

from lora_core.data.db import session_scope
from lora_core.data.models import (
    BatchStatus,
    GeneratedImage,
    GenerationBatch,
)

IMAGES_PER_LEGACY_BATCH = 4


def click_key(image: GeneratedImage) -> tuple[str, str, str]:
    """What the images of one click of the original app share: user, prompt and second."""
    return (image.user, image.prompt, image.created_at[:19])


def same_click(image: GeneratedImage) -> ColumnElement[bool]:
    """The rows of `image`'s click, as SQL (its LoRA, user and prompt, the same second)."""
    second = image.created_at[:19]
    return (
        (col(GeneratedImage.lora_training_id) == image.lora_training_id)
        & (col(GeneratedImage.created_at) >= second)
        & (col(GeneratedImage.created_at) < f"{second}~")  # after every ".fffZ" of it
        & (col(GeneratedImage.user) == image.user)
        & (col(GeneratedImage.prompt) == image.prompt)
        & col(GeneratedImage.batch_id).is_(None)
    )


def images_in_window(
    user: BindParameter[str] | None, since: BindParameter[str]
) -> ColumnElement[bool]:
    """The original app's images of `user` (None: everyone's) since `since`, ISO text
    (what its quota counted); both are bound parameters, since the quota builds its
    statements once."""
    condition = (col(GeneratedImage.created_at) > since) & col(GeneratedImage.batch_id).is_(None)
    if user is None:
        return condition
    return (col(GeneratedImage.user) == user) & condition


def slots_for(image_count: int) -> int:
    """Generations those images stand for: one per four, rounded up."""
    return -(-image_count // IMAGES_PER_LEGACY_BATCH)  # ceiling division


def adopt_legacy_images(*, engine: Engine) -> int:
    """Give the original app's generations (images without a batch) their batch rows, so
    History shows every prompt. Images of one click share user, LoRA, prompt and second.

    Cheap when there is nothing to adopt (one lookup on the batch index); safe to repeat,
    also while the original app keeps writing. Returns how many batches were created.
    """
    with session_scope(engine) as session:
        legacy = session.execute(
            select(
                GeneratedImage.id,
                GeneratedImage.lora_training_id,
                GeneratedImage.user,
                GeneratedImage.prompt,
                GeneratedImage.created_at,
            ).where(col(GeneratedImage.batch_id).is_(None))  # idx_gen_images_batch: no scan
        ).all()
        legacy = sorted(legacy, key=lambda row: row[4])  # oldest first (not in SQL: see above)
        groups: dict[tuple[str, str, str, str], list[tuple[str, str]]] = {}
        for image_id, lora_id, user, prompt, created_at in legacy:
            key = (lora_id, user, prompt, created_at[:19])  # the LoRA's `click_key`
            groups.setdefault(key, []).append((image_id, created_at))
        for (lora_id, user, prompt, _second), images in groups.items():
            batch_id = f"legacy-{images[0][0]}"
            session.add(
                GenerationBatch(
                    id=batch_id,
                    lora_training_id=lora_id,
                    user=user,
                    prompt=prompt,
                    status=BatchStatus.SUCCEEDED,
                    images_returned=len(images),
                    created_at=images[0][1],
                    finished_at=images[0][1],
                )
            )
            session.execute(
                update(GeneratedImage)
                .where(col(GeneratedImage.id).in_([image_id for image_id, _ in images]))
                .values(batch_id=batch_id)
            )
        session.commit()
        return len(groups)

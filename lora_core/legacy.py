"""Everything about the original web app's rows, which share our database: its
generations have no batch, so they are grouped into batches here for History.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlmodel import Session, col

from lora_core.data.models import (
    BatchStatus,
    GeneratedImage,
    GenerationBatch,
)


def adopt_legacy_images(*, session: Session) -> int:
    """Give the original app's generations (images without a batch) their batch rows, so
    History shows every prompt. Images of one click share user, LoRA, prompt and second.

    Cheap when there is nothing to adopt (one lookup on the batch index); safe to repeat,
    also while the original app keeps writing. Returns how many batches were created.
    """
    legacy = session.execute(
        select(
            GeneratedImage.id,
            GeneratedImage.lora_training_id,
            GeneratedImage.wallet_address,
            GeneratedImage.prompt,
            GeneratedImage.created_at,
        ).where(col(GeneratedImage.batch_id).is_(None))  # idx_gen_images_batch: no scan
    ).all()
    legacy = sorted(legacy, key=lambda row: row[4])  # oldest first (not in SQL: see above)
    groups: dict[tuple[str, str, str, str], list[tuple[str, str]]] = {}
    for image_id, lora_id, user, prompt, created_at in legacy:
        key = (lora_id, user, prompt, created_at[:19])
        groups.setdefault(key, []).append((image_id, created_at))
    for (lora_id, user, prompt, _second), images in groups.items():
        batch_id = f"legacy-{images[0][0]}"
        session.add(
            GenerationBatch(
                id=batch_id,
                lora_training_id=lora_id,
                wallet_address=user,
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

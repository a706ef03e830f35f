"""The words index kept up to date: a stored batch's images at once, in the transaction
that stores them (`storing.store_batch`), and any image not indexed yet (the original
app's, those stored before the index) by each process's background sweep, a few hundred
at a time, once each (`indexed_images`)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, insert, select
from sqlmodel import Session, col

from lora_core.data.db import session_scope
from lora_core.data.models import GeneratedImage, ImageWord, IndexedImage
from lora_core.search.words import terms_of_prompt

BATCH = 500


def index_images(session: Session, images: Sequence[GeneratedImage]) -> None:
    """Add these images' words to the index in `session` (its caller commits); an image
    already indexed is left as it is (INSERT OR IGNORE: two processes may meet here)."""
    if not images:
        return
    words = [
        {"word": term, "image_id": image.id, "created_at": image.created_at}
        for image in images
        for term in terms_of_prompt(image.prompt)
    ]
    if words:
        session.execute(insert(ImageWord).prefix_with("OR IGNORE"), words)
    session.execute(
        insert(IndexedImage).prefix_with("OR IGNORE"), [{"image_id": image.id} for image in images]
    )


def index_missing(*, engine: Engine, limit: int = BATCH) -> int:
    """Index up to `limit` images not indexed yet (newest first); how many."""
    with session_scope(engine) as session:
        missing = list(
            session.scalars(
                select(GeneratedImage)
                .where(
                    ~select(IndexedImage.image_id)
                    .where(col(IndexedImage.image_id) == col(GeneratedImage.id))
                    .exists()
                )
                .order_by(col(GeneratedImage.created_at).desc())
                .limit(limit)
            )
        )
        index_images(session, missing)
        session.commit()
    return len(missing)

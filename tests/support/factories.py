"""Small writers of rows for tests, through the app's own core functions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from lora_core.data.db import session_scope
from lora_core.data.models import GeneratedImage
from lora_core.gallery import favorites, moderation
from lora_core.identity import Identity

ADMIN = Identity(user="admin@example.com", is_admin=True)


def image(engine: Engine, image_id: str) -> GeneratedImage:
    with session_scope(engine) as session:
        found = session.get(GeneratedImage, image_id)
    assert found is not None, image_id
    return found


def hide(engine: Engine, image_id: str, *, hidden: bool = True) -> None:
    """Hide an image (or show it again), as an admin would."""
    moderation.set_image_hidden(
        engine=engine, who=ADMIN, image=image(engine, image_id), hidden=hidden
    )


def star(
    engine: Engine,
    user: str,
    image_id: str,
    *,
    starred: bool = True,
    now: datetime | None = None,
) -> None:
    favorites.set_starred(
        engine=engine, user=user, image=image(engine, image_id), starred=starred, now=now
    )

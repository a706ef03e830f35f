"""Hiding things from the galleries: an image (by its author or an admin) and a LoRA (by an
admin). Hidden rows stay in History; the rules of who may live here, not in the pages."""

from __future__ import annotations

from sqlalchemy import Engine, update
from sqlmodel import col

from lora_core.data.db import session_scope
from lora_core.data.models import GeneratedImage, LoraTraining
from lora_core.errors import NotAllowed
from lora_core.identity import Identity


def may_hide_image(who: Identity, image: GeneratedImage) -> bool:
    """Its author or an admin."""
    return who.user is not None and (who.user == image.user or who.is_admin)


def set_image_hidden(*, engine: Engine, who: Identity, image: GeneratedImage, hidden: bool) -> None:
    """Hide an image from the galleries, or show it again (History keeps it either way)."""
    if not may_hide_image(who, image):
        raise NotAllowed("Only the image's author or an admin can hide it.")
    with session_scope(engine) as session:
        session.execute(
            update(GeneratedImage)
            .where(col(GeneratedImage.id) == image.id)
            .values(hidden=True if hidden else None)  # NULL, never false: see the model
        )
        session.commit()


def set_lora_hidden(*, engine: Engine, who: Identity, lora_id: str, hidden: bool) -> None:
    """Hide a LoRA from the gallery (its page, images and history stay): admins only."""
    if not who.is_admin:
        raise NotAllowed("Only admins can hide a LoRA.")
    with session_scope(engine) as session:
        session.execute(
            update(LoraTraining).where(col(LoraTraining.id) == lora_id).values(hidden=hidden)
        )
        session.commit()

"""Favorites: users star images; a LoRA's most-starred image becomes its gallery cover."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.dialects.sqlite import insert
from sqlmodel import Session, col

from lora_core.data.clock import to_iso, utc_now
from lora_core.data.db import session_scope
from lora_core.data.models import GeneratedImage, ImageFavorite
from lora_core.gallery.queries import Page, clamp_page


def set_starred(
    *,
    engine: Engine,
    user: str,
    image: GeneratedImage,
    starred: bool,
    now: datetime | None = None,
) -> None:
    """Star or unstar `image` for `user`; doing it twice is harmless."""
    with session_scope(engine) as session:
        _set_starred(session, user, image, starred, now)
        session.commit()


def _set_starred(
    session: Session, user: str, image: GeneratedImage, starred: bool, now: datetime | None
) -> None:
    if starred:
        session.execute(
            insert(ImageFavorite)
            .values(
                user=user,
                image_id=image.id,
                lora_training_id=image.lora_training_id,
                created_at=to_iso(now or utc_now()),
            )
            .on_conflict_do_nothing()
        )
    else:
        session.execute(
            delete(ImageFavorite).where(
                col(ImageFavorite.user) == user, col(ImageFavorite.image_id) == image.id
            )
        )


def stars(*, session: Session, image_id: str, user: str | None) -> tuple[int, bool]:
    """How many users starred the image, and whether `user` is one of them."""
    rows = session.execute(
        select(col(ImageFavorite.user)).where(col(ImageFavorite.image_id) == image_id)
    ).all()
    return len(rows), any(row[0] == user for row in rows)


def list_starred_images(
    *, session: Session, user: str, lora_id: str, page: int = 1, page_size: int = 24
) -> Page[GeneratedImage]:
    """The images of this LoRA that `user` starred (and nobody hid), newest first."""
    starred = (
        (col(ImageFavorite.user) == user)
        & (col(ImageFavorite.lora_training_id) == lora_id)
        & col(GeneratedImage.hidden).is_(None)
    )
    total = (
        session.scalar(
            select(func.count())
            .select_from(ImageFavorite)
            .join(GeneratedImage, col(ImageFavorite.image_id) == col(GeneratedImage.id))
            .where(starred)
        )
        or 0
    )
    page = clamp_page(page, total, page_size)
    items = session.scalars(
        select(GeneratedImage)
        .join(ImageFavorite, col(ImageFavorite.image_id) == col(GeneratedImage.id))
        .where(starred)
        .order_by(col(GeneratedImage.created_at).desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return Page(items=list(items), total=total, page=page, page_size=page_size)

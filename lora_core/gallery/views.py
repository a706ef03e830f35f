"""What a page shows, read in one session: each function here gathers one view's rows so
that the page opens as few sessions as it has parts that rerun on their own."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from lora_core.data import lookups
from lora_core.data.models import GeneratedImage, LoraTraining
from lora_core.gallery import favorites, queries


@dataclass(frozen=True)
class LoraView:
    """The LoRA page's header: the LoRA, and what its cached image count is keyed by."""

    lora: LoraTraining
    count_key: tuple[object, ...]


def lora_view(*, session: Session, lora_id: str) -> LoraView | None:
    lora = lookups.get_lora(session=session, lora_id=lora_id)
    if lora is None:
        return None
    return LoraView(lora, queries.image_count_key(session=session, lora_id=lora.id))


@dataclass(frozen=True)
class ImageView:
    """One image shown large: the image, its whole batch, and its stars."""

    image: GeneratedImage
    batch: list[GeneratedImage]
    stars: int
    starred_by_me: bool


def image_view(
    *, session: Session, lora_id: str, image_id: str, user: str | None
) -> ImageView | None:
    """None for an unknown, malformed, or another LoRA's image id."""
    image = queries.get_image(session=session, lora_id=lora_id, image_id=image_id)
    if image is None:
        return None
    count, mine = favorites.stars(session=session, image_id=image.id, user=user)
    return ImageView(image, queries.batch_of(session=session, image=image), count, mine)

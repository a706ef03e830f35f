"""What a page shows, read in one session: each function here gathers one view's rows so
that the page opens as few sessions as it has parts that rerun on their own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import Session, col

from lora_core.data import lookups
from lora_core.data.models import GeneratedImage, GenerationBatch, LoraScorecard, LoraTraining
from lora_core.gallery import favorites, moderation, queries, scorecards
from lora_core.generation import recipe
from lora_core.generation.recipe import Recipe
from lora_core.identity import Identity


@dataclass(frozen=True)
class LoraView:
    """The LoRA page's header: the LoRA, and what its cached image count is keyed by."""

    lora: LoraTraining
    count_key: tuple[object, ...]
    scorecard: scorecards.Scorecard = scorecards.EMPTY


def lora_view(*, session: Session, lora_id: str) -> LoraView | None:
    """The LoRA with its scorecard (one statement), and its image count's key."""
    if not lookups.is_valid_lora_id(lora_id):
        return None
    row = session.execute(
        select(LoraTraining, LoraScorecard)
        .outerjoin(LoraScorecard, col(LoraScorecard.lora_training_id) == col(LoraTraining.id))
        .where(col(LoraTraining.id) == lora_id)
    ).first()
    if row is None:
        return None
    lora, card = row
    return LoraView(
        lora,
        queries.image_count_key(session=session, lora_id=lora.id),
        scorecards.Scorecard.of(card),
    )


@dataclass(frozen=True)
class ImageView:
    """One image shown large, as `who` may see it: the image, its batch (its hidden images
    left out unless `who` may hide them: the batch's zip and strip), and its stars."""

    image: GeneratedImage
    batch: list[GeneratedImage]
    stars: int
    starred_by_me: bool
    recipe: Recipe  # how it was made, with the seed fal used
    may_hide: bool = False  # its author or an admin (`moderation.may_hide_image`)

    @property
    def withheld(self) -> bool:
        """Hidden from the galleries, and `who` is not one who may see it anyway."""
        return bool(self.image.hidden) and not self.may_hide


def image_view(*, session: Session, lora_id: str, image_id: str, who: Identity) -> ImageView | None:
    """None for an unknown, malformed, or another LoRA's image id."""
    image = queries.get_image(session=session, lora_id=lora_id, image_id=image_id)
    if image is None:
        return None
    may_hide = moderation.may_hide_image(who, image)
    count, mine = favorites.stars(session=session, image_id=image.id, user=who.user)
    batch = [
        other
        for other in queries.batch_of(session=session, image=image)
        if not other.hidden or may_hide or other.id == image.id
    ]
    return ImageView(
        image, batch, count, mine, image_recipe(session=session, image=image), may_hide
    )


def recipes_of(*, session: Session, images: Sequence[GeneratedImage]) -> dict[str, Recipe]:
    """Each image's recipe (as `image_recipe`), by image id, in one query."""
    batch_ids = {image.batch_id for image in images if image.batch_id}
    batches = {
        batch.id: batch
        for batch in session.scalars(
            select(GenerationBatch).where(col(GenerationBatch.id).in_(batch_ids))
        )
    } if batch_ids else {}  # fmt: skip
    return {image.id: _recipe(batches.get(image.batch_id or ""), image) for image in images}


def image_recipe(*, session: Session, image: GeneratedImage) -> Recipe:
    """The settings of the image's batch and the seed fal used for it; the plan's settings
    for an image without a batch (the original app's) or one stored before settings were."""
    row = session.get(GenerationBatch, image.batch_id) if image.batch_id else None
    return _recipe(row, image)


def _recipe(row: GenerationBatch | None, image: GeneratedImage) -> Recipe:
    return recipe.batch_recipe(row, seed=image.seed)

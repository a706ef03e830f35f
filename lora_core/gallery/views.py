"""What a page shows, read in one session: each function here gathers one view's rows so
that the page opens as few sessions as it has parts that rerun on their own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import Session, col

from lora_core.data import lookups
from lora_core.data.models import GeneratedImage, GenerationBatch, LoraScorecard, LoraTraining
from lora_core.gallery import favorites, groups, moderation, queries, scorecards
from lora_core.gallery.downloads import Made
from lora_core.generation import recipe, stacks
from lora_core.generation.recipe import Recipe
from lora_core.identity import Identity


@dataclass(frozen=True)
class LoraView:
    """The LoRA page's header: the LoRA, and what its cached image count is keyed by."""

    lora: LoraTraining
    count_key: tuple[object, ...]
    scorecard: scorecards.Scorecard = scorecards.EMPTY


def lora_view(*, session: Session, lora_id: str) -> LoraView | None:
    """The LoRA with its scorecard and its image count's key, in one statement (a page
    view's every statement is a round trip to a libSQL server)."""
    if not lookups.is_valid_lora_id(lora_id):
        return None
    key_columns = queries.count_key_columns(lora_id)
    row = session.execute(
        select(LoraTraining, LoraScorecard, *key_columns)
        .outerjoin(LoraScorecard, col(LoraScorecard.lora_training_id) == col(LoraTraining.id))
        .where(col(LoraTraining.id) == lora_id)
    ).first()
    if row is None:
        return None
    lora, card, *key = row
    return LoraView(lora, queries.count_key_of(key), scorecards.Scorecard.of(card))


@dataclass(frozen=True)
class LoraImages:
    """A page of the LoRA page's images, with what its groups say of their batches."""

    images: queries.Page[GeneratedImage]
    notes: groups.BatchNotes


def lora_images(
    *,
    session: Session,
    lora_id: str,
    page: int,
    page_size: int,
    total: int,
    stacked: bool,
    starred_by: str | None = None,
) -> LoraImages:
    """Everyone's images of the LoRA (`total`, `stacked` as its view counted them), or
    those `starred_by` starred (paged on their own), with their batches' notes: one
    statement for a page of everyone's images where no batch is stacked."""
    if starred_by:
        images = favorites.list_starred_images(
            session=session, user=starred_by, lora_id=lora_id, page=page, page_size=page_size
        )
        facts = None
    else:
        images, facts = queries.list_lora_images_with_batches(
            session=session, lora_id=lora_id, page=page, page_size=page_size, total=total,
            stacked=stacked,
        )  # fmt: skip
    notes = groups.batch_notes(session=session, images=images.items, lora_id=lora_id, batches=facts)
    return LoraImages(images, notes)


@dataclass(frozen=True)
class ImageView:
    """One image shown large, as `who` may see it: the image, its batch (its hidden images
    left out unless `who` may hide them: the batch's zip and strip), and its stars."""

    image: GeneratedImage
    batch: list[GeneratedImage]
    stars: int
    starred_by_me: bool
    made: Made  # how it was made: its recipe (the seed fal used, LoRAs added), fal's prompt
    may_hide: bool = False  # its author or an admin (`moderation.may_hide_image`)

    @property
    def recipe(self) -> Recipe:
        return self.made.recipe

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
    made = recipes_of(session=session, images=[image])[image.id]
    return ImageView(image, batch, count, mine, made, may_hide)


def recipes_of(*, session: Session, images: Sequence[GeneratedImage]) -> dict[str, Made]:
    """How each image was made (as `image_recipe`, with fal's prompt, its own LoRA and the
    LoRAs added to it), by image id, in three queries whatever the number of images."""
    batch_ids = {image.batch_id for image in images if image.batch_id}
    batches = {
        batch.id: batch
        for batch in session.scalars(
            select(GenerationBatch).where(col(GenerationBatch.id).in_(batch_ids))
        )
    } if batch_ids else {}  # fmt: skip
    added = stacks.stacks_of(session, batch_ids)
    loras = _loras(
        session,
        {more.lora_id for stack in added.values() for more in stack}
        | {image.lora_training_id for image in images},
    )
    made = {}
    for image in images:
        batch = batches.get(image.batch_id or "")
        stack = added.get(image.batch_id or "", ())
        made[image.id] = Made(
            recipe.batch_recipe(batch, seed=image.seed).with_stack(stack),
            batch.full_prompt if batch is not None else None,
            tuple(loras[more.lora_id] for more in stack if more.lora_id in loras),
            loras.get(image.lora_training_id),
        )
    return made


def image_recipe(*, session: Session, image: GeneratedImage) -> Recipe:
    """The settings of the image's batch, the LoRAs added to its first and the seed fal
    used; the plan's settings for an image without a batch (the original app's) or one
    stored before settings were."""
    return recipes_of(session=session, images=[image])[image.id].recipe


def _loras(session: Session, ids: set[str]) -> dict[str, LoraTraining]:
    if not ids:
        return {}
    rows = session.scalars(select(LoraTraining).where(col(LoraTraining.id).in_(ids)))
    return {lora.id: lora for lora in rows}

"""History's filters (all in the link) and the SQL they become, shared by the listing and
the analytics: which batches, and each one's status as analysts read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, Select, and_, case, func, literal, select
from sqlmodel import col

from lora_core.data.models import (
    BatchLora,
    BatchStatus,
    GeneratedImage,
    GenerationBatch,
    ImageFavorite,
    LoraTraining,
    Verdict,
)
from lora_core.gallery import scorecards
from lora_core.generation.generators import IMAGES_PER_BATCH
from lora_core.generation.recipe import IMAGE_SIZES, PLAN

# Images a batch asked fal for: 4, or a sweep's cell's 1.
IMAGES_ASKED = func.coalesce(col(GenerationBatch.num_images), IMAGES_PER_BATCH)
# Images fal's safety checker flagged: fal returns them (black) with `has_nsfw_concepts`.
IMAGES_FLAGGED = func.coalesce(col(GenerationBatch.images_flagged), 0)
IMAGES_RETURNED = func.coalesce(col(GenerationBatch.images_returned), 0)
# The images people can see: those returned, less the flagged ones.
IMAGES_SHOWN = IMAGES_RETURNED - IMAGES_FLAGGED
# A finished batch the safety checker touched: flagged images, or (an odd answer) fewer
# images than asked for.
SAFETY_TOUCHED = (IMAGES_FLAGGED > 0) | (IMAGES_RETURNED < IMAGES_ASKED)


class HistoryStatus(StrEnum):
    SUCCEEDED = "succeeded"
    SAFETY_FILTERED = "safety-filtered"
    FAILED = "failed"
    PENDING = "pending"


@dataclass(frozen=True)
class HistoryFilter:
    """Every filter is optional; they combine with AND. `date_to` is inclusive (UTC days)."""

    lora_ids: tuple[str, ...] = ()
    user: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    statuses: tuple[HistoryStatus, ...] = ()
    prompt_contains: str | None = None
    starred_by: str | None = None  # only batches with an image this user starred
    lora_scales: tuple[float, ...] = ()  # the LoRA scales generated with
    verdict: Verdict | None = None  # the LoRA's scorecard verdict
    tag: str | None = None  # one of the LoRA's scorecard tags
    used_lora_ids: tuple[str, ...] = ()  # made with one of these, first or stacked


Batch = GenerationBatch  # short, as every query here names it
# A batch's setting, the plan's for batches stored before settings were (NULL).
LORA_SCALE = func.coalesce(col(Batch.lora_scale), PLAN.lora_scale)
STEPS = func.coalesce(col(Batch.num_inference_steps), PLAN.steps)
GUIDANCE = func.coalesce(col(Batch.guidance_scale), PLAN.guidance)
IMAGE_SIZE = func.coalesce(col(Batch.image_size), PLAN.image_size)
# What fal bills a batch for: its images' megapixels (fal bills only the images it returns).
MEGAPIXELS = func.coalesce(col(Batch.images_returned), 0) * case(
    {size: width * height / 1_000_000 for size, (width, height) in IMAGE_SIZES.items()},
    value=IMAGE_SIZE,
    else_=PLAN.pixels[0] * PLAN.pixels[1] / 1_000_000,
)


BATCH_STATUS = case(
    (col(Batch.status) == BatchStatus.FAILED, literal(HistoryStatus.FAILED.value)),
    (col(Batch.status) == BatchStatus.PENDING, literal(HistoryStatus.PENDING.value)),
    (SAFETY_TOUCHED, literal(HistoryStatus.SAFETY_FILTERED.value)),
    else_=literal(HistoryStatus.SUCCEEDED.value),
)


batch_seconds = col(Batch.duration_ms) / 1000.0


def _day_start(day: date) -> str:
    """The stored form of midnight UTC on `day`."""
    return f"{day.isoformat()}T00:00:00.000Z"


# Characters no one sees, which text copied from elsewhere may carry (the page's own word
# joiners, a zero-width space from a chat app): a filter ignores them.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))


def typed(text: str | None) -> str:
    """What someone typed or pasted into a filter, as it is meant: without invisible
    characters or surrounding spaces."""
    return (text or "").translate(_INVISIBLE).strip()


def conditions(history_filter: HistoryFilter) -> ColumnElement[bool]:
    parts: list[ColumnElement[bool]] = []
    if history_filter.lora_ids:
        parts.append(col(Batch.lora_training_id).in_(history_filter.lora_ids))
    if user := typed(history_filter.user):
        parts.append(col(Batch.user) == user)
    if history_filter.date_from:
        parts.append(col(Batch.created_at) >= _day_start(history_filter.date_from))
    if history_filter.date_to:
        parts.append(col(Batch.created_at) < _day_start(history_filter.date_to + timedelta(1)))
    if history_filter.statuses:
        parts.append(BATCH_STATUS.in_([status.value for status in history_filter.statuses]))
    if needle := typed(history_filter.prompt_contains):
        escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        parts.append(col(Batch.prompt).ilike(f"%{escaped}%", escape="\\"))
    if used := history_filter.used_lora_ids:
        stacked_in = select(col(BatchLora.batch_id)).where(
            col(BatchLora.lora_training_id).in_(used)
        )
        parts.append(col(Batch.lora_training_id).in_(used) | col(Batch.id).in_(stacked_in))
    if history_filter.lora_scales:
        parts.append(LORA_SCALE.in_(history_filter.lora_scales))
    if history_filter.starred_by:
        starred = (
            select(col(GeneratedImage.batch_id))
            .join(ImageFavorite, col(ImageFavorite.image_id) == col(GeneratedImage.id))
            .where(col(ImageFavorite.user) == history_filter.starred_by)
        )
        parts.append(col(Batch.id).in_(starred))
    if history_filter.verdict is not None or typed(history_filter.tag):
        scored = scorecards.matches(verdict=history_filter.verdict, tag=typed(history_filter.tag))
        parts.append(col(Batch.lora_training_id).in_(select(col(LoraTraining.id)).where(scored)))
    return and_(literal(True), *parts)


def filtered(history_filter: HistoryFilter, *columns: object) -> Select:
    return select(*columns).select_from(Batch).where(conditions(history_filter))

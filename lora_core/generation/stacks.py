"""Stacked LoRAs: a generation made with several LoRAs at once (fal's `loras` list, which
fal merges), and the prompt fal gets for them.

A batch's first LoRA stays in its own row (`generation_batches.lora_training_id`,
`lora_scale`: what the original app reads); the LoRAs added to it are `batch_loras` rows,
positions 1, 2, … in fal's order (`Recipe.stack`). Each LoRA's trigger word goes into the
prompt in that same order, the first LoRA's first, each by its scorecard's template or the
plan's rule (`prompts.Wording`); the full prompt is stored with the batch, so that a
template changed later never rewrites what an old recipe says fal got.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from sqlalchemy import select
from sqlmodel import Session, col

from lora_core.data import lookups
from lora_core.data.models import (
    BatchLora,
    GeneratedImage,
    GenerationBatch,
    LoraScorecard,
    LoraTraining,
)
from lora_core.errors import InvalidSettings, LoraStudioError, WeightsUnavailable
from lora_core.generation.prompts import Wording, full_prompt, with_trigger
from lora_core.generation.recipe import PLAN, Recipe, StackedLora


def as_text(stack: Sequence[StackedLora]) -> str:
    """Stacked LoRAs as a row keeps them in one column: "id:scale id:scale" ("": none)."""
    return " ".join(f"{more.lora_id}:{more.scale:g}" for more in stack)


def from_text(text: str | None) -> tuple[StackedLora, ...]:
    """`as_text` read back."""
    pairs = (part.rsplit(":", 1) for part in (text or "").split())
    return tuple(StackedLora(lora_id, float(scale)) for lora_id, scale in pairs)


def label(lora: LoraTraining) -> str:
    """How pages name a LoRA: its given name, else its trigger word."""
    return lora.name or lora.trigger_word


# Ids asked for in one `IN (…)`: SQLite and libSQL servers allow 32,766 variables, and an
# export may ask about every batch.
CHUNK = 500


def names_of(*, session: Session, lora_ids: Sequence[str]) -> dict[str, str]:
    """How pages name these LoRAs (`label`), by id; a LoRA not found is absent."""
    if not lora_ids:
        return {}
    rows = session.scalars(select(LoraTraining).where(col(LoraTraining.id).in_(lora_ids)))
    return {lora.id: label(lora) for lora in rows}


def stacks_of(session: Session, batch_ids: Iterable[str]) -> dict[str, tuple[StackedLora, ...]]:
    """The LoRAs added to each of these batches, in fal's order (batches without: absent);
    asked `CHUNK` batches at a time."""
    wanted = list(dict.fromkeys(batch_ids))
    found: dict[str, tuple[StackedLora, ...]] = {}
    for start in range(0, len(wanted), CHUNK):
        rows = session.scalars(
            select(BatchLora)
            .where(col(BatchLora.batch_id).in_(wanted[start : start + CHUNK]))
            .order_by(col(BatchLora.batch_id), col(BatchLora.position))
        ).all()
        for row in rows:
            added = StackedLora(lora_id=row.lora_training_id, scale=row.lora_scale)
            found[row.batch_id] = (*found.get(row.batch_id, ()), added)
    return found


def wordings(session: Session, loras: Sequence[LoraTraining]) -> list[Wording]:
    """Each LoRA's trigger word with its scorecard's prompt template, in the given order."""
    ids = [lora.id for lora in loras]
    templates = dict(
        session.execute(
            select(col(LoraScorecard.lora_training_id), col(LoraScorecard.prompt_template)).where(
                col(LoraScorecard.lora_training_id).in_(ids)
            )
        ).all()
    )
    return [Wording(lora.trigger_word, templates.get(lora.id)) for lora in loras]


def prompt_for(session: Session, prompt: str, loras: Sequence[LoraTraining]) -> str:
    """What fal gets for `prompt` made with these LoRAs, first to last (`full_prompt`)."""
    return full_prompt(prompt, wordings(session, loras))


def stored_full_prompt(batch: GenerationBatch, trigger_word: str | None) -> str:
    """The prompt fal got for a stored batch: kept on it since templates and stacks; on an
    older row (and the original app's), the plan's rule with its LoRA's trigger word."""
    if batch.full_prompt is not None:
        return batch.full_prompt
    text = batch.prompt.strip()
    return with_trigger(text, trigger_word) if trigger_word else text


def added_loras(
    session: Session, *, first: LoraTraining, stack: Sequence[StackedLora], most: int
) -> list[LoraTraining]:
    """The LoRAs of `stack`, if each may be stacked on `first`: at most `most` of them,
    none twice nor the first again, each found; `InvalidSettings` saying which otherwise.
    (Whether each is ready to generate is `service`'s check, named by `naming`.)"""
    if len(stack) > most:
        raise InvalidSettings(
            f"At most {most} LoRAs can be added to a generation."
            if most
            else "This LoRA Studio does not stack LoRAs (MAX_STACKED_LORAS is 0)."
        )
    found = []
    for added in stack:
        if added.lora_id == first.id:
            raise InvalidSettings(f"{label(first)} is already this generation's first LoRA.")
        lora = lookups.get_lora(session=session, lora_id=added.lora_id)
        if lora is None:
            raise InvalidSettings("An added LoRA was not found; it may have been removed.")
        found.append(lora)
    return found


@contextmanager
def naming(lora: LoraTraining, *, stacked: bool) -> Iterator[None]:
    """Within a stacked generation, say which LoRA a check before any slot is spent
    concerns: its name before the message (the same kind of error for weights; a LoRA that
    is not ready is a setting of this generation to change)."""
    if not stacked:
        yield
        return
    try:
        yield
    except WeightsUnavailable as error:
        raise WeightsUnavailable(f"{label(lora)}: {error}") from None
    except InvalidSettings:
        raise
    except LoraStudioError as error:
        raise InvalidSettings(f"{label(lora)}: {error}") from None


def describe_added(recipe: Recipe, added: Sequence[LoraTraining]) -> str:
    """One line for people: "With wtrclr at 0.6 · neonnoir at 0.8" (a LoRA since removed:
    its id)."""
    names = {lora.id: label(lora) for lora in added}
    return "With " + " · ".join(
        f"{names.get(more.lora_id, more.lora_id)} at {more.scale:g}" for more in recipe.stack
    )


def marks_of(
    session: Session,
    *,
    images: Sequence[GeneratedImage],
    lora_id: str,
    stacked: Mapping[str, tuple[float | None, tuple[StackedLora, ...]]],
) -> dict[str, str]:
    """For a LoRA's page: {batch id: "with wtrclr at 0.6"} for the stacked batches among
    `images` (`stacked`: batch id → its first LoRA's scale and its added LoRAs), naming
    every LoRA of the batch but `lora_id` (the first one included, when the page is an
    added LoRA's), in fal's order. One query, for their names."""
    if not stacked:
        return {}
    first_of = {image.batch_id: image.lora_training_id for image in images if image.batch_id}
    ids = {more.lora_id for _scale, stack in stacked.values() for more in stack}
    names = names_of(session=session, lora_ids=sorted(ids | set(first_of.values())))
    marks = {}
    for batch_id, (first_scale, stack) in stacked.items():
        every = [(first_of[batch_id], PLAN.lora_scale if first_scale is None else first_scale), *(
            (more.lora_id, more.scale) for more in stack
        )]  # fmt: skip
        others = [
            f"{names.get(other, other)} at {scale:g}" for other, scale in every if other != lora_id
        ]
        marks[batch_id] = "with " + " · ".join(others)
    return marks

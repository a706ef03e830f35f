"""A search over every LoRA's images, as its link holds it, and its page of results in SQL.

The link's parameters (`PARAMS`) are the whole search: a page reads them into a
`SearchQuery` (`from_params`), a saved search stores them as they are. Words drive the
query from the index (`image_words`), read newest first for the longest term (a pair of
words, else the longest word: the rarest, as a rule), the other terms checked by key;
without words, the images are read newest first from their own index. Every other filter is
a condition on the image (and its batch's settings, the plan's for the original app's).
A page is two statements: its rows and its count.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, Select, and_, func, literal, select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from lora_core.data.models import (
    BatchLora,
    GeneratedImage,
    GenerationBatch,
    ImageFavorite,
    ImageWord,
    Sweep,
)
from lora_core.errors import InvalidSettings
from lora_core.gallery.queries import Page
from lora_core.generation.recipe import IMAGE_SIZES, NO_LORA
from lora_core.history.filters import IMAGE_SIZE, LORA_SCALE, STEPS, typed
from lora_core.identity import Identity
from lora_core.search.words import terms_of_search

PAGE_SIZE = 24
# Counted up to this many, then "1,000+", and paged that far: counting every match of a
# common word in 100k images would cost more than the page itself. A two-word search checks
# about four postings per match, some 3.5 µs a match at 100k images, so the cap is most of
# what such a page costs over a small gallery's (benchmarks/pages.py, "search words").
COUNT_CAP = 1_000
MAX_TERMS = 8  # each a key lookup per candidate image: a sentence is not a search


class Sort(StrEnum):
    NEWEST = "newest"
    STARS = "stars"


class Starred(StrEnum):
    MINE = "mine"
    ANYONE = "anyone"


@dataclass(frozen=True)
class SearchQuery:
    """Every filter optional, combined with AND; `date_to` inclusive (UTC days). `hidden`
    and `flagged` (admins only) include those images, which are otherwise left out."""

    text: str = ""  # words, any order; "a quoted phrase"
    lora_ids: tuple[str, ...] = ()  # made with one of these, first or stacked
    user: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    seed: str | None = None
    scale_min: float | None = None
    scale_max: float | None = None
    image_size: str | None = None
    steps: int | None = None
    stacked_with: tuple[str, ...] = ()  # one of these stacked on its first LoRA
    in_sweep: bool = False  # cells of sweeps and suite runs only
    starred: Starred | None = None
    hidden: bool = False
    flagged: bool = False
    sort: Sort = Sort.NEWEST
    after: str | None = None  # made after this moment (a saved search's new matches)

    @property
    def terms(self) -> list[str]:
        return terms_of_search(self.text)


# The link's parameter of each field (a list for those that take several).
PARAMS = {
    "text": "q", "lora_ids": "lora", "user": "user", "date_from": "from", "date_to": "to",
    "seed": "seed", "scale_min": "smin", "scale_max": "smax", "image_size": "size",
    "steps": "steps", "stacked_with": "stacked", "in_sweep": "sweep", "starred": "starred",
    "hidden": "hidden", "flagged": "flagged", "sort": "sort",
}  # fmt: skip


def from_params(params: Mapping[str, Sequence[str]], *, lora_ids: Mapping[str, str]) -> SearchQuery:
    """The search a link's parameters describe (each a list of values, as a link may
    repeat one). LoRAs are named by their labels (`lora_ids`: label → id), as bound widgets
    write them; an unknown label is left out. `InvalidSettings` for a value that is not
    one (a scale that is no number, an unknown size or date)."""
    values: dict[str, object] = {}
    for field in fields(SearchQuery):
        if field.name not in PARAMS:
            continue  # not in a link
        given = [value for value in params.get(PARAMS[field.name], ()) if value != ""]
        if not given:
            continue
        values[field.name] = _read(field.name, given, lora_ids)
    return SearchQuery(**values)  # type: ignore[arg-type]


def _read(name: str, given: list[str], lora_ids: Mapping[str, str]) -> object:
    one = given[-1].strip()
    try:
        if name in ("lora_ids", "stacked_with"):
            return tuple(dict.fromkeys(lora_ids[label] for label in given if label in lora_ids))
        if name in ("date_from", "date_to"):
            return date.fromisoformat(one)
        if name in ("scale_min", "scale_max"):
            return float(one)
        if name == "steps":
            return int(one)
        if name in ("in_sweep", "hidden", "flagged"):
            return one.lower() in ("true", "1", "yes")
        if name == "starred":
            return Starred(one)
        if name == "sort":
            return Sort(one)
        if name == "image_size" and one not in IMAGE_SIZES:
            raise ValueError(one)
    except (ValueError, KeyError):
        raise InvalidSettings(
            f"The link's {PARAMS[name]}={one!r} is not a value it takes."
        ) from None
    return typed(one) or None if name in ("user", "seed") else one


def conditions(query: SearchQuery, who: Identity) -> list[ColumnElement[bool]]:
    """The search's filters besides its words, on `GeneratedImage` (and its batch, joined
    outer: the original app's images have none, and the plan's settings)."""
    image = GeneratedImage
    parts: list[ColumnElement[bool]] = [col(image.lora_training_id) != NO_LORA]
    if not (who.is_admin and query.hidden):
        parts.append(col(image.hidden).is_(None))
    if not (who.is_admin and query.flagged):
        parts.append(func.coalesce(col(image.nsfw), False).is_(False))
    if query.lora_ids:
        stacked_in = select(col(BatchLora.batch_id)).where(
            col(BatchLora.lora_training_id).in_(query.lora_ids)
        )
        parts.append(
            col(image.lora_training_id).in_(query.lora_ids) | col(image.batch_id).in_(stacked_in)
        )
    if query.user:
        parts.append(col(image.user) == query.user)
    if query.date_from:
        parts.append(col(image.created_at) >= f"{query.date_from.isoformat()}T00:00:00.000Z")
    if query.date_to:
        parts.append(
            col(image.created_at) < f"{(query.date_to + timedelta(1)).isoformat()}T00:00:00.000Z"
        )
    if query.seed:
        parts.append(col(image.seed) == query.seed)
    if query.after:
        parts.append(col(image.created_at) > query.after)
    scale, size, steps = LORA_SCALE, IMAGE_SIZE, STEPS  # the batch's, else the plan's
    if query.scale_min is not None:
        parts.append(scale >= query.scale_min)
    if query.scale_max is not None:
        parts.append(scale <= query.scale_max)
    if query.image_size:
        parts.append(size == query.image_size)
    if query.steps is not None:
        parts.append(steps == query.steps)
    if query.stacked_with:
        parts.append(
            select(BatchLora.batch_id)
            .where(
                col(BatchLora.batch_id) == col(image.batch_id),
                col(BatchLora.lora_training_id).in_(query.stacked_with),
            )
            .exists()
        )
    if query.in_sweep:
        parts.append(col(GenerationBatch.sweep_id).in_(select(col(Sweep.id))))
    if query.starred is not None:
        starred = select(ImageFavorite.image_id).where(col(ImageFavorite.image_id) == col(image.id))
        if query.starred == Starred.MINE:
            starred = starred.where(col(ImageFavorite.user) == (who.user or ""))
        parts.append(starred.exists())
    return parts


def _matching(query: SearchQuery, who: Identity, *columns: object) -> tuple[Select, object]:
    """The search's images as a select of `columns`, and the time it reads them newest
    first by (the driving word's copy of it, or the image's own)."""
    terms = query.terms
    if len(terms) > MAX_TERMS:
        raise InvalidSettings(f"Search for at most {MAX_TERMS} words and phrases at once.")
    statement = select(*columns)
    if terms:
        driver = max(terms, key=lambda term: (" " in term, len(term)))
        first = aliased(ImageWord, name="driver")
        statement = statement.select_from(first).join(
            GeneratedImage, col(GeneratedImage.id) == first.image_id
        )
        others = [
            select(ImageWord.image_id)
            .where(col(ImageWord.word) == term, col(ImageWord.image_id) == first.image_id)
            .exists()
            for term in terms
            if term != driver
        ]
        statement = statement.where(first.word == driver, *others)
        moment = first.created_at
    else:
        statement = statement.select_from(GeneratedImage)
        moment = col(GeneratedImage.created_at)
    if _needs_batch(query):
        statement = statement.outerjoin(
            GenerationBatch, col(GenerationBatch.id) == col(GeneratedImage.batch_id)
        )
    return statement.where(and_(literal(True), *conditions(query, who))), moment


def _needs_batch(query: SearchQuery) -> bool:
    """Whether a filter reads the image's batch (its settings, its sweep): the join is
    left out otherwise, a lookup less for every image read."""
    return (
        query.scale_min is not None
        or query.scale_max is not None
        or query.image_size is not None
        or query.steps is not None
        or query.in_sweep
    )


def count(*, session: Session, query: SearchQuery, who: Identity) -> int:
    """How many images the search finds, up to `COUNT_CAP` + 1 (more: "1,000+"); one
    statement."""
    matching, _ = _matching(query, who, literal(1))
    capped = matching.limit(COUNT_CAP + 1).subquery()
    return session.scalar(select(func.count()).select_from(capped)) or 0


def search(
    *,
    session: Session,
    query: SearchQuery,
    who: Identity,
    page: int = 1,
    page_size: int = PAGE_SIZE,
) -> Page[GeneratedImage]:
    """One page of the search's images (newest first, or most starred first) and how many
    there are in all (up to `COUNT_CAP` + 1): two statements."""
    total = count(session=session, query=query, who=who)
    page = min(max(page, 1), max(math.ceil(total / page_size), 1))
    rows, moment = _matching(query, who, GeneratedImage)
    order = [moment.desc(), col(GeneratedImage.id).desc()]
    if query.sort == Sort.STARS:
        stars = (
            select(func.count())
            .where(col(ImageFavorite.image_id) == col(GeneratedImage.id))
            .scalar_subquery()
        )
        order.insert(0, stars.desc())
    items = list(
        session.scalars(rows.order_by(*order).offset((page - 1) * page_size).limit(page_size))
    )
    return Page(items=items, total=total, page=page, page_size=page_size)

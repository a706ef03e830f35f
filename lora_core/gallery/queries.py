"""The read side: LoRAs and the images generated from them. Every query is indexed."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    ColumnElement,
    Integer,
    Row,
    ScalarSelect,
    Select,
    bindparam,
    case,
    exists,
    func,
    literal,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from lora_core import legacy
from lora_core.data.models import (
    BatchLora,
    GeneratedImage,
    GenerationBatch,
    ImageFavorite,
    LoraStatus,
    LoraTraining,
    Verdict,
)
from lora_core.gallery import scorecards
from lora_core.generation.recipe import NO_LORA, StackedLora

T = TypeVar("T")


# A gallery card counts a LoRA's images up to this many, then says "10,000+": counting
# every image of a LoRA from its index on each visit grew with the LoRA
# (benchmarks/pages.py, "gallery, one LoRA"). Its own page counts them all, once.
IMAGE_COUNT_CAP = 10_000


@dataclass(frozen=True)
class LoraSummary:
    """A LoRA as the gallery shows it: the row, its image count (`IMAGE_COUNT_CAP` at the
    most: then `more_images`) and its cover (the image most users starred, else the
    latest; never one the safety checker flagged)."""

    lora: LoraTraining
    image_count: int
    cover_url: str | None
    cover_thumbnail_url: str | None = None
    more_images: bool = False


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    page: int
    page_size: int

    @property
    def page_count(self) -> int:
        return max(math.ceil(self.total / self.page_size), 1)


def clamp_page(page: int, total: int, page_size: int) -> int:
    """`page` within 1 .. the last page of `total` items."""
    return min(max(page, 1), max(math.ceil(total / page_size), 1))


def lora_names(*, session: Session) -> dict[str, str]:
    """Every LoRA's id and trigger word, newest first (for pickers)."""
    rows = session.execute(
        select(LoraTraining.id, LoraTraining.trigger_word).order_by(
            col(LoraTraining.created_at).desc()
        )
    ).all()
    return {row[0]: row[1] for row in rows}


def unique_labels(names: dict[str, str]) -> dict[str, str]:
    """LoRA id → its trigger word, or "trigger word (id)" where two LoRAs share one."""
    seen: dict[str, int] = {}
    for trigger_word in names.values():
        seen[trigger_word] = seen.get(trigger_word, 0) + 1
    return {
        lora_id: trigger_word if seen[trigger_word] == 1 else f"{trigger_word} ({lora_id})"
        for lora_id, trigger_word in names.items()
    }


def _shown_loras(with_hidden: bool) -> ColumnElement[bool]:
    return func.coalesce(col(LoraTraining.hidden), False).is_(False) | literal(with_hidden)


def _matched_loras(with_hidden: bool, only: ColumnElement[bool] | None) -> ColumnElement[bool]:
    """The LoRAs a gallery lists: those shown, and `only` those when given."""
    shown = _shown_loras(with_hidden)
    return shown if only is None else shown & only


def _count_loras(matched: ColumnElement[bool]) -> Select[tuple[int]]:
    return select(func.count()).select_from(LoraTraining).where(matched)


def _summaries(
    session: Session,
    *,
    with_hidden: bool,
    offset: int = 0,
    limit: int | None = None,
    pictures_first: bool = False,
    only: ColumnElement[bool] | None = None,
) -> list[LoraSummary]:
    """LoRAs newest first with their image count and cover, in one statement
    (`_summaries_statement`); `offset` and `limit` are its bound values."""
    rows = _summary_rows(
        session, with_hidden=with_hidden, offset=offset, limit=limit,
        pictures_first=pictures_first, only=only,
    )  # fmt: skip
    return [_summary(row) for row in rows]


def _summary(row: Row[Any]) -> LoraSummary:
    return LoraSummary(
        lora=row[0], image_count=min(row[1], IMAGE_COUNT_CAP), cover_url=row[2],
        cover_thumbnail_url=row[3], more_images=row[1] > IMAGE_COUNT_CAP,
    )  # fmt: skip


def _summary_rows(
    session: Session,
    *,
    with_hidden: bool,
    offset: int,
    limit: int | None,
    pictures_first: bool,
    only: ColumnElement[bool] | None,
    with_total: bool = False,
) -> list[Row[Any]]:
    """`_summaries`' rows; `with_total`: each ends with how many LoRAs there are in all."""
    statement = (
        _summaries_statement(
            with_hidden=with_hidden, pictures_first=pictures_first, with_total=with_total
        )
        if only is None
        else _build_summaries(
            with_hidden=with_hidden, pictures_first=pictures_first, only=only,
            with_total=with_total,
        )
    )  # fmt: skip
    values = {"offset": offset, "limit": -1 if limit is None else limit}
    return list(session.execute(statement, values).all())


@functools.cache
def _summaries_statement(
    *, with_hidden: bool, pictures_first: bool, with_total: bool = False
) -> Select[Any]:
    """Built once per process: the gallery asks on every page, and building and keying
    this statement for SQLAlchemy's cache cost more than running it (py-spy)."""
    return _build_summaries(
        with_hidden=with_hidden, pictures_first=pictures_first, only=None, with_total=with_total
    )


def _build_summaries(
    *,
    with_hidden: bool,
    pictures_first: bool,
    only: ColumnElement[bool] | None,
    with_total: bool = False,
) -> Select[Any]:
    """The page's rows are picked first, each with its count and its cover image's id
    (SQLite evaluates those subqueries only for the rows the limit lets through); the
    cover's URLs are then joined by that id. `pictures_first` puts the LoRAs with an image
    to show before those without (one index seek each). Offset and limit are bound values
    (`:offset`, `:limit`; -1: no limit, as SQLite and libSQL read it). `with_total` adds
    the number of LoRAs matched, a subquery evaluated once: the gallery's pager without a
    round trip of its own."""
    images = GeneratedImage.__table__
    shown_of_lora = (images.c.lora_training_id == LoraTraining.id, images.c.hidden.is_(None))
    # Past the cap, a walk of CAP index entries says so (CAP + 1) and no more are counted.
    beyond_cap = (
        select(images.c.created_at).where(*shown_of_lora).limit(1).offset(IMAGE_COUNT_CAP)
    ).scalar_subquery()
    count = case(
        (beyond_cap.is_not(None), IMAGE_COUNT_CAP + 1),
        else_=select(func.count()).select_from(images).where(*shown_of_lora).scalar_subquery(),
    )
    has_pictures = exists().where(*shown_of_lora)
    order = [col(LoraTraining.created_at).desc()]
    if pictures_first:
        order.insert(0, has_pictures.desc())
    columns = [count.label("image_count"), _cover_id().label("cover_id")]
    if pictures_first:
        columns.append(has_pictures.label("has_pictures"))
    matched = _matched_loras(with_hidden, only)
    page = (
        select(LoraTraining, *columns)
        .where(matched)
        .order_by(*order)
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
        .subquery()
    )
    lora = aliased(LoraTraining, page)
    cover = aliased(GeneratedImage)
    outer_order = [page.c.created_at.desc()]
    if pictures_first:
        outer_order.insert(0, page.c.has_pictures.desc())
    statement = (
        select(lora, page.c.image_count, cover.image_url, cover.thumbnail_url)
        .outerjoin(cover, col(cover.id) == page.c.cover_id)
        .order_by(*outer_order)
    )
    if with_total:
        statement = statement.add_columns(_count_loras(matched).scalar_subquery().label("total"))
    return statement


def _cover_id() -> ColumnElement[str]:
    """The LoRA's cover: its most-starred image (most recently starred among equals), else
    the latest one; only images the galleries may show and the safety checker passed."""
    images = GeneratedImage.__table__
    stars = ImageFavorite.__table__
    may_show = (images.c.hidden.is_(None), func.coalesce(images.c.nsfw, False).is_(False))
    most_starred = (
        select(stars.c.image_id)
        .join(images, images.c.id == stars.c.image_id)
        .where(stars.c.lora_training_id == LoraTraining.id, *may_show)
        .group_by(stars.c.image_id)
        .order_by(func.count().desc(), func.max(stars.c.created_at).desc())
        .limit(1)
        .scalar_subquery()
    )
    latest = (
        select(images.c.id)
        .where(images.c.lora_training_id == LoraTraining.id, *may_show)
        .order_by(images.c.created_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    return func.coalesce(most_starred, latest)


def list_loras(*, session: Session, with_hidden: bool = False) -> list[LoraSummary]:
    """Every LoRA (but hidden ones), newest first, with its image count and latest image."""
    return _summaries(session, with_hidden=with_hidden)


def list_lora_page(
    *,
    session: Session,
    page: int = 1,
    page_size: int = 24,
    verdict: Verdict | None = None,
    tag: str | None = None,
) -> Page[LoraSummary]:
    """One page of the gallery: the visible LoRAs with images first (a gallery opens on
    pictures), each group newest first, summarised as `list_loras` does; a page past the
    end shows the last one. `verdict`, `tag`: only LoRAs whose scorecard has them.

    One statement: the page's rows carry how many LoRAs there are; only a page past the
    end (no row to carry it) costs a count and the last page asked again."""
    only = scorecards.matches(verdict=verdict, tag=tag)
    page = max(page, 1)

    def rows_of(number: int) -> list[Row[Any]]:
        return _summary_rows(
            session, with_hidden=False, offset=(number - 1) * page_size, limit=page_size,
            pictures_first=True, only=only, with_total=True,
        )  # fmt: skip

    rows = rows_of(page)
    if rows:
        total = rows[0][-1]
    elif page == 1:
        total = 0  # no LoRA matches
    else:
        total = session.scalar(_count_loras(_matched_loras(False, only))) or 0
        page = clamp_page(page, total, page_size)
        rows = rows_of(page)
    items = [_summary(row) for row in rows]
    return Page(items=items, total=total, page=page, page_size=page_size)


def _shown_images(lora_id: str) -> ColumnElement[bool]:
    """The LoRA's images the galleries show: the partial index's condition, spelled as it."""
    return (col(GeneratedImage.lora_training_id) == lora_id) & col(GeneratedImage.hidden).is_(None)


def _stacked_exactly(stacked: StackedLora | None) -> ColumnElement[bool]:
    """An image's batch has exactly `stacked` added to its LoRA (None: nothing added)."""
    added = select(BatchLora).where(col(BatchLora.batch_id) == col(GeneratedImage.batch_id))
    if stacked is None:
        return ~exists(added)
    that_one = added.where(
        col(BatchLora.position) == 1,
        col(BatchLora.lora_training_id) == stacked.lora_id,
        col(BatchLora.lora_scale) == stacked.scale,
    )
    return exists(that_one) & ~exists(added.where(col(BatchLora.position) > 1))


def _stacked_batches(lora_id: str) -> Select[tuple[str]]:
    """The batches `lora_id` was added to (stacked on another LoRA: `batch_loras`)."""
    return select(col(BatchLora.batch_id)).where(col(BatchLora.lora_training_id) == lora_id)


def _shown_stacked_images(lora_id: str) -> ColumnElement[bool]:
    """The images of batches `lora_id` was stacked in on another LoRA, which its page shows
    too (marked with the other LoRAs): never its own images (a LoRA is never added to
    itself), nor a sweep's baseline cells (the base model, stacked or not: no LoRA page
    shows them, as their grid does)."""
    return (
        col(GeneratedImage.batch_id).in_(_stacked_batches(lora_id))
        & col(GeneratedImage.hidden).is_(None)
        & (col(GeneratedImage.lora_training_id) != NO_LORA)
    )


def count_lora_images(*, session: Session, lora_id: str) -> int:
    """How many images the LoRA's gallery shows (walks its part of the index), with those
    of batches it was stacked in."""
    return (
        session.scalar(
            select(
                select(func.count()).select_from(GeneratedImage).where(_shown_images(lora_id))
                .scalar_subquery()
                + select(func.count()).select_from(GeneratedImage)
                .where(_shown_stacked_images(lora_id)).scalar_subquery()
            )
        )
        or 0
    )  # fmt: skip


def stacked_in_others(count_key: tuple[object, ...]) -> bool:
    """Whether a LoRA's `image_count_key` says it has images in batches it was stacked in."""
    return bool(count_key[2])


def image_count_key(*, session: Session, lora_id: str) -> tuple[object, ...]:
    """What the LoRA's shown-image count depends on, in index seeks: its newest image
    (created_at, id), which changes whenever an image is added, and how many of its images
    are hidden, which changes with every hide or show, whichever process made it."""
    return count_key_of(session.execute(select(*count_key_columns(lora_id))).one())


def count_key_columns(lora_id: str) -> tuple[ScalarSelect[Any], ...]:
    """`image_count_key`'s parts as scalar subqueries, for a statement that reads them
    with something else (the LoRA page's header: `views.lora_view`); `count_key_of` makes
    the key of the values they read."""
    mine = col(GeneratedImage.lora_training_id) == lora_id

    def of_newest(column: ColumnElement[Any]) -> ScalarSelect[Any]:
        # The same index walk for both (created_at, then the id of that newest row).
        newest_first = col(GeneratedImage.created_at).desc()
        return select(column).where(mine).order_by(newest_first).limit(1).scalar_subquery()

    hidden = (
        select(func.count())
        .select_from(GeneratedImage)
        .where(mine & col(GeneratedImage.hidden).is_not(None))
    )
    # Batches it was stacked in (few): how many of their images, and how many are hidden.
    stacked = col(GeneratedImage.batch_id).in_(_stacked_batches(lora_id)) & (
        col(GeneratedImage.lora_training_id) != NO_LORA
    )
    return (
        of_newest(col(GeneratedImage.created_at)),
        of_newest(col(GeneratedImage.id)),
        hidden.scalar_subquery(),
        select(func.count()).where(stacked).scalar_subquery(),
        select(func.count()).where(stacked, col(GeneratedImage.hidden).is_not(None))
        .scalar_subquery(),
    )  # fmt: skip


def count_key_of(values: Sequence[Any]) -> tuple[object, ...]:
    """The key from `count_key_columns`' values: (newest (created_at, id) or None, hidden,
    stacked images, stacked hidden)."""
    newest_at, newest_id, *counts = values
    return (None if newest_id is None else (newest_at, newest_id), *counts)


def list_lora_images(
    *,
    session: Session,
    lora_id: str,
    page: int = 1,
    page_size: int = 24,
    total: int | None = None,
    stacked: bool | None = None,
) -> Page[GeneratedImage]:
    """One page of a LoRA's images, newest first, by every user (those of batches it was
    stacked in too; `stacked`: whether there are any, when the caller knows it).

    The `(lora_training_id, created_at)` index (whose entries end with the rowid) serves
    the order without a sort. A page's rows are picked in the index alone and then read by
    rowid, and pages in the older half are counted from the oldest end, so the last page of
    100,000 images costs what the first does. `total`, when the caller knows it (a cached
    count), is not counted again.
    """
    images, _rows = _lora_images(
        session, lora_id, page=page, page_size=page_size, total=total, stacked=stacked
    )
    return images


@dataclass(frozen=True)
class BatchFacts:
    """What a LoRA's page says of an image's batch: the sweep it is a cell of, its first
    LoRA's scale, and whether LoRAs were added to it (`batch_loras`)."""

    sweep_id: str | None
    first_scale: float | None
    stacked: bool


def _batch_fact_columns() -> tuple[ColumnElement[Any], ...]:
    """`BatchFacts`' columns, over `generation_batches`."""
    added = exists().where(col(BatchLora.batch_id) == col(GenerationBatch.id))
    return col(GenerationBatch.sweep_id), col(GenerationBatch.lora_scale), added


def list_lora_images_with_batches(
    *,
    session: Session,
    lora_id: str,
    page: int = 1,
    page_size: int = 24,
    total: int | None = None,
    stacked: bool | None = None,
) -> tuple[Page[GeneratedImage], dict[str, BatchFacts]]:
    """`list_lora_images`, with its images' batches' facts by batch id read in the same
    statement: a LoRA page's groups and marks cost no second round trip to the server."""
    images, rows = _lora_images(
        session, lora_id, page=page, page_size=page_size, total=total, stacked=stacked,
        with_batches=True,
    )  # fmt: skip
    facts = {
        image.batch_id: BatchFacts(sweep_id, first_scale, bool(added))
        for image, _rowid, sweep_id, first_scale, added in rows
        if image.batch_id
    }
    return images, facts


def batch_facts(*, session: Session, batch_ids: Iterable[str]) -> dict[str, BatchFacts]:
    """`BatchFacts` of these batches, by id (one statement; none when there are none)."""
    wanted = sorted(set(batch_ids))
    if not wanted:
        return {}
    rows = session.execute(
        select(col(GenerationBatch.id), *_batch_fact_columns()).where(
            col(GenerationBatch.id).in_(wanted)
        )
    )
    return {
        batch_id: BatchFacts(sweep_id, first_scale, bool(added))
        for batch_id, sweep_id, first_scale, added in rows
    }


def _lora_images(
    session: Session,
    lora_id: str,
    *,
    page: int,
    page_size: int,
    total: int | None,
    stacked: bool | None,
    with_batches: bool = False,
) -> tuple[Page[GeneratedImage], list[Row[Any]]]:
    """`list_lora_images`, and its rows newest first: (image, rowid) and, `with_batches`,
    the `_batch_fact_columns` of each image's batch (None for an image without one)."""
    if total is None:
        total = count_lora_images(session=session, lora_id=lora_id)
    page = clamp_page(page, total, page_size)
    skip = (page - 1) * page_size
    rowid = literal_column("generated_images.rowid")
    created = col(GeneratedImage.created_at)
    if stacked is None:
        stacked = bool(session.scalar(select(exists(_stacked_batches(lora_id)))))
    if stacked:
        # Stacked in other LoRAs' batches too: its own images and those, merged by time,
        # each part cut to what the page can reach (its own walked in index order).
        reach = skip + page_size
        both = union_all(
            *(
                select(rowid.label("id"), created.label("at"))
                .where(condition)
                .order_by(created.desc(), rowid.desc())
                .limit(reach)
                .subquery()
                .select()
                for condition in (_shown_images(lora_id), _shown_stacked_images(lora_id))
            )
        ).subquery()
        page_rowids = (
            select(both.c.id)
            .order_by(both.c.at.desc(), both.c.id.desc())
            .offset(skip)
            .limit(page_size)
        )
    else:
        page_rowids = _own_page(lora_id, skip=skip, total=total, page_size=page_size)
    statement = select(GeneratedImage, rowid)
    if with_batches:
        statement = statement.add_columns(*_batch_fact_columns()).outerjoin(
            GenerationBatch, col(GenerationBatch.id) == col(GeneratedImage.batch_id)
        )
    rows = session.execute(statement.where(rowid.in_(page_rowids))).all()
    newest_first = sorted(rows, key=lambda row: (row[0].created_at, row[1]), reverse=True)
    items = [row[0] for row in newest_first]
    return Page(items=items, total=total, page=page, page_size=page_size), newest_first


def _own_page(lora_id: str, *, skip: int, total: int, page_size: int) -> Select[tuple[int]]:
    """The rowids of one page of the LoRA's own images, picked in the index alone (pages
    in the older half counted from the oldest end)."""
    rowid = literal_column("generated_images.rowid")
    created = col(GeneratedImage.created_at)
    if skip <= total / 2:
        order, take = (created.desc(), rowid.desc()), page_size
    else:
        order, take = (created.asc(), rowid.asc()), min(page_size, total - skip)
        skip = max(total - skip - take, 0)
    return select(rowid).where(_shown_images(lora_id)).order_by(*order).offset(skip).limit(take)


def get_image(*, session: Session, lora_id: str, image_id: str | None) -> GeneratedImage | None:
    """One image of this LoRA, or None (unknown, malformed, or another LoRA's)."""
    if not image_id or len(image_id) > 128:
        return None
    image = session.get(GeneratedImage, image_id)
    if image is None:
        return None
    if image.lora_training_id == lora_id:
        return image
    if image.batch_id is not None and session.scalar(
        select(exists(_stacked_batches(lora_id).where(col(BatchLora.batch_id) == image.batch_id)))
    ):
        return image  # a batch it was stacked in: its page shows the image too
    return None


def batch_of(*, session: Session, image: GeneratedImage) -> list[GeneratedImage]:
    """Every image of `image`'s generation, in fal's order (as `group_by_batch` groups)."""
    if image.batch_id:
        query = select(GeneratedImage).where(col(GeneratedImage.batch_id) == image.batch_id)
    else:  # the original app's click
        query = select(GeneratedImage).where(legacy.same_click(image))
    return list(session.scalars(query.order_by(col(GeneratedImage.created_at))).all())


def list_ready_loras(*, session: Session) -> list[LoraTraining]:
    """The LoRAs one can generate from (completed, with weights, not hidden), newest first;
    the rows only, without the gallery's counts and covers."""
    return list(
        session.scalars(
            select(LoraTraining)
            .where(
                col(LoraTraining.status) == LoraStatus.COMPLETED,
                col(LoraTraining.lora_weights_url).is_not(None),
                _shown_loras(False),
            )
            .order_by(col(LoraTraining.created_at).desc())
        ).all()
    )


def latest_for_prompt(
    *,
    session: Session,
    lora_ids: Sequence[str],
    prompt: str,
    per_lora: int = 4,
    stacked: StackedLora | None = None,
) -> dict[str, list[GeneratedImage]]:
    """Each LoRA's latest images generated from exactly this prompt (as typed), newest
    first: one indexed query per LoRA (a comparison holds at most four). Made by the LoRA
    alone, or with `stacked` (exactly that LoRA at that scale) stacked on it: a comparison
    never mixes the two."""
    latest: dict[str, list[GeneratedImage]] = {}
    for lora_id in lora_ids:
        latest[lora_id] = list(
            session.scalars(
                select(GeneratedImage)
                .where(
                    col(GeneratedImage.lora_training_id) == lora_id,
                    col(GeneratedImage.prompt) == prompt,
                    func.coalesce(col(GeneratedImage.nsfw), False).is_(False),
                    col(GeneratedImage.hidden).is_(None),
                    _stacked_exactly(stacked),
                )
                .order_by(col(GeneratedImage.created_at).desc())
                .limit(per_lora)
            ).all()
        )
    return latest

"""History's table and exports: the filtered batches in the order asked for (newest first
unless a column is chosen), one page at a time, and the whole filtered set as CSV or
Parquet. Filtering, sorting and paging happen in SQL, over every batch the filter matches.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, ScalarSelect, Select, exists, func, select
from sqlmodel import Session, col

from lora_core.data.clock import parse_iso
from lora_core.data.models import (
    BatchLora,
    GeneratedImage,
    LoraTraining,
)
from lora_core.gallery.queries import Page
from lora_core.generation import stacks
from lora_core.history.filters import (
    BATCH_STATUS,
    GUIDANCE,
    IMAGE_SIZE,
    IMAGES_FLAGGED,
    IMAGES_SHOWN,
    LORA_SCALE,
    STEPS,
    Batch,
    HistoryFilter,
    HistoryStatus,
    batch_seconds,
    filtered,
)


@dataclass(frozen=True)
class HistoryRow:
    batch_id: str
    created_at: datetime
    user: str
    lora_id: str
    trigger_word: str | None
    prompt: str
    images_returned: int
    status: HistoryStatus
    duration_seconds: float | None
    thumbnail_url: str | None
    lora_scale: float = 1.5
    steps: int = 28
    guidance: float = 3.5
    image_size: str = "square_hd"
    seed: str | None = None  # the one fal used
    sweep_id: str | None = None  # a cell of this X/Y sweep (`lora_core.lab`)
    images_flagged: int = 0  # of those returned, flagged by fal's safety checker
    stacked_with: str = ""  # the LoRAs added to the first: "wtrclr at 0.6 · neonnoir at 0.8"

    @property
    def images_shown(self) -> int:
        return self.images_returned - self.images_flagged


class SortColumn(StrEnum):
    """The columns History's table can be sorted by (their names in the link's `sort`)."""

    TIME = "time"
    USER = "user"
    LORA = "lora"
    IMAGES = "images"
    STATUS = "status"
    DURATION = "duration"
    SCALE = "scale"
    STEPS = "steps"
    GUIDANCE = "guidance"


# Text reads best A to Z first; times and figures largest first (the newest, the slowest).
_TEXT_COLUMNS = frozenset({SortColumn.USER, SortColumn.LORA, SortColumn.STATUS})


@dataclass(frozen=True)
class HistoryOrder:
    """How the table is sorted: one column, one direction. As a link's `sort` parameter:
    the column's name, after a "-" when descending (`sort=-duration`), as Datasette does."""

    column: SortColumn = SortColumn.TIME
    descending: bool = True

    @classmethod
    def from_param(cls, text: str | None) -> HistoryOrder | None:
        """The order a link asks for: the default for none, None for a column there is not."""
        if not text:
            return cls()
        descending = text.startswith("-")
        try:
            return cls(SortColumn(text.removeprefix("-")), descending)
        except ValueError:
            return None

    def as_param(self) -> str:
        return f"{'-' if self.descending else ''}{self.column.value}"

    def on_click(self, column: SortColumn) -> HistoryOrder:
        """The order a click on `column`'s header gives: the other direction if the table
        is sorted by it, else that column's natural first direction."""
        if column == self.column:
            return HistoryOrder(column, not self.descending)
        return HistoryOrder(column, column not in _TEXT_COLUMNS)


_SORT_EXPRESSIONS: dict[SortColumn, Any] = {
    SortColumn.USER: col(Batch.user),
    SortColumn.LORA: func.coalesce(col(LoraTraining.trigger_word), col(Batch.lora_training_id)),
    SortColumn.IMAGES: IMAGES_SHOWN,
    SortColumn.STATUS: BATCH_STATUS,
    SortColumn.DURATION: col(Batch.duration_ms),  # batch_seconds' order: its index's
    SortColumn.SCALE: LORA_SCALE,
    SortColumn.STEPS: STEPS,
    SortColumn.GUIDANCE: GUIDANCE,
}


def _order_by(order: HistoryOrder) -> list[Any]:
    """The ORDER BY for `order`: by time, the batches' index alone (no sort); by another
    column, rows without a value last in either direction, ties newest first, then by id
    (one order for every page: a row is on one page only)."""
    created = col(Batch.created_at)
    if order.column == SortColumn.TIME:
        return [created.desc() if order.descending else created.asc()]
    expression = _SORT_EXPRESSIONS[order.column]
    first = expression.desc() if order.descending else expression.asc()
    return [first.nulls_last(), created.desc(), col(Batch.id).desc()]


def list_batches(
    *,
    session: Session,
    history_filter: HistoryFilter,
    order: HistoryOrder = HistoryOrder(),
    page: int = 1,
    page_size: int = 50,
    total: int | None = None,
) -> Page[HistoryRow]:
    """One page of batches in `order`, with their LoRA's trigger word and a thumbnail.

    `total` is the number of batches the filter matches, when the caller already has it
    (the summary counts them): then it is not counted again.
    """
    if total is None:
        total = session.scalar(filtered(history_filter, func.count())) or 0
    page = min(max(page, 1), max(math.ceil(total / page_size), 1))
    query = _page_rows(history_filter, order, offset=(page - 1) * page_size, limit=page_size)
    return Page(items=_history_rows(session, query), total=total, page=page, page_size=page_size)


def _page_rows(
    history_filter: HistoryFilter, order: HistoryOrder, *, offset: int, limit: int
) -> Select:
    """The table's rows of one page. By time, read in the index's order. By another
    column, every filtered batch is sorted, so the page's ids are chosen from the batch
    table alone first and its rows built for those only: with the LoRA's name joined in
    that sort, SQLite reads the batches in LoRA order to ease the join, a random row read
    per batch (benchmarks/pages.py, "history by duration")."""
    rows = _rows(history_filter).order_by(*_order_by(order))
    if order.column == SortColumn.TIME:
        return rows.offset(offset).limit(limit)
    ids = filtered(history_filter, Batch.id)
    if order.column == SortColumn.LORA:  # sorted by the LoRA's name: it is needed
        ids = ids.outerjoin(LoraTraining, col(LoraTraining.id) == col(Batch.lora_training_id))
    page_ids = ids.order_by(*_order_by(order)).offset(offset).limit(limit)
    return rows.where(col(Batch.id).in_(page_ids))


def find_batch(*, session: Session, batch_id: str) -> HistoryRow | None:
    """One batch as a row of the table, whatever the filter (a link's `?batch=…`)."""
    rows = _history_rows(session, _rows(HistoryFilter()).where(col(Batch.id) == batch_id))
    return rows[0] if rows else None


def batch_images(*, session: Session, batch_id: str) -> list[GeneratedImage]:
    """A batch's images in fal's order, those hidden from the galleries left out."""
    return list(
        session.scalars(
            select(GeneratedImage)
            .where(col(GeneratedImage.batch_id) == batch_id)
            .where(col(GeneratedImage.hidden).is_(None))  # as the galleries spell "shown"
            .order_by(col(GeneratedImage.created_at), col(GeneratedImage.id))
        ).all()
    )


def _rows(history_filter: HistoryFilter) -> Select:
    """The table's columns for the batches `history_filter` matches (not yet ordered)."""
    return filtered(
        history_filter,
        Batch.id,
        Batch.created_at,
        Batch.user,
        Batch.lora_training_id,
        LoraTraining.trigger_word,
        Batch.prompt,
        Batch.images_returned,
        BATCH_STATUS,
        batch_seconds,
        LORA_SCALE,
        STEPS,
        GUIDANCE,
        IMAGE_SIZE,
        Batch.sweep_id,
        IMAGES_FLAGGED,
        PREVIEW_URL,
        PREVIEW_SEED,
        STACKED,
    ).outerjoin(LoraTraining, col(LoraTraining.id) == col(Batch.lora_training_id))


def _history_rows(session: Session, query: Select) -> list[HistoryRow]:
    rows = session.execute(query).all()
    # The added LoRAs of the stacked rows only: none stacked (most pages), no second query.
    added = _added_loras(session, [row[0] for row in rows if row[17]], named=True)
    return [
        HistoryRow(
            batch_id=row[0],
            created_at=parse_iso(row[1]),
            user=row[2],
            lora_id=row[3],
            trigger_word=row[4],
            prompt=row[5],
            images_returned=row[6] or 0,
            status=HistoryStatus(row[7]),
            duration_seconds=None if row[8] is None else round(row[8], 1),
            thumbnail_url=row[15],
            lora_scale=row[9],
            steps=row[10],
            guidance=row[11],
            image_size=row[12],
            seed=row[16],
            sweep_id=row[13],
            images_flagged=row[14],
            stacked_with=added.get(row[0], ""),
        )
        for row in rows
    ]


def _added_loras(session: Session, batch_ids: list[str], *, named: bool) -> dict[str, str]:
    """Each stacked batch's added LoRAs in fal's order: by name ("wtrclr at 0.6 · …") for
    people, else "id:scale id:scale" for a file another program reads."""
    added = stacks.stacks_of(session, batch_ids)
    ids = {more.lora_id for stack in added.values() for more in stack}
    names = (
        dict(
            session.execute(
                select(
                    col(LoraTraining.id),
                    func.coalesce(col(LoraTraining.name), col(LoraTraining.trigger_word)),
                ).where(col(LoraTraining.id).in_(ids))
            ).all()
        )
        if named and ids
        else {}
    )
    if named:
        return {
            batch_id: " · ".join(f"{names.get(m.lora_id, m.lora_id)} at {m.scale:g}" for m in stack)
            for batch_id, stack in added.items()
        }
    return {batch_id: stacks.as_text(stack) for batch_id, stack in added.items()}


def lora_scales(*, session: Session) -> list[float]:
    """Every LoRA scale batches were generated with, smallest first (for the filter)."""
    values = session.scalars(select(LORA_SCALE).select_from(Batch).distinct())
    return sorted(float(value) for value in values if value is not None)


def _newest_shown(column: ColumnElement[Any]) -> ScalarSelect[Any]:
    """`column` of the batch's newest image not flagged by the safety checker, for each row
    of the page (a correlated subquery, an index seek by batch: part of the page's one
    statement rather than a second round trip)."""
    return (
        select(column)
        .where(col(GeneratedImage.batch_id) == col(Batch.id))
        .where(func.coalesce(col(GeneratedImage.nsfw), False).is_(False))
        .order_by(col(GeneratedImage.created_at).desc(), col(GeneratedImage.id).desc())
        .limit(1)
        .correlate(Batch)
        .scalar_subquery()
    )


# History's Preview column is a small picture: the thumbnail where there is one.
PREVIEW_URL = _newest_shown(
    func.coalesce(col(GeneratedImage.thumbnail_url), col(GeneratedImage.image_url))
)
PREVIEW_SEED = _newest_shown(col(GeneratedImage.seed))  # the seed fal used for it
# Whether the batch has LoRAs stacked on its first (a seek in the table's primary key).
STACKED = exists().where(col(BatchLora.batch_id) == col(Batch.id)).correlate(Batch)


EXPORT_COLUMNS = [
    "time",
    "user",
    "lora_id",
    "trigger_word",
    "prompt",
    "images_returned",
    "images_flagged",
    "status",
    "duration_seconds",
    "lora_scale",
    "steps",
    "guidance",
    "image_size",
    "seed",
    "sweep_id",
    "image_urls",
    "added_loras",
]


def export_frame(
    *,
    session: Session,
    history_filter: HistoryFilter,
    order: HistoryOrder = HistoryOrder(),
    base_url: str = "",
) -> pd.DataFrame:
    """Every filtered batch, in the table's `order`, with its image URLs and seed, for
    CSV/Parquet.

    Our own relative URLs (`app/static/media/…`) are made absolute with `base_url` (the
    app's address), so the file is useful outside the app.
    """
    urls = (
        select(func.group_concat(col(GeneratedImage.image_url), " "))
        .where(col(GeneratedImage.batch_id) == col(Batch.id))
        .scalar_subquery()
    )
    seed = (
        select(col(GeneratedImage.seed))
        .where(col(GeneratedImage.batch_id) == col(Batch.id))
        .limit(1)
        .scalar_subquery()
    )
    rows = session.execute(
        filtered(
            history_filter,
            Batch.created_at,
            Batch.user,
            Batch.lora_training_id,
            LoraTraining.trigger_word,
            Batch.prompt,
            func.coalesce(col(Batch.images_returned), 0),
            IMAGES_FLAGGED,
            BATCH_STATUS,
            func.round(batch_seconds, 1),
            LORA_SCALE,
            STEPS,
            GUIDANCE,
            IMAGE_SIZE,
            seed,
            Batch.sweep_id,
            urls,
            Batch.id,
        )
        .outerjoin(LoraTraining, col(LoraTraining.id) == col(Batch.lora_training_id))
        .order_by(*_order_by(order))
    ).all()
    frame = pd.DataFrame(rows, columns=[*EXPORT_COLUMNS[:-1], "batch_id"])
    # The LoRAs stacked on the first, "id:scale" in fal's order ("": the first alone).
    added = _added_loras(session, list(frame["batch_id"]), named=False)
    frame["added_loras"] = frame.pop("batch_id").map(lambda batch_id: added.get(batch_id, ""))
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    frame["image_urls"] = (
        frame["image_urls"]
        .fillna("")
        .map(lambda urls: " ".join(_absolute(url, base_url) for url in urls.split()))
    )
    return frame


def _absolute(url: str, base_url: str) -> str:
    if not base_url or url.startswith(("https://", "http://")):
        return url
    return f"{base_url.rstrip('/')}/{url}"


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def to_parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()

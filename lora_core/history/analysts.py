"""The analysts' view: generation batches across LoRAs and users, filtered, paged, summarised
and exported. Filtering, counting and paging all happen in SQL; only one page of rows, a few
aggregates and a bounded sample of prompts ever reach Python."""

from __future__ import annotations

import io
import math
import re
import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

import pandas as pd
from sqlalchemy import ColumnElement, Select, and_, case, func, literal, select, update
from sqlmodel import Session, col

from lora_core.data.clock import parse_iso
from lora_core.data.models import (
    BatchStatus,
    GeneratedImage,
    GenerationBatch,
    ImageFavorite,
    LoraTraining,
)
from lora_core.gallery.queries import Page
from lora_core.generation.generators import IMAGES_PER_BATCH

WORD_SAMPLE = 2_000
OTHER_LORAS = "other LoRAs"
_STOPWORDS = frozenset(
    "a an and are as at be by for from in into is it of on or the to with without".split()
)


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


@dataclass(frozen=True)
class HistorySummary:
    batches: int
    images: int
    users: int
    loras: int
    failure_rate: float
    safety_filter_rate: float
    median_seconds: float | None


_batch = GenerationBatch
_status = case(
    (col(_batch.status) == BatchStatus.FAILED, literal(HistoryStatus.FAILED.value)),
    (col(_batch.status) == BatchStatus.PENDING, literal(HistoryStatus.PENDING.value)),
    (
        func.coalesce(col(_batch.images_returned), 0) < IMAGES_PER_BATCH,
        literal(HistoryStatus.SAFETY_FILTERED.value),
    ),
    else_=literal(HistoryStatus.SUCCEEDED.value),
)
_seconds = col(_batch.duration_ms) / 1000.0


def _day_start(day: date) -> str:
    """The stored form of midnight UTC on `day`."""
    return f"{day.isoformat()}T00:00:00.000Z"


def _conditions(history_filter: HistoryFilter) -> ColumnElement[bool]:
    parts: list[ColumnElement[bool]] = []
    if history_filter.lora_ids:
        parts.append(col(_batch.lora_training_id).in_(history_filter.lora_ids))
    if history_filter.user:
        parts.append(col(_batch.wallet_address) == history_filter.user)
    if history_filter.date_from:
        parts.append(col(_batch.created_at) >= _day_start(history_filter.date_from))
    if history_filter.date_to:
        parts.append(col(_batch.created_at) < _day_start(history_filter.date_to + timedelta(1)))
    if history_filter.statuses:
        parts.append(_status.in_([status.value for status in history_filter.statuses]))
    if history_filter.prompt_contains and history_filter.prompt_contains.strip():
        needle = history_filter.prompt_contains.strip()
        escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        parts.append(col(_batch.prompt).ilike(f"%{escaped}%", escape="\\"))
    if history_filter.starred_by:
        starred = (
            select(col(GeneratedImage.batch_id))
            .join(ImageFavorite, col(ImageFavorite.image_id) == col(GeneratedImage.id))
            .where(col(ImageFavorite.wallet_address) == history_filter.starred_by)
        )
        parts.append(col(_batch.id).in_(starred))
    return and_(literal(True), *parts)


def _filtered(history_filter: HistoryFilter, *columns: object) -> Select:
    return select(*columns).select_from(_batch).where(_conditions(history_filter))


def list_batches(
    *,
    session: Session,
    history_filter: HistoryFilter,
    page: int = 1,
    page_size: int = 50,
    total: int | None = None,
) -> Page[HistoryRow]:
    """One page of batches, newest first, with their LoRA's trigger word and a thumbnail.

    `total` is the number of batches the filter matches, when the caller already has it
    (the summary counts them): then it is not counted again.
    """
    if total is None:
        total = session.scalar(_filtered(history_filter, func.count())) or 0
    page = min(max(page, 1), max(math.ceil(total / page_size), 1))
    rows = session.execute(
        _filtered(
            history_filter,
            _batch.id,
            _batch.created_at,
            _batch.wallet_address,
            _batch.lora_training_id,
            LoraTraining.trigger_word,
            _batch.prompt,
            _batch.images_returned,
            _status,
            _seconds,
        )
        .outerjoin(LoraTraining, col(LoraTraining.id) == col(_batch.lora_training_id))
        .order_by(col(_batch.created_at).desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    thumbnails = _first_images(session, [row[0] for row in rows])
    items = [
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
            thumbnail_url=thumbnails.get(row[0]),
        )
        for row in rows
    ]
    return Page(items=items, total=total, page=page, page_size=page_size)


def _first_images(session: Session, batch_ids: list[str]) -> dict[str, str]:
    if not batch_ids:
        return {}
    first: dict[str, str] = {}
    for batch_id, url in session.execute(
        select(GeneratedImage.batch_id, GeneratedImage.image_url)
        .where(col(GeneratedImage.batch_id).in_(batch_ids))
        .where(func.coalesce(col(GeneratedImage.nsfw), False).is_(False))
        .order_by(col(GeneratedImage.created_at).desc())
    ):
        first.setdefault(batch_id, url)
    return first


def summarize(*, session: Session, history_filter: HistoryFilter) -> HistorySummary:
    """Totals and rates over the whole filtered set."""
    return _summary(
        session,
        history_filter,
        users=len(user_counts(session=session, history_filter=history_filter)),
        loras=len(lora_counts(session=session, history_filter=history_filter)),
    )


def _summary(
    session: Session, history_filter: HistoryFilter, *, users: int, loras: int
) -> HistorySummary:
    """One aggregate query plus the median. The distinct users and LoRAs come from the
    grouped counts the charts need anyway: `count(DISTINCT …)` would sort the whole set
    twice more."""
    row = session.execute(
        _filtered(
            history_filter,
            func.count(),
            func.coalesce(func.sum(col(_batch.images_returned)), 0),
            func.sum(case((col(_batch.status) == BatchStatus.FAILED, 1), else_=0)),
            func.sum(
                case(
                    (
                        (col(_batch.status) == BatchStatus.SUCCEEDED)
                        & (func.coalesce(col(_batch.images_returned), 0) < IMAGES_PER_BATCH),
                        1,
                    ),
                    else_=0,
                )
            ),
        )
    ).one()
    batches = row[0] or 0
    return HistorySummary(
        batches=batches,
        images=row[1] or 0,
        users=users,
        loras=loras,
        failure_rate=(row[2] or 0) / batches if batches else 0.0,
        safety_filter_rate=(row[3] or 0) / batches if batches else 0.0,
        median_seconds=_median_seconds(session, history_filter),
    )


def _median_seconds(session: Session, history_filter: HistoryFilter) -> float | None:
    """The exact median; unfiltered, the (status, duration_ms) index serves it sort-free."""
    finished = and_(
        _conditions(history_filter),
        col(_batch.status) == BatchStatus.SUCCEEDED,
        col(_batch.duration_ms).is_not(None),
    )
    count = session.scalar(select(func.count()).select_from(_batch).where(finished)) or 0
    if not count:
        return None
    middle = session.scalars(
        select(col(_batch.duration_ms))
        .where(finished)
        .order_by(col(_batch.duration_ms))
        .offset((count - 1) // 2)
        .limit(2 - count % 2)
    ).all()
    return round(statistics.fmean(middle) / 1000, 1)


def _grouped_counts(
    session: Session, history_filter: HistoryFilter, column: ColumnElement[str]
) -> list[tuple[str, int]]:
    count = func.count().label("batches")
    rows = session.execute(
        _filtered(history_filter, column, count).group_by(column).order_by(count.desc())
    ).all()
    return [(row[0], row[1]) for row in rows]


def lora_counts(*, session: Session, history_filter: HistoryFilter) -> list[tuple[str, int]]:
    """(LoRA id, batches) of the filtered set, most first: one grouped scan of an index,
    shared by the summary and the charts."""
    return _grouped_counts(session, history_filter, col(_batch.lora_training_id))


def user_counts(*, session: Session, history_filter: HistoryFilter) -> list[tuple[str, int]]:
    """(user, batches) of the filtered set, most first; as `lora_counts`."""
    return _grouped_counts(session, history_filter, col(_batch.wallet_address))


def batches_per_day(
    *,
    session: Session,
    history_filter: HistoryFilter,
    lora_labels: dict[str, str],
    leaders: list[str] | None = None,
    top: int = 8,
) -> pd.DataFrame:
    """Columns day, lora, batches: the `top` LoRAs of the filtered set by name, others as one."""
    if leaders is None:
        leaders = [
            lora_id
            for lora_id, _count in lora_counts(session=session, history_filter=history_filter)[:top]
        ]
    # Two narrow queries, not one grouped by (day, LoRA-or-other): the day totals over the
    # time index, and the leaders' days over the LoRA index; "other" is the difference.
    day = func.substr(col(_batch.created_at), 1, 10).label("day")
    totals = session.execute(
        _filtered(history_filter, day, func.count()).group_by(day).order_by(day)
    ).all()
    leading = session.execute(
        _filtered(history_filter, day, col(_batch.lora_training_id), func.count())
        .where(col(_batch.lora_training_id).in_(leaders))
        .group_by(day, col(_batch.lora_training_id))
    ).all()
    led_per_day: Counter[str] = Counter()
    for row in leading:
        led_per_day[row[0]] += row[2]
    rows = [(row[0], lora_labels.get(row[1], row[1]), row[2]) for row in leading] + [
        (row[0], OTHER_LORAS, row[1] - led_per_day[row[0]])
        for row in totals
        if row[1] > led_per_day[row[0]]
    ]
    frame = pd.DataFrame(sorted(rows), columns=["day", "lora", "batches"])
    frame["day"] = pd.to_datetime(frame["day"], format="%Y-%m-%d")
    return frame


def top_loras(
    counts: list[tuple[str, int]], lora_labels: dict[str, str], limit: int = 10
) -> pd.DataFrame:
    """The LoRAs with the most batches, by name (a deleted LoRA by its id)."""
    return pd.DataFrame(
        [(lora_labels.get(lora_id, lora_id), count) for lora_id, count in counts[:limit]],
        columns=["lora", "batches"],
    )


def top_users(counts: list[tuple[str, int]], limit: int = 10) -> pd.DataFrame:
    """The users with the most batches."""
    return pd.DataFrame(counts[:limit], columns=["user", "batches"])


def prompt_words(
    *, session: Session, history_filter: HistoryFilter, limit: int = 20
) -> pd.DataFrame:
    """The most frequent words of the latest WORD_SAMPLE prompts (stop words left out)."""
    prompts = session.scalars(
        _filtered(history_filter, col(_batch.prompt))
        .order_by(col(_batch.created_at).desc())
        .limit(WORD_SAMPLE)
    ).all()
    words = Counter(
        word
        for prompt in prompts
        for word in re.findall(r"[a-z][a-z'-]+", prompt.lower())
        if word not in _STOPWORDS
    )
    return pd.DataFrame(words.most_common(limit), columns=["word", "count"])


EXPORT_COLUMNS = [
    "time",
    "user",
    "lora_id",
    "trigger_word",
    "prompt",
    "images_returned",
    "status",
    "duration_seconds",
    "seed",
    "image_urls",
]


def export_frame(
    *, session: Session, history_filter: HistoryFilter, base_url: str = ""
) -> pd.DataFrame:
    """Every filtered batch (newest first) with its image URLs and seed, for CSV/Parquet.

    Our own relative URLs (`app/static/media/…`) are made absolute with `base_url` (the
    app's address), so the file is useful outside the app.
    """
    urls = (
        select(func.group_concat(col(GeneratedImage.image_url), " "))
        .where(col(GeneratedImage.batch_id) == col(_batch.id))
        .scalar_subquery()
    )
    seed = (
        select(col(GeneratedImage.seed))
        .where(col(GeneratedImage.batch_id) == col(_batch.id))
        .limit(1)
        .scalar_subquery()
    )
    rows = session.execute(
        _filtered(
            history_filter,
            _batch.created_at,
            _batch.wallet_address,
            _batch.lora_training_id,
            LoraTraining.trigger_word,
            _batch.prompt,
            func.coalesce(col(_batch.images_returned), 0),
            _status,
            func.round(_seconds, 1),
            seed,
            urls,
        )
        .outerjoin(LoraTraining, col(LoraTraining.id) == col(_batch.lora_training_id))
        .order_by(col(_batch.created_at).desc())
    ).all()
    frame = pd.DataFrame(rows, columns=EXPORT_COLUMNS)
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


@dataclass(frozen=True)
class Overview:
    """Everything above the table: the summary and the chart data."""

    summary: HistorySummary
    per_day: pd.DataFrame
    top_loras: pd.DataFrame
    top_users: pd.DataFrame
    words: pd.DataFrame


def overview(
    *, session: Session, history_filter: HistoryFilter, lora_labels: dict[str, str]
) -> Overview:
    counts = lora_counts(session=session, history_filter=history_filter)
    users = user_counts(session=session, history_filter=history_filter)
    return Overview(
        summary=_summary(session, history_filter, users=len(users), loras=len(counts)),
        per_day=batches_per_day(
            session=session,
            history_filter=history_filter,
            lora_labels=lora_labels,
            leaders=[lora_id for lora_id, _count in counts[:8]],
        ),
        top_loras=top_loras(counts, lora_labels),
        top_users=top_users(users),
        words=prompt_words(session=session, history_filter=history_filter),
    )


def data_version(*, session: Session, starred_by: str | None = None) -> tuple[object, ...]:
    """What a cached overview depends on: changes whenever a batch is added (the original
    app's adopted batches too, whatever their time), one stops being pending, and, for the
    "I starred" filter, whenever that user's stars change. One statement of index lookups:
    a count of the batch table's smallest index, the few pending ones, two maxima."""
    pending = literal(BatchStatus.PENDING.value, literal_execute=True)  # the partial index
    parts = [
        select(func.count()).select_from(_batch).scalar_subquery(),
        select(func.count())
        .select_from(_batch)
        .where(col(_batch.status) == pending)
        .scalar_subquery(),
        select(func.max(col(_batch.created_at))).scalar_subquery(),
        select(func.max(col(_batch.finished_at))).scalar_subquery(),
    ]
    if starred_by:
        mine = col(ImageFavorite.wallet_address) == starred_by
        parts += [
            select(func.count()).select_from(ImageFavorite).where(mine).scalar_subquery(),
            select(func.max(col(ImageFavorite.created_at))).where(mine).scalar_subquery(),
        ]
    return tuple(session.execute(select(*parts)).one())


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def to_parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def recent_prompts(*, session: Session, user: str, limit: int = 20) -> list[str]:
    """The user's own latest distinct prompts, newest first (for "My prompts")."""
    latest = func.max(col(_batch.created_at)).label("latest")
    rows = session.execute(
        select(col(_batch.prompt), latest)
        .where(col(_batch.wallet_address) == user)
        .group_by(col(_batch.prompt))
        .order_by(latest.desc())
        .limit(limit)
    ).all()
    return [row[0] for row in rows]


def adopt_legacy_images(*, session: Session) -> int:
    """Give the original app's generations (images without a batch) their batch rows, so
    History shows every prompt. Images of one click share user, LoRA, prompt and second.

    Cheap when there is nothing to adopt (one lookup on the batch index); safe to repeat,
    also while the original app keeps writing. Returns how many batches were created.
    """
    legacy = session.execute(
        select(
            GeneratedImage.id,
            GeneratedImage.lora_training_id,
            GeneratedImage.wallet_address,
            GeneratedImage.prompt,
            GeneratedImage.created_at,
        ).where(col(GeneratedImage.batch_id).is_(None))  # idx_gen_images_batch: no scan
    ).all()
    legacy = sorted(legacy, key=lambda row: row[4])  # oldest first (not in SQL: see above)
    groups: dict[tuple[str, str, str, str], list[tuple[str, str]]] = {}
    for image_id, lora_id, user, prompt, created_at in legacy:
        key = (lora_id, user, prompt, created_at[:19])
        groups.setdefault(key, []).append((image_id, created_at))
    for (lora_id, user, prompt, _second), images in groups.items():
        batch_id = f"legacy-{images[0][0]}"
        session.add(
            GenerationBatch(
                id=batch_id,
                lora_training_id=lora_id,
                wallet_address=user,
                prompt=prompt,
                status=BatchStatus.SUCCEEDED,
                images_returned=len(images),
                created_at=images[0][1],
                finished_at=images[0][1],
            )
        )
        session.execute(
            update(GeneratedImage)
            .where(col(GeneratedImage.id).in_([image_id for image_id, _ in images]))
            .values(batch_id=batch_id)
        )
    session.commit()
    return len(groups)

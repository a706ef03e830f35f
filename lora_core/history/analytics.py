"""History's summary and charts over the filtered set: counts, rates and the median in
SQL, a bounded sample of prompts in Python; and the data version that keys their cache.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import ColumnElement, and_, case, func, literal, select
from sqlmodel import Session, col

from lora_core.data.models import (
    BatchStatus,
    ImageFavorite,
)
from lora_core.generation.recipe import NO_LORA
from lora_core.history.filters import (
    IMAGES_SHOWN,
    MEGAPIXELS,
    SAFETY_TOUCHED,
    Batch,
    HistoryFilter,
    conditions,
    filtered,
)

WORD_SAMPLE = 2_000


OTHER_LORAS = "other LoRAs"


_STOPWORDS = frozenset(
    "a an and are as at be by for from in into is it of on or the to with without".split()
)


@dataclass(frozen=True)
class HistorySummary:
    batches: int
    images: int
    users: int
    loras: int
    failure_rate: float
    safety_filter_rate: float
    median_seconds: float | None
    megapixels: float = 0.0  # what fal bills; spend = megapixels x the price per megapixel


def summarize(*, session: Session, history_filter: HistoryFilter) -> HistorySummary:
    """Totals and rates over the whole filtered set."""
    return _summary(
        session,
        history_filter,
        users=len(user_counts(session=session, history_filter=history_filter)),
        loras=_loras_in(lora_counts(session=session, history_filter=history_filter)),
    )


def _loras_in(counts: list[tuple[str, int]]) -> int:
    """How many LoRAs generated: a sweep's base-model baseline (NO_LORA) is none."""
    return sum(1 for lora_id, _count in counts if lora_id != NO_LORA)


def _summary(
    session: Session, history_filter: HistoryFilter, *, users: int, loras: int
) -> HistorySummary:
    """One aggregate query plus the median. The distinct users and LoRAs come from the
    grouped counts the charts need anyway: `count(DISTINCT …)` would sort the whole set
    twice more."""
    row = session.execute(
        filtered(
            history_filter,
            func.count(),
            func.coalesce(func.sum(IMAGES_SHOWN), 0),
            func.sum(case((col(Batch.status) == BatchStatus.FAILED, 1), else_=0)),
            func.sum(
                case(((col(Batch.status) == BatchStatus.SUCCEEDED) & SAFETY_TOUCHED, 1), else_=0)
            ),
            func.coalesce(func.sum(MEGAPIXELS), 0),
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
        megapixels=float(row[4] or 0),
    )


def _median_seconds(session: Session, history_filter: HistoryFilter) -> float | None:
    """The exact median; unfiltered, the (status, duration_ms) index serves it sort-free."""
    finished = and_(
        conditions(history_filter),
        col(Batch.status) == BatchStatus.SUCCEEDED,
        col(Batch.duration_ms).is_not(None),
    )
    count = session.scalar(select(func.count()).select_from(Batch).where(finished)) or 0
    if not count:
        return None
    middle = session.scalars(
        select(col(Batch.duration_ms))
        .where(finished)
        .order_by(col(Batch.duration_ms))
        .offset((count - 1) // 2)
        .limit(2 - count % 2)
    ).all()
    return round(statistics.fmean(middle) / 1000, 1)


def _grouped_counts(
    session: Session, history_filter: HistoryFilter, column: ColumnElement[str]
) -> list[tuple[str, int]]:
    count = func.count().label("batches")
    rows = session.execute(
        filtered(history_filter, column, count).group_by(column).order_by(count.desc())
    ).all()
    return [(row[0], row[1]) for row in rows]


def lora_counts(*, session: Session, history_filter: HistoryFilter) -> list[tuple[str, int]]:
    """(LoRA id, batches) of the filtered set, most first: one grouped scan of an index,
    shared by the summary and the charts."""
    return _grouped_counts(session, history_filter, col(Batch.lora_training_id))


def user_counts(*, session: Session, history_filter: HistoryFilter) -> list[tuple[str, int]]:
    """(user, batches) of the filtered set, most first; as `lora_counts`."""
    return _grouped_counts(session, history_filter, col(Batch.user))


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
    day = func.substr(col(Batch.created_at), 1, 10).label("day")
    totals = session.execute(
        filtered(history_filter, day, func.count()).group_by(day).order_by(day)
    ).all()
    leading = session.execute(
        filtered(history_filter, day, col(Batch.lora_training_id), func.count())
        .where(col(Batch.lora_training_id).in_(leaders))
        .group_by(day, col(Batch.lora_training_id))
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


def megapixels_per_day(
    *, session: Session, history_filter: HistoryFilter, by: ColumnElement[str]
) -> pd.DataFrame:
    """Columns day, who (the `by` column's value), megapixels: what fal billed, per day."""
    day = func.substr(col(Batch.created_at), 1, 10).label("day")
    rows = session.execute(
        filtered(history_filter, day, by, func.sum(MEGAPIXELS))
        .where(func.coalesce(col(Batch.images_returned), 0) > 0)
        .group_by(day, by)
        .order_by(day)
    ).all()
    return pd.DataFrame(
        [(row[0], row[1], float(row[2])) for row in rows], columns=["day", "who", "megapixels"]
    )


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
        filtered(history_filter, col(Batch.prompt))
        .order_by(col(Batch.created_at).desc())
        .limit(WORD_SAMPLE)
    ).all()
    words = Counter(
        word
        for prompt in prompts
        for word in re.findall(r"[a-z][a-z'-]+", prompt.lower())
        if word not in _STOPWORDS
    )
    return pd.DataFrame(words.most_common(limit), columns=["word", "count"])


@dataclass(frozen=True)
class Overview:
    """Everything above the table: the summary and the chart data."""

    summary: HistorySummary
    per_day: pd.DataFrame
    top_loras: pd.DataFrame
    top_users: pd.DataFrame
    words: pd.DataFrame
    spend_by_user: pd.DataFrame  # day, who, megapixels
    spend_by_lora: pd.DataFrame  # day, who (the LoRA's label), megapixels


def overview(
    *, session: Session, history_filter: HistoryFilter, lora_labels: dict[str, str]
) -> Overview:
    counts = lora_counts(session=session, history_filter=history_filter)
    users = user_counts(session=session, history_filter=history_filter)
    return Overview(
        summary=_summary(session, history_filter, users=len(users), loras=_loras_in(counts)),
        per_day=batches_per_day(
            session=session,
            history_filter=history_filter,
            lora_labels=lora_labels,
            leaders=[lora_id for lora_id, _count in counts[:8]],
        ),
        top_loras=top_loras(counts, lora_labels),
        top_users=top_users(users),
        words=prompt_words(session=session, history_filter=history_filter),
        spend_by_user=megapixels_per_day(
            session=session, history_filter=history_filter, by=col(Batch.user)
        ),
        spend_by_lora=_labelled(
            megapixels_per_day(
                session=session, history_filter=history_filter, by=col(Batch.lora_training_id)
            ),
            lora_labels,
        ),
    )


def _labelled(frame: pd.DataFrame, lora_labels: dict[str, str]) -> pd.DataFrame:
    return frame.assign(who=frame["who"].map(lambda lora_id: lora_labels.get(lora_id, lora_id)))


def data_version(*, session: Session, starred_by: str | None = None) -> tuple[object, ...]:
    """What a cached overview depends on: changes whenever a batch is added (the original
    app's adopted batches too, whatever their time), one stops being pending, and, for the
    "I starred" filter, whenever that user's stars change. One statement of index lookups:
    a count of the batch table's smallest index, the few pending ones, two maxima."""
    pending = literal(BatchStatus.PENDING.value, literal_execute=True)  # the partial index
    parts = [
        select(func.count()).select_from(Batch).scalar_subquery(),
        select(func.count())
        .select_from(Batch)
        .where(col(Batch.status) == pending)
        .scalar_subquery(),
        select(func.max(col(Batch.created_at))).scalar_subquery(),
        select(func.max(col(Batch.finished_at))).scalar_subquery(),
    ]
    if starred_by:
        mine = col(ImageFavorite.user) == starred_by
        parts += [
            select(func.count()).select_from(ImageFavorite).where(mine).scalar_subquery(),
            select(func.max(col(ImageFavorite.created_at))).where(mine).scalar_subquery(),
        ]
    return tuple(session.execute(select(*parts)).one())

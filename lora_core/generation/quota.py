"""Generation quota: N batches per user per rolling window, reserved atomically.

A batch holds a slot from the moment it is reserved (status `pending`) until it fails; a
`succeeded` batch counts once however many images fal returned. A `pending` batch that fal
accepted (it has a request id) holds its slot until fal's terminal answer ends it, as fal
may bill it; one that never reached fal and is older than `abandoned_after` was abandoned
(the process died before the submit) and no longer counts.
Images written by the original web app (no batch) count as its plan did: one batch per 4.
A sweep's cells (batches of one image, `lora_core.lab.sweeps`) count by four in the same
way: a sweep holds ceil(cells holding a slot / 4) slots, so a sweep whose every cell failed
holds none.

The reservation is a single conditional `INSERT … SELECT … WHERE (used in window) < limit`
(a sweep's cells: one `INSERT … SELECT` of them all, each under the same condition):
no interactive transaction is needed, and on SQLite/libSQL, which run one writing statement
at a time, concurrent requests can never exceed the limit.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    Engine,
    Exists,
    ScalarSelect,
    Select,
    String,
    bindparam,
    exists,
    func,
    insert,
    literal,
    select,
    union_all,
    update,
)
from sqlmodel import Session, SQLModel, col

from lora_core import legacy
from lora_core.data.clock import parse_iso, to_iso, utc_now
from lora_core.data.db import session_scope
from lora_core.data.leases import Lease
from lora_core.data.models import BatchStatus, GeneratedImage, GenerationBatch
from lora_core.errors import InvalidSweep, QuotaExceeded
from lora_core.generation.generators import IMAGES_PER_BATCH

# A slot buys one batch of 4 images, or 4 cells of a sweep.
CELLS_PER_SLOT = IMAGES_PER_BATCH


@dataclass(frozen=True)
class QuotaPolicy:
    """`limit` uses per user in any rolling `window`, none for `exempt_users`; a use still
    pending after `abandoned_after` belongs to a process that died and no longer counts.
    Generations and trainings each have one (`lora_core.studio` builds them)."""

    limit: int
    window: timedelta
    exempt_users: frozenset[str] = frozenset()
    abandoned_after: timedelta = timedelta(minutes=15)

    def is_exempt(self, user: str) -> bool:
        return user in self.exempt_users


@dataclass(frozen=True)
class QuotaStatus:
    limit: int
    used: int
    is_exempt: bool
    window: timedelta
    next_slot_at: datetime | None
    """When a slot frees up, if none is free now."""

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)

    @property
    def exhausted(self) -> bool:
        return not self.is_exempt and self.remaining == 0

    def can_take(self, slots: int) -> bool:
        """Whether `slots` more fit in what is left (always, for the exempt)."""
        return self.is_exempt or slots <= self.remaining


# The quota's conditions take the user and the moment as bound parameters, so that its
# statements are built (and keyed for SQLAlchemy's compiled cache) once, not on every page:
# building and keying the slots-in-use query took more CPU than running it, and the
# sidebar asks for it on every page. `_moment` gives their values.
_USER = bindparam("quota_user", type_=String())
_WINDOW_START = bindparam("quota_window_start", type_=String())
_ABANDONED_BEFORE = bindparam("quota_abandoned_before", type_=String())
_NOW = bindparam("quota_now", type_=String())


def _moment(policy: QuotaPolicy, user: str, now: datetime) -> dict[str, str]:
    """The values of the quota's parameters for `user` at `now`."""
    return {
        "quota_user": user,
        "quota_window_start": to_iso(now - policy.window),
        "quota_abandoned_before": to_iso(now - policy.abandoned_after),
        "quota_now": to_iso(now),
    }


def _pending_alive() -> ColumnElement[bool]:
    """A pending batch still holds its slot while fal may bill it (fal accepted it: it has
    a request id, and the background sweep follows it until fal's terminal answer), while
    younger than `abandoned_after`, or while a live process holds its lease (a sweep's cell
    queued behind others: it is not yet abandoned, however long it waits)."""
    return (col(GenerationBatch.status) == BatchStatus.PENDING) & (
        (col(GenerationBatch.created_at) > _ABANDONED_BEFORE)
        | (col(GenerationBatch.lease_until) > _NOW)
        | col(GenerationBatch.fal_request_id).is_not(None)
    )


def _holds_slot() -> ColumnElement[bool]:
    """Batches of the user in the window that hold a slot: succeeded, or pending and alive."""
    return (
        (col(GenerationBatch.wallet_address) == _USER)
        & (col(GenerationBatch.created_at) > _WINDOW_START)
        & ((col(GenerationBatch.status) == BatchStatus.SUCCEEDED) | _pending_alive())
    )


def _ceil_slots(cells: ColumnElement[int] | ScalarSelect[int]) -> ColumnElement[int]:
    """Slots `cells` take: four to a slot, in SQL."""
    return (cells + (CELLS_PER_SLOT - 1)) // CELLS_PER_SLOT


def _used(adding: tuple[str, int] | None = None) -> ScalarSelect[int]:
    """Slots in use, as one scalar subquery: our batches, our sweeps' cells by four, and the
    original app's images by four. With `adding` (sweep id, cells), the slots in use once
    that many cells are added to that sweep (a new one, or a failed cell tried again)."""
    holding = _holds_slot()
    sweep_id = col(GenerationBatch.sweep_id)
    batches = (
        select(func.count())
        .select_from(GenerationBatch)
        .where(holding & sweep_id.is_(None))
        .scalar_subquery()
    )
    live = (
        select(sweep_id.label("sweep_id"), func.count().label("cells"))
        .where(holding & sweep_id.is_not(None))
        .group_by(sweep_id)
        .subquery()
    )
    other_sweeps = select(func.coalesce(func.sum(_ceil_slots(live.c.cells)), 0))
    sweeps: ColumnElement[int] | ScalarSelect[int]
    if adding is None:
        sweeps = other_sweeps.scalar_subquery()
    else:
        added_to, cells = adding
        already = (
            select(func.count())
            .select_from(GenerationBatch)
            .where(holding & (sweep_id == added_to))
            .scalar_subquery()
        )
        sweeps = other_sweeps.where(live.c.sweep_id != added_to).scalar_subquery() + _ceil_slots(
            already + cells
        )
    per = legacy.IMAGES_PER_LEGACY_BATCH
    legacy_slots = (
        select((func.count() + (per - 1)) // per)  # `legacy.slots_for`, in SQL
        .select_from(GeneratedImage)
        .where(legacy.images_in_window(_USER, _WINDOW_START))
        .scalar_subquery()
    )
    return select(batches + sweeps + legacy_slots).scalar_subquery()


@functools.cache
def _slots_in_use() -> Select[tuple[int]]:
    """The slots-in-use query, built on first use and then kept; run with `_moment`."""
    return select(_used())


def get_status(
    *, session: Session, policy: QuotaPolicy, user: str, now: datetime | None = None
) -> QuotaStatus:
    """How many slots `user` has used in the window, and when the next one frees up."""
    now = now or utc_now()
    used = session.scalar(_slots_in_use(), _moment(policy, user, now)) or 0
    return QuotaStatus(
        limit=policy.limit,
        used=used,
        is_exempt=policy.is_exempt(user),
        window=policy.window,
        next_slot_at=_next_slot_at(session, policy, user, now, used),
    )


def _next_slot_at(
    session: Session, policy: QuotaPolicy, user: str, now: datetime, used: int
) -> datetime | None:
    """The first moment, as uses leave the window oldest first, when `used < limit`: each
    batch, each sweep's cells (by four) and the original app's images (by four) counted
    as `_used` counts them."""
    if used < policy.limit or policy.is_exempt(user):
        return None
    moment = _moment(policy, user, now)
    rows = session.execute(
        select(col(GenerationBatch.created_at), col(GenerationBatch.sweep_id)).where(_holds_slot()),
        moment,
    ).all()
    batch_times = [created_at for created_at, sweep in rows if sweep is None]
    sweep_times: dict[str, list[str]] = {}
    for created_at, sweep in rows:
        if sweep is not None:
            sweep_times.setdefault(sweep, []).append(created_at)
    legacy_times = list(
        session.scalars(
            select(GeneratedImage.created_at).where(legacy.images_in_window(_USER, _WINDOW_START)),
            moment,
        )
    )
    for expiring in sorted({created_at for created_at, _ in rows} | set(legacy_times)):
        still = sum(1 for moment in batch_times if moment > expiring)
        for times in sweep_times.values():
            still += -(-sum(1 for moment in times if moment > expiring) // CELLS_PER_SLOT)
        still += legacy.slots_for(sum(1 for moment in legacy_times if moment > expiring))
        if still < policy.limit:
            return parse_iso(expiring) + policy.window
    return None


def reserve(
    *,
    engine: Engine,
    policy: QuotaPolicy,
    user: str,
    lora_id: str,
    prompt: str,
    lease: Lease | None = None,
    columns: Mapping[str, object] | None = None,
    now: datetime | None = None,
) -> str:
    """Record a pending batch for `user` if a slot is free; return its id.

    With a `lease`, the batch is born held by the caller (`lora_core.data.leases`).
    `columns` are more of the batch's columns (its settings), written in the same insert.
    Exempt users always get a batch (it is still recorded, for history).
    Raises `QuotaExceeded` when every slot of the window is taken.
    """
    now = now or utc_now()
    batch_id = uuid.uuid4().hex
    values = select(
        literal(batch_id),
        literal(lora_id),
        literal(user),
        literal(prompt),
        literal(BatchStatus.PENDING.value),
        literal(to_iso(now)),
        literal(lease and lease.holder),
        literal(lease and to_iso(lease.until)),
        *(literal(value) for value in (columns or {}).values()),
    )
    if not policy.is_exempt(user):
        values = values.where(_used() < policy.limit)
    statement = insert(GenerationBatch).from_select(
        [
            "id",
            "lora_training_id",
            "wallet_address",
            "prompt",
            "status",
            "created_at",
            "lease_holder",
            "lease_until",
            *(columns or {}),
        ],
        values.params(_moment(policy, user, now)),
    )
    # One statement, first in its transaction: SQLite takes the write lock before it
    # reads the count, and a libSQL server runs it as one atomic statement.
    with session_scope(engine) as session:
        inserted = session.execute(statement).rowcount
        session.commit()
        if inserted == 1:
            return batch_id
        status = get_status(session=session, policy=policy, user=user, now=now)
    raise QuotaExceeded(
        f"You've used all {policy.limit} generations for this period.",
        limit=policy.limit,
        window=policy.window,
        next_slot_at=status.next_slot_at,
    )


def reserve_cells(
    *,
    engine: Engine,
    policy: QuotaPolicy,
    user: str,
    sweep_id: str,
    cells: list[Mapping[str, object]],
    lease: Lease,
    also: SQLModel | None = None,
    free_places: bool = False,
    now: datetime | None = None,
) -> list[str]:
    """Record a sweep's pending cells (each a batch's columns: LoRA, prompt, settings,
    place) in one statement, all or none: only if the slots they add fit; return their ids.

    `also` (the sweep's own row) is written in the same transaction. Cells added to a sweep
    that has some (a failed cell tried again) count with its cells still holding a slot.
    With `free_places`, a cell is written only if no try at its place (`sweep_x`,
    `sweep_y`) is pending or succeeded: a failed cell retried twice at once runs once
    (`InvalidSweep` for the other). Raises `QuotaExceeded` saying how many slots the cells
    need and how many are left.
    """
    if not cells:
        return []
    now = now or utc_now()
    names = list(cells[0])
    fixed = {
        "wallet_address": user,
        "status": BatchStatus.PENDING.value,
        "created_at": to_iso(now),
        "sweep_id": sweep_id,
        **lease.columns(),
    }
    fits = _used(adding=(sweep_id, len(cells))) <= policy.limit
    ids, rows = [], []
    for cell in cells:
        batch_id = uuid.uuid4().hex
        ids.append(batch_id)
        row = select(
            literal(batch_id),
            *(literal(v) for v in fixed.values()),
            *(literal(cell[n]) for n in names),
        )
        if not policy.is_exempt(user):
            row = row.where(fits)
        if free_places:
            row = row.where(~_place_taken(sweep_id, cell["sweep_x"], cell["sweep_y"]))
        rows.append(row)
    statement = insert(GenerationBatch).from_select(
        ["id", *fixed, *names], union_all(*rows).params(_moment(policy, user, now))
    )
    # One statement, first in its transaction (see `reserve`). SQLite evaluates the
    # SELECT in full before inserting (it reads the table it inserts into), so every cell
    # sees the same count: all are inserted, or none.
    with session_scope(engine) as session:
        inserted = session.execute(statement).rowcount
        if inserted == len(cells):
            if also is not None:
                session.add(also)
            session.commit()
            return ids
        session.rollback()
        if free_places and any(
            session.scalar(select(_place_taken(sweep_id, cell["sweep_x"], cell["sweep_y"])))
            for cell in cells
        ):
            raise InvalidSweep("This cell is already being generated again.")
        status = get_status(session=session, policy=policy, user=user, now=now)
    needed = -(-len(cells) // CELLS_PER_SLOT)
    raise QuotaExceeded(
        f"This needs {needed} generation{'s' if needed != 1 else ''} of your quota; "
        f"{status.remaining} of your {policy.limit} {'is' if status.remaining == 1 else 'are'} "
        "left for this period.",
        limit=policy.limit,
        window=policy.window,
        next_slot_at=status.next_slot_at,
        needed=needed,
        remaining=status.remaining,
    )


def _place_taken(sweep_id: str, x: object, y: object) -> Exists:
    """A try at this place of the sweep is pending or succeeded."""
    return exists().where(
        col(GenerationBatch.sweep_id) == sweep_id,
        col(GenerationBatch.sweep_x) == x,
        col(GenerationBatch.sweep_y) == y,
        col(GenerationBatch.status).in_([BatchStatus.PENDING, BatchStatus.SUCCEEDED]),
    )


def release(*, engine: Engine, batch_id: str, error: str, now: datetime | None = None) -> None:
    """Mark a pending batch failed, which frees its slot."""
    with session_scope(engine) as session:
        session.execute(
            update(GenerationBatch)
            .where(col(GenerationBatch.id) == batch_id)
            .where(col(GenerationBatch.status) == BatchStatus.PENDING)
            .values(
                status=BatchStatus.FAILED,
                error=error[:1000],
                finished_at=to_iso(now or utc_now()),
            )
        )
        session.commit()


def usage_by_user(
    *, session: Session, policy: QuotaPolicy, now: datetime | None = None
) -> list[tuple[str, int]]:
    """(user, slots held now) for everyone who generated in the window, most first,
    counted as `get_status` counts one user's: a batch holds one, a sweep one per four
    cells holding a slot, the original app's images (not yet adopted) one per four."""
    now = now or utc_now()
    holding = (col(GenerationBatch.created_at) > _WINDOW_START) & (
        (col(GenerationBatch.status) == BatchStatus.SUCCEEDED) | _pending_alive()
    )
    rows = session.execute(
        select(col(GenerationBatch.wallet_address), col(GenerationBatch.sweep_id), func.count())
        .where(holding)
        .group_by(col(GenerationBatch.wallet_address), col(GenerationBatch.sweep_id)),
        _moment(policy, "", now),  # everyone's: the user parameter goes unused
    ).all()
    used: dict[str, int] = {}
    for user, sweep, count in rows:
        used[user] = used.get(user, 0) + (count if sweep is None else -(-count // CELLS_PER_SLOT))
    legacy_images = session.execute(
        select(col(GeneratedImage.wallet_address), func.count())
        .where(legacy.images_in_window(None, _WINDOW_START))
        .group_by(col(GeneratedImage.wallet_address)),
        _moment(policy, "", now),
    ).all()
    for user, count in legacy_images:
        used[user] = used.get(user, 0) + legacy.slots_for(count)
    return sorted(used.items(), key=lambda item: -item[1])

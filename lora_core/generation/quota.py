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
at a time, concurrent requests can never exceed the limit. The status, the next slot,
everyone's usage and that condition are one counting expression (`_used`, asked through
`lora_core.data.rolling_quota`, which trainings use too).

One module because it is one rule: what holds a generation slot, and the two reservations
(a batch, a sweep's cells) guarded by it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Engine,
    Exists,
    ScalarSelect,
    Select,
    exists,
    func,
    select,
    union_all,
    update,
)
from sqlmodel import Session, SQLModel, col

from lora_core import legacy
from lora_core.data import rolling_quota
from lora_core.data.clock import to_iso, utc_now
from lora_core.data.db import session_scope
from lora_core.data.leases import Lease
from lora_core.data.models import BatchLora, BatchStatus, GeneratedImage, GenerationBatch
from lora_core.data.rolling_quota import (
    ABANDONED_BEFORE,
    NOW,
    USER,
    WINDOW_START,
    QuotaPolicy,
    QuotaStatus,
    SQLText,
)
from lora_core.errors import InvalidSweep, QuotaExceeded
from lora_core.generation.generators import IMAGES_PER_BATCH
from lora_core.generation.recipe import StackedLora, stack_rows

# A slot buys one batch of 4 images, or 4 cells of a sweep.
CELLS_PER_SLOT = IMAGES_PER_BATCH


def _pending_alive() -> ColumnElement[bool]:
    """A pending batch still holds its slot while fal may bill it (fal accepted it: it has
    a request id, and the background sweep follows it until fal's terminal answer), while
    younger than `abandoned_after`, or while a live process holds its lease (a sweep's cell
    queued behind others: it is not yet abandoned, however long it waits)."""
    return (col(GenerationBatch.status) == BatchStatus.PENDING) & (
        (col(GenerationBatch.created_at) > ABANDONED_BEFORE)
        | (col(GenerationBatch.lease_until) > NOW)
        | col(GenerationBatch.fal_request_id).is_not(None)
    )


def _holding(since: SQLText) -> ColumnElement[bool]:
    """Batches begun after `since` that hold a slot: succeeded, or pending and alive."""
    return (col(GenerationBatch.created_at) > since) & (
        (col(GenerationBatch.status) == BatchStatus.SUCCEEDED) | _pending_alive()
    )


def _holds_slot(user: SQLText, since: SQLText) -> ColumnElement[bool]:
    """`user`'s batches begun after `since` that hold a slot."""
    return (col(GenerationBatch.user) == user) & _holding(since)


def _ceil_slots(cells: ColumnElement[int] | ScalarSelect[int]) -> ColumnElement[int]:
    """Slots `cells` take: four to a slot, in SQL."""
    return (cells + (CELLS_PER_SLOT - 1)) // CELLS_PER_SLOT


def _used(
    user: SQLText = USER,
    since: SQLText = WINDOW_START,
    adding: tuple[str, int] | None = None,
) -> ScalarSelect[int]:
    """Slots `user` holds in uses begun after `since`, as one scalar subquery: our
    batches, our sweeps' cells by four, and the original app's images by four. With
    `adding` (sweep id, cells), the slots in use once that many cells are added to that
    sweep (a new one, or a failed cell tried again)."""
    holding = _holds_slot(user, since)
    sweep_id = col(GenerationBatch.sweep_id)
    # `user` and `since` may be columns of an enclosing query (the next slot, the usage
    # per user): every subquery correlates to it, whatever its depth, but to no table of
    # its own.
    batches = (
        select(func.count())
        .select_from(GenerationBatch)
        .where(holding & sweep_id.is_(None))
        .correlate_except(GenerationBatch)
        .scalar_subquery()
    )
    live = (
        select(sweep_id.label("sweep_id"), func.count().label("cells"))
        .where(holding & sweep_id.is_not(None))
        .group_by(sweep_id)
        .correlate_except(GenerationBatch)
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
            .correlate_except(GenerationBatch)
            .scalar_subquery()
        )
        sweeps = other_sweeps.where(live.c.sweep_id != added_to).scalar_subquery() + _ceil_slots(
            already + cells
        )
    per = legacy.IMAGES_PER_LEGACY_BATCH
    legacy_slots = (
        select((func.count() + (per - 1)) // per)  # `legacy.slots_for`, in SQL
        .select_from(GeneratedImage)
        .where(legacy.images_in_window(user, since))
        .correlate_except(GeneratedImage)
        .scalar_subquery()
    )
    return select(batches + sweeps + legacy_slots).scalar_subquery()


def _began(user: SQLText, since: SQLText) -> Select[tuple[str]]:
    """When each use holding a slot began: batches, cells and the original app's images."""
    return union_all(
        select(col(GenerationBatch.created_at)).where(_holds_slot(user, since)),
        select(col(GeneratedImage.created_at)).where(legacy.images_in_window(user, since)),
    )  # type: ignore[return-value]


def _users(since: SQLText) -> Select[tuple[str]]:
    """Everyone with a batch, cell or original-app image holding a slot since `since`."""
    return union_all(
        select(col(GenerationBatch.user)).where(_holding(since)),
        select(col(GeneratedImage.user)).where(legacy.images_in_window(None, since)),
    )  # type: ignore[return-value]


GENERATIONS = rolling_quota.Counting(used=_used, began=_began, users=_users)
"""How generations use their quota (`lora_core.data.rolling_quota`)."""


def get_status(
    *, session: Session, policy: QuotaPolicy, user: str, now: datetime | None = None
) -> QuotaStatus:
    """How many slots `user` has used in the window, and when the next one frees up."""
    return rolling_quota.get_status(
        session=session, counting=GENERATIONS, policy=policy, user=user, now=now
    )


def usage_by_user(
    *, session: Session, policy: QuotaPolicy, now: datetime | None = None
) -> list[tuple[str, int]]:
    """(user, slots held now) for everyone who generated in the window, most first,
    counted as `get_status` counts one user's."""
    return rolling_quota.usage_by_user(
        session=session, counting=GENERATIONS, policy=policy, now=now
    )


def reserve(
    *,
    engine: Engine,
    policy: QuotaPolicy,
    user: str,
    lora_id: str,
    prompt: str,
    lease: Lease | None = None,
    columns: Mapping[str, object] | None = None,
    stack: Sequence[StackedLora] = (),
    now: datetime | None = None,
) -> str:
    """Record a pending batch for `user` if a slot is free; return its id.

    With a `lease`, the batch is born held by the caller (`lora_core.data.leases`).
    `columns` are more of the batch's columns (its settings), written in the same insert;
    `stack`: the LoRAs added to the first, written beside it in the same transaction.
    Exempt users always get a batch (it is still recorded, for history).
    Raises `QuotaExceeded` when every slot of the window is taken.
    """
    now = now or utc_now()
    batch_id = uuid.uuid4().hex
    fixed = {
        "id": batch_id,
        "lora_training_id": lora_id,
        "wallet_address": user,
        "prompt": prompt,
        "status": BatchStatus.PENDING.value,
        "created_at": to_iso(now),
        "lease_holder": lease and lease.holder,
        "lease_until": lease and to_iso(lease.until),
        **(columns or {}),
    }
    if rolling_quota.insert_within(
        engine=engine,
        policy=policy,
        user=user,
        now=now,
        table=GenerationBatch,
        rows=[fixed],
        fits=_used() < policy.limit,
        also=[BatchLora(**row) for row in stack_rows(batch_id, stack)],
    ):
        return batch_id
    with session_scope(engine) as session:
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
    stacks: Sequence[Sequence[StackedLora]] = (),
    also: Sequence[SQLModel] = (),
    free_places: bool = False,
    now: datetime | None = None,
) -> list[str]:
    """Record a sweep's pending cells (each a batch's columns: LoRA, prompt, settings,
    place) in one statement, all or none: only if the slots they add fit; return their ids.

    `stacks`: each cell's LoRAs added to its own, written beside it; `also` (the sweep's
    own row) is written in the same transaction too. Cells added to a sweep that has some
    (a failed cell tried again) count with its cells still holding a slot.
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
    ids = [uuid.uuid4().hex for _ in cells]
    rows = [
        {"id": batch_id, **fixed, **{name: cell[name] for name in names}}
        for batch_id, cell in zip(ids, cells, strict=True)
    ]
    free = (
        [~_place_taken(sweep_id, cell["sweep_x"], cell["sweep_y"]) for cell in cells]
        if free_places
        else []
    )
    if rolling_quota.insert_within(
        engine=engine,
        policy=policy,
        user=user,
        now=now,
        table=GenerationBatch,
        rows=rows,
        fits=_used(adding=(sweep_id, len(cells))) <= policy.limit,
        each_only_if=free,
        also=[
            *also,
            *(
                BatchLora(**row)
                for batch_id, stack in zip(ids, stacks, strict=False)
                for row in stack_rows(batch_id, tuple(stack))
            ),
        ],
    ):
        return ids
    with session_scope(engine) as session:
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

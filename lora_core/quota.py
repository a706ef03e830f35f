"""Generation quota: N batches per user per rolling window, reserved atomically.

A batch counts from the moment its slot is reserved (status `pending`) until it fails;
a `succeeded` batch counts once however many images fal returned. The reservation is a
single conditional `INSERT … SELECT … WHERE (batches in window) < limit`, so no
interactive transaction is needed and concurrent requests can never exceed the limit.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, insert, literal, select, update
from sqlmodel import Session, col

from lora_core.clock import parse_iso, to_iso, utc_now
from lora_core.db import session_scope
from lora_core.errors import QuotaExceeded
from lora_core.models import BatchStatus, GenerationBatch


@dataclass(frozen=True)
class QuotaPolicy:
    limit: int
    window: timedelta
    exempt_users: frozenset[str] = frozenset()

    def is_exempt(self, user: str) -> bool:
        return user in self.exempt_users


@dataclass(frozen=True)
class QuotaStatus:
    limit: int
    used: int
    is_exempt: bool
    next_slot_at: datetime | None
    """When a slot frees up, if none is free now."""

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)

    @property
    def exhausted(self) -> bool:
        return not self.is_exempt and self.remaining == 0


def _counted(user: str, since: str):  # noqa: ANN202 - a SQLAlchemy boolean clause
    """Batches of `user` in the window that hold a slot (pending or succeeded)."""
    return (
        (col(GenerationBatch.wallet_address) == user)
        & (col(GenerationBatch.created_at) > since)
        & (col(GenerationBatch.status) != BatchStatus.FAILED)
    )


def get_status(
    *, session: Session, policy: QuotaPolicy, user: str, now: datetime | None = None
) -> QuotaStatus:
    """How many batches `user` has used in the window, and when the next slot frees up."""
    now = now or utc_now()
    since = to_iso(now - policy.window)
    used = (
        session.scalar(
            select(func.count()).select_from(GenerationBatch).where(_counted(user, since))
        )
        or 0
    )
    next_slot_at = None
    if used >= policy.limit:
        # The slot that frees first is held by the oldest batch beyond the surplus.
        oldest = session.scalar(
            select(GenerationBatch.created_at)
            .where(_counted(user, since))
            .order_by(col(GenerationBatch.created_at))
            .offset(used - policy.limit)
            .limit(1)
        )
        if oldest is not None:
            next_slot_at = parse_iso(oldest) + policy.window
    return QuotaStatus(
        limit=policy.limit,
        used=used,
        is_exempt=policy.is_exempt(user),
        next_slot_at=next_slot_at,
    )


def reserve(
    *,
    engine: Engine,
    policy: QuotaPolicy,
    user: str,
    lora_id: str,
    prompt: str,
    now: datetime | None = None,
) -> str:
    """Record a pending batch for `user` if a slot is free; return its id.

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
    )
    if not policy.is_exempt(user):
        in_window = (
            select(func.count())
            .select_from(GenerationBatch)
            .where(_counted(user, to_iso(now - policy.window)))
            .scalar_subquery()
        )
        values = values.where(in_window < policy.limit)
    statement = insert(GenerationBatch).from_select(
        ["id", "lora_training_id", "wallet_address", "prompt", "status", "created_at"], values
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
        f"You've used all {policy.limit} generations for today.",
        limit=policy.limit,
        next_slot_at=status.next_slot_at,
    )


def release(*, engine: Engine, batch_id: str, error: str, now: datetime | None = None) -> None:
    """Mark a pending batch failed, which frees its slot."""
    with session_scope(engine) as session:
        session.execute(
            update(GenerationBatch)
            .where(col(GenerationBatch.id) == batch_id)
            .where(col(GenerationBatch.status) == BatchStatus.PENDING)
            .values(
                status=BatchStatus.FAILED, error=error[:1000], finished_at=to_iso(now or utc_now())
            )
        )
        session.commit()

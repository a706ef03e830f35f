"""Training a LoRA: the `lora_trainings` row from reservation to submission, and its quota.

A training holds one of the user's slots from the moment it is reserved (a `pending` row,
created by one conditional `INSERT … SELECT`, as generation reserves its batches) unless it
fails. The row gets fal's request id the moment fal gives it; if the upload or the submit
fails before that, the row is deleted again, so a failure costs no slot and leaves nothing
behind. While it submits, the process holds the row's lease (`lora_core.data.leases`); a
row whose process died before fal answered is failed, freeing its slot, once that lease
lapses (`fail_unsubmitted`). From then on the job is followed in the background
(`lora_core.training.following`).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from sqlalchemy import ColumnElement, Engine, delete, func, select, update
from sqlmodel import Session, col

from lora_core.data import leases, rolling_quota
from lora_core.data.clock import to_iso, utc_now
from lora_core.data.db import session_scope
from lora_core.data.models import LoraStatus, LoraTraining, RequestId
from lora_core.data.rolling_quota import USER, WINDOW_START, QuotaPolicy, QuotaStatus, SQLText
from lora_core.errors import TrainingQuotaExceeded
from lora_core.training.archive import (
    UploadedFile,
    check_steps,
    check_trigger_word,
    training_archive,
)
from lora_core.training.trainers import Trainer


def _holds_slot(user: SQLText, since: SQLText) -> ColumnElement[bool]:
    """Trainings begun after `since` that hold a slot: all but failed ones."""
    return (
        (col(LoraTraining.user) == user)
        & (col(LoraTraining.created_at) > since)
        & (col(LoraTraining.status) != LoraStatus.FAILED)
    )


def _used(user: SQLText, since: SQLText) -> ColumnElement[int]:
    """Slots `user` holds in trainings begun after `since`: one each."""
    return (
        select(func.count())
        .select_from(LoraTraining)
        .where(_holds_slot(user, since))
        .scalar_subquery()
    )


TRAININGS = rolling_quota.Counting(
    used=_used,
    began=lambda user, since: select(col(LoraTraining.created_at)).where(_holds_slot(user, since)),
    users=lambda since: select(col(LoraTraining.user)).where(
        _holds_slot(col(LoraTraining.user), since)
    ),
)
"""How trainings use their quota (`lora_core.data.rolling_quota`)."""


def get_status(
    *, session: Session, policy: QuotaPolicy, user: str, now: datetime | None = None
) -> QuotaStatus:
    """How many trainings `user` started in the window, and when the next slot frees up."""
    return rolling_quota.get_status(
        session=session, counting=TRAININGS, policy=policy, user=user, now=now
    )


def _quota_exceeded(status: QuotaStatus) -> TrainingQuotaExceeded:
    return TrainingQuotaExceeded(
        f"You've started all {status.limit} trainings for this period.",
        limit=status.limit,
        window=status.window,
        next_slot_at=status.next_slot_at,
    )


def start_training(
    *,
    engine: Engine,
    trainer: Trainer,
    policy: QuotaPolicy,
    user: str,
    files: list[UploadedFile],
    trigger_word: str,
    steps: int,
    is_style: bool = False,
    lease_terms: leases.LeaseTerms = leases.DEFAULT_TERMS,
    now: datetime | None = None,
) -> LoraTraining:
    """Check the inputs and the quota, upload the images, reserve a slot, submit the job
    (a style, or a subject). Returns the new `pending` LoRA. Nothing is spent on bad input
    or an exhausted quota."""
    trigger_word = check_trigger_word(trigger_word)
    steps = check_steps(steps)
    archive = training_archive(files)
    with session_scope(engine) as session:
        status = get_status(session=session, policy=policy, user=user, now=now)
    if status.used >= status.limit and not status.is_exempt:
        raise _quota_exceeded(status)
    images_url = trainer.upload(archive)
    lease = leases.Lease.new(lease_terms, now)
    lora_id = _reserve(engine, policy, user, trigger_word, steps, now or utc_now(), lease=lease)
    accepted: list[str] = []

    def record(request_id: str) -> None:
        """fal took the job (and may bill it): it is ours to follow from this moment."""
        accepted.append(request_id)
        with session_scope(engine) as session:
            session.execute(
                update(LoraTraining)
                .where(col(LoraTraining.id) == lora_id)
                .values(
                    request_id=request_id,
                    image_urls=json.dumps([images_url]),
                    is_style=is_style,
                )
            )
            session.commit()

    try:
        with leases.hold(
            engine=engine,
            table=LoraTraining,
            row_id=lora_id,
            holder=lease.holder,
            terms=lease_terms,
        ):
            request_id = trainer.submit(
                images_url=images_url,
                trigger_word=trigger_word,
                steps=steps,
                is_style=is_style,
                on_request_id=record,
            )
            if not accepted:  # a trainer that only returns it
                record(request_id)
    except BaseException:
        if not accepted:  # nothing reached fal (or its answer was lost): nothing to follow
            with session_scope(engine) as session:
                session.execute(delete(LoraTraining).where(col(LoraTraining.id) == lora_id))
                session.commit()
        raise
    # The sweep follows it from now on: any process's, at its next beat.
    leases.let_go(engine=engine, table=LoraTraining, row_id=lora_id, holder=lease.holder)
    with session_scope(engine) as session:
        lora = session.get(LoraTraining, lora_id)
    assert lora is not None
    return lora


def _reserve(
    engine: Engine,
    policy: QuotaPolicy,
    user: str,
    trigger_word: str,
    steps: int,
    now: datetime,
    *,
    lease: leases.Lease | None = None,
) -> str:
    """A pending row for `user` if a slot is free (one atomic statement), held by `lease`;
    its id."""
    lora_id = uuid.uuid4().hex[:16]
    row = {
        "id": lora_id,
        "request_id": RequestId.RESERVED.new(uuid.uuid4().hex),
        "wallet_address": user,
        "trigger_word": trigger_word,
        "steps": steps,
        "status": LoraStatus.PENDING.value,
        "created_at": to_iso(now),
        "lease_holder": lease and lease.holder,
        "lease_until": lease and to_iso(lease.until),
    }
    if rolling_quota.insert_within(
        engine=engine,
        policy=policy,
        user=user,
        now=now,
        table=LoraTraining,
        rows=[row],
        fits=_used(USER, WINDOW_START) < policy.limit,
    ):
        return lora_id
    with session_scope(engine) as session:
        status = get_status(session=session, policy=policy, user=user, now=now)
    raise _quota_exceeded(status)


NEVER_SUBMITTED = "Interrupted before fal confirmed the training."


def fail_unsubmitted(*, engine: Engine, policy: QuotaPolicy, now: datetime | None = None) -> int:
    """Fail every reservation whose process died before fal answered its submit (its
    lease lapsed; one without a lease once older than `policy.abandoned_after`), freeing
    its slot. One conditional UPDATE; returns how many it failed."""
    now = now or utc_now()
    with session_scope(engine) as session:
        failed = session.execute(
            update(LoraTraining)
            .where(col(LoraTraining.status) == LoraStatus.PENDING)
            .where(col(LoraTraining.request_id).startswith(RequestId.RESERVED.value))
            .where(
                leases.lapsed(LoraTraining, now=now, unleased_before=now - policy.abandoned_after)
            )
            .values(status=LoraStatus.FAILED, error=NEVER_SUBMITTED)
        ).rowcount
        session.commit()
    return failed


def list_trainings(*, session: Session, user: str, limit: int = 20) -> list[LoraTraining]:
    """The user's own LoRAs, newest first (pending ones included)."""
    return list(
        session.scalars(
            select(LoraTraining)
            .where(col(LoraTraining.user) == user)
            .order_by(col(LoraTraining.created_at).desc())
            .limit(limit)
        ).all()
    )


def has_pending(*, session: Session, user: str) -> bool:
    """Whether one of the user's trainings is still running."""
    return (
        session.scalar(
            select(col(LoraTraining.id))
            .where(col(LoraTraining.user) == user)
            .where(col(LoraTraining.status) == LoraStatus.PENDING)
            .limit(1)
        )
        is not None
    )

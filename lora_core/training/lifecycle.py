"""Training a LoRA: the `lora_trainings` row from reservation to completion, and its quota.

A training holds one of the user's slots from the moment it is reserved (a `pending` row,
created by one conditional `INSERT … SELECT`, as generation reserves its batches) unless it
fails. The row gets fal's request id the moment fal gives it; if the upload or the submit
fails before that, the row is deleted again, so a failure costs no slot and leaves nothing
behind. While it submits, the process holds the row's lease (`lora_core.data.leases`); a
row whose process died before fal answered is failed, freeing its slot, once that lease
lapses.

From then on the job is followed in the background (`follow`, run by every app process's
sweep): one process at a time, the one that took the row's lease, asks fal about it, keeps
its state (queue position, logs) in the row for the pages, and on fal's answer completes it
(its weights and config copied into the store, as fal's expire) or fails it with fal's
reason, whether or not anyone ever opens a page. Pages only read the row (`view`).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine, delete, func, insert, literal, select, update
from sqlmodel import Session, col

from lora_core import weights
from lora_core.data import leases
from lora_core.data.clock import parse_iso, to_iso, utc_now
from lora_core.data.db import session_scope
from lora_core.data.models import LoraStatus, LoraTraining, RequestId
from lora_core.errors import TrainingFailed, TrainingQuotaExceeded
from lora_core.generation.quota import QuotaPolicy, QuotaStatus
from lora_core.storage import MediaStore
from lora_core.training.archive import (
    UploadedFile,
    check_steps,
    check_trigger_word,
    training_archive,
)
from lora_core.training.trainers import TrainedFiles, Trainer, TrainingState


@dataclass(frozen=True)
class TrainingView:
    """A training as the Train page shows it: the row, and fal's state while it runs."""

    lora: LoraTraining
    state: TrainingState | None = None


def _holds_slot(policy: QuotaPolicy, user: str, now: datetime) -> ColumnElement[bool]:
    return (
        (col(LoraTraining.wallet_address) == user)
        & (col(LoraTraining.created_at) > to_iso(now - policy.window))
        & (col(LoraTraining.status) != LoraStatus.FAILED)
    )


def _used(policy: QuotaPolicy, user: str, now: datetime) -> ColumnElement[int]:
    return (
        select(func.count())
        .select_from(LoraTraining)
        .where(_holds_slot(policy, user, now))
        .scalar_subquery()
    )


def get_status(
    *, session: Session, policy: QuotaPolicy, user: str, now: datetime | None = None
) -> QuotaStatus:
    """How many trainings `user` started in the window, and when the next slot frees up."""
    now = now or utc_now()
    times = sorted(
        session.scalars(
            select(col(LoraTraining.created_at)).where(_holds_slot(policy, user, now))
        ).all()
    )
    exhausted = len(times) >= policy.limit and not policy.is_exempt(user)
    return QuotaStatus(
        limit=policy.limit,
        used=len(times),
        is_exempt=policy.is_exempt(user),
        window=policy.window,
        next_slot_at=parse_iso(times[len(times) - policy.limit]) + policy.window
        if exhausted
        else None,
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
    values = select(
        literal(lora_id),
        literal(RequestId.RESERVED.new(uuid.uuid4().hex)),
        literal(user),
        literal(trigger_word),
        literal(steps),
        literal(LoraStatus.PENDING.value),
        literal(to_iso(now)),
        literal(lease and lease.holder),
        literal(lease and to_iso(lease.until)),
    )
    if not policy.is_exempt(user):
        values = values.where(_used(policy, user, now) < policy.limit)
    columns = ["id", "request_id", "wallet_address", "trigger_word", "steps", "status"]
    statement = insert(LoraTraining).from_select(
        [*columns, "created_at", "lease_holder", "lease_until"], values
    )
    with session_scope(engine) as session:
        inserted = session.execute(statement).rowcount
        session.commit()
        if inserted == 1:
            return lora_id
        status = get_status(session=session, policy=policy, user=user, now=now)
    raise _quota_exceeded(status)


# A training is asked about at most this often (by whichever process holds it then).
FOLLOW_EVERY = timedelta(seconds=3)
# One the original app submitted that fal does not know (perhaps another fal key): asked
# about again only this often.
UNKNOWN_EVERY = timedelta(hours=1)
PROGRESS_LOG_LINES = 20


def followed(now: datetime) -> ColumnElement[bool]:
    """Pending trainings that fal (or the preview trainer) runs and nobody is asking about
    now: not a reservation (`fail_unsubmitted` settles those), a registration or the
    demo's, whose lease has lapsed (or that never had one)."""
    request_id = col(LoraTraining.request_id)
    return (
        (col(LoraTraining.status) == LoraStatus.PENDING)
        & ~request_id.startswith(RequestId.RESERVED.value)
        & ~request_id.startswith(RequestId.REGISTERED.value)
        & ~request_id.startswith(RequestId.DEMO.value)
        & leases.lapsed(LoraTraining, now=now, unleased_before=now)
    )


def follow(
    *,
    engine: Engine,
    trainer: Trainer,
    store: MediaStore | None = None,
    allow_private_hosts: bool = False,
    terms: leases.LeaseTerms = leases.DEFAULT_TERMS,
    user: str | None = None,
    lora_id: str | None = None,
    every: timedelta = FOLLOW_EVERY,
    now: datetime | None = None,
) -> int:
    """Ask the trainer about every training nobody is asking about now (only `user`'s, or
    one LoRA's, when given): each taken by one conditional UPDATE of its lease, so exactly
    one process asks about it at a time, then let go for `every`. Returns how many this
    call asked about."""
    now = now or utc_now()
    query = select(col(LoraTraining.id)).where(followed(now))
    if user is not None:
        query = query.where(col(LoraTraining.wallet_address) == user)
    if lora_id is not None:
        query = query.where(col(LoraTraining.id) == lora_id)
    with session_scope(engine) as session:
        candidates = list(session.scalars(query))
    asked = 0
    for candidate in candidates:
        lease = leases.claim(
            engine=engine,
            table=LoraTraining,
            row_id=candidate,
            status=LoraStatus.PENDING,
            terms=terms,
            unleased_before=now,
            now=now,
        )
        if lease is None:
            continue  # another process took it first
        asked += 1
        with leases.hold(
            engine=engine, table=LoraTraining, row_id=candidate, holder=lease.holder, terms=terms
        ):
            unknown = _follow_one(
                engine, trainer, candidate, store=store, allow_private_hosts=allow_private_hosts
            )
        leases.let_go(
            engine=engine,
            table=LoraTraining,
            row_id=candidate,
            holder=lease.holder,
            until=utc_now() + (UNKNOWN_EVERY if unknown else every),
        )
    return asked


def _follow_one(
    engine: Engine,
    trainer: Trainer,
    lora_id: str,
    *,
    store: MediaStore | None,
    allow_private_hosts: bool,
) -> bool:
    """Ask about one training we hold: keep its state, or finish it on fal's answer (a
    job fal completed gets its files, copied once by whoever completed it; one fal failed
    or no longer knows fails with the reason). True for another app's training fal does
    not know (asked about again only after `UNKNOWN_EVERY`)."""
    with session_scope(engine) as session:
        lora = session.get(LoraTraining, lora_id)
    if lora is None or lora.status != LoraStatus.PENDING:
        return False
    try:
        state = trainer.state(lora.request_id)
        _keep_progress(engine, lora_id, state)
        if state.stage != "completed":
            return False
        files = trainer.files(lora.request_id)
    except TrainingFailed as error:
        if not error.job_failed:  # fal could not be asked: the job may still run
            return False
        if error.unknown and lora.is_style is None:
            # Not submitted here (the original app's, perhaps with another fal key): fal
            # not knowing it is no proof that it failed. Left as it is, asked again later.
            return True
        _finish(engine, lora_id, error=str(error))
        return False
    finished, by_us = _finish(engine, lora_id, files=files)
    if by_us and store is not None:  # once, by whoever completed it
        weights.copy_files(
            engine=engine, store=store, lora=finished, allow_private_hosts=allow_private_hosts
        )
    return False


def _keep_progress(engine: Engine, lora_id: str, state: TrainingState) -> None:
    """The state fal reported, in the row, for the pages (only while still pending)."""
    progress = {
        "stage": state.stage,
        "queue_position": state.queue_position,
        "logs": list(state.logs[-PROGRESS_LOG_LINES:]),
        "asked_at": to_iso(utc_now()),
    }
    with session_scope(engine) as session:
        session.execute(
            update(LoraTraining)
            .where(col(LoraTraining.id) == lora_id)
            .where(col(LoraTraining.status) == LoraStatus.PENDING)
            .values(progress=json.dumps(progress))
        )
        session.commit()


def view(lora: LoraTraining) -> TrainingView:
    """A training as pages show it: its row, and while it runs the state the sweep last
    read from fal (none yet: queued, as fal takes a new job)."""
    if lora.status != LoraStatus.PENDING:
        return TrainingView(lora)
    if lora.request_id.startswith(RequestId.DEMO):
        return TrainingView(
            lora, TrainingState("running", logs=("A demo LoRA: it never finishes",))
        )
    return TrainingView(lora, progress_of(lora))


def progress_of(lora: LoraTraining) -> TrainingState:
    """The state kept in the row (`_keep_progress`); queued before the first answer."""
    try:
        kept = json.loads(lora.progress or "{}")
        stage = kept.get("stage", "queued")
        if stage not in ("queued", "running", "completed"):
            stage = "queued"
        position = kept.get("queue_position")
        return TrainingState(
            stage,
            queue_position=position if isinstance(position, int) else None,
            logs=tuple(str(line) for line in kept.get("logs", []))[-PROGRESS_LOG_LINES:],
        )
    except (ValueError, AttributeError, TypeError):
        return TrainingState("queued")


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


def _finish(
    engine: Engine,
    lora_id: str,
    *,
    files: TrainedFiles | None = None,
    error: str | None = None,
) -> tuple[LoraTraining, bool]:
    """Completed with the trained files, or failed with the reason; only a row still
    pending changes (two viewers may finish it at once). Returns the row and whether
    this call changed it."""
    values: dict[str, object] = {"status": LoraStatus.FAILED, "error": error and error[:1000]}
    if files is not None:
        values = {
            "status": LoraStatus.COMPLETED,
            "lora_weights_url": files.weights_url,
            "config_url": files.config_url,
        }
    with session_scope(engine) as session:
        changed = session.execute(
            update(LoraTraining)
            .where(col(LoraTraining.id) == lora_id)
            .where(col(LoraTraining.status) == LoraStatus.PENDING)
            .values(**values)
        ).rowcount
        session.commit()
        lora = session.get(LoraTraining, lora_id)
    assert lora is not None
    return lora, changed == 1


def list_trainings(*, session: Session, user: str, limit: int = 20) -> list[LoraTraining]:
    """The user's own LoRAs, newest first (pending ones included)."""
    return list(
        session.scalars(
            select(LoraTraining)
            .where(col(LoraTraining.wallet_address) == user)
            .order_by(col(LoraTraining.created_at).desc())
            .limit(limit)
        ).all()
    )


def has_pending(*, session: Session, user: str) -> bool:
    """Whether one of the user's trainings is still running."""
    return (
        session.scalar(
            select(col(LoraTraining.id))
            .where(col(LoraTraining.wallet_address) == user)
            .where(col(LoraTraining.status) == LoraStatus.PENDING)
            .limit(1)
        )
        is not None
    )

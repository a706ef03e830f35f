"""A training followed to fal's own answer in the background (`follow`, run by every app
process's sweep): one process at a time, the one that took the row's lease, asks fal about
it, keeps its state (queue position, logs) in the row for the pages, and on fal's answer
completes it (its weights and config copied into the store, as fal's expire) or fails it
with fal's reason, whether or not anyone ever opens a page. Pages only read the row
(`view`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine, select, update
from sqlmodel import col

from lora_core import weights
from lora_core.data import leases
from lora_core.data.clock import to_iso, utc_now
from lora_core.data.db import session_scope
from lora_core.data.models import LoraStatus, LoraTraining, RequestId
from lora_core.errors import TrainingFailed
from lora_core.storage import MediaStore
from lora_core.training.trainers import TrainedFiles, Trainer, TrainingState


@dataclass(frozen=True)
class TrainingView:
    """A training as the Train page shows it: the row, and fal's state while it runs."""

    lora: LoraTraining
    state: TrainingState | None = None


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
        query = query.where(col(LoraTraining.user) == user)
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

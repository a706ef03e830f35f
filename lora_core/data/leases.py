"""Leases: which process is working on a row, so that another takes over when it dies.

A process waiting on fal for a batch (or submitting a training) holds the row's lease:
`lease_holder` names the holding, `lease_until` says until when it holds. While the work
goes on, a thread renews the lease every few seconds (`hold`), so a live process never
loses its row however long fal takes. When the process dies the renewals stop, the lease
lapses, and any process may take the row over by one conditional UPDATE (`claim`): on
SQLite and libSQL, which run one writing statement at a time, exactly one succeeds.

Rows written before leases existed have none; they count as lapsed once older than a
caller-given age (longer than any live wait on fal), as they did before.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine, update
from sqlmodel import col

from lora_core.data.clock import to_iso, utc_now
from lora_core.data.db import session_scope
from lora_core.data.models import GenerationBatch, LoraTraining

log = logging.getLogger(__name__)

Leased = type[GenerationBatch] | type[LoraTraining]


@dataclass(frozen=True)
class LeaseTerms:
    """How long a lease holds without renewal, and how often its holder renews it.

    A dead process's row is taken over between `duration` and `duration` plus the sweep
    interval after its last renewal; renewing several times per `duration` keeps a live
    process's row through a slow write or two.
    """

    duration: timedelta = timedelta(seconds=15)
    renew_every: timedelta = timedelta(seconds=3)


DEFAULT_TERMS = LeaseTerms()


@dataclass(frozen=True)
class Lease:
    holder: str
    until: datetime

    @classmethod
    def new(cls, terms: LeaseTerms, now: datetime | None = None) -> Lease:
        """A lease for a new holding: this host and process, and a token of its own."""
        token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        return cls(holder=token, until=(now or utc_now()) + terms.duration)

    def columns(self) -> dict[str, str]:
        return {"lease_holder": self.holder, "lease_until": to_iso(self.until)}


def lapsed(table: Leased, *, now: datetime, unleased_before: datetime) -> ColumnElement[bool]:
    """Rows whose lease has lapsed; rows without one once created before `unleased_before`."""
    until = col(table.lease_until)
    return (until.is_not(None) & (until < to_iso(now))) | (
        until.is_(None) & (col(table.created_at) < to_iso(unleased_before))
    )


def claim(
    *,
    engine: Engine,
    table: Leased,
    row_id: str,
    status: str,
    terms: LeaseTerms,
    unleased_before: datetime,
    now: datetime | None = None,
) -> Lease | None:
    """Take over a row still in `status` whose lease lapsed; None if it has not lapsed, the
    row moved on, or another process took it first."""
    now = now or utc_now()
    lease = Lease.new(terms, now)
    with session_scope(engine) as session:
        taken = session.execute(
            update(table)
            .where(col(table.id) == row_id)
            .where(col(table.status) == status)
            .where(lapsed(table, now=now, unleased_before=unleased_before))
            .values(**lease.columns())
        ).rowcount
        session.commit()
    return lease if taken == 1 else None


def renew(
    *, engine: Engine, table: Leased, row_id: str | None, holder: str, terms: LeaseTerms
) -> bool:
    """Extend our lease (`row_id` None: on every row `holder` holds, as a sweep holds its
    cells); False when it is no longer ours (taken over after it lapsed)."""
    statement = update(table).where(col(table.lease_holder) == holder)
    if row_id is not None:
        statement = statement.where(col(table.id) == row_id)
    with session_scope(engine) as session:
        renewed = session.execute(
            statement.values(lease_until=to_iso(utc_now() + terms.duration))
        ).rowcount
        session.commit()
    return renewed >= 1


def let_go(
    *,
    engine: Engine,
    table: Leased,
    row_id: str,
    until: datetime | None = None,
    holder: str | None = None,
) -> None:
    """Nobody holds the row from `until` on (by default now): the next sweep may take it
    over at once, or only after `until` (a training asked about again later). With
    `holder`, only while that holding is still the row's."""
    statement = update(table).where(col(table.id) == row_id)
    if holder is not None:
        statement = statement.where(col(table.lease_holder) == holder)
    with session_scope(engine) as session:
        session.execute(statement.values(lease_holder=None, lease_until=to_iso(until or utc_now())))
        session.commit()


@contextmanager
def hold(
    *, engine: Engine, table: Leased, row_id: str | None, holder: str, terms: LeaseTerms
) -> Iterator[None]:
    """Renew the lease every `terms.renew_every` while the block runs (fal's wait, the
    result fetch, the image copy), in a thread of its own so a blocking call cannot stop it;
    `row_id` None: every row `holder` holds.
    A renewal the database refuses is tried again at the next beat."""
    stop = threading.Event()

    def renew_until_stopped() -> None:
        while not stop.wait(terms.renew_every.total_seconds()):
            try:
                if not renew(engine=engine, table=table, row_id=row_id, holder=holder, terms=terms):
                    log.warning("The lease on %s %s was taken over.", table.__name__, row_id)
                    return
            except Exception as error:
                log.warning("Renewing the lease on %s failed: %s", row_id, error)

    beat = threading.Thread(
        target=renew_until_stopped, name=f"lease-{row_id or holder}", daemon=True
    )
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join(timeout=terms.renew_every.total_seconds() + 5)

"""Leases: a renewal says whether the lease is still ours, a claim takes only a lapsed row,
at exactly the moments the rules say, and neither touches another process's row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lora_core.data import leases
from lora_core.data.clock import to_iso
from lora_core.data.db import session_scope
from lora_core.data.models import BatchStatus, GenerationBatch, LoraTraining
from tests.support.bystanders import unchanged_besides

pytestmark = pytest.mark.both_backends

# Whole milliseconds, as rows store them: the edges below are exact.
T = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
TICK = timedelta(milliseconds=1)
TERMS = leases.LeaseTerms(duration=timedelta(seconds=15), renew_every=timedelta(seconds=3))


def add_batch(engine, batch_id: str, *, holder: str | None, until: datetime | None, created=T,
              status=BatchStatus.PENDING):  # fmt: skip
    with session_scope(engine) as session:
        session.add(
            GenerationBatch(
                id=batch_id, lora_training_id="l", user="ann", prompt="p",
                status=status, created_at=to_iso(created),
                lease_holder=holder, lease_until=None if until is None else to_iso(until),
            )
        )  # fmt: skip
        session.commit()


def batch(engine, batch_id: str) -> GenerationBatch:
    with session_scope(engine) as session:
        return session.get(GenerationBatch, batch_id)


def renew(engine, holder: str, row_id: str | None, table=GenerationBatch) -> bool:
    return leases.renew(engine=engine, table=table, row_id=row_id, holder=holder, terms=TERMS)


def test_a_renewal_after_another_process_took_the_row_fails_and_leaves_its_lease(engine):
    add_batch(engine, "taken", holder="theirs", until=T + TERMS.duration)
    add_batch(engine, "still-ours", holder="ours", until=T + TERMS.duration)  # another row

    with unchanged_besides(engine, GenerationBatch):
        assert renew(engine, "ours", "taken") is False


def test_a_renewal_of_every_row_we_hold_fails_once_we_hold_none(engine):
    add_batch(engine, "cell-1", holder="theirs", until=T)
    add_batch(engine, "cell-2", holder="theirs", until=T)

    with unchanged_besides(engine, GenerationBatch):
        assert renew(engine, "ours", None) is False


def test_a_training_s_renewal_after_it_was_taken_over_fails(engine, add_lora):
    lora = add_lora()
    with session_scope(engine) as session:
        session.get(LoraTraining, lora.id).lease_holder = "theirs"
        session.commit()

    with unchanged_besides(engine, LoraTraining):
        assert renew(engine, "ours", lora.id, table=LoraTraining) is False


def test_a_renewal_extends_our_lease_only(engine):
    add_batch(engine, "ours", holder="ours", until=T)
    add_batch(engine, "theirs", holder="theirs", until=T)
    add_batch(engine, "also-ours", holder="ours", until=T)  # held by us, not renewed here

    with unchanged_besides(engine, GenerationBatch, changing={"ours"}):
        assert renew(engine, "ours", "ours") is True

    assert batch(engine, "ours").lease_until > to_iso(datetime.now(UTC))


def claim(
    engine, batch_id: str, *, now: datetime, unleased_before: datetime = T - timedelta(days=1)
):
    return leases.claim(
        engine=engine, table=GenerationBatch, row_id=batch_id, status=BatchStatus.PENDING,
        terms=TERMS, unleased_before=unleased_before, now=now,
    )  # fmt: skip


@pytest.mark.parametrize(("now", "lapsed"), [(T - TICK, False), (T, False), (T + TICK, True)])
def test_a_lease_lapses_only_after_its_end(engine, now, lapsed):
    add_batch(engine, "b", holder="dead", until=T)
    add_batch(engine, "other", holder="alive", until=T + timedelta(hours=1))

    with unchanged_besides(engine, GenerationBatch, changing={"b"}):
        lease = claim(engine, "b", now=now)

    taken = batch(engine, "b")
    if lapsed:
        assert lease is not None
        assert (taken.lease_holder, taken.lease_until) == (
            lease.holder,
            to_iso(now + TERMS.duration),
        )
    else:
        assert lease is None
        assert (taken.lease_holder, taken.lease_until) == ("dead", to_iso(T))


@pytest.mark.parametrize(
    ("unleased_before", "lapsed"), [(T - TICK, False), (T, False), (T + TICK, True)]
)
def test_a_row_without_a_lease_lapses_once_created_before_the_age(engine, unleased_before, lapsed):
    add_batch(engine, "old", holder=None, until=None, created=T)
    add_batch(engine, "older", holder=None, until=None, created=T - timedelta(hours=1))

    with unchanged_besides(engine, GenerationBatch, changing={"old"}):
        lease = claim(engine, "old", now=T + timedelta(hours=1), unleased_before=unleased_before)

    assert (lease is not None) is lapsed
    assert batch(engine, "old").lease_holder == (lease.holder if lapsed else None)


def test_letting_go_of_a_holding_leaves_a_row_another_process_took(engine):
    add_batch(engine, "b", holder="theirs", until=T + TERMS.duration)

    with unchanged_besides(engine, GenerationBatch):
        leases.let_go(engine=engine, table=GenerationBatch, row_id="b", holder="ours", until=T)


def test_a_row_that_moved_on_is_not_claimed_even_once_its_lease_lapsed(engine):
    add_batch(engine, "done", holder="dead", until=T, status=BatchStatus.SUCCEEDED)

    with unchanged_besides(engine, GenerationBatch):
        assert claim(engine, "done", now=T + timedelta(hours=1)) is None


def test_letting_go_of_a_row_leaves_every_other_row_s_lease(engine):
    add_batch(engine, "b", holder="ours", until=T + TERMS.duration)
    add_batch(engine, "other", holder="theirs", until=T + TERMS.duration)

    with unchanged_besides(engine, GenerationBatch, changing={"b"}):
        leases.let_go(engine=engine, table=GenerationBatch, row_id="b", until=T)

    assert (batch(engine, "b").lease_holder, batch(engine, "b").lease_until) == (None, to_iso(T))

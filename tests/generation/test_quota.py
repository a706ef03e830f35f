"""Quota: 8 batches per user per rolling 24 h, reserved atomically before fal is called."""

from __future__ import annotations

import threading
from contextlib import nullcontext
from datetime import timedelta

import pytest
from sqlalchemy import select

from lora_core.data import leases
from lora_core.data.clock import to_iso
from lora_core.data.db import session_scope
from lora_core.data.models import BatchStatus, GeneratedImage, GenerationBatch
from lora_core.errors import InvalidSweep, QuotaExceeded
from lora_core.generation import quota, service
from lora_core.generation.quota import QuotaPolicy
from lora_core.generation.service import GenerationKit
from tests.conftest import NOW
from tests.support.bystanders import unchanged_besides
from tests.support.plans import explain_selects
from tests.support.race import race

pytestmark = pytest.mark.both_backends  # the core suite, on SQLite and on libSQL


def status_of(engine, policy, user="ann"):
    with session_scope(engine) as session:
        return quota.get_status(session=session, policy=policy, user=user, now=NOW)


def test_a_new_user_has_every_slot(engine, policy):
    status = status_of(engine, policy)

    assert (status.remaining, status.limit, status.is_exempt) == (8, 8, False)
    assert status.next_slot_at is None


def test_the_status_builds_no_statement(engine, policy, add_batch, monkeypatch):
    """The sidebar asks on every page: building and keying the slots-in-use query cost
    more CPU than running it, so it is built once and each user's status only binds its
    values (and two users' statuses still differ)."""
    add_batch(status=BatchStatus.SUCCEEDED)
    status_of(engine, policy, "carl")  # the first status of the process builds it
    built = []
    monkeypatch.setattr(quota, "_holds_slot", lambda *args: built.append(args))

    ann, bob = status_of(engine, policy), status_of(engine, policy, "bob")

    assert (ann.remaining, bob.remaining) == (7, 8)
    assert built == []


def test_pending_and_succeeded_batches_count_failed_ones_do_not(engine, policy, add_batch):
    add_batch(status=BatchStatus.SUCCEEDED)
    add_batch(status=BatchStatus.PENDING, age=timedelta(minutes=5))
    add_batch(status=BatchStatus.FAILED, age=timedelta(minutes=6))

    assert status_of(engine, policy).remaining == 6


def test_only_the_users_own_batches_count(engine, policy, add_batch):
    add_batch(user="bob")

    assert status_of(engine, policy, user="ann").remaining == 8


def test_the_window_is_rolling(engine, policy, add_batch):
    add_batch(age=timedelta(hours=24, seconds=1))  # just outside
    add_batch(age=timedelta(hours=23, minutes=59))  # just inside

    assert status_of(engine, policy).remaining == 7


def test_at_the_limit_the_next_slot_is_when_the_oldest_batch_leaves_the_window(
    engine, policy, add_batch
):
    for hours in range(1, 9):
        add_batch(age=timedelta(hours=hours))

    status = status_of(engine, policy)

    assert status.remaining == 0 and status.exhausted
    assert status.next_slot_at is not None
    expected = NOW - timedelta(hours=8) + timedelta(hours=24)
    assert abs((status.next_slot_at - expected).total_seconds()) < 0.01


def test_reserving_past_the_limit_is_refused_with_the_next_slot(engine, policy, add_batch):
    for hours in range(1, 9):
        add_batch(age=timedelta(hours=hours))

    with pytest.raises(QuotaExceeded) as caught:
        quota.reserve(
            engine=engine, policy=policy, user="ann", lora_id="lora-1", prompt="p", now=NOW
        )

    assert (caught.value.limit, caught.value.window) == (8, policy.window)
    assert caught.value.next_slot_at is not None
    assert status_of(engine, policy).used == 8


def test_exempt_users_are_never_refused_and_see_unlimited(engine, policy, add_batch):
    for hours in range(1, 10):
        add_batch(user="admin", age=timedelta(hours=hours))

    batch_id = quota.reserve(
        engine=engine, policy=policy, user="admin", lora_id="lora-1", prompt="p", now=NOW
    )

    assert batch_id
    assert status_of(engine, policy, user="admin").is_exempt
    assert not status_of(engine, policy, user="admin").exhausted


def test_release_frees_the_slot(engine, policy):
    batch_id = quota.reserve(
        engine=engine, policy=policy, user="ann", lora_id="lora-1", prompt="p", now=NOW
    )
    assert status_of(engine, policy).remaining == 7

    quota.release(engine=engine, batch_id=batch_id, error="fal failed")

    assert status_of(engine, policy).remaining == 8
    with session_scope(engine) as session:
        batch = session.get(GenerationBatch, batch_id)
    assert batch.status == BatchStatus.FAILED and batch.error == "fal failed"


def test_a_lower_limit_with_more_batches_counts_the_surplus(engine, add_batch):
    for hours in range(1, 6):
        add_batch(age=timedelta(hours=hours))
    policy = QuotaPolicy(limit=3, window=timedelta(hours=24))

    status = status_of(engine, policy)

    assert status.remaining == 0
    # Three batches must leave the window; the third oldest (3 h old) frees the first slot.
    expected = NOW - timedelta(hours=3) + timedelta(hours=24)
    assert abs((status.next_slot_at - expected).total_seconds()) < 0.01


def test_concurrent_requests_with_one_slot_left_reach_fal_exactly_once(
    engine, add_lora, fal_generator, fake_fal, add_batch
):
    lora = add_lora()
    policy = QuotaPolicy(limit=8, window=timedelta(hours=24))
    for hours in range(1, 8):
        add_batch(age=timedelta(hours=hours))
    threads_count = 16  # more than the pool holds: some wait for a connection

    def click() -> None:
        service.generate(
            kit=GenerationKit(engine=engine, generator=fal_generator, policy=policy),
            user="ann",
            lora_id=lora.id,
            prompt="a race",
        )

    outcomes = race(threads_count, click, refused=QuotaExceeded, won="generated")

    assert sorted(outcomes) == ["generated"] + ["refused"] * (threads_count - 1)
    assert len(fake_fal.submissions) == 1
    with session_scope(engine) as session:
        batches = session.scalars(
            select(GenerationBatch).where(GenerationBatch.user == "ann")
        ).all()
    assert len([b for b in batches if b.status != BatchStatus.FAILED]) == 8


def test_a_batch_exactly_one_window_old_no_longer_counts(engine, policy, add_batch):
    add_batch(age=timedelta(hours=24))

    assert status_of(engine, policy).remaining == 8


def test_a_slot_can_be_reserved_at_the_announced_time(engine, add_batch):
    policy = QuotaPolicy(limit=2, window=timedelta(hours=24))
    add_batch(age=timedelta(hours=3))
    add_batch(age=timedelta(hours=1))
    next_slot = status_of(engine, policy).next_slot_at

    with pytest.raises(QuotaExceeded):
        quota.reserve(
            engine=engine,
            policy=policy,
            user="ann",
            lora_id="l",
            prompt="p",
            now=next_slot - timedelta(milliseconds=1),
        )
    assert quota.reserve(
        engine=engine, policy=policy, user="ann", lora_id="l", prompt="p", now=next_slot
    )


def test_a_pending_batch_abandoned_past_its_expiry_frees_its_slot(engine, add_batch):
    policy = QuotaPolicy(limit=8, window=timedelta(hours=24), abandoned_after=timedelta(minutes=10))
    add_batch(status=BatchStatus.PENDING, age=timedelta(minutes=9))  # still running
    add_batch(status=BatchStatus.PENDING, age=timedelta(minutes=11))  # the process died

    assert status_of(engine, policy).used == 1


def add_legacy_images(engine, count: int, *, age: timedelta) -> None:
    """Images as the original app writes them: no batch."""
    with session_scope(engine) as session:
        for number in range(count):
            session.add(
                GeneratedImage(
                    id=f"legacy-{number}",
                    lora_training_id="l",
                    user="ann",
                    prompt="p",
                    image_url="u",
                    created_at=to_iso(NOW - age),
                )
            )
        session.commit()


def test_images_of_the_original_app_count_one_batch_per_four(engine, policy, add_images):
    add_legacy_images(engine, 6, age=timedelta(hours=2))  # a batch of 4 and a batch of 2
    add_images("l", 3)  # by ann and bob, but with no batch either: ann has 1 of them

    status = status_of(engine, policy)

    assert status.used == 2  # ceil(7 / 4)


def test_original_app_images_fill_the_quota_and_say_when_it_frees(engine, add_batch):
    policy = QuotaPolicy(limit=2, window=timedelta(hours=24))
    add_legacy_images(engine, 4, age=timedelta(hours=5))
    add_batch(age=timedelta(hours=1))

    status = status_of(engine, policy)

    assert status.remaining == 0
    expected = NOW - timedelta(hours=5) + timedelta(hours=24)
    assert abs((status.next_slot_at - expected).total_seconds()) < 0.01
    with pytest.raises(QuotaExceeded):
        quota.reserve(engine=engine, policy=policy, user="ann", lora_id="l", prompt="p", now=NOW)


def test_several_processes_with_one_slot_left_reach_fal_exactly_once(
    engine, database, add_lora, add_batch, fake_fal
):
    import os
    import subprocess
    import sys
    import textwrap

    from tests.conftest import APP_ROOT, TEST_FAL_KEY

    lora = add_lora()
    for hours in range(1, 8):
        add_batch(age=timedelta(hours=hours))
    script = textwrap.dedent(
        f"""
        import sys
        from datetime import timedelta
        from lora_core.generation import quota, service
        from lora_core.data.db import DatabaseTarget, create_db_engine
        from lora_core.errors import QuotaExceeded
        from lora_core.fal.generator import FalGenerator
        try:
            service.generate(
                kit=service.GenerationKit(
                    engine=create_db_engine(
                        DatabaseTarget({database.url!r}, auth_token={database.auth_token!r})
                    ),
                    generator=FalGenerator(key={TEST_FAL_KEY!r}, poll_interval=0.02),
                    policy=quota.QuotaPolicy(limit=8, window=timedelta(hours=24)),
                ),
                user="ann", lora_id={lora.id!r}, prompt="a race",
            )
            print("generated")
        except QuotaExceeded:
            print("refused")
        """
    )
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            cwd=APP_ROOT,
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outcomes = sorted(worker.communicate(timeout=120)[0].strip() for worker in workers)

    assert outcomes == ["generated", "refused", "refused", "refused"]
    assert len(fake_fal.submissions) == 1


def test_two_users_generate_at_the_same_time_without_waiting_for_each_other(
    engine, add_lora, fal_generator, fake_fal, policy
):
    lora = add_lora()
    fake_fal.script.processing_seconds = 1.0
    fake_fal.script.queue_positions = []
    done: dict[str, bool] = {}

    def click(user: str) -> None:
        service.generate(
            kit=GenerationKit(engine=engine, generator=fal_generator, policy=policy),
            user=user,
            lora_id=lora.id,
            prompt="together",
        )
        done[user] = True

    threads = [threading.Thread(target=click, args=(user,)) for user in ("ann", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert done == {"ann": True, "bob": True}
    first, second = sorted(submission.at for submission in fake_fal.submissions)
    assert second - first < 1.0  # bob's job reached fal while ann's was still running


def test_the_quota_check_searches_indexes_only(engine, policy, add_batch):
    add_batch(age=timedelta(hours=1))

    plans = explain_selects(
        engine, lambda session: quota.get_status(session=session, policy=policy, user="ann")
    )

    [(_sql, plan)] = plans
    assert "idx_gen_batches_wallet_created (wallet_address=? AND created_at>?)" in plan
    # The original app's images: only its rows (no batch) are in this partial index.
    assert "idx_gen_images_legacy_wallet_created (wallet_address=? AND created_at>?)" in plan
    assert [step for step in plan.split(" | ") if step.startswith("SCAN")] == [
        "SCAN CONSTANT ROW",  # the outer SELECT of the subqueries, no table
        "SCAN CONSTANT ROW",
        "SCAN anon_3",  # the user's sweeps in the window, one row each (cells counted)
    ]


def _table_scans(plan: str) -> list[str]:
    """The plan's steps that read a whole table (not a subquery's rows, not a constant)."""
    return [
        step
        for step in plan.split(" | ")
        if step.startswith("SCAN") and not step.startswith(("SCAN CONSTANT ROW", "SCAN anon_"))
    ]


def test_the_next_slot_search_reads_only_the_users_uses_in_the_window(engine, policy, add_batch):
    """The moments it tries are the user's own uses in the window: other users' batches
    and old ones would not change the answer, but reading them all is a scan per status."""
    for _ in range(policy.limit):
        add_batch(age=timedelta(hours=1))
    add_batch(user="bob", age=timedelta(hours=2))

    plans = explain_selects(
        engine,
        lambda session: quota.get_status(session=session, policy=policy, user="ann", now=NOW),
    )

    [(_used, _), (_next_slot, plan)] = plans  # the limit is reached: the next slot is asked
    assert "SEARCH generation_batches USING INDEX idx_gen_batches_wallet_created" in plan
    assert "SEARCH generated_images USING INDEX idx_gen_images_legacy_wallet_created" in plan
    assert _table_scans(plan) == []


def test_the_usage_page_reads_only_rows_that_may_hold_a_slot(engine, policy, add_batch):
    """Everyone with a use in the window, found by index: users without one would be
    dropped (no slots held) but only after reading every batch and image ever made."""
    add_batch(age=timedelta(hours=1))
    add_batch(user="bob", age=timedelta(days=3))

    [(_sql, plan)] = explain_selects(
        engine, lambda session: quota.usage_by_user(session=session, policy=policy, now=NOW)
    )

    assert _table_scans(plan) == []


def test_five_images_of_the_original_app_take_two_slots(engine, policy):
    add_legacy_images(engine, 5, age=timedelta(hours=2))

    assert status_of(engine, policy).used == 2  # a batch of 4, and one of 1


def test_a_pending_batch_exactly_at_its_expiry_age_no_longer_holds_a_slot(engine, add_batch):
    policy = QuotaPolicy(limit=8, window=timedelta(hours=24), abandoned_after=timedelta(minutes=10))
    add_batch(status=BatchStatus.PENDING, age=timedelta(minutes=10))

    assert status_of(engine, policy).used == 0


# The status and the reservation share their conditions; the status's query is built once
# per process, so these pin the rules on the reservation's own statement too.
def reserve_for_ann(engine, policy) -> str:
    return quota.reserve(engine=engine, policy=policy, user="ann", lora_id="l", prompt="p", now=NOW)


def test_five_images_of_the_original_app_leave_no_slot_of_two_to_reserve(engine):
    policy = QuotaPolicy(limit=2, window=timedelta(hours=24))
    add_legacy_images(engine, 5, age=timedelta(hours=2))

    with pytest.raises(QuotaExceeded):
        reserve_for_ann(engine, policy)


def test_a_pending_batch_exactly_at_its_expiry_age_leaves_its_slot_to_reserve(engine, add_batch):
    policy = QuotaPolicy(limit=1, window=timedelta(hours=24), abandoned_after=timedelta(minutes=10))
    add_batch(status=BatchStatus.PENDING, age=timedelta(minutes=10))

    assert reserve_for_ann(engine, policy)


def test_the_status_says_its_window_and_an_exempt_user_never_waits(engine, policy, add_batch):
    for hours in range(1, 10):
        add_batch(user="admin", age=timedelta(hours=hours))

    status = status_of(engine, policy, user="admin")

    assert status.window == timedelta(hours=24)
    assert status.next_slot_at is None  # over the limit, but exempt


def test_a_refusal_says_the_limit_and_the_next_slot_from_the_time_asked(engine, policy, add_batch):
    asked = NOW - timedelta(days=30)  # a reservation "a month ago", against a month-old quota
    for hours in range(1, 9):
        add_batch(age=timedelta(days=30, hours=hours))

    with pytest.raises(QuotaExceeded) as caught:
        quota.reserve(engine=engine, policy=policy, user="ann", lora_id="l", prompt="p", now=asked)

    assert str(caught.value) == "You've used all 8 generations for this period."
    expected = asked - timedelta(hours=8) + timedelta(hours=24)
    assert abs((caught.value.next_slot_at - expected).total_seconds()) < 0.01


def test_a_reserved_batch_is_born_held_and_a_released_one_records_when_and_why(engine, policy):
    from lora_core.data import leases

    lease = leases.Lease.new(leases.DEFAULT_TERMS, NOW)
    batch_id = quota.reserve(
        engine=engine, policy=policy, user="ann", lora_id="l", prompt="p", lease=lease, now=NOW
    )
    with session_scope(engine) as session:
        held = session.get(GenerationBatch, batch_id)
    assert (held.lease_holder, held.lease_until) == (lease.holder, to_iso(lease.until))

    quota.release(engine=engine, batch_id=batch_id, error="x" * 2000, now=NOW)

    with session_scope(engine) as session:
        batch = session.get(GenerationBatch, batch_id)
    assert batch.finished_at == to_iso(NOW)
    assert batch.error == "x" * 1000  # kept short


def test_usage_by_user_counts_the_slots_held_now_most_first(engine, add_batch):
    policy = QuotaPolicy(limit=8, window=timedelta(hours=24), abandoned_after=timedelta(minutes=10))
    for _ in range(3):
        add_batch(user="bob", age=timedelta(hours=1))
    add_batch(user="ann", age=timedelta(hours=2))
    add_batch(user="ann", status=BatchStatus.PENDING, age=timedelta(minutes=5))  # running
    add_batch(user="ann", status=BatchStatus.PENDING, age=timedelta(minutes=30))  # abandoned
    add_batch(user="ann", status=BatchStatus.FAILED, age=timedelta(hours=1))
    add_batch(user="cyd", age=timedelta(hours=25))  # out of the window

    with session_scope(engine) as session:
        usage = quota.usage_by_user(session=session, policy=policy, now=NOW)

    assert usage == [("bob", 3), ("ann", 2)]


# --- A sweep's cells: four to a slot, all or none ------------------------------------------


def reserve_cells(engine, policy, cells: int, *, user="ann", sweep_id="s1", minutes_ago=5):
    return quota.reserve_cells(
        engine=engine,
        policy=policy,
        user=user,
        sweep_id=sweep_id,
        cells=[{"lora_training_id": "lora-1", "prompt": "p", "sweep_x": i} for i in range(cells)],
        lease=leases.Lease.new(leases.DEFAULT_TERMS, NOW),
        now=NOW - timedelta(minutes=minutes_ago),
    )


@pytest.mark.parametrize(("cells", "slots"), [(1, 1), (4, 1), (5, 2), (8, 2), (9, 3)])
def test_a_sweeps_cells_take_one_slot_per_four(engine, policy, cells, slots):
    ids = reserve_cells(engine, policy, cells)

    assert len(ids) == len(set(ids)) == cells
    assert status_of(engine, policy).used == slots


def test_cells_are_written_pending_held_and_placed(engine, policy):
    reserve_cells(engine, policy, 2)

    with session_scope(engine) as session:
        rows = session.scalars(select(GenerationBatch).order_by(GenerationBatch.sweep_x)).all()
    assert [(r.sweep_id, r.sweep_x, r.status, r.user) for r in rows] == [
        ("s1", 0, "pending", "ann"),
        ("s1", 1, "pending", "ann"),
    ]
    assert all(r.lease_holder and r.lease_until for r in rows)


def test_cells_that_do_not_all_fit_are_refused_whole_saying_what_is_left(engine, add_batch):
    policy = QuotaPolicy(limit=3, window=timedelta(hours=24))
    add_batch()

    with pytest.raises(QuotaExceeded) as refused:
        reserve_cells(engine, policy, 9)  # 3 slots; 2 left

    assert (refused.value.needed, refused.value.remaining) == (3, 2)
    assert str(refused.value) == (
        "This needs 3 generations of your quota; 2 of your 3 are left for this period."
    )
    with session_scope(engine) as session:
        assert len(session.scalars(select(GenerationBatch)).all()) == 1
    assert len(reserve_cells(engine, policy, 8)) == 8  # exactly what is left fits


def test_a_cell_added_to_a_sweep_counts_with_its_cells(engine):
    policy = QuotaPolicy(limit=2, window=timedelta(hours=24))
    reserve_cells(engine, policy, 4)  # one slot, full
    reserve_cells(engine, policy, 1, sweep_id="other")  # a second sweep: the second slot

    with pytest.raises(QuotaExceeded):
        reserve_cells(engine, policy, 1)  # a fifth cell would take a third slot
    with session_scope(engine) as session:
        session.execute(
            GenerationBatch.__table__.update()
            .where(GenerationBatch.sweep_id == "s1", GenerationBatch.sweep_x == 0)
            .values(status=BatchStatus.FAILED)
        )
        session.commit()
    assert len(reserve_cells(engine, policy, 1)) == 1  # 3 live + 1: still one slot
    assert status_of(engine, policy).used == 2


def test_an_exempt_user_s_cells_are_never_refused(engine, policy):
    assert len(reserve_cells(engine, policy, 40, user="admin")) == 40


def test_a_full_quota_from_a_sweep_says_when_its_slots_free(engine):
    policy = QuotaPolicy(limit=2, window=timedelta(hours=24))
    reserve_cells(engine, policy, 8, minutes_ago=10)  # pending, still alive

    status = status_of(engine, policy)

    assert status.exhausted
    expected = NOW - timedelta(minutes=10) + timedelta(hours=24)
    assert abs(status.next_slot_at - expected) < timedelta(milliseconds=1)  # stored in ms


def test_usage_by_user_counts_a_sweep_by_four(engine, policy, add_batch):
    reserve_cells(engine, policy, 5)  # 2 slots
    add_batch()  # 1 more
    reserve_cells(engine, policy, 3, user="bob", sweep_id="s2")  # 1

    with session_scope(engine) as session:
        usage = quota.usage_by_user(session=session, policy=policy, now=NOW)

    assert usage == [("ann", 3), ("bob", 1)]


def test_a_queued_cell_keeps_its_slot_while_its_lease_is_alive(engine):
    """Cells wait behind others in a busy process longer than `abandoned_after`: while the
    process renews their lease they still count (else a user could start more)."""
    policy = QuotaPolicy(limit=1, window=timedelta(hours=24), abandoned_after=timedelta(minutes=15))
    quota.reserve_cells(
        engine=engine,
        policy=policy,
        user="ann",
        sweep_id="s1",
        cells=[{"lora_training_id": "lora-1", "prompt": "p", "sweep_x": 0}],
        lease=leases.Lease(holder="live", until=NOW + timedelta(seconds=10)),
        now=NOW - timedelta(minutes=20),
    )

    assert status_of(engine, policy).used == 1
    with session_scope(engine) as session:
        assert quota.usage_by_user(session=session, policy=policy, now=NOW) == [("ann", 1)]
        session.execute(
            GenerationBatch.__table__.update().values(
                lease_until=to_iso(NOW - timedelta(seconds=1))
            )
        )
        session.commit()
    assert status_of(engine, policy).used == 0  # its process died: abandoned


def test_the_next_slot_of_a_retried_sweep_is_when_its_last_live_cell_leaves(engine):
    policy = QuotaPolicy(limit=1, window=timedelta(hours=24))
    reserve_cells(engine, policy, 4, minutes_ago=10)
    with session_scope(engine) as session:  # all done; one failed, then tried again later
        session.execute(GenerationBatch.__table__.update().values(status=BatchStatus.SUCCEEDED))
        session.execute(
            GenerationBatch.__table__.update()
            .where(GenerationBatch.sweep_x == 0)
            .values(status=BatchStatus.FAILED)
        )
        session.commit()
    quota.reserve_cells(
        engine=engine,
        policy=policy,
        user="ann",
        sweep_id="s1",
        cells=[{"lora_training_id": "lora-1", "prompt": "p", "sweep_x": 0, "sweep_y": 0}],
        lease=leases.Lease.new(leases.DEFAULT_TERMS, NOW),
        free_places=True,
        now=NOW - timedelta(minutes=5),
    )

    status = status_of(engine, policy)

    assert status.exhausted
    expected = NOW - timedelta(minutes=5) + timedelta(hours=24)  # not the first cells' time
    assert abs(status.next_slot_at - expected) < timedelta(milliseconds=1)


def test_a_place_already_tried_again_is_not_tried_twice(engine, policy):
    cell = {"lora_training_id": "lora-1", "prompt": "p", "sweep_x": 1, "sweep_y": 0}

    def retry():
        return quota.reserve_cells(
            engine=engine, policy=policy, user="ann", sweep_id="s1", cells=[cell],
            lease=leases.Lease.new(leases.DEFAULT_TERMS, NOW), free_places=True, now=NOW,
        )  # fmt: skip

    outcomes = race(3, retry, refused=InvalidSweep)

    assert outcomes == ["refused", "refused", "won"]
    assert status_of(engine, policy).used == 1


def test_a_lease_ending_exactly_now_no_longer_holds_a_queued_cell(engine):
    policy = QuotaPolicy(limit=1, window=timedelta(hours=24), abandoned_after=timedelta(minutes=1))
    quota.reserve_cells(
        engine=engine, policy=policy, user="ann", sweep_id="s1",
        cells=[{"lora_training_id": "l", "prompt": "p", "sweep_x": 0}],
        lease=leases.Lease(holder="h", until=NOW), now=NOW - timedelta(minutes=5),
    )  # fmt: skip

    assert status_of(engine, policy).used == 0
    assert reserve_for_ann(engine, policy)  # the reservation's own statement agrees


def cells_at(engine, policy, sweep_id: str, count: int, *, minutes_ago: int, x0: int = 0):
    return quota.reserve_cells(
        engine=engine, policy=policy, user="ann", sweep_id=sweep_id,
        cells=[{"lora_training_id": "l", "prompt": "p", "sweep_x": x0 + i, "sweep_y": 0}
               for i in range(count)],
        lease=leases.Lease.new(leases.DEFAULT_TERMS, NOW), now=NOW - timedelta(minutes=minutes_ago),
    )  # fmt: skip


def succeed_all(engine) -> None:
    with session_scope(engine) as session:
        session.execute(GenerationBatch.__table__.update().values(status=BatchStatus.SUCCEEDED))
        session.commit()


def test_the_next_slot_counts_a_sweeps_cells_still_in_the_window_by_four(engine, add_batch):
    policy = QuotaPolicy(limit=3, window=timedelta(hours=24))
    cells_at(engine, policy, "s1", 4, minutes_ago=30)  # one slot...
    cells_at(engine, policy, "s1", 4, minutes_ago=20, x0=4)  # ...and a second
    add_batch(age=timedelta(minutes=10))
    succeed_all(engine)

    status = status_of(engine, policy)

    assert status.used == 3
    # When the first four leave, four cells (one slot) and the batch are left: 2 < 3.
    expected = NOW - timedelta(minutes=30) + timedelta(hours=24)
    assert abs(status.next_slot_at - expected) < timedelta(milliseconds=1)


def test_the_next_slot_counts_two_sweeps_apart(engine, add_batch):
    policy = QuotaPolicy(limit=2, window=timedelta(hours=24))
    add_batch(age=timedelta(minutes=30))
    roomy = QuotaPolicy(limit=8, window=timedelta(hours=24))
    cells_at(engine, roomy, "s1", 1, minutes_ago=20)
    cells_at(engine, roomy, "s2", 1, minutes_ago=10)
    succeed_all(engine)

    status = status_of(engine, policy)

    assert status.used == 3  # two sweeps of one cell: a slot each
    expected = NOW - timedelta(minutes=20) + timedelta(hours=24)
    assert abs(status.next_slot_at - expected) < timedelta(milliseconds=1)


@pytest.mark.parametrize(("images", "frees_at_minutes_ago"), [(4, 30), (5, 10)])
def test_the_next_slot_counts_the_original_apps_images_still_in_the_window(
    engine, add_batch, images, frees_at_minutes_ago
):
    """A batch 30 min ago, then the original app's images 10 min ago: 4 of them are one
    slot (the batch leaving frees one), 5 are two (only their leaving does)."""
    policy = QuotaPolicy(limit=2, window=timedelta(hours=24))
    add_batch(age=timedelta(minutes=30))
    with session_scope(engine) as session:
        for number in range(images):
            session.add(GeneratedImage(
                id=f"legacy-{number}", lora_training_id="l", user="ann", prompt="p",
                image_url=f"u{number}", created_at=to_iso(NOW - timedelta(minutes=10)),
            ))  # fmt: skip
        session.commit()

    status = status_of(engine, policy)

    expected = NOW - timedelta(minutes=frees_at_minutes_ago) + timedelta(hours=24)
    assert abs(status.next_slot_at - expected) < timedelta(milliseconds=1)


def test_a_sweeps_row_is_written_with_its_cells_or_not_at_all(engine):
    from lora_core.data.models import Sweep

    policy = QuotaPolicy(limit=1, window=timedelta(hours=24))

    def sweep(sweep_id: str) -> Sweep:
        return Sweep(
            id=sweep_id, user="ann", lora_training_id="l", prompt="p", x_kind="seed",
            x_values="[]", lora_scale=1, num_inference_steps=1, guidance_scale=1,
            image_size="square", seed="1", created_at=to_iso(NOW),
        )  # fmt: skip

    for sweep_id in ("fits", "refused"):
        with pytest.raises(QuotaExceeded) if sweep_id == "refused" else nullcontext():
            quota.reserve_cells(
                engine=engine, policy=policy, user="ann", sweep_id=sweep_id,
                cells=[{"lora_training_id": "l", "prompt": "p"}] * 4, also=[sweep(sweep_id)],
                lease=leases.Lease.new(leases.DEFAULT_TERMS, NOW), now=NOW,
            )  # fmt: skip

    with session_scope(engine) as session:
        assert [row.id for row in session.scalars(select(Sweep))] == ["fits"]


def test_no_cells_reserve_nothing(engine, policy):
    assert cells_at(engine, policy, "s1", 0, minutes_ago=1) == []
    assert status_of(engine, policy).used == 0


@pytest.mark.parametrize(
    ("limit", "used", "cells", "words"),
    [
        (2, 1, 8, "This needs 2 generations of your quota; 1 of your 2 is left for this period."),
        (3, 3, 1, "This needs 1 generation of your quota; 0 of your 3 are left for this period."),
    ],
)
def test_a_refused_sweep_says_what_it_needs_and_what_is_left(
    engine, add_batch, limit, used, cells, words
):
    policy = QuotaPolicy(limit=limit, window=timedelta(hours=24))
    for hours in range(1, used + 1):
        add_batch(age=timedelta(hours=hours))

    with pytest.raises(QuotaExceeded) as refused:
        cells_at(engine, policy, "s1", cells, minutes_ago=0)

    assert str(refused.value) == words
    assert (refused.value.limit, refused.value.window) == (limit, policy.window)
    if used == limit:  # the oldest batch, an hour old, frees the next slot
        expected = NOW - timedelta(hours=used) + timedelta(hours=24)
        assert abs(refused.value.next_slot_at - expected) < timedelta(milliseconds=1)


def test_only_a_live_try_at_the_same_place_of_the_same_sweep_blocks_a_retry(engine, policy):
    cells_at(engine, policy, "s1", 1, minutes_ago=1)  # s1 (0, 0): pending
    cells_at(engine, policy, "s2", 2, minutes_ago=1)  # s2 (0, 0) and (1, 0)
    with session_scope(engine) as session:  # s2 (1, 0) failed
        session.execute(
            GenerationBatch.__table__.update()
            .where(GenerationBatch.sweep_id == "s2", GenerationBatch.sweep_x == 1)
            .values(status=BatchStatus.FAILED)
        )
        session.commit()

    def retry(sweep_id: str, x: int, y: int = 0) -> list[str]:
        return quota.reserve_cells(
            engine=engine, policy=policy, user="ann", sweep_id=sweep_id,
            cells=[{"lora_training_id": "l", "prompt": "p", "sweep_x": x, "sweep_y": y}],
            lease=leases.Lease.new(leases.DEFAULT_TERMS, NOW), free_places=True, now=NOW,
        )  # fmt: skip

    assert len(retry("s2", 1)) == 1  # only a failed try there
    assert len(retry("s1", 1)) == 1  # another column
    assert len(retry("s1", 0, y=1)) == 1  # another row
    assert len(retry("s3", 0)) == 1  # the same place of another sweep
    with pytest.raises(InvalidSweep, match=r"^This cell is already being generated again\.$"):
        retry("s1", 0)  # pending there


def test_usage_ignores_a_batch_exactly_one_window_old(engine, policy, add_batch):
    add_batch(age=timedelta(hours=24))

    with session_scope(engine) as session:
        assert quota.usage_by_user(session=session, policy=policy, now=NOW) == []


def test_a_reservation_writes_its_settings_columns(engine, policy):
    batch_id = quota.reserve(
        engine=engine, policy=policy, user="ann", lora_id="l", prompt="p",
        columns={"lora_scale": 0.5, "image_size": "square", "requested_seed": "7"}, now=NOW,
    )  # fmt: skip

    with session_scope(engine) as session:
        batch = session.get(GenerationBatch, batch_id)
    assert (batch.lora_scale, batch.image_size, batch.requested_seed) == (0.5, "square", "7")


def test_a_refused_sweep_reads_the_quota_at_the_time_asked(engine, add_batch):
    """Asked 10 hours ago (a test's clock), a batch 30 hours old was then in the window."""
    policy = QuotaPolicy(limit=1, window=timedelta(hours=24))
    add_batch(age=timedelta(hours=30))

    with pytest.raises(QuotaExceeded) as refused:
        cells_at(engine, policy, "s1", 1, minutes_ago=10 * 60)

    assert refused.value.remaining == 0
    expected = NOW - timedelta(hours=30) + timedelta(hours=24)
    assert abs(refused.value.next_slot_at - expected) < timedelta(milliseconds=1)


@pytest.mark.parametrize(
    ("used", "exempt", "slots", "fits"),
    [(5, False, 3, True), (5, False, 4, False), (8, False, 0, True), (8, True, 99, True)],
)
def test_what_is_left_can_take_so_many_slots(used, exempt, slots, fits):
    status = quota.QuotaStatus(
        limit=8, used=used, is_exempt=exempt, window=timedelta(hours=24), next_slot_at=None
    )

    assert status.can_take(slots) is fits


def test_the_sidebar_usage_and_history_agree_on_a_users_slots(engine, policy, add_batch):
    """Original-app images (two clicks: four images, and two the filter left; two slots),
    two batches and a sweep of five cells (two slots) by ann, one batch by bob: the status
    (sidebar, dialog), the per-user usage (the admins' Usage page) and the figures after
    the original app's images are adopted (the sweep, History) all say the same."""
    from lora_core import legacy
    from lora_core.history import usage as quota_usage

    with session_scope(engine) as session:
        for number in range(6):
            session.add(
                GeneratedImage(
                    id=f"old-{number}", lora_training_id="lora-1", user="ann",
                    prompt="p", image_url="https://cdn.example/x.jpg",
                    created_at=to_iso(NOW - timedelta(hours=2 if number < 4 else 4)),
                )
            )  # fmt: skip
        session.commit()
    add_batch(user="ann")
    add_batch(user="ann", age=timedelta(hours=3))
    add_batch(user="bob")
    reserve_cells(engine, policy, 5)

    def figures() -> tuple[int, dict[str, int]]:
        with session_scope(engine) as session:
            usage = {row.user: row.slots_used for row in quota_usage.usage(
                session=session, policy=policy, price_per_megapixel=0.035, now=NOW
            )}  # fmt: skip
        return status_of(engine, policy).used, usage

    before = figures()
    legacy.adopt_legacy_images(engine=engine)  # as History's view, or the sweep, does

    assert before == figures() == (6, {"ann": 6, "bob": 1})


# --- Bystanders: a statement about one batch touches no other ------------------------------


def test_a_release_arriving_after_the_batch_succeeded_changes_nothing(engine, policy, add_batch):
    """fal's answer stored the batch, then a late failure (a stopped run) releases it: it
    stays succeeded, holding its slot, and no other batch moves."""
    batch_id = reserve_for_ann(engine, policy)
    with session_scope(engine) as session:
        session.execute(
            GenerationBatch.__table__.update()
            .where(GenerationBatch.id == batch_id)
            .values(status=BatchStatus.SUCCEEDED, finished_at=to_iso(NOW))
        )
        session.commit()
    add_batch(user="bob", status=BatchStatus.PENDING, age=timedelta(minutes=1))

    with unchanged_besides(engine, GenerationBatch):
        quota.release(engine=engine, batch_id=batch_id, error="too late", now=NOW)

    assert status_of(engine, policy).used == 1


def test_a_release_fails_its_own_batch_and_no_other(engine, policy, add_batch):
    mine = reserve_for_ann(engine, policy)
    add_batch(user="ann", status=BatchStatus.PENDING, age=timedelta(minutes=2))  # another click
    add_batch(user="bob", status=BatchStatus.PENDING, age=timedelta(minutes=1))
    add_batch(user="ann", status=BatchStatus.SUCCEEDED)
    cells_at(engine, policy, "s1", 2, minutes_ago=1)  # a sweep's pending cells

    with unchanged_besides(engine, GenerationBatch, changing={mine}):
        quota.release(engine=engine, batch_id=mine, error="fal failed", now=NOW)

    with session_scope(engine) as session:
        released = session.get(GenerationBatch, mine)
    assert (released.status, released.error) == (BatchStatus.FAILED, "fal failed")
    assert status_of(engine, policy).used == 3  # ann's other pending, her success, the sweep


def add_image(engine, image_id: str, *, user: str, age: timedelta, batch_id=None, lora="l"):
    with session_scope(engine) as session:
        session.add(
            GeneratedImage(
                id=image_id, lora_training_id=lora, user=user, prompt="p", image_url="u",
                created_at=to_iso(NOW - age), batch_id=batch_id,
            )
        )  # fmt: skip
        session.commit()


def test_the_next_slot_is_read_from_the_users_own_original_app_images_only(engine, add_batch):
    """ann: four images of the original app 5 h ago (one slot) and a batch 1 h ago, with a
    limit of 2. Around them, images that are not hers to count: bob's original-app images,
    her own images of a batch (counted by their batch), images older than the window."""
    policy = QuotaPolicy(limit=2, window=timedelta(hours=24))
    for number in range(4):
        add_image(engine, f"ann-{number}", user="ann", age=timedelta(hours=5))
    add_batch(age=timedelta(hours=1))
    for number, hours in enumerate((6, 4, 2)):
        add_image(engine, f"bob-{number}", user="bob", age=timedelta(hours=hours), lora="other")
    add_image(engine, "ann-batched", user="ann", age=timedelta(hours=3), batch_id="batch-1")
    add_image(engine, "ann-old", user="ann", age=timedelta(hours=30))

    status = status_of(engine, policy)

    assert (status.used, status.remaining) == (2, 0)
    expected = NOW - timedelta(hours=5) + timedelta(hours=24)
    assert abs(status.next_slot_at - expected) < timedelta(milliseconds=1)


# --- Time edges: at the edge and one millisecond (the stored resolution) either side -------

TICK = timedelta(milliseconds=1)
WINDOW = timedelta(hours=24)


@pytest.mark.parametrize(
    ("age", "counts"), [(WINDOW - TICK, True), (WINDOW, False), (WINDOW + TICK, False)]
)
@pytest.mark.parametrize("kind", ["batch", "cell", "original app"])
def test_a_use_counts_until_exactly_one_window_old(engine, policy, add_batch, kind, age, counts):
    if kind == "batch":
        add_batch(age=age)
    elif kind == "cell":
        quota.reserve_cells(
            engine=engine, policy=policy, user="ann", sweep_id="s1",
            cells=[{"lora_training_id": "l", "prompt": "p", "sweep_x": 0, "sweep_y": 0}],
            lease=leases.Lease.new(leases.DEFAULT_TERMS, NOW - age), now=NOW - age,
        )  # fmt: skip
        succeed_all(engine)
    else:
        add_image(engine, "old", user="ann", age=age)
    tight = QuotaPolicy(limit=1, window=WINDOW)

    assert status_of(engine, policy).used == (1 if counts else 0)
    with session_scope(engine) as session:
        usage = quota.usage_by_user(session=session, policy=policy, now=NOW)
    assert usage == ([("ann", 1)] if counts else [])
    with pytest.raises(QuotaExceeded) if counts else nullcontext():
        reserve_for_ann(engine, tight)


@pytest.mark.parametrize(("offset", "free"), [(-TICK, False), (timedelta(0), True), (TICK, True)])
def test_the_next_slot_is_free_exactly_when_announced(engine, add_batch, offset, free):
    """Three batches over a limit of two: the second oldest leaving frees the next slot."""
    policy = QuotaPolicy(limit=2, window=WINDOW)
    for hours in (3, 2, 1):
        add_batch(age=timedelta(hours=hours))
    announced = status_of(engine, policy).next_slot_at
    assert abs(announced - (NOW - timedelta(hours=2) + WINDOW)) < TICK

    with session_scope(engine) as session:
        then = quota.get_status(session=session, policy=policy, user="ann", now=announced + offset)

    assert then.remaining == (1 if free else 0)
    assert then.next_slot_at == (None if free else announced)


@pytest.mark.parametrize(
    ("age", "holds"),
    [(timedelta(minutes=10) - TICK, True), (timedelta(minutes=10), False),
     (timedelta(minutes=10) + TICK, False)],
)  # fmt: skip
def test_a_pending_batch_holds_its_slot_until_exactly_its_abandoned_age(
    engine, add_batch, age, holds
):
    policy = QuotaPolicy(limit=1, window=WINDOW, abandoned_after=timedelta(minutes=10))
    add_batch(status=BatchStatus.PENDING, age=age)

    assert status_of(engine, policy).used == (1 if holds else 0)
    with pytest.raises(QuotaExceeded) if holds else nullcontext():
        reserve_for_ann(engine, policy)


@pytest.mark.parametrize(("until", "holds"), [(TICK, True), (timedelta(0), False), (-TICK, False)])
def test_a_queued_cell_is_held_until_exactly_its_lease_ends(engine, until, holds):
    policy = QuotaPolicy(limit=1, window=WINDOW, abandoned_after=timedelta(minutes=1))
    quota.reserve_cells(
        engine=engine, policy=policy, user="ann", sweep_id="s1",
        cells=[{"lora_training_id": "l", "prompt": "p", "sweep_x": 0}],
        lease=leases.Lease(holder="h", until=NOW + until), now=NOW - timedelta(minutes=5),
    )  # fmt: skip

    assert status_of(engine, policy).used == (1 if holds else 0)
    with pytest.raises(QuotaExceeded) if holds else nullcontext():
        reserve_for_ann(engine, policy)

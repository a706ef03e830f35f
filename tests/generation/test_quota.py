"""Quota: 8 batches per user per rolling 24 h, reserved atomically before fal is called."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from lora_core.data.clock import to_iso
from lora_core.data.db import session_scope
from lora_core.data.models import BatchStatus, GeneratedImage, GenerationBatch
from lora_core.errors import QuotaExceeded
from lora_core.generation import quota, service
from lora_core.generation.quota import QuotaPolicy
from tests.conftest import NOW
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

    assert caught.value.limit == 8
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
            engine=engine,
            generator=fal_generator,
            policy=policy,
            user="ann",
            lora_id=lora.id,
            prompt="a race",
        )

    outcomes = race(threads_count, click, refused=QuotaExceeded, won="generated")

    assert sorted(outcomes) == ["generated"] + ["refused"] * (threads_count - 1)
    assert len(fake_fal.submissions) == 1
    with session_scope(engine) as session:
        batches = session.scalars(
            select(GenerationBatch).where(GenerationBatch.wallet_address == "ann")
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
                    wallet_address="ann",
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
                engine=create_db_engine(
                    DatabaseTarget({database.url!r}, auth_token={database.auth_token!r})
                ),
                generator=FalGenerator(key={TEST_FAL_KEY!r}, poll_interval=0.02),
                policy=quota.QuotaPolicy(limit=8, window=timedelta(hours=24)),
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
            engine=engine,
            generator=fal_generator,
            policy=policy,
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


def test_five_images_of_the_original_app_take_two_slots(engine, policy):
    add_legacy_images(engine, 5, age=timedelta(hours=2))

    assert status_of(engine, policy).used == 2  # a batch of 4, and one of 1


def test_a_pending_batch_exactly_at_its_expiry_age_no_longer_holds_a_slot(engine, add_batch):
    policy = QuotaPolicy(limit=8, window=timedelta(hours=24), abandoned_after=timedelta(minutes=10))
    add_batch(status=BatchStatus.PENDING, age=timedelta(minutes=10))

    assert status_of(engine, policy).used == 0


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
        assert session.get(GenerationBatch, batch_id).lease_holder == lease.holder

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

"""Crash-safe generation: a batch left pending by a dead process is finished exactly once,
or failed with its slot freed, from fal's answer for the stored request id."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from lora_core.data.clock import utc_now
from lora_core.data.db import DatabaseTarget, session_scope
from lora_core.data.models import BatchStatus, GeneratedImage, GenerationBatch
from lora_core.generation import quota, recovery
from tests.conftest import APP_ROOT, TEST_FAL_KEY
from tests.support.fakefal import JobFailure

pytestmark = pytest.mark.both_backends  # the core suite, on SQLite and on libSQL

OLDER_THAN = timedelta(minutes=4)
GIVE_UP = timedelta(minutes=30)


def batches(engine) -> list[GenerationBatch]:
    with session_scope(engine) as session:
        return list(session.scalars(select(GenerationBatch)))


def image_count(engine) -> int:
    with session_scope(engine) as session:
        return len(list(session.scalars(select(GeneratedImage.id))))


def resume(engine, generator, media_store, *, after: timedelta = OLDER_THAN, lora_id=None):
    return recovery.resume_pending(
        engine=engine,
        generator=generator,
        store=media_store,
        older_than=OLDER_THAN,
        give_up_after=GIVE_UP,
        lora_id=lora_id,
        now=utc_now() + after + timedelta(seconds=1),
    )


def start_dying_worker(database: DatabaseTarget, lora_id: str) -> subprocess.Popen:
    """A separate process that starts a generation through the real fal_client."""
    script = textwrap.dedent(
        f"""
        from datetime import timedelta
        from lora_core.generation import quota, service
        from lora_core.data.db import DatabaseTarget, create_db_engine
        from lora_core.fal.generator import FalGenerator
        service.generate(
            engine=create_db_engine(
                DatabaseTarget({database.url!r}, auth_token={database.auth_token!r})
            ),
            generator=FalGenerator(key={TEST_FAL_KEY!r}, timeout_seconds=60, poll_interval=0.05),
            policy=quota.QuotaPolicy(limit=8, window=timedelta(hours=24)),
            user="ann",
            lora_id={lora_id!r},
            prompt="a lighthouse",
        )
        """
    )
    return subprocess.Popen([sys.executable, "-c", script], cwd=APP_ROOT, env=dict(os.environ))


def test_a_worker_killed_while_fal_works_is_finished_exactly_once_on_restart(
    engine, database, add_lora, fal_generator, fake_fal, media_store, policy
):
    lora = add_lora()
    fake_fal.script.processing_seconds = 1.5
    fake_fal.script.queue_positions = []
    worker = start_dying_worker(database, lora.id)
    deadline = time.monotonic() + 30
    while not any(batch.fal_request_id for batch in batches(engine)):
        assert time.monotonic() < deadline, "the worker never reached fal"
        time.sleep(0.05)
    worker.kill()
    worker.wait(timeout=10)
    [batch] = batches(engine)
    assert batch.status == BatchStatus.PENDING and image_count(engine) == 0

    # A restart soon after: fal is still working, and a live wait could still be going on.
    assert resume(engine, fal_generator, media_store, after=timedelta(0)) == recovery.ResumeReport()
    time.sleep(1.6)  # fal finishes the job meanwhile
    report = resume(engine, fal_generator, media_store)

    assert report == recovery.ResumeReport(finished=1)
    [batch] = batches(engine)
    assert batch.status == BatchStatus.SUCCEEDED and batch.images_returned == 4
    assert image_count(engine) == 4
    assert len(fake_fal.submissions) == 1  # nothing was submitted again
    assert resume(engine, fal_generator, media_store) == recovery.ResumeReport()
    assert image_count(engine) == 4
    with session_scope(engine) as session:
        assert quota.get_status(session=session, policy=policy, user="ann").used == 1


def reserve_pending(engine, lora_id: str, *, request_id: str | None, age: timedelta) -> str:
    batch_id = quota.reserve(
        engine=engine,
        policy=quota.QuotaPolicy(limit=8, window=timedelta(hours=24)),
        user="ann",
        lora_id=lora_id,
        prompt="p",
        now=utc_now() - age,
    )
    with session_scope(engine) as session:
        session.get(GenerationBatch, batch_id).fal_request_id = request_id
        session.commit()
    return batch_id


def submit_job(fal_generator, fake_fal, *, seconds: float = 0.01) -> str:
    """A job on the fake fal, as a dead worker left it; done after `seconds`."""
    fake_fal.script.queue_positions = []
    fake_fal.script.processing_seconds = seconds
    handle = fal_generator._client.submit("fal-ai/flux-lora", arguments={})
    time.sleep(min(seconds, 1) + 0.05)
    return handle.request_id


@pytest.mark.parametrize("how", ["job", "result"])
def test_a_job_fal_failed_frees_the_slot_with_fals_reason(
    engine, add_lora, fal_generator, fake_fal, media_store, how
):
    """COMPLETED with an error, or an error answered by the result URL: both are final."""
    lora = add_lora()
    if how == "job":
        fake_fal.script.job_failure = JobFailure("GPU on fire", "runner_server_error", 500)
    else:
        fake_fal.script.result_error = (500, "GPU on fire")
    reserve_pending(engine, lora.id, request_id=submit_job(fal_generator, fake_fal), age=OLDER_THAN)

    assert resume(engine, fal_generator, media_store) == recovery.ResumeReport(failed=1)

    [batch] = batches(engine)
    assert batch.status == BatchStatus.FAILED and "GPU on fire" in batch.error
    assert image_count(engine) == 0


def test_a_job_fal_no_longer_knows_is_failed_with_the_reason(
    engine, add_lora, fal_generator, media_store
):
    lora = add_lora()
    reserve_pending(engine, lora.id, request_id="forgotten-by-fal", age=OLDER_THAN)

    assert resume(engine, fal_generator, media_store) == recovery.ResumeReport(failed=1)
    assert "fal no longer knows this job" in batches(engine)[0].error


def test_a_job_fal_cannot_be_asked_about_now_waits(
    engine, add_lora, fal_generator, fake_fal, media_store, monkeypatch
):
    from lora_core.fal import generator

    monkeypatch.setattr(generator, "RESUME_SECONDS", 1.0)
    lora = add_lora()
    reserve_pending(engine, lora.id, request_id=submit_job(fal_generator, fake_fal), age=OLDER_THAN)
    fake_fal.script.gateway_errors = {"status": [503] * 20}

    assert resume(engine, fal_generator, media_store) == recovery.ResumeReport(waiting=1)
    assert batches(engine)[0].status == BatchStatus.PENDING


def test_a_batch_that_never_reached_fal_is_failed(engine, add_lora, fal_generator, media_store):
    lora = add_lora()
    reserve_pending(engine, lora.id, request_id=None, age=OLDER_THAN)

    assert resume(engine, fal_generator, media_store) == recovery.ResumeReport(failed=1)
    assert batches(engine)[0].error == "Interrupted before fal accepted the job."


def test_a_job_still_running_waits_then_is_given_up_and_cancelled(
    engine, add_lora, fal_generator, fake_fal, media_store
):
    lora = add_lora()
    request_id = submit_job(fal_generator, fake_fal, seconds=3600)
    reserve_pending(engine, lora.id, request_id=request_id, age=OLDER_THAN)

    assert resume(engine, fal_generator, media_store) == recovery.ResumeReport(waiting=1)
    assert batches(engine)[0].status == BatchStatus.PENDING
    assert batches(engine)[0].error is None  # released for the next attempt

    assert resume(engine, fal_generator, media_store, after=GIVE_UP) == recovery.ResumeReport(
        failed=1
    )
    assert len(fake_fal.cancellations) == 1


@pytest.mark.parametrize("lora_filter", ["other-lora", None])
def test_resuming_for_one_lora_leaves_the_others(
    engine, add_lora, fal_generator, media_store, lora_filter
):
    lora = add_lora()
    reserve_pending(engine, lora.id, request_id=None, age=OLDER_THAN)

    report = resume(engine, fal_generator, media_store, lora_id=lora_filter)

    assert report.failed == (0 if lora_filter else 1)


def test_an_interrupted_preview_is_failed(engine, add_lora, preview_generator, media_store):
    lora = add_lora()
    reserve_pending(engine, lora.id, request_id="preview-has-none", age=OLDER_THAN)

    assert resume(engine, preview_generator, media_store) == recovery.ResumeReport(failed=1)

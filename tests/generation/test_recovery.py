"""Crash-safe generation: a batch left pending by a dead process is finished exactly once,
or failed with its slot freed, from fal's answer for the stored request id, seconds after
its lease lapsed; a live process's batch is never taken from it."""

from __future__ import annotations

import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from sqlalchemy import event, select

from lora_core.data import leases
from lora_core.data.clock import to_iso, utc_now
from lora_core.data.db import DatabaseTarget, session_scope
from lora_core.data.models import BatchStatus, GeneratedImage, GenerationBatch, Sweep
from lora_core.generation import quota, recipe_files, recovery, service, storing
from lora_core.generation.prompts import with_trigger
from lora_core.generation.recipe import NO_LORA
from lora_core.generation.service import GenerationKit
from tests.support.bystanders import unchanged_besides
from tests.support.factories import stored_batches
from tests.support.fakefal import JobFailure
from tests.support.race import race
from tests.support.workers import start_worker

pytestmark = pytest.mark.both_backends  # the core suite, on SQLite and on libSQL

OLDER_THAN = timedelta(minutes=4)
FOLLOW_FOR = timedelta(days=30)
# Short leases, so that real processes and threads can lapse and renew them within a test.
TERMS = leases.LeaseTerms(duration=timedelta(seconds=2), renew_every=timedelta(seconds=0.25))


def image_count(engine) -> int:
    with session_scope(engine) as session:
        return len(list(session.scalars(select(GeneratedImage.id))))


def resume(engine, generator, media_store, *, after: timedelta | None = OLDER_THAN, lora_id=None):
    """Resume as a sweep `after` from now would (None: right now)."""
    return recovery.resume_pending(
        engine=engine,
        generator=generator,
        store=media_store,
        terms=TERMS,
        unleased_older_than=OLDER_THAN,
        follow_for=FOLLOW_FOR,
        lora_id=lora_id,
        now=None if after is None else utc_now() + after + timedelta(seconds=1),
    )


def start_dying_worker(database: DatabaseTarget, lora_id: str) -> subprocess.Popen:
    """A separate process that starts a generation through the real fal_client."""
    return start_worker(
        database,
        f"""
        from lora_core.generation import service
        service.generate(
            kit=service.GenerationKit(
                engine=engine, generator=generator, policy=policy, lease_terms=terms
            ),
            user="ann", lora_id={lora_id!r}, prompt="a lighthouse",
        )
        """,
        terms=TERMS,
    )


def test_a_worker_killed_while_fal_works_is_finished_seconds_after_its_lease_lapses(
    engine, database, add_lora, fal_generator, fake_fal, media_store, policy
):
    lora = add_lora()
    fake_fal.script.processing_seconds = 1.5
    fake_fal.script.queue_positions = []
    worker = start_dying_worker(database, lora.id)
    deadline = time.monotonic() + 30
    while not any(batch.fal_request_id for batch in stored_batches(engine)):
        assert time.monotonic() < deadline, "the worker never reached fal"
        time.sleep(0.05)
    worker.kill()
    killed_at = time.monotonic()
    worker.wait(timeout=10)
    [batch] = stored_batches(engine)
    assert batch.status == BatchStatus.PENDING and image_count(engine) == 0

    # Right away the lease still holds: a live worker could still be waiting on fal.
    assert resume(engine, fal_generator, media_store, after=None) == recovery.ResumeReport()
    # A sweep every 0.1 s, as replicas do every few seconds, until the batch is finished.
    while (report := resume(engine, fal_generator, media_store, after=None)).finished == 0:
        assert time.monotonic() < killed_at + 10, f"never finished: {report}"
        time.sleep(0.1)

    assert time.monotonic() - killed_at < TERMS.duration.total_seconds() + 1.5
    [batch] = stored_batches(engine)
    assert batch.status == BatchStatus.SUCCEEDED and batch.images_returned == 4
    assert image_count(engine) == 4
    assert len(fake_fal.submissions) == 1  # nothing was submitted again
    assert resume(engine, fal_generator, media_store) == recovery.ResumeReport()
    assert image_count(engine) == 4
    with session_scope(engine) as session:
        assert quota.get_status(session=session, policy=policy, user="ann").used == 1


def test_a_live_generation_keeps_its_batch_however_long_fal_takes(
    engine, add_lora, fal_generator, fake_fal, media_store, policy
):
    """fal takes 4 lease durations; sweeps all along never take the batch over."""
    lora = add_lora()
    fake_fal.script.processing_seconds = TERMS.duration.total_seconds() * 4
    fake_fal.script.queue_positions = []
    outcome: list[object] = []
    worker = threading.Thread(
        target=lambda: outcome.append(
            service.generate(
                kit=GenerationKit(
                    engine=engine,
                    generator=fal_generator,
                    policy=policy,
                    store=media_store,
                    lease_terms=TERMS,
                ),
                user="ann",
                lora_id=lora.id,
                prompt="a slow lighthouse",
            )
        )
    )
    worker.start()
    sweeps = []
    while worker.is_alive():
        sweeps.append(resume(engine, fal_generator, media_store, after=None))
        time.sleep(0.1)
    worker.join()

    assert set(sweeps) == {recovery.ResumeReport()} and len(sweeps) > 20
    assert len(outcome[0].images) == 4
    [batch] = stored_batches(engine)
    assert batch.status == BatchStatus.SUCCEEDED and image_count(engine) == 4
    assert len(fake_fal.submissions) == 1


def test_two_replicas_sweeping_at_once_finish_a_dead_batch_once(
    engine, add_lora, fal_generator, fake_fal, media_store
):
    lora = add_lora()
    reserve_pending(engine, lora.id, request_id=submit_job(fal_generator, fake_fal), age=OLDER_THAN)

    reports: list[recovery.ResumeReport] = []
    outcomes = race(
        4, lambda: reports.append(resume(engine, fal_generator, media_store)), refused=LookupError
    )

    assert outcomes == ["won"] * 4  # no sweep failed

    assert sum(report.finished for report in reports) == 1
    assert image_count(engine) == 4
    assert stored_batches(engine)[0].status == BatchStatus.SUCCEEDED


def test_a_batch_finished_elsewhere_is_not_stored_twice(
    engine, add_lora, fal_generator, fake_fal, media_store
):
    """The last line of defence: storing a batch no longer pending writes nothing."""
    lora = add_lora()
    batch_id = reserve_pending(engine, lora.id, request_id="r", age=timedelta(0))
    result = fal_generator.resume(submit_job(fal_generator, fake_fal))
    store = partial(
        storing.store_batch,
        engine=engine,
        batch_id=batch_id,
        lora_id=lora.id,
        user="ann",
        prompt="p",
        result_images=result.images,
        seed=result.seed,
        request_id="r",
        store=None,
    )

    first, second = store(), store()

    assert image_count(engine) == 4
    assert {image.id for image in second} == {image.id for image in first}


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

    [batch] = stored_batches(engine)
    assert batch.status == BatchStatus.FAILED and "GPU on fire" in batch.error
    assert image_count(engine) == 0


def test_a_job_fal_no_longer_knows_is_failed_with_the_reason(
    engine, add_lora, fal_generator, media_store
):
    lora = add_lora()
    reserve_pending(engine, lora.id, request_id="forgotten-by-fal", age=OLDER_THAN)

    assert resume(engine, fal_generator, media_store) == recovery.ResumeReport(failed=1)
    assert "fal no longer knows this job" in stored_batches(engine)[0].error


def test_a_job_fal_cannot_be_asked_about_now_waits(
    engine, add_lora, fal_generator, fake_fal, media_store, monkeypatch
):
    from lora_core.fal import generator

    monkeypatch.setattr(generator, "RESUME_SECONDS", 1.0)
    lora = add_lora()
    reserve_pending(engine, lora.id, request_id=submit_job(fal_generator, fake_fal), age=OLDER_THAN)
    fake_fal.script.gateway_errors = {"status": [503] * 20}

    assert resume(engine, fal_generator, media_store) == recovery.ResumeReport(waiting=1)
    assert stored_batches(engine)[0].status == BatchStatus.PENDING


def test_a_batch_that_never_reached_fal_is_failed(engine, add_lora, fal_generator, media_store):
    lora = add_lora()
    reserve_pending(engine, lora.id, request_id=None, age=OLDER_THAN)

    assert resume(engine, fal_generator, media_store) == recovery.ResumeReport(failed=1)
    assert stored_batches(engine)[0].error == "Interrupted before fal accepted the job."


def test_a_job_still_running_is_followed_and_given_up_only_after_follow_for(
    engine, add_lora, fal_generator, fake_fal, media_store
):
    lora = add_lora()
    request_id = submit_job(fal_generator, fake_fal, seconds=3600)
    reserve_pending(engine, lora.id, request_id=request_id, age=OLDER_THAN)

    assert resume(engine, fal_generator, media_store) == recovery.ResumeReport(waiting=1)
    assert stored_batches(engine)[0].status == BatchStatus.PENDING
    # Its lease, ours now, still holds: the next sweep leaves it; one after it lapsed asks.
    assert resume(engine, fal_generator, media_store, after=None) == recovery.ResumeReport()

    # Long after fal's timeout and any wait of ours, it is still followed…
    assert resume(
        engine, fal_generator, media_store, after=timedelta(days=1)
    ) == recovery.ResumeReport(waiting=1)
    assert fake_fal.cancellations == []
    # …until fal has given no answer for FOLLOW_FOR.
    assert resume(engine, fal_generator, media_store, after=FOLLOW_FOR) == recovery.ResumeReport(
        failed=1
    )
    assert stored_batches(engine)[0].error == recovery.GAVE_UP
    assert len(fake_fal.cancellations) == 1


@pytest.mark.parametrize("lora_filter", ["mine", "other-lora", None])
def test_resuming_for_one_lora_leaves_the_others(
    engine, add_lora, fal_generator, media_store, lora_filter
):
    mine, other = add_lora("mine"), add_lora("theirs")
    for lora in (mine, other):
        reserve_pending(engine, lora.id, request_id=None, age=OLDER_THAN)

    report = resume(engine, fal_generator, media_store, lora_id=lora_filter)

    settled = {batch.lora_training_id: batch.status for batch in stored_batches(engine)}
    if lora_filter == "mine":
        assert report.failed == 1
        assert settled == {"mine": BatchStatus.FAILED, "theirs": BatchStatus.PENDING}
    else:
        assert report.failed == (0 if lora_filter else 2)


def test_a_resumed_batch_keeps_its_lease_while_fal_answers_slowly(
    engine, add_lora, fal_generator, fake_fal, media_store
):
    """The lease is renewed during the result fetch: no other sweep takes the batch over."""
    lora = add_lora()
    reserve_pending(engine, lora.id, request_id=submit_job(fal_generator, fake_fal), age=OLDER_THAN)
    fake_fal.script.stall = {"result": 1.5}  # six renewal beats
    leases_seen: set[str] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            leases_seen.add(stored_batches(engine)[0].lease_until or "")
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        assert resume(engine, fal_generator, media_store, after=None) == (
            recovery.ResumeReport(finished=1)
        )
    finally:
        done.set()
        watcher.join()

    assert len(leases_seen - {""}) >= 3  # the claim's, then renewals


def test_a_sweeps_baseline_cell_is_finished_with_the_words_fal_got(
    engine, add_lora, fal_generator, fake_fal, media_store
):
    """A baseline cell has no LoRA: its files say the prompt went with the sweep's LoRA's
    trigger word, and no LoRA."""
    lora = add_lora("styled", trigger_word="inkwash")
    with session_scope(engine) as session:
        session.add(
            Sweep(id="sweep-1", user="ann", lora_training_id=lora.id, prompt="p",
                  x_kind="lora", x_values="[]", lora_scale=1.0, num_inference_steps=28,
                  guidance_scale=3.5, image_size="square_hd", seed="7",
                  created_at=to_iso(utc_now()))
        )  # fmt: skip
        session.commit()
    batch_id = reserve_pending(
        engine, NO_LORA, request_id=submit_job(fal_generator, fake_fal), age=OLDER_THAN
    )
    with session_scope(engine) as session:
        session.get(GenerationBatch, batch_id).sweep_id = "sweep-1"
        session.commit()

    assert resume(engine, fal_generator, media_store) == recovery.ResumeReport(finished=1)

    with session_scope(engine) as session:
        image = session.scalars(select(GeneratedImage)).first()
    fields = recipe_files.read(media_store.path_for(image.image_url).read_bytes()).fields
    assert (fields["prompt"], fields["full_prompt"]) == ("p", with_trigger("p", "inkwash"))
    assert fields["lora"] is None


def test_an_interrupted_preview_is_failed(engine, add_lora, preview_generator, media_store):
    lora = add_lora()
    reserve_pending(engine, lora.id, request_id="preview-has-none", age=OLDER_THAN)

    assert resume(engine, preview_generator, media_store) == recovery.ResumeReport(failed=1)


# --- Time edges and bystanders: exactly when a batch is taken, given up, and nothing else ---

T = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)  # whole milliseconds, as rows store them
TICK = timedelta(milliseconds=1)


class QuietFal:
    """A generator whose jobs fal never answers about: `resume` says "still running"."""

    downloads_weights = True

    def __init__(self) -> None:
        self.cancelled: list[str] = []

    def generate(self, request, on_progress=None):
        raise AssertionError("recovery never submits")

    def resume(self, request_id: str):
        return None

    def cancel(self, request_id: str) -> None:
        self.cancelled.append(request_id)


def add_row(engine, batch_id: str, *, created: datetime, request_id=None, status="pending",
            holder=None, until=None, user="ann", sweep_id=None) -> None:  # fmt: skip
    with session_scope(engine) as session:
        session.add(
            GenerationBatch(
                id=batch_id, lora_training_id="l", user=user, prompt="p", status=status,
                created_at=to_iso(created), fal_request_id=request_id, lease_holder=holder,
                lease_until=None if until is None else to_iso(until), sweep_id=sweep_id,
            )
        )  # fmt: skip
        session.commit()


def resume_at(engine, generator, now: datetime, *, follow_for: timedelta = FOLLOW_FOR):
    return recovery.resume_pending(
        engine=engine, generator=generator, store=None, terms=TERMS,
        unleased_older_than=OLDER_THAN, follow_for=follow_for, now=now,
    )  # fmt: skip


def add_bystanders(engine) -> None:
    """Batches no sweep at T may touch: a live process's, a finished one, bob's fresh one."""
    add_row(engine, "live", created=T - timedelta(hours=1), request_id="r-live",
            holder="alive", until=T + timedelta(seconds=5))  # fmt: skip
    add_row(engine, "done", created=T - timedelta(hours=1), status="succeeded")
    add_row(engine, "fresh", created=T, user="bob")


@pytest.mark.parametrize(("offset", "taken"), [(-TICK, True), (timedelta(0), False), (TICK, False)])
def test_a_batch_without_a_lease_is_taken_only_once_older_than_the_age(engine, offset, taken):
    """A batch an earlier version wrote (no lease) is another process's until it is older
    than `unleased_older_than`: exactly that old, it is still left alone."""
    add_row(engine, "unleased", created=T - OLDER_THAN + offset)
    add_bystanders(engine)

    with unchanged_besides(engine, GenerationBatch, changing={"unleased"}):
        report = resume_at(engine, QuietFal(), T)

    row = stored_by_id(engine)["unleased"]
    if taken:
        assert report == recovery.ResumeReport(failed=1)
        assert (row.status, row.error) == ("failed", "Interrupted before fal accepted the job.")
    else:
        assert report == recovery.ResumeReport()
        assert (row.status, row.lease_holder, row.error) == ("pending", None, None)


@pytest.mark.parametrize(
    ("offset", "given_up"), [(-TICK, True), (timedelta(0), False), (TICK, False)]
)
def test_a_quiet_job_is_given_up_only_once_older_than_follow_for(engine, offset, given_up):
    follow_for = timedelta(hours=2)
    add_row(engine, "quiet", created=T - follow_for + offset, request_id="r-quiet")
    add_bystanders(engine)
    fal = QuietFal()

    with unchanged_besides(engine, GenerationBatch, changing={"quiet"}):
        report = resume_at(engine, fal, T, follow_for=follow_for)

    row = stored_by_id(engine)["quiet"]
    if given_up:
        assert report == recovery.ResumeReport(failed=1)
        assert (row.status, row.error) == ("failed", recovery.GAVE_UP)
        assert fal.cancelled == ["r-quiet"]
    else:
        assert report == recovery.ResumeReport(waiting=1)
        assert (row.status, row.error, row.lease_holder) == ("pending", None, None)
        assert row.lease_until == to_iso(T + recovery.ASK_AGAIN_AFTER)  # asked again soon
        assert fal.cancelled == []


@pytest.mark.parametrize("sweep_filter", ["mine", "another-sweep"])
def test_resuming_for_one_sweep_leaves_the_others(engine, sweep_filter):
    """The sweep's page resumes its own cells only: never another sweep's, nor a batch."""
    for batch_id, sweep_id in (("cell-mine", "mine"), ("cell-theirs", "theirs"), ("b", None)):
        add_row(engine, batch_id, created=T - OLDER_THAN - TICK, sweep_id=sweep_id)

    report = recovery.resume_pending(
        engine=engine, generator=QuietFal(), store=None, terms=TERMS,
        unleased_older_than=OLDER_THAN, follow_for=FOLLOW_FOR, sweep_id=sweep_filter, now=T,
    )  # fmt: skip

    settled = {batch_id: row.status for batch_id, row in stored_by_id(engine).items()}
    if sweep_filter == "mine":
        assert report == recovery.ResumeReport(failed=1)  # it never reached fal
        assert settled == {"cell-mine": "failed", "cell-theirs": "pending", "b": "pending"}
    else:
        assert report == recovery.ResumeReport()
        assert set(settled.values()) == {"pending"}


def test_a_sweep_while_every_lease_holds_only_reads(engine):
    """Every replica sweeps every few seconds: with nothing lapsed it must not even try a
    takeover (an UPDATE matching nothing still takes SQLite's write lock)."""
    add_row(engine, "young", created=T - OLDER_THAN + TICK)  # no lease, not yet old enough
    add_bystanders(engine)
    written: list[str] = []

    def capture(_conn, _cursor, statement, _parameters, _context, _many) -> None:
        if not statement.lstrip().upper().startswith("SELECT"):
            written.append(statement)

    event.listen(engine, "before_cursor_execute", capture)
    try:
        report = resume_at(engine, QuietFal(), T)
    finally:
        event.remove(engine, "before_cursor_execute", capture)

    assert report == recovery.ResumeReport()
    assert written == []


def stored_by_id(engine) -> dict[str, GenerationBatch]:
    return {row.id: row for row in stored_batches(engine)}

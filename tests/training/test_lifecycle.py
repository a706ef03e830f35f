"""Training a LoRA: the row from reservation to completion, and the training quota."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from lora_core.data import leases, lookups
from lora_core.data.clock import parse_iso, to_iso, utc_now
from lora_core.data.db import session_scope
from lora_core.data.models import LoraStatus, LoraTraining, RequestId
from lora_core.errors import InvalidTrainingInput, TrainingFailed, TrainingQuotaExceeded
from lora_core.fal.trainer import FalTrainer
from lora_core.generation import service
from lora_core.training import following
from lora_core.training import lifecycle as training
from lora_core.training.archive import UploadedFile
from lora_core.training.lifecycle import QuotaPolicy
from lora_core.training.trainers import TrainingState
from tests.conftest import NOW, TEST_FAL_KEY
from tests.support.bystanders import unchanged_besides
from tests.support.factories import pictures, stored_loras
from tests.support.fakefal import JobFailure
from tests.support.plans import explain_selects
from tests.support.race import race

pytestmark = pytest.mark.both_backends  # the core suite, on SQLite and on libSQL


@pytest.fixture
def training_policy() -> QuotaPolicy:
    return QuotaPolicy(limit=2, window=timedelta(hours=24), exempt_users=frozenset({"admin"}))


@pytest.fixture
def start(engine, fal_trainer, training_policy):
    """Start a training of 5 pictures for `user` (ann unless told), `age` ago."""

    def run(
        *,
        user: str = "ann",
        files: list[UploadedFile] | None = None,
        trigger_word: str = "sks-style",
        age: timedelta = timedelta(0),
    ) -> LoraTraining:
        return training.start_training(
            engine=engine,
            trainer=fal_trainer,
            policy=training_policy,
            user=user,
            files=pictures(5) if files is None else files,
            trigger_word=trigger_word,
            steps=1000,
            now=NOW - age,
        )

    return run


def uploads(fake_fal) -> list[str]:
    return [r.path for r in fake_fal.requests if r.path == "/files/upload"]


def refresh(
    engine, training_policy, lora_id: str, *, times: int = 1, **extra
) -> following.TrainingView:
    """`times` beats of the background sweep (a trainer that knows nothing of the job,
    asking again at once), then the training as a page reads it."""
    for _ in range(times):
        following.follow(
            engine=engine,
            trainer=FalTrainer(key=TEST_FAL_KEY),
            lora_id=lora_id,
            every=timedelta(0),
            **extra,
        )
        training.fail_unsubmitted(engine=engine, policy=training_policy)
        time.sleep(0.002)  # leases are compared to the millisecond: the next beat may ask
    return view_of(engine, lora_id)


def view_of(engine, lora_id: str) -> following.TrainingView:
    with session_scope(engine) as session:
        return following.view(session.get(LoraTraining, lora_id))


def test_starting_records_a_pending_lora_under_fals_request_id(start, engine, fake_fal):
    lora = start(trigger_word="  wtrclr ")

    [row] = stored_loras(engine)
    [request_id] = fake_fal.jobs
    assert row.id == lora.id
    assert (row.status, row.request_id, row.user) == ("pending", request_id, "ann")
    assert (row.trigger_word, row.steps, row.lora_weights_url) == ("wtrclr", 1000, None)
    [images_url] = json.loads(row.image_urls)
    [submission] = fake_fal.training_submissions
    assert submission.body["images_data_url"] == images_url
    assert images_url.removeprefix(fake_fal.url) in fake_fal.uploads


def test_bad_input_is_refused_before_anything_is_uploaded(start, engine, fake_fal):
    with pytest.raises(InvalidTrainingInput, match="these files hold 3"):
        start(files=pictures(3))
    with pytest.raises(InvalidTrainingInput, match="trigger word"):
        start(trigger_word="**bold**")

    assert fake_fal.requests == []
    assert stored_loras(engine) == []


def test_the_third_training_in_a_day_is_refused_before_uploading(start, engine, fake_fal):
    first = start(age=timedelta(hours=5))
    start(age=timedelta(hours=1))
    before = len(uploads(fake_fal))

    with pytest.raises(TrainingQuotaExceeded) as refused:
        start()

    assert len(uploads(fake_fal)) == before  # nothing spent on the refused one
    assert str(refused.value) == "You've started all 2 trainings for this period."
    assert refused.value.next_slot_at == parse_iso(first.created_at) + timedelta(hours=24)
    assert len(stored_loras(engine)) == 2
    start(user="bob")  # others have their own allowance
    for _ in range(3):
        start(user="admin")  # exempt


def test_trainings_older_than_the_window_and_failed_ones_free_their_slot(
    start, engine, training_policy
):
    start(age=timedelta(hours=25))
    failed = start(age=timedelta(hours=2))
    with session_scope(engine) as session:
        session.get(LoraTraining, failed.id).status = LoraStatus.FAILED
        session.commit()

    start()
    start()

    with session_scope(engine) as session:
        status = training.get_status(session=session, policy=training_policy, user="ann", now=NOW)
    assert (status.used, status.remaining) == (2, 0)


def test_the_next_slot_search_reads_only_the_users_trainings_in_the_window(engine, training_policy):
    """The moments it tries are the user's own trainings in the window, found by index:
    others' and older ones would not change the answer, but reading them all is a scan."""
    for number, (user, age) in enumerate([("ann", 1), ("ann", 2), ("bob", 3), ("ann", 48)]):
        with session_scope(engine) as session:
            session.add(
                LoraTraining(
                    id=f"t-{number}", request_id=f"req-{number}", user=user,
                    trigger_word="sks", status=LoraStatus.COMPLETED,
                    created_at=to_iso(NOW - timedelta(hours=age)),
                )
            )  # fmt: skip
            session.commit()

    plans = explain_selects(
        engine,
        lambda session: training.get_status(
            session=session, policy=training_policy, user="ann", now=NOW
        ),
    )

    [(_used, _), (_next_slot, plan)] = plans  # the limit is reached: the next slot is asked
    by_user = "SEARCH lora_trainings USING INDEX idx_lora_trainings_wallet_created"
    # Both by the user's index: the moments tried, and the count from each of them (not a
    # walk of every training ever made, oldest first, until the count falls).
    assert plan.count(f"{by_user} (wallet_address=? AND created_at>?)") == 2
    assert not [step for step in plan.split(" | ") if step.startswith("SCAN lora_trainings")]


def test_a_failed_submit_leaves_no_lora_and_costs_no_slot(start, engine, fake_fal, training_policy):
    fake_fal.script.submit_error = (503, "No runners available")

    with pytest.raises(TrainingFailed, match="HTTP 503"):
        start()

    assert stored_loras(engine) == []
    with session_scope(engine) as session:
        status = training.get_status(session=session, policy=training_policy, user="ann", now=NOW)
    assert status.used == 0


def test_a_failed_submit_deletes_its_own_reservation_only(start, engine, fake_fal, add_lora):
    other = add_lora()  # another training, finished long ago
    fake_fal.script.submit_error = (503, "No runners available")

    with (
        unchanged_besides(engine, LoraTraining) as watch,
        pytest.raises(TrainingFailed, match="HTTP 503"),
    ):
        start()

    assert watch.added == {}  # the failed one's row came and went
    assert [lora.id for lora in stored_loras(engine)] == [other.id]


def test_a_finished_training_completes_with_its_weights_and_can_generate(
    start, engine, fake_fal, training_policy
):
    lora = start()

    before = view_of(engine, lora.id)
    states = [refresh(engine, training_policy, lora.id).state for _ in range(3)]
    done = refresh(engine, training_policy, lora.id)

    assert before.state == TrainingState("queued")  # nobody asked fal yet
    assert [(state.stage, state.queue_position) for state in states] == [
        ("queued", 1),
        ("queued", 0),
        ("running", None),
    ]
    assert states[-1].logs == ("Loading LoRA weights", "Denoising 28/28")
    assert done.lora.status == LoraStatus.COMPLETED and done.state is None
    assert done.lora.lora_weights_url == (
        f"{fake_fal.url}/files/{lora.request_id}/pytorch_lora_weights.safetensors"
    )
    [row] = stored_loras(engine)
    assert row.lora_weights_url.endswith("pytorch_lora_weights.safetensors")
    service.check_ready(row)  # the Generate button is there


@pytest.mark.parametrize("how", ["job", "result"])
def test_a_training_that_failed_on_fal_is_marked_failed_with_the_reason(
    start, engine, fake_fal, training_policy, how
):
    """fal reports a failed job as COMPLETED with an error, or answers its result with
    one: either is final, never a training polled forever."""
    if how == "job":
        fake_fal.script.job_failure = JobFailure("Images too small to train", "bad_request", 422)
    else:
        fake_fal.script.result_error = (500, "Images too small to train")
    lora = start()

    view = refresh(engine, training_policy, lora.id, times=4)

    assert view.lora.status == LoraStatus.FAILED
    assert "Images too small to train" in view.lora.error
    assert stored_loras(engine)[0].status == LoraStatus.FAILED
    polls = len(fake_fal.status_polls)
    refresh(engine, training_policy, lora.id, times=2)
    assert len(fake_fal.status_polls) == polls  # never asked about again


def test_a_training_of_ours_fal_no_longer_knows_ends_failed_with_the_reason(
    start, engine, fake_fal, training_policy
):
    lora = start()
    fake_fal.jobs.clear()  # past fal's retention

    view = refresh(engine, training_policy, lora.id)

    assert view.lora.status == LoraStatus.FAILED
    assert "fal no longer knows this training" in view.lora.error


def test_another_apps_training_fal_does_not_know_stays_pending(
    engine, add_lora, fake_fal, training_policy
):
    """The original app's row, maybe submitted with another fal key: fal not knowing it
    (to this key) proves nothing, so its row is left as it is."""
    lora = add_lora("theirs", status=LoraStatus.PENDING, weights_url=None)

    view = refresh(engine, training_policy, lora.id)

    assert view.lora.status == LoraStatus.PENDING and view.lora.error is None
    assert stored_loras(engine)[0].status == LoraStatus.PENDING


def test_a_job_fal_cannot_be_asked_about_stays_pending(
    start, engine, fake_fal, training_policy, monkeypatch
):
    from lora_core.fal import trainer

    monkeypatch.setattr(trainer, "STATE_SECONDS", 1.0)  # a page view gives up on fal so soon
    lora = start()
    fake_fal.script.gateway_errors = {"status": [503] * 20}

    view = refresh(engine, training_policy, lora.id)

    assert view.lora.status == LoraStatus.PENDING and view.state.stage == "queued"
    assert stored_loras(engine)[0].progress is None  # nothing was learnt from fal


def test_a_reservation_never_submitted_fails_after_15_minutes(engine, training_policy):
    with session_scope(engine) as session:
        for lora_id, minutes in (("fresh", 5), ("stale", 20)):
            session.add(
                LoraTraining(
                    id=lora_id, request_id=RequestId.RESERVED.new(lora_id),
                    user="ann", trigger_word="sks", steps=100,
                    status=LoraStatus.PENDING,
                    created_at=to_iso(utc_now() - timedelta(minutes=minutes)),  # the sweep's clock
                )
            )  # fmt: skip
        session.commit()

    fresh = refresh(engine, training_policy, "fresh")
    stale = refresh(engine, training_policy, "stale")

    assert fresh.lora.status == LoraStatus.PENDING and fresh.state.stage == "queued"
    assert stale.lora.status == LoraStatus.FAILED
    assert stale.lora.error == "Interrupted before fal confirmed the training."


TERMS = leases.LeaseTerms(duration=timedelta(seconds=1), renew_every=timedelta(seconds=0.2))


def test_a_reservation_whose_process_died_mid_submit_fails_once_its_lease_lapses(
    engine, training_policy
):
    dead = leases.Lease.new(TERMS)  # its process stopped renewing just now
    training._reserve(engine, training_policy, "ann", "sks", 100, utc_now(), lease=dead)
    live = leases.Lease.new(leases.LeaseTerms(duration=timedelta(minutes=1)))
    training._reserve(engine, training_policy, "ann", "sks", 100, utc_now(), lease=live)

    assert training.fail_unsubmitted(engine=engine, policy=training_policy) == 0
    time.sleep(TERMS.duration.total_seconds() + 0.1)
    assert training.fail_unsubmitted(engine=engine, policy=training_policy) == 1
    assert training.fail_unsubmitted(engine=engine, policy=training_policy) == 0  # failed once

    with session_scope(engine) as session:
        rows = {row.lease_holder: row for row in session.scalars(select(LoraTraining))}
        status = training.get_status(session=session, policy=training_policy, user="ann")
    assert rows[dead.holder].status == LoraStatus.FAILED
    assert rows[dead.holder].error == "Interrupted before fal confirmed the training."
    assert rows[live.holder].status == LoraStatus.PENDING
    assert status.used == 1  # the dead one's slot is free again


def test_a_slow_submit_keeps_its_reservation_while_sweeps_run(engine, training_policy):
    class SlowTrainer:
        def upload(self, archive) -> str:
            return "https://fal.media/files/archive.zip"

        def submit(self, **_arguments) -> str:
            time.sleep(TERMS.duration.total_seconds() * 3)
            return "fal-request-1"

    sweeps: list[int] = []
    done = threading.Event()

    def sweep_until_done() -> None:
        while not done.is_set():
            sweeps.append(training.fail_unsubmitted(engine=engine, policy=training_policy))
            time.sleep(0.1)

    sweeper = threading.Thread(target=sweep_until_done)
    sweeper.start()
    try:
        lora = training.start_training(
            engine=engine,
            trainer=SlowTrainer(),
            policy=training_policy,
            user="ann",
            files=pictures(5),
            trigger_word="sks",
            steps=100,
            lease_terms=TERMS,
        )
    finally:
        done.set()
        sweeper.join()

    assert len(sweeps) > 10 and set(sweeps) == {0}
    assert lora.status == LoraStatus.PENDING and lora.request_id == "fal-request-1"


def test_eight_tabs_racing_for_two_slots_start_two_trainings(engine, training_policy):
    def reserve() -> None:
        training._reserve(engine, training_policy, "ann", "sks", 100, NOW)

    results = race(8, reserve, refused=TrainingQuotaExceeded)

    assert sorted(results) == ["refused"] * 6 + ["won"] * 2
    assert len(stored_loras(engine)) == 2


def test_only_a_running_training_is_pending(engine, add_lora):
    """The Train page polls while one runs: a finished or failed one is not running."""
    for status in (LoraStatus.COMPLETED, LoraStatus.FAILED):
        lora = add_lora(status=status)
        with session_scope(engine) as session:
            session.get_one(LoraTraining, lora.id).user = "ann"
            session.commit()

    with session_scope(engine) as session:
        assert not training.has_pending(session=session, user="ann")


def test_a_user_sees_their_own_trainings_newest_first(start, engine):
    older = start(age=timedelta(hours=3))
    newer = start(age=timedelta(hours=1))
    start(user="bob")

    with session_scope(engine) as session:
        mine = training.list_trainings(session=session, user="ann")
        assert training.has_pending(session=session, user="ann")
        assert not training.has_pending(session=session, user="cy")

    assert [lora.id for lora in mine] == [newer.id, older.id]


def test_the_demos_training_runs_forever_and_is_never_asked_about(
    engine, training_policy, fake_fal
):
    with session_scope(engine) as session:
        session.add(LoraTraining(
            id="demo", request_id=RequestId.DEMO.new("demo"), user="demo",
            trigger_word="inktrain", steps=1000, status=LoraStatus.PENDING,
            created_at=to_iso(NOW),
        ))  # fmt: skip
        session.commit()

    view = refresh(engine, training_policy, "demo")

    assert view.lora.id == "demo" and view.lora.status == LoraStatus.PENDING
    assert (view.state.stage, view.state.logs) == ("running", ("A demo LoRA: it never finishes",))
    assert fake_fal.status_polls == []


def test_only_reservations_older_than_the_abandon_age_are_failed_in_one_sweep(engine):
    policy = QuotaPolicy(limit=2, window=timedelta(hours=24), abandoned_after=timedelta(minutes=15))
    with session_scope(engine) as session:
        for lora_id, minutes in (("fresh", 5), ("stale", 20)):
            session.add(LoraTraining(
                id=lora_id, request_id=RequestId.RESERVED.new(lora_id), user="ann",
                trigger_word="sks", steps=100, status=LoraStatus.PENDING,
                created_at=to_iso(NOW - timedelta(minutes=minutes)),
            ))  # fmt: skip
        session.commit()

    assert training.fail_unsubmitted(engine=engine, policy=policy, now=NOW) == 1

    statuses = {row.id: row.status for row in stored_loras(engine)}
    assert statuses == {"fresh": LoraStatus.PENDING, "stale": LoraStatus.FAILED}


def finish_on_fal(engine, training_policy, lora_id: str, **extra) -> following.TrainingView:
    """Sweep until fal's job is done (queued, running, then completed)."""
    for _ in range(10):
        view = refresh(engine, training_policy, lora_id, **extra)
        if view.lora.status != LoraStatus.PENDING:
            return view
    raise AssertionError("the training never finished")


def test_replicas_sweeping_at_once_ask_about_a_training_one_at_a_time_and_copy_it_once(
    start, engine, media_store, monkeypatch, fake_fal
):
    copies: list[str] = []
    real_copy = following.weights.copy_files

    def counted(**arguments):
        copies.append(arguments["lora"].id)
        return real_copy(**arguments)

    monkeypatch.setattr(following.weights, "copy_files", counted)
    lora = start()

    def sweep() -> int:
        return following.follow(
            engine=engine,
            trainer=FalTrainer(key=TEST_FAL_KEY),
            store=media_store,
            allow_private_hosts=True,
            every=timedelta(0),
        )

    def beat() -> list[int]:
        """Four replicas' sweeps released at one moment."""
        start_line, answers = threading.Barrier(4), []

        def replica() -> None:
            start_line.wait()
            answers.append(sweep())

        threads = [threading.Thread(target=replica) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        time.sleep(0.002)  # leases are compared to the millisecond: the next beat may ask
        return answers

    asked = [beat() for _beat in range(6)]

    assert all(sum(beat) <= 1 for beat in asked)  # one replica asks per beat, at most
    assert copies == [lora.id]
    [row] = stored_loras(engine)
    assert row.status == LoraStatus.COMPLETED and row.weights_copy_url
    # Each ask is one state question (with logs); the result's fetch asks once more.
    state_questions = [r for r in fake_fal.status_polls if r.query.get("logs") == ["true"]]
    assert len(state_questions) == sum(map(sum, asked))


def test_a_finished_training_is_never_asked_about_again(start, engine, training_policy, fake_fal):
    lora = start()
    finish_on_fal(engine, training_policy, lora.id)
    polls = len(fake_fal.requests)

    again = refresh(engine, training_policy, lora.id)

    assert again.lora.status == LoraStatus.COMPLETED and again.state is None
    assert len(fake_fal.requests) == polls


def test_a_training_exactly_one_window_old_no_longer_holds_a_slot(start, engine, training_policy):
    start(age=training_policy.window)
    start(age=training_policy.window - timedelta(seconds=1))

    with session_scope(engine) as session:
        status = training.get_status(session=session, policy=training_policy, user="ann", now=NOW)

    assert status.used == 1


def test_the_training_quota_refusal_carries_the_limit(start, training_policy):
    start()
    start()

    with pytest.raises(TrainingQuotaExceeded) as refused:
        start()

    assert refused.value.limit == training_policy.limit == 2


def test_a_training_is_not_a_style_unless_asked(engine, fal_trainer, training_policy, fake_fal):
    training.start_training(
        engine=engine, trainer=fal_trainer, policy=training_policy, user="ann",
        files=pictures(5), trigger_word="sks", steps=1000, now=NOW,
    )  # fmt: skip

    [submission] = fake_fal.training_submissions
    assert submission.body["is_style"] is False


def test_an_unsubmitted_reservations_lease_is_judged_at_the_time_given(engine, training_policy):
    live = leases.Lease.new(leases.LeaseTerms(duration=timedelta(minutes=1)), NOW)
    training._reserve(engine, training_policy, "ann", "sks", 100, NOW, lease=live)
    [row] = stored_loras(engine)

    assert following.view(row).state.stage == "queued"
    assert training.fail_unsubmitted(engine=engine, policy=training_policy, now=NOW) == 0
    later = NOW + timedelta(minutes=2)  # its lease lapsed by then
    assert training.fail_unsubmitted(engine=engine, policy=training_policy, now=later) == 1


def test_a_started_training_is_let_go_to_the_sweep_and_a_lora_id_links_accept(start, engine):
    lora = start()

    assert lora.lease_holder is None and lora.lease_until  # the next sweep takes it
    assert following.follow(engine=engine, trainer=FalTrainer(key=TEST_FAL_KEY)) == 1
    assert len(lora.id) == 16 and lookups.is_valid_lora_id(lora.id)


def test_a_user_sees_their_latest_twenty_trainings(engine):
    with session_scope(engine) as session:
        for index in range(21):
            session.add(
                LoraTraining(id=f"t{index:02d}", request_id=f"req-{index}", user="ann",
                             trigger_word="sks", steps=100, status=LoraStatus.COMPLETED,
                             created_at=to_iso(NOW - timedelta(minutes=index)))
            )  # fmt: skip
        session.commit()

    with session_scope(engine) as session:
        listed = training.list_trainings(session=session, user="ann")

    assert [lora.id for lora in listed] == [f"t{index:02d}" for index in range(20)]

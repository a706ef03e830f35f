"""generate(): validation, every error path, and what is stored (nothing, on failure)."""

from __future__ import annotations

import time
from contextlib import nullcontext
from datetime import timedelta

import pytest
from sqlalchemy import select

from lora_core.data import leases
from lora_core.data.clock import to_iso, utc_now
from lora_core.data.db import create_db_engine, session_scope
from lora_core.data.models import (
    BatchStatus,
    GeneratedImage,
    GenerationBatch,
    LoraStatus,
    LoraTraining,
)
from lora_core.errors import (
    DatabaseUnavailable,
    GenerationFailed,
    GenerationPending,
    InvalidPrompt,
    LoraHasNoWeights,
    LoraNotFound,
    LoraNotReady,
    QuotaExceeded,
    WeightsUnavailable,
)
from lora_core.fal.generator import FalGenerator
from lora_core.generation import prompts, quota, recipe_files, recovery, service
from lora_core.generation.generators import (
    GeneratedImageData,
    GenerationRequest,
    GenerationResult,
)
from lora_core.generation.quota import QuotaPolicy
from lora_core.generation.service import GenerationKit
from lora_core.sweeper import Sweeper
from tests.conftest import TEST_FAL_KEY
from tests.support.bystanders import unchanged_besides
from tests.support.fakefal import JobFailure, model_error
from tests.support.hosts import private_host
from tests.support.plans import explain_selects

pytestmark = pytest.mark.both_backends  # the core suite, on SQLite and on libSQL


def stored(engine) -> tuple[list[GeneratedImage], list[GenerationBatch]]:
    with session_scope(engine) as session:
        images = session.scalars(select(GeneratedImage)).all()
        batches = session.scalars(select(GenerationBatch)).all()
    return list(images), list(batches)


def used(engine, policy) -> int:
    with session_scope(engine) as session:
        return quota.get_status(session=session, policy=policy, user="ann").used


# Leases that lapse at once, so that one sweep after another may ask fal again.
BRIEF = leases.LeaseTerms(duration=timedelta(seconds=0.05), renew_every=timedelta(seconds=1))


def follow(engine, generator, *, beats: int = 20) -> recovery.ResumeReport:
    """Beats of the background sweep, as each app process runs it (`Studio.recover`),
    until one finishes or fails a batch (or `beats` ran)."""
    for beat in range(beats):
        report = recovery.resume_pending(
            engine=engine,
            generator=generator,
            store=None,
            terms=BRIEF,
            unleased_older_than=timedelta(minutes=4),
            follow_for=timedelta(days=30),
            # Each beat as if after the last one's wait (`recovery.ASK_AGAIN_AFTER`).
            now=utc_now() + beat * (recovery.ASK_AGAIN_AFTER + timedelta(seconds=1)),
        )
        if report.finished or report.failed:
            return report
        time.sleep(0.1)
    return report


class StoppingBeforeSubmit:
    """A generator whose run is stopped before fal accepted anything."""

    downloads_weights = False

    def generate(self, request: GenerationRequest, on_progress=None) -> GenerationResult:
        raise StopTheRun

    def resume(self, request_id: str) -> GenerationResult | None:
        return None

    def cancel(self, request_id: str) -> None:
        pass


@pytest.fixture
def generate(generate_batch):
    return generate_batch


def test_full_prompt_appends_the_trigger_word():
    assert prompts.with_trigger("a cat", "sks") == "a cat in the style of sks"


def test_a_trigger_placeholder_puts_the_trigger_word_there_instead():
    assert prompts.with_trigger("{trigger} style, a cat", "sks") == "sks style, a cat"
    assert prompts.with_trigger("{Trigger} a cat", "sks") == "{Trigger} a cat in the style of sks"


def test_a_batch_stores_four_images_with_the_raw_prompt(engine, add_lora, generate, fake_fal):
    lora = add_lora(trigger_word="wtrclr")

    outcome = generate(lora.id, "  a lighthouse at dusk  ")

    assert fake_fal.submissions[0].body["prompt"] == "a lighthouse at dusk in the style of wtrclr"
    assert fake_fal.submissions[0].body["loras"] == [{"path": lora.lora_weights_url, "scale": 1.5}]
    images, [batch] = stored(engine)
    assert len(images) == len(outcome.images) == 4
    for image in images:
        assert image.prompt == "  a lighthouse at dusk  "  # stored exactly as typed
        assert image.user == "ann"
        assert image.lora_training_id == lora.id
        assert (image.image_width, image.image_height) == (1024, 1024)
        assert image.seed == "18446744073709551557"
        assert image.batch_id == batch.id
        assert image.image_url.startswith(f"https://{fake_fal.host}/files/")
    assert batch.status == BatchStatus.SUCCEEDED
    assert batch.images_returned == 4
    assert 0 <= batch.duration_ms < 60_000
    assert batch.fal_request_id in fake_fal.jobs
    assert batch.prompt == "  a lighthouse at dusk  "


@pytest.mark.parametrize("prompt", ["", "   ", None, "x" * 501])
def test_an_invalid_prompt_stores_nothing_and_never_calls_fal(
    engine, add_lora, generate, fake_fal, prompt
):
    lora = add_lora()

    with pytest.raises(InvalidPrompt):
        generate(lora.id, prompt)

    assert stored(engine) == ([], [])
    assert fake_fal.submissions == []


def test_a_prompt_of_exactly_500_characters_is_accepted(add_lora, generate):
    lora = add_lora()

    assert generate(lora.id, "y" * 500).prompt == "y" * 500


@pytest.mark.parametrize(
    ("setup", "error"),
    [
        ({"lora_id": "missing"}, LoraNotFound),
        ({"status": LoraStatus.PENDING}, LoraNotReady),
        ({"status": LoraStatus.FAILED}, LoraNotReady),
        ({"weights_url": None}, LoraHasNoWeights),
    ],
)
def test_a_lora_that_cannot_generate_is_refused_before_any_cost(
    engine, add_lora, generate, fake_fal, setup, error
):
    setup = dict(setup)  # the parameter is shared by both backends' runs
    lora_id = setup.pop("lora_id", None)
    lora = add_lora(**setup)

    with pytest.raises(error):
        generate(lora_id or lora.id, "a cat")

    assert stored(engine) == ([], [])
    assert fake_fal.submissions == []


@pytest.mark.parametrize("lora_id", ["../etc/passwd", "x" * 200, "a b", "<script>"])
def test_a_malformed_id_is_not_found(add_lora, generate, lora_id):
    add_lora()

    with pytest.raises(LoraNotFound):
        generate(lora_id, "a cat")


def test_a_fal_failure_stores_no_image_and_frees_the_slot(engine, add_lora, generate, fake_fal):
    lora = add_lora()
    fake_fal.script.result_error = (500, "GPU on fire")

    with pytest.raises(GenerationFailed):
        generate(lora.id, "a cat")

    images, [batch] = stored(engine)
    assert images == []
    assert batch.status == BatchStatus.FAILED
    assert "HTTP 500" in batch.error
    fake_fal.script.result_error = None
    generate(lora.id, "a cat")  # the retry works once fal recovers
    images, batches = stored(engine)
    assert len(images) == 4
    assert [b.status for b in batches].count(BatchStatus.SUCCEEDED) == 1


def test_a_batch_records_how_long_it_took(engine, add_lora, generate, fake_fal):
    fake_fal.script.processing_seconds = 0.4
    lora = add_lora()

    generate(lora.id, "a slow cat")

    _, [batch] = stored(engine)
    assert 400 <= batch.duration_ms < 30_000  # milliseconds, from reservation to stored


def test_a_failure_while_the_database_is_down_says_what_failed_first(
    engine, add_lora, generate, fake_fal, monkeypatch
):
    """fal's error is the news; the slot that could not be freed for now is recovery's."""
    lora = add_lora()
    fake_fal.script.result_error = (500, "GPU on fire")

    def database_down(**_: object) -> None:
        raise DatabaseUnavailable("The database is unavailable right now.")

    monkeypatch.setattr(quota, "release", database_down)

    with pytest.raises(GenerationFailed, match="HTTP 500"):
        generate(lora.id, "a cat")


def test_a_batch_placed_in_time_takes_its_lease_at_that_time(engine, add_lora, generate):
    """One clock for a batch's row: `now` places its reservation and its lease."""
    lora = add_lora()
    then = utc_now() - timedelta(hours=1)

    generate(lora.id, "a cat", now=then)

    _, [batch] = stored(engine)
    assert batch.created_at == to_iso(then)
    assert batch.lease_until == to_iso(then + leases.DEFAULT_TERMS.duration)


def test_a_job_fal_failed_is_a_failed_batch_with_fals_reason_and_a_free_slot(
    engine, add_lora, generate, fake_fal, policy
):
    lora = add_lora()
    fake_fal.script.job_failure = JobFailure("CUDA out of memory", "runner_server_error", 500)

    with pytest.raises(GenerationFailed):
        generate(lora.id, "a cat")

    images, [batch] = stored(engine)
    assert images == [] and batch.status == BatchStatus.FAILED
    assert "CUDA out of memory" in batch.error
    with session_scope(engine) as session:
        assert quota.get_status(session=session, policy=policy, user="ann").used == 0


def test_a_lost_submit_answer_fails_the_batch_frees_the_slot_and_is_not_resent(
    engine, add_lora, generate, fake_fal, policy
):
    lora = add_lora()
    fake_fal.script.dropped_submit_answers = 1

    with pytest.raises(GenerationFailed, match="fal may still run it"):
        generate(lora.id, "a cat")

    assert len(fake_fal.submissions) == 1
    images, [batch] = stored(engine)
    assert images == [] and batch.status == BatchStatus.FAILED
    assert batch.error.startswith("fal may have received this request")
    with session_scope(engine) as session:
        assert quota.get_status(session=session, policy=policy, user="ann").used == 0


def test_expired_weights_are_reported_and_cost_no_slot(engine, add_lora, generate, fake_fal):
    lora = add_lora()
    fake_fal.script.result_error = (
        422,
        [model_error(["body", "loras", 0, "path"], "Failed to download", "file_download_error")],
    )

    with pytest.raises(WeightsUnavailable):
        generate(lora.id, "a cat")

    assert [b.status for b in stored(engine)[1]] == [BatchStatus.FAILED]


def test_a_batch_with_flagged_images_counts_them_from_fals_flags(
    engine, add_lora, generate, fake_fal
):
    """fal returns all 4, two of them black with their flag set: 2 are shown."""
    lora = add_lora()
    fake_fal.script.nsfw = [False, True, True, False]

    outcome = generate(lora.id, "a cat")

    assert (len(outcome.images), len(outcome.shown), outcome.flagged, outcome.missing) == (
        4,
        2,
        2,
        0,
    )
    images, [batch] = stored(engine)
    assert sorted(bool(image.nsfw) for image in images) == [False, False, True, True]
    assert (batch.images_returned, batch.images_flagged) == (4, 2)
    assert batch.status == BatchStatus.SUCCEEDED


def test_an_odd_answer_with_fewer_images_stores_what_came_back_and_counts_once(
    engine, add_lora, generate, fake_fal
):
    lora = add_lora()
    fake_fal.script.images = 2
    fake_fal.script.nsfw = [False, True]

    outcome = generate(lora.id, "a cat")

    assert (len(outcome.images), outcome.missing, outcome.flagged) == (2, 2, 1)
    images, [batch] = stored(engine)
    assert len(images) == 2
    assert (batch.images_returned, batch.images_flagged) == (2, 1)
    assert batch.status == BatchStatus.SUCCEEDED


def test_the_quota_is_checked_before_fal(engine, add_lora, generate, fake_fal):
    lora = add_lora()
    one = QuotaPolicy(limit=1, window=timedelta(hours=24))
    generate(lora.id, "first", policy=one)

    with pytest.raises(QuotaExceeded):
        generate(lora.id, "second", policy=one)

    assert len(fake_fal.submissions) == 1


def test_a_database_that_is_down_is_reported(tmp_path, fal_generator, policy, fake_fal):
    broken = create_db_engine(f"sqlite:///{tmp_path}")  # a folder, not a database file

    with pytest.raises(DatabaseUnavailable):
        service.generate(
            kit=GenerationKit(engine=broken, generator=fal_generator, policy=policy),
            user="ann",
            lora_id="lora-1",
            prompt="a cat",
        )
    assert fake_fal.submissions == []


def test_a_crash_while_storing_leaves_the_paid_batch_for_the_sweep(
    engine, add_lora, generate, monkeypatch, fal_generator, fake_fal, policy
):
    """fal finished (and billed) the job: the images are stored later, never paid again."""
    lora = add_lora()
    store_batch = service.store_batch

    def explode(**_kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(service, "store_batch", explode)
    with pytest.raises(RuntimeError):
        generate(lora.id, "a cat")

    images, [batch] = stored(engine)
    assert images == [] and batch.status == BatchStatus.PENDING and batch.fal_request_id
    assert used(engine, policy) == 1  # fal may bill it: the slot stays held
    monkeypatch.setattr(service, "store_batch", store_batch)
    assert follow(engine, fal_generator).finished == 1
    images, [batch] = stored(engine)
    assert len(images) == 4 and batch.status == BatchStatus.SUCCEEDED
    assert len(fake_fal.submissions) == 1


class StopTheRun(BaseException):
    """Like Streamlit's StopException / RerunException, raised when a run is stopped."""


def test_a_stopped_run_leaves_its_batch_to_the_sweep_which_stores_its_images(
    engine, add_lora, generate, fake_fal, fal_generator, policy
):
    """The user closed the dialog while fal worked: the images still arrive, paid once."""
    lora = add_lora()

    def stop(progress):
        if progress.stage == "queued":
            raise StopTheRun

    with pytest.raises(StopTheRun):
        generate(lora.id, "a cat", on_progress=stop)

    images, [batch] = stored(engine)
    assert images == [] and batch.status == BatchStatus.PENDING
    assert batch.fal_request_id in fake_fal.jobs  # recorded as soon as fal answered
    assert batch.lease_holder is None  # let go at once: the next sweep takes it
    assert used(engine, policy) == 1
    assert follow(engine, fal_generator).finished == 1
    assert stored(engine)[1][0].status == BatchStatus.SUCCEEDED
    assert fake_fal.cancellations == [] and len(fake_fal.submissions) == 1


def test_a_stop_before_fal_accepted_frees_the_slot(engine, add_lora, generate, policy):
    lora = add_lora()

    with pytest.raises(StopTheRun):
        generate(lora.id, "a cat", generator=StoppingBeforeSubmit())

    [batch] = stored(engine)[1]
    assert batch.status == BatchStatus.FAILED and batch.error == "StopTheRun"
    assert used(engine, policy) == 0


def test_fal_images_are_copied_to_our_store_and_fals_url_is_kept(
    engine, add_lora, generate, fake_fal, media_store
):
    lora = add_lora()

    outcome = generate(lora.id, "a cat", store=media_store)

    images, _ = stored(engine)
    assert {image.image_url for image in images} == {
        f"app/static/media/fal/{outcome.batch_id}/{index}.jpg" for index in range(4)
    }
    assert all(image.original_url.startswith(f"https://{fake_fal.host}/files/") for image in images)
    assert all(media_store.path_for(image.image_url).exists() for image in images)
    fields = recipe_files.read(media_store.path_for(images[0].image_url).read_bytes()).fields
    assert (fields["lora"]["id"], fields["prompt"]) == (lora.id, "a cat")


def test_a_failed_copy_keeps_fals_url_and_loses_nothing(
    engine, add_lora, generate, fake_fal, media_store
):
    lora = add_lora()
    fake_fal.script.files_missing = True

    generate(lora.id, "a cat", store=media_store)

    images, [batch] = stored(engine)
    assert batch.status == BatchStatus.SUCCEEDED
    assert len(images) == 4
    assert all(image.image_url == image.original_url for image in images)


def test_flagged_images_are_stored_and_marked(engine, add_lora, generate, fake_fal):
    lora = add_lora()
    fake_fal.script.nsfw = [False, True, False, False]

    generate(lora.id, "a cat")

    images, _ = stored(engine)
    assert sorted(bool(image.nsfw) for image in images) == [False, False, False, True]


def test_zero_images_back_is_a_batch_that_counts_with_nothing_to_show(
    engine, add_lora, generate, fake_fal, policy
):
    lora = add_lora()
    fake_fal.script.images = 0

    outcome = generate(lora.id, "a cat")

    assert (outcome.images, outcome.missing) == ([], 4)
    images, [batch] = stored(engine)
    assert images == [] and batch.status == BatchStatus.SUCCEEDED and batch.images_returned == 0


def test_a_server_error_on_submit_stores_nothing_and_frees_the_slot(
    engine, add_lora, generate, fake_fal
):
    lora = add_lora()
    fake_fal.script.submit_error = (500, "Internal error")

    with pytest.raises(GenerationFailed) as caught:
        generate(lora.id, "a cat")

    assert caught.value.retryable
    images, [batch] = stored(engine)
    assert images == [] and batch.status == BatchStatus.FAILED and batch.fal_request_id is None


def test_a_result_that_never_comes_leaves_the_batch_pending_holding_its_slot(
    engine, add_lora, generate, fake_fal, policy
):
    lora = add_lora()
    fake_fal.script.processing_seconds = 60
    impatient = FalGenerator(key=TEST_FAL_KEY, timeout_seconds=0.3, poll_interval=0.02)

    with pytest.raises(GenerationPending) as caught:
        generate(lora.id, "a cat", generator=impatient)

    images, [batch] = stored(engine)
    assert images == [] and batch.status == BatchStatus.PENDING
    assert caught.value.batch_id == batch.id
    assert fake_fal.cancellations == []
    # Long after the quota's "abandoned" age, fal may still bill it: the slot is held.
    with session_scope(engine) as session:
        later = quota.get_status(
            session=session, policy=policy, user="ann", now=utc_now() + timedelta(hours=2)
        )
    assert later.used == 1


def test_a_batch_fal_went_quiet_about_ends_stored_with_one_submit_and_no_click(
    engine, add_lora, generate, fake_fal, policy
):
    """fal accepted it, then its gateway answered 503 for longer than FAL_TIMEOUT_SECONDS:
    the batch stays ours, and the background sweep stores its images when fal is back."""
    lora = add_lora()
    fake_fal.script.queue_positions = []
    fake_fal.script.processing_seconds = 0.5
    fake_fal.script.outage_after_submit = 2.5
    impatient = FalGenerator(key=TEST_FAL_KEY, timeout_seconds=1.0, poll_interval=0.02)

    with pytest.raises(GenerationPending):
        generate(lora.id, "a cat", generator=impatient)
    assert stored(engine)[1][0].status == BatchStatus.PENDING
    assert used(engine, policy) == 1

    sweeper = Sweeper(lambda: follow(engine, impatient), every_seconds=0.2, name="test").start()
    try:
        deadline = time.monotonic() + 20
        while stored(engine)[1][0].status == BatchStatus.PENDING:
            assert time.monotonic() < deadline, "the sweep never finished the batch"
            time.sleep(0.1)
    finally:
        sweeper.stop()

    images, [batch] = stored(engine)
    assert batch.status == BatchStatus.SUCCEEDED and len(images) == 4
    assert len(fake_fal.submissions) == 1 and fake_fal.cancellations == []
    assert used(engine, policy) == 1


def test_with_an_s3_store_images_are_served_from_the_bucket(
    engine, add_lora, generate, fake_fal, s3_store
):
    import httpx

    lora = add_lora()

    generate(lora.id, "a cat", store=s3_store)

    images, _ = stored(engine)
    assert all(image.image_url.startswith(s3_store.public_url) for image in images)
    assert all(httpx.get(image.image_url).status_code == 200 for image in images)


def test_looking_for_stale_batches_reads_only_pending_ones(engine, add_lora):
    lora = add_lora()

    plans = explain_selects(
        engine,
        lambda _session: recovery.resume_pending(
            engine=engine,
            generator=None,
            store=None,
            terms=leases.LeaseTerms(),
            unleased_older_than=timedelta(minutes=4),
            follow_for=timedelta(days=30),
            lora_id=lora.id,
        ),
    )

    assert any(
        "USING INDEX idx_gen_batches_pending (status=? AND lora_training_id=?)" in plan
        for _sql, plan in plans
    ), plans


# --- Bystanders, safety defaults and what the batch row keeps -------------------------------


def add_bystanders(engine, add_lora, add_images) -> None:
    """Rows a generation of ann's must not touch: bob's batch a live process waits on (with
    fal's request id), ann's earlier success, and another LoRA's images."""
    other = add_lora("other-lora")
    add_images(other.id, 3)
    with session_scope(engine) as session:
        now = utc_now()
        session.add_all([
            GenerationBatch(
                id="bobs", lora_training_id=other.id, user="bob", prompt="p", status="pending",
                created_at=to_iso(now), fal_request_id="bobs-request", lease_holder="alive",
                lease_until=to_iso(now + timedelta(minutes=5)),
            ),
            GenerationBatch(
                id="anns-earlier", lora_training_id=other.id, user="ann", prompt="p",
                status="succeeded", created_at=to_iso(now - timedelta(hours=1)),
                fal_request_id="anns-earlier-request", images_returned=4,
            ),
        ])  # fmt: skip
        session.commit()


@pytest.mark.parametrize("fal_answers", ["images", "an error"])
def test_a_generation_writes_its_own_batch_and_touches_no_other(
    engine, add_lora, add_images, generate, fake_fal, fal_answers
):
    lora = add_lora()
    add_bystanders(engine, add_lora, add_images)
    if fal_answers == "an error":
        fake_fal.script.result_error = (500, "GPU on fire")

    failing = pytest.raises(GenerationFailed) if fal_answers == "an error" else nullcontext()
    with unchanged_besides(engine, GenerationBatch, GeneratedImage) as watch, failing:
        generate(lora.id, "a cat")

    [new_id] = watch.added["generation_batches"]
    with session_scope(engine) as session:
        batch = session.get(GenerationBatch, new_id[0])
    assert batch.fal_request_id in fake_fal.jobs
    assert batch.status == ("succeeded" if fal_answers == "images" else "failed")
    assert len(watch.added.get("generated_images", ())) == (4 if fal_answers == "images" else 0)


class AnswersWithoutProgress:
    """A generator that reports no progress: its request id comes with its answer only."""

    downloads_weights = False

    def generate(self, request: GenerationRequest, on_progress=None) -> GenerationResult:
        return GenerationResult(
            images=[GeneratedImageData(url="https://cdn.example/1.jpg", width=8, height=8)],
            seed="7",
            request_id="request-from-the-answer",
        )

    def resume(self, request_id: str) -> GenerationResult | None:
        return None

    def cancel(self, request_id: str) -> None:
        pass


def test_the_batch_keeps_the_request_id_fal_answered_with(engine, add_lora, generate):
    lora = add_lora()

    generate(lora.id, "a cat", generator=AnswersWithoutProgress())

    [batch] = stored(engine)[1]
    assert (batch.status, batch.fal_request_id) == ("succeeded", "request-from-the-answer")


def test_a_generator_that_downloads_no_weights_gets_an_empty_url_not_none(preview_generator):
    """None would mean "the base model alone" (a sweep's baseline): a LoRA without weights
    is never silently generated without them."""
    lora = LoraTraining(
        id="l", request_id="r", user="a", trigger_word="t", status="completed",
        created_at=to_iso(utc_now()), lora_weights_url=None,
    )  # fmt: skip

    url = service.weights_url_for(lora, generator=preview_generator, allow_private_weights=False)

    assert url == "" and url is not None


def test_by_default_a_generation_never_asks_a_host_on_a_private_network(
    engine, add_lora, fal_generator, fake_fal, policy
):
    """A stored weights URL must not make the server send requests into its own network:
    the kit's default leaves it to fal, without asking it anything from here."""
    with private_host() as host:
        lora = add_lora(weights_url=host.weights_url)

        outcome = service.generate(
            kit=GenerationKit(engine=engine, generator=fal_generator, policy=policy),
            user="ann",
            lora_id=lora.id,
            prompt="a cat",
        )

    assert host.requests == []
    assert len(outcome.images) == 4
    assert fake_fal.submissions[0].body["loras"][0]["path"] == host.weights_url

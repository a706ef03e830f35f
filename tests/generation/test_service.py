"""generate(): validation, every error path, and what is stored (nothing, on failure)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from lora_core.data import leases
from lora_core.data.clock import to_iso, utc_now
from lora_core.data.db import create_db_engine, session_scope
from lora_core.data.models import BatchStatus, GeneratedImage, GenerationBatch, LoraStatus
from lora_core.errors import (
    DatabaseUnavailable,
    GenerationFailed,
    GenerationTimeout,
    InvalidPrompt,
    LoraHasNoWeights,
    LoraNotFound,
    LoraNotReady,
    QuotaExceeded,
    WeightsUnavailable,
)
from lora_core.generation import prompts, quota, recipe_files, recovery, service
from lora_core.generation.quota import QuotaPolicy
from tests.support.fakefal import JobFailure
from tests.support.plans import explain_selects

pytestmark = pytest.mark.both_backends  # the core suite, on SQLite and on libSQL


def stored(engine) -> tuple[list[GeneratedImage], list[GenerationBatch]]:
    with session_scope(engine) as session:
        images = session.scalars(select(GeneratedImage)).all()
        batches = session.scalars(select(GenerationBatch)).all()
    return list(images), list(batches)


@pytest.fixture
def generate(engine, fal_generator, policy):
    def run(lora_id: str, prompt: str | None, *, user: str = "ann", **overrides):
        arguments = {
            "engine": engine,
            "generator": fal_generator,
            "policy": policy,
            "user": user,
            "lora_id": lora_id,
            "prompt": prompt,
        } | overrides
        return service.generate(**arguments)

    return run


def test_full_prompt_appends_the_trigger_word():
    assert prompts.full_prompt("a cat", "sks") == "a cat in the style of sks"


def test_a_batch_stores_four_images_with_the_raw_prompt(engine, add_lora, generate, fake_fal):
    lora = add_lora(trigger_word="wtrclr")

    outcome = generate(lora.id, "  a lighthouse at dusk  ")

    assert fake_fal.submissions[0].body["prompt"] == "a lighthouse at dusk in the style of wtrclr"
    assert fake_fal.submissions[0].body["loras"] == [{"path": lora.lora_weights_url, "scale": 1.5}]
    images, [batch] = stored(engine)
    assert len(images) == len(outcome.images) == 4
    for image in images:
        assert image.prompt == "  a lighthouse at dusk  "  # stored exactly as typed
        assert image.wallet_address == "ann"
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
    fake_fal.script.result_error = (422, [{"loc": ["body", "loras"], "msg": "x", "type": "y"}])

    with pytest.raises(WeightsUnavailable):
        generate(lora.id, "a cat")

    assert [b.status for b in stored(engine)[1]] == [BatchStatus.FAILED]


def test_a_safety_filtered_batch_stores_what_came_back_and_counts_once(
    engine, add_lora, generate, fake_fal
):
    lora = add_lora()
    fake_fal.script.images = 2
    fake_fal.script.nsfw = [False, True]

    outcome = generate(lora.id, "a cat")

    assert (len(outcome.images), outcome.missing, outcome.flagged) == (2, 2, 1)
    images, [batch] = stored(engine)
    assert len(images) == 2
    assert batch.images_returned == 2 and batch.status == BatchStatus.SUCCEEDED


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
            engine=broken,
            generator=fal_generator,
            policy=policy,
            user="ann",
            lora_id="lora-1",
            prompt="a cat",
        )
    assert fake_fal.submissions == []


def test_a_crash_while_storing_frees_the_slot(engine, add_lora, generate, monkeypatch):
    lora = add_lora()

    def explode(**_kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(service, "store_batch", explode)
    with pytest.raises(RuntimeError):
        generate(lora.id, "a cat")

    images, [batch] = stored(engine)
    assert images == [] and batch.status == BatchStatus.FAILED
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(GeneratedImage)) == 0


class StopTheRun(BaseException):
    """Like Streamlit's StopException / RerunException, raised when a run is stopped."""


def test_a_stopped_run_frees_the_slot_and_cancels_the_fal_job(engine, add_lora, generate, fake_fal):
    lora = add_lora()

    def stop(progress):
        if progress.stage == "queued":
            raise StopTheRun

    with pytest.raises(StopTheRun):
        generate(lora.id, "a cat", on_progress=stop)

    images, [batch] = stored(engine)
    assert images == []
    assert batch.status == BatchStatus.FAILED and batch.error == "StopTheRun"
    assert batch.fal_request_id in fake_fal.jobs  # recorded as soon as fal answered
    assert len(fake_fal.cancellations) == 1


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


def test_a_result_that_never_comes_times_out_and_frees_the_slot(
    engine, add_lora, generate, fake_fal
):
    from lora_core.fal.generator import FalGenerator
    from tests.conftest import TEST_FAL_KEY

    lora = add_lora()
    fake_fal.script.processing_seconds = 60
    impatient = FalGenerator(key=TEST_FAL_KEY, timeout_seconds=0.3, poll_interval=0.02)

    with pytest.raises(GenerationTimeout):
        generate(lora.id, "a cat", generator=impatient)

    images, [batch] = stored(engine)
    assert images == [] and batch.status == BatchStatus.FAILED
    assert len(fake_fal.cancellations) == 1


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
            give_up_after=timedelta(minutes=30),
            lora_id=lora.id,
        ),
    )

    assert any(
        "USING INDEX idx_gen_batches_pending (status=? AND lora_training_id=?)" in plan
        for _sql, plan in plans
    ), plans

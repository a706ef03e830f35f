"""The generators: the real fal_client against the local fake fal server, and the preview."""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image

from lora_core.errors import (
    ContentRefused,
    GenerationFailed,
    GenerationPending,
    GenerationTimeout,
    InvalidInput,
    WeightsUnavailable,
)
from lora_core.fal.generator import (
    FORGOTTEN,
    LOST_SUBMIT,
    NOT_ANSWERING,
    FalGenerator,
    parse_flux_result,
)
from lora_core.generation.generators import GenerationRequest, Progress
from lora_core.generation.preview import PreviewGenerator
from lora_core.settings import Settings
from lora_core.storage import LocalMediaStore
from lora_core.studio import build_generator
from tests.conftest import TEST_FAL_KEY
from tests.support.fakefal import FakeFal, JobFailure, model_error

REQUEST = GenerationRequest(
    batch_id="batch-1",
    full_prompt="a lighthouse at dusk in the style of sks-style",
    weights_url="https://weights.example/lora.safetensors",
    lora_label="sks-style",
)


def test_sends_exactly_the_plans_arguments_with_the_key(fal_generator, fake_fal: FakeFal):
    fal_generator.generate(REQUEST)

    [submission] = fake_fal.submissions
    assert submission.body == {
        "prompt": "a lighthouse at dusk in the style of sks-style",
        "loras": [{"path": "https://weights.example/lora.safetensors", "scale": 1.5}],
        "image_size": "square_hd",
        "num_inference_steps": 28,
        "guidance_scale": 3.5,
        "num_images": 4,
        "enable_safety_checker": True,
        "output_format": "jpeg",
    }
    assert submission.headers["Authorization"] == f"Key {TEST_FAL_KEY}"


def test_returns_the_images_and_keeps_a_huge_seed_exact(fal_generator, fake_fal: FakeFal):
    result = fal_generator.generate(REQUEST)

    assert len(result.images) == 4
    assert all(image.url.startswith(f"https://{fake_fal.host}/files/") for image in result.images)
    assert {(image.width, image.height) for image in result.images} == {(1024, 1024)}
    assert result.seed == "18446744073709551557"
    assert result.request_id in fake_fal.jobs


def test_reports_queue_position_logs_and_request_id(fal_generator, fake_fal: FakeFal):
    fake_fal.script.queue_positions = [3, 1]
    seen: list[Progress] = []

    result = fal_generator.generate(REQUEST, on_progress=seen.append)

    assert seen[0].stage == "submitted" and seen[0].request_id == result.request_id
    assert [p.queue_position for p in seen if p.stage == "queued"][:2] == [3, 1]
    assert "Denoising 28/28" in [p.message for p in seen if p.stage == "running"]
    assert seen[-1].stage == "completed"


def test_marks_images_flagged_by_the_safety_checker(fal_generator, fake_fal: FakeFal):
    """fal returns every image asked for; `has_nsfw_concepts` says which are flagged."""
    fake_fal.script.nsfw = [False, True, False, True]

    result = fal_generator.generate(REQUEST)

    assert [image.nsfw for image in result.images] == [False, True, False, True]


def test_an_odd_answer_with_fewer_images_is_read_as_it_is(fal_generator, fake_fal: FakeFal):
    fake_fal.script.images = 3
    fake_fal.script.nsfw = [False, True, False]

    result = fal_generator.generate(REQUEST)

    assert [image.nsfw for image in result.images] == [False, True, False]


def test_a_server_error_is_a_retryable_failure(fal_generator, fake_fal: FakeFal):
    fake_fal.script.result_error = (500, "Internal error")

    with pytest.raises(GenerationFailed) as caught:
        fal_generator.generate(REQUEST)

    assert caught.value.retryable
    assert "HTTP 500" in str(caught.value)


def test_unreachable_weights_are_reported_as_such(fal_generator, fake_fal: FakeFal):
    fake_fal.script.result_error = (
        422,
        [
            {
                "loc": ["body", "loras", 0, "path"],
                "msg": "Failed to download the file.",
                "type": "file_download_error",
            }
        ],
    )

    with pytest.raises(WeightsUnavailable) as caught:
        fal_generator.generate(REQUEST)

    assert "weights" in str(caught.value)
    assert not caught.value.retryable


def test_a_rejected_key_is_not_retryable_and_not_shown(fake_fal: FakeFal):
    fake_fal.script.submit_error = (401, "Invalid key")
    generator = FalGenerator(key="wrong:secret", timeout_seconds=5, poll_interval=0.01)

    with pytest.raises(GenerationFailed) as caught:
        generator.generate(REQUEST)

    assert not caught.value.retryable
    assert "FAL_KEY" in str(caught.value)
    assert "secret" not in str(caught.value)


def test_a_job_past_the_deadline_is_left_running_to_be_followed(fake_fal: FakeFal):
    """fal may still run (and bill) it: never cancelled, never offered again."""
    fake_fal.script.processing_seconds = 30
    generator = FalGenerator(key=TEST_FAL_KEY, timeout_seconds=0.3, poll_interval=0.02)

    with pytest.raises(GenerationPending) as caught:
        generator.generate(REQUEST)

    assert str(caught.value) == NOT_ANSWERING
    assert caught.value.request_id in fake_fal.jobs
    assert fake_fal.cancellations == []
    assert not isinstance(caught.value, GenerationFailed)  # no "Try again"


@pytest.mark.parametrize("answer", [{"no_images": []}, {"images": [{"width": 1}]}, None])
def test_a_malformed_answer_is_a_failure(answer):
    with pytest.raises(GenerationFailed):
        parse_flux_result(answer, request_id=None)


def test_preview_draws_four_deterministic_jpegs(preview_generator: PreviewGenerator):
    first = preview_generator.generate(REQUEST)
    again = preview_generator.generate(
        GenerationRequest("batch-2", REQUEST.full_prompt, REQUEST.weights_url, "sks-style")
    )

    assert len(first.images) == 4
    assert first.seed == again.seed
    for image in first.images:
        path = preview_generator.store.path_for(image.url)
        assert path is not None
        picture = Image.open(io.BytesIO(path.read_bytes()))
        assert picture.format == "JPEG"
        assert picture.size == (image.width, image.height)
    first_bytes = preview_generator.store.path_for(first.images[0].url).read_bytes()
    again_bytes = preview_generator.store.path_for(again.images[0].url).read_bytes()
    assert first_bytes == again_bytes


def test_fal_is_used_only_when_a_key_is_set(tmp_path):
    assert isinstance(build_generator(Settings(media_dir=tmp_path)), PreviewGenerator)
    assert isinstance(build_generator(Settings(fal_key="k:s", media_dir=tmp_path)), FalGenerator)


def test_a_status_fal_client_cannot_read_leaves_the_job_to_be_followed(
    fal_generator, fake_fal: FakeFal
):
    fake_fal.script.status_answer = {"status": "SOMETHING_NEW"}

    with pytest.raises(GenerationPending):
        fal_generator.generate(REQUEST)

    assert fake_fal.cancellations == []


class StopTheRun(BaseException):
    """Like Streamlit's StopException / RerunException."""


def test_a_stopped_run_leaves_the_job_to_fal(fal_generator, fake_fal):
    """The user closed the dialog: the images they asked for still arrive (the sweep
    follows the job), so nothing is cancelled."""

    def stop(progress: Progress) -> None:
        if progress.stage == "queued":
            raise StopTheRun

    with pytest.raises(StopTheRun):
        fal_generator.generate(REQUEST, on_progress=stop)

    assert fake_fal.cancellations == []
    assert len(fake_fal.jobs) == 1


def test_a_preview_that_cannot_be_saved_is_a_failure(tmp_path):
    (tmp_path / "media").write_text("a file where the folder should be")
    generator = PreviewGenerator(LocalMediaStore(tmp_path / "media", "m"), size=64)

    with pytest.raises(GenerationFailed) as caught:
        generator.generate(REQUEST)

    assert "not writable" in str(caught.value)


def test_a_result_that_is_not_json_is_a_failure(fal_generator, fake_fal: FakeFal):
    fake_fal.script.result_body = b"<html>502 Bad Gateway</html>"

    with pytest.raises(GenerationFailed) as caught:
        fal_generator.generate(REQUEST)

    assert "could not read" in str(caught.value)


# --- fal as it really is: failed jobs, lost answers, bounded waits -------------------------


def test_a_job_fal_reports_failed_is_a_failure_with_fals_reason(fal_generator, fake_fal):
    fake_fal.script.job_failure = JobFailure("CUDA out of memory", "runner_server_error", 500)

    with pytest.raises(GenerationFailed, match="CUDA out of memory") as caught:
        fal_generator.generate(REQUEST)

    assert caught.value.retryable  # a runner's crash: worth another try
    assert fake_fal.cancellations == []  # finished: nothing to cancel


def test_a_job_fal_gave_up_on_is_a_timeout(fal_generator, fake_fal):
    fake_fal.script.job_failure = JobFailure("Request timed out", "request_timeout", 504)

    with pytest.raises(GenerationTimeout, match="fal gave up on this job"):
        fal_generator.generate(REQUEST)


@pytest.mark.parametrize(
    "trouble",
    [
        {"dropped_submit_answers": 1},
        {"broken_submit_answers": 1},
        {"gateway_errors": {"submit": [502]}},
    ],
    ids=["dropped-answer", "answer-broken-off", "gateway-error"],
)
def test_a_submit_whose_answer_was_lost_is_never_sent_again(
    fal_generator, fake_fal, caplog, trouble
):
    for name, value in trouble.items():
        setattr(fake_fal.script, name, value)

    with pytest.raises(GenerationFailed) as caught:
        fal_generator.generate(REQUEST)

    assert str(caught.value) == LOST_SUBMIT
    assert "fal may still run it" in str(caught.value)
    assert not caught.value.retryable  # no "Try again" next to it: that would be a second job
    assert len(fake_fal.submissions) == 1  # exactly one: never a second paid job
    assert f"batch {REQUEST.batch_id}: fal's answer to the submit was lost" in caplog.text


def test_a_rate_limited_submit_is_sent_again_as_nothing_was_enqueued(fal_generator, fake_fal):
    fake_fal.script.rate_limited_submits = 1

    result = fal_generator.generate(REQUEST)

    assert len(result.images) == 4
    assert len(fake_fal.submissions) == 2 and len(fake_fal.jobs) == 1


@pytest.mark.parametrize("nginx", [True, False], ids=["retried-by-fal-client", "not"])
def test_gateway_errors_while_polling_are_ridden_out(fal_generator, fake_fal, nginx):
    fake_fal.script.gateway_says_nginx = nginx
    fake_fal.script.gateway_errors = {"status": [503, 502, 429], "result": [504]}

    result = fal_generator.generate(REQUEST)

    assert len(result.images) == 4 and len(fake_fal.submissions) == 1


@pytest.mark.parametrize("stalled", ["submit", "status", "result"])
def test_a_generation_never_waits_longer_than_its_timeout_in_all(fake_fal, stalled):
    """Submit, polls and the result fetch all count against FAL_TIMEOUT_SECONDS."""
    fake_fal.script.stall = {stalled: 30.0}
    generator = FalGenerator(key=TEST_FAL_KEY, timeout_seconds=1.5, poll_interval=0.01)
    started = time.monotonic()

    with pytest.raises((GenerationFailed, GenerationPending)) as caught:
        generator.generate(REQUEST)

    assert isinstance(caught.value, GenerationFailed if stalled == "submit" else GenerationPending)
    assert time.monotonic() - started < 1.5 + 1.0
    assert len(fake_fal.submissions) == 1
    assert fake_fal.cancellations == []
    if stalled == "submit":  # fal may have the job, and we have no id to follow it by
        assert str(caught.value) == LOST_SUBMIT


def test_the_queue_wait_is_also_bounded_on_fals_side(fal_generator, fake_fal):
    fal_generator.generate(REQUEST)

    [submission] = fake_fal.submissions
    assert float(submission.headers["X-Fal-Request-Timeout"]) == fal_generator.timeout_seconds


def finished_job(fal_generator, fake_fal) -> str:
    fake_fal.script.queue_positions = []
    handle = fal_generator._client.submit("fal-ai/flux-lora", arguments={})
    for _status in handle.iter_events(interval=0.01):
        pass
    return handle.request_id


def test_resuming_a_job_fal_failed_is_final_with_fals_reason(fal_generator, fake_fal):
    fake_fal.script.job_failure = JobFailure("NSFW input", "bad_request", 400)

    with pytest.raises(GenerationFailed, match="NSFW input"):
        fal_generator.resume(finished_job(fal_generator, fake_fal))


def test_resuming_a_job_fal_no_longer_knows_is_final(fal_generator, fake_fal):
    with pytest.raises(GenerationFailed, match="fal no longer knows this job"):
        fal_generator.resume("forgotten-request")


def test_resuming_when_only_fals_gateway_fails_asks_again_later(
    fal_generator, fake_fal, monkeypatch
):
    from lora_core.fal import generator

    monkeypatch.setattr(generator, "RESUME_SECONDS", 1.0)
    request_id = finished_job(fal_generator, fake_fal)
    fake_fal.script.gateway_errors = {"result": [503] * 20}

    assert fal_generator.resume(request_id) is None

    fake_fal.script.gateway_errors = {}
    assert len(fal_generator.resume(request_id).images) == 4


def test_credentials_as_a_key_id_and_secret_reach_fal_as_fal_client_sends_them(fake_fal, tmp_path):
    settings = Settings(fal_key_id="key-id", fal_key_secret="key-secret", media_dir=tmp_path)

    build_generator(settings).generate(REQUEST)

    assert fake_fal.submissions[0].headers["Authorization"] == "Key key-id:key-secret"


def test_resuming_when_a_proxy_answers_404_asks_again_later(fal_generator, fake_fal):
    """Only fal's own 404 (with its request id header) says the job is gone."""
    request_id = finished_job(fal_generator, fake_fal)
    fake_fal.script.gateway_errors = {"status": [404]}

    assert fal_generator.resume(request_id) is None
    assert len(fal_generator.resume(request_id).images) == 4


# --- what fal accepted is followed to fal's own answer ------------------------------------


def test_an_outage_longer_than_the_timeout_leaves_the_job_then_resume_gets_it(
    fake_fal, monkeypatch
):
    from lora_core.fal import generator as module

    monkeypatch.setattr(module, "RESUME_SECONDS", 0.3)
    fake_fal.script.outage_after_submit = 1.5
    fake_fal.script.queue_positions = []  # the job finishes unwatched, during the outage
    fake_fal.script.processing_seconds = 0.3
    generator = FalGenerator(key=TEST_FAL_KEY, timeout_seconds=0.5, poll_interval=0.02)

    with pytest.raises(GenerationPending) as caught:
        generator.generate(REQUEST)
    assert generator.resume(caught.value.request_id) is None  # fal is still quiet
    time.sleep(1.2)
    result = generator.resume(caught.value.request_id)

    assert result is not None and len(result.images) == 4
    assert len(fake_fal.submissions) == 1 and fake_fal.cancellations == []


def test_a_request_fal_has_forgotten_is_over_when_fal_answers_again(fal_generator, fake_fal):
    fake_fal.script.queue_positions = []
    fake_fal.script.result_expires_after = 0.2
    request_id = fal_generator._client.submit("fal-ai/flux-lora", arguments={}).request_id
    time.sleep(0.4)

    with pytest.raises(GenerationFailed) as caught:
        fal_generator.resume(request_id)

    assert str(caught.value) == FORGOTTEN


def test_an_unreadable_submit_answer_is_an_unknown_outcome_never_retried(fal_generator, fake_fal):
    fake_fal.script.unreadable_submit_answers = 1

    with pytest.raises(GenerationFailed) as caught:
        fal_generator.generate(REQUEST)

    assert str(caught.value) == LOST_SUBMIT and not caught.value.retryable
    assert len(fake_fal.submissions) == 1


# --- fal's error kinds, as fal reports them --------------------------------------------------


def test_a_weights_download_error_is_read_from_the_jobs_model_error(fal_generator, fake_fal):
    """The runner fetches the LoRA; fal's error names the kind, not prose we must parse."""
    fake_fal.script.fetch_loras = True
    request = GenerationRequest(
        "batch-1", "a fox", f"{fake_fal.url}/files/gone/weights.safetensors", "sks"
    )

    with pytest.raises(WeightsUnavailable):
        fal_generator.generate(request)


def test_a_bad_lora_scale_names_the_field_and_is_not_called_expired_weights(
    fal_generator, fake_fal
):
    fake_fal.script.job_failure = JobFailure(
        [
            model_error(
                ["body", "loras", 0, "scale"], "Input should be at most 4", "less_than_equal"
            )
        ],
        None,
        422,
    )

    with pytest.raises(InvalidInput) as caught:
        fal_generator.generate(REQUEST)

    assert caught.value.field == "loras[0].scale"
    assert "loras[0].scale: Input should be at most 4" in str(caught.value)
    assert not isinstance(caught.value, WeightsUnavailable) and not caught.value.retryable


def test_a_content_policy_refusal_says_so_and_is_not_retried(fal_generator, fake_fal):
    item = model_error(["body", "prompt"], "The content was flagged.", "content_policy_violation")
    fake_fal.script.job_failure = JobFailure([item], None, 422)

    with pytest.raises(ContentRefused) as caught:
        fal_generator.generate(REQUEST)

    assert "content checker" in str(caught.value) and "(prompt)" in str(caught.value)
    assert not caught.value.retryable


@pytest.mark.parametrize(
    ("error_type", "status", "expected"),
    [
        ("request_timeout", 504, GenerationTimeout),
        ("startup_timeout", 504, GenerationTimeout),
        ("runner_scheduling_failure", 503, GenerationFailed),
    ],
)
def test_a_request_errors_type_is_read_from_its_header_and_body(
    fal_generator, fake_fal, error_type, status, expected
):
    fake_fal.script.job_failure = JobFailure("It went wrong", error_type, status)

    with pytest.raises(expected) as caught:
        fal_generator.generate(REQUEST)

    assert type(caught.value) is expected
    assert "It went wrong" in str(caught.value)

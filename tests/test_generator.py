"""The generators: the real fal_client against the local fake fal server, and the preview."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from lora_core.errors import GenerationFailed, GenerationTimeout, WeightsUnavailable
from lora_core.generator import (
    FalGenerator,
    GenerationRequest,
    PreviewGenerator,
    Progress,
    build_generator,
    parse_flux_result,
)
from lora_core.settings import Settings
from lora_core.storage import LocalMediaStore
from tests.conftest import TEST_FAL_KEY
from tests.fakefal import FakeFal

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


def test_a_job_past_the_deadline_times_out_and_is_cancelled(fake_fal: FakeFal):
    fake_fal.script.processing_seconds = 30
    generator = FalGenerator(key=TEST_FAL_KEY, timeout_seconds=0.3, poll_interval=0.02)

    with pytest.raises(GenerationTimeout):
        generator.generate(REQUEST)

    assert len(fake_fal.cancellations) == 1


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


def test_an_answer_fal_client_cannot_read_is_a_failure_and_the_job_is_cancelled(
    fal_generator, fake_fal: FakeFal
):
    fake_fal.script.status_answer = {"status": "SOMETHING_NEW"}

    with pytest.raises(GenerationFailed):
        fal_generator.generate(REQUEST)

    assert len(fake_fal.cancellations) == 1


class StopTheRun(BaseException):
    """Like Streamlit's StopException / RerunException."""


def test_a_stopped_run_cancels_the_fal_job(fal_generator, fake_fal: FakeFal):
    def stop(progress: Progress) -> None:
        if progress.stage == "queued":
            raise StopTheRun

    with pytest.raises(StopTheRun):
        fal_generator.generate(REQUEST, on_progress=stop)

    assert len(fake_fal.cancellations) == 1


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

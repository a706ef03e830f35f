"""The training archive, and the trainers: fal's (through the real fal_client and the fake
fal server) and the offline preview."""

from __future__ import annotations

import io
import re
import time
import zipfile

import pytest

from lora_core.errors import InvalidTrainingInput, TrainingFailed
from lora_core.fal.trainer import FalTrainer
from lora_core.training.archive import (
    UploadedFile,
    check_steps,
    check_trigger_word,
    training_archive,
)
from lora_core.training.preview import PreviewTrainer
from tests.support.factories import cut_short, picture, pictures, png_claiming
from tests.support.fakefal import TRAINING_PATH, JobFailure


def zipped(name: str, files: list[UploadedFile], *, junk: bool = False) -> UploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for file in files:
            archive.writestr(f"set/{file.name}", file.data)
        if junk:  # what macOS adds to a zip
            archive.writestr("__MACOSX/set/._photo-0.jpg", b"junk")
            archive.writestr("set/.DS_Store", b"junk")
    return UploadedFile(name, buffer.getvalue())


def names_in(archive: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        return opened.namelist()


def test_uploaded_images_become_one_zip_of_numbered_pictures():
    files = [picture("a.jpg"), picture("b.PNG".lower()), picture("c.webp"), *pictures(2)]

    archive = training_archive(files)

    assert names_in(archive) == ["001.jpg", "002.png", "003.webp", "004.jpg", "005.jpg"]
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        assert opened.read("003.webp") == files[2].data


def test_a_zip_of_images_counts_as_the_images_in_it():
    archive = training_archive([zipped("set.zip", pictures(4), junk=True), picture("extra.png")])

    assert names_in(archive) == ["001.jpg", "002.jpg", "003.jpg", "004.jpg", "005.png"]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (pictures(4), "Upload 5–50 training images; these files hold 4."),
        (pictures(51), "Upload 5–50 training images; these files hold 51."),
        ([], "Upload 5–50 training images; these files hold 0."),
        ([*pictures(4), UploadedFile("notes.txt", b"hi")], "notes.txt is not a training image"),
        ([*pictures(4), UploadedFile("broken.jpg", b"not a jpeg")], "broken.jpg is not a picture"),
        ([*pictures(4), picture("tiny.png", (100, 300))], "tiny.png is 100×300"),
        ([UploadedFile("set.zip", b"PK but not really")], "set.zip is not a zip file"),
        ([zipped("many.zip", pictures(60))], "many.zip holds 60 files; upload 5–50"),
        ([*pictures(4), "BOMB"], "bomb.png is far too large a picture"),
        # Half of a valid JPEG passes `verify()` (it reads no JPEG data): decoded in full.
        (
            [*pictures(4), cut_short(picture("half.jpg", (1024, 768)))],
            r"half.jpg is not a picture we can read \(damaged or cut short\)",
        ),
        ([*pictures(4), cut_short(picture("half.png", (600, 600)))], "half.png is not a picture"),
        ([*pictures(4), cut_short(picture("half.webp", (600, 600)))], "half.webp is not a picture"),
        (
            [*pictures(4), UploadedFile("wide.png", png_claiming(10_000, 6_000))],
            "wide.png is 10000×6000: training images may have at most 50 million pixels",
        ),
    ],
)
def test_unusable_uploads_are_refused_with_what_is_wrong(files, message):
    files = [decompression_bomb() if file == "BOMB" else file for file in files]
    with pytest.raises(InvalidTrainingInput, match=message):
        training_archive(files)


def decompression_bomb() -> UploadedFile:
    """A small PNG that claims 20,000 × 20,000 pixels."""
    return UploadedFile("bomb.png", png_claiming(20_000, 20_000))


@pytest.mark.parametrize(
    "word", ["sks-style", "  wtrclr  ", "a1", "Neon_Noir", "ohwx man", "x" * 64, "Émile's"]
)
def test_usable_trigger_words(word):
    assert check_trigger_word(word) == word.strip()


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("", "Enter the trigger word."),
        ("a", "may hold letters, digits"),
        ("-lead", "may hold letters, digits"),
        ("émoji✨", "may hold letters, digits"),
        ("[x](https://e.example)", "may hold letters, digits"),
        ("x" * 65, "The trigger word is 65 characters; the limit is 64."),
    ],
)
def test_unusable_trigger_words_are_explained(word, message):
    with pytest.raises(InvalidTrainingInput, match=re.escape(message)):
        check_trigger_word(word)


def test_training_and_registering_share_one_trigger_word_rule():
    from lora_core.errors import InvalidRegistration
    from lora_core.training import names

    for word in ("ohwx man", "sks-style"):
        assert names.trigger_word(word, error=InvalidRegistration) == check_trigger_word(word)


@pytest.mark.parametrize(
    ("steps", "ok"), [(99, False), (100, True), (10_000, True), (10_001, False)]
)
def test_steps_are_bounded(steps, ok):
    if ok:
        assert check_steps(steps) == steps
    else:
        with pytest.raises(InvalidTrainingInput, match="between 100 and 10,000"):
            check_steps(steps)


def submit(fal_trainer: FalTrainer, *, is_style: bool = True) -> str:
    return fal_trainer.submit(
        images_url="https://x/y.zip", trigger_word="sks", steps=100, is_style=is_style
    )


def test_fal_trainer_uploads_submits_and_follows_the_job(fal_trainer: FalTrainer, fake_fal):
    archive = training_archive(pictures(5))

    images_url = fal_trainer.upload(archive)
    request_id = fal_trainer.submit(
        images_url=images_url, trigger_word="sks-style", steps=1200, is_style=True
    )
    states = [fal_trainer.state(request_id) for _ in range(4)]

    path = images_url.removeprefix(fake_fal.url)
    assert fake_fal.uploads[path] == archive  # the exact zip reached fal's storage
    assert path.endswith("/training-images.zip")
    [submission] = fake_fal.training_submissions
    assert submission.body == {
        "images_data_url": images_url,
        "trigger_word": "sks-style",
        "steps": 1200,
        "is_style": True,
        "create_masks": False,
        "data_archive_format": "zip",
    }
    assert [state.stage for state in states] == ["queued", "queued", "running", "completed"]
    assert [states[0].queue_position, states[1].queue_position] == [1, 0]
    assert states[2].logs == ("Loading LoRA weights", "Denoising 28/28")
    files = fal_trainer.files(request_id)
    assert files.weights_url == (
        f"{fake_fal.url}/files/{request_id}/pytorch_lora_weights.safetensors"
    )
    assert files.config_url == f"{fake_fal.url}/files/{request_id}/config.json"


def test_a_subject_keeps_fals_masks(fal_trainer: FalTrainer, fake_fal):
    submit(fal_trainer, is_style=False)

    [submission] = fake_fal.training_submissions
    assert (submission.body["is_style"], submission.body["create_masks"]) == (False, True)


def test_a_job_that_failed_on_fal_says_why_when_asked_its_state(fal_trainer: FalTrainer, fake_fal):
    fake_fal.script.job_failure = JobFailure("Too few faces in the images", "bad_request", 422)
    fake_fal.script.queue_positions = []
    request_id = submit(fal_trainer)
    assert fal_trainer.state(request_id).stage == "running"

    with pytest.raises(TrainingFailed, match="Too few faces in the images") as failure:
        fal_trainer.state(request_id)

    assert failure.value.job_failed


@pytest.mark.parametrize(("status", "detail"), [(422, "Images too small"), (500, "GPU on fire")])
def test_a_result_fal_answers_with_an_error_is_the_jobs_failure(
    fal_trainer, fake_fal, status, detail
):
    """fal's own error answer from the result URL of a finished job is final."""
    fake_fal.script.result_error = (status, detail)
    request_id = submit(fal_trainer)

    with pytest.raises(TrainingFailed, match=detail) as failure:
        fal_trainer.files(request_id)

    assert failure.value.job_failed


def test_a_refused_key_names_the_setting_and_is_not_the_jobs_failure(fal_trainer, fake_fal):
    fake_fal.script.submit_error = (401, "Invalid key")

    with pytest.raises(TrainingFailed, match="FAL_KEY") as failure:
        submit(fal_trainer)

    assert not failure.value.job_failed


@pytest.mark.parametrize("status", [401, 403])
def test_a_key_refused_at_upload_says_check_fal_key(fal_trainer, fake_fal, status):
    fake_fal.script.cdn_token_error = status

    with pytest.raises(TrainingFailed) as failure:
        fal_trainer.upload(training_archive(pictures(5)))

    assert f"fal refused the API key (HTTP {status}). Check the FAL_KEY setting." == str(
        failure.value
    )
    assert "connection" not in str(failure.value)


def test_an_upload_the_cdn_refuses_goes_through_fals_fallback(fal_trainer, fake_fal):
    fake_fal.script.cdn_upload_error = 500
    archive = training_archive(pictures(5))

    url = fal_trainer.upload(archive)

    assert fake_fal.uploads[url.removeprefix(fake_fal.url)] == archive
    assert [r.path for r in fake_fal.requests if r.path.startswith("/storage/upload")] == [
        "/storage/upload/initiate"
    ]


def test_a_large_archive_goes_up_in_parts(fal_trainer, fake_fal, monkeypatch):
    import fal_client.client

    monkeypatch.setattr(fal_client.client, "MULTIPART_THRESHOLD", 20_000)
    monkeypatch.setattr(fal_client.client, "MULTIPART_CHUNK_SIZE", 8_000)
    archive = training_archive(pictures(5))
    assert len(archive) > 20_000  # three parts and a bit

    url = fal_trainer.upload(archive)

    assert fake_fal.uploads[url.removeprefix(fake_fal.url)] == archive
    assert any(r.path.endswith("/complete") for r in fake_fal.requests)


def test_a_job_fal_no_longer_knows_fails_with_a_clear_reason(fal_trainer, fake_fal):
    with pytest.raises(TrainingFailed, match="fal no longer knows this training") as failure:
        fal_trainer.state("no-such-request")

    assert failure.value.job_failed
    assert [r.path for r in fake_fal.requests] == [
        f"{TRAINING_PATH}/requests/no-such-request/status"
    ]


@pytest.mark.parametrize("trouble", ["dropped_submit_answers", "unreadable_submit_answers"])
def test_a_lost_submit_answer_is_not_resubmitted(fal_trainer, fake_fal, caplog, trouble):
    """Dropped, or a 200 that is not JSON: fal may have the job; never "try again"."""
    setattr(fake_fal.script, trouble, 1)

    with pytest.raises(TrainingFailed, match="fal may still run it") as failure:
        submit(fal_trainer)

    assert not failure.value.job_failed
    assert len(fake_fal.training_submissions) == 1 and len(fake_fal.jobs) == 1
    assert "answer to a training submit was lost" in caplog.text


def test_the_preview_trainer_runs_for_its_time_even_across_restarts(media_store):
    trainer = PreviewTrainer(media_store, seconds=0.3)

    url = trainer.upload(training_archive(pictures(5)))
    request_id = trainer.submit(images_url=url, trigger_word="sks", steps=100, is_style=True)
    running = trainer.state(request_id)
    time.sleep(0.35)
    restarted = PreviewTrainer(media_store, seconds=0.3)  # knows nothing but the request id

    assert url.startswith("app/static/media/training/") and url.endswith(".zip")
    assert running.stage == "running" and "no fal key" in running.logs[0]
    assert restarted.state(request_id).stage == "completed"
    assert restarted.files(request_id).weights_url.endswith(".safetensors")


@pytest.mark.parametrize("request_id", ["req-1", "c0ffee-1234", "preview-soon"])
def test_the_preview_trainer_leaves_real_jobs_alone(media_store, request_id):
    with pytest.raises(TrainingFailed, match="only preview trainings") as failure:
        PreviewTrainer(media_store).state(request_id)

    assert not failure.value.job_failed  # so the LoRA stays pending, untouched


@pytest.mark.parametrize(
    "trouble",
    [{"gateway_errors": {"result": [502] * 10}}, {"stall": {"result": 30.0}}],
    ids=["gateway", "stalled"],
)
def test_trouble_reaching_fal_is_not_the_jobs_failure(fal_trainer, fake_fal, monkeypatch, trouble):
    from lora_core.fal import trainer

    monkeypatch.setattr(trainer, "STATE_SECONDS", 1.0)
    for name, value in trouble.items():
        setattr(fake_fal.script, name, value)
    request_id = submit(fal_trainer)
    started = time.monotonic()

    with pytest.raises(TrainingFailed) as failure:
        fal_trainer.files(request_id)

    assert not failure.value.job_failed  # so the LoRA stays pending and is asked again
    assert time.monotonic() - started < 3

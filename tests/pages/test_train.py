"""The Train page, as AppTest renders it, training through the fake fal server."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lora_core.data.clock import to_iso, utc_now
from lora_core.data.db import session_scope
from lora_core.data.models import LoraStatus, LoraTraining
from lora_core.training.archive import submission_key
from tests.conftest import TEST_FAL_KEY
from tests.pages.test_login import AUTH, SIGNED_OUT
from tests.support.factories import pictures, stored_loras
from tests.support.markup import gallery_titles, readable, shows

TRAIN_PAGE = "app_pages/train.py"
SUBMIT = "FormSubmitter:train_form_0-Start training"


@pytest.fixture
def with_fal(monkeypatch):
    monkeypatch.setenv("FAL_KEY", TEST_FAL_KEY)


def texts(at) -> str:
    kinds = ("markdown", "caption", "info", "warning", "error", "success", "subheader", "text")
    parts = [str(element.value) for kind in kinds for element in getattr(at, kind)]
    return readable("\n".join(parts))


def statuses(at) -> list[str]:
    return [status.label for status in at.status]


def submit(at, files, trigger_word: str = "wtrclr", kind: str | None = None):
    uploads = [(file.name, file.data, "image/jpeg") for file in files]
    at.get("file_uploader")[0].set_value(uploads)
    at.text_input(key="train_trigger_0").input(trigger_word)
    if kind is not None:
        at.radio(key="train_kind_0").set_value(kind)
    at.button(key=SUBMIT).click().run()
    return at


def test_signed_out_users_are_asked_to_sign_in(open_app):
    at = open_app(TRAIN_PAGE, user=SIGNED_OUT, secrets=AUTH)

    assert not at.exception
    assert "Sign in to train a LoRA." in texts(at)
    assert at.get("file_uploader") == []


def test_the_form_says_what_to_upload_and_how_many_trainings_are_left(open_app):
    at = open_app(TRAIN_PAGE)

    assert not at.exception
    assert at.title[0].value == "Train a LoRA"
    assert "2 of 2 trainings remaining today" in texts(at)
    assert at.number_input(key="train_steps_0").value == 1000
    assert "You have not trained a LoRA yet." in texts(at)


def test_a_training_runs_on_fal_and_offers_to_generate_when_done(
    open_app, with_fal, engine, fake_fal
):
    at = open_app(TRAIN_PAGE)

    submit(at, pictures(6))

    assert not at.exception
    [lora] = stored_loras(engine)
    assert (lora.status, lora.trigger_word, lora.user) == ("pending", "wtrclr", "guest")
    body = fake_fal.training_submissions[0].body
    assert (body["trigger_word"], body["is_style"], body["data_archive_format"]) == (
        "wtrclr", True, "zip",
    )  # fmt: skip
    assert "Training “wtrclr” started." in texts(at)
    assert at.text_input(key="train_trigger_1").value == ""  # a fresh form: no double start
    assert "Queued at fal (position 2)" in statuses(at)
    assert "1 of 2 trainings remaining today" in texts(at)

    for _ in range(3):  # the page asks fal again on every run (every 3 s in a browser)
        at.run()

    assert "Training complete: the LoRA is ready." in texts(at)
    assert stored_loras(engine)[0].status == LoraStatus.COMPLETED
    at.button(key=f"generate_{lora.id}").click().run()
    assert at.query_params["id"] == lora.id
    assert at.title[0].value == "wtrclr"
    assert at.text_area(key="gen_prompt").label == "Prompt"


def test_too_few_images_are_refused_and_nothing_is_spent(open_app, with_fal, engine, fake_fal):
    at = open_app(TRAIN_PAGE)

    submit(at, pictures(3))

    assert not at.exception
    assert "Upload 5–50 training images; these files hold 3." in texts(at)
    assert "The training was not started" in statuses(at)
    assert at.text_input(key="train_trigger_0").value == "wtrclr"  # nothing entered is lost
    assert stored_loras(engine) == [] and fake_fal.requests == []


def test_a_failed_training_says_why(open_app, with_fal, engine, fake_fal):
    fake_fal.script.result_error = (422, [{"msg": "Images too small to train"}])
    at = open_app(TRAIN_PAGE)
    submit(at, pictures(5))

    for _ in range(4):
        at.run()

    assert not at.exception
    assert "The training failed on fal: Images too small to train" in texts(at)


def test_the_training_quota_says_when_the_next_one_is_possible(open_app, with_fal, engine):
    with session_scope(engine) as session:
        for number in range(2):
            session.add(
                LoraTraining(
                    id=f"mine-{number}", request_id=f"req-{number}", user="guest",
                    trigger_word=f"style{number}", steps=1000, status=LoraStatus.COMPLETED,
                    lora_weights_url="https://weights.example/x.safetensors",
                    created_at=to_iso(utc_now() - timedelta(hours=20 - number)),
                )
            )  # fmt: skip
        session.commit()
    at = open_app(TRAIN_PAGE)

    submit(at, pictures(5))

    assert "0 of 2 trainings remaining today" in texts(at)
    message = "You've started all 2 trainings today. Your next training is available in 3 h 59 min"
    assert message in texts(at)  # the older one, 20 hours old, leaves the window in 4 hours
    assert len(stored_loras(engine)) == 2


def test_an_existing_lora_is_registered_and_shown_by_its_name(
    open_app, engine, fake_fal, monkeypatch
):
    monkeypatch.setenv("ALLOW_PRIVATE_WEIGHTS_URLS", "true")  # the fake is on 127.0.0.1
    weights = f"{fake_fal.url}/files/job-9/pytorch_lora_weights.safetensors"
    at = open_app(TRAIN_PAGE)

    at.text_input(key="register_url").input(weights)
    at.text_input(key="register_trigger").input("inkwash")
    at.text_input(key="register_name").input("Ink wash")
    at.button(key="FormSubmitter:register_form-Register LoRA").click().run()

    assert not at.exception
    assert "“Ink wash” is in the gallery." in texts(at)
    [lora] = stored_loras(engine)
    assert (lora.name, lora.trigger_word, lora.lora_weights_url) == ("Ink wash", "inkwash", weights)
    assert "Registered: the LoRA is ready." in texts(at)
    gallery = open_app()
    assert gallery_titles(gallery)[0] == "Ink wash"
    assert shows(gallery, "Trigger word: inkwash")


def test_a_registration_that_fails_keeps_what_was_entered(open_app, engine, fake_fal):
    at = open_app(TRAIN_PAGE)

    at.text_input(key="register_url").input("https://example.com/model.bin")
    at.text_input(key="register_trigger").input("inkwash")
    at.button(key="FormSubmitter:register_form-Register LoRA").click().run()

    assert "must point to a .safetensors file" in texts(at)
    assert at.text_input(key="register_url").value == "https://example.com/model.bin"
    assert stored_loras(engine) == []


def test_the_same_submission_arriving_twice_starts_one_training(
    open_app, with_fal, engine, fake_fal
):
    files = pictures(5)
    at = open_app(TRAIN_PAGE)
    # As if a first click's run had uploaded and submitted, then been cut short by a rerun.
    at.session_state["train_submitted"] = submission_key(files, "wtrclr", 1000, is_style=True)

    submit(at, files)

    assert not at.exception
    assert "This training was already started" in texts(at)
    assert stored_loras(engine) == [] and fake_fal.requests == []


def test_a_subject_is_trained_with_fals_masks_and_listed_as_a_subject(
    open_app, with_fal, engine, fake_fal
):
    at = open_app(TRAIN_PAGE)
    assert at.radio(key="train_kind_0").value == "style"

    submit(at, pictures(5), kind="subject")

    body = fake_fal.training_submissions[0].body
    assert (body["is_style"], body["create_masks"]) == (False, True)
    assert stored_loras(engine)[0].is_style is False
    captions = [readable(caption.value) for caption in at.caption]
    assert any(caption.startswith("Subject · 1,000 steps") for caption in captions)


def test_a_key_refused_at_upload_says_to_check_fal_key(open_app, with_fal, engine, fake_fal):
    fake_fal.script.cdn_token_error = 401
    at = open_app(TRAIN_PAGE)

    submit(at, pictures(5))

    assert "fal refused the API key (HTTP 401). Check the FAL_KEY setting." in texts(at)
    assert "connection" not in texts(at)
    assert stored_loras(engine) == [] and fake_fal.training_submissions == []

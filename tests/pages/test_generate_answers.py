"""Every answer of the Generate dialog reaches the user, right under its button: fal's own
kinds of failure in their words, a generation fal went quiet about (its images shown once
the background sweep stores them), and an error after an earlier success (the earlier batch
labelled as the previous one, never passing for the new try's result)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from lora_core.data.db import session_scope
from lora_core.data.models import BatchStatus, GenerationBatch
from lora_core.fal.generator import NOT_ANSWERING
from tests.conftest import TEST_FAL_KEY
from tests.pages.test_lora import generate, open_dialog, results
from tests.support.fakefal import JobFailure, model_error
from tests.support.markup import readable


@pytest.fixture
def with_fal(monkeypatch, fake_fal):
    monkeypatch.setenv("FAL_KEY", TEST_FAL_KEY)
    return fake_fal


def shown(at) -> list[str]:
    """Every message the dialog shows, in order, as people read them."""
    kinds = ("error", "warning", "info", "caption")
    return [readable(str(element.value)) for kind in kinds for element in getattr(at, kind)]


def waiting(at) -> bool:
    return any("Still waiting for fal…" in message for message in shown(at))


def test_a_content_policy_refusal_says_so_without_a_retry(open_app, add_lora, with_fal):
    add_lora("strict")
    item = model_error(["body", "prompt"], "The content was flagged.", "content_policy_violation")
    with_fal.script.job_failure = JobFailure([item], None, 422)

    at = generate(open_dialog(open_app, "strict"), "a storm")

    assert not at.exception
    assert readable(at.error[0].value) == (
        "fal's content checker refused this request (prompt). Change the prompt and try again."
    )
    assert "gen_retry" not in [button.key for button in at.button]


def test_a_refused_lora_scale_names_the_field(open_app, add_lora, with_fal):
    add_lora("scaled")
    item = model_error(["body", "loras", 0, "scale"], "Input should be at most 4", "less_than")
    with_fal.script.job_failure = JobFailure([item], None, 422)

    at = generate(open_dialog(open_app, "scaled"), "a storm")

    assert readable(at.warning[0].value) == (
        "fal rejected the request: loras[0].scale: Input should be at most 4"
    )
    assert "weights" not in at.warning[0].value


def test_a_generation_fal_went_quiet_about_arrives_in_the_dialog_without_a_click(
    open_app, add_lora, engine, with_fal, monkeypatch
):
    from lora_core.fal import generator

    monkeypatch.setenv("FAL_TIMEOUT_SECONDS", "1")
    monkeypatch.setattr(generator, "RESUME_SECONDS", 0.3)  # the page's own follow-up
    add_lora("quiet")
    with_fal.script.queue_positions = []
    with_fal.script.processing_seconds = 0.3
    with_fal.script.outage_after_submit = 2.0

    at = generate(open_dialog(open_app, "quiet"), "a storm")

    assert not at.exception
    assert NOT_ANSWERING in shown(at)
    assert "gen_retry" not in [button.key for button in at.button]  # it would pay twice
    assert waiting(at)
    assert results(at) == []
    with session_scope(engine) as session:
        [batch] = session.scalars(select(GenerationBatch)).all()
    assert batch.status == BatchStatus.PENDING
    assert "7 of 8 generations remaining today" in shown(at)  # held while fal may bill it

    time.sleep(3.2)  # fal answers again, and the batch is due to be asked about
    at.run()  # the page's next run (the dialog looks every 3 s in a browser)

    assert not at.exception
    assert len(results(at)) == 4
    assert NOT_ANSWERING not in shown(at) and not waiting(at)
    assert len(with_fal.submissions) == 1


def test_an_error_after_a_success_is_shown_and_the_old_batch_is_labelled(
    open_app, add_lora, with_fal
):
    """The 501-character prompt of issue #30: fal is rightly not called, and the dialog
    says why instead of showing the earlier images as if they were the answer."""
    add_lora("twice")
    at = generate(open_dialog(open_app, "twice"), "first idea")
    assert len(results(at)) == 4 and "Previous batch" not in shown(at)

    generate(at, "x" * 501)

    assert not at.exception
    messages = shown(at)
    assert messages[0] == "The prompt is 501 characters long; the limit is 500."
    assert "Previous batch" in messages
    assert len(results(at)) == 4  # still there, labelled
    assert len(with_fal.submissions) == 1

    generate(at, "second idea")

    assert "Previous batch" not in shown(at) and not at.warning
    assert len(results(at)) == 4 and len(with_fal.submissions) == 2

"""Stored names, trigger words, user identities, prompts and messages are shown literally on
every page: a LoRA whose name carries Markdown, LaTeX, colour directives and links, and a
user whose identity does, render as typed (see `tests/support/markup.py` for the check)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lora_core.data.clock import to_iso
from lora_core.data.db import session_scope
from lora_core.data.models import GeneratedImage, GenerationBatch, LoraStatus, LoraTraining
from tests.conftest import NOW, open_with_query
from tests.pages.test_login import AUTH
from tests.support.markup import (
    EVIL_NAME,
    EVIL_TEXT,
    EVIL_TRIGGER,
    EVIL_USER,
    assert_inert,
    readable,
    shows,
    table_rows,
)

LORA_PAGE = "app_pages/lora.py"
WEIRD_STEPS = ":red[9] **9** [s](https://evil.example/s)"
WEIRD_TIME = "~~when~~ $$t$$ [d](https://evil.example/d)"


@pytest.fixture
def evil(engine, monkeypatch):
    """Two LoRAs named with markup (one by name, one by trigger word only), a user whose
    identity is markup, their generations with a markup prompt and seed, and a failed
    training whose stored reason is markup. The app runs as that user (demo mode)."""
    monkeypatch.setenv("LOCAL_USER", EVIL_USER)
    monkeypatch.setenv("ADMIN_USERS", EVIL_USER)
    with session_scope(engine) as session:
        session.add_all(
            [
                LoraTraining(
                    id="named", request_id="req-named", user=EVIL_USER,
                    trigger_word=EVIL_TRIGGER, name=EVIL_NAME, steps=1000,
                    lora_weights_url="https://weights.example/a.safetensors",
                    status=LoraStatus.COMPLETED, created_at=to_iso(NOW - timedelta(hours=2)),
                ),
                LoraTraining(
                    id="unnamed", request_id="req-unnamed", user=EVIL_USER,
                    trigger_word=EVIL_NAME, steps=1000,
                    lora_weights_url="https://weights.example/b.safetensors",
                    status=LoraStatus.COMPLETED, created_at=to_iso(NOW - timedelta(hours=3)),
                ),
                LoraTraining(  # stored steps and time that are not a number and a time
                    id="weird", request_id="req-weird", user="trainer",
                    trigger_word="weird", steps=WEIRD_STEPS, created_at=WEIRD_TIME,
                    lora_weights_url="https://weights.example/w.safetensors",
                    status=LoraStatus.COMPLETED,
                ),
                LoraTraining(  # the original app may store any status
                    id="odd", request_id="req-odd", user="trainer",
                    trigger_word="odd", status=EVIL_NAME,
                    created_at=to_iso(NOW - timedelta(hours=5)),
                ),
                LoraTraining(
                    id="broken", request_id="req-broken", user=EVIL_USER,
                    trigger_word="broken", name=EVIL_NAME, steps=1000,
                    status=LoraStatus.FAILED, error=EVIL_TEXT,
                    created_at=to_iso(NOW - timedelta(hours=4)),
                ),
            ]
        )  # fmt: skip
        for lora_id in ("named", "unnamed"):
            session.add(
                GenerationBatch(
                    id=f"batch-{lora_id}", lora_training_id=lora_id, user=EVIL_USER,
                    prompt=EVIL_TEXT, status="succeeded", images_returned=2,
                    created_at=to_iso(NOW - timedelta(hours=1)),
                    finished_at=to_iso(NOW - timedelta(minutes=59)), duration_ms=60_000,
                )
            )  # fmt: skip
            for number in range(2):
                session.add(
                    GeneratedImage(
                        id=f"{lora_id}-{number}", lora_training_id=lora_id,
                        user=EVIL_USER, prompt=EVIL_TEXT, seed=EVIL_TEXT,
                        image_url=f"https://cdn.example/{lora_id}/{number}.jpg",
                        batch_id=f"batch-{lora_id}",
                        created_at=to_iso(NOW - timedelta(hours=1)),
                    )
                )  # fmt: skip
        session.commit()
    return engine


def test_the_gallery_shows_names_and_trigger_words_literally(open_app, evil):
    at = open_app()

    assert not at.exception
    assert_inert(at)
    assert shows(at, EVIL_NAME)  # card titles
    assert shows(at, f"Trigger word: {EVIL_TRIGGER}")
    assert shows(at, EVIL_USER)  # the sidebar's "Signed in as"
    assert shows(at, f"{EVIL_NAME[0].upper()}{EVIL_NAME[1:]}")  # a status stored as that


def test_the_lora_page_its_dialog_and_an_images_details_show_stored_text_literally(open_app, evil):
    details = open_app(LORA_PAGE, id="named", image="named-0")
    dialog = open_app(LORA_PAGE, id="named")
    dialog.button(key="open_generate").click().run()

    for at in (details, dialog):
        assert not at.exception
        assert_inert(at)
        assert shows(at, EVIL_NAME)  # the title
        assert shows(at, f"Trigger word: {EVIL_TRIGGER}")
        assert shows(at, f"by {EVIL_USER}")  # the batch, the image's details
        assert shows(at, EVIL_TEXT)  # the prompt
    assert shows(dialog, f"in the style of {EVIL_TRIGGER}")  # the dialog
    assert shows(details, f"Seed {EVIL_TEXT}")


def test_stored_steps_and_times_that_are_not_numbers_are_shown_literally(open_app, evil):
    gallery = open_app()
    page = open_app(LORA_PAGE, id="weird")

    for at in (gallery, page):
        assert not at.exception
        assert_inert(at)
        assert shows(at, WEIRD_TIME)
    assert shows(gallery, f"{WEIRD_STEPS} steps")
    assert shows(page, f"{WEIRD_STEPS} training steps")


def test_a_lora_known_by_its_trigger_word_is_titled_literally(open_app, evil):
    at = open_app(LORA_PAGE, id="unnamed")

    assert not at.exception
    assert_inert(at)
    assert shows(at, EVIL_NAME)


def test_compare_shows_names_in_headings_and_its_generate_button_literally(open_app, evil):
    at = open_with_query(open_app, "app_pages/compare.py")
    at.multiselect(key="compare_loras").set_value(["named", "unnamed"])
    at.text_input(key="compare_prompt").input("a prompt nobody used").run()

    assert not at.exception
    assert_inert(at)
    assert shows(at, EVIL_NAME)  # the column headings
    assert readable(at.button(key="generate_missing").label).startswith(f"Generate for {EVIL_NAME}")


def test_history_reuses_a_prompt_on_a_lora_named_literally(open_app, evil):
    table = open_with_query(open_app, "app_pages/history.py")
    rows = table_rows(table)
    assert {row["User"].text for row in rows} == {EVIL_USER}  # the table: literal text
    assert {row["Prompt"].text for row in rows} == {EVIL_TEXT}
    assert {row["Prompt"].title for row in rows} == {EVIL_TEXT}
    assert {row["Seed"].text for row in rows} == {EVIL_TEXT}
    assert all(row["Preview"].alt.endswith(EVIL_TEXT) for row in rows)
    assert_inert(table)
    at = open_with_query(
        open_app, "app_pages/history.py", batch=rows[0]["Time (UTC)"].href.removeprefix("?batch=")
    )

    assert not at.exception
    assert at.button(key="reuse_prompt")
    assert [code.value for code in at.code] == [EVIL_TEXT]  # copied back exactly as stored
    assert_inert(at)
    assert readable(at.button(key="reuse_prompt").label) in {
        f"Reuse prompt on {EVIL_TRIGGER}",
        f"Reuse prompt on {EVIL_NAME}",
    }


def test_the_train_page_lists_the_users_loras_and_a_stored_failure_literally(open_app, evil):
    at = open_with_query(open_app, "app_pages/train.py")

    assert not at.exception
    assert_inert(at)
    assert shows(at, EVIL_NAME)
    assert shows(at, EVIL_TEXT)  # the failed training's reason


def test_the_usage_page_lists_loras_and_users_literally(open_app, evil):
    at = open_with_query(open_app, "app_pages/usage.py")

    assert not at.exception
    assert_inert(at)
    assert shows(at, EVIL_NAME)
    assert list(at.dataframe[0].value["user"]) == [EVIL_USER]


def test_a_signed_in_identity_with_markup_is_shown_literally(open_app, evil):
    user = {"is_logged_in": True, "email": EVIL_USER}

    at = open_app(LORA_PAGE, id="named", user=user, secrets=AUTH)

    assert not at.exception
    assert_inert(at)
    assert shows(at, EVIL_USER)
    assert shows(at, f"by {EVIL_USER}")

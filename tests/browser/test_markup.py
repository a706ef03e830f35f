"""Stored text with markup, as a real browser draws it: a LoRA whose name and trigger word
carry Markdown links, colour directives, LaTeX, icons and HTML, generated from by a user
whose identity does too. The gallery and the LoRA page show every character as typed and
no link to another host, no formula, no coloured text, no icon."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import RunningApp, summary_value
from tests.support.markup import EVIL_NAME, EVIL_TEXT, EVIL_TRIGGER, EVIL_USER

LORA_ID = "markup-lora"


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.fixture
def markup_lora(fresh_app: RunningApp) -> Iterator[RunningApp]:
    """The newest LoRA of the gallery, named with markup, with one batch of two images
    (the demo's own files) by a user named with markup."""
    now = datetime.now(UTC)
    with closing(sqlite3.connect(fresh_app.db_path)) as connection, connection:
        urls = [
            row[0] for row in connection.execute("SELECT image_url FROM generated_images LIMIT 2")
        ]
        connection.execute(
            "INSERT INTO lora_trainings (id, request_id, wallet_address, trigger_word, name, "
            "steps, lora_weights_url, status, created_at) VALUES (?, 'req-markup', ?, ?, ?, "
            "1000, 'https://weights.example/m.safetensors', 'completed', ?)",
            (LORA_ID, EVIL_USER, EVIL_TRIGGER, EVIL_NAME, iso(now)),
        )
        connection.execute(
            "INSERT INTO generation_batches (id, lora_training_id, wallet_address, prompt, "
            "status, images_returned, created_at, finished_at) "
            "VALUES ('markup-batch', ?, ?, ?, 'succeeded', 2, ?, ?)",
            (LORA_ID, EVIL_USER, EVIL_TEXT, iso(now), iso(now)),
        )
        for number, url in enumerate(urls):
            connection.execute(
                "INSERT INTO generated_images (id, lora_training_id, wallet_address, prompt, "
                "image_url, seed, created_at, batch_id) "
                "VALUES (?, ?, ?, ?, ?, '42', ?, 'markup-batch')",
                (f"markup-{number}", LORA_ID, EVIL_USER, EVIL_TEXT, url,
                 iso(now - timedelta(seconds=number))),
            )  # fmt: skip
    yield fresh_app
    with closing(sqlite3.connect(fresh_app.db_path)) as connection, connection:
        connection.execute("DELETE FROM generated_images WHERE lora_training_id = ?", (LORA_ID,))
        connection.execute("DELETE FROM generation_batches WHERE lora_training_id = ?", (LORA_ID,))
        connection.execute("DELETE FROM lora_trainings WHERE id = ?", (LORA_ID,))


def main_text(page: Page) -> str:
    """What a reader sees in the main area (invisible word joiners removed)."""
    return page.get_by_test_id("stMain").inner_text().replace("\u2060", "")


def assert_nothing_live(page: Page, app: RunningApp) -> None:
    own_host = urlsplit(app.url).netloc
    hrefs = page.eval_on_selector_all("a[href]", "links => links.map(link => link.href)")
    foreign = [href for href in hrefs if urlsplit(href).netloc not in ("", own_host)]
    assert foreign == [], foreign
    main = page.get_by_test_id("stMain")
    expect(main.locator(".katex")).to_have_count(0)
    expect(main.locator("[style*='color'] >> text=/lory|^x$|^z$/")).to_have_count(0)
    expect(main.locator("img[src*='evil.example']")).to_have_count(0)
    expect(main.locator("b", has_text="b")).to_have_count(0)
    expect(main.get_by_role("img", name="star icon")).to_have_count(0)


def test_the_gallery_and_the_lora_page_show_markup_as_typed(
    page: Page, markup_lora: RunningApp
) -> None:
    page.goto("/")
    card = page.locator(f'.ls-lora-card[data-lora="{LORA_ID}"]')
    expect(card.get_by_role("heading")).to_be_visible()
    text = card.inner_text().replace("\u2060", "")
    assert EVIL_NAME in text
    assert f"Trigger word: {EVIL_TRIGGER}" in text
    assert_nothing_live(page, markup_lora)

    page.goto(f"/lora?id={LORA_ID}&image=markup-0")
    expect(page.locator(".st-key-image_view")).to_be_visible()
    expect(page.locator("figure.ls-card img").first).to_be_visible()
    text = main_text(page)
    assert EVIL_NAME in text  # the title
    assert f"Trigger word: {EVIL_TRIGGER}" in text
    assert EVIL_TEXT in text  # the prompt, in the details and over the batch
    assert f"by {EVIL_USER}" in text
    assert_nothing_live(page, markup_lora)
    expect(page).to_have_title(f"{EVIL_NAME} · LoRA Studio")


def copy_text_of(page: Page, locator) -> str:
    """Select an element's text as a person would and copy it (Ctrl+C): the clipboard."""
    locator.evaluate(
        """element => {
            const range = document.createRange();
            range.selectNodeContents(element);
            const selection = window.getSelection();
            selection.removeAllRanges();
            selection.addRange(range);
        }"""
    )
    page.keyboard.press("Control+C")
    return page.evaluate("navigator.clipboard.readText()")


def test_text_copied_from_the_page_is_exactly_what_is_stored(
    page: Page, markup_lora: RunningApp
) -> None:
    """The word joiners that keep stored text inert stay out of the clipboard, so a user
    copied from a byline and pasted into History's filter matches (issue #30)."""
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(f"/lora?id={LORA_ID}")
    # The line under a generation's prompt (the header's second paragraph).
    byline = page.locator(".ls-batch p").filter(has_text="by mal")
    expect(byline.first).to_be_visible()
    assert "\u2060" in byline.first.inner_text()  # on the page: inert, as drawn

    copied = copy_text_of(page, byline.first)

    assert copied.startswith(f"by {EVIL_USER} · ")
    assert "\u2060" not in copied

    page.goto("/history")
    expect(page.get_by_role("heading", name="History")).to_be_visible()
    page.get_by_test_id("stExpander").locator("summary").first.click()
    user_filter = page.get_by_role("textbox", name="User")
    user_filter.fill(copied.removeprefix("by ").split(" · ")[0] + "\u2060")  # even so
    user_filter.press("Enter")
    expect(summary_value(page, "Batches")).to_have_text("1")

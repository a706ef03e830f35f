"""The main journey in a real browser: gallery → Generate → 4 images → back on the LoRA page."""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing

from playwright.sync_api import Page, expect

from tests.browser.conftest import SCREENSHOTS, RunningApp

DEMO_TRIGGER_WORDS = ("wtrclr", "neonnoir", "clayfig", "blprnt", "inktrain")
LORA_ID = "demo-blueprint"
PROMPT = "a paper crane folded from an old city map"
GENERATION_TIMEOUT = 20_000  # ms: four 1024 px preview JPEGs plus two reruns


def _generated_prompts(app: RunningApp, lora_id: str) -> list[str]:
    with closing(sqlite3.connect(app.db_path)) as connection:
        rows = connection.execute(
            "SELECT prompt FROM generated_images WHERE lora_training_id = ?", (lora_id,)
        ).fetchall()
    return [row[0] for row in rows]


def test_generate_from_the_gallery(page: Page, app_server: RunningApp) -> None:
    assert _generated_prompts(app_server, LORA_ID) == []

    # The gallery, with real content: every demo LoRA's card.
    page.goto("/")
    expect(page.get_by_role("heading", name="LoRA Gallery")).to_be_visible()
    for trigger_word in DEMO_TRIGGER_WORDS:
        expect(page.get_by_role("heading", name=trigger_word, exact=True)).to_be_visible()
    # Only completed LoRAs offer Generate.
    expect(page.locator(".st-key-generate_demo-in-training")).to_have_count(0)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "journey-1-gallery.png")

    # Generate on a card → the LoRA's page with the dialog open.
    page.locator(f".st-key-generate_{LORA_ID} button").click()
    expect(page).to_have_url(re.compile(rf"/lora\?id={LORA_ID}$"))
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_text("Generate Images", exact=True)).to_be_visible()
    expect(dialog.get_by_text('"... in the style of blprnt"')).to_be_visible()

    prompt = dialog.get_by_role("textbox", name="Prompt")
    submit = dialog.get_by_role("button", name="Generate 4 Images")
    # An empty prompt is refused in the browser, with a message.
    expect(dialog.get_by_text("8 of 8 generations remaining today")).to_be_visible()
    required = dialog.get_by_text("This field is required.")
    for _attempt in range(3):  # the dialog may still be re-rendering after the page switch
        submit.click()
        try:
            expect(required).to_be_visible(timeout=2_000)
            break
        except AssertionError:
            continue
    expect(required).to_be_visible()
    expect(dialog.locator("figure.ls-card")).to_have_count(0)
    # One click after typing is enough: the form submits the prompt with the click.
    prompt.press_sequentially(PROMPT)
    expect(submit).to_be_enabled()
    submit.click()

    # Four images in the dialog, actually loaded.
    dialog_images = dialog.locator("figure.ls-card img")
    expect(dialog_images).to_have_count(4, timeout=GENERATION_TIMEOUT)
    page.wait_for_function(
        "() => [...document.querySelectorAll('[role=dialog] figure.ls-card img')]"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )
    expect(dialog.get_by_text("7 of 8 generations remaining today")).to_be_visible()
    page.mouse.move(0, 0)
    page.screenshot(path=SCREENSHOTS / "journey-2-dialog-results.png")

    # Generate Again: results cleared, prompt kept and editable.
    dialog.get_by_role("button", name="Generate Again").click()
    expect(dialog_images).to_have_count(0)
    expect(prompt).to_have_value(PROMPT)
    expect(prompt).to_be_editable()
    expect(submit).to_be_enabled()

    # Close the dialog: the page's own gallery shows the new batch.
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)
    expect(page.get_by_text("4 images by everyone", exact=False)).to_be_visible()
    cards = page.locator("figure.ls-card")
    expect(cards.locator("img")).to_have_count(4)
    expect(cards.locator(".ls-caption").first).to_have_text(PROMPT)
    page.wait_for_function(
        "() => [...document.querySelectorAll('figure.ls-card img')]"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )
    expect(page.get_by_test_id("stException")).to_have_count(0)

    # Stored: 4 rows with the raw prompt (the trigger word is not part of it).
    assert _generated_prompts(app_server, LORA_ID) == [PROMPT] * 4

    # The full-size link serves the JPEG.
    href = cards.locator("a").first.evaluate("link => link.href")
    assert href.startswith(f"{app_server.url}/{app_server.media_url_prefix}/"), href
    response = page.request.get(href)
    assert response.ok, f"{href}: HTTP {response.status}"
    assert response.headers["content-type"].split(";")[0].strip() == "image/jpeg"
    assert response.body()[:3] == b"\xff\xd8\xff"

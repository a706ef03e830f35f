"""Stacked LoRAs and a prompt template in a real browser: an admin gives wtrclr a template
and a recommended scale, generates with neonnoir stacked (1400 px); the images show on
neonnoir's page marked with wtrclr; History's "Used LoRA" filter finds the batch, and
Remix from neonnoir's page keeps both LoRAs (390 px)."""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import RunningApp, summary_value
from tests.browser.test_arena import sign_in
from tests.browser.test_journeys import GENERATION_TIMEOUT, snap
from tests.browser.test_scorecard import app_with_admin  # noqa: F401 - ann is an admin
from tests.support.fakefal import FakeFal
from tests.support.fakeoidc import FakeOidcProvider


def idle(page: Page) -> None:
    """The app has finished its run: a widget clicked now is not redrawn under the mouse."""
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=15_000)


def pick(page: Page, box: Locator, option: str) -> None:
    """Choose `option` in a selectbox one types into, as a person does: type, then click
    it. Typed again if the box was redrawn under the keys (an expander still opening)."""
    for _ in range(5):
        box.click()
        box.press_sequentially(option[:4], delay=50)
        choice = page.get_by_role("option", name=option)
        try:
            expect(choice).to_be_visible(timeout=2_000)
            choice.click(timeout=3_000)
        except (AssertionError, PlaywrightError):
            box.fill("")
            continue
        return
    raise AssertionError(f"{option} was never offered")


def batches_using(app: RunningApp, lora_id: str) -> int:
    """Batches made with the LoRA, first or stacked, as the app's database holds them."""
    with closing(sqlite3.connect(app.db_path)) as connection:
        [(count,)] = connection.execute(
            "SELECT count(*) FROM generation_batches WHERE lora_training_id = ? OR id IN "
            "(SELECT batch_id FROM batch_loras WHERE lora_training_id = ?)",
            (lora_id, lora_id),
        ).fetchall()
    return count


def stacked_image(app: RunningApp) -> str:
    with closing(sqlite3.connect(app.db_path)) as connection:
        [(image_id,)] = connection.execute(
            "SELECT id FROM generated_images WHERE batch_id IN (SELECT batch_id FROM "
            "batch_loras) ORDER BY created_at LIMIT 1"
        ).fetchall()
    return image_id


def test_two_loras_at_two_scales_with_a_template_show_on_both_pages_and_remix_keeps_them(
    page: Page,
    app_with_admin: RunningApp,  # noqa: F811
    oidc_provider: FakeOidcProvider,
    _fake_fal_server: FakeFal,
) -> None:
    app, fal = app_with_admin, _fake_fal_server
    page.set_viewport_size({"width": 1400, "height": 900})
    sign_in(page, app, oidc_provider, "ann@example.com")
    page.goto(f"{app.url}/lora?id=demo-watercolor")
    page.get_by_role("button", name="Scorecard").click()
    editor = page.get_by_test_id("stPopoverBody")
    editor.get_by_role("textbox", name="Prompt template").fill("{prompt}, {trigger} style")
    editor.get_by_role("spinbutton", name="Recommended scale").fill("0.9")
    editor.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Prompt template: {prompt}, {trigger} style")).to_be_visible(
        timeout=15_000
    )

    page.locator(".st-key-open_generate button").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text('Your prompt will include: "..., wtrclr style"')).to_be_visible()
    expect(dialog.get_by_role("slider", name="LoRA scale")).to_have_value("0.9")
    prompt = dialog.get_by_role("textbox", name="Prompt")
    expect(prompt).to_be_focused()  # the dialog puts the cursor there, as people type first
    prompt.fill("a harbour at dawn")
    dialog.get_by_text("Stack LoRAs").click()
    pick(page, dialog.get_by_role("combobox", name="Added LoRA 1"), "neonnoir")
    dialog.get_by_role("spinbutton", name="Scale of added LoRA 1").fill("0.6")
    submitted = len(fal.submissions)
    dialog.get_by_role("button", name="Generate 4 Images").click()
    expect(dialog.locator("figure.ls-result img")).to_have_count(4, timeout=GENERATION_TIMEOUT)

    [body] = [s.body for s in fal.submissions[submitted:]]
    assert [lora["scale"] for lora in body["loras"]] == [0.9, 0.6]
    assert body["prompt"] == "a harbour at dawn, wtrclr style in the style of neonnoir"
    dialog.get_by_role("combobox", name="Added LoRA 1").scroll_into_view_if_needed()
    snap(page, "stack-1-dialog-1400")
    dialog.get_by_role("button", name="Close").click()

    page.goto(f"{app.url}/lora?id=demo-neon-noir")
    expect(page.get_by_text(re.compile(r"with wtrclr at 0\.9"))).to_be_visible(timeout=15_000)
    expect(page.get_by_text("a harbour at dawn", exact=True)).to_be_visible()
    idle(page)
    snap(page, "stack-2-added-loras-page-1400")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{app.url}/history?used=neonnoir")
    batches = summary_value(page, "Batches")
    expect(batches).to_have_text(str(batches_using(app, "demo-neon-noir")), timeout=15_000)
    expect(page).to_have_url(re.compile(r"used=neonnoir"))
    snap(page, "stack-3-history-390")

    page.goto(f"{app.url}/lora?id=demo-neon-noir&image={stacked_image(app)}")
    details = page.get_by_role("dialog")
    expect(details.get_by_text("Its LoRA: wtrclr")).to_be_visible(timeout=15_000)
    details.get_by_role("button", name="Remix").click()
    expect(page).to_have_url(re.compile(r"id=demo-watercolor"), timeout=15_000)
    remixed = page.get_by_role("dialog")
    expect(remixed.get_by_role("textbox", name="Prompt")).to_have_value("a harbour at dawn")
    expect(remixed.get_by_role("combobox", name="Added LoRA 1")).to_have_value("neonnoir")
    expect(remixed.get_by_role("spinbutton", name="Scale of added LoRA 1")).to_have_value("0.60")
    remixed.get_by_role("combobox", name="Added LoRA 1").scroll_into_view_if_needed()
    snap(page, "stack-4-remix-390")
    expect(page.get_by_test_id("stException")).to_have_count(0)

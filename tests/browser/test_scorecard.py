"""A LoRA's scorecard in a real browser: an admin sets a verdict, a tag and a recommended
scale on a LoRA's page (1400 px); the Generate dialog starts at that scale, and the gallery's
filter in the link finds the LoRA (390 px)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import RunningApp, running_app
from tests.browser.test_arena import sign_in
from tests.browser.test_journeys import snap
from tests.support.fakefal import FakeFal
from tests.support.fakeoidc import FakeOidcProvider


@pytest.fixture
def app_with_admin(
    tmp_path: Path, _fake_fal_server: FakeFal, oidc_provider: FakeOidcProvider
) -> Iterator[RunningApp]:
    """Signed-in users through the local provider; ann is an admin."""
    with running_app(
        tmp_path,
        secrets_toml=lambda url: (
            'ADMIN_USERS = "ann@example.com"\n' + oidc_provider.secrets_toml(url)
        ),
    ) as app:
        yield app


def test_a_verdict_tag_and_scale_set_on_a_loras_page_steer_the_dialog_and_the_gallery(
    page: Page, app_with_admin: RunningApp, oidc_provider: FakeOidcProvider
) -> None:
    page.set_viewport_size({"width": 1400, "height": 900})
    sign_in(page, app_with_admin, oidc_provider, "ann@example.com")
    page.goto(f"{app_with_admin.url}/lora?id=demo-watercolor")
    page.get_by_role("button", name="Scorecard").click()
    editor = page.get_by_test_id("stPopoverBody")
    editor.get_by_role("combobox", name="Verdict").click()
    page.get_by_role("option", name="Recommended", exact=True).click()
    editor.get_by_role("textbox", name="Tags").fill("Style, watercolor")
    editor.get_by_role("spinbutton", name="Recommended scale").fill("0.8")
    editor.get_by_role("textbox", name="Notes").fill("<b>soft</b> edges at 0.8")
    editor.get_by_role("button", name="Save").click()

    expect(page.get_by_text("Recommended scale 0.8")).to_be_visible(timeout=15_000)
    expect(page.get_by_text(re.compile(r"Recommended.*set by ann"))).to_be_visible()
    expect(page.get_by_test_id("stText").get_by_text("<b>soft</b> edges at 0.8")).to_be_visible()
    snap(page, "scorecard-1-lora-1400")

    page.locator(".st-key-open_generate button").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("slider", name="LoRA scale")).to_have_value("0.8")
    dialog.get_by_role("button", name="Close").click()

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{app_with_admin.url}/?verdict=recommended&tag=style")
    cards = page.locator(".ls-lora-card")
    expect(cards).to_have_count(1, timeout=15_000)
    expect(cards.get_by_role("heading", name="wtrclr")).to_be_visible()
    expect(page).to_have_url(re.compile(r"verdict=recommended"))
    snap(page, "scorecard-2-gallery-390")
    expect(page.get_by_test_id("stException")).to_have_count(0)

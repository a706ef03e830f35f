"""A full sign-in in a real browser, against a local OpenID Connect provider."""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing

from playwright.sync_api import Page, expect

from tests.browser.conftest import SCREENSHOTS, RunningApp
from tests.support.fakeoidc import FakeOidcProvider


def test_sign_in_generate_as_yourself_and_sign_out(
    page: Page, app_with_login: RunningApp, oidc_provider: FakeOidcProvider
) -> None:
    oidc_provider.user = {"sub": "u-42", "email": "ann@example.com", "name": "Ann"}
    sidebar = page.get_by_test_id("stSidebar")

    # Signed out: browsing works, generating asks for a sign-in.
    page.goto(f"{app_with_login.url}/lora?id=demo-clay" + "mation")
    expect(page.get_by_role("button", name="Sign in to generate")).to_be_visible()
    expect(page.locator(".st-key-open_generate")).to_have_count(0)

    sidebar.get_by_role("button", name="Sign in").click()
    expect(sidebar.get_by_text("ann@example.com")).to_be_visible(timeout=15_000)
    expect(sidebar.get_by_text("8 of 8 generations remaining today")).to_be_visible()

    page.goto(f"{app_with_login.url}/lora?id=demo-claymation")
    page.locator(".st-key-open_generate button").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("textbox", name="Prompt").fill("signed in and generating")
    dialog.get_by_role("button", name="Generate 4 Images").click()
    expect(dialog.locator("figure.ls-result img")).to_have_count(4, timeout=20_000)
    expect(dialog.get_by_text("7 of 8 generations remaining today")).to_be_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "login-1-generated-as-ann.png")
    with closing(sqlite3.connect(app_with_login.db_path)) as connection:
        owners = connection.execute(
            "SELECT DISTINCT wallet_address FROM generated_images WHERE prompt = ?",
            ("signed in and generating",),
        ).fetchall()
    assert owners == [("ann@example.com",)]

    dialog.get_by_role("button", name="Close").click()
    sidebar.get_by_role("button", name="Sign out").click()
    expect(sidebar.get_by_role("button", name="Sign in")).to_be_visible(timeout=15_000)
    expect(sidebar.get_by_text("ann@example.com")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"^" + re.escape(app_with_login.url)))


def test_sign_in_to_generate_on_a_gallery_card_signs_in(
    page: Page, app_with_login: RunningApp, oidc_provider: FakeOidcProvider
) -> None:
    oidc_provider.user = {"sub": "u-7", "email": "bob@example.com", "name": "Bob"}
    page.goto(app_with_login.url)
    card = page.locator('.ls-lora-card[data-lora="demo-claymation"]')
    sign_in = card.get_by_role("link", name="Sign in to generate with clayfig")
    expect(sign_in).to_be_visible()
    expect(card.get_by_role("link", name=re.compile("^Generate"))).to_have_count(0)

    sign_in.click()

    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text("bob@example.com")).to_be_visible(timeout=15_000)
    expect(card.get_by_role("link", name="Generate with clayfig")).to_be_visible()

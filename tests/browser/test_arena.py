"""Evaluating LoRAs blind, in a real browser: a suite run on two LoRAs and the base model
becomes an arena, two signed-in users vote (one by keyboard, on a phone), and the
leaderboard ranks the arms with intervals. Nothing on a voter's page names an arm."""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import RunningApp
from tests.browser.test_journeys import GENERATION_TIMEOUT, all_loaded, snap
from tests.support.fakeoidc import FakeOidcProvider

# What would tell a voter which arm made an image.
ARMS = ("wtrclr", "neonnoir", "demo-watercolor", "demo-neon-noir", "no LoRA", "base model")


def sign_in(page: Page, app: RunningApp, provider: FakeOidcProvider, email: str) -> None:
    provider.user = {"sub": email, "email": email, "name": email.split("@")[0]}
    page.goto(app.url)
    sidebar = page.get_by_test_id("stSidebar")
    if page.viewport_size and page.viewport_size["width"] < 600:
        page.get_by_test_id("stExpandSidebarButton").click()
    sidebar.get_by_role("button", name="Sign in").click()
    expect(sidebar.get_by_text(email)).to_be_visible(timeout=15_000)
    if page.viewport_size and page.viewport_size["width"] < 600:
        page.get_by_test_id("stSidebarCollapseButton").click()  # as a phone user would


def run_starter_suite(page: Page, app: RunningApp) -> None:
    """From wtrclr's page, "Run a suite": the demo's starter "does the style hold?" (three
    prompts, one seed) on wtrclr and neonnoir with the base model: nine cells."""
    page.goto(f"{app.url}/lora?id=demo-watercolor")
    page.get_by_role("link", name="Run a suite").click()
    suite = page.get_by_test_id("stExpander").filter(has_text="does the style hold")
    expect(suite.get_by_role("button", name="Run the suite")).to_be_visible(timeout=15_000)
    suite.get_by_role("combobox", name="Run on").click()
    page.get_by_role("option", name="neonnoir").click()
    page.keyboard.press("Escape")
    expect(suite.get_by_text("9 images = 3 generations of your quota.")).to_be_visible()
    suite.get_by_role("button", name="Run the suite").click()
    grid = page.locator(".ls-sweep")
    expect(grid.locator("figure.ls-card img")).to_have_count(9, timeout=GENERATION_TIMEOUT)
    expect(page.get_by_role("heading", name=re.compile("does the style hold"))).to_be_visible()


def settled(page: Page) -> None:
    """The page's run has finished: a shortcut pressed while Streamlit still redraws the
    pair may reach the buttons it is replacing and be lost (Streamlit's own behaviour),
    so a person, like this test, waits for the new pair before voting."""
    expect(page.get_by_test_id("stApp")).to_have_attribute(
        "data-test-script-state", "notRunning", timeout=15_000
    )


def assert_blind(page: Page) -> None:
    """The page's whole DOM and every image address name no arm."""
    html = page.content()
    for arm in ARMS:
        assert arm not in html, arm
    sources = page.locator("[data-testid='stMain'] img").evaluate_all(
        "images => images.map(image => image.src + ' ' + image.alt)"
    )
    assert len(sources) == 2
    for source in sources:
        assert "/media/" in source and not any(arm in source for arm in ARMS)


def test_a_suite_run_becomes_an_arena_two_users_vote_blind_and_the_leaderboard_ranks(
    page: Page, browser: Browser, app_with_login: RunningApp, oidc_provider: FakeOidcProvider
) -> None:
    page.set_viewport_size({"width": 1400, "height": 900})
    sign_in(page, app_with_login, oidc_provider, "ann@example.com")
    run_starter_suite(page, app_with_login)
    page.get_by_role("button", name="Judge blind: make an arena").click()
    expect(page).to_have_url(re.compile(r"/arena\?id=\w{32}$"), timeout=15_000)
    arena_url = page.url

    # Ann votes with the mouse: nine pairs (three arms, three prompts).
    expect(page.get_by_text("Pair 1 of 9")).to_be_visible()
    all_loaded(page, "[data-testid='stMain'] img")
    assert_blind(page)
    buttons = page.locator(".st-key-arena_actions")
    box = buttons.bounding_box()
    assert box and box["y"] + box["height"] <= 900  # the votes on the first screen
    snap(page, "arena-1-pair-1400")
    for number in range(9):
        expect(page.get_by_text(f"Pair {number + 1} of 9")).to_be_visible()
        page.get_by_role("button", name="Left is better").click()
        expect(page.get_by_text("Your vote counted (left better)")).to_be_visible()
    expect(page.get_by_text("You have voted on every pair of this arena")).to_be_visible()

    # Bob, on a phone, votes by keyboard only.
    phone = browser.new_context(
        base_url=app_with_login.url, viewport={"width": 390, "height": 844}
    ).new_page()
    sign_in(phone, app_with_login, oidc_provider, "bob@example.com")
    phone.goto(arena_url)
    expect(phone.get_by_text("Pair 1 of 9")).to_be_visible()
    all_loaded(phone, "[data-testid='stMain'] img")
    assert_blind(phone)
    left, right = (
        phone.locator(f".st-key-arena_{side} img").bounding_box() for side in ("left", "right")
    )
    assert left["y"] == right["y"] and left["x"] < right["x"]  # side by side on a phone
    snap(phone, "arena-2-pair-390")
    keys = ("ArrowLeft", "ArrowRight", "t", "b", "ArrowRight", "ArrowLeft", "t", "ArrowLeft", "b")
    for number, key in enumerate(keys):
        expect(phone.get_by_text(f"Pair {number + 1} of 9")).to_be_visible()
        settled(phone)
        phone.keyboard.press(key)
        expect(phone.get_by_text(re.compile("Your vote counted"))).to_be_visible()
    expect(phone.get_by_text("You have voted on every pair of this arena")).to_be_visible()
    phone.get_by_role("link", name="See the leaderboard").click()
    expect(phone.get_by_test_id("stDataFrame").first.locator("canvas").first).to_be_visible(
        timeout=15_000
    )
    phone.wait_for_timeout(500)  # the grid draws its cells after it appears
    snap(phone, "arena-3-leaderboard-390")

    with closing(sqlite3.connect(app_with_login.db_path)) as connection:
        votes = connection.execute(
            "SELECT wallet_address, choice, count(*) FROM arena_votes "
            "GROUP BY wallet_address, choice ORDER BY wallet_address, choice"
        ).fetchall()
    assert sum(count for user, _, count in votes if user == "ann@example.com") == 9
    assert sum(count for user, _, count in votes if user == "bob@example.com") == 9
    assert ("bob@example.com", "tie", 2) in votes and ("bob@example.com", "both_bad", 2) in votes

    page.get_by_role("link", name="See the leaderboard").click()
    expect(page.get_by_role("heading", name="Leaderboard")).to_be_visible()
    figures = page.locator(".st-key-board_figures")
    expect(figures.get_by_text("18", exact=True)).to_be_visible()  # votes
    expect(figures.get_by_text("2", exact=True).first).to_be_visible()  # voters
    table = page.get_by_test_id("stDataFrame").first
    expect(table).to_be_visible()
    snap(page, "arena-4-leaderboard-1400")
    expect(page.get_by_test_id("stException")).to_have_count(0)
    expect(phone.get_by_test_id("stException")).to_have_count(0)

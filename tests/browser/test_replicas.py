"""Several replicas behind nginx, as `deploy/` runs them: sqld, an S3 server, two app
replicas started at once and nginx in front, all on loopback (`deploy.stack.Stack`), driven
through the proxy in Chromium against the fake fal.

The tests run in order on one stack: a batch made through one replica is seen through the
other; one killed mid-generation has its batch finished by the other within 30 s while its
users carry on there; restarted, it serves again; the quota is one for all replicas.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import Engine, text

from deploy.render_nginx import route
from deploy.stack import Stack
from lora_core.data import schema
from lora_core.data.db import create_db_engine
from tests.conftest import TEST_FAL_KEY
from tests.support.fakefal import FakeFal

LORA = "demo-neon-noir"
LIMIT = 3
ROUTE = "lorastudio_route"
REPLICA_HEADER = "x-lora-studio-replica"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, _fake_fal_server: FakeFal) -> Iterator[Stack]:
    stack = Stack(
        tmp_path_factory.mktemp("stack"),
        replicas=2,
        env={
            "FAL_KEY": TEST_FAL_KEY,
            "ALLOW_PRIVATE_WEIGHTS_URLS": "true",  # the demo's weights are on the fake fal
            "GENERATION_LIMIT": str(LIMIT),
        },
    )
    try:
        stack.start()
        stack.seed_demo()
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def database(stack: Stack) -> Iterator[Engine]:
    engine = create_db_engine(stack.database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def users(stack: Stack, browser: Browser) -> Iterator[tuple[Page, Page]]:
    """Two browsers: one kept on replica 0, one on replica 1."""
    contexts: list[BrowserContext] = []
    pages = []
    for index in (0, 1):
        context = browser.new_context(
            base_url=stack.url, viewport={"width": 1400, "height": 900}, ignore_https_errors=True
        )
        context.add_cookies([{"name": ROUTE, "value": route(index), "url": stack.url}])
        contexts.append(context)
        pages.append(context.new_page())
    yield pages[0], pages[1]
    for context in contexts:
        context.close()


def served_by(stack: Stack, page: Page) -> str:
    """The replica nginx sends this browser's requests to (by its route cookie, as it is now)."""
    route = next(cookie["value"] for cookie in page.context.cookies() if cookie["name"] == ROUTE)
    return httpx.get(f"{stack.url}/", cookies={ROUTE: route}).headers[REPLICA_HEADER]


def open_dialog(page: Page) -> None:
    page.goto(f"/lora?id={LORA}")
    page.locator(".st-key-open_generate button").click()
    expect(page.get_by_role("dialog").get_by_text("generations remaining today")).to_be_visible()


def submit(page: Page, prompt: str) -> None:
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("textbox", name="Prompt").fill(prompt)
    dialog.get_by_role("button", name="Generate 4 Images").click()


def batch_on_page(page: Page, prompt: str):
    return page.locator(".ls-batch").filter(has_text=prompt)


def shows_batch(page: Page, prompt: str) -> bool:
    """Whether the LoRA's page, opened afresh, lists the batch (given 3 s to render)."""
    page.goto(f"/lora?id={LORA}")
    expect(page.get_by_role("heading", name="neonnoir")).to_be_visible()
    try:
        expect(batch_on_page(page, prompt)).to_have_count(1, timeout=3_000)
    except AssertionError:
        return False
    return True


def batches(database: Engine, prompt: str) -> list[tuple[str, str | None, int | None]]:
    with database.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                text(
                    "SELECT status, fal_request_id, images_returned FROM generation_batches "
                    "WHERE prompt = :prompt"
                ),
                {"prompt": prompt},
            )
        ]


def test_1_replicas_started_together_migrated_once_and_both_serve(stack, database, users):
    assert schema.current(database) == schema.head()
    with database.connect() as connection:
        locks = connection.execute(text("SELECT count(*) FROM lora_studio_schema_lock"))
        assert locks.scalar() == 0
    for index, page in enumerate(users):
        page.goto("/")
        # A replica's first page imports pandas, Altair and the rest: seconds on a busy CI.
        expect(page.get_by_role("heading", name="LoRA Gallery")).to_be_visible(timeout=20_000)
        expect(page.get_by_role("heading", name="neonnoir", exact=True)).to_be_visible()
        assert served_by(stack, page) == stack.nodes[index].address
    for node in stack.nodes:
        assert "Traceback" not in node.log.read_text()


def test_2_a_batch_made_through_one_replica_is_seen_through_the_other(users, fake_fal):
    first, second = users
    open_dialog(first)
    submit(first, "a lighthouse made on replica zero")
    dialog_images = first.get_by_role("dialog").locator("figure.ls-result img")
    expect(dialog_images).to_have_count(4, timeout=20_000)

    second.goto(f"/lora?id={LORA}")
    seen = batch_on_page(second, "a lighthouse made on replica zero")
    expect(seen.locator("figure.ls-card img")).to_have_count(4)
    # Served from the shared bucket, so every replica's users load the same files.
    assert "/lora-studio/" in (seen.locator("figure.ls-card img").first.get_attribute("src") or "")
    assert len(fake_fal.submissions) == 1


def test_3_a_replica_killed_mid_generation_has_its_batch_finished_by_the_other(
    stack, database, users, fake_fal
):
    first, second = users
    prompt = "a lighthouse whose replica dies"
    fake_fal.script.processing_seconds = 6
    fake_fal.script.queue_positions = []
    open_dialog(first)
    submit(first, prompt)
    deadline = time.monotonic() + 20
    while not any(request_id for _status, request_id, _n in batches(database, prompt)):
        assert time.monotonic() < deadline, "the generation never reached fal"
        time.sleep(0.1)

    stack.kill(0)
    killed_at = time.monotonic()

    # Users of the other replica see the batch finished without anyone on the dead one.
    while not shows_batch(second, prompt):
        assert time.monotonic() - killed_at < 30, "the batch was not finished within 30 s"
    expect(batch_on_page(second, prompt).locator("figure.ls-card img")).to_have_count(4)
    finished_after = time.monotonic() - killed_at
    print(f"the dead replica's batch was finished {finished_after:.1f} s after the kill")
    assert finished_after < 30
    [(status, request_id, images)] = batches(database, prompt)
    assert (status, images) == ("succeeded", 4) and request_id
    assert len(fake_fal.submissions) == 1  # finished from fal's answer, never submitted again

    # The first user's browser reconnects through nginx to the live replica and goes on.
    expect(first.get_by_role("dialog")).to_have_count(0, timeout=30_000)
    first.locator(".st-key-open_generate button").click()
    expect(
        first.get_by_role("dialog").get_by_text(f"1 of {LIMIT} generations remaining today")
    ).to_be_visible(timeout=15_000)
    first.keyboard.press("Escape")
    assert served_by(stack, first) == stack.nodes[1].address  # its cookie followed: it stays there


def test_4_a_restarted_replica_takes_new_users_while_moved_ones_stay(stack, users, browser):
    first, _second = users
    stack.restart(0)

    # The first user's session lives on replica 1 since the kill, and their cookie says so.
    first.goto(f"/lora?id={LORA}")
    expect(first.get_by_role("heading", name="neonnoir")).to_be_visible()
    expect(batch_on_page(first, "a lighthouse whose replica dies")).to_have_count(1)
    assert served_by(stack, first) == stack.nodes[1].address

    # New visitors are spread over both again: the restarted replica serves its share.
    newcomers = [httpx.get(f"{stack.url}/_stcore/health") for _ in range(4)]
    assert sorted(answer.headers[REPLICA_HEADER] for answer in newcomers) == sorted(
        [stack.nodes[0].address, stack.nodes[1].address] * 2
    )
    context = browser.new_context(base_url=stack.url, viewport={"width": 1400, "height": 900})
    context.add_cookies([{"name": ROUTE, "value": route(0), "url": stack.url}])
    newcomer = context.new_page()
    newcomer.goto("/")
    expect(newcomer.get_by_role("heading", name="neonnoir", exact=True)).to_be_visible()
    assert served_by(stack, newcomer) == stack.nodes[0].address
    context.close()


def test_5_two_users_on_two_replicas_race_for_the_last_slot_and_one_wins(database, users, fake_fal):
    first, second = users
    fake_fal.script.processing_seconds = 1.5
    open_dialog(first)
    open_dialog(second)
    for page in users:
        expect(
            page.get_by_role("dialog").get_by_text(f"1 of {LIMIT} generations remaining today")
        ).to_be_visible()

    submit(first, "the last slot, from replica zero")
    submit(second, "the last slot, from replica one")

    # One dialog shows the new images; the winner's may say the quota is spent first (it
    # is, once the slot is taken), so the images decide which one won.
    wins = [page.get_by_role("dialog").locator("figure.ls-result img") for page in users]
    deadline = time.monotonic() + 20
    while not any(won.count() for won in wins):
        assert time.monotonic() < deadline, "no dialog showed the new images"
        first.wait_for_timeout(100)
    loser = users[0 if not wins[0].count() else 1]
    refused = re.compile(f"You've used all {LIMIT} generations today")
    expect(loser.get_by_role("dialog").get_by_text(refused)).to_be_visible(timeout=20_000)
    expect(loser.get_by_role("dialog").locator("figure.ls-result img")).to_have_count(0)
    made = batches(database, "the last slot, from replica zero") + batches(
        database, "the last slot, from replica one"
    )
    assert [status for status, _id, _n in made if status == "succeeded"] == ["succeeded"]
    assert len(fake_fal.submissions) == 1

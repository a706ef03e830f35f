"""Every user journey in a real browser, against the running app and the fake fal server.

Each test starts from the demo data with no generation by the guest (`fresh_app`), and
leaves a screenshot in test-output/screenshots/ (see conftest.py).
"""

from __future__ import annotations

import io
import json
import re
import sqlite3
import zipfile
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import SCREENSHOTS, RunningApp, summary_value
from tests.support.fakefal import FakeFal, JobFailure, model_error

DEMO_TRIGGER_WORDS = ("wtrclr", "neonnoir", "clayfig", "blprnt", "inktrain")
GENERATION_TIMEOUT = 20_000  # ms


def stored_prompts(app: RunningApp, lora_id: str) -> list[str]:
    with closing(sqlite3.connect(app.db_path)) as connection:
        rows = connection.execute(
            "SELECT prompt FROM generated_images WHERE lora_training_id = ? AND "
            "wallet_address = 'guest'",
            (lora_id,),
        ).fetchall()
    return [row[0] for row in rows]


def batch_count(app: RunningApp) -> int:
    with closing(sqlite3.connect(app.db_path)) as connection:
        return connection.execute("SELECT count(*) FROM generation_batches").fetchone()[0]


def add_earlier_batches(app: RunningApp, count: int) -> None:
    """`count` batches the guest generated in the last hours (slots already used today)."""
    now = datetime.now(UTC)
    with closing(sqlite3.connect(app.db_path)) as connection, connection:
        for hour in range(1, count + 1):
            created = (now - timedelta(hours=hour)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            connection.execute(
                "INSERT INTO generation_batches (id, lora_training_id, wallet_address, prompt, "
                "status, created_at) VALUES (?, 'demo-neon-noir', 'guest', 'earlier', "
                "'succeeded', ?)",
                (f"earlier-{hour}", created),
            )


def snap(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.mouse.move(0, 0)
    page.screenshot(path=SCREENSHOTS / f"{name}.png")


def all_loaded(page: Page, selector: str, *, scroll: bool = True) -> None:
    """Every image matching `selector` has loaded; lazy ones are scrolled into view as the
    page polls, since Streamlit may replace the elements while it renders. `scroll=False`
    for images that load at once, where the page must stay where the user left it."""
    page.wait_for_function(
        """([selector, scroll]) => {
            const images = [...document.querySelectorAll(selector)];
            const waiting = images.filter(img => !(img.complete && img.naturalWidth > 0));
            if (waiting.length && scroll) waiting[0].scrollIntoView({block: "center"});
            return images.length > 0 && waiting.length === 0;
        }""",
        arg=[selector, scroll],
    )


def open_generate_dialog(page: Page, lora_id: str) -> Locator:
    page.goto(f"/lora?id={lora_id}")
    page.locator(".st-key-open_generate button").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("generations remaining today")).to_be_visible()
    return dialog


def open_details(page: Page, card: Locator) -> Locator:
    """Click an image's card; its details open over the page. Clicked again if the first
    click landed while Streamlit was still replacing the card (as a person would)."""
    expect(card.locator("img")).to_be_visible()
    view = page.get_by_role("dialog").locator(".st-key-image_view")
    for _attempt in range(3):
        card.click()
        try:
            expect(view).to_be_visible(timeout=3_000)
            break
        except AssertionError:
            continue
    expect(view).to_be_visible()
    return view


def first_image_details(page: Page, lora_id: str, title: str) -> tuple[Locator, str]:
    """A LoRA page with its first image's details open, and the seed they show."""
    page.goto(f"/lora?id={lora_id}")
    expect(page.get_by_role("heading", name=title)).to_be_visible(timeout=20_000)
    view = open_details(page, page.locator("figure.ls-card a.ls-open").first)
    found = re.search(r"Seed (\d+)", view.inner_text())
    assert found, view.inner_text()
    return view, found.group(1)


def submit_prompt(dialog: Locator, prompt: str) -> None:
    box = dialog.get_by_role("textbox", name="Prompt")
    box.fill(prompt)
    dialog.get_by_role("button", name="Generate 4 Images").click()


def test_1_generate_from_the_gallery_and_see_the_new_images_first(
    page: Page, fresh_app: RunningApp, fake_fal: FakeFal
) -> None:
    fake_fal.script.processing_seconds = 1.0  # long enough to see the progress
    prompt_text = "a paper crane folded from an old city map"

    page.goto("/")
    expect(page.get_by_role("heading", name="LoRA Gallery")).to_be_visible(timeout=20_000)
    for trigger_word in DEMO_TRIGGER_WORDS:
        expect(page.get_by_role("heading", name=trigger_word, exact=True)).to_be_visible()
    all_loaded(page, "figure.ls-card img")
    snap(page, "journey-1a-gallery")

    page.get_by_role("link", name="Generate with wtrclr").click()
    expect(page).to_have_url(re.compile(r"/lora\?id=demo-watercolor$"))
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("Generate Images", exact=True)).to_be_visible()
    expect(dialog.get_by_text('"... in the style of wtrclr"')).to_be_visible()
    expect(dialog.get_by_text("8 of 8 generations remaining today")).to_be_visible()

    # An empty prompt is refused in the browser, with a message.
    submit = dialog.get_by_role("button", name="Generate 4 Images")
    required = dialog.get_by_text("This field is required.")
    for _attempt in range(3):  # the dialog may still be re-rendering after the page switch
        submit.click()
        try:
            expect(required).to_be_visible(timeout=2_000)
            break
        except AssertionError:
            continue
    expect(required).to_be_visible()

    # One click after typing is enough: the form submits the prompt with the click.
    dialog.get_by_role("textbox", name="Prompt").press_sequentially(prompt_text)
    submit.click()
    expect(dialog.get_by_text("Generating…")).to_be_visible()
    results = dialog.locator("figure.ls-result img")
    expect(results).to_have_count(4, timeout=GENERATION_TIMEOUT)
    all_loaded(page, "[role=dialog] figure.ls-result img", scroll=False)  # as shown
    boxes = [results.nth(index).bounding_box() for index in range(4)]
    assert boxes[0]["y"] == boxes[1]["y"] < boxes[2]["y"] == boxes[3]["y"]  # 2x2
    assert boxes[0]["x"] == boxes[2]["x"] < boxes[1]["x"] == boxes[3]["x"]
    expect(dialog.get_by_text("7 of 8 generations remaining today")).to_be_visible()
    # The button that makes the next batch stays where it was, above the results.
    assert submit.bounding_box()["y"] < boxes[0]["y"]
    assert 0 < submit.bounding_box()["y"] < page.viewport_size["height"]
    expect(dialog.get_by_role("textbox", name="Prompt")).to_have_value(prompt_text)
    snap(page, "journey-1b-dialog-results")

    dialog.get_by_role("button", name="Close").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    first_batch = page.locator(".ls-batch").first
    expect(first_batch.get_by_text(prompt_text)).to_be_visible()
    expect(first_batch.locator("figure.ls-card img")).to_have_count(4)
    first_src = first_batch.locator("figure.ls-card img").first.get_attribute("src") or ""
    # The newest batch first, served from our durable copy of fal's image: the grid loads
    # its thumbnail, the link opens the full image.
    assert first_src.startswith(f"{fresh_app.media_url_prefix}/fal/"), first_src
    assert first_src.endswith(".thumb.webp"), first_src
    loaded = page.evaluate(
        "src => [...document.images].filter(i => i.src.endsWith(src))"
        ".map(i => [i.complete, i.naturalWidth])",
        first_src,
    )
    assert loaded and all(done and width > 0 for done, width in loaded), loaded
    expect(page.get_by_test_id("stException")).to_have_count(0)
    assert stored_prompts(fresh_app, "demo-watercolor") == [prompt_text] * 4
    [submitted] = fake_fal.submissions  # the plan's settings, as the closed Advanced held
    assert (submitted.body["loras"][0]["scale"], submitted.body["num_inference_steps"]) == (1.5, 28)
    assert (submitted.body["guidance_scale"], submitted.body["image_size"]) == (3.5, "square_hd")


def test_2_the_quota_counts_down_and_stops_at_the_limit(page: Page, fresh_app: RunningApp) -> None:
    # Six batches already today: two left.
    add_earlier_batches(fresh_app, 6)

    dialog = open_generate_dialog(page, "demo-neon-noir")
    expect(dialog.get_by_text("2 of 8 generations remaining today")).to_be_visible()
    submit_prompt(dialog, "first of the last two")
    expect(dialog.get_by_text("1 of 8 generations remaining today")).to_be_visible(
        timeout=GENERATION_TIMEOUT
    )
    submit_prompt(dialog, "the very last one")
    expect(dialog.get_by_text("0 of 8 generations remaining today")).to_be_visible(
        timeout=GENERATION_TIMEOUT
    )

    expect(dialog.get_by_role("button", name="Generate 4 Images")).to_be_disabled()
    expect(dialog.get_by_text("You've used all 8 generations today.")).to_be_visible()
    expect(
        dialog.get_by_text(re.compile(r"next generation is available in 1[78] h"))
    ).to_be_visible()
    expect(page.get_by_test_id("stSidebar").get_by_text("0 of 8 generations")).to_be_visible()
    assert len(stored_prompts(fresh_app, "demo-neon-noir")) == 8

    # Closed, the page's Generate button is disabled and says why next to it.
    dialog.get_by_role("button", name="Close").click()
    expect(page.locator(".st-key-open_generate button")).to_be_disabled()
    expect(page.get_by_text("You've used all 8 generations today.")).to_be_visible()
    page.goto("/")
    expect(page.get_by_role("button", name="Generate with wtrclr")).to_be_disabled()


def test_3_a_shared_link_opens_the_lora_and_survives_a_reload(
    page: Page, fresh_app: RunningApp
) -> None:
    before = batch_count(fresh_app)
    page.goto("/lora?id=demo-neon-noir")
    expect(page.get_by_role("heading", name="neonnoir")).to_be_visible()
    page.reload()
    expect(page.get_by_role("heading", name="neonnoir")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/lora\?id=demo-neon-noir$"))

    page.goto("/lora?id=no-such-lora")
    expect(page.get_by_role("heading", name="LoRA not found")).to_be_visible()
    snap(page, "journey-3-not-found")
    page.get_by_role("link", name="Back to the gallery").click()
    expect(page.get_by_role("heading", name="LoRA Gallery")).to_be_visible()
    expect(page.get_by_test_id("stException")).to_have_count(0)
    assert batch_count(fresh_app) == before  # looking writes nothing


def test_3b_a_shared_link_is_the_first_visit_of_a_new_server(
    page: Page, cold_app: RunningApp
) -> None:
    page.goto(f"{cold_app.url}/lora?id=demo-neon-noir")

    expect(page.get_by_role("heading", name="neonnoir")).to_be_visible()
    expect(page).to_have_title("neonnoir · LoRA Studio")
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text("Signed in as")).to_be_visible()
    expect(sidebar.get_by_text("streamlit app")).to_have_count(0)


def test_4_an_image_opens_in_place_and_full_size_from_there(
    page: Page, fresh_app: RunningApp
) -> None:
    page.goto("/lora?id=demo-claymation")
    card = page.locator("figure.ls-card a.ls-open").first
    expect(card.locator("img")).to_be_visible()
    page.evaluate("window.lsSamePage = true")  # gone if the page reloads

    view = open_details(page, card)

    large = view.locator("figure.ls-large img")
    expect(large).to_be_visible()
    expect(page).to_have_url(re.compile(r"/lora\?id=demo-claymation&image=[\w-]+$"))
    assert page.evaluate("window.lsSamePage === true")  # no reload, no navigation
    with page.context.expect_page() as new_tab:
        large.click()
    tab = new_tab.value
    tab.wait_for_load_state()

    assert re.search(r"/app/static/media/.+\.jpg$", tab.url), tab.url
    with closing(sqlite3.connect(fresh_app.db_path)) as connection:
        stored = {
            row[0]
            for row in connection.execute(
                "SELECT image_url FROM generated_images WHERE lora_training_id = 'demo-claymation'"
            )
        }
    assert tab.url.removeprefix(f"{fresh_app.url}/") in stored  # the stored image itself
    response = page.request.get(tab.url)
    assert response.ok
    assert response.headers["content-type"].startswith("image/jpeg")
    assert response.body()[:3] == b"\xff\xd8\xff"


def test_4b_an_image_is_a_link_opened_by_keyboard_and_closed_by_back(
    page: Page, fresh_app: RunningApp
) -> None:
    page.goto("/lora?id=demo-claymation")
    links = page.locator(".ls-batch figure.ls-card a.ls-open")
    expect(links.first.locator("img")).to_be_visible()
    href = links.nth(1).get_attribute("href") or ""
    assert re.fullmatch(r"lora\?id=demo-claymation&image=[\w-]+", href), href  # a new tab's
    page.evaluate("window.lsSamePage = true")  # gone if the page reloads

    links.nth(1).focus()
    page.keyboard.press("Enter")

    view = page.get_by_role("dialog").locator(".st-key-image_view")
    expect(view.locator("figure.ls-large img")).to_be_visible()
    expect(page).to_have_url(re.compile(re.escape(href) + "$"))
    assert page.evaluate("window.lsSamePage === true")  # opened in place

    large = view.locator("figure.ls-large img")
    first_src = large.get_attribute("src") or ""
    sibling = view.locator("a.ls-open").first  # the rest of its batch, under its details
    other = sibling.get_attribute("href") or ""
    assert other != href
    sibling.click()
    expect(page).to_have_url(re.compile(re.escape(other) + "$"))
    expect(large).not_to_have_attribute("src", first_src)  # that image, large
    page.go_back()  # Back: the image before
    expect(page).to_have_url(re.compile(re.escape(href) + "$"))
    expect(large).to_have_attribute("src", first_src)

    page.go_back()  # the browser's Back: the page without the image, still no reload

    expect(view).to_have_count(0)
    expect(page).to_have_url(re.compile(r"/lora\?id=demo-claymation$"))
    expect(links.first.locator("img")).to_be_visible()
    assert page.evaluate("window.lsSamePage === true")


def test_4c_a_sweeps_cells_link_to_the_whole_sweep_opened_in_place(
    page: Page, fresh_app: RunningApp
) -> None:
    page.goto("/lora?id=demo-watercolor")
    link = page.get_by_role("link", name=re.compile("Open the whole sweep"))
    expect(link).to_have_count(1)  # one group for the sweep's six cells
    expect(page.locator(".ls-batch").filter(has=link)).to_contain_text("cells of an X/Y sweep")
    page.evaluate("window.lsSamePage = true")  # gone if the page reloads

    link.focus()
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(r"/lab\?sweep=\w+$"))
    expect(page.locator(".ls-sweep figure.ls-card img")).to_have_count(6)
    assert page.evaluate("window.lsSamePage === true")  # Streamlit's own page switch
    page.go_back()
    expect(page).to_have_url(re.compile(r"/lora\?id=demo-watercolor$"))
    expect(link).to_be_visible()


def test_5_a_fal_error_offers_a_retry_and_a_filtered_batch_is_explained(
    page: Page, fresh_app: RunningApp, fake_fal: FakeFal
) -> None:
    fake_fal.script.result_error = (500, "GPU on fire")
    dialog = open_generate_dialog(page, "demo-blueprint")
    submit_prompt(dialog, "a storm over the harbour")

    expect(dialog.get_by_text("fal could not generate images right now (HTTP 500)")).to_be_visible(
        timeout=GENERATION_TIMEOUT
    )
    expect(dialog.get_by_text("8 of 8 generations remaining today")).to_be_visible()
    snap(page, "journey-5a-fal-error")
    assert stored_prompts(fresh_app, "demo-blueprint") == []

    fake_fal.script.result_error = None
    dialog.get_by_role("button", name="Try again").click()
    expect(dialog.locator("figure.ls-result img")).to_have_count(4, timeout=GENERATION_TIMEOUT)
    expect(dialog.get_by_text("fal could not generate")).to_have_count(0)

    fake_fal.script.nsfw = [False, True, True, False]  # fal sends all 4, two black
    submit_prompt(dialog, "something the filter dislikes")
    expect(dialog.locator("figure.ls-result img")).to_have_count(2, timeout=GENERATION_TIMEOUT)
    expect(
        dialog.get_by_text("2 of 4 images were held back by fal's safety checker; 2 are shown.")
    ).to_be_visible()
    snap(page, "journey-5b-safety-filter")
    assert len(stored_prompts(fresh_app, "demo-blueprint")) == 8  # flagged ones stored too


@pytest.mark.parametrize("width", [1400, 390])
def test_5c_every_failed_try_after_a_success_says_why_under_the_button(
    page: Page, fresh_app: RunningApp, fake_fal: FakeFal, width: int
) -> None:
    """Success, then each kind of error, then success: a failed try is said right under
    the button, and the earlier images are labelled as the previous batch."""
    page.set_viewport_size({"width": width, "height": 900 if width > 500 else 844})
    dialog = open_generate_dialog(page, "demo-blueprint")
    submit_prompt(dialog, "a storm over the harbour")
    expect(dialog.locator("figure.ls-result img")).to_have_count(4, timeout=GENERATION_TIMEOUT)
    expect(dialog.get_by_text("Previous batch")).to_have_count(0)

    submit_prompt(dialog, "x" * 501)  # refused before fal
    expect(
        dialog.get_by_text("The prompt is 501 characters long; the limit is 500.")
    ).to_be_visible()
    expect(dialog.get_by_text("Previous batch")).to_be_visible()
    expect(dialog.locator("figure.ls-result img")).to_have_count(4)
    snap(page, f"journey-5c-error-after-a-success-{width}")

    refusal = model_error(
        ["body", "prompt"], "The content was flagged.", "content_policy_violation"
    )
    fake_fal.script.job_failure = JobFailure([refusal], None, 422)
    submit_prompt(dialog, "something fal refuses")
    expect(
        dialog.get_by_text("fal's content checker refused this request (prompt).")
    ).to_be_visible(timeout=GENERATION_TIMEOUT)
    expect(dialog.get_by_text("Previous batch")).to_be_visible()
    expect(dialog.get_by_role("button", name="Try again")).to_have_count(0)
    snap(page, f"journey-5c-fal-refused-after-a-success-{width}")

    fake_fal.script.job_failure = None
    fake_fal.script.result_error = (500, "GPU on fire")
    submit_prompt(dialog, "a try fal fails")
    expect(dialog.get_by_text("fal could not generate images right now (HTTP 500)")).to_be_visible(
        timeout=GENERATION_TIMEOUT
    )
    expect(dialog.get_by_role("button", name="Try again")).to_be_visible()
    expect(dialog.get_by_text("Previous batch")).to_be_visible()

    fake_fal.script.result_error = None
    submit_prompt(dialog, "a calm sea at dawn")
    expect(dialog.get_by_text("Previous batch")).to_have_count(0, timeout=GENERATION_TIMEOUT)
    expect(dialog.locator("figure.ls-result img")).to_have_count(4, timeout=GENERATION_TIMEOUT)
    expect(dialog.get_by_text("fal could not generate")).to_have_count(0)
    assert len(fake_fal.submissions) == 4  # the too-long prompt never reached fal


def test_6_a_pending_lora_cannot_be_generated_from(page: Page, fresh_app: RunningApp) -> None:
    page.goto("/")
    card = page.locator('.ls-lora-card[data-lora="demo-in-training"]')
    expect(card.get_by_text("Pending")).to_be_visible()
    expect(card.get_by_role("button", name="Generate")).to_have_count(0)
    expect(card.get_by_role("link", name="Generate")).to_have_count(0)

    # The whole card is its link: once drawn (Streamlit draws a card's parts in turn).
    expect(card.get_by_role("link", name="Open inktrain")).to_be_attached()
    card.click()
    expect(page).to_have_url(re.compile(r"/lora\?id=demo-in-training$"))
    expect(page.get_by_role("heading", name="inktrain", level=1)).to_be_visible()
    expect(page.get_by_text("This LoRA is still training.")).to_be_visible()
    expect(page.locator(".st-key-open_generate")).to_have_count(0)
    expect(page.get_by_text("No images generated yet.", exact=True)).to_be_visible()
    with closing(sqlite3.connect(fresh_app.db_path)) as connection:
        assert connection.execute(
            "SELECT count(*) FROM generation_batches WHERE lora_training_id = 'demo-in-training'"
        ).fetchone() == (0,)


def test_7a_a_desktop_shows_four_across_and_focuses_the_prompt(
    page: Page, fresh_app: RunningApp
) -> None:
    page.set_viewport_size({"width": 1400, "height": 900})

    page.goto("/")
    all_loaded(page, ".ls-lora-card figure.ls-card img")
    cells = [
        page.locator(".ls-lora-card")
        .nth(index)
        .evaluate(
            "card => { const box = card.getBoundingClientRect();"
            " return [Math.round(box.y), Math.round(box.height)]; }"
        )
        for index in range(4)
    ]
    assert len({top for top, _height in cells}) == 1  # four LoRA cards in the first row
    assert len({height for _top, height in cells}) == 1  # even, with or without Generate

    page.goto("/lora?id=demo-watercolor")
    images = page.locator(".ls-batch figure.ls-card img")
    expect(images.nth(3)).to_be_visible(timeout=20_000)
    all_loaded(page, ".ls-batch figure.ls-card img")
    # Four across once drawn: Streamlit may still be placing a row when the fourth shows.
    page.wait_for_function(
        """selector => {
            const tops = [...document.querySelectorAll(selector)].slice(0, 4)
                .map(img => Math.round(img.getBoundingClientRect().y));
            return tops.length === 4 && new Set(tops).size === 1;
        }""",
        arg=".ls-batch figure.ls-card img",
        timeout=10_000,
    )
    assert images.nth(0).bounding_box()["y"] < 900  # pictures on the first screen

    page.locator(".st-key-open_generate button").click()
    expect(page.get_by_role("dialog").get_by_role("textbox", name="Prompt")).to_be_focused()


def test_7_the_app_works_on_a_phone(page: Page, fresh_app: RunningApp) -> None:
    page.set_viewport_size({"width": 390, "height": 844})

    page.goto("/")
    expect(page.get_by_role("heading", name="LoRA Gallery")).to_be_visible()
    all_loaded(page, "figure.ls-card img")
    snap(page, "journey-7a-phone-gallery")
    covers = page.locator(".ls-lora-card figure.ls-card img")
    first, second = covers.nth(0).bounding_box(), covers.nth(1).bounding_box()
    assert first["y"] == second["y"] and first["x"] < second["x"]  # two cards across
    assert first["y"] + first["height"] < 844  # a picture on the first screen
    page.goto("/lora?id=demo-watercolor")
    expect(page.get_by_role("heading", name="wtrclr")).to_be_visible()
    all_loaded(page, "figure.ls-card img")
    images = page.locator("figure.ls-card img")
    first, second = images.nth(0).bounding_box(), images.nth(1).bounding_box()
    assert first["y"] == second["y"] and first["width"] > 140  # two images a row
    assert first["y"] + first["height"] / 2 < 844  # images on the first screen
    snap(page, "journey-7b-phone-lora")

    view = open_details(page, page.locator("figure.ls-card a.ls-open").first)  # over the page
    large = view.locator("figure.ls-large img")
    expect(large).to_be_visible()
    assert large.bounding_box()["y"] < 300  # the image first, at the top of the dialog
    snap(page, "journey-7c-phone-details")

    page.goto("/history")
    table = page.locator("table.ls-table")
    expect(table).to_be_visible()
    assert table.bounding_box()["y"] < 2 * 844  # filters folded, figures compact
    region = page.get_by_role("region", name=re.compile("^Generations"))
    assert region.bounding_box()["width"] <= 390  # the table scrolls inside, not the page
    snap(page, "journey-7d-phone-history")

    page.goto("/compare?compare_loras=wtrclr&compare_loras=clayfig&compare_prompt=x")
    left, right = (
        page.locator(f".st-key-compare_{lora}") for lora in ("demo-watercolor", "demo-claymation")
    )
    for column in (left, right):  # both drawn before they are measured
        expect(column.get_by_text("No images for this prompt yet.")).to_be_visible()
    expect(
        page.locator("[data-testid='stApp'][data-test-script-state='notRunning']")
    ).to_have_count(1)

    def side_by_side() -> bool:
        first, second = left.bounding_box(), right.bounding_box()
        return second["x"] > first["x"] and abs(second["y"] - first["y"]) < first["height"] / 2

    for _attempt in range(20):  # measured once the layout settles (a busy machine draws late)
        if side_by_side():
            break
        page.wait_for_timeout(100)
    assert side_by_side()  # side by side, still


def test_8_history_filters_by_link_and_reuses_a_prompt(page: Page, fresh_app: RunningApp) -> None:
    dialog = open_generate_dialog(page, "demo-claymation")
    submit_prompt(dialog, "a snail racing a tortoise")
    expect(dialog.locator("figure.ls-result img")).to_have_count(4, timeout=GENERATION_TIMEOUT)

    page.goto("/history?lora=clayfig&q=SNAIL")
    expect(page.get_by_role("heading", name="History")).to_be_visible()
    batches = summary_value(page, "Batches")
    expect(batches).to_have_text("1")
    table = page.locator("table.ls-table")
    expect(table).to_be_visible()
    page.reload()  # the filters live in the link, folded away, saying how many are set
    filters = page.get_by_text("Filters · 2 active")
    expect(filters).to_be_visible()
    expect(batches).to_have_text("1")
    filters.click()
    expect(page.get_by_test_id("stMultiSelect").filter(has_text="clayfig")).to_be_visible()
    snap(page, "journey-8a-history")

    # A header sorts by its column (a link): the address keeps the filters, adds the order.
    table.get_by_role("link", name="Duration").click()
    expect(page).to_have_url(re.compile(r"lora=clayfig.*sort=-duration"))
    expect(table.locator("th[aria-sort='descending']")).to_contain_text("Duration")
    expect(page.get_by_text("Filters · 2 active")).to_be_visible()

    # A row's time opens the generation over the page, by keyboard: its whole prompt.
    details = table.get_by_role("link", name=re.compile("^Details of "))
    details.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog.locator("code")).to_have_text("a snail racing a tortoise")  # whole
    expect(dialog.locator("a.ls-open figure img, figure a.ls-open img")).to_have_count(4)
    expect(page).to_have_url(re.compile(r"sort=-duration&batch=\w+"))
    snap(page, "journey-8b-history-details")
    page.go_back()  # Back closes it, as on any page
    expect(dialog).to_have_count(0)
    expect(page).to_have_url(re.compile(r"sort=-duration$"))
    details.click()
    dialog.get_by_role("button", name=re.compile("Reuse prompt on clayfig")).click()
    expect(page).to_have_url(re.compile(r"/lora\?id=demo-claymation$"))
    expect(page.get_by_role("dialog").get_by_role("textbox", name="Prompt")).to_have_value(
        "a snail racing a tortoise"
    )


def test_9_two_tabs_with_one_slot_left_generate_once(
    page: Page, fresh_app: RunningApp, fake_fal: FakeFal
) -> None:
    add_earlier_batches(fresh_app, 7)
    fake_fal.script.processing_seconds = 1.5
    other = page.context.browser.new_page(base_url=fresh_app.url, ignore_https_errors=True)
    try:
        first = open_generate_dialog(page, "demo-neon-noir")
        second = open_generate_dialog(other, "demo-neon-noir")
        expect(second.get_by_text("1 of 8 generations remaining today")).to_be_visible()
        submit_prompt(first, "from the first tab")
        submit_prompt(second, "from the second tab")

        expect(first.locator("figure.ls-result img")).to_have_count(4, timeout=GENERATION_TIMEOUT)
        expect(second.get_by_text("You've used all 8 generations today.")).to_be_visible(
            timeout=GENERATION_TIMEOUT
        )
        snap(other, "journey-9-second-tab-refused")
    finally:
        other.close()
    assert stored_prompts(fresh_app, "demo-neon-noir") == ["from the first tab"] * 4
    assert len(fake_fal.submissions) == 1


def test_10_train_a_lora_from_uploaded_images_and_generate_from_it(
    page: Page, fresh_app: RunningApp, fake_fal: FakeFal, tmp_path: Path
) -> None:
    fake_fal.script.queue_positions = [0]  # one poll queued, one running, then done
    photos = []
    for number in range(5):
        photo = tmp_path / f"photo-{number}.jpg"
        Image.new("RGB", (512, 512), (40 * number, 120, 200)).save(photo, format="JPEG")
        photos.append(photo)

    page.goto("/")
    page.get_by_role("link", name="Train a LoRA").click()
    expect(page.get_by_role("heading", name="Train a LoRA")).to_be_visible()
    expect(page.get_by_text("2 of 2 trainings remaining today")).to_be_visible()
    page.locator("[class*='st-key-train_files'] input[type=file]").set_input_files(photos)
    expect(page.get_by_text("photo-4.jpg")).to_be_visible()
    page.get_by_role("textbox", name="Trigger word").fill("papercut")
    page.get_by_role("button", name="Start training").click()

    expect(page.get_by_text("Training “papercut” started.")).to_be_visible()
    expect(page.get_by_text("1 of 2 trainings remaining today")).to_be_visible()
    expect(page.get_by_text("photo-4.jpg")).to_have_count(0)  # a fresh form
    card = page.locator("[class*='st-key-training_']").first
    expect(card.get_by_text("papercut")).to_be_visible()
    snap(page, "journey-10a-training")
    expect(card.get_by_text("Training complete: the LoRA is ready.")).to_be_visible(
        timeout=GENERATION_TIMEOUT
    )
    [upload] = [r for r in fake_fal.requests if r.path == "/files/upload"]
    with zipfile.ZipFile(io.BytesIO(upload.body)) as archive:
        assert archive.namelist() == [f"{number:03d}.jpg" for number in range(1, 6)]
    [training] = fake_fal.training_submissions
    assert (training.body["trigger_word"], training.body["steps"]) == ("papercut", 1000)
    snap(page, "journey-10b-trained")

    card.get_by_role("button", name="Generate Images").click()
    expect(page).to_have_url(re.compile(r"/lora\?id=\w+$"))
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text('"... in the style of papercut"')).to_be_visible()
    submit_prompt(dialog, "a fox in a forest of paper")
    expect(dialog.locator("figure.ls-result img")).to_have_count(4, timeout=GENERATION_TIMEOUT)
    [generation] = fake_fal.submissions
    assert generation.body["prompt"] == "a fox in a forest of paper in the style of papercut"
    assert generation.body["loras"][0]["path"].endswith("/pytorch_lora_weights.safetensors")
    expect(page.get_by_test_id("stException")).to_have_count(0)


def test_11_an_image_is_shared_by_link_and_its_batch_downloaded_as_a_zip(
    page: Page, fresh_app: RunningApp, tmp_path: Path
) -> None:
    page.goto("/lora?id=demo-watercolor")
    oldest_card = page.locator(".ls-batch figure.ls-card a.ls-open").last
    open_details(page, oldest_card)  # not the cover yet

    expect(page).to_have_url(re.compile(r"/lora\?id=demo-watercolor&image=[\w-]+$"))
    view = page.locator(".st-key-image_view")
    all_loaded(page, ".st-key-image_view figure.ls-large img")
    shared = page.url
    expect(view.get_by_text(shared)).to_be_visible()  # the share link, with a copy button
    expect(view.get_by_text("Seed")).to_be_visible()
    snap(page, "journey-11a-shared-image")

    with page.expect_download() as started:
        view.get_by_role("button", name=re.compile(r"Download its batch")).click()
    saved = tmp_path / "batch.zip"
    started.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        images = [name for name in archive.namelist() if name.startswith("images/")]
        manifest = json.loads(archive.read("manifest.json"))
    assert len(images) == len(manifest) == 4
    assert all(row["full_prompt"].endswith("in the style of wtrclr") for row in manifest)

    page.goto(shared)  # the link works on its own, e.g. for a colleague
    large = page.locator(".st-key-image_view figure.ls-large img")
    expect(large).to_be_visible()
    starred_src = large.get_attribute("src")
    star = page.locator(".st-key-image_view .st-key-star_image button")
    expect(star).to_contain_text("Star · 0")
    star.click()
    expect(star).to_contain_text("Starred · 1")
    view.get_by_role("button", name="Back to all images").click()
    expect(page.locator(".st-key-image_view")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"/lora\?id=demo-watercolor$"))

    page.get_by_role("link", name="All LoRAs").first.click()  # the starred image is the cover
    card = page.locator('.ls-lora-card[data-lora="demo-watercolor"] figure.ls-card')
    with closing(sqlite3.connect(fresh_app.db_path)) as connection:
        [(thumbnail,)] = connection.execute(
            "SELECT thumbnail_url FROM generated_images WHERE image_url = ?", (starred_src,)
        ).fetchall()
    expect(card.locator("img")).to_have_attribute("src", thumbnail)  # the starred one's
    expect(page.get_by_test_id("stException")).to_have_count(0)


def test_12_two_loras_compared_on_one_prompt_after_generating_the_missing(
    page: Page, fresh_app: RunningApp, fake_fal: FakeFal
) -> None:
    page.goto("/")
    page.get_by_role("link", name="Compare LoRAs").click()
    expect(page.get_by_role("heading", name="Compare LoRAs")).to_be_visible()
    page.goto(f"{page.url}?compare_loras=wtrclr&compare_loras=neonnoir&compare_prompt=a+paper+boat")

    expect(page.get_by_text("No images for this prompt yet.")).to_have_count(2)
    page.locator(".st-key-generate_missing button").click()
    for lora_id in ("demo-watercolor", "demo-neon-noir"):
        column = page.locator(f".st-key-compare_{lora_id}")
        expect(column.locator("figure.ls-card img")).to_have_count(4, timeout=GENERATION_TIMEOUT)
    all_loaded(page, "figure.ls-card img")
    boxes = [
        page.locator(f".st-key-compare_{lora_id}").bounding_box()
        for lora_id in ("demo-watercolor", "demo-neon-noir")
    ]
    assert boxes[0]["y"] == boxes[1]["y"] and boxes[0]["x"] < boxes[1]["x"]  # side by side
    prompts = sorted(r.body["prompt"] for r in fake_fal.submissions)
    assert prompts == [
        "a paper boat in the style of neonnoir",
        "a paper boat in the style of wtrclr",
    ]
    expect(page.get_by_test_id("stException")).to_have_count(0)
    snap(page, "journey-12-compare")


def test_13_register_an_existing_lora_generate_from_it_and_hide_an_image(
    page: Page, fresh_app: RunningApp, fake_fal: FakeFal
) -> None:
    weights = f"{fake_fal.url}/files/elsewhere/pytorch_lora_weights.safetensors"
    page.goto("/train")
    page.get_by_role("tab", name="Register an existing LoRA").click()
    page.get_by_role("textbox", name="Weights URL").fill(weights)
    page.get_by_role("textbox", name="Trigger word").last.fill("inkwash")
    page.get_by_role("textbox", name="Name (optional)").fill("Ink wash")
    page.get_by_role("button", name="Register LoRA").click()
    expect(page.get_by_text("“Ink wash” is in the gallery.")).to_be_visible()
    assert ("HEAD", "/files/elsewhere/pytorch_lora_weights.safetensors") in [
        (r.method, r.path) for r in fake_fal.requests
    ]

    page.get_by_role("link", name="Open its page").click()
    expect(page.get_by_role("heading", name="Ink wash")).to_be_visible()
    expect(page.get_by_text("Trigger word: inkwash")).to_be_visible()
    dialog = open_generate_dialog(page, page.url.split("id=", 1)[1])
    submit_prompt(dialog, "a heron in the reeds")
    expect(dialog.locator("figure.ls-result img")).to_have_count(4, timeout=GENERATION_TIMEOUT)
    dialog.get_by_role("button", name="Close").click()
    assert fake_fal.submissions[0].body["loras"][0]["path"] == weights

    gallery_cards = page.locator(".ls-batch figure.ls-card")
    expect(gallery_cards).to_have_count(4)
    open_details(page, page.locator(".ls-batch figure.ls-card a.ls-open").first)
    page.locator(".st-key-hide_image button").click()
    expect(page.get_by_text("Hidden from the galleries; History keeps it.")).to_be_visible()
    expect(page.locator(".ls-batch figure.ls-card")).to_have_count(3)
    snap(page, "journey-13-hidden")
    expect(page.get_by_test_id("stException")).to_have_count(0)


def test_14_remix_an_image_from_its_details_with_its_seed_and_a_new_setting(
    page: Page, fresh_app: RunningApp, fake_fal: FakeFal
) -> None:
    view, seed = first_image_details(page, "demo-neon-noir", "neonnoir")
    expect(view.get_by_text("scale 1.5 · 28 steps · guidance 3.5 · 1024×1024")).to_be_visible()

    view.get_by_role("button", name="Remix").click()

    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("textbox", name="Prompt")).to_have_value("a rainy street at night")
    expect(dialog.get_by_role("textbox", name="Seed")).to_have_value(seed)
    expect(page).to_have_url(re.compile(r"/lora\?id=demo-neon-noir$"))
    dialog.get_by_role("textbox", name="Seed").fill(seed)  # kept; the size changes
    dialog.get_by_role("combobox", name="Image size").click()
    page.get_by_role("option", name=re.compile("landscape 16 9")).click()
    dialog.get_by_role("button", name="Generate 4 Images").click()
    expect(dialog.locator("figure.ls-result img")).to_have_count(4, timeout=GENERATION_TIMEOUT)

    [submission] = fake_fal.submissions
    assert submission.body["seed"] == int(seed)
    assert submission.body["image_size"] == "landscape_16_9"
    assert submission.body["prompt"] == "a rainy street at night in the style of neonnoir"
    snap(page, "journey-14-remix")
    expect(page.get_by_test_id("stException")).to_have_count(0)


def test_15_a_downloaded_image_tells_its_recipe_in_the_lab_and_is_remixed(
    page: Page, fresh_app: RunningApp, tmp_path: Path
) -> None:
    view, seed = first_image_details(page, "demo-claymation", "clayfig")
    with page.expect_download() as started:
        view.get_by_role("button", name="Download image").click()
    saved = tmp_path / started.value.suggested_filename
    started.value.save_as(saved)

    page.goto("/lab")
    expect(page.get_by_role("heading", name="LoRA Lab")).to_be_visible()
    page.locator("input[type=file]").set_input_files(saved)

    expect(page.get_by_text("a fox reading a book", exact=True)).to_be_visible()
    expect(page.get_by_text(re.compile(rf"seed {seed} · scale 1.5 · 28 steps"))).to_be_visible()
    snap(page, "journey-15-lab-recipe")
    page.get_by_role("button", name="Remix with clayfig").click()

    expect(page).to_have_url(re.compile(r"/lora\?id=demo-claymation$"))
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("textbox", name="Prompt")).to_have_value("a fox reading a book")
    expect(dialog.get_by_role("textbox", name="Seed")).to_have_value(seed)
    expect(page.get_by_test_id("stException")).to_have_count(0)


def test_16_a_2x3_sweep_fills_in_survives_a_reload_and_downloads_its_sheet(
    page: Page, fresh_app: RunningApp, fake_fal: FakeFal, tmp_path: Path
) -> None:
    fake_fal.script.processing_seconds = 1.5  # long enough to reload mid-sweep
    page.goto("/lab")
    page.get_by_role("combobox", name="LoRA").click()
    page.get_by_role("option", name="wtrclr").click()
    page.get_by_role("textbox", name="Prompt", exact=True).fill("a lighthouse at dusk")
    page.keyboard.press("Control+Enter")
    scales = page.get_by_role("textbox", name="LoRA scale values")
    scales.fill("0, 1, 2")
    scales.press("Enter")
    page.get_by_role("combobox", name="Y axis (rows)").click()
    page.get_by_role("option", name="Seed").click()
    seeds = page.get_by_role("textbox", name="Seed values")
    seeds.fill("7, 8")
    seeds.press("Enter")
    expect(page.get_by_text("6 images = 2 of your 8 generations left today")).to_be_visible()

    page.get_by_role("button", name="Start sweep").click()

    expect(page).to_have_url(re.compile(r"/lab\?sweep=\w{32}$"))
    expect(page.get_by_text("Generating…").first).to_be_visible()
    page.reload()  # leaving or reloading loses nothing: the grid is read from the database
    grid = page.locator(".ls-sweep")
    expect(grid.locator("figure.ls-card img")).to_have_count(6, timeout=GENERATION_TIMEOUT)
    expect(page.get_by_text("6 of 6 images")).to_be_visible()
    first = grid.locator("figure.ls-card img").first
    expect(first).to_have_attribute("alt", "Sweep image, scale 0 · seed 7: a lighthouse at dusk")
    all_loaded(page, ".ls-sweep figure.ls-card img")
    sent = sorted((s.body["seed"], s.body["loras"][0]["scale"]) for s in fake_fal.submissions)
    assert sent == [(7, 0.0), (7, 1.0), (7, 2.0), (8, 0.0), (8, 1.0), (8, 2.0)]
    assert {s.body["num_images"] for s in fake_fal.submissions} == {1}
    snap(page, "journey-16-sweep")

    with page.expect_download() as started:
        page.get_by_role("button", name="Contact sheet (PNG)").click()
    sheet_path = tmp_path / "sheet.png"
    started.value.save_as(sheet_path)
    with Image.open(sheet_path) as sheet:
        assert sheet.info["x_labels"].split("\n") == ["scale 0", "scale 1", "scale 2"]
        assert sheet.info["y_labels"].split("\n") == ["seed 7", "seed 8"]
        assert sheet.info["title"] == "wtrclr · “a lighthouse at dusk”"
    with page.expect_download() as started:
        page.get_by_role("button", name="Images and manifest (zip)").click()
    zip_path = tmp_path / "sweep.zip"
    started.value.save_as(zip_path)
    with zipfile.ZipFile(zip_path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert [(row["x"], row["y"]) for row in manifest][:2] == [
        ("scale 0", "seed 7"),
        ("scale 1", "seed 7"),
    ]
    assert all(row["file"] for row in manifest) and len(manifest) == 6
    page.get_by_test_id("stPopoverButton").filter(has_text="Share this sweep").click()
    expect(page.get_by_text(page.url)).to_be_visible()  # the link to share, to copy
    expect(page.get_by_test_id("stException")).to_have_count(0)

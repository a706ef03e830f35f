"""History's table as HTML (`ui.history_table`): its links and what it lets through.

`ui.history_table` builds links through `ui.routes`, whose pages Streamlit builds only in a
script run: the module is imported after the app has run once (`table` below), never at
collection, which would leave the pages unbuilt for every later test of the process."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from types import ModuleType

import pytest

from lora_core.generation.recipe import NO_LORA
from lora_core.history.filters import HistoryStatus
from lora_core.history.listing import HistoryOrder, HistoryRow, SortColumn


def row(number: int, **changes: object) -> HistoryRow:
    values: dict[str, object] = {
        "batch_id": f"b{number}",
        "created_at": datetime(2026, 12, 7, 8, number % 60, tzinfo=UTC),
        "user": "ann",
        "lora_id": "lora-a",
        "trigger_word": "alpha",
        "prompt": f"prompt {number}",
        "images_returned": 4,
        "status": HistoryStatus.SUCCEEDED,
        "duration_seconds": 12.5,
        "thumbnail_url": f"app/static/media/{number}.thumb.webp",
    }
    return HistoryRow(**(values | changes))  # type: ignore[arg-type]


@pytest.fixture
def history_table(open_app) -> ModuleType:
    open_app()  # the routes' pages built, as in a page's run
    from ui import history_table

    return history_table


def test_a_link_keeps_the_pages_other_parameters_and_changes_only_its_own(history_table):
    query = {"lora": ["alpha", "beta"], "q": ["a fox & a hen"], "batch": ["b1"]}

    assert history_table.link_to(query, sort="-duration", batch=None) == (
        "?lora=alpha&lora=beta&q=a+fox+%26+a+hen&sort=-duration"
    )
    assert history_table.details_link({}, "b 2") == "?batch=b+2"


def test_the_first_screens_previews_load_at_once_and_the_rest_when_scrolled_to(history_table):
    html = history_table.table_html(
        [row(number) for number in range(25)], order=HistoryOrder(), query={}
    )

    loading = re.findall(r'loading="(\w+)"', html)
    assert loading == ["eager"] * history_table.EAGER_ROWS + ["lazy"] * 15


def test_only_web_and_our_own_addresses_reach_an_images_src(history_table):
    html = history_table.table_html(
        [row(1, thumbnail_url="javascript:alert(1)"), row(2, thumbnail_url=None)],
        order=HistoryOrder(),
        query={},
    )

    assert "javascript" not in html
    assert "<img" not in html  # no picture rather than a broken one


def test_the_base_model_has_no_loras_page_to_link_to(history_table):
    html = history_table.table_html([row(1, lora_id=NO_LORA)], order=HistoryOrder(), query={})

    assert "lora?id=" not in html
    assert "no LoRA (base model)" in html


def test_the_region_says_how_the_table_is_sorted(history_table):
    html = history_table.table_html(
        [row(1)], order=HistoryOrder(SortColumn.USER, descending=False), query={}
    )

    assert 'aria-label="Generations, by user, smallest, oldest or A first"' in html
    assert html.count("aria-sort=") == 1

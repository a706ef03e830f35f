"""The Search page, as AppTest renders it: the search from the link, counts, the grid,
an image opened in its LoRA's page, saved searches."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

import pytest

from lora_core.generation.recipe import Recipe, StackedLora
from tests.conftest import open_with_query
from tests.support.markup import figures, readable

SEARCH = "app_pages/search.py"


def cards(at) -> list[str]:
    return figures(at)


def count_line(at) -> str:
    [line] = [c.value for c in at.caption if re.match(r"[\d,]+\+? images?\b", c.value)]
    return line


@pytest.fixture
def made(add_lora, generate_batch):
    add_lora("neon", trigger_word="neonnoir")
    add_lora("ink", trigger_word="inkwash", weights_url="https://w.example/ink.st")
    generate_batch("neon", "A red fox in the snow")
    generate_batch("ink", "a <b>red</b> barn", recipe=Recipe(stack=(StackedLora("neon", 0.7),)))


def test_the_link_is_the_search_and_the_count_is_shown(open_app, made):
    at = open_with_query(open_app, SEARCH, q="red", lora=["neonnoir"])

    assert not at.exception
    assert at.text_input(key="q").value == "red"
    assert at.multiselect(key="lora").value == ["neonnoir"]
    assert count_line(at) == "8 images"  # neon's own, and ink's with neon stacked
    assert len(cards(at)) == 8

    at.text_input(key="q").set_value('"red fox"').run()
    assert count_line(at) == "4 images"


def test_past_the_cap_the_count_says_how_far_the_pages_go(open_app, made, monkeypatch):
    from lora_core.search import query

    monkeypatch.setattr(query, "COUNT_CAP", 5)
    at = open_with_query(open_app, SEARCH, q="red")

    assert count_line(at) == (
        "5+ images. The pages go as far as the first 5: add a word or a filter to reach the rest."
    )
    assert len(cards(at)) == 8  # a page of 24 still shows them all
    at = open_with_query(open_app, SEARCH, q="fox")
    assert count_line(at) == "4 images"  # at or under the cap: the count itself


def test_nothing_found_says_so_and_a_bad_link_value_is_explained(open_app, made):
    at = open_with_query(open_app, SEARCH, q="unicorn")
    assert "No image matches this search." in readable(at.info[0].value)

    at = open_with_query(open_app, SEARCH, smin="lots")
    assert not at.exception


def test_an_image_is_a_link_to_its_details_on_its_loras_page(open_app, made):
    at = open_with_query(open_app, SEARCH, q="barn")
    links = [re.search(r'<a class="ls-open" href="lora\?id=(\w+)&amp;image=([\w-]+)"', card)
             for card in cards(at)]  # fmt: skip

    assert len(links) == 4 and all(links)
    assert {link[1] for link in links if link} == {"ink"}
    [(lora_id, image_id), *_] = [link.groups() for link in links if link]
    at = open_with_query(open_app, "app_pages/lora.py", id=lora_id, image=image_id)  # followed
    [large] = [m.value for m in at.markdown if 'class="ls-card ls-large"' in m.value]
    assert "barn" in large


def test_a_saved_search_is_listed_with_what_is_new_and_opens_its_link(open_app, made):
    at = open_with_query(open_app, SEARCH, q="fox")
    at.text_input(key="saved_name").set_value("Foxes")
    at.button(key="saved_save").click().run()
    assert not at.exception

    at = open_with_query(open_app, SEARCH)
    at.toggle(key="saved_list").set_value(True).run()
    [link] = [p.proto for p in at.get("page_link") if "Foxes" in p.proto.label]
    assert link.label == "Foxes · by guest · 0 new since you last looked"
    query = dict(parse_qsl(link.query_string))
    assert query["q"] == "fox" and link.page == "search"

    at = open_with_query(open_app, SEARCH, **query)  # the link followed
    assert not at.exception and count_line(at) == "4 images"
    assert "saved" not in at.query_params


def test_the_gallerys_search_box_opens_search_with_the_words(open_app, made):
    at = open_app()
    at.text_input(key="gallery_search").input('"red fox"').run()

    assert not at.exception
    assert at.query_params["q"] == '"red fox"'
    assert count_line(at) == "4 images"

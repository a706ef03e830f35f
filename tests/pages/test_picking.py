"""Several images chosen on a grid (Search's, a LoRA's page across its pages) and added to a
collection at once, as AppTest renders it: the count, the message, the collection's rows."""

from __future__ import annotations

import pytest

from lora_core.data.db import session_scope
from lora_core.gallery import collections
from lora_core.identity import Identity
from tests.conftest import open_with_query
from tests.pages.test_login import AUTH
from tests.support.markup import readable

SEARCH, LORA_PAGE = "app_pages/search.py", "app_pages/lora.py"


def members(engine) -> dict[str, list[str]]:
    """Every collection's images by its name, in its order."""
    with session_scope(engine) as session:
        return {
            board.name: [
                image.id
                for image in collections.view(
                    session=session, collection_id=board.id, who=Identity(user="x")
                ).images
            ]
            for board, _count in collections.listed(session=session)
        }


def box(at, scope: str, grid: str, image_id: str):
    """A card's Select checkbox (its key: `pick_<scope>_<round>_<grid>_<image>`)."""
    [found] = [
        c
        for c in at.checkbox
        if c.key.startswith(f"pick_{scope}_") and c.key.endswith(f"_{grid}_{image_id}")
    ]
    return found


def said(at) -> list[str]:
    return [readable(message.value) for message in at.success]


@pytest.fixture
def images(add_lora, add_images):
    add_lora("neon"), add_lora("ink")
    add_images("neon", 30), add_images("ink", 3, start_minutes_ago=10)


def test_search_results_chosen_go_to_a_new_collection_then_to_an_old_one(open_app, engine, images):
    at = open_with_query(open_app, SEARCH, q="prompt")
    assert [c.label for c in at.checkbox].count("Select") == 0  # none until the switch is on
    at.toggle(key="selecting_search").set_value(True).run()
    chosen = ["ink-img-0001", "neon-img-0029"]
    for image_id in reversed(chosen):  # the order chosen is the collection's order
        box(at, "search", "search", image_id).check().run()
    assert "**2 selected**" in [m.value for m in at.markdown]
    assert at.selectbox(key="pick_target_search").value == "__new__"  # none to add to yet
    at.text_input(key="pick_name_search").input("Client <b>review</b>").run()
    at.button(key="pick_add_search").click().run()

    assert not at.exception
    assert said(at) == ["Added 2 images to the new collection “Client <b>review</b>”."]
    assert members(engine) == {"Client <b>review</b>": list(reversed(chosen))}
    assert "**0 selected**" in [m.value for m in at.markdown]
    assert not box(at, "search", "search", chosen[0]).value  # the boxes start again
    with session_scope(engine) as session:
        [(board, _count)] = collections.listed(session=session)
    assert at.selectbox(key="pick_target_search").value == board.id  # the new one, next

    at.button(key="select_all_search").click().run()
    assert "**24 selected**" in [m.value for m in at.markdown]
    assert at.selectbox(key="pick_target_search").options == ["Client <b>review</b>",
                                                              "A new collection…"]  # fmt: skip
    at.button(key="pick_add_search").click().run()
    assert said(at) == ["Added 22 images to “Client <b>review</b>” (2 were in it already)."]
    assert len(members(engine)["Client <b>review</b>"]) == 24


def test_a_lora_page_keeps_the_choice_across_its_pages(open_app, engine, images):
    at = open_with_query(open_app, LORA_PAGE, id="neon")
    at.toggle(key="group_batches").set_value(False).run()
    at.toggle(key="selecting_lora_neon").set_value(True).run()
    box(at, "lora_neon", "grid", "neon-img-0029").check().run()
    at.session_state["page_neon"] = 2  # its second page of 24
    at.run()
    box(at, "lora_neon", "grid", "neon-img-0000").check().run()
    assert "**2 selected**" in [m.value for m in at.markdown]
    at.text_input(key="pick_name_lora_neon").input("Two ends").run()
    at.button(key="pick_add_lora_neon").click().run()

    assert not at.exception
    assert members(engine) == {"Two ends": ["neon-img-0029", "neon-img-0000"]}


def test_one_who_may_not_add_is_offered_only_a_new_collection(open_app, engine, images):
    collections.create(engine=engine, who=Identity(user="ann"), name="Ann's")
    collections.create(engine=engine, who=Identity(user="ann"), name="Team",
                                anyone_can_add=True)  # fmt: skip
    bob = open_app(SEARCH, user={"is_logged_in": True, "email": "bob@example.com"}, secrets=AUTH)
    bob.toggle(key="selecting_search").set_value(True).run()
    assert bob.selectbox(key="pick_target_search").options == ["Team", "A new collection…"]

    signed_out = open_app(SEARCH, user={"is_logged_in": False}, secrets=AUTH)
    assert not signed_out.exception
    assert "selecting_search" not in [t.key for t in signed_out.toggle]  # nowhere to add

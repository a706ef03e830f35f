"""Collections as AppTest renders them: made, filled from an image's details, ordered,
shown literally, downloaded as a zip."""

from __future__ import annotations

import io
import json
import zipfile
from urllib.parse import parse_qs

from lora_core.data.db import session_scope
from lora_core.gallery import collections
from lora_core.identity import Identity
from tests.conftest import open_with_query
from tests.support.markup import readable

COLLECTIONS = "app_pages/collections.py"
LORA_PAGE = "app_pages/lora.py"


def test_a_collection_is_made_filled_from_details_and_downloaded(open_app, engine, add_lora,
                                                                  add_images):  # fmt: skip
    add_lora("neon", trigger_word="neonnoir")
    add_lora("ink", trigger_word="inkwash")
    add_images("neon", 2), add_images("ink", 2)
    at = open_with_query(open_app, COLLECTIONS)
    at.text_input(key="collection_name").input("<b>Review</b>")
    at.text_area(key="collection_description").input("*for* the client")
    at.button(key="FormSubmitter:new_collection-Make it").click().run()
    assert not at.exception
    board = at.query_params["id"]
    assert readable(at.title[0].value) == "<b>Review</b>"  # shown literally
    assert "*for* the client" in [t.value for t in at.text]

    for lora_id, image_id in (("neon", "neon-img-0001"), ("ink", "ink-img-0000")):
        details = open_with_query(open_app, LORA_PAGE, id=lora_id, image=image_id)
        details.selectbox(key="collection_pick").set_value(board).run()
        details.button(key="collection_add").click().run()
        assert not details.exception
        assert "In 1 collection: <b>Review</b>" in [readable(c.value) for c in details.caption]

    at = open_with_query(open_app, COLLECTIONS, id=board)
    assert "2 images" in at.caption[0].value
    at.button(key="move_-1_ink-img-0000").click().run()
    with session_scope(engine) as session:
        found = collections.view(session=session, collection_id=board, who=Identity(user="x"))
    assert [image.id for image in found.images] == ["ink-img-0000", "neon-img-0001"]
    assert "collection_zip" in [button.key for button in at.get("download_button")]


def test_an_unknown_collection_says_so(open_app):
    at = open_with_query(open_app, COLLECTIONS, id="nope")
    assert not at.exception
    assert "Collection not found" in at.error[0].value


def test_the_zip_holds_every_image_with_its_own_lora(engine, add_lora, add_images, media_store):
    from lora_core.gallery import downloads, views

    add_lora("neon", trigger_word="neonnoir")
    add_lora("ink", trigger_word="inkwash")
    add_images("neon", 1), add_images("ink", 1)
    from sqlalchemy import select

    from lora_core.data.models import GeneratedImage

    with session_scope(engine) as session:
        images = list(session.scalars(select(GeneratedImage).order_by(GeneratedImage.id)))
        made = views.recipes_of(session=session, images=images)
    archive = downloads.images_zip(images, made[images[0].id].first, store=media_store,
                                   recipes=made)  # fmt: skip
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        manifest = json.loads(zipped.read("manifest.json"))
    assert {(row["lora_id"], row["trigger_word"]) for row in manifest} == {
        ("neon", "neonnoir"),
        ("ink", "inkwash"),
    }


def test_a_collection_opens_compare_on_its_shared_prompt_and_becomes_an_arena(
    open_app, engine, add_lora
):
    from sqlalchemy import select

    from lora_core.data.models import Arena
    from tests.support.arenas import Cell, finished_sweep

    add_lora("neon", trigger_word="neonnoir"), add_lora("ink", trigger_word="inkwash")
    _sweep, images = finished_sweep(engine, [Cell("neon", prompt="a barn", seed="3"),
                                             Cell("ink", prompt="a barn", seed="3"),
                                             Cell("ink", prompt="a fox")])  # fmt: skip
    board = collections.create(engine=engine, who=Identity(user="guest"), name="Barns",
                               image_ids=images)  # fmt: skip
    at = open_with_query(open_app, COLLECTIONS, id=board)

    [link] = [p.proto for p in at.get("page_link") if p.proto.label.startswith("Compare")]
    assert (link.label, link.page) == ("Compare its LoRAs (2)", "compare")
    assert parse_qs(link.query_string) == {"compare_loras": ["neonnoir", "inkwash"],
                                           "compare_prompt": ["a barn"]}  # fmt: skip
    compare = open_app("app_pages/compare.py", **parse_qs(link.query_string))
    assert not compare.exception
    assert compare.multiselect(key="compare_loras").value == ["neon", "ink"]  # their ids

    [name] = [t for t in at.text_input if t.label == "Arena name"]
    assert name.value == "Barns"
    at.button(key="FormSubmitter:collection_arena-Make the arena").click().run()
    assert not at.exception
    with session_scope(engine) as session:
        [arena] = session.scalars(select(Arena)).all()
    assert (arena.name, arena.collection_id, arena.user) == ("Barns", board, "guest")


def test_a_full_collection_says_so_in_the_details(open_app, engine, add_lora, add_images,
                                                  monkeypatch):  # fmt: skip
    add_lora("neon")
    add_images("neon", 2)
    board = collections.create(engine=engine, who=Identity(user="guest"), name="Full",
                               image_ids=["neon-img-0000"])  # fmt: skip
    monkeypatch.setattr(collections, "MAX_IMAGES", 1)

    details = open_with_query(open_app, LORA_PAGE, id="neon", image="neon-img-0001")
    details.selectbox(key="collection_pick").set_value(board).run()
    details.button(key="collection_add").click().run()

    assert not details.exception
    shown = [e.value for e in [*details.warning, *details.error]]
    assert any("at most 1 images" in value for value in shown)

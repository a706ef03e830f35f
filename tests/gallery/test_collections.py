"""Collections: made, filled from any LoRAs, ordered, described, shared; who may do what;
an image added twice at once is one member."""

from __future__ import annotations

import pytest

from lora_core.data.db import session_scope
from lora_core.data.models import GeneratedImage
from lora_core.errors import InvalidSettings, NotAllowed, NotSignedIn
from lora_core.gallery import collections
from lora_core.identity import Identity
from tests.support.factories import hide
from tests.support.race import race

pytestmark = pytest.mark.both_backends

ANN, BOB, ADMIN = Identity(user="ann"), Identity(user="bob"), Identity(user="root", is_admin=True)


def ids(engine, collection_id: str, who=ANN) -> list[str]:
    with session_scope(engine) as session:
        found = collections.view(session=session, collection_id=collection_id, who=who)
    return [image.id for image in found.images]


@pytest.fixture
def images(add_lora, add_images):
    add_lora("neon"), add_lora("ink")
    add_images("neon", 3), add_images("ink", 2)
    return ["neon-img-0000", "ink-img-0001", "neon-img-0002", "ink-img-0000"]


def test_a_collection_holds_images_of_any_loras_in_its_own_order(engine, images):
    board = collections.create(engine=engine, who=ANN, name=" Client review ", description="x")

    assert collections.add(engine=engine, who=ANN, collection_id=board, image_ids=images[:3]) == 3
    assert collections.add(engine=engine, who=ANN, collection_id=board,
                           image_ids=[images[1], images[3], "nope"]) == 1  # fmt: skip
    assert ids(engine, board) == images

    collections.move(engine=engine, who=ANN, collection_id=board, image_id=images[3], by=-2)
    assert ids(engine, board) == [images[0], images[3], images[1], images[2]]
    collections.remove(engine=engine, who=ANN, collection_id=board, image_id=images[1])
    assert ids(engine, board) == [images[0], images[3], images[2]]
    with session_scope(engine) as session:
        [(board_row, count)] = collections.listed(session=session)
        names = [c.name for c in collections.of_image(session=session, image_id=images[0])]
    assert (board_row.name, board_row.description, count) == ("Client review", "x", 3)
    assert names == ["Client review"]


def test_only_the_owner_adds_unless_anyone_may_and_only_the_owner_reorders(engine, images):
    closed = collections.create(engine=engine, who=ANN, name="Mine")
    opened = collections.create(engine=engine, who=ANN, name="Team", anyone_can_add=True)

    with pytest.raises(NotAllowed):
        collections.add(engine=engine, who=BOB, collection_id=closed, image_ids=images[:1])
    collections.add(engine=engine, who=BOB, collection_id=opened, image_ids=images[:2])
    collections.add(engine=engine, who=ANN, collection_id=opened, image_ids=images[2:3])
    with pytest.raises(NotAllowed):
        collections.move(engine=engine, who=BOB, collection_id=opened, image_id=images[0], by=1)
    with pytest.raises(NotAllowed):  # ann added it, not bob
        collections.remove(engine=engine, who=BOB, collection_id=opened, image_id=images[2])
    collections.remove(engine=engine, who=BOB, collection_id=opened, image_id=images[0])  # his
    collections.remove(engine=engine, who=ADMIN, collection_id=opened, image_id=images[2])
    assert ids(engine, opened) == [images[1]]
    with pytest.raises(NotAllowed):
        collections.describe(engine=engine, who=BOB, collection_id=opened, name="x",
                             description="", anyone_can_add=False)  # fmt: skip
    collections.describe(engine=engine, who=ANN, collection_id=opened, name="Team 2",
                         description="<b>literal</b>", anyone_can_add=False)  # fmt: skip
    with pytest.raises(NotAllowed):
        collections.add(engine=engine, who=BOB, collection_id=opened, image_ids=images[:1])
    with session_scope(engine) as session:  # what each is offered to add to
        assert collections.open_to(session=session, who=BOB) == {}
        assert list(collections.open_to(session=session, who=ANN).values()) == ["Team 2", "Mine"]
        assert collections.open_to(session=session, who=Identity(user=None)) == {}
    with pytest.raises(NotSignedIn):
        collections.create(engine=engine, who=Identity(user=None), name="x")
    with pytest.raises(InvalidSettings, match="1 to 100"):
        collections.create(engine=engine, who=ANN, name="   ")
    collections.delete_collection(engine=engine, who=ADMIN, collection_id=closed)
    with session_scope(engine) as session:
        assert [c.name for c, _count in collections.listed(session=session)] == ["Team 2"]


def test_hidden_images_are_left_out_but_for_admins(engine, images):
    board = collections.create(engine=engine, who=ANN, name="b")
    collections.add(engine=engine, who=ANN, collection_id=board, image_ids=images)
    hide(engine, images[0])

    assert ids(engine, board) == images[1:]
    assert ids(engine, board, who=ADMIN) == images


def test_an_image_added_from_two_tabs_at_once_is_one_member(engine, images):
    board = collections.create(engine=engine, who=ANN, name="race")

    outcomes = race(
        6,
        lambda: collections.add(engine=engine, who=ANN, collection_id=board, image_ids=images[:1]),
        refused=NotAllowed,
    )

    assert outcomes == ["won"] * 6  # none failed: the others found it there
    assert ids(engine, board) == images[:1]


def test_a_new_collection_is_made_with_its_images_at_once_or_not_at_all(
    engine, images, monkeypatch
):
    other = collections.create(engine=engine, who=BOB, name="Bob's", image_ids=images[:1])
    board = collections.create(engine=engine, who=ANN, name="Picks",
                               image_ids=[images[2], "gone", images[0], images[2]])  # fmt: skip

    assert ids(engine, board) == [images[2], images[0]]
    assert ids(engine, other) == images[:1]  # the other collection untouched
    monkeypatch.setattr(collections, "MAX_IMAGES", 3)
    with pytest.raises(InvalidSettings):
        collections.create(engine=engine, who=ANN, name="Too many", image_ids=images)
    with session_scope(engine) as session:
        names = sorted(c.name for c, _count in collections.listed(session=session))
    # Refused whole: no empty "Too many" left behind.
    assert names == ["Bob's", "Picks"]


def image(lora_id: str, prompt: str) -> GeneratedImage:
    return GeneratedImage(
        id=f"{lora_id}-{prompt}", lora_training_id=lora_id, prompt=prompt,
        image_url="https://cdn.example/x.jpg", created_at="2026-01-01",
    )  # fmt: skip


def test_compare_opens_on_the_prompt_most_of_its_loras_made():
    board = [image("a", "fox"), image("b", "barn"), image("c", "barn"), image("a", "barn"),
             image("d", "fox"), image("e", "owl"), image("f", "owl")]  # fmt: skip
    usable = {"a", "b", "c", "d", "e"}

    seed = collections.compare_seed(board, usable=usable)

    # "barn": a, b, c; then the collection's other LoRAs up to four; f is not offered.
    assert seed == collections.CompareSeed(lora_ids=["b", "c", "a", "d"], prompt="barn")
    tie = collections.compare_seed([image("a", "fox"), image("b", "owl")], usable=usable)
    assert tie == collections.CompareSeed(lora_ids=["a", "b"], prompt="fox")  # first met
    assert collections.compare_seed([image("a", "fox"), image("f", "fox")], usable=usable) is None
    assert collections.compare_seed([image("a", "x"), image("a", "y")], usable=usable) is None

"""Favorites: stars on images, a user's starred images, and the gallery's covers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from lora_core.data.clock import to_iso
from lora_core.data.db import session_scope
from lora_core.data.models import GeneratedImage, ImageFavorite
from lora_core.gallery import favorites, queries
from lora_core.history import listing
from lora_core.history.filters import HistoryFilter
from tests.conftest import NOW
from tests.support import factories
from tests.support.factories import hide

pytestmark = pytest.mark.both_backends  # the core suite, on SQLite and on libSQL


@pytest.fixture
def star(engine):
    def run(user: str, image_id: str, *, starred: bool = True, minutes_ago: int = 0) -> None:
        factories.star(
            engine, user, image_id, starred=starred, now=NOW - timedelta(minutes=minutes_ago)
        )

    return run


def covers(engine) -> dict[str, str | None]:
    with session_scope(engine) as session:
        return {s.lora.id: s.cover_url for s in queries.list_loras(session=session)}


def test_a_star_is_counted_once_per_user_and_can_be_taken_back(engine, add_lora, add_images, star):
    add_lora("l")
    add_images("l", 2)
    star("ann", "l-img-0000")
    star("ann", "l-img-0000")  # twice: still one star
    star("bob", "l-img-0000")

    with session_scope(engine) as session:
        assert favorites.stars(session=session, image_id="l-img-0000", user="ann") == (2, True)
        assert favorites.stars(session=session, image_id="l-img-0000", user="cy") == (2, False)
        assert favorites.stars(session=session, image_id="l-img-0001", user=None) == (0, False)

    star("ann", "l-img-0000", starred=False)
    with session_scope(engine) as session:
        assert favorites.stars(session=session, image_id="l-img-0000", user="ann") == (1, False)


def test_a_user_sees_only_their_starred_images_of_that_lora_newest_first(
    engine, add_lora, add_images, star
):
    add_lora("l")
    add_lora("other")
    add_images("l", 5)
    add_images("other", 1)
    for image_id in ("l-img-0001", "l-img-0003", "other-img-0000"):
        star("ann", image_id)
    star("bob", "l-img-0004")

    with session_scope(engine) as session:
        page = favorites.list_starred_images(session=session, user="ann", lora_id="l")
        small = favorites.list_starred_images(
            session=session, user="ann", lora_id="l", page=2, page_size=1
        )

    assert [image.id for image in page.items] == ["l-img-0003", "l-img-0001"]
    assert (small.total, small.page_count, [i.id for i in small.items]) == (2, 2, ["l-img-0001"])


def test_the_most_starred_image_is_the_loras_cover(engine, add_lora, add_images, star):
    add_lora("l")
    add_lora("plain")
    add_images("l", 4)
    add_images("plain", 2)
    assert covers(engine)["l"] == "https://cdn.example/l/3.jpg"  # no stars: the latest

    star("ann", "l-img-0001", minutes_ago=10)
    star("bob", "l-img-0001", minutes_ago=9)
    star("ann", "l-img-0002", minutes_ago=1)
    assert covers(engine) == {
        "l": "https://cdn.example/l/1.jpg",  # two stars beat one
        "plain": "https://cdn.example/plain/1.jpg",
    }

    star("cy", "l-img-0002")  # a tie: the one starred most recently
    assert covers(engine)["l"] == "https://cdn.example/l/2.jpg"

    with session_scope(engine) as session:  # flagged by the safety checker: never a cover
        session.get(GeneratedImage, "l-img-0002").nsfw = True
        session.commit()
    assert covers(engine)["l"] == "https://cdn.example/l/1.jpg"  # the next most starred

    hide(engine, "l-img-0001")  # hidden ones neither
    assert covers(engine)["l"] == "https://cdn.example/l/3.jpg"  # no starred one left: latest


def test_history_can_show_only_generations_with_an_image_i_starred(
    engine, add_lora, add_batch, star
):
    add_lora("l")
    mine, other = add_batch(user="ann"), add_batch(user="bob")
    with session_scope(engine) as session:
        for batch_id in (mine, other):
            session.add(
                GeneratedImage(
                    id=f"{batch_id}-0", lora_training_id="l", user="ann",
                    prompt=batch_id, image_url="u", created_at="2026-11-01T00:00:00.000Z",
                    batch_id=batch_id,
                )
            )  # fmt: skip
        session.commit()
    star("cy", f"{other}-0")

    with session_scope(engine) as session:
        rows = listing.list_batches(session=session, history_filter=HistoryFilter(starred_by="cy"))
        none = listing.list_batches(session=session, history_filter=HistoryFilter(starred_by="zed"))

    assert [row.batch_id for row in rows.items] == [other]
    assert none.total == 0


def test_the_covers_thumbnail_is_always_the_cover_images_own(engine, add_lora, add_images, star):
    add_lora("l")
    add_images("l", 3)  # l-img-0002 is the latest
    with session_scope(engine) as session:
        for image in session.scalars(select(GeneratedImage)):
            if image.id != "l-img-0000":  # the one to be starred was stored before thumbnails
                image.thumbnail_url = image.image_url.replace(".jpg", ".thumb.webp")
        session.commit()

    def cover() -> tuple[str | None, str | None]:
        with session_scope(engine) as session:
            [summary] = queries.list_loras(session=session)
        return summary.cover_url, summary.cover_thumbnail_url

    assert cover() == ("https://cdn.example/l/2.jpg", "https://cdn.example/l/2.thumb.webp")
    star("ann", "l-img-0000")
    assert cover() == ("https://cdn.example/l/0.jpg", None)  # shown whole, not another's
    star("bob", "l-img-0001")
    star("cy", "l-img-0001")
    assert cover() == ("https://cdn.example/l/1.jpg", "https://cdn.example/l/1.thumb.webp")


def test_a_star_records_when_it_was_given(engine, add_lora, add_images, star):
    add_lora("l")
    add_images("l", 1)
    star("ann", "l-img-0000", minutes_ago=42)

    with session_scope(engine) as session:
        [row] = session.scalars(select(ImageFavorite)).all()
    assert row.created_at == to_iso(NOW - timedelta(minutes=42))


def test_taking_one_star_back_keeps_the_others(engine, add_lora, add_images, star):
    add_lora("l")
    add_images("l", 2)
    star("ann", "l-img-0000")
    star("ann", "l-img-0001")
    star("ann", "l-img-0000", starred=False)

    with session_scope(engine) as session:
        assert [row.image_id for row in session.scalars(select(ImageFavorite))] == ["l-img-0001"]


def test_starred_images_come_24_to_a_page_by_default(engine, add_lora, add_images, star):
    add_lora("l")
    add_images("l", 26)
    for number in range(26):
        star("ann", f"l-img-{number:04d}")

    with session_scope(engine) as session:
        first = favorites.list_starred_images(session=session, user="ann", lora_id="l")
        second = favorites.list_starred_images(session=session, user="ann", lora_id="l", page=2)
        nobody = favorites.list_starred_images(session=session, user="bob", lora_id="l")

    assert (first.page, first.page_size, first.total, len(first.items)) == (1, 24, 26, 24)
    assert [image.id for image in second.items] == ["l-img-0001", "l-img-0000"]  # the oldest
    assert (nobody.total, nobody.items) == (0, [])

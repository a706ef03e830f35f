"""Blind voting: sides drawn per voter, one vote per voter per pair, under races too."""

from __future__ import annotations

import threading

import pytest
from PIL import Image
from sqlalchemy import select

from lora_core.arena import arenas, voting
from lora_core.arena.voting import Side
from lora_core.data.db import session_scope
from lora_core.data.models import Arena, ArenaPair, ArenaVote, GeneratedImage
from lora_core.errors import DownloadFailed, InvalidArena
from lora_core.generation.recipe import NO_LORA
from tests.support.arenas import Cell, finished_sweep

pytestmark = pytest.mark.both_backends


@pytest.fixture
def arena(engine, add_lora):
    """Three arms (baseline, neon, ink) on two prompts: six pairs."""
    add_lora("neon", trigger_word="neon"), add_lora("ink", trigger_word="ink")
    cells = [
        Cell(lora, prompt=prompt) for prompt in ("a", "b") for lora in (NO_LORA, "neon", "ink")
    ]
    sweep_id, _ = finished_sweep(engine, cells)
    return arenas.create_arena(engine=engine, user="ann", name="blind", sweep_ids=[sweep_id])


def votes(engine):
    with session_scope(engine) as session:
        return sorted(
            (vote.pair_id, vote.user, vote.choice) for vote in session.scalars(select(ArenaVote))
        )


def next_for(engine, arena, voter, skipped=()):
    with session_scope(engine) as session:
        return voting.next_pair(session=session, arena_id=arena, voter=voter, skipped=skipped)


def test_a_vote_is_stored_as_the_pairs_own_arm_whatever_side_it_was_on(engine, arena):
    shown = next_for(engine, arena, "ann")
    with session_scope(engine) as session:
        pair = session.get(ArenaPair, shown.pair_id)
    a_left = shown.left_image_id == pair.image_a

    reveal = voting.cast_vote(engine=engine, voter="ann", pair_id=shown.pair_id, side=Side.LEFT)

    assert votes(engine) == [(shown.pair_id, "ann", "a" if a_left else "b")]
    assert reveal.counted and reveal.side == Side.LEFT
    assert {reveal.left, reveal.right} <= {
        "no LoRA (base model)",
        "neon · scale 1",
        "ink · scale 1",
    }
    assert reveal.left != reveal.right


def test_sides_and_order_are_the_same_for_one_voter_and_differ_between_voters(engine, arena):
    with session_scope(engine) as session:
        pair_ids = list(session.scalars(select(ArenaPair.id)))
        salt = session.get(Arena, arena).salt
    sides = {voter: [voting.left_is_a(salt, voter, pair) for pair in pair_ids] for voter in
             [f"voter-{n}" for n in range(20)]}  # fmt: skip
    unsalted = [voting.left_is_a("", voter, pair) for voter in sides for pair in pair_ids]

    assert len(salt) == 32  # a secret of the arena's, in no page or export
    assert next_for(engine, arena, "ann") == next_for(engine, arena, "ann")
    assert len({tuple(s) for s in sides.values()}) > 1
    assert 0.2 < sum(map(sum, sides.values())) / (20 * len(pair_ids)) < 0.8
    assert [side for s in sides.values() for side in s] != unsalted  # public ids tell nothing


def test_a_second_vote_from_another_tab_changes_nothing(engine, arena):
    shown = next_for(engine, arena, "ann")
    voting.cast_vote(engine=engine, voter="ann", pair_id=shown.pair_id, side=Side.LEFT)
    before = votes(engine)

    again = voting.cast_vote(engine=engine, voter="ann", pair_id=shown.pair_id, side=Side.RIGHT)

    assert not again.counted
    assert votes(engine) == before


def test_voters_racing_on_one_pair_each_count_once(engine, arena):
    shown = next_for(engine, arena, "ann")
    barrier = threading.Barrier(8)
    results = []

    def vote(voter: str) -> None:
        barrier.wait()
        results.append(
            voting.cast_vote(
                engine=engine, voter=voter, pair_id=shown.pair_id, side=Side.TIE
            ).counted
        )

    threads = [threading.Thread(target=vote, args=(f"v{n % 4}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [False] * 4 + [True] * 4
    assert [voter for _, voter, _ in votes(engine)] == ["v0", "v1", "v2", "v3"]


def test_progress_skips_and_the_end(engine, arena):
    first = next_for(engine, arena, "ann")
    assert (first.voted, first.total) == (0, 6)

    skipped = next_for(engine, arena, "ann", skipped={first.pair_id})
    assert skipped.pair_id != first.pair_id

    seen = set()
    for _ in range(6):
        shown = next_for(engine, arena, "ann", skipped={first.pair_id})
        seen.add(shown.pair_id)
        voting.cast_vote(engine=engine, voter="ann", pair_id=shown.pair_id, side=Side.BOTH_BAD)

    assert len(seen) == 6  # the skipped pair came back last
    assert next_for(engine, arena, "ann") is None
    assert next_for(engine, arena, "bob").voted == 0  # another voter's votes are theirs


def test_an_unknown_pair_is_a_clear_message(engine, arena):
    with pytest.raises(InvalidArena, match="not in this arena"):
        voting.cast_vote(engine=engine, voter="ann", pair_id="nope", side=Side.LEFT)
    assert votes(engine) == []


def test_an_arena_image_is_served_as_pixels_only(engine, add_lora, media_store, tmp_path):
    """Re-encoded: none of the stored file's recipe text, and only images of a pair."""
    add_lora("neon", trigger_word="neon"), add_lora("ink", trigger_word="ink")
    source = tmp_path / "picture.png"
    picture = Image.new("RGB", (1400, 700), "teal")
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", "neon lora_id=neon scale 1")
    picture.save(source, pnginfo=info)
    url = media_store.save("arena/x.png", source.read_bytes(), content_type="image/png")
    sweep_id, images = finished_sweep(engine, [Cell("neon"), Cell("ink")], image_url=url)
    arenas.create_arena(engine=engine, user="ann", name="pixels", sweep_ids=[sweep_id])
    _outsider, [other] = finished_sweep(engine, [Cell("neon", prompt="alone")], image_url=url)

    with session_scope(engine) as session:
        data = voting.anonymous_image(session=session, store=media_store, image_id=images[0])
        with pytest.raises(DownloadFailed):
            voting.anonymous_image(session=session, store=media_store, image_id=other)

    assert b"neon" not in data and b"parameters" not in data
    import io

    with Image.open(io.BytesIO(data)) as shown:
        assert (shown.format, shown.size) == ("WEBP", (1024, 512))


def test_a_pair_whose_image_was_hidden_since_is_left_out(engine, arena, media_store):
    first = next_for(engine, arena, "ann")
    with session_scope(engine) as session:
        session.get(GeneratedImage, first.left_image_id).hidden = True
        session.commit()

    shown = [next_for(engine, arena, "bob")]
    for _ in range(6):
        pair = next_for(engine, arena, "bob")
        if pair is None:
            break
        shown.append(pair)
        voting.cast_vote(engine=engine, voter="bob", pair_id=pair.pair_id, side=Side.TIE)

    hidden = first.left_image_id
    assert all(hidden not in (p.left_image_id, p.right_image_id) for p in shown if p)
    assert shown[0].total == 4  # of six pairs, the two with that image are out
    with session_scope(engine) as session, pytest.raises(DownloadFailed):
        voting.anonymous_image(session=session, store=media_store, image_id=hidden)

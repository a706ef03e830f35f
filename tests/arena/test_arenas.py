"""Arenas made from sweeps: which images pair up, and an arena whole or absent."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from lora_core.arena import arenas
from lora_core.data.db import session_scope
from lora_core.data.models import Arena, ArenaArm, ArenaPair, BatchStatus
from lora_core.errors import InvalidArena
from lora_core.generation.recipe import NO_LORA, NO_LORA_LABEL
from tests.support.arenas import Cell, finished_sweep

pytestmark = pytest.mark.both_backends


def pairs_of(engine, arena_id):
    with session_scope(engine) as session:
        arms = {arm.id: arm for arm in session.scalars(select(ArenaArm))}
        return [
            (pair.prompt, pair.seed, arms[pair.arm_a].label, arms[pair.arm_b].label,
             pair.image_a, pair.image_b)
            for pair in session.scalars(
                select(ArenaPair).where(ArenaPair.arena_id == arena_id).order_by(ArenaPair.position)
            )
        ]  # fmt: skip


def test_pairs_share_prompt_and_seed_and_never_one_arm(engine, add_lora):
    """Two LoRAs and the baseline on two prompts (one with two seeds): three pairs per
    prompt and seed, each once, none within one arm; the images match their arms."""
    neon, ink = add_lora("neon", trigger_word="neon"), add_lora("ink", trigger_word="ink")
    cells = [
        Cell(lora, prompt=prompt, seed=seed)
        for prompt, seed in (("a lighthouse", "7"), ("a lighthouse", "8"), ("a fox", "7"))
        for lora in (NO_LORA, neon.id, ink.id)
    ]
    sweep_id, images = finished_sweep(engine, cells)
    bystander, _ = finished_sweep(
        engine, [Cell(neon.id, prompt="other"), Cell(ink.id, prompt="other")]
    )

    arena_id = arenas.create_arena(
        engine=engine, user="ann", name="Neon v ink", sweep_ids=[sweep_id]
    )

    pairs = pairs_of(engine, arena_id)
    assert len(pairs) == 9
    assert {(p[0], p[1]) for p in pairs} == {
        ("a lighthouse", "7"),
        ("a lighthouse", "8"),
        ("a fox", "7"),
    }
    for _prompt, _seed, a, b, image_a, image_b in pairs:
        assert a != b
        assert {image_a, image_b} <= set(images)
    labels = {(p[0], p[1], frozenset((p[2], p[3]))) for p in pairs}
    assert len(labels) == 9  # each two arms once per prompt and seed, whichever order
    assert {p[2] for p in pairs} | {p[3] for p in pairs} == {
        NO_LORA_LABEL,
        "neon · scale 1",
        "ink · scale 1",
    }
    assert all(p[0] != "other" for p in pairs)  # the other sweep's cells stay out
    with session_scope(engine) as session:
        arena = session.get(Arena, arena_id)
    assert (arena.name, arena.user, json.loads(arena.sources)) == ("Neon v ink", "ann", [sweep_id])
    assert bystander


def test_scales_of_one_lora_are_arms_and_the_newest_image_of_an_arm_stands(engine, add_lora):
    neon = add_lora("neon", trigger_word="neon")
    sweep_id, images = finished_sweep(
        engine, [Cell(neon.id, scale=0.5), Cell(neon.id, scale=1.0), Cell(neon.id, scale=1.0)]
    )

    arena_id = arenas.create_arena(engine=engine, user="ann", name="scales", sweep_ids=[sweep_id])

    [(_, _, a, b, image_a, image_b)] = pairs_of(engine, arena_id)
    assert {a, b} == {"neon · scale 0.5", "neon · scale 1"}
    assert {image_a, image_b} == {images[0], images[2]}  # the newer of the two at 1.0


def test_two_sweeps_pair_across_when_prompt_and_seed_match(engine, add_lora):
    old, new = add_lora("v1", trigger_word="v1"), add_lora("v2", trigger_word="v2")
    first, _ = finished_sweep(engine, [Cell(old.id)])
    second, _ = finished_sweep(engine, [Cell(new.id), Cell(new.id, seed="99")])

    arena_id = arenas.create_arena(
        engine=engine, user="ann", name="v2 v v1", sweep_ids=[first, second]
    )

    assert [(p[1], {p[2], p[3]}) for p in pairs_of(engine, arena_id)] == [
        ("7", {"v1 · scale 1", "v2 · scale 1"})
    ]


@pytest.mark.parametrize(
    "cell",
    [Cell("ink", status=BatchStatus.FAILED), Cell("ink", nsfw=True), Cell("ink", hidden=True)],
)
def test_failed_flagged_and_hidden_images_make_no_pair(engine, add_lora, cell):
    add_lora("neon"), add_lora("ink")
    sweep_id, _ = finished_sweep(engine, [Cell("neon"), cell])

    with pytest.raises(InvalidArena, match="no pair"):
        arenas.create_arena(engine=engine, user="ann", name="x", sweep_ids=[sweep_id])

    with session_scope(engine) as session:
        assert session.scalars(select(Arena)).all() == []
        assert session.scalars(select(ArenaPair)).all() == []


@pytest.mark.parametrize(
    ("name", "sweeps", "message"),
    [("  ", ["s"], "name"), ("x" * 101, ["s"], "at most 100"), ("ok", [], "between 1"),
     ("ok", ["nope"], "no longer exist")],
)  # fmt: skip
def test_bad_requests_are_clear_and_write_nothing(engine, name, sweeps, message):
    with pytest.raises(InvalidArena, match=message):
        arenas.create_arena(engine=engine, user="ann", name=name, sweep_ids=sweeps)
    with session_scope(engine) as session:
        assert session.scalars(select(Arena)).all() == []


def test_the_list_counts_pairs_votes_and_voters(engine, add_lora):
    from lora_core.arena import voting

    add_lora("neon"), add_lora("ink")
    sweep_id, _ = finished_sweep(engine, [Cell("neon"), Cell("ink"), Cell(NO_LORA)])
    arena_id = arenas.create_arena(engine=engine, user="ann", name="three", sweep_ids=[sweep_id])
    empty_id = arenas.create_arena(engine=engine, user="bob", name="later", sweep_ids=[sweep_id])
    with session_scope(engine) as session:
        pair = voting.next_pair(session=session, arena_id=arena_id, voter="ann")
    for voter in ("ann", "bob"):
        voting.cast_vote(engine=engine, voter=voter, pair_id=pair.pair_id, side=voting.Side.LEFT)

    with session_scope(engine) as session:
        listed = {
            s.arena.id: (s.pairs, s.votes, s.voters) for s in arenas.list_arenas(session=session)
        }

    assert listed == {arena_id: (3, 2, 2), empty_id: (3, 0, 0)}


def test_the_base_model_is_one_arm_whatever_the_scale_and_alike_names_are_told_apart(
    engine, add_lora
):
    add_lora("a", trigger_word="same"), add_lora("b", trigger_word="same")
    cells = [Cell(lora, scale=scale) for scale in (0.5, 1.0) for lora in (NO_LORA, "a", "b")]
    sweep_id, _ = finished_sweep(engine, cells)

    arena_id = arenas.create_arena(engine=engine, user="ann", name="x", sweep_ids=[sweep_id])

    pairs = pairs_of(engine, arena_id)
    labels = {p[2] for p in pairs} | {p[3] for p in pairs}
    assert labels == {
        NO_LORA_LABEL, "same · scale 0.5", "same · scale 1", "same · scale 0.5 (2)",
        "same · scale 1 (2)",
    }  # fmt: skip
    assert len(pairs) == 10  # five arms, every two once: never base model against itself


def test_a_collection_pairs_its_images_by_prompt_at_a_shared_seed_where_there_is_one(
    engine, add_lora
):
    """Hand-picked images: two LoRAs share seed 7 for the lighthouse (that pair, though each
    has a newer image at another seed); for the fox they share no seed (the newest of each).
    A hidden image, an image of one arm alone and a LoRA's image outside it stay out."""
    from lora_core.gallery import collections
    from lora_core.identity import Identity

    neon, ink = add_lora("neon", trigger_word="neon"), add_lora("ink", trigger_word="ink")
    cells = [
        Cell(neon.id, seed="7"), Cell(ink.id, seed="7"), Cell(neon.id, seed="8"),
        Cell(ink.id, seed="9"), Cell(neon.id, prompt="a fox", seed="1"),
        Cell(ink.id, prompt="a fox", seed="2"), Cell(ink.id, prompt="a fox", seed="3"),
        Cell(ink.id, prompt="an owl"), Cell(neon.id, prompt="a barn", seed="5"),
        Cell(ink.id, prompt="a barn", seed="5", hidden=True),
    ]  # fmt: skip
    _sweep, images = finished_sweep(engine, cells)
    outside, _ = finished_sweep(engine, [Cell(NO_LORA), Cell(neon.id)])
    board = collections.create(engine=engine, who=Identity(user="ann"), name="Review",
                               image_ids=images)  # fmt: skip

    arena_id = arenas.create_arena_from_collection(
        engine=engine, user="bob", name="From the review", collection_id=board
    )

    pairs = {(p[0], p[1]): {p[4], p[5]} for p in pairs_of(engine, arena_id)}
    assert pairs == {
        ("a lighthouse", "7"): {images[0], images[1]},
        ("a fox", None): {images[4], images[6]},  # ink's newest fox
    }
    with session_scope(engine) as session:
        arena = session.get(Arena, arena_id)
    assert (arena.name, arena.user, arena.collection_id, arena.sources) == (
        "From the review",
        "bob",
        board,
        "[]",
    )
    assert outside


def test_a_collection_without_a_pair_or_gone_makes_no_arena(engine, add_lora):
    from lora_core.gallery import collections
    from lora_core.identity import Identity

    neon = add_lora("neon", trigger_word="neon")
    _sweep, images = finished_sweep(engine, [Cell(neon.id, seed="1"), Cell(neon.id, seed="2")])
    board = collections.create(engine=engine, who=Identity(user="ann"), name="One arm",
                               image_ids=images)  # fmt: skip

    with pytest.raises(InvalidArena, match="no pair to vote on"):
        arenas.create_arena_from_collection(engine=engine, user="bob", name="x",
                                            collection_id=board)  # fmt: skip
    with pytest.raises(InvalidArena, match="no longer exists"):
        arenas.create_arena_from_collection(engine=engine, user="bob", name="x",
                                            collection_id="gone")  # fmt: skip
    with session_scope(engine) as session:
        assert session.scalars(select(Arena)).all() == []

"""Bradley–Terry ratings: a worked example, strengths recovered, the leaderboard's figures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lora_core.arena import arenas, ratings, voting
from lora_core.arena.ratings import Comparison
from lora_core.arena.voting import Side
from lora_core.data.db import session_scope
from lora_core.generation.recipe import NO_LORA
from tests.support.arenas import Cell, finished_sweep


def comparisons(wins: dict[tuple[int, int], int]) -> list[Comparison]:
    return [Comparison(i, j, 1.0) for (i, j), count in wins.items() for _ in range(count)]


def test_a_chain_of_arms_gets_the_log_odds_of_its_records():
    """On a chain (0–1, 1–2) the maximum-likelihood strengths differ by the log-odds of each
    record exactly: 7–3 gives ln(7/3), 6–4 ln(6/4)."""
    data = comparisons({(0, 1): 7, (1, 0): 3, (1, 2): 6, (2, 1): 4})

    strengths = ratings.fit(3, data)

    assert strengths[0] - strengths[1] == pytest.approx(math.log(7 / 3), abs=0.02)
    assert strengths[1] - strengths[2] == pytest.approx(math.log(6 / 4), abs=0.02)
    assert strengths.mean() == pytest.approx(0)


def test_a_tie_is_half_a_win_each_way():
    """3 wins, 1 loss and 2 ties: 4–2 in half-wins, ln 2 apart."""
    data = comparisons({(0, 1): 3, (1, 0): 1}) + [Comparison(0, 1, 0.5)] * 2

    strengths = ratings.fit(2, data)

    assert strengths[0] - strengths[1] == pytest.approx(math.log(2), abs=0.02)


def test_known_strengths_fall_within_the_interval_in_nine_runs_of_ten():
    """Four arms of known strength, 60 simulated votes per run: the true Elo gap between
    each arm and the mean lies within its 95 % interval in ≥ 90 % of arm-runs."""
    truth = np.array([0.8, 0.3, -0.2, -0.9])
    truth_elo = ratings.elo(truth - truth.mean())
    rng = np.random.default_rng(2026)
    inside = total = 0
    for _ in range(30):
        data = []
        for _ in range(60):
            i, j = rng.choice(4, 2, replace=False)
            p = 1 / (1 + math.exp(truth[j] - truth[i]))
            data.append(Comparison(int(i), int(j), 1.0 if rng.random() < p else 0.0))
        low, high = ratings.intervals(4, data, resamples=100)
        inside += int(((low <= truth_elo) & (truth_elo <= high)).sum())
        total += 4
    assert inside / total >= 0.9


@pytest.mark.both_backends
def test_the_leaderboard_of_an_arena(engine, add_lora):
    """neon beats the baseline on every vote of two voters, ink ties it once: ranks,
    counts, the head-to-head, per prompt, agreement and the export all say so."""
    add_lora("neon", trigger_word="neon"), add_lora("ink", trigger_word="ink")
    cells = [Cell(lora, prompt=prompt) for prompt in ("a", "b") for lora in (NO_LORA, "neon")]
    cells.append(Cell("ink", prompt="a"))
    sweep_id, _ = finished_sweep(engine, cells)
    arena_id = arenas.create_arena(engine=engine, user="ann", name="board", sweep_ids=[sweep_id])
    other, _ = finished_sweep(engine, [Cell("neon", prompt="z"), Cell("ink", prompt="z")])
    other_arena = arenas.create_arena(engine=engine, user="ann", name="other", sweep_ids=[other])
    labels = {"no LoRA (base model)": "base", "neon · scale 1": "neon", "ink · scale 1": "ink"}
    for voter in ("ann", "bob"):
        while True:
            with session_scope(engine) as session:
                shown = voting.next_pair(session=session, arena_id=arena_id, voter=voter)
            if shown is None:
                break
            reveal = voting.cast_vote(
                engine=engine, voter=voter, pair_id=shown.pair_id, side=Side.TIE
            )
            # Vote again by what was revealed is not possible (one vote): decide first instead.
            assert reveal.counted
    with session_scope(engine) as session:
        shown = voting.next_pair(session=session, arena_id=other_arena, voter="ann")
    voting.cast_vote(engine=engine, voter="ann", pair_id=shown.pair_id, side=Side.LEFT)

    with session_scope(engine) as session:
        board = ratings.leaderboard(session=session, arena_id=arena_id)
        every = ratings.leaderboard(session=session, arena_id=None)
        export = ratings.votes_export(session=session, arena_id=arena_id)

    standings = board.standings.set_index("arm")
    assert set(standings.index) == set(labels)
    assert board.votes == 8 and board.voters == 2  # 4 pairs (3 on "a", 1 on "b") × 2
    assert (standings["ties"].sum(), standings["wins"].sum()) == (16, 0)
    assert standings["rating"].round(0).nunique() <= 2 and standings["few_votes"].all()
    assert board.agreement == 1.0 and board.judged_by_several == 4
    assert list(export.columns) == ratings.EXPORT_COLUMNS
    assert len(export) == 8 and set(export["winner"]) == {"tie"}
    assert every.votes == 9  # the other arena's vote too
    [neon] = ratings.standings_of(every, "neon")
    assert (neon.arm, neon.of, neon.arenas) == ("neon · scale 1", 3, 2)
    assert (neon.wins + neon.losses, neon.ties) == (1, 6)  # 3 pairs tied by 2 voters, 1 won
    assert ratings.standings_of(every, "unknown") == []


@pytest.mark.both_backends
def test_wins_rank_the_winner_first_with_an_interval_around_it(engine, add_lora):
    add_lora("neon", trigger_word="neon")
    cells = [Cell(lora, prompt=f"p{n}") for n in range(12) for lora in (NO_LORA, "neon")]
    sweep_id, _ = finished_sweep(engine, cells)
    arena_id = arenas.create_arena(engine=engine, user="ann", name="wins", sweep_ids=[sweep_id])
    with session_scope(engine) as session:
        arm_of_image = {}
        from sqlalchemy import select

        from lora_core.data.models import ArenaArm, ArenaPair

        arms = {arm.id: arm.label for arm in session.scalars(select(ArenaArm))}
        for pair in session.scalars(select(ArenaPair)):
            arm_of_image[pair.image_a], arm_of_image[pair.image_b] = (
                arms[pair.arm_a],
                arms[pair.arm_b],
            )
    for voter in ("ann", "bob"):
        for _ in range(12):
            with session_scope(engine) as session:
                shown = voting.next_pair(session=session, arena_id=arena_id, voter=voter)
            neon_left = arm_of_image[shown.left_image_id].startswith("neon")
            side = Side.LEFT if neon_left else Side.RIGHT
            if voter == "bob" and shown.prompt == "p0":
                side = Side.RIGHT if neon_left else Side.LEFT  # one dissent
            voting.cast_vote(engine=engine, voter=voter, pair_id=shown.pair_id, side=side)

    with session_scope(engine) as session:
        board = ratings.leaderboard(session=session, arena_id=arena_id)

    first, second = board.standings.iloc[0], board.standings.iloc[1]
    assert (first["arm"], first["rank"], first["wins"], first["losses"]) == (
        "neon · scale 1",
        1,
        23,
        1,
    )
    assert first["low"] <= first["rating"] <= first["high"] and first["low"] > second["high"] - 400
    assert not first["few_votes"]
    assert board.head_to_head.loc["neon · scale 1", "no LoRA (base model)"] == pytest.approx(
        23 / 24
    )
    assert board.agreement == pytest.approx(11 / 12)


@pytest.mark.both_backends
def test_across_arenas_a_voters_judgement_of_two_images_counts_once(engine, add_lora):
    """Two arenas made from one sweep hold the same pairs: ann's votes in both count once
    on the every-arena board, each arena's own board counts its own."""
    add_lora("neon", trigger_word="neon")
    sweep_id, _ = finished_sweep(engine, [Cell(NO_LORA), Cell("neon")])
    first = arenas.create_arena(engine=engine, user="ann", name="one", sweep_ids=[sweep_id])
    second = arenas.create_arena(engine=engine, user="ann", name="two", sweep_ids=[sweep_id])
    for arena_id in (first, second):
        with session_scope(engine) as session:
            shown = voting.next_pair(session=session, arena_id=arena_id, voter="ann")
        voting.cast_vote(engine=engine, voter="ann", pair_id=shown.pair_id, side=Side.TIE)

    with session_scope(engine) as session:
        every = ratings.leaderboard(session=session, arena_id=None)
        own = ratings.leaderboard(session=session, arena_id=second)

    assert (every.votes, own.votes) == (1, 1)


def vote_for(engine, arena_id: str, voter: str, preferred: str, *, pairs: int) -> None:
    """`voter` votes on `pairs` pairs, always for the arm labelled `preferred` when it is
    shown (else a tie)."""
    from sqlalchemy import select

    from lora_core.data.models import ArenaArm, ArenaPair

    with session_scope(engine) as session:
        labels = {arm.id: arm.label for arm in session.scalars(select(ArenaArm))}
        label_of = {}
        for pair in session.scalars(select(ArenaPair)):
            label_of[pair.image_a], label_of[pair.image_b] = labels[pair.arm_a], labels[pair.arm_b]
    for _ in range(pairs):
        with session_scope(engine) as session:
            shown = voting.next_pair(session=session, arena_id=arena_id, voter=voter)
        if label_of[shown.left_image_id] == preferred:
            side = Side.LEFT
        elif label_of[shown.right_image_id] == preferred:
            side = Side.RIGHT
        else:
            side = Side.TIE
        voting.cast_vote(engine=engine, voter=voter, pair_id=shown.pair_id, side=side)


def test_the_best_rated_scale_of_a_lora_judged_at_several(engine, add_lora):
    add_lora("neon", trigger_word="neon")
    add_lora("ink", trigger_word="ink")
    cells = [
        Cell(lora, scale, prompt=f"p{n}")
        for n in range(3)
        for lora, scale in (("neon", 0.6), ("neon", 1.2), ("ink", 1.0), (NO_LORA, 1.0))
    ]
    sweep_id, _ = finished_sweep(engine, cells)
    arena_id = arenas.create_arena(engine=engine, user="ann", name="s", sweep_ids=[sweep_id])
    vote_for(engine, arena_id, "ann", "neon · scale 1.2", pairs=18)

    with session_scope(engine) as session:
        board = ratings.leaderboard(session=session, arena_id=arena_id)

    assert board.standings.iloc[0]["arm"] == "neon · scale 1.2"
    assert ratings.best_scales(board) == {"neon": 1.2}  # ink: one scale; the base model: none


def test_a_lora_alone_and_stacked_are_two_arms_named_apart(engine, add_lora):
    from sqlalchemy import select

    from lora_core.data.models import ArenaArm, BatchLora, GenerationBatch

    add_lora("neon", trigger_word="neon")
    add_lora("style", trigger_word="wtrclr")
    cells = [Cell("neon", 1.0, prompt=f"p{n}") for n in range(2) for _ in range(2)]
    sweep_id, _ = finished_sweep(engine, cells)
    with session_scope(engine) as session:  # every other cell had wtrclr stacked at 0.5
        batches = session.scalars(
            select(GenerationBatch).where(GenerationBatch.sweep_id == sweep_id)
            .order_by(GenerationBatch.created_at)
        ).all()  # fmt: skip
        for batch in batches[1::2]:
            session.add(
                BatchLora(batch_id=batch.id, position=1, lora_training_id="style", lora_scale=0.5)
            )
        session.commit()

    arena_id = arenas.create_arena(engine=engine, user="ann", name="s", sweep_ids=[sweep_id])
    vote_for(engine, arena_id, "ann", "neon · scale 1 · + wtrclr 0.5", pairs=2)

    with session_scope(engine) as session:
        arms = {(arm.label, arm.stack) for arm in session.scalars(select(ArenaArm))}
        board = ratings.leaderboard(session=session, arena_id=arena_id)
    assert arms == {("neon · scale 1", None), ("neon · scale 1 · + wtrclr 0.5", "style:0.5")}
    assert list(board.standings["arm"]) == ["neon · scale 1 · + wtrclr 0.5", "neon · scale 1"]
    assert ratings.best_scales(board) == {}  # one scale alone; the stacked arm's is not its own

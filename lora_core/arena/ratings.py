"""Bradley–Terry ratings from an arena's votes (or every arena's), with 95 % intervals.

The model: arm i beats arm j with probability p_i / (p_i + p_j). `choix` fits it
(`ilsr_pairwise`, a maintained implementation of the maximum-likelihood estimate), from
whole comparisons; a tie (or "both bad") is half a win each way, which choix takes as one
win each way against two for every decisive vote: the same likelihood, up to a power, so
the same estimate. A small `ALPHA` (a prior) keeps an arm that won or lost every vote
finite. Ratings are shown on the Elo scale (1000 + 400·log10 of strength, mean 1000).

The intervals are a bootstrap over votes (`BOOTSTRAP` resamples, seeded by the votes, so
one set of votes always shows the same figures): the 2.5th and 97.5th percentiles of each
arm's rating. Arms with fewer than `FEW_VOTES` votes are marked: their rating says little.
Across arenas, an arm is its LoRA and settings, whichever arena it stood in.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import astuple, dataclass

import choix
import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlmodel import Session, col

from lora_core.arena.arenas import ArmKey, arm_labels, unique_labels
from lora_core.data.models import Arena, ArenaArm, ArenaChoice, ArenaPair, ArenaVote
from lora_core.generation.recipe import NO_LORA

ALPHA = 0.01
BOOTSTRAP = 200
FEW_VOTES = 10
ELO_SCALE = 400 / math.log(10)


@dataclass(frozen=True)
class Comparison:
    """One vote between arms `i` and `j` (indices): 1 i won, 0 j won, 0.5 neither."""

    i: int
    j: int
    score: float


def fit(n_arms: int, comparisons: Sequence[Comparison]) -> np.ndarray:
    """Each arm's Bradley–Terry log-strength (mean 0) from the comparisons."""
    data: list[tuple[int, int]] = []
    for comparison in comparisons:
        if comparison.score == 1:
            data += [(comparison.i, comparison.j)] * 2
        elif comparison.score == 0:
            data += [(comparison.j, comparison.i)] * 2
        else:
            data += [(comparison.i, comparison.j), (comparison.j, comparison.i)]
    if n_arms < 2 or not data:
        return np.zeros(n_arms)
    strengths = choix.ilsr_pairwise(n_arms, data, alpha=ALPHA)
    return strengths - strengths.mean()


def elo(log_strengths: np.ndarray) -> np.ndarray:
    return 1000 + ELO_SCALE * log_strengths


def intervals(
    n_arms: int, comparisons: Sequence[Comparison], *, resamples: int = BOOTSTRAP
) -> tuple[np.ndarray, np.ndarray]:
    """The 95 % bootstrap interval of each arm's Elo rating: (low, high)."""
    if not comparisons:
        return np.full(n_arms, np.nan), np.full(n_arms, np.nan)
    seed = int.from_bytes(
        hashlib.sha256(repr([(c.i, c.j, c.score) for c in comparisons]).encode()).digest()[:8],
        "big",
    )
    rng = np.random.default_rng(seed)
    samples = np.empty((resamples, n_arms))
    for row in range(resamples):
        drawn = rng.integers(0, len(comparisons), len(comparisons))
        samples[row] = elo(fit(n_arms, [comparisons[k] for k in drawn]))
    return np.percentile(samples, 2.5, axis=0), np.percentile(samples, 97.5, axis=0)


SCORES = {ArenaChoice.A: 1.0, ArenaChoice.B: 0.0, ArenaChoice.TIE: 0.5, ArenaChoice.BOTH_BAD: 0.5}


@dataclass(frozen=True)
class Leaderboard:
    standings: pd.DataFrame
    """One row per arm, best first: rank, arm, lora_id, arenas (how many it was voted in),
    rating, low, high, wins, ties, losses, both_bad, votes, few_votes."""
    head_to_head: pd.DataFrame
    """Arm × arm: the share of their votes the row's arm won (a tie half), blank if they
    never met."""
    per_prompt: pd.DataFrame
    """Prompt × arm: the share of its votes the arm won on that prompt."""
    votes: int
    voters: int
    agreement: float | None
    """Of the pairs two or more voters judged, the share where every voter agreed."""
    judged_by_several: int


def _votes(session: Session, arena_id: str | None) -> pd.DataFrame:
    """Every vote with its pair's prompt, seed and both arms (keys and labels)."""
    arm_a, arm_b = ArenaArm.__table__.alias("arm_a"), ArenaArm.__table__.alias("arm_b")  # type: ignore[attr-defined]
    query = (
        select(
            col(ArenaVote.arena_id).label("arena_id"),
            col(Arena.name).label("arena"),
            col(ArenaVote.pair_id).label("pair"),
            col(ArenaPair.prompt).label("prompt"),
            col(ArenaPair.seed).label("seed"),
            col(ArenaPair.image_a).label("image_a"),
            col(ArenaPair.image_b).label("image_b"),
            col(ArenaVote.choice).label("choice"),
            col(ArenaVote.user).label("voter"),
            col(ArenaVote.created_at).label("time"),
            *(
                column.label(f"{side}_{name}")
                for side, table in (("a", arm_a), ("b", arm_b))
                for name, column in (
                    ("lora", table.c.lora_training_id),
                    ("scale", table.c.lora_scale),
                    ("steps", table.c.num_inference_steps),
                    ("guidance", table.c.guidance_scale),
                    ("size", table.c.image_size),
                    ("label", table.c.label),
                    ("stack", table.c.stack),
                )
            ),
        )
        .join(ArenaPair, col(ArenaPair.id) == col(ArenaVote.pair_id))
        .join(Arena, col(Arena.id) == col(ArenaVote.arena_id))
        .join(arm_a, arm_a.c.id == col(ArenaPair.arm_a))
        .join(arm_b, arm_b.c.id == col(ArenaPair.arm_b))
        .order_by(col(ArenaVote.created_at), col(ArenaVote.pair_id), col(ArenaVote.user))
    )
    if arena_id is not None:
        query = query.where(col(ArenaVote.arena_id) == arena_id)
    return pd.DataFrame(session.execute(query).mappings().all())


def once_per_voter_and_images(votes: pd.DataFrame) -> pd.DataFrame:
    """Across arenas, a voter's first vote on two images stands: arenas made from the same
    sweeps hold the same pairs, and one judgement must not count twice."""
    if votes.empty:
        return votes
    images = [tuple(sorted(pair)) for pair in zip(votes["image_a"], votes["image_b"], strict=True)]
    return votes.assign(images=images).drop_duplicates(["voter", "images"]).drop(columns="images")


def _arm_key(row: pd.Series, side: str) -> ArmKey:
    return ArmKey(
        lora_id=row[f"{side}_lora"],
        lora_scale=float(row[f"{side}_scale"]),
        steps=int(row[f"{side}_steps"]),
        guidance=float(row[f"{side}_guidance"]),
        image_size=str(row[f"{side}_size"]),
        stack=row[f"{side}_stack"] or "",
    )


def leaderboard(*, session: Session, arena_id: str | None) -> Leaderboard:
    """The standings of one arena's arms (`arena_id`), or of every arm across arenas."""
    votes = _votes(session, arena_id)
    if arena_id is None:
        votes = once_per_voter_and_images(votes)
    if votes.empty:
        empty = pd.DataFrame(
            columns=[
                "rank",
                "arm",
                "lora_id",
                "lora_scale",
                "stack",
                "arenas",
                "rating",
                "low",
                "high",
                "wins",
                "ties",
                "losses",
                "both_bad",
                "votes",
                "few_votes",
            ]
        )
        return Leaderboard(empty, pd.DataFrame(), pd.DataFrame(), 0, 0, None, 0)
    keys_a = [_arm_key(row, "a") for _, row in votes.iterrows()]
    keys_b = [_arm_key(row, "b") for _, row in votes.iterrows()]
    arms = sorted(set(keys_a) | set(keys_b), key=astuple)  # by LoRA, then settings
    index = {arm: number for number, arm in enumerate(arms)}
    if arena_id is None:
        labels = arm_labels(session, arms)
    else:
        labels = {key: row for key, row in zip(keys_a, votes["a_label"], strict=True)}
        labels |= {key: row for key, row in zip(keys_b, votes["b_label"], strict=True)}
        labels = unique_labels(labels)
    names = [labels[arm] for arm in arms]
    arenas_of: dict[ArmKey, set[str]] = {}
    for a, b, arena in zip(keys_a, keys_b, votes["arena_id"], strict=True):
        arenas_of.setdefault(a, set()).add(arena)
        arenas_of.setdefault(b, set()).add(arena)
    comparisons = [
        Comparison(index[a], index[b], SCORES[ArenaChoice(choice)])
        for a, b, choice in zip(keys_a, keys_b, votes["choice"], strict=True)
    ]
    ratings = elo(fit(len(arms), comparisons))
    low, high = intervals(len(arms), comparisons)
    tally = np.zeros((len(arms), 4), dtype=int)  # wins, ties, losses, both bad
    met = np.zeros((len(arms), len(arms)))
    won = np.zeros((len(arms), len(arms)))
    for comparison, choice in zip(comparisons, votes["choice"], strict=True):
        i, j, score = comparison.i, comparison.j, comparison.score
        met[i, j] += 1
        met[j, i] += 1
        won[i, j] += score
        won[j, i] += 1 - score
        if choice == ArenaChoice.BOTH_BAD:
            tally[i, 3] += 1
            tally[j, 3] += 1
        elif score == 0.5:
            tally[i, 1] += 1
            tally[j, 1] += 1
        else:
            tally[i if score == 1 else j, 0] += 1
            tally[j if score == 1 else i, 2] += 1
    counts = tally.sum(axis=1)
    standings = pd.DataFrame(
        {
            "arm": names,
            "lora_id": [arm.lora_id for arm in arms],
            "lora_scale": [arm.lora_scale for arm in arms],
            "stack": [arm.stack for arm in arms],
            "arenas": [len(arenas_of.get(arm, set())) for arm in arms],
            "rating": ratings.round(0),
            "low": low.round(0),
            "high": high.round(0),
            "wins": tally[:, 0],
            "ties": tally[:, 1],
            "losses": tally[:, 2],
            "both_bad": tally[:, 3],
            "votes": counts,
            "few_votes": counts < FEW_VOTES,
        }
    ).sort_values(["rating", "arm"], ascending=[False, True], kind="stable")
    standings.insert(0, "rank", range(1, len(standings) + 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(met > 0, won / met, np.nan)
    head_to_head = pd.DataFrame(shares, index=names, columns=names)
    order = list(standings["arm"])
    head_to_head = head_to_head.loc[order, order]
    per_prompt = _per_prompt(votes, keys_a, keys_b, labels).reindex(columns=order)
    agreement, several = _agreement(votes)
    return Leaderboard(
        standings=standings.reset_index(drop=True),
        head_to_head=head_to_head,
        per_prompt=per_prompt,
        votes=len(votes),
        voters=int(votes["voter"].nunique()),
        agreement=agreement,
        judged_by_several=several,
    )


def _per_prompt(
    votes: pd.DataFrame, keys_a: list[ArmKey], keys_b: list[ArmKey], labels: dict[ArmKey, str]
) -> pd.DataFrame:
    scores = votes["choice"].map(lambda choice: SCORES[ArenaChoice(choice)])
    long = pd.concat(
        [
            pd.DataFrame(
                {"prompt": votes["prompt"], "arm": [labels[k] for k in keys_a], "score": scores}
            ),
            pd.DataFrame(
                {"prompt": votes["prompt"], "arm": [labels[k] for k in keys_b], "score": 1 - scores}
            ),
        ]
    )
    return long.pivot_table(index="prompt", columns="arm", values="score", aggfunc="mean")


def _agreement(votes: pd.DataFrame) -> tuple[float | None, int]:
    """The share of pairs judged by two or more voters on which they all chose alike."""
    choices = votes.groupby("pair")["choice"].agg(["count", "nunique"])
    several = choices[choices["count"] >= 2]
    if several.empty:
        return None, 0
    return float((several["nunique"] == 1).mean()), len(several)


EXPORT_COLUMNS = [
    "arena",
    "pair",
    "prompt",
    "seed",
    "arm_a",
    "arm_b",
    "winner",
    "choice",
    "voter",
    "time",
]


def votes_export(*, session: Session, arena_id: str | None) -> pd.DataFrame:
    """Every vote for analysts: arena, pair, prompt, seed, both arms, the winner (an arm,
    "tie" or "both bad"), the voter and the time."""
    votes = _votes(session, arena_id)
    if votes.empty:
        return pd.DataFrame(columns=EXPORT_COLUMNS)
    winner = [
        a if choice == ArenaChoice.A else b if choice == ArenaChoice.B else choice.replace("_", " ")
        for a, b, choice in zip(votes["a_label"], votes["b_label"], votes["choice"], strict=True)
    ]
    return votes.assign(arm_a=votes["a_label"], arm_b=votes["b_label"], winner=winner)[
        EXPORT_COLUMNS
    ]


def votes_version(*, session: Session, arena_id: str | None) -> tuple[object, ...]:
    """What changes with every vote (their count and newest time): keys a cached board."""
    query = select(func.count(), func.max(col(ArenaVote.created_at)))
    if arena_id is not None:
        query = query.where(col(ArenaVote.arena_id) == arena_id)
    return tuple(session.execute(query).one())


@dataclass(frozen=True)
class Standing:
    """Where one arm of a LoRA stands across every arena."""

    arm: str
    rank: int
    of: int
    rating: float
    low: float
    high: float
    wins: int
    ties: int
    losses: int
    arenas: int
    few_votes: bool


def best_scales(board: Leaderboard) -> dict[str, float]:
    """For each LoRA judged at several scales: the scale of its best-rated arm (what its
    scorecard's recommended scale may be set to in one click). The base model is none."""
    # A stacked arm's scale belongs to the combination, not to the LoRA alone.
    rows = board.standings[
        (board.standings["lora_id"] != NO_LORA) & (board.standings["stack"] == "")
    ]
    best: dict[str, float] = {}
    for lora_id, arms in rows.groupby("lora_id", sort=False):
        if arms["lora_scale"].nunique() > 1:
            best[str(lora_id)] = float(arms.sort_values("rank")["lora_scale"].iloc[0])
    return best


def standings_of(board: Leaderboard, lora_id: str) -> list[Standing]:
    """The LoRA's arms (one per scale or settings it was judged at) on a leaderboard."""
    rows = board.standings[board.standings["lora_id"] == lora_id]
    return [
        Standing(
            arm=row.arm,
            rank=int(row.rank),
            of=len(board.standings),
            rating=float(row.rating),
            low=float(row.low),
            high=float(row.high),
            wins=int(row.wins),
            ties=int(row.ties),
            losses=int(row.losses),
            arenas=int(row.arenas),
            few_votes=bool(row.few_votes),
        )
        for row in rows.itertuples()
    ]

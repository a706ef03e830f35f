"""Arenas: made from sweeps or from a collection, once; their arms and pairs fixed when made.

Every succeeded, shown (not flagged, not hidden) image of the sweeps' cells is an entry of
its arm (its LoRA, or the base model, at its scale, steps, guidance and size) for its
prompt and seed. For each prompt and seed, every two arms with an entry make one pair (the
newest entry of each arm), never two entries of one arm. Images of different sweeps pair
as well when they share prompt and seed, so a new LoRA's sweep meets an older one's.

A collection's images were picked by hand, rarely at one seed: they pair by prompt alone,
each two arms once per prompt, at a seed both share when they have one (the fair pair),
else the newest image of each.
"""

from __future__ import annotations

import itertools
import json
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Engine, func, select
from sqlmodel import Session, col

from lora_core.data.clock import to_iso, utc_now
from lora_core.data.db import session_scope
from lora_core.data.models import (
    Arena,
    ArenaArm,
    ArenaPair,
    ArenaVote,
    BatchStatus,
    Collection,
    CollectionImage,
    GeneratedImage,
    GenerationBatch,
    LoraTraining,
    Sweep,
)
from lora_core.errors import InvalidArena
from lora_core.generation import recipe, stacks
from lora_core.generation.recipe import NO_LORA, NO_LORA_LABEL

MAX_NAME_LENGTH = 100
MAX_SOURCES = 20


@dataclass(frozen=True)
class ArmKey:
    """What makes an arm: the LoRA (or `NO_LORA`) and the settings besides prompt and seed,
    the LoRAs stacked on it included (`stack`: "id:scale id:scale", "" for none)."""

    lora_id: str
    lora_scale: float
    steps: int
    guidance: float
    image_size: str
    stack: str = ""

    @property
    def stacked(self) -> list[tuple[str, float]]:
        """The stacked LoRAs: (id, scale), in fal's order."""
        return [(more.lora_id, more.scale) for more in stacks.from_text(self.stack)]


@dataclass(frozen=True)
class Entry:
    """One image that can stand in a pair: its arm, prompt and seed, and when it was made."""

    image_id: str
    arm: ArmKey
    prompt: str
    seed: str | None
    created_at: str


@dataclass(frozen=True)
class PlannedPair:
    prompt: str
    seed: str | None
    a: Entry
    b: Entry


def plan_pairs(entries: Sequence[Entry], *, any_seed: bool = False) -> list[PlannedPair]:
    """Every two arms with an entry for one prompt and seed, once (their newest entries),
    in a stable order: by prompt and seed as first met, then by the arms' order. With
    `any_seed`, every two arms with an entry for one prompt (`pair_by_prompt`)."""
    if any_seed:
        return pair_by_prompt(entries)
    groups: dict[tuple[str, str | None], dict[ArmKey, Entry]] = {}
    for entry in entries:
        arms = groups.setdefault((entry.prompt, entry.seed), {})
        kept = arms.get(entry.arm)
        if kept is None or entry.created_at > kept.created_at:
            arms[entry.arm] = entry
    pairs = []
    for (prompt, seed), arms in groups.items():
        ordered = sorted(arms.values(), key=lambda entry: _arm_order(entry.arm))
        for a, b in itertools.combinations(ordered, 2):
            pairs.append(PlannedPair(prompt=prompt, seed=seed, a=a, b=b))
    return pairs


def pair_by_prompt(entries: Sequence[Entry]) -> list[PlannedPair]:
    """Every two arms with an entry for one prompt, once: at the seed they share whose
    images are newest, or, sharing none, their newest entries (the pair then has no seed)."""
    by_prompt: dict[str, dict[ArmKey, dict[str | None, Entry]]] = {}
    for entry in entries:
        seeds = by_prompt.setdefault(entry.prompt, {}).setdefault(entry.arm, {})
        kept = seeds.get(entry.seed)
        if kept is None or entry.created_at > kept.created_at:
            seeds[entry.seed] = entry
    pairs = []
    for prompt, arms in by_prompt.items():
        for arm_a, arm_b in itertools.combinations(sorted(arms, key=_arm_order), 2):
            a_seeds, b_seeds = arms[arm_a], arms[arm_b]
            shared = [seed for seed in a_seeds if seed is not None and seed in b_seeds]
            if shared:
                seed = max(shared, key=lambda s: max(a_seeds[s].created_at, b_seeds[s].created_at))
                pairs.append(PlannedPair(prompt, seed, a_seeds[seed], b_seeds[seed]))
                continue
            a = max(a_seeds.values(), key=lambda entry: entry.created_at)
            b = max(b_seeds.values(), key=lambda entry: entry.created_at)
            pairs.append(PlannedPair(prompt, a.seed if a.seed == b.seed else None, a, b))
    return pairs


def _arm_order(arm: ArmKey) -> tuple[object, ...]:
    """The baseline first, then by LoRA and settings."""
    return (
        arm.lora_id != NO_LORA,
        arm.lora_id,
        arm.lora_scale,
        arm.steps,
        arm.guidance,
        arm.image_size,
        arm.stack,
    )


def entries_of_sweeps(session: Session, sweep_ids: Sequence[str]) -> list[Entry]:
    """The images of the sweeps' succeeded cells that anyone may see, as entries."""
    return _entries(session, col(GenerationBatch.sweep_id).in_(list(sweep_ids)))


def entries_of_collection(session: Session, collection_id: str) -> list[Entry]:
    """A collection's images that anyone may see, made here (a batch of ours), as entries."""
    members = select(CollectionImage.image_id).where(
        col(CollectionImage.collection_id) == collection_id
    )
    return _entries(session, col(GeneratedImage.id).in_(members))


def _entries(session: Session, which: ColumnElement[bool]) -> list[Entry]:
    """The succeeded, shown images `which` picks, with their batches' settings, as entries."""
    rows = session.execute(
        select(GeneratedImage, GenerationBatch)
        .join(GenerationBatch, col(GenerationBatch.id) == col(GeneratedImage.batch_id))
        .where(
            which,
            col(GenerationBatch.status) == BatchStatus.SUCCEEDED,
            func.coalesce(col(GeneratedImage.nsfw), False).is_(False),
            col(GeneratedImage.hidden).is_(None),
        )
        .order_by(col(GeneratedImage.created_at), col(GeneratedImage.id))
    ).all()
    stacked = stacks.stacks_of(session, [batch.id for _image, batch in rows])
    entries = []
    for image, batch in rows:
        made_with = recipe.batch_recipe(batch, seed=None)
        arm = ArmKey(
            lora_id=batch.lora_training_id,
            # The base model's image owes nothing to a LoRA scale: one baseline arm.
            lora_scale=0.0 if batch.lora_training_id == NO_LORA else made_with.lora_scale,
            steps=made_with.steps,
            guidance=made_with.guidance,
            image_size=made_with.image_size,
            stack=stacks.as_text(stacked.get(batch.id, ())),
        )
        entries.append(Entry(image.id, arm, batch.prompt, image.seed, image.created_at))
    return entries


def arm_labels(session: Session, arms: Sequence[ArmKey]) -> dict[ArmKey, str]:
    """How the leaderboard and a reveal name each arm: the LoRA's name (or the base
    model), its scale, and the other settings only where the arms differ in them."""
    ids = {arm.lora_id for arm in arms} | {
        lora_id for arm in arms for lora_id, _scale in arm.stacked
    }
    ids -= {NO_LORA}
    names = {
        lora.id: lora.name or lora.trigger_word
        for lora in session.scalars(select(LoraTraining).where(col(LoraTraining.id).in_(ids)))
    }
    varies = {
        field: len({getattr(arm, field) for arm in arms}) > 1
        for field in ("steps", "guidance", "image_size")
    }
    labels = {}
    for arm in arms:
        if arm.lora_id == NO_LORA:
            parts = [NO_LORA_LABEL]
        else:
            parts = [names.get(arm.lora_id, "a LoRA no longer here"), f"scale {arm.lora_scale:g}"]
        if varies["steps"]:
            parts.append(f"{arm.steps} steps")
        if varies["guidance"]:
            parts.append(f"guidance {arm.guidance:g}")
        if varies["image_size"]:
            parts.append(arm.image_size)
        parts += [
            f"+ {names.get(lora_id, 'a LoRA no longer here')} {scale:g}"
            for lora_id, scale in arm.stacked
        ]
        labels[arm] = " · ".join(parts)
    return unique_labels(labels)


def unique_labels(labels: dict[ArmKey, str]) -> dict[ArmKey, str]:
    """Labels told apart where two arms share one (two LoRAs of one name, two gone): the
    second and later get " (2)", " (3)"…, in the arms' order."""
    seen: dict[str, int] = {}
    unique = {}
    for arm in sorted(labels, key=_arm_order):
        label = labels[arm]
        seen[label] = seen.get(label, 0) + 1
        unique[arm] = label if seen[label] == 1 else f"{label} ({seen[label]})"
    return unique


def create_arena(
    *,
    engine: Engine,
    user: str,
    name: str,
    sweep_ids: Sequence[str],
    now: datetime | None = None,
) -> str:
    """Make an arena from sweeps, with every pair they hold; its id. `InvalidArena` when
    the name is empty or too long, or the sweeps hold no pair (one arm only, or nothing
    finished yet). Written in one transaction: an arena is whole or absent."""
    name = _checked_name(name)
    sources = list(dict.fromkeys(sweep_ids))
    if not sources or len(sources) > MAX_SOURCES:
        raise InvalidArena(f"Choose between 1 and {MAX_SOURCES} sweeps.")
    with session_scope(engine) as session:
        known = set(session.scalars(select(Sweep.id).where(col(Sweep.id).in_(sources))))
        if missing := [sweep for sweep in sources if sweep not in known]:
            raise InvalidArena(f"{len(missing)} of those sweeps no longer exist.")
        planned = plan_pairs(entries_of_sweeps(session, sources))
        if not planned:
            raise InvalidArena(
                "Those sweeps hold no pair to vote on yet: an arena needs images of the same "
                "prompt and seed from at least two LoRAs or settings (a LoRA or scale axis), "
                "finished and shown."
            )
        arena = Arena(id=uuid.uuid4().hex, name=name, user=user, sources=json.dumps(sources),
                      created_at=to_iso(now or utc_now()), salt=secrets.token_hex(16))  # fmt: skip
        _write(session, arena, planned)
        session.commit()
    return arena.id


def create_arena_from_collection(
    *,
    engine: Engine,
    user: str,
    name: str,
    collection_id: str,
    now: datetime | None = None,
) -> str:
    """Make an arena from a collection's images (paired by prompt, `pair_by_prompt`); its
    id. `InvalidArena` as `create_arena`, or when the collection is gone."""
    name = _checked_name(name)
    with session_scope(engine) as session:
        if session.get(Collection, collection_id) is None:
            raise InvalidArena("That collection no longer exists.")
        planned = plan_pairs(entries_of_collection(session, collection_id), any_seed=True)
        if not planned:
            raise InvalidArena(
                "This collection holds no pair to vote on: an arena needs images of the same "
                "prompt from at least two LoRAs or settings, made here and shown."
            )
        arena = Arena(id=uuid.uuid4().hex, name=name, user=user, sources="[]",
                      collection_id=collection_id, created_at=to_iso(now or utc_now()),
                      salt=secrets.token_hex(16))  # fmt: skip
        _write(session, arena, planned)
        session.commit()
    return arena.id


def _checked_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise InvalidArena("Give the arena a name, such as “Neon v2 against v1”.")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidArena(f"An arena's name has at most {MAX_NAME_LENGTH} characters.")
    return name


def _write(session: Session, arena: Arena, planned: Sequence[PlannedPair]) -> None:
    """The arena, its arms (labelled) and its pairs, in the caller's transaction."""
    arms = sorted({entry.arm for pair in planned for entry in (pair.a, pair.b)}, key=_arm_order)
    labels = arm_labels(session, arms)
    arm_ids = {arm: uuid.uuid4().hex for arm in arms}
    session.add(arena)
    for arm in arms:
        session.add(
            ArenaArm(
                id=arm_ids[arm],
                arena_id=arena.id,
                lora_training_id=arm.lora_id,
                lora_scale=arm.lora_scale,
                num_inference_steps=arm.steps,
                guidance_scale=arm.guidance,
                image_size=arm.image_size,
                label=labels[arm],
                stack=arm.stack or None,
            )
        )
    for position, pair in enumerate(planned):
        session.add(
            ArenaPair(
                id=uuid.uuid4().hex,
                arena_id=arena.id,
                position=position,
                prompt=pair.prompt,
                seed=pair.seed,
                arm_a=arm_ids[pair.a.arm],
                arm_b=arm_ids[pair.b.arm],
                image_a=pair.a.image_id,
                image_b=pair.b.image_id,
            )
        )


@dataclass(frozen=True)
class ArenaSummary:
    arena: Arena
    pairs: int
    votes: int
    voters: int


def list_arenas(*, session: Session, limit: int = 50) -> list[ArenaSummary]:
    """The newest arenas with their counts of pairs, votes and voters."""
    arenas = list(
        session.scalars(select(Arena).order_by(col(Arena.created_at).desc()).limit(limit))
    )
    ids = [arena.id for arena in arenas]
    pairs = dict(
        session.execute(
            select(col(ArenaPair.arena_id), func.count())
            .where(col(ArenaPair.arena_id).in_(ids))
            .group_by(col(ArenaPair.arena_id))
        ).all()
    )
    votes = {
        row[0]: (row[1], row[2])
        for row in session.execute(
            select(
                col(ArenaVote.arena_id),
                func.count(),
                func.count(func.distinct(col(ArenaVote.user))),
            )
            .where(col(ArenaVote.arena_id).in_(ids))
            .group_by(col(ArenaVote.arena_id))
        ).all()
    }
    return [
        ArenaSummary(
            arena=arena,
            pairs=pairs.get(arena.id, 0),
            votes=votes.get(arena.id, (0, 0))[0],
            voters=votes.get(arena.id, (0, 0))[1],
        )
        for arena in arenas
    ]


def get_arena(*, session: Session, arena_id: str | None) -> Arena | None:
    """An arena by the id of a link, or None (unknown or malformed)."""
    if not arena_id or len(arena_id) > 64:
        return None
    return session.get(Arena, arena_id)

"""Voting in an arena, blind: what a voter sees, and one vote per voter per pair.

A voter sees pair ids, the prompt and two anonymised images (`anonymous_image`: re-encoded
bytes, no file name, no recipe inside), never an arm's id or name. Which image is on the
left is drawn per voter and pair (a hash of both keyed by the arena's secret salt, which no
page or export shows: pair ids are public in the votes export), so it is the same in every
tab and on every replica, differs between voters, and cannot be worked out beforehand; so
is the order of the pairs. Pairs whose image was hidden or flagged since are left out. The vote is
stored as the pair's own `a`/`b`; its primary key (pair, voter) makes a second click, a
second tab or a race between replicas insert nothing (`INSERT OR IGNORE`, one statement).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from lora_core import thumbnails
from lora_core.data.clock import to_iso, utc_now
from lora_core.data.db import session_scope
from lora_core.data.models import (
    Arena,
    ArenaArm,
    ArenaChoice,
    ArenaPair,
    ArenaVote,
    GeneratedImage,
)
from lora_core.errors import DownloadFailed, InvalidArena
from lora_core.gallery.downloads import read_image
from lora_core.storage import MediaStore

SHOWN_LONG_SIDE = 1024


class Side(StrEnum):
    """What a voter clicked, as they saw it."""

    LEFT = "left"
    RIGHT = "right"
    TIE = "tie"
    BOTH_BAD = "both_bad"


def _draw(salt: str, *parts: str) -> int:
    digest = hmac.new(salt.encode(), "|".join(parts).encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big")


def left_is_a(salt: str, voter: str, pair_id: str) -> bool:
    """Whether this voter sees the pair's image `a` on the left (`salt`: the arena's)."""
    return _draw(salt, voter, pair_id, "side") % 2 == 0


@dataclass(frozen=True)
class BlindPair:
    """One pair as a voter sees it: nothing in it names an arm."""

    pair_id: str
    prompt: str
    left_image_id: str
    right_image_id: str
    voted: int
    total: int


def next_pair(
    *, session: Session, arena_id: str, voter: str, skipped: Collection[str] = ()
) -> BlindPair | None:
    """The voter's next pair without their vote, in their own order; a skipped pair comes
    back once every other is voted or skipped. None when every pair has their vote."""
    salt = session.scalar(select(Arena.salt).where(col(Arena.id) == arena_id)) or ""
    image_a, image_b = aliased(GeneratedImage), aliased(GeneratedImage)
    shown = [
        (col(image.hidden).is_(None)) & func.coalesce(col(image.nsfw), False).is_(False)
        for image in (image_a, image_b)
    ]
    pairs = session.execute(
        select(ArenaPair.id, ArenaPair.prompt, ArenaPair.image_a, ArenaPair.image_b)
        .join(image_a, col(image_a.id) == col(ArenaPair.image_a))
        .join(image_b, col(image_b.id) == col(ArenaPair.image_b))
        .where(col(ArenaPair.arena_id) == arena_id, *shown)
    ).all()
    voted = set(
        session.scalars(
            select(ArenaVote.pair_id).where(
                col(ArenaVote.arena_id) == arena_id, col(ArenaVote.user) == voter
            )
        )
    )
    open_pairs = sorted(
        (pair for pair in pairs if pair.id not in voted),
        key=lambda pair: _draw(salt, voter, pair.id),
    )
    if not open_pairs:
        return None
    fresh = [pair for pair in open_pairs if pair.id not in skipped]
    pair = (fresh or open_pairs)[0]
    a_left = left_is_a(salt, voter, pair.id)
    return BlindPair(
        pair_id=pair.id,
        prompt=pair.prompt,
        left_image_id=pair.image_a if a_left else pair.image_b,
        right_image_id=pair.image_b if a_left else pair.image_a,
        voted=len(voted & {pair.id for pair in pairs}),
        total=len(pairs),
    )


@dataclass(frozen=True)
class Reveal:
    """After a vote: which arm was on each side, and what counted."""

    left: str
    right: str
    side: Side
    counted: bool
    """False when this voter had already voted on the pair (their first vote stands)."""


def cast_vote(
    *, engine: Engine, voter: str, pair_id: str, side: Side, now: datetime | None = None
) -> Reveal:
    """Store the voter's verdict on the pair as they saw it; a second vote changes nothing.
    `InvalidArena` for a pair that does not exist."""
    side = Side(side)
    with session_scope(engine) as session:
        pair = session.get(ArenaPair, pair_id) if pair_id and len(pair_id) <= 64 else None
        if pair is None:
            raise InvalidArena("That pair is not in this arena any more.")
        salt = session.scalar(select(Arena.salt).where(col(Arena.id) == pair.arena_id)) or ""
        a_left = left_is_a(salt, voter, pair.id)
        choice = {
            Side.LEFT: ArenaChoice.A if a_left else ArenaChoice.B,
            Side.RIGHT: ArenaChoice.B if a_left else ArenaChoice.A,
            Side.TIE: ArenaChoice.TIE,
            Side.BOTH_BAD: ArenaChoice.BOTH_BAD,
        }[side]
        counted = session.execute(
            insert(ArenaVote.__table__)  # type: ignore[arg-type]
            .prefix_with("OR IGNORE")
            .values(
                pair_id=pair.id,
                wallet_address=voter,
                arena_id=pair.arena_id,
                choice=choice.value,
                created_at=to_iso(now or utc_now()),
            )
        ).rowcount
        session.commit()
        labels = dict(
            session.execute(
                select(ArenaArm.id, ArenaArm.label).where(
                    col(ArenaArm.id).in_([pair.arm_a, pair.arm_b])
                )
            ).all()
        )
    a, b = labels.get(pair.arm_a, "?"), labels.get(pair.arm_b, "?")
    return Reveal(
        left=a if a_left else b, right=b if a_left else a, side=side, counted=counted == 1
    )


def anonymous_image(*, session: Session, store: MediaStore, image_id: str) -> bytes:
    """An arena image's pixels only (WebP, at most `SHOWN_LONG_SIDE` px): no file name, URL
    or recipe of its own goes to the voter. Only images that stand in a pair are served.
    `DownloadFailed` when it cannot be read."""
    in_a_pair = session.scalar(
        select(ArenaPair.id)
        .where((col(ArenaPair.image_a) == image_id) | (col(ArenaPair.image_b) == image_id))
        .limit(1)
    )
    image = session.get(GeneratedImage, image_id) if in_a_pair else None
    if image is None or image.hidden or image.nsfw:
        raise DownloadFailed("This image is not in an arena, or was hidden since.")
    try:
        return thumbnails.make(
            read_image(image.image_url, store=store), long_side=SHOWN_LONG_SIDE, quality=88
        )
    except thumbnails.NotAnImage:
        raise DownloadFailed("This image's file cannot be read.") from None

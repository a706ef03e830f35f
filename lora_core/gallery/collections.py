"""Collections (boards): a named, shared set of images from any LoRAs — "Client review
12 Dec", "best of neon-noir" — in an order of their own.

Everyone sees every collection. Its owner (who made it) and admins rename, describe,
reorder and delete it; images are added by its owner, or by anyone signed in when it says
"anyone can add", and removed by whoever added them, its owner or an admin. An image is in
a collection once (its key: adding it twice, from two tabs at once, is one row).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence, Set
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlmodel import Session, col

from lora_core.data.clock import to_iso, utc_now
from lora_core.data.db import session_scope
from lora_core.data.models import Collection, CollectionImage, GeneratedImage
from lora_core.errors import InvalidSettings, NotAllowed, NotSignedIn
from lora_core.identity import Identity

MAX_NAME = 100
MAX_DESCRIPTION = 1000
MAX_IMAGES = 500  # a board people review, not an archive


@dataclass(frozen=True)
class CollectionView:
    collection: Collection
    images: list[GeneratedImage]  # in its order; hidden images left out unless `who` may see


def create(
    *,
    engine: Engine,
    who: Identity,
    name: str,
    description: str = "",
    anyone_can_add: bool = False,
    image_ids: Sequence[str] = (),
    now: datetime | None = None,
) -> str:
    """A new collection owned by `who`, with these images (as `add`: selected on a grid),
    written at once; its id."""
    if who.user is None:
        raise NotSignedIn("Sign in to make a collection.")
    name, description = _checked(name, description)
    collection_id = uuid.uuid4().hex
    moment = to_iso(now or utc_now())
    with session_scope(engine) as session:
        session.add(
            Collection(id=collection_id, name=name, description=description or None,
                       user=who.user, anyone_can_add=anyone_can_add or None, created_at=moment)
        )  # fmt: skip
        session.flush()
        _add(session, collection_id=collection_id, user=who.user, image_ids=image_ids,
             moment=moment)  # fmt: skip
        session.commit()
    return collection_id


def _checked(name: str, description: str) -> tuple[str, str]:
    name, description = (name or "").strip(), (description or "").strip()
    if not name or len(name) > MAX_NAME:
        raise InvalidSettings(f"Name the collection in 1 to {MAX_NAME} characters.")
    if len(description) > MAX_DESCRIPTION:
        raise InvalidSettings(f"A description has at most {MAX_DESCRIPTION} characters.")
    return name, description


def may_change(who: Identity, collection: Collection) -> bool:
    """Its owner and admins rename, describe, reorder and delete it."""
    return who.user is not None and (who.is_admin or who.user == collection.user)


def may_add(who: Identity, collection: Collection) -> bool:
    return who.user is not None and (bool(collection.anyone_can_add) or may_change(who, collection))


def add(
    *,
    engine: Engine,
    who: Identity,
    collection_id: str,
    image_ids: Sequence[str],
    now: datetime | None = None,
) -> int:
    """Add images at the end, in the order given; those already in it stay where they
    are. How many were added. `NotAllowed` unless `who` may add to it."""
    with session_scope(engine) as session:
        collection = _collection(session, collection_id)
        if not may_add(who, collection):
            raise NotAllowed("Only its owner can add images to this collection.")
        added = _add(session, collection_id=collection_id, user=who.user or "",
                     image_ids=image_ids, moment=to_iso(now or utc_now()))  # fmt: skip
        session.commit()
    return added


def _add(
    session: Session, *, collection_id: str, user: str, image_ids: Sequence[str], moment: str
) -> int:
    """The images that exist, at the end in the order given, unless already in it; how
    many were added. `InvalidSettings` past `MAX_IMAGES`."""
    known = set(
        session.scalars(
            select(GeneratedImage.id).where(col(GeneratedImage.id).in_(list(image_ids)))
        )
    )
    wanted = [image_id for image_id in dict.fromkeys(image_ids) if image_id in known]
    count = session.scalar(
        select(func.count()).where(col(CollectionImage.collection_id) == collection_id)
    )
    if (count or 0) + len(wanted) > MAX_IMAGES:
        raise InvalidSettings(f"A collection holds at most {MAX_IMAGES} images.")
    last = session.scalar(
        select(func.max(CollectionImage.position)).where(
            col(CollectionImage.collection_id) == collection_id
        )
    )
    added = 0
    for offset, image_id in enumerate(wanted, start=1):
        added += session.execute(
            insert(CollectionImage)
            .prefix_with("OR IGNORE")  # already in it (or added at this moment elsewhere)
            .values(collection_id=collection_id, image_id=image_id,
                    position=(last or 0) + offset, user=user, created_at=moment)
        ).rowcount  # fmt: skip
    return added


def remove(*, engine: Engine, who: Identity, collection_id: str, image_id: str) -> None:
    """Take an image out: whoever added it, the owner or an admin."""
    with session_scope(engine) as session:
        collection = _collection(session, collection_id)
        member = session.get(CollectionImage, (collection_id, image_id))
        if member is None:
            return
        if not (may_change(who, collection) or (who.user and who.user == member.user)):
            raise NotAllowed("Only who added it, or the collection's owner, can remove it.")
        session.delete(member)
        session.commit()


def move(*, engine: Engine, who: Identity, collection_id: str, image_id: str, by: int) -> None:
    """Move an image `by` places (-1: one earlier, 1: one later) in its owner's order."""
    with session_scope(engine) as session:
        collection = _collection(session, collection_id)
        if not may_change(who, collection):
            raise NotAllowed("Only the collection's owner can reorder it.")
        order = list(
            session.scalars(
                select(CollectionImage)
                .where(col(CollectionImage.collection_id) == collection_id)
                .order_by(col(CollectionImage.position), col(CollectionImage.image_id))
            )
        )
        ids = [member.image_id for member in order]
        if image_id not in ids:
            return
        place = ids.index(image_id)
        target = min(max(place + by, 0), len(ids) - 1)
        ids.insert(target, ids.pop(place))
        for position, member_id in enumerate(ids, start=1):
            session.execute(
                update(CollectionImage)
                .where(
                    col(CollectionImage.collection_id) == collection_id,
                    col(CollectionImage.image_id) == member_id,
                )
                .values(position=position)
            )
        session.commit()


def describe(
    *,
    engine: Engine,
    who: Identity,
    collection_id: str,
    name: str,
    description: str,
    anyone_can_add: bool,
) -> None:
    """Its owner or an admin renames it, describes it, opens or closes it to others."""
    name, description = _checked(name, description)
    with session_scope(engine) as session:
        collection = _collection(session, collection_id)
        if not may_change(who, collection):
            raise NotAllowed("Only the collection's owner can change it.")
        collection.name, collection.description = name, description or None
        collection.anyone_can_add = anyone_can_add or None
        session.commit()


def delete_collection(*, engine: Engine, who: Identity, collection_id: str) -> None:
    with session_scope(engine) as session:
        collection = _collection(session, collection_id)
        if not may_change(who, collection):
            raise NotAllowed("Only the collection's owner can delete it.")
        session.execute(
            delete(CollectionImage).where(col(CollectionImage.collection_id) == collection_id)
        )
        session.delete(collection)
        session.commit()


def _collection(session: Session, collection_id: str) -> Collection:
    collection = session.get(Collection, collection_id) if collection_id else None
    if collection is None:
        raise InvalidSettings("That collection no longer exists.")
    return collection


def listed(*, session: Session) -> list[tuple[Collection, int]]:
    """Every collection, newest first, with how many images it holds."""
    counts = (
        select(func.count())
        .where(col(CollectionImage.collection_id) == col(Collection.id))
        .scalar_subquery()
    )
    rows = session.execute(select(Collection, counts).order_by(col(Collection.created_at).desc()))
    return [(collection, count or 0) for collection, count in rows]


def open_to(*, session: Session, who: Identity) -> dict[str, str]:
    """The collections `who` may add images to, newest first: their names by id."""
    return {
        collection.id: collection.name
        for collection, _count in listed(session=session)
        if may_add(who, collection)
    }


def view(*, session: Session, collection_id: str, who: Identity) -> CollectionView | None:
    """The collection with its images in order (hidden ones for admins only); None for an
    unknown id."""
    if not collection_id or len(collection_id) > 64:
        return None
    collection = session.get(Collection, collection_id)
    if collection is None:
        return None
    query = (
        select(GeneratedImage)
        .join(CollectionImage, col(CollectionImage.image_id) == col(GeneratedImage.id))
        .where(col(CollectionImage.collection_id) == collection_id)
        .order_by(col(CollectionImage.position), col(CollectionImage.image_id))
    )
    if not who.is_admin:
        query = query.where(col(GeneratedImage.hidden).is_(None))
    return CollectionView(collection, list(session.scalars(query)))


def of_image(*, session: Session, image_id: str) -> list[Collection]:
    """The collections an image is in ("in 2 collections"), newest first."""
    return list(
        session.scalars(
            select(Collection)
            .join(CollectionImage, col(CollectionImage.collection_id) == col(Collection.id))
            .where(col(CollectionImage.image_id) == image_id)
            .order_by(col(Collection.created_at).desc())
        )
    )


@dataclass(frozen=True)
class CompareSeed:
    """What Compare opens with for a collection: up to four of its LoRAs and one prompt."""

    lora_ids: list[str]
    prompt: str


def compare_seed(
    images: Sequence[GeneratedImage], *, usable: Set[str], most: int = 4
) -> CompareSeed | None:
    """The collection's prompt that most of its LoRAs made (the first in its order on a
    tie), with those LoRAs, then others of the collection up to `most` (Compare offers to
    generate what they lack). Only LoRAs in `usable` (those Compare offers); None when
    fewer than two are."""
    lora_ids = [i for i in dict.fromkeys(image.lora_training_id for image in images) if i in usable]
    if len(lora_ids) < 2:
        return None
    made: dict[str, list[str]] = {}
    for image in images:
        if image.lora_training_id in usable and image.prompt.strip():
            loras = made.setdefault(image.prompt, [])
            if image.lora_training_id not in loras:
                loras.append(image.lora_training_id)
    if not made:
        return None
    prompt = max(made, key=lambda text: len(made[text]))  # the first of the most, as met
    chosen = made[prompt][:most]
    chosen += [lora_id for lora_id in lora_ids if lora_id not in chosen][: most - len(chosen)]
    return CompareSeed(lora_ids=chosen, prompt=prompt)

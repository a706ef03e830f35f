"""Saved searches: a search named and shared with the team (its link's parameters, as
they are), and what is new in it for each user since they last opened it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import Engine, delete, insert, select
from sqlmodel import Session, col

from lora_core.data.clock import to_iso, utc_now
from lora_core.data.db import session_scope
from lora_core.data.models import SavedSearch, SavedSearchView
from lora_core.errors import InvalidSettings, NotAllowed, NotSignedIn
from lora_core.identity import Identity
from lora_core.search.query import PARAMS, count, from_params

MAX_NAME = 100
LISTED = 10  # the newest saved searches a page lists (each is counted for what is new)


@dataclass(frozen=True)
class SavedView:
    search: SavedSearch
    params: dict[str, list[str]]
    new: int | None  # images since the user last opened it; None: never opened, or unreadable


def save(
    *,
    engine: Engine,
    who: Identity,
    name: str,
    params: Mapping[str, Sequence[str]],
    now: datetime | None = None,
) -> str:
    """Save the search (only the link's own parameters, blank ones left out) under `name`
    for everyone to open; its id. Its author has seen it as of now."""
    if who.user is None:
        raise NotSignedIn("Sign in to save a search.")
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME:
        raise InvalidSettings(f"Name the search in 1 to {MAX_NAME} characters.")
    kept = {
        key: [value for value in values if value]
        for key, values in params.items()
        if key in PARAMS.values() and any(values)
    }
    search_id, moment = uuid.uuid4().hex, to_iso(now or utc_now())
    with session_scope(engine) as session:
        session.add(
            SavedSearch(id=search_id, name=name, user=who.user,
                        query=json.dumps(kept, ensure_ascii=False), created_at=moment)
        )  # fmt: skip
        session.add(SavedSearchView(search_id=search_id, user=who.user, seen_at=moment))
        session.commit()
    return search_id


def listed(*, session: Session, who: Identity, lora_ids: Mapping[str, str]) -> list[SavedView]:
    """The newest saved searches, everyone's, each with how many images are new in it for
    `who` since they last opened it (one count each: `LISTED` at most)."""
    seen = (
        dict(
            session.execute(
                select(col(SavedSearchView.search_id), col(SavedSearchView.seen_at)).where(
                    col(SavedSearchView.user) == who.user
                )
            ).all()
        )
        if who.user
        else {}
    )
    views = []
    for row in session.scalars(
        select(SavedSearch).order_by(col(SavedSearch.created_at).desc()).limit(LISTED)
    ):
        params = json.loads(row.query)
        new = None
        if row.id in seen:
            try:
                query = from_params(params, lora_ids=lora_ids)
                since = replace(query, after=seen[row.id])
                new = count(session=session, query=since, who=who)
            except InvalidSettings:
                new = None
        views.append(SavedView(row, params, new))
    return views


def opened(*, engine: Engine, who: Identity, search_id: str, now: datetime | None = None) -> None:
    """`who` looked at the saved search now: its new images count from here."""
    if who.user is None:
        return
    with session_scope(engine) as session:
        session.execute(
            insert(SavedSearchView)
            .prefix_with("OR REPLACE")
            .values(search_id=search_id, user=who.user, seen_at=to_iso(now or utc_now()))
        )
        session.commit()


def remove(*, engine: Engine, who: Identity, search_id: str) -> None:
    """Its author or an admin deletes a saved search."""
    with session_scope(engine) as session:
        row = session.get(SavedSearch, search_id)
        if row is None:
            return
        if not (who.is_admin or who.user == row.user):
            raise NotAllowed("Only its author or an admin can delete a saved search.")
        session.execute(delete(SavedSearchView).where(col(SavedSearchView.search_id) == search_id))
        session.delete(row)
        session.commit()

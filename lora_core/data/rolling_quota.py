"""A rolling-window quota, whatever it counts: the policy, a user's status, the atomic
reservation and everyone's usage, all asked of one counting expression.

Each kind of work states once, in SQL, how many slots a user holds in uses begun after a
moment (`Counting`): generations in `lora_core.generation.quota` (a batch one, a sweep's
cells and the original app's images one per four), trainings in
`lora_core.training.lifecycle` (one each). A user's status, the next slot (the first
moment, as uses leave the window oldest first, at which that expression falls below the
limit), everyone's usage (the expression per user) and the reservation's guard are all
that expression, so the sidebar, the dialog, the admins' Usage page and the reservation
cannot disagree.

The statements take the user, the moments and the limit as bound parameters (`moment`),
so each is built and keyed for SQLAlchemy's compiled cache once per process: the sidebar
asks for a status on every page, and building the statement cost more than running it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    Engine,
    Integer,
    Select,
    String,
    bindparam,
    func,
    insert,
    literal,
    select,
    union_all,
)
from sqlmodel import Session, SQLModel

from lora_core.data.clock import parse_iso, to_iso, utc_now
from lora_core.data.db import session_scope


@dataclass(frozen=True)
class QuotaPolicy:
    """`limit` uses per user in any rolling `window`, none for `exempt_users`; a use still
    pending after `abandoned_after` belongs to a process that died and no longer counts.
    Generations and trainings each have one (`lora_core.studio` builds them)."""

    limit: int
    window: timedelta
    exempt_users: frozenset[str] = frozenset()
    abandoned_after: timedelta = timedelta(minutes=15)

    def is_exempt(self, user: str) -> bool:
        return user in self.exempt_users


@dataclass(frozen=True)
class QuotaStatus:
    limit: int
    used: int
    is_exempt: bool
    window: timedelta
    next_slot_at: datetime | None
    """When a slot frees up, if none is free now."""

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)

    @property
    def exhausted(self) -> bool:
        return not self.is_exempt and self.remaining == 0

    def can_take(self, slots: int) -> bool:
        """Whether `slots` more fit in what is left (always, for the exempt)."""
        return self.is_exempt or slots <= self.remaining


USER = bindparam("quota_user", type_=String())
WINDOW_START = bindparam("quota_window_start", type_=String())
ABANDONED_BEFORE = bindparam("quota_abandoned_before", type_=String())
NOW = bindparam("quota_now", type_=String())
LIMIT = bindparam("quota_limit", type_=Integer())


def moment(policy: QuotaPolicy, user: str, now: datetime) -> dict[str, object]:
    """The values of the quota's parameters for `user` at `now`."""
    return {
        "quota_user": user,
        "quota_window_start": to_iso(now - policy.window),
        "quota_abandoned_before": to_iso(now - policy.abandoned_after),
        "quota_now": to_iso(now),
        "quota_limit": policy.limit,
    }


SQLText = ColumnElement[str]


@dataclass(frozen=True)
class Counting:
    """How one kind of work uses a quota, as SQL over a user and a moment (ISO text);
    `NOW` and `ABANDONED_BEFORE` may appear in them too. Made once, at module level."""

    used: Callable[[SQLText, SQLText], ColumnElement[int]]
    """Slots `user` holds in uses begun after `since` (a scalar subquery)."""
    began: Callable[[SQLText, SQLText], Select[tuple[str]]]
    """When each of `user`'s uses begun after `since` began: one column, ISO text."""
    users: Callable[[SQLText], Select[tuple[str]]]
    """Everyone holding a slot in uses begun after `since`: one column."""


@functools.cache
def _used_query(counting: Counting) -> Select[tuple[int]]:
    return select(counting.used(USER, WINDOW_START))


@functools.cache
def _next_slot_query(counting: Counting) -> Select[tuple[str | None]]:
    """The first moment a use began at which, once it leaves the window, the user holds
    fewer slots than the limit: the same expression, from that moment on."""
    began = counting.began(USER, WINDOW_START).subquery()
    at = began.c[0]
    return select(func.min(at)).where(counting.used(USER, at) < LIMIT)


@functools.cache
def _usage_query(counting: Counting) -> Select[tuple[str, int]]:
    users = counting.users(WINDOW_START).subquery()
    user = users.c[0]
    used = counting.used(user, WINDOW_START).label("used")
    return select(user, used).group_by(user).order_by(used.desc(), user)


def get_status(
    *,
    session: Session,
    counting: Counting,
    policy: QuotaPolicy,
    user: str,
    now: datetime | None = None,
) -> QuotaStatus:
    """How many slots `user` holds in the window, and when the next one frees up."""
    values = moment(policy, user, now or utc_now())
    used = session.scalar(_used_query(counting), values) or 0
    next_slot_at = None
    if used >= policy.limit and not policy.is_exempt(user):
        first = session.scalar(_next_slot_query(counting), values)
        next_slot_at = parse_iso(first) + policy.window if first else None
    return QuotaStatus(
        limit=policy.limit,
        used=used,
        is_exempt=policy.is_exempt(user),
        window=policy.window,
        next_slot_at=next_slot_at,
    )


def usage_by_user(
    *, session: Session, counting: Counting, policy: QuotaPolicy, now: datetime | None = None
) -> list[tuple[str, int]]:
    """(user, slots held now) for everyone holding a slot in the window, most first: the
    status's own expression, asked per user."""
    rows = session.execute(_usage_query(counting), moment(policy, "", now or utc_now()))
    return [(user, used) for user, used in rows if used]


def insert_within(
    *,
    engine: Engine,
    policy: QuotaPolicy,
    user: str,
    now: datetime,
    table: type[SQLModel],
    rows: Sequence[Mapping[str, object]],
    fits: ColumnElement[bool],
    each_only_if: Sequence[ColumnElement[bool]] = (),
    also: Sequence[SQLModel] = (),
) -> bool:
    """Insert `rows` (column name → value, the same columns in each) into `table` in one
    statement, each only if `fits` (the quota's guard; not for the exempt) and its own
    condition in `each_only_if`, if given: all or none. `also` (rows that go with them)
    are written in the same transaction. True if they were inserted.

    One statement, first in its transaction: SQLite takes the write lock before it reads
    the count, and a libSQL server runs it as one atomic statement. SQLite evaluates the
    SELECT in full before inserting (it reads the table it inserts into), so every row
    sees the same count."""
    selects = [select(*(literal(value) for value in row.values())) for row in rows]
    if not policy.is_exempt(user):
        selects = [each.where(fits) for each in selects]
    if each_only_if:
        selects = [each.where(only) for each, only in zip(selects, each_only_if, strict=True)]
    values = selects[0] if len(selects) == 1 else union_all(*selects)
    statement = insert(table).from_select(list(rows[0]), values.params(moment(policy, user, now)))
    with session_scope(engine) as session:
        if session.execute(statement).rowcount == len(rows):
            session.add_all(also)
            session.commit()
            return True
        session.rollback()
        return False

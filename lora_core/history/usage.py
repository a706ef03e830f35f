"""The admins' Usage page and every estimate of spend: each user's slots in the quota
window (as the quota counts them) beside what fal billed them, and the one place the
price per megapixel is applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import Session, col

from lora_core.data.clock import to_iso, utc_now
from lora_core.generation import quota
from lora_core.history.filters import MEGAPIXELS, Batch


def megapixels_by_user(*, session: Session, since: datetime) -> dict[str, float]:
    """What each user's batches since `since` were billed, in megapixels."""
    rows = session.execute(
        select(col(Batch.user), func.sum(MEGAPIXELS))
        .where(col(Batch.created_at) >= to_iso(since))
        .group_by(col(Batch.user))
    ).all()
    return {row[0]: float(row[1] or 0) for row in rows}


def estimated_spend(megapixels: float, *, price_per_megapixel: float) -> float:
    """What fal billed for `megapixels` of output, in US dollars (an estimate from the
    FAL_PRICE_PER_MEGAPIXEL setting): the one place the price is applied."""
    return megapixels * price_per_megapixel


@dataclass(frozen=True)
class UserUsage:
    """One user's use of the quota window, as the admins' Usage page lists it."""

    user: str
    slots_used: int
    remaining: int | None  # None: exempt, unlimited
    spend: float  # US dollars, estimated


def usage(
    *,
    session: Session,
    policy: quota.QuotaPolicy,
    price_per_megapixel: float,
    now: datetime | None = None,
) -> list[UserUsage]:
    """Everyone who generated in the quota window, most slots first: slots held (as the
    quota counts them), what is left, and the estimated spend of the window."""
    now = now or utc_now()
    billed = megapixels_by_user(session=session, since=now - policy.window)
    return [
        UserUsage(
            user=user,
            slots_used=used,
            remaining=None if policy.is_exempt(user) else max(policy.limit - used, 0),
            spend=estimated_spend(billed.get(user, 0.0), price_per_megapixel=price_per_megapixel),
        )
        for user, used in quota.usage_by_user(session=session, policy=policy, now=now)
    ]

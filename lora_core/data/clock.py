"""Timestamps as the original app stores them: JavaScript ISO strings in UTC.

`created_at` columns are TEXT holding `Date.toISOString()` output
(`2026-02-11T09:30:00.123Z`). Writing exactly that shape keeps string comparison
(`created_at > :since`) correct for rows written by either app.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_iso(moment: datetime) -> str:
    """Format like JavaScript's `Date.toISOString()` (millisecond precision, `Z`)."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime:
    """Parse a stored timestamp; naive values are taken as UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

"""Prompts: what the user typed, checked, and what fal receives; the user's own recent ones."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlmodel import Session, col

from lora_core.data.models import (
    GenerationBatch,
)


def recent_prompts(*, session: Session, user: str, limit: int = 20) -> list[str]:
    """The user's own latest distinct prompts, newest first (for "My prompts")."""
    latest = func.max(col(GenerationBatch.created_at)).label("latest")
    rows = session.execute(
        select(col(GenerationBatch.prompt), latest)
        .where(col(GenerationBatch.wallet_address) == user)
        .group_by(col(GenerationBatch.prompt))
        .order_by(latest.desc())
        .limit(limit)
    ).all()
    return [row[0] for row in rows]

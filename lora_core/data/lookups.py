"""Rows by id, for ids that come from links: a malformed id finds nothing, never an error."""

from __future__ import annotations

import re

from sqlmodel import Session

from lora_core.data.models import LoraTraining

# The original app's ids are short URL-safe strings; anything else cannot be a LoRA id.
_LORA_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def is_valid_lora_id(lora_id: str | None) -> bool:
    return bool(lora_id) and bool(_LORA_ID.match(lora_id or ""))


def get_lora(*, session: Session, lora_id: str) -> LoraTraining | None:
    """The LoRA with this id, or None (also for a malformed id)."""
    if not is_valid_lora_id(lora_id):
        return None
    return session.get(LoraTraining, lora_id)

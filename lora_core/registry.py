"""Registering a LoRA trained elsewhere: its weights URL, trigger word and a name, checked
(the URL's shape, and that it answers) before a `completed` row is written, so the app is
useful without the original trainer app's database."""

from __future__ import annotations

import uuid
from datetime import datetime
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Engine, select
from sqlmodel import col

from lora_core.clock import to_iso, utc_now
from lora_core.db import session_scope
from lora_core.errors import InvalidRegistration
from lora_core.models import LoraStatus, LoraTraining

REGISTERED_PREFIX = "registered-"
MAX_TRIGGER_WORD = 64
MAX_NAME = 80
CHECK_TIMEOUT_SECONDS = 10


def check_weights_url(url: str) -> str:
    """An http(s) address of a `.safetensors` file."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise InvalidRegistration("The weights URL must be a web address (https://…).")
    if not parts.path.lower().endswith(".safetensors"):
        raise InvalidRegistration(
            "The weights URL must point to a .safetensors file, as fal's trainer produces."
        )
    return url


def check_reachable(url: str) -> None:
    """The weights answer a HEAD request (or, where HEAD is refused, a one-byte GET)."""
    try:
        with httpx.Client(timeout=CHECK_TIMEOUT_SECONDS, follow_redirects=True) as client:
            response = client.head(url)
            if response.status_code in (403, 405, 501):  # some hosts only answer GET
                response = client.get(url, headers={"Range": "bytes=0-0"})
    except httpx.HTTPError:
        raise InvalidRegistration(
            "The weights URL did not answer: check the address and that it is public."
        ) from None
    if response.status_code >= 400:
        raise InvalidRegistration(
            f"The weights URL answered HTTP {response.status_code}: check that it is public "
            "and has not expired."
        )


def _clean(text: str, *, label: str, limit: int, required: bool) -> str | None:
    text = " ".join(text.split())
    if not text:
        if required:
            raise InvalidRegistration(f"Enter the {label}.")
        return None
    if len(text) > limit:
        raise InvalidRegistration(f"The {label} is {len(text)} characters; the limit is {limit}.")
    return text


def register_lora(
    *,
    engine: Engine,
    user: str,
    weights_url: str,
    trigger_word: str,
    name: str = "",
    now: datetime | None = None,
) -> LoraTraining:
    """Add a `completed` LoRA with these weights; InvalidRegistration says what is wrong."""
    word = _clean(trigger_word, label="trigger word", limit=MAX_TRIGGER_WORD, required=True)
    display = _clean(name, label="name", limit=MAX_NAME, required=False)
    url = check_weights_url(weights_url)
    with session_scope(engine) as session:
        existing = session.scalar(
            select(LoraTraining).where(col(LoraTraining.lora_weights_url) == url).limit(1)
        )
    if existing is not None:
        known_as = existing.name or existing.trigger_word
        raise InvalidRegistration(f"These weights are already in the gallery as “{known_as}”.")
    check_reachable(url)
    lora = LoraTraining(
        id=uuid.uuid4().hex[:16],
        request_id=f"{REGISTERED_PREFIX}{uuid.uuid4().hex}",
        wallet_address=user,
        trigger_word=word or "",
        lora_weights_url=url,
        status=LoraStatus.COMPLETED,
        created_at=to_iso(now or utc_now()),
        name=display,
    )
    with session_scope(engine) as session:
        session.add(lora)
        session.commit()
        session.refresh(lora)
    return lora

"""Registering a LoRA trained elsewhere: its weights URL, trigger word and a name, checked
(the URL's shape, and that it answers) before a `completed` row is written, so the app is
useful without the original trainer app's database."""

from __future__ import annotations

import ipaddress
import socket
import uuid
from datetime import datetime
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Engine, select
from sqlmodel import col

from lora_core import web, weights
from lora_core.data.clock import to_iso, utc_now
from lora_core.data.db import session_scope
from lora_core.data.models import LoraStatus, LoraTraining, RequestId
from lora_core.errors import InvalidRegistration
from lora_core.storage import MediaStore
from lora_core.training import names

CHECK_TIMEOUT_SECONDS = 10


def is_registered(lora: LoraTraining) -> bool:
    """Registered here (trained elsewhere), rather than trained: what pages call it."""
    return lora.request_id.startswith(RequestId.REGISTERED)


def check_weights_url(url: str) -> str:
    """An http(s) address of a `.safetensors` file."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        raise InvalidRegistration("The weights URL must be a web address (https://…).") from None
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise InvalidRegistration("The weights URL must be a web address (https://…).")
    if not parts.path.lower().endswith(".safetensors"):
        raise InvalidRegistration(
            "The weights URL must point to a .safetensors file, as fal's trainer produces."
        )
    return url


MAX_REDIRECTS = 5


def _refuse_private_host(url: str) -> None:
    """The app must not be made to probe its own network (cloud metadata, localhost, …)."""
    host = urlsplit(url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (socket.gaierror, UnicodeError):
        raise InvalidRegistration(
            "The weights URL did not answer: check the address and that it is public."
        ) from None
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if not ip.is_global:
            raise InvalidRegistration(
                "The weights URL points into a private network: use a public address."
            )


def check_reachable(url: str, *, allow_private_hosts: bool = False) -> None:
    """The weights answer a HEAD request (or, where HEAD is refused, a one-byte GET).
    Redirects are followed by hand, so that every hop's host is checked."""
    try:
        with web.client(timeout=CHECK_TIMEOUT_SECONDS) as client:
            for _hop in range(MAX_REDIRECTS + 1):
                if not allow_private_hosts:
                    _refuse_private_host(url)
                response = client.head(url)
                if response.status_code in (403, 405, 501):  # some hosts only answer GET
                    response = client.get(url, headers={"Range": "bytes=0-0"})
                if not response.is_redirect:
                    break
                url = str(response.next_request.url) if response.next_request else url
            else:
                raise InvalidRegistration("The weights URL redirects too many times.")
    except (httpx.HTTPError, httpx.InvalidURL):
        raise InvalidRegistration(
            "The weights URL did not answer: check the address and that it is public."
        ) from None
    if response.status_code >= 400:
        raise InvalidRegistration(
            f"The weights URL answered HTTP {response.status_code}: check that it is public "
            "and has not expired."
        )


def register_lora(
    *,
    engine: Engine,
    user: str,
    weights_url: str,
    trigger_word: str,
    name: str = "",
    allow_private_hosts: bool = False,
    keep_copy_in: MediaStore | None = None,
    now: datetime | None = None,
) -> LoraTraining:
    """Add a `completed` LoRA with these weights; InvalidRegistration says what is wrong.
    `allow_private_hosts` lets weights on a private network (or this machine) be checked:
    for a deployment inside one, and for tests. With `keep_copy_in`, the weights are also
    copied into that store (links elsewhere expire too); `weights_copy_url` stays empty if
    the copy fails now (`repair` tries again).

    Long by its arguments; each check it makes is one call."""
    word = names.trigger_word(trigger_word, error=InvalidRegistration)
    display = names.display_name(name, error=InvalidRegistration)
    url = check_weights_url(weights_url)
    with session_scope(engine) as session:
        existing = session.scalar(
            select(LoraTraining).where(col(LoraTraining.lora_weights_url) == url).limit(1)
        )
    if existing is not None:
        known_as = existing.name or existing.trigger_word
        raise InvalidRegistration(f"These weights are already in the gallery as “{known_as}”.")
    check_reachable(url, allow_private_hosts=allow_private_hosts)
    lora = LoraTraining(
        id=uuid.uuid4().hex[:16],
        request_id=RequestId.REGISTERED.new(uuid.uuid4().hex),
        user=user,
        trigger_word=word,
        lora_weights_url=url,
        status=LoraStatus.COMPLETED,
        created_at=to_iso(now or utc_now()),
        name=display,
    )
    with session_scope(engine) as session:
        session.add(lora)
        session.commit()
        session.refresh(lora)
    if keep_copy_in is not None:
        lora = weights.copy_files(
            engine=engine, store=keep_copy_in, lora=lora, allow_private_hosts=allow_private_hosts
        )
    return lora

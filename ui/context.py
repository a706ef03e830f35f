"""The app's parts (one `Studio` per process) and who the user is."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from lora_core import identity
from lora_core.errors import NotSignedIn
from lora_core.generation import quota
from lora_core.settings import Settings, load_settings
from lora_core.studio import Studio, build_studio
from lora_core.sweeper import Sweeper


def _secrets() -> Mapping[str, Any]:
    """`.streamlit/secrets.toml` as a plain mapping; none (or unreadable) means no fallback."""
    try:
        return dict(st.secrets)
    except FileNotFoundError:  # also raised by Streamlit for a file it cannot parse
        return {}


@st.cache_resource(show_spinner=False)
def get_settings() -> Settings:
    """Read once per process: changing a setting means restarting the app."""
    return load_settings(_secrets())


def _close(studio: Studio) -> None:
    studio.close()


@st.cache_resource(show_spinner=False, on_release=_close)
def get_studio(database_url: str) -> Studio:
    """The app's parts, built once per process and database (the URL keys the cache; the
    token, part of the settings, never does)."""
    return build_studio(get_settings())


def studio() -> Studio:
    return get_studio(get_settings().database.url)


def _stop(sweeper: Sweeper | None) -> None:
    if sweeper is not None:
        sweeper.stop()


@st.cache_resource(show_spinner=False, on_release=_stop)
def start_recovery(database_url: str) -> Sweeper | None:
    """Once per process and database (the URL keys it): what a dead process left is
    finished now, then swept for every RECOVERY_SWEEP_SECONDS in the background (None when
    that is 0: the LoRA page still finishes its own batches when viewed)."""
    every = get_settings().recovery_sweep_seconds
    if not every:
        studio().recover()
        return None
    return Sweeper(studio().recover, every_seconds=every, name="lora-studio-recovery").start()


def login_configured() -> bool:
    """True when `.streamlit/secrets.toml` has an `[auth]` section (st.login works)."""
    return "auth" in _secrets()


def current_identity() -> identity.Identity:
    """Who is using the app: from Streamlit's login only (see `lora_core.identity`)."""
    return identity.resolve_identity(
        settings=get_settings(),
        login_configured=(configured := login_configured()),
        claims=st.user.to_dict() if configured else None,
    )


def current_user() -> str | None:
    """The identity generations are stored and counted under; None when signed out."""
    return current_identity().user


def quota_status() -> quota.QuotaStatus:
    user = current_user()
    if user is None:
        raise NotSignedIn("Sign in to generate images.")
    return studio().quota_status(user)

"""The app's parts (one `Studio` per process) and who the user is."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import streamlit as st

from lora_core import identity
from lora_core.data import db
from lora_core.errors import LoraStudioError, NotSignedIn
from lora_core.generation import quota
from lora_core.settings import Settings, load_settings
from lora_core.studio import Studio, build_studio
from lora_core.sweeper import Sweeper

T = TypeVar("T")


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


def read(query: Callable[..., T], /, **arguments: Any) -> T:
    """A read of the core's (a function that takes `session=`) in a session of its own: the
    one way pages read the database, as the FastAPI template's one session dependency."""
    return db.read(studio().engine, query, **arguments)


def read_later(query: Callable[..., T], /, **arguments: Any) -> Callable[[], T]:
    """`read`, deferred: for a download's data, which Streamlit asks for outside any run
    (the engine is taken now, while the run's context is there)."""
    return functools.partial(db.read, studio().engine, query, **arguments)


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
    """Who is using the app: from Streamlit's login only (see `lora_core.identity`). Read
    once per run (a page asks about seven times; each read parsed the secrets again):
    signing in or out always starts a new run, which forgets it (`forget_run_state`)."""
    who = st.session_state.get(_RUN_IDENTITY_KEY)
    if who is None:
        who = identity.resolve_identity(
            settings=get_settings(),
            login_configured=(configured := login_configured()),
            claims=st.user.to_dict() if configured else None,
        )
        st.session_state[_RUN_IDENTITY_KEY] = who
    return who


def current_user() -> str | None:
    """The identity generations are stored and counted under; None when signed out."""
    return current_identity().user


_RUN_QUOTA_KEY = "_quota_status_this_run"
_RUN_IDENTITY_KEY = "_identity_this_run"


def forget_run_state() -> None:
    """Called as a full run starts: who the user is and their quota, as the previous run
    read them, are no longer news."""
    st.session_state.pop(_RUN_IDENTITY_KEY, None)
    forget_run_quota()


def forget_run_quota() -> None:
    """The quota read so far in this run is no longer news (a batch was just started)."""
    st.session_state.pop(_RUN_QUOTA_KEY, None)


def quota_status() -> quota.QuotaStatus:
    """The user's quota, read now (and kept for `run_quota_status` in the same run)."""
    user = current_user()
    if user is None:
        raise NotSignedIn("Sign in to generate images.")
    status = studio().quota_status(user)
    st.session_state[_RUN_QUOTA_KEY] = status
    return status


def run_quota_status() -> quota.QuotaStatus | None:
    """The quota this run already read (the sidebar reads it before the page), so that a
    page's Generate buttons cost no query; None when signed out or unreadable (the
    dialog explains those)."""
    status = st.session_state.get(_RUN_QUOTA_KEY)
    if status is None:
        try:
            status = quota_status()
        except LoraStudioError:
            return None
    return status

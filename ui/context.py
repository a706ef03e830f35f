"""Cached resources and who the user is. Everything here is created once per process."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import streamlit as st
from sqlalchemy import Engine

from lora_core import identity
from lora_core.data.db import DatabaseTarget, create_db_engine, ensure_schema, session_scope
from lora_core.errors import NotSignedIn
from lora_core.generation import quota, recovery
from lora_core.generation.generators import ImageGenerator
from lora_core.settings import Settings, load_settings
from lora_core.storage import MediaStore, build_store
from lora_core.studio import build_generator, build_trainer
from lora_core.training import lifecycle as training
from lora_core.training.trainers import Trainer


def _secrets() -> Mapping[str, Any]:
    """`.streamlit/secrets.toml` as a plain mapping; none (or unreadable) means no fallback."""
    try:
        return dict(st.secrets)
    except FileNotFoundError:  # also raised by Streamlit for a file it cannot parse
        return {}


# Cached resources. Streamlit leaves every parameter whose name starts with an underscore
# out of a cache key: only the database token is passed that way, on purpose (it must never
# key or reach a log), beside the URL that does key the engine.


@st.cache_resource(show_spinner=False)
def get_settings() -> Settings:
    """Read once per process: changing a setting means restarting the app."""
    return load_settings(_secrets())


@st.cache_resource(show_spinner=False)
def get_engine(database_url: str, _target: DatabaseTarget) -> Engine:
    """One engine per database URL; the target's token stays out of the key."""
    engine = create_db_engine(_target)
    ensure_schema(engine)
    return engine


@st.cache_resource(show_spinner=False)
def get_media_store() -> MediaStore:
    """One per process, built from the process's settings."""
    return build_store(get_settings())


@st.cache_resource(show_spinner=False)
def get_generator() -> ImageGenerator:
    """One per process, built from the process's settings."""
    return build_generator(get_settings(), store=get_media_store())


@st.cache_resource(show_spinner=False)
def get_trainer() -> Trainer:
    """One per process, built from the process's settings."""
    return build_trainer(get_settings(), store=get_media_store())


def trainer() -> Trainer:
    return get_trainer()


def training_policy() -> training.TrainingPolicy:
    settings = get_settings()
    return training.TrainingPolicy(
        limit=settings.training_limit,
        window=settings.training_window,
        exempt_users=identity.exempt_users(settings),
    )


def media_store() -> MediaStore:
    return get_media_store()


def engine() -> Engine:
    target = get_settings().database
    return get_engine(target.url, target)


def generator() -> ImageGenerator:
    return get_generator()


def quota_policy() -> quota.QuotaPolicy:
    settings = get_settings()
    return quota.QuotaPolicy(
        limit=settings.generation_limit,
        window=settings.generation_window,
        exempt_users=identity.exempt_users(settings),
        # A batch still pending after fal's timeout (and a margin) was abandoned.
        pending_expiry=timedelta(seconds=settings.fal_timeout_seconds) + timedelta(minutes=5),
    )


def resume_stale_batches(lora_id: str | None = None) -> recovery.ResumeReport:
    """Finish (or fail) batches a dead process left pending: for one LoRA, or all."""
    settings = get_settings()
    return recovery.resume_pending(
        engine=engine(),
        generator=generator(),
        store=media_store(),
        # Longer than any live wait on fal, so a batch still being waited on is never touched.
        older_than=timedelta(seconds=settings.fal_timeout_seconds) + timedelta(minutes=1),
        give_up_after=timedelta(minutes=30),
        lora_id=lora_id,
    )


@st.cache_resource(show_spinner=False)
def resume_at_start(database_url: str) -> recovery.ResumeReport:
    """Once per process and database (the URL keys it): the next start finishes what the
    last one left."""
    return resume_stale_batches()


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
    with session_scope(engine()) as session:
        return quota.get_status(session=session, policy=quota_policy(), user=user)

"""The one place where errors become what the user sees: our named errors as messages
(`show_error`), anything else as one plain sentence with the trace in the log (`boundary`)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import ParamSpec

import streamlit as st

from lora_core.data.clock import utc_now
from lora_core.errors import (
    ContentRefused,
    DatabaseUnavailable,
    GenerationFailed,
    GenerationPending,
    InvalidArena,
    InvalidFile,
    InvalidInput,
    InvalidPrompt,
    InvalidSettings,
    InvalidTrainingInput,
    LoraHasNoWeights,
    LoraNotFound,
    LoraNotReady,
    LoraStudioError,
    NotSignedIn,
    QuotaExceeded,
    SettingsError,
    TrainingFailed,
    TrainingQuotaExceeded,
    WeightsUnavailable,
)
from lora_core.generation.quota import QuotaStatus
from ui.text import md

logger = logging.getLogger(__name__)
P = ParamSpec("P")


def time_until(moment: datetime, now: datetime | None = None) -> str:
    """A short human duration such as "3 h 12 min" or "45 s"."""
    seconds = max(int((moment - (now or utc_now())).total_seconds()), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min"
    return f"{seconds} s"


def period_text(window: timedelta) -> str:
    """How the quota window reads in a sentence: "today" for the usual 24 hours."""
    hours = window.total_seconds() / 3600
    return "today" if hours == 24 else f"in the last {hours:g} hours"


def remaining_text(status: QuotaStatus) -> str:
    if status.is_exempt:
        return "Unlimited generations"
    return (
        f"{status.remaining} of {status.limit} generations remaining {period_text(status.window)}"
    )


def generation_blocked(status: QuotaStatus | None) -> str | None:
    """Why a Generate button is disabled (the quota is used up), or None when it is not."""
    if status is None or not status.exhausted:
        return None
    return quota_message(status.limit, status.window, status.next_slot_at)


def quota_message(
    limit: int, window: timedelta, next_slot_at: datetime | None, *, what: str = "generation"
) -> str:
    if what == "training":
        message = f"You've started all {limit} trainings {period_text(window)}."
    else:
        message = f"You've used all {limit} generations {period_text(window)}."
    if next_slot_at is not None:
        message += (
            f" Your next {what} is available in {time_until(next_slot_at)}"
            f" (at {next_slot_at:%H:%M} UTC)."
        )
    return message


def show_error(error: LoraStudioError) -> None:
    """Render `error` as the message a user should see; never a stack trace. Messages
    carry stored or uploaded text (names, file names, fal's words): shown literally."""
    match error:
        case TrainingQuotaExceeded():
            st.warning(
                quota_message(error.limit, error.window, error.next_slot_at, what="training"),
                icon=":material/timer:",
            )
        case InvalidTrainingInput() | InvalidFile():
            st.warning(md(str(error)), icon=":material/photo_library:")
        case TrainingFailed():
            st.error(md(str(error)), icon=":material/error:")
        case QuotaExceeded(remaining=remaining) if remaining > 0:
            # A sweep needing more than is left: the user's words, not the "all used" ones.
            st.warning(md(str(error)), icon=":material/timer:")
        case QuotaExceeded():
            st.warning(
                quota_message(error.limit, error.window, error.next_slot_at),
                icon=":material/timer:",
            )
        case NotSignedIn():
            st.info(md(str(error)), icon=":material/login:")
        case InvalidPrompt() | InvalidSettings() | InvalidArena():
            st.warning(md(str(error)), icon=":material/edit:")
        case WeightsUnavailable():
            st.error(md(str(error)), icon=":material/link_off:")
        case ContentRefused():
            st.error(md(str(error)), icon=":material/shield:")
        case InvalidInput():
            st.warning(md(str(error)), icon=":material/edit:")
        case GenerationPending():
            st.info(md(str(error)), icon=":material/hourglass_top:")
        case GenerationFailed():
            st.error(md(str(error)), icon=":material/error:")
        case LoraNotFound():
            st.error("LoRA not found", icon=":material/search_off:")
        case LoraNotReady(status="pending"):
            st.info(md(str(error)), icon=":material/hourglass_top:")
        case LoraNotReady() | LoraHasNoWeights():
            st.error(md(str(error)), icon=":material/block:")
        case DatabaseUnavailable():
            st.error(md(str(error)), icon=":material/cloud_off:")
        case SettingsError():
            st.error(f"LoRA Studio is misconfigured. {md(str(error))}", icon=":material/settings:")
        case _:
            st.error(md(str(error)))


UNEXPECTED = "Something went wrong. Nothing was stored; please try again."


def report_unexpected(error: BaseException, *, what: str = "a page") -> None:
    """A bug, not a user's mistake: the trace goes to the log, the user gets one plain
    sentence (never a stack trace)."""
    logger.error("unexpected error in %s", what, exc_info=error)
    st.error(UNEXPECTED, icon=":material/error:")


@contextmanager
def boundary(what: str = "a page") -> Iterator[None]:
    """Where a run's errors become messages: our named errors as `show_error` says them,
    anything else through `report_unexpected`. Streamlit's own stop, rerun and page
    switches are not errors (BaseException) and pass. The router runs every page inside
    one; a fragment, which reruns alone, runs inside its own."""
    try:
        yield
    except LoraStudioError as error:
        show_error(error)
    except Exception as error:
        report_unexpected(error, what=what)


def guarded(function: Callable[P, None]) -> Callable[P, None]:
    """`function` run inside a `boundary` (for fragments)."""

    @functools.wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        with boundary(function.__name__):
            function(*args, **kwargs)

    return run

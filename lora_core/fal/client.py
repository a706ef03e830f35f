"""How LoRA Studio talks to fal: `fal_client.SyncClient` with an HTTP transport that keeps two
promises fal_client does not make by itself, and what fal's errors mean.

- **A submit is sent at most once.** fal_client resends a POST on timeouts, transport errors,
  408/409/429 and gateway 502/503/504 (`_maybe_retry_request`), and fal has no idempotency
  key: when only the answer was lost, a resend enqueues a second paid job. Inside
  `submit_once`, a POST whose outcome is unknown raises `SubmitOutcomeUnknown` instead; only
  failures that prove nothing reached fal (no connection, a 429 refusal) may be retried.
- **Every request inside `deadline(seconds)` is bounded by it.** Its timeouts are clamped to
  the time left, and a request past it, or a retry fal_client would sleep past it for, raises
  `DeadlinePassed`.

Neither exception is an httpx error, so fal_client's retry loop lets both through at once.
The two promises live in context variables: they hold for the calling thread only, which is
where fal_client's sync client sends its requests.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import fal_client
import fal_client.client
import httpx

_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Answers fal_client retries after a pause (`RETRY_CODES`, `INGRESS_ERROR_CODES`).
_RETRIED_STATUSES = frozenset(fal_client.client.RETRY_CODES + fal_client.client.INGRESS_ERROR_CODES)
# fal_client's retry pause after the n-th failure is at most this (jitter up to 1.5×).
_JITTER = 1.5


class DeadlinePassed(Exception):
    """The time given to a fal call ran out (the request was not sent, or not waited for)."""


class SubmitOutcomeUnknown(Exception):
    """A submit may have reached fal but its answer was lost: fal may run (and bill) the
    job, and no request id is known to follow or cancel it."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


@dataclass
class _Budget:
    ends_at: float
    failures: int = 0

    def remaining(self) -> float:
        return self.ends_at - time.monotonic()


@dataclass
class _Submit:
    """The calling thread's submit: once its POST may have reached fal, it is not sent
    again (only a 429 refusal, which enqueued nothing, lets fal_client retry it).
    `answered`: the HTTP status of the answer read, once there is one."""

    sent: bool = False
    answered: int | None = None


_BUDGET: ContextVar[_Budget | None] = ContextVar("fal_budget", default=None)
_SUBMIT: ContextVar[_Submit | None] = ContextVar("fal_submit", default=None)


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Bound every fal request made inside (by this thread) to `seconds` in total."""
    token = _BUDGET.set(_Budget(time.monotonic() + seconds))
    try:
        yield
    finally:
        _BUDGET.reset(token)


def submit_once(
    client: fal_client.SyncClient,
    application: str,
    arguments: dict[str, Any],
    *,
    start_timeout: float | None = None,
) -> fal_client.SyncRequestHandle:
    """`client.submit(...)`, sent at most once (see the module docstring). `start_timeout`
    is fal's own bound on the wait before the job starts (`X-Fal-Request-Timeout`).
    A 2xx answer fal_client cannot read (not JSON, no `request_id`) says fal took
    something without telling us its id: `SubmitOutcomeUnknown`, never a retry."""
    submit = _Submit()
    token = _SUBMIT.set(submit)
    try:
        return client.submit(application, arguments=arguments, start_timeout=start_timeout)
    except (ValueError, KeyError, TypeError) as error:
        if submit.answered is not None and 200 <= submit.answered < 300:
            raise SubmitOutcomeUnknown("its answer could not be read") from error
        raise
    finally:
        _SUBMIT.reset(token)


class GuardedTransport(httpx.BaseTransport):
    """Wraps fal_client's own transport; see the module docstring."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        budget = _BUDGET.get()
        if budget is not None:
            _clamp_timeouts(request, budget)
        submit = _SUBMIT.get() if request.method == "POST" else None
        if submit is not None:
            return self._submit(request, submit, budget)
        try:
            response = self._inner.handle_request(request)
        except httpx.TransportError:
            _count_failure(budget)
            raise
        _count_answer(response, budget)
        return response

    def _submit(
        self, request: httpx.Request, submit: _Submit, budget: _Budget | None
    ) -> httpx.Response:
        """Send the submit once and read its whole answer here, so that an answer lost at
        any point (before its headers or in the middle of its body) is known as such."""
        if submit.sent:
            raise SubmitOutcomeUnknown("fal_client tried to send it again")
        try:
            response = self._inner.handle_request(request)
        except _NOT_SENT:
            _count_failure(budget)  # nothing reached fal: fal_client may try again
            raise
        except httpx.TransportError as error:
            submit.sent = True
            raise SubmitOutcomeUnknown(f"the connection failed ({type(error).__name__})") from error
        submit.sent = response.status_code != 429
        try:
            response.read()
        except httpx.TransportError as error:
            response.close()
            raise SubmitOutcomeUnknown(f"its answer broke off ({type(error).__name__})") from error
        if _outcome_unknown(response):
            raise SubmitOutcomeUnknown(f"fal's gateway answered HTTP {response.status_code}")
        submit.answered = response.status_code
        _count_answer(response, budget)
        return response

    def close(self) -> None:
        self._inner.close()


def _clamp_timeouts(request: httpx.Request, budget: _Budget) -> None:
    remaining = budget.remaining()
    if remaining <= 0:
        raise DeadlinePassed
    timeouts = request.extensions.get("timeout", {})
    request.extensions["timeout"] = {
        name: remaining if timeouts.get(name) is None else min(timeouts[name], remaining)
        for name in ("connect", "read", "write", "pool")
    }


def _count_answer(response: httpx.Response, budget: _Budget | None) -> None:
    """An answer fal_client will retry counts as a failure (see `_count_failure`)."""
    if budget is None:
        return
    if response.status_code in _RETRIED_STATUSES:
        try:
            _count_failure(budget)
        except DeadlinePassed:
            response.close()
            raise
    else:
        budget.failures = 0


def _count_failure(budget: _Budget | None) -> None:
    """fal_client will pause and retry: give up now if that pause would outlast the budget."""
    if budget is None:
        return
    budget.failures += 1
    pause = min(
        fal_client.client.BASE_DELAY * 2 ** (budget.failures - 1), fal_client.client.MAX_DELAY
    )
    if budget.remaining() <= pause * _JITTER:
        raise DeadlinePassed


def _outcome_unknown(response: httpx.Response) -> bool:
    """A submit answer that does not say whether fal enqueued the job: a timeout or conflict
    (408, 409), or a 5xx from fal's gateway (fal's own answers carry `x-fal-request-id`).
    A 429 is a refusal: nothing was enqueued, and fal_client may retry it."""
    if response.status_code in (408, 409):
        return True
    return response.status_code >= 500 and "x-fal-request-id" not in response.headers


@dataclass(frozen=True)
class GuardedClient(fal_client.SyncClient):
    """`fal_client.SyncClient` whose HTTP client sends through `GuardedTransport`. Built as
    fal_client builds its own (same headers, timeout and backup-domain transport)."""

    @cached_property
    def _client(self) -> httpx.Client:
        return httpx.Client(
            transport=GuardedTransport(fal_client.client.BackupDomainTransport()),
            headers={
                "Authorization": self._auth.header_value,
                "User-Agent": fal_client.client.USER_AGENT,
            },
            timeout=self.default_timeout,
            follow_redirects=True,
        )


def answered_by_fal(error: fal_client.client.FalClientHTTPError) -> bool:
    """Whether fal itself gave this error answer about the job (fal's servers mark theirs
    with `x-fal-request-id`, as fal_client's `_is_ingress_error` reads them), rather than a
    gateway, a proxy or fal's rate limiter: trouble worth asking again about later."""
    if error.status_code in (408, 429):
        return False
    return "x-fal-request-id" in {name.lower() for name in error.response_headers}


def not_found(error: fal_client.client.FalClientHTTPError) -> bool:
    """fal itself says it does not know the request (not a proxy's or a gateway's 404)."""
    return error.status_code == 404 and "x-fal-request-id" in {
        name.lower() for name in error.response_headers
    }


def error_detail(error: fal_client.client.FalClientHTTPError) -> str:
    """fal's message: the `msg` of each validation item, or its `detail` text (shortened)."""
    detail = error.message
    if isinstance(detail, list):
        messages = [str(item.get("msg", "")) for item in detail if isinstance(item, dict)]
        if any(messages):
            return "; ".join(message for message in messages if message)
    return str(detail)[:300]


def detail_items(error: fal_client.client.FalClientHTTPError) -> list[dict[str, Any]]:
    """A model error's `detail[]` items (`{loc, msg, type, url, ctx, input}`, as fal's
    "Model errors" page documents them); none for a request error's plain `detail`."""
    detail = error.message
    if isinstance(detail, list):
        return [item for item in detail if isinstance(item, dict)]
    return []


def error_types(error: fal_client.client.FalClientHTTPError) -> set[str]:
    """Every machine-readable kind fal gave the error: a request error's `error_type`
    (body, or the `X-Fal-Error-Type` header, as fal_client reads them) and each model
    error item's `type`."""
    kinds = {str(item["type"]) for item in detail_items(error) if item.get("type")}
    if error.error_type:
        kinds.add(str(error.error_type))
    return kinds


def field_name(loc: Any) -> str | None:
    """A model error's `loc` as the field people know: `["body", "loras", 0, "scale"]` is
    `loras[0].scale`; None when it names no field (`["body"]`)."""
    if not isinstance(loc, list):
        return None
    parts = loc[1:] if loc[:1] == ["body"] else loc
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else f"{'.' if name else ''}{part}"
    return name or None

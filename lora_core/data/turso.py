"""SQLAlchemy on a libSQL server (Turso, or a local `sqld`) over HTTP.

The DB-API is `turso_serverless` (pure Python, Hrana v3 over HTTP): unlike the Rust-based
`sqlalchemy-libsql`, it raises proper `IntegrityError`s and lets several threads write at
once without stalling (see README, "Turso / libSQL"). Two things are added here:

- one keep-alive `httpx.Client` per engine, shared by its connections, instead of a new
  TCP (and TLS) connection for every statement;
- a connection idle for a while starts a new server-side stream instead of reusing its
  old one: the server drops a stream after ~10 s idle, and reusing a dropped one fails
  the next query. (Streams are not closed after every use: that would cost a round trip,
  and each open stream holds one of the server's connections only until it expires.)
"""

from __future__ import annotations

import json
import time
from types import ModuleType
from typing import Any

import httpx
import turso_serverless
from sqlalchemy import Engine, create_engine, pool
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL
from turso_serverless.protocol import ProtocolError
from turso_serverless.session import Session, normalize_url

# The SQLite inside sqld 0.24 (and Turso's servers): decides which SQL SQLAlchemy emits.
SQLITE_VERSION = (3, 45, 1)
REMOTE_SCHEMES = ("libsql://", "https://", "http://", "wss://", "ws://")
# sqld drops a stream idle for 10 s; well before that, an idle connection starts a new one.
STREAM_IDLE_SECONDS = 5.0
# Transport failures (server down, refused credentials), as opposed to SQL errors.
_TRANSPORT_ERRORS = ("request to ", "HTTP status ")


def is_remote_url(url: str) -> bool:
    """True for a libSQL server address (`libsql://…` as Turso prints it, or http(s))."""
    return url.lower().startswith(REMOTE_SCHEMES)


def http_base_url(url: str) -> str:
    """The HTTP address behind a libSQL URL (`libsql://`/`wss://` → https, `ws://` → http)."""
    lowered = url.lower()
    if lowered.startswith("wss://"):
        url = "https://" + url[len("wss://") :]
    elif lowered.startswith("ws://"):
        url = "http://" + url[len("ws://") :]
    return normalize_url(url).split("?", 1)[0]


class _HttpSession(Session):
    """A Hrana stream whose requests go through a shared keep-alive HTTP client."""

    def __init__(self, url: str, auth_token: str | None, client: httpx.Client) -> None:
        super().__init__(url, auth_token=auth_token)
        self._client = client
        self._last_used = time.monotonic()

    def _post(self, path: str, body: dict) -> bytes:
        idle = time.monotonic() - self._last_used
        if self._baton is not None and self.autocommit and idle > STREAM_IDLE_SECONDS:
            # No transaction to lose; the server may have dropped (or be about to drop) it.
            self._reset_stream()
            body = {**body, "baton": None}
        self._last_used = time.monotonic()
        # Same contract as the driver's own urllib version: any failure ends the stream.
        try:
            response = self._client.post(
                f"{self._base_url}{path}",
                content=json.dumps(body, allow_nan=False).encode(),
                headers=self._headers(),
            )
        except httpx.HTTPError as error:
            self._reset_stream()
            raise ProtocolError(f"request to {self._base_url} failed: {error}") from None
        if response.status_code != 200:
            self._reset_stream()
            raise ProtocolError(f"HTTP status {response.status_code}: {_reason(response)}")
        return response.content


def _reason(response: httpx.Response) -> str:
    try:
        parsed = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(parsed, dict):
        for key in ("error", "message"):
            if isinstance(parsed.get(key), str):
                return parsed[key]
    return response.text[:200]


class TursoConnection(turso_serverless.Connection):
    """The driver's connection, over `_HttpSession`."""

    def __init__(self, url: str, auth_token: str | None, client: httpx.Client) -> None:
        self.http_session = _HttpSession(url, auth_token, client)
        super().__init__(self.http_session)


def sqlite_dbapi_module(name: str, sqlite_version: tuple[int, ...]) -> ModuleType:
    """A DB-API module as SQLAlchemy's SQLite dialect reads it: `turso_serverless`'s names
    (its exception classes; engines get connections from `creator`, never `connect`) plus
    the SQLite version, which decides the SQL the dialect emits. The embedded replica's
    dialect (`lora_core.data.replica`) raises the same exception classes."""
    module = ModuleType(name)
    for member in turso_serverless.__all__:
        setattr(module, member, getattr(turso_serverless, member))
    module.sqlite_version_info = sqlite_version  # type: ignore[attr-defined]
    module.sqlite_version = ".".join(map(str, sqlite_version))  # type: ignore[attr-defined]
    return module


class TursoDialect(SQLiteDialect_pysqlite):
    """SQLite's SQL and types; `turso_serverless` underneath. Connections come from `creator`."""

    driver = "turso"
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> Any:
        return sqlite_dbapi_module("turso_dbapi", SQLITE_VERSION)

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        return pool.QueuePool

    def on_connect(self) -> None:
        # pysqlite's hook registers Python functions on the connection; a server can't run them.
        return None

    def is_disconnect(self, e: Any, connection: Any, cursor: Any) -> bool:
        return isinstance(e, turso_serverless.OperationalError) and str(e).startswith(
            _TRANSPORT_ERRORS
        )


registry.register("sqlite.turso", __name__, "TursoDialect")


def create_turso_engine(
    url: str, *, auth_token: str | None, timeout_seconds: float = 15, pool_size: int = 5
) -> Engine:
    """An engine on the libSQL server at `url`; nothing is sent until the first query."""
    base_url = http_base_url(url)
    # Statements that wait for the server's write lock take up to its 5 s transaction timeout.
    client = httpx.Client(timeout=httpx.Timeout(timeout_seconds, connect=5))

    def connect() -> TursoConnection:
        return TursoConnection(base_url, auth_token, client)

    return create_engine(
        "sqlite+turso://", creator=connect, pool_size=pool_size, max_overflow=2 * pool_size
    )


__all__ = [
    "TursoDialect",
    "create_turso_engine",
    "http_base_url",
    "is_remote_url",
    "sqlite_dbapi_module",
]

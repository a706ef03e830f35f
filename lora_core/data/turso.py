"""SQLAlchemy on a libSQL server (Turso, or a local `sqld`) over HTTP.

The DB-API is `turso_serverless` (pure Python, Hrana v3 over HTTP): unlike the Rust-based
`sqlalchemy-libsql`, it raises proper `IntegrityError`s and lets several threads write at
once without stalling (see README, "Turso / libSQL"). Two things are added here:

- one keep-alive HTTP connection per DB-API connection (the standard library's
  `http.client`), instead of a new TCP (and TLS) connection for every statement. Not
  `httpx`: every statement is a request, and httpx spent about 0.6 ms of CPU on each
  against 0.2 ms here, a quarter of a page's CPU on a replica under load
  (benchmarks/load.py);
- a connection idle for a while starts a new server-side stream instead of reusing its
  old one: the server drops a stream after ~10 s idle, and reusing a dropped one fails
  the next query. (Streams are not closed after every use: that would cost a round trip,
  and each open stream holds one of the server's connections only until it expires.)
"""

from __future__ import annotations

import http.client
import json
import select
import time
from types import ModuleType
from typing import Any
from urllib.parse import SplitResult, urlsplit

import turso_serverless
from sqlalchemy import Engine, create_engine, pool
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL
from turso_serverless.protocol import ProtocolError
from turso_serverless.session import Session, normalize_url

from lora_core.web import tls_context

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


class _KeepAlive:
    """One HTTP/1.1 connection to the server, kept open between requests. A DB-API
    connection has one and is used by one thread at a time (SQLAlchemy's pool)."""

    def __init__(self, *, connect_seconds: float, read_seconds: float) -> None:
        self._connect_seconds = connect_seconds
        self._read_seconds = read_seconds
        self._connection: http.client.HTTPConnection | None = None
        self._origin: tuple[str, str] | None = None

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """(status, body) of a POST to `url`. Raises `OSError` or `http.client`'s
        exceptions when the request or its answer is lost; the connection is then closed.
        Never sent twice: whether a lost statement may run again is the caller's call."""
        parts = urlsplit(url)
        connection = self._connection_for(parts)
        try:
            connection.request("POST", parts.path or "/", body=body, headers=headers)
            response = connection.getresponse()
            content = response.read()
        except BaseException:
            self.close()
            raise
        if response.will_close:
            self.close()
        return response.status, content

    def _connection_for(self, parts: SplitResult) -> http.client.HTTPConnection:
        origin = (parts.scheme, parts.netloc)
        if self._connection is not None and (origin != self._origin or self._dropped()):
            self.close()
        if self._connection is None:
            connection: http.client.HTTPConnection
            if parts.scheme == "https":
                connection = http.client.HTTPSConnection(
                    parts.hostname or "", parts.port, timeout=self._connect_seconds,
                    context=tls_context(),  # built once per trust setting
                )  # fmt: skip
            else:
                connection = http.client.HTTPConnection(
                    parts.hostname or "", parts.port, timeout=self._connect_seconds
                )
            connection.connect()
            assert connection.sock is not None
            connection.sock.settimeout(self._read_seconds)
            self._connection, self._origin = connection, origin
        return self._connection

    def _dropped(self) -> bool:
        """True when the server closed the idle connection: its socket reads as ready
        (the end of the stream) though no request is under way."""
        sock = self._connection.sock if self._connection is not None else None
        if sock is None:
            return True
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection = self._origin = None


class _HttpSession(Session):
    """A Hrana stream whose requests go through a keep-alive HTTP connection."""

    def __init__(self, url: str, auth_token: str | None, http: _KeepAlive) -> None:
        super().__init__(url, auth_token=auth_token)
        self._http = http
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
            status, content = self._http.post(
                f"{self._base_url}{path}",
                json.dumps(body, allow_nan=False).encode(),
                self._headers(),
            )
        except (OSError, http.client.HTTPException) as error:
            self._reset_stream()
            raise ProtocolError(f"request to {self._base_url} failed: {error!r}") from None
        if status != 200:
            self._reset_stream()
            raise ProtocolError(f"HTTP status {status}: {_reason(content)}")
        return content

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._http.close()


def _reason(content: bytes) -> str:
    text = content.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        return text[:200]
    if isinstance(parsed, dict):
        for key in ("error", "message"):
            if isinstance(parsed.get(key), str):
                return parsed[key]
    return text[:200]


class TursoConnection(turso_serverless.Connection):
    """The driver's connection, over `_HttpSession`."""

    def __init__(self, url: str, auth_token: str | None, http: _KeepAlive) -> None:
        self.http_session = _HttpSession(url, auth_token, http)
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

    def connect() -> TursoConnection:
        # Statements waiting for the server's write lock take up to its 5 s transaction
        # timeout: reads may wait `timeout_seconds`; connecting, 5 s.
        http = _KeepAlive(connect_seconds=5, read_seconds=timeout_seconds)
        return TursoConnection(base_url, auth_token, http)

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

"""SQLAlchemy on a libSQL server (Turso, or a local `sqld`) over HTTP.

The DB-API is `turso_serverless` (pure Python, Hrana v3 over HTTP): unlike the Rust-based
`sqlalchemy-libsql`, it raises proper `IntegrityError`s and lets several threads write at
once without stalling (see README, "Turso / libSQL"). Two things are added here:

- one keep-alive HTTP/1.1 connection per DB-API connection, instead of a new TCP (and
  TLS) connection for every statement, its requests written and answers read in a few
  lines here. Not `httpx`: every statement is a request, and httpx spent about 0.6 ms of
  CPU on each against 0.2 ms with `http.client`, a quarter of a page's CPU on a replica
  under load (benchmarks/load.py); nor `http.client` itself, whose header parsing cost a
  quarter of what remained;
- a connection idle for a while starts a new server-side stream instead of reusing its
  old one: the server drops a stream after ~10 s idle, and reusing a dropped one fails
  the next query. (Streams are not closed after every use: that would cost a round trip,
  and each open stream holds one of the server's connections only until it expires.)
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import time
from types import ModuleType
from typing import Any, BinaryIO
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
# Limits on an answer's head, as http.client's: a broken server can't make us read forever.
_MAX_LINE = 65536
_MAX_HEADERS = 100


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
    connection has one and is used by one thread at a time (SQLAlchemy's pool).

    The request is written and its answer read here, not by `http.client`: every
    statement is a request, and `http.client` reads an answer's headers with the `email`
    package; a trivial statement took 0.65 ms of CPU through it, 0.48 here. The server's
    answers are plain: a status line, a few headers, a body of a `Content-Length` or in
    chunks."""

    def __init__(self, *, connect_seconds: float, read_seconds: float) -> None:
        self._connect_seconds = connect_seconds
        self._read_seconds = read_seconds
        self._socket: socket.socket | None = None
        self._file: BinaryIO | None = None
        self._origin: tuple[str, str] | None = None

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """(status, body) of a POST to `url`. Raises `OSError` or `http.client`'s
        exceptions when the request or its answer is lost; the connection is then closed.
        Never sent twice: whether a lost statement may run again is the caller's call."""
        parts = urlsplit(url)
        request = _request(parts, body, headers)
        sock, answer = self._connection_for(parts)
        try:
            sock.sendall(request)
            status, content, closes = _read_answer(answer)
        except BaseException:
            self.close()
            raise
        if closes:
            self.close()
        return status, content

    def _connection_for(self, parts: SplitResult) -> tuple[socket.socket, BinaryIO]:
        origin = (parts.scheme, parts.netloc)
        if self._socket is not None and (origin != self._origin or self._dropped()):
            self.close()
        if self._socket is None or self._file is None:
            host = parts.hostname or ""
            port = parts.port or (443 if parts.scheme == "https" else 80)
            sock = socket.create_connection((host, port), timeout=self._connect_seconds)
            try:
                # As http.client does: a request is one small write, sent at once.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if parts.scheme == "https":
                    sock = tls_context().wrap_socket(sock, server_hostname=host)
                sock.settimeout(self._read_seconds)
            except BaseException:
                sock.close()
                raise
            self._socket, self._file, self._origin = sock, sock.makefile("rb"), origin
        return self._socket, self._file

    def _dropped(self) -> bool:
        """True when the server closed the idle connection: its socket reads as ready
        (the end of the stream) though no request is under way."""
        if self._socket is None:
            return True
        readable, _, _ = select.select([self._socket], [], [], 0)
        return bool(readable)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._socket is not None:
            self._socket.close()
        self._socket = self._file = self._origin = None


def _request(parts: SplitResult, body: bytes, headers: dict[str, str]) -> bytes:
    """A POST of `body` as HTTP/1.1 writes it: request line, headers, blank line, body."""
    lines = [
        f"POST {parts.path or '/'} HTTP/1.1",
        f"Host: {parts.netloc.rpartition('@')[2]}",  # as written: [::1]:8080 keeps brackets
        "Accept-Encoding: identity",
        f"Content-Length: {len(body)}",
    ]
    for name, value in headers.items():
        if any(character in f"{name}{value}" for character in "\r\n"):
            # A header can't hold a line break (a token pasted with one, say).
            raise ValueError(f"invalid HTTP header {name!r}: it contains a line break")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _read_answer(answer: BinaryIO) -> tuple[int, bytes, bool]:
    """(status, body, whether the server closes the connection) of one HTTP/1.1 answer."""
    status_line = _line(answer)
    if not status_line:
        raise http.client.RemoteDisconnected("the server closed the connection")
    version, _, rest = status_line.partition(b" ")
    code = rest[:3]
    if not version.startswith(b"HTTP/1.") or not code.isdigit():
        raise http.client.BadStatusLine(status_line.decode("latin-1", errors="replace"))
    headers: dict[bytes, bytes] = {}
    for _ in range(_MAX_HEADERS):
        line = _line(answer)
        if line in (b"\r\n", b"\n"):
            break
        if not line:
            raise http.client.IncompleteRead(b"")
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    else:
        raise http.client.HTTPException(f"more than {_MAX_HEADERS} headers")
    closes = headers.get(b"connection", b"").lower() == b"close" or version == b"HTTP/1.0"
    if code in (b"204", b"304") or code.startswith(b"1"):
        return int(code), b"", closes  # no body, whatever the headers say (RFC 9112 6.3)
    if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
        return int(code), _read_chunks(answer), closes
    if (length := headers.get(b"content-length")) is not None:
        if not length.isdigit():
            raise http.client.HTTPException(f"invalid Content-Length {length!r}")
        return int(code), _read_exactly(answer, int(length)), closes
    return int(code), answer.read(), True  # the body ends with the connection


def _read_chunks(answer: BinaryIO) -> bytes:
    """A chunked body: hex sizes, each followed by that many bytes; then trailers."""
    chunks = []
    while True:
        size_text = _line(answer).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            size = -1
        if size < 0:  # not a chunk's size: what follows can't be read as the body
            raise http.client.IncompleteRead(b"".join(chunks))
        if size == 0:
            while _line(answer) not in (b"\r\n", b"\n", b""):
                pass  # trailers, unused
            return b"".join(chunks)
        chunks.append(_read_exactly(answer, size))
        _read_exactly(answer, 2)  # the CRLF after each chunk


def _read_exactly(answer: BinaryIO, size: int) -> bytes:
    data = answer.read(size)
    if len(data) < size:
        raise http.client.IncompleteRead(data, size - len(data))
    return data


def _line(answer: BinaryIO) -> bytes:
    line = answer.readline(_MAX_LINE + 1)
    if len(line) > _MAX_LINE:
        raise http.client.LineTooLong("header line")
    return line


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

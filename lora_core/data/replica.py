"""Turso's embedded replica: reads from a local file synced from the libSQL server, writes
forwarded to the server (`TURSO_REPLICA_PATH`).

Built on `libsql` 0.1.8, the last release that syncs with a self-hosted `sqld` as well as
with Turso (later ones speak only Turso's cloud sync protocol). Its connection is wrapped
here because, as checked against `sqld` 0.24:

- it reports every database error as a plain `ValueError`: mapped by the error text to
  the DB-API exceptions the server dialect raises (`turso_serverless`'s), so that the
  app's error handling (a refused token names TURSO_AUTH_TOKEN, a server that is down is
  "unavailable") holds;
- two connections writing through the same replica file corrupt it: the process keeps one
  connection per file, and the engine's pool lends it to one thread at a time.

The replica is synced when the engine first connects and after every commit (a write is
already visible locally; the sync also brings in what others wrote meanwhile).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

# libsql's Rust core logs every sync handshake to stderr unless told otherwise.
os.environ.setdefault("RUST_LOG", "off")

import libsql
from sqlalchemy import Engine, create_engine, pool
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from turso_serverless import DatabaseError, IntegrityError, OperationalError

from lora_core.data.turso import sqlite_dbapi_module

# The SQLite of the local replica file (libsql 0.1.8's embedded libSQL).
SQLITE_VERSION = tuple(libsql.sqlite_version_info)


def _classify(error: Exception) -> DatabaseError:
    """libsql's `ValueError` text → the DB-API exception it stands for."""
    text = str(error)
    lowered = text.lower()
    if "constraint" in lowered:
        return IntegrityError(text)
    # A refused token shows up as a handshake that never completes.
    refused = ("unauthenticated", "jwt", "permissiondenied", "handshake")
    if any(word in lowered for word in refused):
        # Worded as the HTTP driver's refusals, so the same message names the setting.
        return OperationalError(f"HTTP status 401: {text}")
    if "connect" in lowered or "unavailable" in lowered:
        return OperationalError(f"request to the libSQL server failed: {text}")
    return OperationalError(text)


class ReplicaCursor:
    def __init__(self, connection: ReplicaConnection) -> None:
        self._connection = connection
        self._cursor = connection.raw.cursor()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    arraysize = 1

    def execute(self, statement: str, parameters: Sequence[Any] = ()) -> ReplicaCursor:
        if not statement.lstrip()[:6].upper().startswith(("SELECT", "PRAGMA", "EXPLAI", "WITH")):
            self._connection.wrote = True
        try:
            self._cursor.execute(statement, tuple(parameters or ()))
        except ValueError as error:
            raise _classify(error) from None
        return self

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> ReplicaCursor:
        for parameters in rows:
            self.execute(statement, parameters)
        return self

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size or self.arraysize)

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    def close(self) -> None:
        """Nothing to free: libsql's cursors hold no server resources."""


class ReplicaConnection:
    """The process's one libsql connection to a replica file, as a DB-API connection."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.wrote = False

    def cursor(self) -> ReplicaCursor:
        return ReplicaCursor(self)

    def commit(self) -> None:
        try:
            self.raw.commit()
            if self.wrote:
                self.raw.sync()
        except ValueError as error:
            raise _classify(error) from None
        finally:
            self.wrote = False

    def rollback(self) -> None:
        try:
            self.raw.rollback()
        except ValueError as error:
            raise _classify(error) from None
        finally:
            self.wrote = False

    def close(self) -> None:
        """Kept open: it is the process's only connection to the file (see the module)."""

    def create_function(self, *args: Any, **kwargs: Any) -> None:
        """A replica's writes run on the server, which cannot call Python functions."""


_open: dict[str, Any] = {}
_open_lock = threading.Lock()


def _connect(path: str, sync_url: str, auth_token: str | None) -> ReplicaConnection:
    with _open_lock:
        raw = _open.get(path)
        if raw is None:
            try:
                raw = libsql.connect(path, sync_url=sync_url, auth_token=auth_token or "")
                raw.sync()
            except ValueError as error:
                raise _classify(error) from None
            _open[path] = raw
    return ReplicaConnection(raw)


class ReplicaDialect(SQLiteDialect_pysqlite):
    driver = "libsql_replica"
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> Any:
        return sqlite_dbapi_module("libsql_replica_dbapi", SQLITE_VERSION)

    def on_connect(self) -> None:
        return None

    def is_disconnect(self, e: Any, connection: Any, cursor: Any) -> bool:
        return False  # the connection is local; a lost server fails statements, not it


registry.register("sqlite.libsql_replica", __name__, "ReplicaDialect")


def create_replica_engine(path: str, *, sync_url: str, auth_token: str | None) -> Engine:
    """An engine reading the replica file at `path`, writing to the server at `sync_url`."""

    def connect() -> ReplicaConnection:
        return _connect(path, sync_url, auth_token)

    # libsql opens a transaction implicitly on the first write, as sqlite3 does, so the
    # SQLite dialect's transaction handling applies unchanged.
    return create_engine(
        "sqlite+libsql_replica://",
        creator=connect,
        poolclass=pool.QueuePool,
        pool_size=1,  # one thread at a time on the one connection
        max_overflow=0,
        pool_timeout=60,
    )

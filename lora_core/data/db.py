"""Engine factory, and the session helper every query uses (the schema: `schema.py`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from lora_core.data import models
from lora_core.data.turso import create_turso_engine, http_base_url, is_remote_url
from lora_core.errors import DatabaseUnavailable

T = TypeVar("T")

_UNAVAILABLE = "The database is unavailable right now. Please try again in a moment."
_REFUSED = (
    "The database server refused the app's credentials. "
    "Check the TURSO_AUTH_TOKEN setting (it may be missing, expired or for another database)."
)


@dataclass(frozen=True)
class DatabaseTarget:
    """Where the data lives: a SQLAlchemy URL, or a libSQL server address and its token."""

    url: str
    auth_token: str | None = field(default=None, repr=False)
    # A libSQL server read through a local embedded replica file (TURSO_REPLICA_PATH).
    replica_path: str | None = None

    @property
    def direct(self) -> DatabaseTarget:
        """The same database without the embedded replica: for command-line tools that run
        beside the app, since two processes must not write through one replica file."""
        return DatabaseTarget(self.url, auth_token=self.auth_token)

    @property
    def is_remote(self) -> bool:
        return is_remote_url(self.url)

    @property
    def label(self) -> str:
        """What the UI may show: the backend and host or file, never a token or query."""
        if self.is_remote:
            host = self.url.split("://", 1)[1].split("?", 1)[0].split("/", 1)[0]
            replica = " · embedded replica" if self.replica_path else ""
            return f"Turso / libSQL server · {host.rsplit('@', 1)[-1]}{replica}"
        parsed = make_url(self.url)
        if parsed.get_backend_name() == "sqlite":
            return f"SQLite file · {Path(parsed.database or ':memory:').name}"
        return f"{parsed.get_backend_name()} · {parsed.host or ''}"


def create_db_engine(target: DatabaseTarget | str, *, busy_timeout_seconds: float = 5) -> Engine:
    """An engine for a libSQL server or any SQLAlchemy URL; a SQLite file gets its folder.

    A SQLite file locked by another writer for longer than `busy_timeout_seconds` makes a
    query fail with `DatabaseUnavailable` rather than hang the page.
    """
    if isinstance(target, str):
        target = DatabaseTarget(target)
    if target.is_remote and target.replica_path:
        from lora_core.data.replica import create_replica_engine  # needs the optional `libsql`

        Path(target.replica_path).parent.mkdir(parents=True, exist_ok=True)
        return create_replica_engine(
            target.replica_path, sync_url=http_base_url(target.url), auth_token=target.auth_token
        )
    if target.is_remote:
        return create_turso_engine(target.url, auth_token=target.auth_token)
    url = target.url
    parsed = make_url(url)
    connect_args: dict[str, object] = {}
    if parsed.get_backend_name() == "sqlite":
        # Streamlit runs each session in its own thread.
        connect_args["check_same_thread"] = False
        connect_args["timeout"] = busy_timeout_seconds
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return create_engine(url, connect_args=connect_args)


def unavailable(error: DBAPIError) -> DatabaseUnavailable:
    """The user's view of a database error: refused credentials are named as such."""
    reason = str(error.orig)
    if reason.startswith(("HTTP status 401", "HTTP status 403")):
        return DatabaseUnavailable(_REFUSED)
    return DatabaseUnavailable(_UNAVAILABLE)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session whose objects outlive commit; DB errors become `DatabaseUnavailable`."""
    try:
        with Session(engine, expire_on_commit=False) as session:
            yield session
    except DBAPIError as error:
        raise unavailable(error) from error


def read(engine: Engine, query: Callable[..., T], /, **arguments: Any) -> T:
    """Run a read of the core's (a function that takes `session=`) in a session of its own:
    the one way the UI reads the database (`ui.context.read`)."""
    with session_scope(engine) as session:
        return query(session=session, **arguments)


__all__ = [
    "DatabaseTarget",
    "create_db_engine",
    "models",
    "read",
    "session_scope",
    "unavailable",
]

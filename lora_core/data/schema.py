"""The schema made current, the ecosystem's way: Alembic revisions (`migrations/`), applied
once at start-up under a lock that works across processes and machines.

Every app process calls `ensure_schema` when it starts. A database already at the head
revision costs a read of its version table, and Alembic is not even imported (a sixth of
a cold start's imports): the head is the newest revision's file name, as every revision
here is named. Otherwise one process takes the lock (a row in a table of its own, taken
by one INSERT that only one writer can win), applies the missing revisions, and lets go;
the others wait for the lock to go and the database to be at head, then serve. A lock
left by a process that died is taken over once it is older than `STALE_AFTER`.

Revisions also apply to databases that already hold their changes (the original app's,
and the ones the earlier hand-written schema code shaped): see `migrations/helpers.py`.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from lora_core.data.clock import parse_iso, to_iso, utc_now
from lora_core.data.db import unavailable
from lora_core.errors import DatabaseUnavailable

if TYPE_CHECKING:
    from alembic.config import Config

SCRIPTS = Path(__file__).with_name("migrations")
LOCK_TABLE = "lora_studio_schema_lock"
STALE_AFTER = timedelta(minutes=10)
WAIT_SECONDS = 120.0
POLL_SECONDS = 0.2
BUSY = (
    "The database's schema is being upgraded by another LoRA Studio process; try again in a minute."
)


VERSION_TABLE = "alembic_version"  # Alembic's own


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    return config


def head() -> str:
    """The newest revision: each is named for its file, numbered in order
    (`0021_arena_collections`), one after the other (tests/data/test_schema.py checks
    both against Alembic's own reading of the folder)."""
    return max(path.stem for path in (SCRIPTS / "versions").glob("[0-9]*.py"))


def current(engine: Engine) -> str | None:
    """The revision the database is at (None: never migrated by Alembic), read from
    Alembic's version table as Alembic reads it."""
    with engine.connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return None
        versions = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
    return versions[0][0] if len(versions) == 1 else None


def ensure_schema(engine: Engine, *, wait_seconds: float = WAIT_SECONDS) -> bool:
    """Bring the database to the head revision, whoever else is starting now. True when
    this call applied revisions, False when there was nothing to do (or another process
    did it). DatabaseUnavailable when the database cannot be reached, or another process
    holds the lock longer than `wait_seconds`."""
    try:
        return _ensure(engine, wait_seconds)
    except DBAPIError as error:
        raise unavailable(error) from error


def _ensure(engine: Engine, wait_seconds: float) -> bool:
    target = head()
    if current(engine) == target:
        return False
    _create_lock_table(engine)
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + wait_seconds
    while True:
        if _take_lock(engine, holder):
            try:
                if current(engine) == target:
                    return False  # done by the previous holder just before
                from alembic import command

                config = alembic_config()
                with engine.begin() as connection:
                    config.attributes["connection"] = connection
                    command.upgrade(config, "head")
                return True
            finally:
                _release_lock(engine, holder)
        if current(engine) == target:
            return False
        if time.monotonic() > deadline:
            raise DatabaseUnavailable(BUSY)
        time.sleep(POLL_SECONDS)


def _create_lock_table(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {LOCK_TABLE} "
                "(id INTEGER PRIMARY KEY CHECK (id = 1), holder TEXT NOT NULL, "
                "taken_at TEXT NOT NULL)"
            )
        )


def _take_lock(engine: Engine, holder: str) -> bool:
    """One INSERT of the one row: only one writer can win it. A lock older than
    `STALE_AFTER` (its process died mid-upgrade) is removed first."""
    with engine.begin() as connection:
        row = connection.execute(text(f"SELECT taken_at FROM {LOCK_TABLE} WHERE id = 1")).first()
        if row is not None and parse_iso(row[0]) < utc_now() - STALE_AFTER:
            connection.execute(
                text(f"DELETE FROM {LOCK_TABLE} WHERE id = 1 AND taken_at = :taken"),
                {"taken": row[0]},
            )
    try:
        with engine.begin() as connection:
            connection.execute(
                text(f"INSERT INTO {LOCK_TABLE} (id, holder, taken_at) VALUES (1, :holder, :at)"),
                {"holder": holder, "at": to_iso(utc_now())},
            )
        return True
    except IntegrityError:
        return False


def _release_lock(engine: Engine, holder: str) -> None:
    with engine.begin() as connection:
        connection.execute(
            text(f"DELETE FROM {LOCK_TABLE} WHERE id = 1 AND holder = :holder"),
            {"holder": holder},
        )

"""Engine factory, schema creation/upgrade, and the session helper every query uses."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, SQLModel

from lora_core import models
from lora_core.errors import DatabaseUnavailable

# Columns we added to the original app's tables: created with ALTER TABLE when missing.
_ADDED_COLUMNS: dict[str, dict[str, str]] = {
    "lora_trainings": {"hidden": "BOOLEAN"},
    "generated_images": {"batch_id": "TEXT", "original_url": "TEXT", "nsfw": "BOOLEAN"},
    # And to ours, as they grow.
    "generation_batches": {"duration_ms": "INTEGER"},
}
_UNAVAILABLE = "The database is unavailable right now. Please try again in a moment."


def create_db_engine(url: str, *, busy_timeout_seconds: float = 5) -> Engine:
    """An engine for any SQLAlchemy URL; a SQLite file gets its folder created.

    A SQLite file locked by another writer for longer than `busy_timeout_seconds` makes a
    query fail with `DatabaseUnavailable` rather than hang the page.
    """
    parsed = make_url(url)
    connect_args: dict[str, object] = {}
    if parsed.get_backend_name() == "sqlite":
        # Streamlit runs each session in its own thread.
        connect_args["check_same_thread"] = False
        connect_args["timeout"] = busy_timeout_seconds
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return create_engine(url, connect_args=connect_args)


def ensure_schema(engine: Engine) -> None:
    """Create missing tables, columns and indexes; leave existing data untouched."""
    try:
        with engine.begin() as connection:
            SQLModel.metadata.create_all(connection)
            inspector = inspect(connection)
            for table_name, columns in _ADDED_COLUMNS.items():
                present = {column["name"] for column in inspector.get_columns(table_name)}
                for name, sql_type in columns.items():
                    if name not in present:
                        connection.execute(
                            text(f"ALTER TABLE {table_name} ADD COLUMN {name} {sql_type}")
                        )
            for table in SQLModel.metadata.sorted_tables:
                for index in table.indexes:
                    index.create(connection, checkfirst=True)
    except DBAPIError as error:
        raise DatabaseUnavailable(_UNAVAILABLE) from error


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session whose objects outlive commit; DB errors become `DatabaseUnavailable`."""
    try:
        with Session(engine, expire_on_commit=False) as session:
            yield session
    except DBAPIError as error:
        raise DatabaseUnavailable(_UNAVAILABLE) from error


__all__ = ["create_db_engine", "ensure_schema", "models", "session_scope"]

"""The schema: the original app's tables exactly, ours added beside them, nothing lost."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, select, text

from lora_core.data.db import DatabaseTarget, create_db_engine, session_scope
from lora_core.data.models import GeneratedImage, GenerationBatch, ImageFavorite, LoraTraining
from lora_core.data.schema import ensure_schema
from lora_core.errors import DatabaseUnavailable
from lora_core.gallery import queries

# The original web app's DDL, from its plan.
ORIGINAL_DDL = """
CREATE TABLE lora_trainings (
  id TEXT PRIMARY KEY, request_id TEXT UNIQUE, wallet_address TEXT, trigger_word TEXT,
  steps INTEGER, image_urls TEXT, lora_weights_url TEXT, status TEXT, created_at TEXT
);
CREATE TABLE IF NOT EXISTS generated_images (
  id TEXT PRIMARY KEY,
  lora_training_id TEXT NOT NULL,
  wallet_address TEXT NOT NULL,
  prompt TEXT NOT NULL,
  image_url TEXT NOT NULL,
  image_width INTEGER,
  image_height INTEGER,
  seed TEXT,
  created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_gen_images_lora ON generated_images(lora_training_id);
CREATE INDEX IF NOT EXISTS idx_gen_images_wallet ON generated_images(wallet_address);
CREATE INDEX IF NOT EXISTS idx_gen_images_created ON generated_images(created_at);
INSERT INTO lora_trainings VALUES ('l1', 'r1', '0xabc', 'sks', 1000, '[]',
  'https://w/x.safetensors', 'completed', '2026-02-11T10:00:00.000Z');
INSERT INTO generated_images VALUES ('g1', 'l1', '0xabc', 'a cat', 'https://fal.media/1.jpg',
  1024, 1024, '18446744073709551557', '2026-02-12T10:00:00.000Z');
"""


def columns(engine, table: str) -> dict[str, tuple[str, bool]]:
    return {
        column["name"]: (str(column["type"]), column["nullable"])
        for column in inspect(engine).get_columns(table)
    }


def run_script(engine: Engine, script: str) -> None:
    """Run DDL the way the original app did: through the driver, not our schema code."""
    connection = engine.raw_connection()
    try:
        connection.driver_connection.executescript(script)
        connection.commit()
    finally:
        connection.close()


@pytest.mark.both_backends
def test_generated_images_has_the_plans_columns_and_types(engine):
    """The plan's DDL exactly (`id TEXT PRIMARY KEY`, which SQLite lets be NULL), and ours."""
    assert columns(engine, "generated_images") == {
        "id": ("TEXT", True),
        "lora_training_id": ("TEXT", False),
        "wallet_address": ("TEXT", False),
        "prompt": ("TEXT", False),
        "image_url": ("TEXT", False),
        "image_width": ("INTEGER", True),
        "image_height": ("INTEGER", True),
        "seed": ("TEXT", True),
        "created_at": ("TEXT", False),
        "batch_id": ("TEXT", True),
        "original_url": ("TEXT", True),
        "nsfw": ("BOOLEAN", True),
        "hidden": ("BOOLEAN", True),
        "thumbnail_url": ("TEXT", True),
    }


@pytest.mark.both_backends
def test_lora_trainings_has_the_plans_columns(engine):
    assert set(columns(engine, "lora_trainings")) == {
        "id", "request_id", "wallet_address", "trigger_word", "steps", "image_urls",
        "lora_weights_url", "status", "created_at", "hidden", "error", "name", "is_style",
        "weights_copy_url", "config_url", "config_copy_url", "lease_holder", "lease_until",
        "progress",
    }  # fmt: skip


@pytest.mark.both_backends
def test_indexes_serve_the_plan_and_our_queries(engine):
    indexes = {
        index["name"]: index["column_names"]
        for index in inspect(engine).get_indexes("generated_images")
    }
    assert indexes["idx_gen_images_lora"] == ["lora_training_id"]
    assert indexes["idx_gen_images_wallet"] == ["wallet_address"]
    assert indexes["idx_gen_images_created"] == ["created_at"]
    assert indexes["idx_gen_images_lora_created"] == ["lora_training_id", "created_at"]
    batch_indexes = {
        index["name"]: index["column_names"]
        for index in inspect(engine).get_indexes("generation_batches")
    }
    assert batch_indexes["idx_gen_batches_wallet_created"] == ["wallet_address", "created_at"]


@pytest.mark.both_backends
def test_an_original_database_is_upgraded_without_losing_anything(database: DatabaseTarget):
    engine = create_db_engine(database)
    run_script(engine, ORIGINAL_DDL)

    ensure_schema(engine)
    ensure_schema(engine)  # idempotent

    with engine.connect() as connection:
        assert connection.execute(
            text("SELECT id, seed, batch_id, original_url, nsfw FROM generated_images")
        ).all() == [("g1", "18446744073709551557", None, None, None)]
        assert connection.execute(text("SELECT id, status FROM lora_trainings")).all() == [
            ("l1", "completed")
        ]
        index_names = set(
            connection.execute(text("SELECT name FROM sqlite_master WHERE type='index'")).scalars()
        )
    assert {"idx_gen_images_lora_created", "idx_gen_batches_wallet_created"} <= index_names
    assert "generation_batches" in inspect(engine).get_table_names()
    with session_scope(engine) as session:  # every column of every model is there to read
        for model in (LoraTraining, GeneratedImage, GenerationBatch, ImageFavorite):
            session.scalars(select(model)).all()
        assert [s.lora.id for s in queries.list_loras(session=session)] == ["l1"]
    engine.dispose()


def test_the_sqlite_folder_is_created(tmp_path: Path):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'new' / 'deeper' / 'studio.db'}")
    ensure_schema(engine)

    assert (tmp_path / "new" / "deeper" / "studio.db").exists()


def test_an_unusable_database_is_reported_as_unavailable(tmp_path: Path):
    (tmp_path / "not-a-db").write_text("this is not a database file " * 100)
    engine = create_db_engine(f"sqlite:///{tmp_path / 'not-a-db'}")

    with pytest.raises(DatabaseUnavailable):
        ensure_schema(engine)
    with pytest.raises(DatabaseUnavailable), session_scope(engine) as session:
        session.connection().exec_driver_sql("SELECT 1 FROM lora_trainings")


def test_our_own_tables_gain_their_new_columns(tmp_path: Path):
    path = tmp_path / "earlier.db"
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE generation_batches (id TEXT PRIMARY KEY, lora_training_id TEXT NOT NULL,"
            " wallet_address TEXT NOT NULL, prompt TEXT NOT NULL, status TEXT NOT NULL,"
            " fal_request_id TEXT, images_returned INTEGER, error TEXT, created_at TEXT NOT NULL,"
            " finished_at TEXT)"
        )
        connection.execute(
            "INSERT INTO generation_batches VALUES ('b1', 'l1', 'ann', 'p', 'succeeded', NULL, 4,"
            " NULL, '2026-02-11T10:00:00.000Z', '2026-02-11T10:00:09.000Z')"
        )

    ensure_schema(create_db_engine(f"sqlite:///{path}"))

    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT id, duration_ms FROM generation_batches").fetchall() == [
            ("b1", None)
        ]


def test_a_locked_database_is_unavailable_then_recovers(tmp_path: Path):

    url = f"sqlite:///{tmp_path / 'locked.db'}"
    ensure_schema(create_db_engine(url))
    engine = create_db_engine(url, busy_timeout_seconds=0.2)
    locker = sqlite3.connect(tmp_path / "locked.db")
    locker.execute("BEGIN EXCLUSIVE")

    with pytest.raises(DatabaseUnavailable), session_scope(engine) as session:
        queries.list_loras(session=session)

    locker.rollback()
    locker.close()
    with session_scope(engine) as session:
        assert queries.list_loras(session=session) == []

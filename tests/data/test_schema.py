"""Schema migrations (Alembic, `lora_core/data/migrations`): a new database, the original
app's, and one the earlier schema code shaped all reach the head revision with every row
kept; several processes starting at once migrate exactly once; a lock is never stuck."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from lora_core.data import schema
from lora_core.data.clock import to_iso, utc_now
from lora_core.data.db import create_db_engine
from lora_core.errors import DatabaseUnavailable
from tests.conftest import APP_ROOT, database_env
from tests.data.test_db import ORIGINAL_DDL, run_script

pytestmark = pytest.mark.both_backends


@pytest.fixture
def bare(database):
    """The test's database with nothing in it (not even our schema)."""
    engine = create_db_engine(database)
    yield engine
    engine.dispose()


def shape(engine) -> dict[str, object]:
    """Tables with their columns, and indexes with their columns and conditions."""
    inspector = inspect(engine)
    tables = {
        name: sorted(column["name"] for column in inspector.get_columns(name))
        for name in inspector.get_table_names()
        if name not in ("alembic_version", schema.LOCK_TABLE)
    }
    with engine.connect() as connection:
        conditions = {
            name: (sql.split(" WHERE ", 1)[1].strip() if " WHERE " in sql else None)
            for name, sql in connection.execute(
                text("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
            )
        }
    indexes = {
        index["name"]: (table, index["column_names"], conditions.get(index["name"]))
        for table in tables
        for index in inspector.get_indexes(table)
    }
    return {"tables": tables, "indexes": indexes}


def model_shape() -> dict[str, object]:
    tables = {
        table.name: sorted(column.name for column in table.columns)
        for table in SQLModel.metadata.sorted_tables
    }
    indexes = {
        index.name: (
            table.name,
            [column.name for column in index.columns],
            str(index.dialect_options["sqlite"]["where"])
            if index.dialect_options["sqlite"]["where"] is not None
            else None,
        )
        for table in SQLModel.metadata.sorted_tables
        for index in table.indexes
    }
    return {"tables": tables, "indexes": indexes}


def test_a_new_database_reaches_head_with_the_models_tables_and_indexes(bare):
    assert schema.current(bare) is None

    assert schema.ensure_schema(bare) is True

    assert schema.current(bare) == schema.head()
    assert shape(bare) == model_shape()
    assert schema.ensure_schema(bare) is False  # at head: nothing to do


def test_the_head_is_the_newest_file_and_alembic_agrees():
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(schema.alembic_config())
    revisions = list(scripts.walk_revisions())

    # Read without Alembic at start-up (schema.head), so every revision must be named for
    # its file, in order, one after the other.
    assert scripts.get_heads() == [schema.head()]
    assert all(Path(revision.path).stem == revision.revision for revision in revisions)
    assert [revision.revision for revision in reversed(revisions)] == sorted(
        revision.revision for revision in revisions
    )


def add_rows_everywhere(engine) -> None:
    """One row in every table the earlier schema code made (ours and the original app's)."""
    with engine.begin() as connection:
        for statement in (
            "INSERT INTO lora_trainings (id, request_id, wallet_address, trigger_word, steps,"
            " status, created_at) VALUES ('l2', 'r2', 'ann', 'sks', 1000, 'completed',"
            " '2026-02-11T10:00:00.000Z')",
            "INSERT INTO generated_images (id, lora_training_id, wallet_address, prompt,"
            " image_url, created_at, batch_id) VALUES ('g2', 'l2', 'ann', 'a dog',"
            " 'https://x/2.jpg', '2026-02-12T10:00:00.000Z', 'b2')",
            "INSERT INTO generation_batches (id, lora_training_id, wallet_address, prompt,"
            " status, created_at) VALUES ('b2', 'l2', 'ann', 'a dog', 'succeeded',"
            " '2026-02-12T10:00:00.000Z')",
            "INSERT INTO image_favorites VALUES ('ann', 'g2', 'l2', '2026-02-12T11:00:00.000Z')",
        ):
            connection.execute(text(statement))


def count(engine, table: str) -> int:
    with engine.connect() as connection:
        return connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_the_original_apps_database_upgrades_in_place_keeping_its_rows(bare):
    run_script(bare, ORIGINAL_DDL)

    assert schema.ensure_schema(bare) is True

    assert schema.current(bare) == schema.head()
    assert shape(bare) == model_shape()
    with bare.connect() as connection:
        assert connection.execute(
            text("SELECT trigger_word, lora_weights_url, hidden FROM lora_trainings")
        ).all() == [("sks", "https://w/x.safetensors", None)]
        assert connection.execute(text("SELECT seed FROM generated_images")).scalar_one() == (
            "18446744073709551557"
        )


def test_a_database_the_earlier_schema_code_made_upgrades_keeping_every_row(bare):
    SQLModel.metadata.create_all(bare)  # what `ensure_schema` did before Alembic
    add_rows_everywhere(bare)

    assert schema.ensure_schema(bare) is True

    assert schema.current(bare) == schema.head()
    assert shape(bare) == model_shape()
    for table in ("lora_trainings", "generated_images", "generation_batches", "image_favorites"):
        assert count(bare, table) == 1, table
    with bare.connect() as connection:  # a batch from before settings: the plan's (0010)
        assert connection.execute(
            text(
                "SELECT lora_scale, num_inference_steps, guidance_scale, image_size, "
                "requested_seed FROM generation_batches"
            )
        ).one() == (1.5, 28, 3.5, "square_hd", None)


def test_processes_starting_together_migrate_once_and_all_serve(database):
    """Three app processes open the original app's database at the same moment."""
    first = create_db_engine(database)
    run_script(first, ORIGINAL_DDL)
    first.dispose()
    outcomes: list[object] = []
    barrier = threading.Barrier(3)

    def start() -> None:
        engine = create_db_engine(database)
        barrier.wait()
        try:
            outcomes.append(schema.ensure_schema(engine))
        except Exception as error:
            outcomes.append(error)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(outcomes, key=str) == [False, False, True], outcomes
    check = create_db_engine(database)
    assert schema.current(check) == schema.head()
    assert count(check, schema.LOCK_TABLE) == 0  # the lock was let go
    check.dispose()


def hold_lock(engine, *, age: timedelta) -> None:
    schema._create_lock_table(engine)
    with engine.begin() as connection:
        connection.execute(
            text(f"INSERT INTO {schema.LOCK_TABLE} VALUES (1, 'a-dead-process', :at)"),
            {"at": to_iso(utc_now() - age)},
        )


def test_a_lock_left_by_a_process_that_died_is_taken_over(bare):
    hold_lock(bare, age=schema.STALE_AFTER + timedelta(minutes=1))

    assert schema.ensure_schema(bare, wait_seconds=5) is True
    assert schema.current(bare) == schema.head()


def test_a_lock_held_too_long_is_a_clear_message_not_a_hang(bare):
    hold_lock(bare, age=timedelta(seconds=1))  # someone is migrating right now

    with pytest.raises(DatabaseUnavailable, match="being upgraded by another"):
        schema.ensure_schema(bare, wait_seconds=0.5)


def test_the_migrations_run_by_hand(database, tmp_path):
    env = {"PATH": "/usr/bin:/bin", **database_env(database), "HOME": str(tmp_path)}

    done = subprocess.run(
        [sys.executable, "-m", "lora_core.cli.migrate"],
        cwd=APP_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    again = subprocess.run(
        [sys.executable, "-m", "lora_core.cli.migrate"],
        cwd=APP_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert f"Upgraded the schema to {schema.head()}." in done.stdout
    assert f"The schema is at {schema.head()}" in again.stdout


def test_alembics_own_upgrade_command_says_to_use_the_locked_one(tmp_path):
    """Alembic's `upgrade` would migrate without the app's lock: it names the command that
    takes it instead, and touches nothing."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'never.db'}"}  # fmt: skip

    done = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=APP_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip

    assert done.returncode != 0
    assert "python -m lora_core.cli.migrate" in done.stderr
    assert not (tmp_path / "never.db").exists()

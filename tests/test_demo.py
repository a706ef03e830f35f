"""The app fills the embedded default database with the demo on its first start (a quick
demo with nothing configured), once however many processes start at the same moment, and
never a configured database."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from lora_core import demo
from lora_core.data.db import create_db_engine, session_scope
from lora_core.data.models import GeneratedImage, LoraTraining, Suite
from lora_core.settings import Settings
from tests.conftest import database_env

pytestmark = pytest.mark.both_backends


def count(engine, model) -> int:
    with session_scope(engine) as session:
        return session.scalar(select(func.count()).select_from(model))


def test_a_configured_database_is_never_filled_by_the_app(engine, database, tmp_path):
    configured = {name.lower(): value for name, value in database_env(database).items()}
    settings = Settings(**configured, media_dir=tmp_path / "media")

    assert not settings.uses_embedded_database
    assert demo.seed_embedded_default(engine=engine, settings=settings) is False
    assert count(engine, LoraTraining) == 0


def test_processes_starting_at_once_fill_an_empty_database_once(database, engine, tmp_path):
    """Four app processes' first starts, released together, each with its own engine."""
    settings = Settings(media_dir=tmp_path / "media")
    start_line = threading.Barrier(4)
    outcomes: list[object] = []

    def first_start() -> None:
        own = create_db_engine(database)
        try:
            start_line.wait()
            outcomes.append(demo.seed_demo(engine=own, settings=settings))
        except Exception as error:  # any error is the test's failure, shown as such
            outcomes.append(error)
        finally:
            own.dispose()

    threads = [threading.Thread(target=first_start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sorted(map(str, outcomes)) == ["False", "False", "False", "True"], outcomes
    assert count(engine, LoraTraining) == len(demo.DEMO_LORAS)
    assert count(engine, GeneratedImage) == 4 * 3 + 6  # three batches and a 3×2 sweep
    assert count(engine, Suite) == len(demo.STARTER_SUITES)  # once, too

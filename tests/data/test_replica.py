"""The embedded replica (TURSO_REPLICA_PATH): reads from a local file synced from the libSQL
server, writes forwarded to it, against a real `sqld`."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy.exc
from sqlalchemy import insert, select

from lora_core.data.db import DatabaseTarget, create_db_engine, session_scope
from lora_core.data.models import LoraTraining
from lora_core.data.schema import ensure_schema
from lora_core.errors import DatabaseUnavailable, QuotaExceeded
from lora_core.generation import quota
from lora_core.settings import load_settings
from tests.support.race import race
from tests.support.sqld import Sqld


def a_lora(lora_id: str) -> LoraTraining:
    return LoraTraining(
        id=lora_id, request_id=f"req-{lora_id}", user="w", trigger_word="sks",
        status="completed", created_at="2026-11-01T00:00:00.000Z",
    )  # fmt: skip


def lora_ids(engine) -> list[str]:
    with session_scope(engine) as session:
        return sorted(session.scalars(select(LoraTraining.id)).all())


@pytest.fixture
def server(sqld: Sqld) -> Sqld:
    sqld.wipe()
    return sqld


def replica(server: Sqld, path: Path, token: str | None = "server") -> DatabaseTarget:
    return DatabaseTarget(
        server.target.url,
        auth_token=server.target.auth_token if token == "server" else token,
        replica_path=str(path),
    )


def test_writes_reach_the_server_and_reads_come_from_the_local_copy(server, tmp_path):
    local = create_db_engine(replica(server, tmp_path / "replica.db"))
    remote = create_db_engine(server.target)
    ensure_schema(local)

    with session_scope(local) as session:
        session.add(a_lora("written-here"))
        session.commit()
    with session_scope(remote) as session:  # another app writes meanwhile
        session.add(a_lora("written-elsewhere"))
        session.commit()

    assert lora_ids(remote) == ["written-elsewhere", "written-here"]
    with session_scope(local) as session:  # synced after our next write
        session.add(a_lora("later"))
        session.commit()
    assert lora_ids(local) == ["later", "written-elsewhere", "written-here"]
    with sqlite3.connect(f"file:{tmp_path / 'replica.db'}?mode=ro", uri=True) as copy:
        assert copy.execute("SELECT count(*) FROM lora_trainings").fetchone() == (3,)
    fresh = create_db_engine(replica(server, tmp_path / "second.db"))
    assert lora_ids(fresh) == ["later", "written-elsewhere", "written-here"]  # synced at start


def test_a_duplicate_is_an_integrity_error_and_writes_nothing(server, tmp_path):
    engine = create_db_engine(replica(server, tmp_path / "replica.db"))
    ensure_schema(engine)
    with engine.begin() as connection:
        connection.execute(insert(LoraTraining).values(a_lora("one").model_dump()))

    with pytest.raises(sqlalchemy.exc.IntegrityError), engine.begin() as connection:
        connection.execute(insert(LoraTraining).values(a_lora("two").model_dump()))
        connection.execute(insert(LoraTraining).values(a_lora("one").model_dump()))

    assert lora_ids(create_db_engine(server.target)) == ["one"]


def test_sixteen_tabs_racing_for_the_last_slot_through_the_replica_get_one(server, tmp_path):
    engine = create_db_engine(replica(server, tmp_path / "replica.db"))
    ensure_schema(engine)
    policy = quota.QuotaPolicy(limit=1, window=timedelta(hours=24))

    def reserve() -> None:
        quota.reserve(engine=engine, policy=policy, user="ann", lora_id="l", prompt="p")

    results = race(16, reserve, refused=QuotaExceeded)

    assert sorted(results) == ["refused"] * 15 + ["won"]


def test_a_refused_token_names_the_setting(server, tmp_path):
    engine = create_db_engine(replica(server, tmp_path / "replica.db", token="not-a-token"))

    with pytest.raises(DatabaseUnavailable, match="TURSO_AUTH_TOKEN"):
        ensure_schema(engine)


def test_a_server_that_is_down_at_start_is_unavailable(tmp_path):
    down = DatabaseTarget("http://127.0.0.1:1", replica_path=str(tmp_path / "replica.db"))

    with pytest.raises(DatabaseUnavailable, match="unavailable right now"):
        ensure_schema(create_db_engine(down))


def test_the_replica_is_a_setting_beside_the_server_and_named_in_the_sidebar(tmp_path):
    settings = load_settings(
        {
            "TURSO_DATABASE_URL": "libsql://studio-team.turso.io",
            "TURSO_AUTH_TOKEN": "secret-token",
            "TURSO_REPLICA_PATH": str(tmp_path / "replica.db"),
        }
    )

    assert settings.database.replica_path == str(tmp_path / "replica.db")
    assert (
        settings.database.label == "Turso / libSQL server · studio-team.turso.io · embedded replica"
    )
    assert "secret-token" not in repr(settings.database)
    with pytest.raises(Exception, match="TURSO_REPLICA_PATH needs TURSO_DATABASE_URL"):
        load_settings({"TURSO_REPLICA_PATH": str(tmp_path / "replica.db")})


def test_the_app_reads_through_the_replica_and_says_so(monkeypatch, tmp_path, server):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from tests.conftest import APP_ROOT, SETTING_NAMES
    from tests.support.markup import gallery_titles

    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    remote = create_db_engine(server.target)
    ensure_schema(remote)
    with session_scope(remote) as session:
        session.add(a_lora("on-the-server"))
        session.commit()
    monkeypatch.setenv("TURSO_DATABASE_URL", server.url)
    monkeypatch.setenv("TURSO_AUTH_TOKEN", server.token)
    monkeypatch.setenv("TURSO_REPLICA_PATH", str(tmp_path / "replica.db"))
    monkeypatch.setenv("MEDIA_DIR", str(tmp_path / "media"))
    monkeypatch.setenv("ADMIN_USERS", "guest")  # the sidebar names the database to admins
    st.cache_resource.clear()

    at = AppTest.from_file(str(APP_ROOT / "router.py"), default_timeout=30).run()

    assert not at.exception
    assert gallery_titles(at) == ["sks"]
    sidebar = " ".join(str(caption.value) for caption in at.sidebar.caption)
    assert "embedded replica" in sidebar and server.token not in sidebar
    assert (tmp_path / "replica.db").exists()
    st.cache_resource.clear()


def test_command_line_tools_write_to_the_server_not_through_the_replica(tmp_path):
    target = DatabaseTarget(
        "http://127.0.0.1:8080", auth_token="t", replica_path=str(tmp_path / "r.db")
    )

    assert target.direct == DatabaseTarget("http://127.0.0.1:8080", auth_token="t")

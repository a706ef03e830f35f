"""The UI's cached resources: each is keyed by what must key it (Streamlit leaves any
parameter named with a leading underscore out of the key)."""

from __future__ import annotations

import ast
import time

import pytest
import streamlit as st

from tests.conftest import APP_ROOT
from ui import context


@pytest.fixture(autouse=True)
def _fresh_caches():
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def test_the_start_up_recovery_runs_once_per_database(monkeypatch):
    runs: list[str] = []

    class FakeStudio:
        def recover(self) -> None:
            runs.append("run")

    monkeypatch.setenv("RECOVERY_SWEEP_SECONDS", "0")
    monkeypatch.setattr(context, "studio", FakeStudio)

    assert context.start_recovery("sqlite:///one.db") is None
    context.start_recovery("sqlite:///one.db")
    context.start_recovery("sqlite:///two.db")

    assert runs == ["run", "run"]


def test_the_recovery_sweep_runs_in_the_background_until_the_cache_lets_it_go(monkeypatch):
    runs: list[float] = []

    class FakeStudio:
        def recover(self) -> None:
            runs.append(time.monotonic())

    monkeypatch.setenv("RECOVERY_SWEEP_SECONDS", "0.05")
    monkeypatch.setattr(context, "studio", FakeStudio)

    sweeper = context.start_recovery("sqlite:///one.db")
    assert context.start_recovery("sqlite:///one.db") is sweeper  # one per process
    deadline = time.monotonic() + 5
    while len(runs) < 3:
        assert time.monotonic() < deadline, "the sweep did not repeat"
        time.sleep(0.01)
    st.cache_resource.clear()

    assert not sweeper.running
    swept = len(runs)
    time.sleep(0.2)
    assert len(runs) == swept


def test_one_studio_per_database_url(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'one.db'}")
    studio = context.studio()

    assert context.studio() is studio
    st.cache_resource.clear()  # as a restart with another database
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'two.db'}")
    other = context.studio()
    assert other is not studio
    assert str(other.engine.url).endswith("two.db")


def cached_functions() -> dict[str, list[str]]:
    """Every function of the app's UI decorated with `st.cache_data`/`st.cache_resource`
    (pages included), with its parameters."""
    found: dict[str, list[str]] = {}
    for path in [APP_ROOT / "router.py", *sorted((APP_ROOT / "app_pages").glob("*.py")),
                 *sorted((APP_ROOT / "ui").glob("*.py"))]:  # fmt: skip
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and any(
                "cache_data" in ast.unparse(d) or "cache_resource" in ast.unparse(d)
                for d in node.decorator_list
            ):
                arguments = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
                name = f"{path.relative_to(APP_ROOT)}:{node.name}"
                found[name] = [argument.arg for argument in arguments]
    return found


def test_no_cache_key_leaves_out_a_parameter():
    """A parameter named `_x` does not key the cache: there is none."""
    cached = cached_functions()
    assert {
        "ui/caches.py:history_summary",
        "ui/caches.py:history_charts",
        "ui/caches.py:lora_image_count",
    } <= set(cached)
    unkeyed = {
        (name, parameter)
        for name, parameters in cached.items()
        for parameter in parameters
        if parameter.startswith("_")
    }
    assert unkeyed == set()


def test_no_page_script_defines_a_cache():
    """A page's script runs again on every rerun: a cached function defined there would be
    built again each time, its source read and tokenized (`ui/caches.py` says why)."""
    in_scripts = [name for name in cached_functions() if name.startswith(("app_pages/", "router"))]

    assert in_scripts == []


def test_pages_read_the_database_only_through_context_read():
    """One session convention (the FastAPI template's one session dependency): no page or
    UI module opens a database session itself (`ui.context.read` asks the core to)."""
    opened = [
        str(path.relative_to(APP_ROOT))
        for folder in ("app_pages", "ui")
        for path in sorted((APP_ROOT / folder).rglob("*.py"))
        if "session_scope" in path.read_text()
    ]

    assert opened == []


def test_a_read_runs_the_cores_query_in_a_session_now_or_later(app_env, engine, add_lora):
    from lora_core.gallery import queries

    add_lora("l1", trigger_word="alpha")

    assert [lora.id for lora in context.read(queries.list_ready_loras)] == ["l1"]
    later = context.read_later(queries.list_ready_loras)
    add_lora("l2", trigger_word="beta")
    assert sorted(lora.id for lora in later()) == ["l1", "l2"]  # read when called

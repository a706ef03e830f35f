"""The replica's full garbage collections kept short: what is loaded is frozen once, after
the garbage of that moment is collected, and a run that imports nothing costs nothing."""

from __future__ import annotations

import gc
import sys
import uuid
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from ui import memory


@pytest.fixture
def new_module(tmp_path: Path, monkeypatch) -> Iterator[str]:
    """A module nobody imported yet (removed from `sys.modules` afterwards), and the
    collector as it was: this test process's objects are not left frozen."""
    name = f"freshly_loaded_{uuid.uuid4().hex}"  # one more module, whatever ran before
    (tmp_path / f"{name}.py").write_text("TABLE = {'a': [1, 2, 3]}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)
    gc.unfreeze()


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_a_run_that_imported_modules_freezes_what_is_alive(new_module):
    memory.freeze_loaded_modules()  # whatever this process loaded before
    gc.unfreeze()
    __import__(new_module)

    assert memory.freeze_loaded_modules() is True

    assert gc.get_freeze_count() > 1000  # the process's objects, out of the walks
    assert len(gc.get_objects()) < gc.get_freeze_count() / 10
    assert memory.freeze_loaded_modules() is False  # nothing imported since


def test_a_run_that_imported_nothing_neither_collects_nor_freezes(new_module):
    memory.freeze_loaded_modules()
    gc.unfreeze()
    collections: list[str] = []

    def count(phase: str, _info: dict) -> None:
        if phase == "start":
            collections.append(phase)

    gc.callbacks.append(count)
    try:
        assert memory.freeze_loaded_modules() is False
    finally:
        gc.callbacks.remove(count)

    assert collections == []
    assert gc.get_freeze_count() == 0


def test_garbage_of_the_moment_is_collected_not_frozen_for_ever(new_module):
    gc.disable()  # no collection but the one asked for
    try:
        first, second = Node(), Node()
        first.other, second.other = second, first  # a cycle only the collector frees
        gone = weakref.ref(first)
        del first, second
        __import__(new_module)

        assert memory.freeze_loaded_modules() is True
    finally:
        gc.enable()

    assert gone() is None


def test_a_page_run_leaves_what_it_loaded_frozen(open_app, new_module):
    __import__(new_module)  # loaded since the last freeze, whatever ran before

    at = open_app()

    assert not at.exception
    assert gc.get_freeze_count() > 1000
    assert memory.freeze_loaded_modules() is False  # the run froze it already

"""The SQL-shaped mutants of scripts/sql_mutants.py: each operator, and what it leaves alone."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "scripts" / "sql_mutants.py"
_SPEC = importlib.util.spec_from_file_location("sql_mutants", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
sql_mutants = importlib.util.module_from_spec(_SPEC)
sys.modules["sql_mutants"] = sql_mutants  # dataclasses look their module up
_SPEC.loader.exec_module(sql_mutants)

SOURCE = """\
from __future__ import annotations


def release(engine, batch_id: str | None, error: str) -> None:
    with session_scope(engine) as session:
        session.execute(
            update(Batch)
            .where(col(Batch.id) == batch_id)
            .where(col(Batch.status) == "pending", col(Batch.user) == "ann")
            .values(error=error)
        )
        session.commit()


def alive(since):  # a `&` in a comment is no operator
    return (col(Batch.created_at) > since) & (col(Batch.ok) | or_(a == 1, b == 2))


Kind = type[int] | type[str]
"""


def _by_description(operator: str) -> dict[str, str]:
    return {
        mutant.description: mutant.source
        for mutant in sql_mutants.mutants(SOURCE)
        if mutant.operator == operator
    }


def test_each_where_is_removed_and_each_condition_of_a_where_with_several():
    found = _by_description("where-removed")

    assert set(found) == {
        ".where(col(Batch.id) == batch_id) removed",
        ".where(col(Batch.status) == 'pending', col(Batch.user) == 'ann') removed",
        ".where(...) without `col(Batch.status) == 'pending'`",
        ".where(...) without `col(Batch.user) == 'ann'`",
    }
    first = found[".where(col(Batch.id) == batch_id) removed"]
    assert "col(Batch.id) == batch_id" not in first
    assert 'col(Batch.status) == "pending"' in first
    dropped = found[".where(...) without `col(Batch.status) == 'pending'`"]
    assert '.where(col(Batch.user) == "ann")' in dropped
    assert 'col(Batch.status) == "pending"' not in dropped


def test_a_commit_becomes_pass():
    (mutated,) = _by_description("commit-dropped").values()

    assert "session.commit()" not in mutated
    assert "        pass\n" in mutated


def test_and_or_swapped_in_sql_expressions_not_in_types_or_comments():
    found = sql_mutants.mutants(SOURCE)
    swaps = [mutant for mutant in found if mutant.operator == "swap"]

    assert sorted(mutant.description for mutant in swaps) == [
        "`&` -> `|`",
        "`or_(...)` -> `and_(...)`",
        "`|` -> `&`",
    ]
    for mutant in swaps:
        assert "str | None" in mutant.source  # annotations untouched
        assert "type[int] | type[str]" in mutant.source  # a type alias: no call, no comparison
        assert "a `&` in a comment" in mutant.source
    assert all(mutant.line == 16 for mutant in swaps)


def test_every_mutant_differs_from_the_module_and_shows_as_a_diff():
    for mutant in sql_mutants.mutants(SOURCE):
        assert mutant.source != SOURCE
        diff = mutant.diff(SOURCE, "lora_core/x.py")
        assert diff.startswith("--- a/lora_core/x.py")


def test_columns_count_bytes_so_text_after_non_ascii_is_cut_right():
    source = 'note = "café"; q = select(T).where(col(T.name) == "é")\n'

    (mutant,) = sql_mutants.mutants(source)

    assert mutant.source == 'note = "café"; q = select(T)\n'

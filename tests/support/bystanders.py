"""Bystander rows: what a test did not mean to touch stays exactly as it was.

A statement that loses a condition (`WHERE id = ?`, `AND status = 'pending'`) still passes
a test holding one row, where "this row" and "every row" are the same. Put other rows in
(another user's batch, another sweep's cells, another process's lease), then say in one
line that nothing but the rows the test is about changed:

    with unchanged_besides(engine, GenerationBatch, changing={batch_id}) as watch:
        quota.release(engine=engine, batch_id=batch_id, error="x")
    assert watch.added == {}

Rows are read with a plain SELECT of every column, as tuples keyed by primary key.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Engine, Table, select
from sqlmodel import SQLModel

Key = tuple[object, ...]
Snapshot = dict[str, dict[Key, dict[str, object]]]


def _table(model: type[SQLModel] | Table) -> Table:
    return model if isinstance(model, Table) else model.__table__  # type: ignore[return-value]


def snapshot(engine: Engine, *models: type[SQLModel] | Table) -> Snapshot:
    """Every row of each table: {table name: {primary key: {column: value}}}."""
    taken: Snapshot = {}
    with engine.connect() as connection:
        for model in models:
            table = _table(model)
            keys = [column.name for column in table.primary_key.columns]
            rows = connection.execute(select(table)).mappings().all()
            taken[table.name] = {tuple(row[name] for name in keys): dict(row) for row in rows}
    return taken


def _key(value: object) -> Key:
    return value if isinstance(value, tuple) else (value,)


def differences(before: Snapshot, after: Snapshot, changing: Collection[object] = ()) -> list[str]:
    """What changed in rows present `before`, other than those whose primary key is in
    `changing` (a single-column key may be given as its value): one line per column."""
    expected = {_key(key) for key in changing}
    found = []
    for name, rows in before.items():
        for key, row in rows.items():
            if key in expected:
                continue
            now = after[name].get(key)
            if now is None:
                found.append(f"{name} {key}: deleted")
                continue
            found += [
                f"{name} {key}.{column}: {value!r} -> {now[column]!r}"
                for column, value in row.items()
                if now[column] != value
            ]
    return found


@dataclass
class Watch:
    """What a watched block did besides: the rows it added, by table (filled at its end)."""

    added: dict[str, set[Key]] = field(default_factory=dict)


@contextmanager
def unchanged_besides(
    engine: Engine, *models: type[SQLModel] | Table, changing: Collection[object] = ()
) -> Iterator[Watch]:
    """Assert, when the block ends without an error, that every row of `models` present
    when it began is still there, unchanged, except the rows keyed in `changing`. Rows the
    block added are not bystanders: they are in the watch's `added`, for the test to say
    what it expects of them."""
    before = snapshot(engine, *models)
    watch = Watch()
    yield watch
    after = snapshot(engine, *models)
    changed = differences(before, after, changing)
    assert not changed, "rows the test did not expect to change did:\n" + "\n".join(changed)
    for name, rows in after.items():
        new = set(rows) - set(before[name])
        if new:
            watch.added[name] = new

"""Query plans of what a piece of code runs: shared by the tests and the benchmarks."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, event

from lora_core.data.db import session_scope


def explain_selects(engine: Engine, run: Callable[[object], object]) -> list[tuple[str, str]]:
    """Run `run(session)` and return (SELECT, its EXPLAIN QUERY PLAN) for each it issued."""
    statements: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with session_scope(engine) as session:
            run(session)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    with engine.connect() as connection:
        return [
            (
                statement,
                " | ".join(
                    str(row[-1])
                    for row in connection.exec_driver_sql(
                        f"EXPLAIN QUERY PLAN {statement}", parameters
                    )
                ),
            )
            for statement, parameters in statements
        ]

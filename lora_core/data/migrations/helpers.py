"""What every revision does, written to apply to a database that already has it: tables
and indexes with IF NOT EXISTS, columns only when missing. The DDL in the revisions is
frozen text (never built from today's models, which move on)."""

from __future__ import annotations

from alembic import op
from sqlalchemy import inspect, text


def execute(*statements: str) -> None:
    for statement in statements:
        op.execute(text(statement))


def add_column(table: str, column: str, sql_type: str) -> None:
    """`ALTER TABLE … ADD COLUMN`, unless the column is there (ours are all nullable)."""
    present = {c["name"] for c in inspect(op.get_bind()).get_columns(table)}
    if column not in present:
        op.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}"))

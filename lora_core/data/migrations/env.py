"""Alembic's environment: the connection is always handed in by `lora_core.data.schema`,
which applies the revisions under its lock (the app at start-up, or by hand with
`python -m lora_core.cli.migrate`). Run by Alembic's own command (`alembic upgrade head`),
there is no connection and no lock: it says what to run instead. (`alembic history` and
`alembic revision` need no database and work as usual.)"""

from __future__ import annotations

from alembic import context


def run(connection: object) -> None:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()


given = context.config.attributes.get("connection")
if given is None:
    raise SystemExit(
        "Upgrade with `python -m lora_core.cli.migrate`: it takes the lock the app's "
        "processes share, so that exactly one of them migrates."
    )
run(given)

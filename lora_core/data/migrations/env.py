"""Alembic's environment: the connection is handed in by `lora_core.data.schema` (under
its lock). Run by hand (`alembic upgrade head` from the repository), it connects through
the app's settings instead, without the lock: prefer `python -m lora_core.cli.migrate`."""

from __future__ import annotations

from alembic import context

from lora_core.data.db import create_db_engine
from lora_core.settings import load_settings, read_secrets_file


def run(connection: object) -> None:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()


given = context.config.attributes.get("connection")
if given is not None:
    run(given)
else:
    engine = create_db_engine(load_settings(read_secrets_file()).database.direct)
    with engine.begin() as connection:
        run(connection)

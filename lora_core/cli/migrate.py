"""Bring the database's schema to the head revision by hand (the app does it at start-up):

    python -m lora_core.cli.migrate

It takes the same lock as the app, so it is safe while replicas start. Exit code 0 when the
schema is current, 1 when it could not be made so (the message says why).
"""

from __future__ import annotations

import sys

from lora_core.data import schema
from lora_core.data.db import create_db_engine
from lora_core.errors import LoraStudioError
from lora_core.settings import load_settings, read_secrets_file


def main() -> int:
    try:
        settings = load_settings(read_secrets_file())
        engine = create_db_engine(settings.database.direct)
        upgraded = schema.ensure_schema(engine)
    except LoraStudioError as error:
        print(f"The schema was not upgraded: {error}", file=sys.stderr)
        return 1
    if upgraded:
        print(f"Upgraded the schema to {schema.head()}.")
    else:
        print(f"The schema is at {schema.head()}, the latest revision: nothing to do.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

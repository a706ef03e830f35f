"""Fill an empty database with a few demo LoRAs and preview images.

    python -m lora_core.cli.demo [--force]

Does nothing when the database already holds a LoRA, so it is safe on every start, and
only touches the embedded default database unless `--force` is given. (The app itself
fills the embedded default on its first start: `lora_core.demo.seed_embedded_default`.)
"""

from __future__ import annotations

import sys

from lora_core.data.db import create_db_engine
from lora_core.demo import DEMO_LORAS, seed_demo
from lora_core.errors import LoraStudioError, SettingsError
from lora_core.settings import load_settings, read_secrets_file


def main(argv: list[str] | None = None) -> int:
    force = "--force" in (sys.argv[1:] if argv is None else argv)
    try:
        settings = load_settings(read_secrets_file())
    except SettingsError as error:
        print(f"No demo data added: {error}", file=sys.stderr)
        return 1
    if not settings.uses_embedded_database and not force:
        # Never fill a configured (possibly shared) database with demo LoRAs by accident.
        print("A database is configured: no demo data added (use --force to add it anyway).")
        return 0
    try:
        added = seed_demo(engine=create_db_engine(settings.database.direct), settings=settings)
    except LoraStudioError as error:
        print(f"No demo data added: {error}", file=sys.stderr)
        return 1
    if added:
        print(f"Added {len(DEMO_LORAS)} demo LoRAs.")
    else:
        print("The database already has LoRAs; no demo data added.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

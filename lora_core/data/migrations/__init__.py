"""Alembic's scripts for LoRA Studio's schema: `env.py` and one revision per change, each
written so that it also applies to a database that already has it (the original app's, or
one the earlier `ensure_schema` shaped). Run them with `python -m lora_core.cli.migrate`."""

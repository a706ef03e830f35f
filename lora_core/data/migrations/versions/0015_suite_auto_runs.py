"""Suites run on every new training: since when a suite does (`suites.auto_run_since`), and
which LoRA each suite was run on that way, once (its primary key: one process claims it).

Revision ID: 0015_suite_auto_runs
Revises: 0014_suites
"""

from __future__ import annotations

from lora_core.data.migrations.helpers import add_column, execute

revision = "0015_suite_auto_runs"
down_revision = "0014_suites"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_column("suites", "auto_run_since", "TEXT")
    execute(
        """CREATE TABLE IF NOT EXISTS suite_auto_runs (
          suite_id TEXT NOT NULL,
          lora_training_id TEXT NOT NULL,
          sweep_id TEXT,
          note TEXT,
          created_at TEXT NOT NULL,
          PRIMARY KEY (suite_id, lora_training_id)
        )"""
    )

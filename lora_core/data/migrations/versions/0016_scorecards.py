"""A scorecard per LoRA: notes, tags and a verdict, and every change of them with its
author and time.

Revision ID: 0016_scorecards
Revises: 0015_suite_auto_runs
"""

from __future__ import annotations

from lora_core.data.migrations.helpers import execute

revision = "0016_scorecards"
down_revision = "0015_suite_auto_runs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute(
        """CREATE TABLE IF NOT EXISTS lora_scorecards (
          lora_training_id TEXT NOT NULL PRIMARY KEY,
          notes TEXT,
          tags TEXT,
          verdict TEXT,
          verdict_by TEXT,
          verdict_at TEXT,
          updated_by TEXT NOT NULL,
          updated_at TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS idx_lora_scorecards_verdict ON lora_scorecards (verdict)",
        """CREATE TABLE IF NOT EXISTS lora_scorecard_changes (
          id TEXT NOT NULL PRIMARY KEY,
          lora_training_id TEXT NOT NULL,
          wallet_address TEXT NOT NULL,
          field TEXT NOT NULL,
          old TEXT,
          new TEXT,
          created_at TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS idx_scorecard_changes_lora "
        "ON lora_scorecard_changes (lora_training_id, created_at)",
    )

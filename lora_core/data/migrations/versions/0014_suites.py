"""Evaluation suites: named lists of prompts and seeds with their settings, and which sweep
is a run of which suite; and each arena's secret salt for drawing a voter's sides.

Revision ID: 0014_suites
Revises: 0013_arenas
"""

from __future__ import annotations

from lora_core.data.migrations.helpers import add_column, execute

revision = "0014_suites"
down_revision = "0013_arenas"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute(
        """CREATE TABLE IF NOT EXISTS suites (
          id TEXT NOT NULL PRIMARY KEY,
          name TEXT NOT NULL,
          wallet_address TEXT NOT NULL,
          prompts TEXT NOT NULL,
          seeds TEXT NOT NULL,
          lora_scale REAL NOT NULL,
          num_inference_steps INTEGER NOT NULL,
          guidance_scale REAL NOT NULL,
          image_size TEXT NOT NULL,
          created_at TEXT NOT NULL,
          updated_at TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS idx_suites_created ON suites (created_at)",
    )
    add_column("sweeps", "suite_id", "TEXT")
    add_column("arenas", "salt", "TEXT")

"""X/Y sweeps: a `sweeps` table (what was asked), and each batch's place in its sweep.

A sweep's cells are batches of one image (`num_images`), placed at column `sweep_x` and
row `sweep_y` of sweep `sweep_id`; a batch outside any sweep has none of them (4 images).

Revision ID: 0011_sweeps
Revises: 0010_batch_settings
"""

from __future__ import annotations

from lora_core.data.migrations.helpers import add_column, execute

revision = "0011_sweeps"
down_revision = "0010_batch_settings"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute(
        """CREATE TABLE IF NOT EXISTS sweeps (
          id TEXT NOT NULL PRIMARY KEY,
          wallet_address TEXT NOT NULL,
          lora_training_id TEXT NOT NULL,
          prompt TEXT NOT NULL,
          x_kind TEXT NOT NULL,
          x_values TEXT NOT NULL,
          y_kind TEXT,
          y_values TEXT,
          lora_scale REAL NOT NULL,
          num_inference_steps INTEGER NOT NULL,
          guidance_scale REAL NOT NULL,
          image_size TEXT NOT NULL,
          seed TEXT NOT NULL,
          created_at TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS idx_sweeps_created ON sweeps (created_at)",
    )
    add_column("generation_batches", "sweep_id", "TEXT")
    add_column("generation_batches", "sweep_x", "INTEGER")
    add_column("generation_batches", "sweep_y", "INTEGER")
    add_column("generation_batches", "num_images", "INTEGER")
    execute(
        "CREATE INDEX IF NOT EXISTS idx_gen_batches_sweep "
        "ON generation_batches (sweep_id, created_at)"
    )

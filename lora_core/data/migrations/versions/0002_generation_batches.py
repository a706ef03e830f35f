"""Batches: one row per click, the unit the quota counts; images point at theirs; fal's
original URL and safety flag beside our copy of an image; the indexes the gallery and
the quota read through.

Revision ID: 0002_generation_batches
Revises: 0001_original_app
"""

from __future__ import annotations

from lora_core.data.migrations.helpers import add_column, execute

revision = "0002_generation_batches"
down_revision = "0001_original_app"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute(
        """CREATE TABLE IF NOT EXISTS generation_batches (
          id TEXT NOT NULL,
          lora_training_id TEXT NOT NULL,
          wallet_address TEXT NOT NULL,
          prompt TEXT NOT NULL,
          status TEXT NOT NULL,
          fal_request_id TEXT,
          images_returned INTEGER,
          error TEXT,
          created_at TEXT NOT NULL,
          finished_at TEXT,
          duration_ms INTEGER,
          PRIMARY KEY (id)
        )""",
    )
    # Columns the table gained after its first version (a database of that time has it
    # without them).
    for column, sql_type in (
        ("fal_request_id", "TEXT"),
        ("images_returned", "INTEGER"),
        ("error", "TEXT"),
        ("finished_at", "TEXT"),
        ("duration_ms", "INTEGER"),
    ):
        add_column("generation_batches", column, sql_type)
    execute(
        "CREATE INDEX IF NOT EXISTS idx_gen_batches_wallet_created "
        "ON generation_batches (wallet_address, created_at)",
        "CREATE INDEX IF NOT EXISTS idx_gen_batches_lora_created "
        "ON generation_batches (lora_training_id, created_at)",
        "CREATE INDEX IF NOT EXISTS idx_gen_batches_created ON generation_batches (created_at)",
        "CREATE INDEX IF NOT EXISTS idx_gen_batches_finished ON generation_batches (finished_at)",
        "CREATE INDEX IF NOT EXISTS idx_gen_batches_status_duration "
        "ON generation_batches (status, duration_ms)",
    )
    add_column("generated_images", "batch_id", "TEXT")
    add_column("generated_images", "original_url", "TEXT")
    add_column("generated_images", "nsfw", "BOOLEAN")
    execute(
        "CREATE INDEX IF NOT EXISTS idx_gen_images_batch ON generated_images (batch_id)",
        "CREATE INDEX IF NOT EXISTS idx_gen_images_lora_created "
        "ON generated_images (lora_training_id, created_at)",
        "CREATE INDEX IF NOT EXISTS idx_lora_trainings_created ON lora_trainings (created_at)",
        "CREATE INDEX IF NOT EXISTS idx_lora_trainings_wallet_created "
        "ON lora_trainings (wallet_address, created_at)",
    )

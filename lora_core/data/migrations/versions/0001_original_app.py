"""The original web app's tables and indexes, exactly as its plan creates them.

Revision ID: 0001_original_app
Revises: <base>
"""

from __future__ import annotations

from lora_core.data.migrations.helpers import execute

revision = "0001_original_app"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute(
        """CREATE TABLE IF NOT EXISTS lora_trainings (
          id TEXT PRIMARY KEY, request_id TEXT UNIQUE, wallet_address TEXT, trigger_word TEXT,
          steps INTEGER, image_urls TEXT, lora_weights_url TEXT, status TEXT, created_at TEXT
        )""",
        """CREATE TABLE IF NOT EXISTS generated_images (
          id TEXT PRIMARY KEY,
          lora_training_id TEXT NOT NULL,
          wallet_address TEXT NOT NULL,
          prompt TEXT NOT NULL,
          image_url TEXT NOT NULL,
          image_width INTEGER,
          image_height INTEGER,
          seed TEXT,
          created_at TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS idx_gen_images_lora ON generated_images(lora_training_id)",
        "CREATE INDEX IF NOT EXISTS idx_gen_images_wallet ON generated_images(wallet_address)",
        "CREATE INDEX IF NOT EXISTS idx_gen_images_created ON generated_images(created_at)",
    )

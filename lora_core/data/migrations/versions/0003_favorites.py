"""Stars: a user's favourite images, the LoRA beside each so that a cover is one lookup.

Revision ID: 0003_favorites
Revises: 0002_generation_batches
"""

from __future__ import annotations

from lora_core.data.migrations.helpers import execute

revision = "0003_favorites"
down_revision = "0002_generation_batches"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute(
        """CREATE TABLE IF NOT EXISTS image_favorites (
          wallet_address TEXT NOT NULL,
          image_id TEXT NOT NULL,
          lora_training_id TEXT NOT NULL,
          created_at TEXT NOT NULL,
          PRIMARY KEY (wallet_address, image_id)
        )""",
        "CREATE INDEX IF NOT EXISTS idx_image_favorites_lora_image "
        "ON image_favorites (lora_training_id, image_id, created_at)",
        "CREATE INDEX IF NOT EXISTS idx_image_favorites_user_created "
        "ON image_favorites (wallet_address, created_at)",
    )

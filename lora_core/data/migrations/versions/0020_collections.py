"""Collections: named, shared sets of images from any LoRAs, in an order their members keep.

Revision ID: 0020_collections
Revises: 0019_search
"""

from __future__ import annotations

from lora_core.data.migrations.helpers import execute

revision = "0020_collections"
down_revision = "0019_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute(
        """CREATE TABLE IF NOT EXISTS collections (
          id TEXT NOT NULL PRIMARY KEY,
          name TEXT NOT NULL,
          description TEXT,
          wallet_address TEXT NOT NULL,
          anyone_can_add BOOLEAN,
          created_at TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS idx_collections_created ON collections (created_at)",
        """CREATE TABLE IF NOT EXISTS collection_images (
          collection_id TEXT NOT NULL,
          image_id TEXT NOT NULL,
          position REAL NOT NULL,
          wallet_address TEXT NOT NULL,
          created_at TEXT NOT NULL,
          PRIMARY KEY (collection_id, image_id)
        )""",
        "CREATE INDEX IF NOT EXISTS idx_collection_images_order "
        "ON collection_images (collection_id, position)",
        "CREATE INDEX IF NOT EXISTS idx_collection_images_image ON collection_images (image_id)",
    )

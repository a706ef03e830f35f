"""Arenas made from a collection: which one (`arenas.collection_id`).

Revision ID: 0021_arena_collections
Revises: 0020_collections
"""

from __future__ import annotations

from lora_core.data.migrations.helpers import add_column

revision = "0021_arena_collections"
down_revision = "0020_collections"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_column("arenas", "collection_id", "TEXT")

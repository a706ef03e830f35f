"""Thumbnails: the small WebP a grid shows instead of the full image.

Revision ID: 0009_thumbnails
Revises: 0008_leases
"""

from __future__ import annotations

from lora_core.data.migrations.helpers import add_column

revision = "0009_thumbnails"
down_revision = "0008_leases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_column("generated_images", "thumbnail_url", "TEXT")

"""History sorted by duration reads its page's ids from an index instead of sorting every
batch: (duration_ms, created_at, id), the sort's own order.

Revision ID: 0022_duration_index
Revises: 0021_arena_collections
"""

from __future__ import annotations

from lora_core.data.migrations.helpers import execute

revision = "0022_duration_index"
down_revision = "0021_arena_collections"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute(
        "CREATE INDEX IF NOT EXISTS idx_gen_batches_duration "
        "ON generation_batches (duration_ms, created_at, id)"
    )

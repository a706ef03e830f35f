"""The few pending batches (recovery looks for them on every LoRA page) and the original
app's unbatched images (the quota counts them), each in a partial index.

Revision ID: 0005_partial_indexes
Revises: 0004_hidden
"""

from __future__ import annotations

from lora_core.data.migrations.helpers import execute

revision = "0005_partial_indexes"
down_revision = "0004_hidden"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute(
        "CREATE INDEX IF NOT EXISTS idx_gen_batches_pending "
        "ON generation_batches (status, lora_training_id, created_at) WHERE status = 'pending'",
        "CREATE INDEX IF NOT EXISTS idx_gen_images_legacy_wallet_created "
        "ON generated_images (wallet_address, created_at) WHERE batch_id IS NULL",
    )

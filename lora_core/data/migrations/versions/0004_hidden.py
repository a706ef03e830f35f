"""Hiding: a LoRA by an admin, an image by its author or an admin (true or NULL, never
false), and the partial indexes that page and count only what galleries show.

Revision ID: 0004_hidden
Revises: 0003_favorites
"""

from __future__ import annotations

from lora_core.data.migrations.helpers import add_column, execute

revision = "0004_hidden"
down_revision = "0003_favorites"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_column("lora_trainings", "hidden", "BOOLEAN")
    add_column("generated_images", "hidden", "BOOLEAN")
    execute(
        "CREATE INDEX IF NOT EXISTS idx_gen_images_lora_created_shown "
        "ON generated_images (lora_training_id, hidden, created_at) WHERE hidden IS NULL",
        "CREATE INDEX IF NOT EXISTS idx_gen_images_lora_prompt_shown "
        "ON generated_images (lora_training_id, prompt, hidden, created_at) WHERE hidden IS NULL",
        "CREATE INDEX IF NOT EXISTS idx_gen_images_lora_hidden "
        "ON generated_images (lora_training_id, hidden) WHERE hidden IS NOT NULL",
    )

"""A training's kind (style or subject), fal's config file, and our durable copies of the
weights and config (fal's files expire).

Revision ID: 0007_durable_weights
Revises: 0006_names_and_errors
"""

from __future__ import annotations

from lora_core.data.migrations.helpers import add_column

revision = "0007_durable_weights"
down_revision = "0006_names_and_errors"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_column("lora_trainings", "is_style", "BOOLEAN")
    add_column("lora_trainings", "weights_copy_url", "TEXT")
    add_column("lora_trainings", "config_url", "TEXT")
    add_column("lora_trainings", "config_copy_url", "TEXT")

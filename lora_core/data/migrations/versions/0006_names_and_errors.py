"""A registered LoRA's display name, and why a training started here failed.

Revision ID: 0006_names_and_errors
Revises: 0005_partial_indexes
"""

from __future__ import annotations

from lora_core.data.migrations.helpers import add_column

revision = "0006_names_and_errors"
down_revision = "0005_partial_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_column("lora_trainings", "name", "TEXT")
    add_column("lora_trainings", "error", "TEXT")

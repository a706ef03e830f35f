"""A LoRA's recommended scale on its scorecard: the Generate dialog starts from it.

Revision ID: 0017_recommended_scale
Revises: 0016_scorecards
"""

from __future__ import annotations

from lora_core.data.migrations.helpers import add_column

revision = "0017_recommended_scale"
down_revision = "0016_scorecards"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_column("lora_scorecards", "recommended_scale", "REAL")

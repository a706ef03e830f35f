"""Leases: the process working on a batch (or submitting a training) holds one and renews
it; another process takes over once it lapses.

Revision ID: 0008_leases
Revises: 0007_durable_weights
"""

from __future__ import annotations

from lora_core.data.migrations.helpers import add_column

revision = "0008_leases"
down_revision = "0007_durable_weights"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("generation_batches", "lora_trainings"):
        add_column(table, "lease_holder", "TEXT")
        add_column(table, "lease_until", "TEXT")

"""Blind A/B votes: arenas made from sweeps, their arms and pairs, and one vote per voter
per pair (its primary key: a second click, tab or replica inserts nothing).

Revision ID: 0013_arenas
Revises: 0012_followed_jobs
"""

from __future__ import annotations

from lora_core.data.migrations.helpers import execute

revision = "0013_arenas"
down_revision = "0012_followed_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute(
        """CREATE TABLE IF NOT EXISTS arenas (
          id TEXT NOT NULL PRIMARY KEY,
          name TEXT NOT NULL,
          wallet_address TEXT NOT NULL,
          sources TEXT NOT NULL,
          created_at TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS idx_arenas_created ON arenas (created_at)",
        """CREATE TABLE IF NOT EXISTS arena_arms (
          id TEXT NOT NULL PRIMARY KEY,
          arena_id TEXT NOT NULL,
          lora_training_id TEXT NOT NULL,
          lora_scale REAL,
          num_inference_steps INTEGER,
          guidance_scale REAL,
          image_size TEXT,
          label TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS idx_arena_arms_arena ON arena_arms (arena_id)",
        """CREATE TABLE IF NOT EXISTS arena_pairs (
          id TEXT NOT NULL PRIMARY KEY,
          arena_id TEXT NOT NULL,
          position INTEGER NOT NULL,
          prompt TEXT NOT NULL,
          seed TEXT,
          arm_a TEXT NOT NULL,
          arm_b TEXT NOT NULL,
          image_a TEXT NOT NULL,
          image_b TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS idx_arena_pairs_arena ON arena_pairs (arena_id, position)",
        """CREATE TABLE IF NOT EXISTS arena_votes (
          pair_id TEXT NOT NULL,
          wallet_address TEXT NOT NULL,
          arena_id TEXT NOT NULL,
          choice TEXT NOT NULL,
          created_at TEXT NOT NULL,
          PRIMARY KEY (pair_id, wallet_address)
        )""",
        "CREATE INDEX IF NOT EXISTS idx_arena_votes_arena ON arena_votes (arena_id, created_at)",
    )

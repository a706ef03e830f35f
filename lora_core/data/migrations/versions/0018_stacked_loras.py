"""Stacked LoRAs and prompt templates.

`batch_loras`: the LoRAs a batch was made with besides its first (which stays in
`generation_batches.lora_training_id` and `lora_scale`, so the original app still reads
its rows), each at its scale, in the order fal got them. `generation_batches.full_prompt`:
the prompt fal got, kept because it no longer follows from the prompt and one trigger word
(a template, several LoRAs); None on older rows, whose full prompt is the plan's rule.
`lora_scorecards.prompt_template`: how a LoRA's trigger word is best used; its
`recommended_steps` and `recommended_guidance`, beside its recommended scale.
`arena_arms.stack`, `sweeps.stack`: the LoRAs an arm, or every cell of a sweep (a suite
run's "Stacked on each"), stacks on its own ("id:scale …"; None: none).

Revision ID: 0018_stacked_loras
Revises: 0017_recommended_scale
"""

from __future__ import annotations

from lora_core.data.migrations.helpers import add_column, execute

revision = "0018_stacked_loras"
down_revision = "0017_recommended_scale"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute(
        """CREATE TABLE IF NOT EXISTS batch_loras (
          batch_id TEXT NOT NULL,
          position INTEGER NOT NULL,
          lora_training_id TEXT NOT NULL,
          lora_scale REAL NOT NULL,
          PRIMARY KEY (batch_id, position)
        )""",
        "CREATE INDEX IF NOT EXISTS idx_batch_loras_lora "
        "ON batch_loras (lora_training_id, batch_id)",
    )
    add_column("generation_batches", "full_prompt", "TEXT")
    add_column("lora_scorecards", "prompt_template", "TEXT")
    add_column("lora_scorecards", "recommended_steps", "INTEGER")
    add_column("lora_scorecards", "recommended_guidance", "REAL")
    add_column("arena_arms", "stack", "TEXT")
    add_column("sweeps", "stack", "TEXT")

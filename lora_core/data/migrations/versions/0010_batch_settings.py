"""Each batch's settings: LoRA scale, steps, guidance, image size and the seed asked for.

Batches stored before were all generated with the plan's fixed settings, which they get
here; the seed fal used stays on each image (`generated_images.seed`).

Revision ID: 0010_batch_settings
Revises: 0009_thumbnails
"""

from __future__ import annotations

from lora_core.data.migrations.helpers import add_column, execute

revision = "0010_batch_settings"
down_revision = "0009_thumbnails"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_column("generation_batches", "lora_scale", "REAL")
    add_column("generation_batches", "num_inference_steps", "INTEGER")
    add_column("generation_batches", "guidance_scale", "REAL")
    add_column("generation_batches", "image_size", "TEXT")
    add_column("generation_batches", "requested_seed", "TEXT")
    execute(
        "UPDATE generation_batches SET lora_scale = 1.5, num_inference_steps = 28, "
        "guidance_scale = 3.5, image_size = 'square_hd' WHERE lora_scale IS NULL"
    )

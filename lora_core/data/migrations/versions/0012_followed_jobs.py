"""What following fal's jobs and its safety checker need: each batch's count of images
fal's safety checker flagged, and each training's last state as fal reported it.

fal returns every image asked for, flagged ones black (`has_nsfw_concepts`), so a batch's
flags are counted, not inferred from fewer images: batches stored before get their count
from their images' `nsfw`. A training's state (queued with its position, running with its
logs) is read by the background sweep and shown by the pages from here.

Revision ID: 0012_followed_jobs
Revises: 0011_sweeps
"""

from __future__ import annotations

from lora_core.data.migrations.helpers import add_column, execute

revision = "0012_followed_jobs"
down_revision = "0011_sweeps"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_column("generation_batches", "images_flagged", "INTEGER")
    add_column("lora_trainings", "progress", "TEXT")
    execute(
        "UPDATE generation_batches SET images_flagged = ("
        "SELECT count(*) FROM generated_images "
        "WHERE generated_images.batch_id = generation_batches.id AND generated_images.nsfw = 1"
        ") WHERE status = 'succeeded' AND images_flagged IS NULL"
    )

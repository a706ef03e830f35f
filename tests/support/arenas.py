"""Sweeps whose cells already finished, written as rows, for arena tests: each cell one
succeeded batch of one image, at a LoRA (or the baseline) and scale, prompt and seed."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine

from lora_core.data.clock import to_iso, utc_now
from lora_core.data.db import session_scope
from lora_core.data.models import BatchStatus, GeneratedImage, GenerationBatch, Sweep


@dataclass(frozen=True)
class Cell:
    lora_id: str
    scale: float = 1.0
    prompt: str = "a lighthouse"
    seed: str = "7"
    status: str = BatchStatus.SUCCEEDED
    nsfw: bool = False
    hidden: bool = False


def finished_sweep(
    engine: Engine,
    cells: list[Cell],
    *,
    sweep_id: str | None = None,
    user: str = "ann",
    image_url: str = "https://cdn.example/x.jpg",
) -> tuple[str, list[str]]:
    """A sweep with these cells (their images written unless a cell failed): (sweep id,
    the image ids, "" for a failed cell)."""  # fmt: skip
    sweep_id = sweep_id or uuid.uuid4().hex
    now = utc_now()
    image_ids = []
    with session_scope(engine) as session:
        session.add(
            Sweep(id=sweep_id, user=user, lora_training_id=cells[0].lora_id, prompt=cells[0].prompt,
                  x_kind="lora", x_values=json.dumps([c.lora_id for c in cells]), lora_scale=1.0,
                  num_inference_steps=28, guidance_scale=3.5, image_size="square_hd",
                  seed=cells[0].seed, created_at=to_iso(now))
        )  # fmt: skip
        for number, cell in enumerate(cells):
            batch_id = uuid.uuid4().hex
            moment = to_iso(now - timedelta(seconds=len(cells) - number))
            session.add(
                GenerationBatch(id=batch_id, lora_training_id=cell.lora_id, user=user,
                                prompt=cell.prompt, status=cell.status, created_at=moment,
                                lora_scale=cell.scale, num_inference_steps=28, guidance_scale=3.5,
                                image_size="square_hd", requested_seed=cell.seed,
                                sweep_id=sweep_id, sweep_x=number, sweep_y=0, num_images=1)
            )  # fmt: skip
            if cell.status != BatchStatus.SUCCEEDED:
                image_ids.append("")
                continue
            image_id = uuid.uuid4().hex
            image_ids.append(image_id)
            session.add(
                GeneratedImage(id=image_id, lora_training_id=cell.lora_id, user=user,
                               prompt=cell.prompt, image_url=image_url, seed=cell.seed,
                               created_at=moment, batch_id=batch_id, nsfw=cell.nsfw or None,
                               hidden=cell.hidden or None)
            )  # fmt: skip
        session.commit()
    return sweep_id, image_ids

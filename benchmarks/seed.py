"""Seed a database with N generated images (N/4 batches) for the benchmarks.

The images are spread over `loras` LoRAs and 20 users across 60 days; one batch in 20
fails and one in 10 is safety-filtered, like a busy team's history.
"""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import Engine, insert

from lora_core.clock import to_iso, utc_now
from lora_core.db import create_db_engine, ensure_schema
from lora_core.models import GeneratedImage, GenerationBatch, LoraTraining

WORDS = "red fox city night neon forest castle portrait river storm cat robot garden".split()


def seeded_engine(url: str, *, images: int, loras: int = 200, one_lora: bool = False) -> Engine:
    """`images` images over `loras` LoRAs, or all on `lora-0000` when `one_lora`."""
    engine = create_db_engine(url)
    ensure_schema(engine)
    rng = random.Random(images)
    now = utc_now()
    lora_rows = [
        {
            "id": f"lora-{n:04d}",
            "request_id": f"req-{n:04d}",
            "wallet_address": "trainer",
            "trigger_word": f"style{n:04d}",
            "steps": 1000,
            "image_urls": None,
            "lora_weights_url": f"https://weights.example/{n}.safetensors",
            "status": "completed",
            "created_at": to_iso(now - timedelta(days=90, minutes=n)),
        }
        for n in range(loras)
    ]
    batch_rows, image_rows = [], []
    for number in range(images // 4):
        created = now - timedelta(seconds=rng.randrange(60 * 86400))
        lora = "lora-0000" if one_lora else f"lora-{rng.randrange(loras):04d}"
        user = f"user{rng.randrange(20)}@example.com"
        prompt = " ".join(rng.sample(WORDS, 4))
        roll = rng.random()
        status, returned = ("failed", None) if roll < 0.05 else ("succeeded", 4)
        if 0.05 <= roll < 0.15:
            returned = rng.randrange(1, 4)
        batch_id = f"batch-{number:07d}"
        duration = rng.randrange(4_000, 20_000)
        batch_rows.append(
            {
                "id": batch_id,
                "lora_training_id": lora,
                "wallet_address": user,
                "prompt": prompt,
                "status": status,
                "fal_request_id": None,
                "images_returned": returned,
                "error": "fal error" if status == "failed" else None,
                "created_at": to_iso(created),
                "finished_at": to_iso(created + timedelta(milliseconds=duration)),
                "duration_ms": duration if status == "succeeded" else None,
            }
        )
        for index in range(returned or 0):
            image_rows.append(
                {
                    "id": f"{batch_id}-{index}",
                    "lora_training_id": lora,
                    "wallet_address": user,
                    "prompt": prompt,
                    "image_url": f"https://cdn.example/{batch_id}/{index}.jpg",
                    "image_width": 1024,
                    "image_height": 1024,
                    "seed": str(rng.getrandbits(64)),
                    "created_at": to_iso(created - timedelta(milliseconds=index)),
                    "batch_id": batch_id,
                }
            )
    with engine.begin() as connection:
        connection.execute(insert(LoraTraining), lora_rows)
        connection.execute(insert(GenerationBatch), batch_rows)
        connection.execute(insert(GeneratedImage), image_rows)
        connection.exec_driver_sql("ANALYZE")
    return engine


def temporary_url(directory: str, name: str) -> str:
    return f"sqlite:///{directory}/{name}.db"


__all__ = ["create_db_engine", "seeded_engine", "temporary_url"]

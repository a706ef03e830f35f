"""Seed a database with N generated images (N/4 batches) for the benchmarks.

The images are spread over `loras` LoRAs and 20 users across 60 days; one batch in 20
fails and one in 10 is safety-filtered, like a busy team's history.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Connection, Engine, insert
from sqlmodel import SQLModel

from lora_core.data.clock import to_iso, utc_now
from lora_core.data.db import DatabaseTarget, create_db_engine
from lora_core.data.models import (
    GeneratedImage,
    GenerationBatch,
    ImageWord,
    IndexedImage,
    LoraTraining,
)
from lora_core.data.schema import ensure_schema
from lora_core.search.words import terms_of_prompt

WORDS = "red fox city night neon forest castle portrait river storm cat robot garden".split()


def seeded_engine(
    target: DatabaseTarget | str, *, images: int, loras: int = 200, one_lora: bool = False
) -> Engine:
    """`images` images over `loras` LoRAs, or all on `lora-0000` when `one_lora`."""
    engine = create_db_engine(target)
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
                    # As every image stored today has: no background thumbnailing meanwhile.
                    "thumbnail_url": f"https://cdn.example/{batch_id}/{index}.thumb.webp",
                    "image_width": 1024,
                    "image_height": 1024,
                    "seed": str(rng.getrandbits(64)),
                    "created_at": to_iso(created - timedelta(milliseconds=index)),
                    "batch_id": batch_id,
                }
            )
    # Indexed for search, as images stored today are (`lora_core.search.indexing`).
    word_rows = [
        {"word": term, "image_id": row["id"], "created_at": row["created_at"]}
        for row in image_rows
        for term in terms_of_prompt(row["prompt"])
    ]
    with engine.begin() as connection:
        insert_rows(connection, LoraTraining, lora_rows)
        insert_rows(connection, GenerationBatch, batch_rows)
        insert_rows(connection, GeneratedImage, image_rows)
        insert_rows(connection, ImageWord, word_rows)
        insert_rows(connection, IndexedImage, [{"image_id": row["id"]} for row in image_rows])
    return engine


def insert_rows(connection: Connection, model: type[SQLModel], rows: list[dict]) -> None:
    """Multi-row VALUES, 400 rows a statement (quick over HTTP too). No ANALYZE afterwards:
    the app never runs it and libSQL servers refuse it, so the planner works without
    statistics here as in production."""
    for start in range(0, len(rows), 400):
        connection.execute(insert(model).values(rows[start : start + 400]))


def temporary_url(directory: str, name: str) -> str:
    return f"sqlite:///{directory}/{name}.db"


BACKENDS = ("sqlite", "libsql")


@contextmanager
def empty_database(directory: str, name: str, *, backend: str) -> Iterator[DatabaseTarget]:
    """A SQLite file, or a local libSQL server (`sqld`, as the tests start it) that is
    stopped and removed afterwards."""
    if backend != "libsql":
        yield DatabaseTarget(temporary_url(directory, name))
        return
    from tests.support.sqld import Sqld

    server = Sqld(Path(directory) / name).start()
    try:
        yield server.target
    finally:
        server.remove()


@contextmanager
def seeded_database(
    directory: str, name: str, *, backend: str, images: int, one_lora: bool = False
) -> Iterator[DatabaseTarget]:
    """`empty_database` seeded by `seeded_engine`."""
    with empty_database(directory, name, backend=backend) as target:
        seeded_engine(target, images=images, one_lora=one_lora).dispose()
        yield target


def use_database(target: DatabaseTarget) -> None:
    """Point the app (which reads its settings from the environment) at `target`."""
    for name in ("DATABASE_URL", "TURSO_DATABASE_URL", "TURSO_AUTH_TOKEN"):
        os.environ.pop(name, None)
    if target.is_remote:
        os.environ["TURSO_DATABASE_URL"] = target.url
        os.environ["TURSO_AUTH_TOKEN"] = target.auth_token or ""
    else:
        os.environ["DATABASE_URL"] = target.url


__all__ = [
    "BACKENDS",
    "WORDS",
    "create_db_engine",
    "empty_database",
    "insert_rows",
    "seeded_database",
    "seeded_engine",
    "temporary_url",
    "use_database",
]

"""Demo data: a fresh database gets a few LoRAs to show; a used one is left alone."""

from __future__ import annotations

from sqlalchemy import func, select

from lora_core.db import session_scope
from lora_core.demo import DEMO_LORAS, seed_demo
from lora_core.models import GeneratedImage, LoraStatus, LoraTraining
from lora_core.settings import Settings


def count(engine, model) -> int:
    with session_scope(engine) as session:
        return session.scalar(select(func.count()).select_from(model))


def test_an_empty_database_gets_demo_loras_with_preview_images(engine, tmp_path):
    settings = Settings(media_dir=tmp_path / "media")

    assert seed_demo(engine=engine, settings=settings)

    assert count(engine, LoraTraining) == len(DEMO_LORAS)
    assert count(engine, GeneratedImage) == 4 * sum(1 for *_, prompt in DEMO_LORAS if prompt)
    assert len(list((tmp_path / "media").rglob("*.jpg"))) == count(engine, GeneratedImage)
    with session_scope(engine) as session:
        statuses = set(session.scalars(select(LoraTraining.status)))
    assert statuses == {LoraStatus.COMPLETED, LoraStatus.PENDING}


def test_a_database_with_loras_is_left_alone(engine, add_lora, tmp_path):
    add_lora("mine")

    assert not seed_demo(engine=engine, settings=Settings(media_dir=tmp_path / "media"))

    assert count(engine, LoraTraining) == 1

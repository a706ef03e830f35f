"""Demo data: a fresh database gets a few LoRAs to show; a used one is left alone."""

from __future__ import annotations

from sqlalchemy import func, select

from lora_core.cli.demo import main
from lora_core.data.db import session_scope
from lora_core.data.models import BatchStatus, GeneratedImage, LoraStatus, LoraTraining, Sweep
from lora_core.demo import DEMO_LORAS, seed_demo
from lora_core.lab import views
from lora_core.settings import Settings


def count(engine, model) -> int:
    with session_scope(engine) as session:
        return session.scalar(select(func.count()).select_from(model))


def test_an_empty_database_gets_demo_loras_with_preview_images(engine, tmp_path):
    settings = Settings(media_dir=tmp_path / "media")

    assert seed_demo(engine=engine, settings=settings)

    assert count(engine, LoraTraining) == len(DEMO_LORAS)
    batches = 4 * sum(1 for *_, prompt in DEMO_LORAS if prompt)
    assert count(engine, GeneratedImage) == batches + 6  # and a 3×2 sweep's cells
    with session_scope(engine) as session:
        [sweep] = session.scalars(select(Sweep)).all()
        view = views.sweep_view(session=session, sweep_id=sweep.id)
    assert view.count(BatchStatus.SUCCEEDED) == 6
    assert view.x_labels == ("scale 0", "scale 0.75", "scale 1.5")
    assert len(list((tmp_path / "media").rglob("*.jpg"))) == count(engine, GeneratedImage)
    with session_scope(engine) as session:
        statuses = set(session.scalars(select(LoraTraining.status)))
    assert statuses == {LoraStatus.COMPLETED, LoraStatus.PENDING}


def test_a_database_with_loras_is_left_alone(engine, add_lora, tmp_path):
    add_lora("mine")

    assert not seed_demo(engine=engine, settings=Settings(media_dir=tmp_path / "media"))

    assert count(engine, LoraTraining) == 1


def test_the_command_fills_only_the_embedded_default(monkeypatch, database_url, engine, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)

    assert main([]) == 0
    assert count(engine, LoraTraining) == 0
    assert "A database is configured" in capsys.readouterr().out


def test_the_command_with_force_fills_a_configured_database(
    monkeypatch, database_url, engine, tmp_path
):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("MEDIA_DIR", str(tmp_path / "media"))

    assert main(["--force"]) == 0
    assert count(engine, LoraTraining) == len(DEMO_LORAS)


def test_the_command_explains_a_bad_setting(monkeypatch, capsys):
    monkeypatch.setenv("GENERATION_LIMIT", "lots")

    assert main([]) == 1
    assert "GENERATION_LIMIT" in capsys.readouterr().err

"""The Studio's background beat (`recover`) and what pages ask of it: the original app's
images get their batch rows from the sweep, not from a page view that writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from lora_core import weights
from lora_core.data.clock import to_iso
from lora_core.data.db import DatabaseTarget, session_scope
from lora_core.data.models import GeneratedImage, GenerationBatch
from lora_core.errors import InvalidSettings
from lora_core.generation.recipe import Recipe
from lora_core.lab import axes
from lora_core.settings import Settings
from lora_core.studio import build_studio
from tests.conftest import NOW, TEST_FAL_KEY, database_env
from tests.support.bystanders import unchanged_besides
from tests.support.hosts import private_host

pytestmark = pytest.mark.both_backends


def studio_for(database: DatabaseTarget, tmp_path: Path, *, sweep_seconds: float):
    configured = {name.lower(): value for name, value in database_env(database).items()}
    return build_studio(
        Settings(**configured, media_dir=tmp_path / "media", recovery_sweep_seconds=sweep_seconds)
    )


def add_legacy_image(engine) -> None:
    """An image the original app wrote (no batch)."""
    with session_scope(engine) as session:
        session.add(
            GeneratedImage(
                id="old-1", lora_training_id="lora-1", user="ann", prompt="p",
                image_url="https://cdn.example/old.jpg", created_at=to_iso(NOW),
            )
        )  # fmt: skip
        session.commit()


def batches(engine) -> int:
    with session_scope(engine) as session:
        return session.scalar(select(func.count()).select_from(GenerationBatch))


def test_the_background_beat_adopts_the_original_apps_images(database, engine, tmp_path):
    studio = studio_for(database, tmp_path, sweep_seconds=5)
    add_legacy_image(engine)

    studio.prepare_history()  # a History view with the sweep on: reads only
    assert batches(engine) == 0
    studio.recover()
    assert batches(engine) == 1
    studio.close()


def test_without_a_background_sweep_history_adopts_them_as_it_is_viewed(database, engine, tmp_path):
    studio = studio_for(database, tmp_path, sweep_seconds=0)
    add_legacy_image(engine)

    studio.prepare_history()

    assert batches(engine) == 1
    studio.close()


def test_a_studio_from_default_settings_never_asks_a_host_on_a_private_network(
    database, engine, tmp_path, add_lora, fake_fal
):
    """ALLOW_PRIVATE_WEIGHTS_URLS unset: neither a generation nor a sweep makes the server
    send a request to the host a stored weights URL names on its own network."""
    studio = build_studio(
        Settings(
            **{name.lower(): value for name, value in database_env(database).items()},
            fal_key=TEST_FAL_KEY,
            media_dir=tmp_path / "media",
        )
    )
    try:
        with private_host() as host:
            lora = add_lora(weights_url=host.weights_url)
            outcome = studio.generate(user="ann", lora_id=lora.id, prompt="a cat")
            weights.forget_answers()  # the sweep comes later: asked afresh
            _sweep_id, done = studio.start_sweep(
                user="ann", lora_id=lora.id, prompt="a red fox", base=Recipe(seed=7),
                x=axes.scale_axis("0.5, 1"),
            )  # fmt: skip
            assert done.wait(60)
    finally:
        studio.close()

    assert host.requests == []
    assert len(outcome.images) == 4
    assert [s.body["loras"][0]["path"] for s in fake_fal.submissions] == [host.weights_url] * 3


BAD_SETTINGS = [
    Recipe(lora_scale=99),
    Recipe(steps=0),
    Recipe(guidance=-1),
    Recipe(image_size="huge"),
    Recipe(seed=-5),
]


@pytest.mark.parametrize("bad", BAD_SETTINGS, ids=lambda r: repr(r)[:40])
def test_settings_are_checked_before_the_quota_at_every_entry_point(
    database, engine, tmp_path, add_lora, fake_fal, bad
):
    """A generation and a sweep with settings fal would refuse: a clear message, and
    nothing reserved, written or sent; another user's batch, already counted, unchanged."""
    studio = build_studio(
        Settings(
            **{name.lower(): value for name, value in database_env(database).items()},
            fal_key=TEST_FAL_KEY, media_dir=tmp_path / "media", generation_limit=1,
        )
    )  # fmt: skip
    lora = add_lora()
    try:
        studio.generate(user="bob", lora_id=lora.id, prompt="a cat")  # bob's one generation
        with unchanged_besides(engine, GenerationBatch, GeneratedImage) as watch:
            with pytest.raises(InvalidSettings):
                studio.generate(user="ann", lora_id=lora.id, prompt="a cat", recipe=bad)
            # The axis is never the setting at fault (it would replace the base's value).
            axis = axes.seed_axis("1, 2") if bad.lora_scale == 99 else axes.scale_axis("0.5, 1")
            with pytest.raises(InvalidSettings):
                studio.start_sweep(user="ann", lora_id=lora.id, prompt="a red fox", base=bad,
                                   x=axis)  # fmt: skip
        ann = studio.quota_status(user="ann")
    finally:
        studio.close()

    assert watch.added == {}
    assert ann.used == 0 and ann.remaining == 1  # her one generation is still hers
    assert len(fake_fal.submissions) == 1  # bob's

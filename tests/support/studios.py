"""A Studio as an app process builds it, for tests of use cases that go through it."""

from __future__ import annotations

from pathlib import Path

from lora_core.data.db import DatabaseTarget
from lora_core.settings import Settings
from lora_core.studio import Studio, build_studio
from tests.conftest import TEST_FAL_KEY, database_env


def studio_for(database: DatabaseTarget, tmp_path: Path, **settings: object) -> Studio:
    """fal's generator and trainer against the fake (on this machine: private weights URLs
    allowed), media under `tmp_path`; close it when done."""
    return build_studio(
        Settings(
            **{name.lower(): value for name, value in database_env(database).items()},
            fal_key=TEST_FAL_KEY,
            media_dir=tmp_path / "media",
            allow_private_weights_urls=True,
            **settings,
        )
    )

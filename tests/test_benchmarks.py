"""Every benchmark script still imports: they run by hand, not in CI, so a moved module
would otherwise break them unnoticed."""

from __future__ import annotations

import importlib
import os
from unittest import mock

import pytest

from tests.conftest import APP_ROOT

SCRIPTS = sorted(
    path.stem for path in (APP_ROOT / "benchmarks").glob("*.py") if path.stem != "__init__"
)


@pytest.mark.parametrize("name", SCRIPTS)
def test_the_benchmark_imports(name):
    with mock.patch.dict(os.environ):  # generation.py points fal_client at a fake of its own
        module = importlib.import_module(f"benchmarks.{name}")

    assert callable(getattr(module, "main", None)) or name == "seed"

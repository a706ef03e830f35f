"""What the app is made of, built from its settings."""

from __future__ import annotations

from lora_core.fal.generator import FalGenerator
from lora_core.fal.trainer import FalTrainer
from lora_core.generation.generators import ImageGenerator
from lora_core.generation.preview import PreviewGenerator
from lora_core.settings import Settings
from lora_core.storage import MediaStore, build_store
from lora_core.training.preview import PreviewTrainer
from lora_core.training.trainers import Trainer


def build_generator(settings: Settings, store: MediaStore | None = None) -> ImageGenerator:
    """fal when a key is set, else the offline preview generator drawing into `store`
    (by default the store the settings choose)."""
    if (key := settings.fal_credentials) is not None:
        return FalGenerator(key=key, timeout_seconds=settings.fal_timeout_seconds)
    return PreviewGenerator(store or build_store(settings))


def build_trainer(settings: Settings, store: MediaStore | None = None) -> Trainer:
    """fal when a key is set, else the offline preview trainer."""
    if (key := settings.fal_credentials) is not None:
        return FalTrainer(key=key)
    return PreviewTrainer(store or build_store(settings))

"""The offline trainer (no fal credentials): pretends to train for a while, in a way that
outlives the app (the job's start is kept in its request id).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from lora_core.data.models import RequestId
from lora_core.errors import TrainingFailed
from lora_core.storage import MediaStore
from lora_core.training.trainers import TrainedFiles, TrainingState


@dataclass(frozen=True)
class PreviewTrainer:
    """Pretends to train without fal (no key set): the job "runs" for `seconds` from the
    moment it was submitted, a moment kept in its request id so that it outlives the app."""

    store: MediaStore
    seconds: float = 20.0

    def upload(self, archive: bytes) -> str:
        try:
            return self.store.save(
                f"training/{uuid.uuid4().hex}.zip", archive, content_type="application/zip"
            )
        except OSError:
            raise TrainingFailed(
                "Could not save the training images: the media folder is not writable."
            ) from None

    def submit(
        self,
        *,
        images_url: str,
        trigger_word: str,
        steps: int,
        is_style: bool,
        on_request_id: Callable[[str], None] | None = None,
    ) -> str:
        request_id = RequestId.PREVIEW.new(f"{time.time():.3f}-{uuid.uuid4().hex[:8]}")
        if on_request_id is not None:
            on_request_id(request_id)
        return request_id

    def state(self, request_id: str) -> TrainingState:
        elapsed = time.time() - _preview_started(request_id)
        if elapsed >= self.seconds:
            return TrainingState("completed", logs=("Preview training finished",))
        done = int(100 * elapsed / self.seconds)
        return TrainingState("running", logs=(f"Preview training: {done} % (no fal key set)",))

    def files(self, request_id: str) -> TrainedFiles:
        return TrainedFiles(weights_url=f"preview://weights/{request_id}.safetensors")


def _preview_started(request_id: str) -> float:
    """When a preview job started; a job that is not a preview (e.g. one the original
    trainer app submitted to fal) is not the preview trainer's to judge."""
    try:
        if not request_id.startswith(RequestId.PREVIEW):
            raise ValueError(request_id)
        return float(request_id.split("-")[1])
    except (IndexError, ValueError):
        raise TrainingFailed("Without a fal key, only preview trainings can be followed.") from None

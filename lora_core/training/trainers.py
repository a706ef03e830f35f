"""What every LoRA trainer takes and returns, and the interface they share: fal's
(`lora_core.fal.trainer`) and the offline preview (`lora_core.training.preview`).

Training runs for minutes, so nothing here waits for it: a job is uploaded and submitted,
then its state is asked for by request id by the background sweep (`lifecycle.follow`),
which survives page reloads and app restarts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True)
class TrainingState:
    stage: Literal["queued", "running", "completed"]
    queue_position: int | None = None
    logs: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrainedFiles:
    """What a finished training produced, at the trainer's URLs (fal's expire)."""

    weights_url: str
    config_url: str | None = None


class Trainer(Protocol):
    def upload(self, archive: bytes) -> str:
        """Store the training archive where the trainer can read it; return its URL."""
        ...

    def submit(
        self,
        *,
        images_url: str,
        trigger_word: str,
        steps: int,
        is_style: bool,
        on_request_id: Callable[[str], None] | None = None,
    ) -> str:
        """Start a training job; return its request id, first handed to `on_request_id` the
        moment the trainer has it (fal may bill the job from then on)."""
        ...

    def state(self, request_id: str) -> TrainingState:
        """Where the job is; TrainingFailed (`job_failed`) when it failed or is unknown."""
        ...

    def files(self, request_id: str) -> TrainedFiles:
        """The trained files of a completed job; TrainingFailed when the job failed."""
        ...

"""What every image generator takes and returns, and the interface they share: fal's
(`lora_core.fal.generator`) and the offline preview (`lora_core.generation.preview`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from lora_core.generation.recipe import PLAN, Recipe

IMAGES_PER_BATCH = 4


@dataclass(frozen=True)
class AddedWeights:
    """A LoRA stacked on the first: the weights URL fal gets, at its scale."""

    weights_url: str
    scale: float
    label: str


@dataclass(frozen=True)
class GenerationRequest:
    batch_id: str
    full_prompt: str
    weights_url: str | None  # None: the base model alone (a sweep's "no LoRA" baseline)
    lora_label: str
    recipe: Recipe = PLAN
    num_images: int = IMAGES_PER_BATCH  # a sweep's cell: 1
    added: tuple[AddedWeights, ...] = ()  # LoRAs stacked on the first, in fal's order


@dataclass(frozen=True)
class GeneratedImageData:
    url: str
    width: int | None
    height: int | None
    nsfw: bool = False


@dataclass(frozen=True)
class GenerationResult:
    images: list[GeneratedImageData]
    seed: str | None
    request_id: str | None


@dataclass(frozen=True)
class Progress:
    stage: Literal["submitted", "queued", "running", "completed"]
    queue_position: int | None = None
    message: str | None = None
    request_id: str | None = None


ProgressCallback = Callable[[Progress], None]


class ImageGenerator(Protocol):
    # Whether the LoRA's weights URL must be one the generator can download (fal does).
    downloads_weights: bool

    def generate(
        self, request: GenerationRequest, on_progress: ProgressCallback | None = None
    ) -> GenerationResult: ...

    def resume(self, request_id: str) -> GenerationResult | None:
        """The result of a job submitted earlier (by a process that died), None while it
        still runs; raises GenerationFailed when fal says it failed or is unknown."""
        ...

    def cancel(self, request_id: str) -> None: ...

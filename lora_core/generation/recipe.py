"""A generation's settings besides its prompt and LoRA: what fal's `fal-ai/flux-lora` takes
and evaluators vary (LoRA scale, seed, image size, steps, guidance).

The plan's settings are the defaults, and what a batch stored before settings were
recorded was generated with. Ranges are fal's schema narrowed to what the app offers:
fal takes a LoRA scale up to 4 and guidance up to 35; the app offers 0–2 and 0–20, where
FLUX LoRAs are evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from lora_core.errors import InvalidSettings

if TYPE_CHECKING:
    from lora_core.data.models import GenerationBatch

# fal's image size presets and the pixels each stands for (fal's documentation).
IMAGE_SIZES: dict[str, tuple[int, int]] = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
SCALE_RANGE = (0.0, 2.0)
STEPS_RANGE = (1, 50)
GUIDANCE_RANGE = (0.0, 20.0)
MAX_SEED = 2**64 - 1  # fal's seeds can exceed 2^63: kept as text in the database


@dataclass(frozen=True)
class StackedLora:
    """A LoRA added to a generation besides its first, at its own scale."""

    lora_id: str
    scale: float


@dataclass(frozen=True)
class Recipe:
    """How a batch is generated; `seed` None means fal picks one (and says which).
    `stack`: the LoRAs added to the first, in the order fal gets them (stored in
    `batch_loras`, not in the batch's own columns)."""

    lora_scale: float = 1.5
    steps: int = 28
    guidance: float = 3.5
    image_size: str = "square_hd"
    seed: int | None = None
    stack: tuple[StackedLora, ...] = ()

    @property
    def pixels(self) -> tuple[int, int]:
        return IMAGE_SIZES[self.image_size]

    def with_seed(self, seed: int | None) -> Recipe:
        return replace(self, seed=seed)

    def with_stack(self, stack: tuple[StackedLora, ...]) -> Recipe:
        return replace(self, stack=stack)


PLAN = Recipe()
# A batch's LoRA when it had none: a sweep's baseline cell, made by the base model alone.
NO_LORA = "none"
NO_LORA_LABEL = "no LoRA (base model)"  # how pages name it


def checked(recipe: Recipe) -> Recipe:
    """`recipe` if fal would accept it and the app offers it, else `InvalidSettings` saying
    which setting and its range."""
    low, high = SCALE_RANGE
    if not low <= recipe.lora_scale <= high:
        raise InvalidSettings(f"The LoRA scale must be between {low:g} and {high:g}.")
    for added in recipe.stack:
        if not low <= added.scale <= high:
            raise InvalidSettings(f"An added LoRA's scale must be between {low:g} and {high:g}.")
    ids = [added.lora_id for added in recipe.stack]
    if len(set(ids)) != len(ids):
        raise InvalidSettings("A LoRA can be added only once.")
    low_steps, high_steps = STEPS_RANGE
    if not low_steps <= recipe.steps <= high_steps:
        raise InvalidSettings(f"Steps must be between {low_steps} and {high_steps}.")
    low, high = GUIDANCE_RANGE
    if not low <= recipe.guidance <= high:
        raise InvalidSettings(f"Guidance must be between {low:g} and {high:g}.")
    if recipe.image_size not in IMAGE_SIZES:
        raise InvalidSettings(f"Unknown image size {recipe.image_size!r}.")
    if recipe.seed is not None and not 0 <= recipe.seed <= MAX_SEED:
        raise InvalidSettings(f"The seed must be a whole number from 0 to {MAX_SEED}.")
    return recipe


def parse_seed(text: str | None) -> int | None:
    """A seed typed by a person: blank means random; anything else must be a number."""
    cleaned = (text or "").strip().replace(",", "").replace("_", "")
    if not cleaned:
        return None
    if not cleaned.isdigit():
        raise InvalidSettings("The seed must be a whole number, or blank for a random one.")
    return int(cleaned)


def stored_seed(text: str | None) -> int | None:
    """A seed as the database keeps it (TEXT, fal's may exceed 2^63); None if there is none."""
    return int(text) if text and text.isdigit() else None


def fal_arguments(recipe: Recipe) -> dict[str, Any]:
    """The recipe's part of fal's arguments (the seed only when one is asked for)."""
    arguments: dict[str, Any] = {
        "image_size": recipe.image_size,
        "num_inference_steps": recipe.steps,
        "guidance_scale": recipe.guidance,
    }
    if recipe.seed is not None:
        arguments["seed"] = recipe.seed
    return arguments


def batch_columns(recipe: Recipe) -> dict[str, Any]:
    """The recipe as a batch row stores it (the seed asked for, if any)."""
    return {
        "lora_scale": recipe.lora_scale,
        "num_inference_steps": recipe.steps,
        "guidance_scale": recipe.guidance,
        "image_size": recipe.image_size,
        "requested_seed": None if recipe.seed is None else str(recipe.seed),
    }


def from_batch(
    *,
    lora_scale: float | None,
    steps: int | None,
    guidance: float | None,
    image_size: str | None,
    seed: str | None,
) -> Recipe:
    """The recipe a stored batch was made with; None columns (rows written before settings
    were recorded, or by the original app) are the plan's. `seed` is the one fal used."""
    return Recipe(
        lora_scale=PLAN.lora_scale if lora_scale is None else float(lora_scale),
        steps=PLAN.steps if steps is None else int(steps),
        guidance=PLAN.guidance if guidance is None else float(guidance),
        image_size=image_size or PLAN.image_size,
        seed=stored_seed(seed),
    )


def batch_recipe(batch: GenerationBatch | None, *, seed: str | None) -> Recipe:
    """`from_batch` for a stored batch row (None: an image without one, the plan's) with
    `seed` (the one fal used, or the one asked for)."""
    return from_batch(
        lora_scale=batch.lora_scale if batch else None,
        steps=batch.num_inference_steps if batch else None,
        guidance=batch.guidance_scale if batch else None,
        image_size=batch.image_size if batch else None,
        seed=seed,
    )


def stack_rows(batch_id: str, stack: tuple[StackedLora, ...]) -> list[dict[str, Any]]:
    """Added LoRAs as `batch_loras` rows of `batch_id` (positions from 1)."""
    return [
        {
            "batch_id": batch_id,
            "position": position,
            "lora_training_id": added.lora_id,
            "lora_scale": added.scale,
        }
        for position, added in enumerate(stack, start=1)
    ]


def describe(recipe: Recipe) -> str:
    """One line for people: "scale 1.5 · 28 steps · guidance 3.5 · 1024×1024"."""
    width, height = IMAGE_SIZES.get(recipe.image_size, (0, 0))
    size = f"{width}×{height}" if width else recipe.image_size
    return (
        f"scale {recipe.lora_scale:g} · {recipe.steps} steps · "
        f"guidance {recipe.guidance:g} · {size}"
    )

"""The five settings a generation takes (LoRA scale, seed, image size, steps, guidance) as
widgets: the Generate dialog's *Advanced* and the Lab's settings held fixed share them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

from lora_core.generation import recipe


@dataclass(frozen=True)
class Chosen:
    """The Advanced section's values as the widgets return them (the seed as typed)."""

    lora_scale: float
    seed: str
    image_size: str
    steps: int
    guidance: float

    def recipe(self) -> recipe.Recipe:
        """The recipe they make; `InvalidSettings` for a seed that is no number."""
        return recipe.checked(
            recipe.Recipe(
                lora_scale=float(self.lora_scale),
                steps=int(self.steps),
                guidance=float(self.guidance),
                image_size=self.image_size,
                seed=recipe.parse_seed(self.seed),
            )
        )


def recipe_inputs(
    shown: recipe.Recipe,
    *,
    key: Callable[[str], str],
    seed_placeholder: str = "Random",
    seed_help: str = "The same seed and settings give the same images. Blank: random.",
    with_seed: bool = True,
) -> Chosen:
    """The five settings' widgets, starting from `shown`, each keyed `key(name)` (names:
    scale, seed, size, steps, guidance): the Generate dialog's and the Lab's. Without
    `with_seed`, no seed widget (a suite has its own seeds) and the seed is blank."""
    scale = st.slider(
        "LoRA scale",
        *recipe.SCALE_RANGE,
        value=shown.lora_scale,
        step=0.05,
        key=key("scale"),
        help="How strongly the LoRA steers the image; 0 is the base model.",
    )
    seed = ""
    if with_seed:
        seed = st.text_input(
            "Seed",
            value="" if shown.seed is None else str(shown.seed),
            key=key("seed"),
            placeholder=seed_placeholder,
            help=seed_help,
        )
    size = st.selectbox(
        "Image size",
        list(recipe.IMAGE_SIZES),
        index=list(recipe.IMAGE_SIZES).index(shown.image_size),
        key=key("size"),
        format_func=size_label,
    )
    steps = st.slider("Steps", *recipe.STEPS_RANGE, value=shown.steps, key=key("steps"))
    guidance = st.slider(
        "Guidance",
        *recipe.GUIDANCE_RANGE,
        value=shown.guidance,
        step=0.5,
        key=key("guidance"),
        help="How closely the image follows the prompt.",
    )
    return Chosen(scale, seed, size or recipe.PLAN.image_size, steps, guidance)


def size_label(preset: str) -> str:
    width, height = recipe.IMAGE_SIZES[preset]
    return f"{preset.replace('_', ' ')} · {width}×{height}"

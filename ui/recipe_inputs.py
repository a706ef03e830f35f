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
    # The Generate dialog's added LoRAs: (LoRA id, or None for an empty place; its scale).
    stack: tuple[tuple[str | None, float], ...] = ()

    def recipe(self) -> recipe.Recipe:
        """The recipe they make; `InvalidSettings` for a seed that is no number."""
        return recipe.checked(
            recipe.Recipe(
                lora_scale=float(self.lora_scale),
                steps=int(self.steps),
                guidance=float(self.guidance),
                image_size=self.image_size,
                seed=recipe.parse_seed(self.seed),
                stack=tuple(
                    recipe.StackedLora(lora_id, float(scale))
                    for lora_id, scale in self.stack
                    if lora_id is not None
                ),
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


def stack_inputs(
    shown: recipe.Recipe,
    *,
    choices: dict[str, str],
    places: int,
    key: Callable[[str], str],
) -> tuple[tuple[str | None, float], ...]:
    """`places` rows of a LoRA to add (from `choices`, id → label; empty: none) and its
    scale, as ComfyUI's LoRA stacker: they start from `shown.stack`, a LoRA no longer among
    the choices left out. Rows, not a picker that grows: the dialog is a form, which draws
    nothing new until it is submitted."""
    start = [added for added in shown.stack if added.lora_id in choices][:places]
    rows = []
    for place in range(places):
        given = start[place] if place < len(start) else None
        picked, scale = st.columns([3, 2], vertical_alignment="bottom")
        lora_id = picked.selectbox(
            f"Added LoRA {place + 1}",
            list(choices),
            index=list(choices).index(given.lora_id) if given else None,
            format_func=choices.__getitem__,
            placeholder="None",
            key=key(f"stack_{place}"),
        )
        weight = scale.number_input(
            f"Scale of added LoRA {place + 1}",
            *recipe.SCALE_RANGE,
            value=given.scale if given else 1.0,
            step=0.05,
            key=key(f"stack_scale_{place}"),
        )
        rows.append((lora_id, weight))
    return tuple(rows)

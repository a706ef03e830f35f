"""X/Y sweeps: one or two axes typed by a person, planned into cells.

An axis varies one thing, everything else (the seed included) is held fixed, as in
AUTOMATIC1111's X/Y/Z plot:

- `scale`: LoRA scales, a list ("0, 0.5, 1") or a range ("0-2 step 0.5");
- `seed`: seeds, a list or a range ("1-4", step 1 unless given);
- `prompt`: Prompt S/R, a list whose first item is a word of the prompt and each item
  replaces it ("red, blue, green": the prompt as is, then with "blue", then "green");
- `lora`: LoRA ids, `NO_LORA` among them for the base model as a baseline;
- `case`: an evaluation suite's prompts and seeds (`lora_core.lab.suites`), each value one
  prompt with one seed (`case_value`): the rows of a suite run;
- `arm`: LoRAs each at a scale (`arm_value`): a suite run's columns when it also tries a
  second scale;
- `stack`: a LoRA stacked on the cell's own, at a scale (`arm_value`), or `NO_LORA` for
  none: "with LoRA: none / A / B", or one LoRA at several scales ("second LoRA scale").

Each cell is one fal call with one image (fal returns one seed per call: a cell must be one
image to be reproducible); four cells cost one generation of the quota.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Literal

from lora_core.errors import InvalidSweep
from lora_core.generation.generators import IMAGES_PER_BATCH
from lora_core.generation.recipe import (
    MAX_SEED,
    NO_LORA,
    SCALE_RANGE,
    Recipe,
    StackedLora,
    checked,
)

AxisKind = Literal["scale", "seed", "prompt", "lora", "case", "arm", "stack"]
AXIS_KINDS: tuple[AxisKind, ...] = ("scale", "seed", "prompt", "lora", "stack")
_RANGE = re.compile(
    r"^\s*(?P<start>\d+(?:\.\d+)?)\s*(?:-|to)\s*(?P<stop>\d+(?:\.\d+)?)"
    r"\s*(?:(?:step|by)\s*(?P<step>\d+(?:\.\d+)?))?\s*$",
    re.IGNORECASE,
)
MAX_VALUES = 64  # an axis longer than this is a typo, whatever the cell limit


@dataclass(frozen=True)
class Axis:
    """What varies along one side of the grid: its kind and values (as text, in order)."""

    kind: AxisKind
    values: tuple[str, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        """What the grid's row or column headers say."""
        names = {"scale": "scale ", "seed": "seed ", "prompt": "", "lora": ""}
        if self.kind == "case":
            return tuple(f"{prompt} · seed {seed}" for prompt, seed in map(case_of, self.values))
        if self.kind == "arm":
            return tuple(
                "no LoRA" if lora == NO_LORA else f"{lora} · scale {scale:g}"
                for lora, scale in map(arm_of, self.values)
            )
        if self.kind == "stack":
            return tuple(
                NOTHING_STACKED if value == NO_LORA else "+ {} · {:g}".format(*arm_of(value))
                for value in self.values
            )
        return tuple(
            "no LoRA" if self.kind == "lora" and value == NO_LORA else f"{names[self.kind]}{value}"
            for value in self.values
        )


def case_value(prompt: str, seed: int) -> str:
    """One suite case as an axis value (JSON text: a prompt may hold any character)."""
    return json.dumps([prompt, str(seed)], ensure_ascii=False)


def case_of(value: str) -> tuple[str, int]:
    prompt, seed = json.loads(value)
    return prompt, int(seed)


def arm_value(lora_id: str, scale: float) -> str:
    """One LoRA at one scale as an axis value (JSON text)."""
    return json.dumps([lora_id, f"{scale:g}"])


def arm_of(value: str) -> tuple[str, float]:
    lora_id, scale = json.loads(value)
    return lora_id, float(scale)


NOTHING_STACKED = "alone"  # a stack axis's value without a stacked LoRA, as grids say it


def loras_of(axis: Axis) -> list[str]:
    """The LoRA ids an axis names (a LoRA axis's values, an arm or stack axis's LoRAs)."""
    if axis.kind == "lora":
        return list(axis.values)
    if axis.kind == "arm":
        return [arm_of(value)[0] for value in axis.values]
    if axis.kind == "stack":
        return [arm_of(value)[0] for value in axis.values if value != NO_LORA]
    return []


@dataclass(frozen=True)
class Cell:
    """One image of the sweep: its place (column x, row y) and what it is made from."""

    x: int
    y: int
    prompt: str
    lora_id: str | None  # None: the base model, no LoRA
    recipe: Recipe


def numbers(text: str, *, what: str, low: float, high: float) -> list[float]:
    """A list ("0, 0.5, 1") or a range ("0-2 step 0.5", the end included) of numbers
    between `low` and `high`; `InvalidSweep` saying what is wrong otherwise."""
    found = _RANGE.match(text)
    if found:
        start, stop = float(found["start"]), float(found["stop"])
        step = float(found["step"]) if found["step"] else 1.0
        if step <= 0 or stop < start:
            raise InvalidSweep(f"The {what} range must go up, by a step above 0.")
        count = math.floor((stop - start) / step + 1e-9) + 1
        if count > MAX_VALUES:
            raise InvalidSweep(f"That {what} range has {count} values; at most {MAX_VALUES}.")
        values = [round(start + index * step, 6) for index in range(count)]
    else:
        parts = [part for part in re.split(r"[,\s]+", text.strip()) if part]
        try:
            values = [float(part) for part in parts]
        except ValueError:
            raise InvalidSweep(
                f"Type the {what} values as a list (0, 0.5, 1) or a range (0-2 step 0.5)."
            ) from None
    if not values:
        raise InvalidSweep(f"Give at least one {what} value.")
    outside = [value for value in values if not low <= value <= high]
    if outside:
        raise InvalidSweep(f"Every {what} must be between {low:g} and {high:g}.")
    return _unique(values)


def scale_axis(text: str) -> Axis:
    low, high = SCALE_RANGE
    values = numbers(text, what="LoRA scale", low=low, high=high)
    return Axis("scale", tuple(f"{value:g}" for value in values))


def seed_axis(text: str) -> Axis:
    """Seeds as whole numbers, read exactly (fal's seeds exceed what a float holds): a list
    or a range ("1-4", step 1 unless given)."""
    found = _RANGE.match(text)
    try:
        if found:
            start, stop = int(found["start"]), int(found["stop"])
            step = int(found["step"] or 1)
            if step <= 0 or stop < start:
                raise InvalidSweep("The seed range must go up, by a step above 0.")
            if (stop - start) // step + 1 > MAX_VALUES:
                raise InvalidSweep(f"That seed range has too many values; at most {MAX_VALUES}.")
            values = list(range(start, stop + 1, step))
        else:
            values = [int(part) for part in re.split(r"[,\s]+", text.strip()) if part]
    except ValueError:
        raise InvalidSweep("Seeds are whole numbers: a list (1, 2, 3) or a range (1-4).") from None
    if not values:
        raise InvalidSweep("Give at least one seed.")
    if any(not 0 <= value <= MAX_SEED for value in values):
        raise InvalidSweep(f"Every seed must be between 0 and {MAX_SEED}.")
    return Axis("seed", tuple(str(value) for value in _unique(values)))


def prompt_axis(prompt: str, text: str) -> Axis:
    """Prompt S/R: the first item must be in the prompt; every item replaces it in turn."""
    items = _unique([item.strip() for item in text.split(",") if item.strip()])
    if not items:
        raise InvalidSweep("Give the word to replace, then what replaces it: red, blue, green.")
    if items[0] not in prompt:
        raise InvalidSweep(
            f"“{items[0]}” is not in the prompt: the first item is the word to replace."
        )
    return Axis("prompt", tuple(items))


def lora_axis(lora_ids: list[str]) -> Axis:
    if not lora_ids:
        raise InvalidSweep("Pick at least one LoRA (or no LoRA) for the LoRA axis.")
    return Axis("lora", tuple(_unique(lora_ids)))


def stack_axis(lora_ids: list[str], scales: str) -> Axis:
    """ "With LoRA": each LoRA of `lora_ids` (`NO_LORA`: nothing stacked) at each of the
    `scales` typed (a list or a range), stacked on every cell's own LoRA."""
    if not lora_ids:
        raise InvalidSweep("Pick at least one LoRA to stack (or nothing) for this axis.")
    low, high = SCALE_RANGE
    values = numbers(scales, what="stacked LoRA scale", low=low, high=high)
    return Axis(
        "stack",
        tuple(
            _unique(
                [
                    NO_LORA if lora_id == NO_LORA else arm_value(lora_id, value)
                    for lora_id in lora_ids
                    for value in ([0.0] if lora_id == NO_LORA else values)
                ]
            )
        ),
    )


def plan(
    *,
    prompt: str,
    lora_id: str,
    base: Recipe,
    x: Axis,
    y: Axis | None = None,
    max_cells: int = 16,
) -> list[Cell]:
    """The sweep's cells, row by row: `base` with the axes' values; `base.seed` must be
    set (the seed is held fixed unless an axis varies it)."""
    if base.seed is None:
        raise InvalidSweep("A sweep holds its seed fixed: pick one (or let the page pick one).")
    if y is not None and y.kind == x.kind:
        raise InvalidSweep("The two axes must vary different things.")
    rows = y.values if y is not None else ("",)
    count = len(x.values) * len(rows)
    if count > max_cells:
        raise InvalidSweep(f"That sweep has {count} cells; at most {max_cells}.")
    words = [axis for axis in (x, y) if axis is not None and axis.kind == "prompt"]
    search = words[0].values[0] if words else None
    cells = []
    for row, y_value in enumerate(rows):
        for column, x_value in enumerate(x.values):
            varied = {x.kind: x_value} | ({y.kind: y_value} if y is not None else {})
            cells.append(_cell(column, row, (prompt, lora_id, base), varied, search))
    return cells


def generations_needed(cells: int) -> int:
    """Quota slots a sweep takes: four images to a generation ("12 images = 3")."""
    return math.ceil(cells / IMAGES_PER_BATCH)  # one quota slot buys one batch's images


def cost_text(cells: int) -> str:
    needed = generations_needed(cells)
    return (
        f"{cells} image{'s' if cells != 1 else ''} = {needed} "
        f"generation{'s' if needed != 1 else ''}"
    )


def _cell(
    column: int,
    row: int,
    base_cell: tuple[str, str, Recipe],
    varied: dict[str, str],
    search: str | None,
) -> Cell:
    """One cell: the prompt, LoRA and recipe with this row's and column's values."""
    prompt, lora_id, base = base_cell
    text = prompt.replace(search, varied["prompt"]) if search and "prompt" in varied else prompt
    seed = int(varied["seed"]) if "seed" in varied else base.seed
    if "case" in varied:
        text, seed = case_of(varied["case"])
    lora = varied.get("lora", lora_id)
    scale = float(varied["scale"]) if "scale" in varied else base.lora_scale
    if "arm" in varied:
        lora, scale = arm_of(varied["arm"])
    stack = base.stack
    if "stack" in varied:
        stack = () if varied["stack"] == NO_LORA else (StackedLora(*arm_of(varied["stack"])),)
    if any(more.lora_id == lora for more in stack):
        raise InvalidSweep("A LoRA cannot be stacked on itself: take it out of one axis.")
    recipe = checked(
        Recipe(
            lora_scale=scale,
            steps=base.steps,
            guidance=base.guidance,
            image_size=base.image_size,
            seed=seed,
            stack=stack,
        )
    )
    return Cell(column, row, text, None if lora == NO_LORA else lora, recipe)


def _unique(values: list) -> list:
    seen: list = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen

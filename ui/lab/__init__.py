"""The LoRA Lab's tools, one module each: `form` (an X/Y sweep asked for, with its cost, and
the recent sweeps), `suites` (evaluation suites: made, changed, copied, run on LoRAs),
`grid` (a sweep's grid filling in as its cells finish, its retries and downloads) and
`reader` (the recipe inside an image file, with Remix)."""

from __future__ import annotations

# How each kind of axis is named on the form and over a grid.
AXIS_NAMES = {
    "scale": "LoRA scale",
    "seed": "Seed",
    "prompt": "Prompt S/R",
    "lora": "LoRA",
    "stack": "With LoRA (stacked)",
}
# A suite run's axes (never offered on the form: a suite makes them).
SUITE_AXIS_NAMES = {"case": "suite prompts and seeds", "arm": "LoRAs at two scales"}


def axis_name(kind: str) -> str:
    return AXIS_NAMES.get(kind) or SUITE_AXIS_NAMES[kind]

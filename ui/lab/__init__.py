"""The LoRA Lab's three tools, one module each: `form` (an X/Y sweep asked for, with its
cost, and the recent sweeps), `grid` (a sweep's grid filling in as its cells finish, its
retries and downloads) and `reader` (the recipe inside an image file, with Remix)."""

from __future__ import annotations

# How each kind of axis is named on the form and over a grid.
AXIS_NAMES = {"scale": "LoRA scale", "seed": "Seed", "prompt": "Prompt S/R", "lora": "LoRA"}

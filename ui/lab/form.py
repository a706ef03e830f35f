"""The Lab's X/Y sweep form: a LoRA, a prompt, one or two axes, the cost; and the newest
sweeps, each a link to its grid."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from lora_core.errors import InvalidSweep, LoraStudioError, NotSignedIn
from lora_core.gallery import queries
from lora_core.generation import quota, recipe
from lora_core.lab import axes, views
from ui import context, routes
from ui.components import format_date, lora_title
from ui.errors import generation_blocked, period_text, show_error
from ui.lab import AXIS_NAMES
from ui.recipe_inputs import recipe_inputs
from ui.text import md

NO_Y = "nothing"
EXAMPLES = {"scale": "0, 0.5, 1, 1.5, 2", "seed": "1-4", "prompt": ""}
HINTS = {
    "scale": "A list (0, 0.5, 1) or a range (0-2 step 0.5), each between 0 and 2.",
    "seed": "Whole numbers: a list (1, 2, 3) or a range (1-4).",
    "prompt": "A word of the prompt, then what replaces it: red, blue, green.",
}


def sweep_form() -> None:
    """Pick a LoRA, a prompt and one or two axes; see the cost; start."""
    loras = context.read(queries.list_ready_loras)
    if not loras:
        st.info("No LoRA is ready to generate from yet.", icon=":material/hourglass_top:")
        return
    names = {lora.id: lora_title(lora) for lora in loras}
    lora_id = st.selectbox("LoRA", list(names), format_func=names.get, key="sweep_lora")
    prompt = st.text_area(
        "Prompt", key="sweep_prompt", placeholder="a red fox in the snow", height=90
    )
    choices = {**names, axes.NO_LORA: recipe.NO_LORA_LABEL}
    left, right = st.columns(2)
    with left:
        x = _axis("x", "X axis (columns)", list(AXIS_NAMES), prompt, lora_id, choices)
    with right:
        y = _axis("y", "Y axis (rows)", [NO_Y, *AXIS_NAMES], prompt, lora_id, choices)
    base = _held_fixed()
    try:
        if isinstance(x, InvalidSweep):
            raise x
        if isinstance(y, InvalidSweep):
            raise y
        cells = axes.plan(
            prompt=prompt or "",
            lora_id=lora_id,
            base=base.with_seed(base.seed if base.seed is not None else 0),
            x=x,
            y=y,
            max_cells=context.get_settings().sweep_max_cells,
        )
        problem = None
    except InvalidSweep as error:
        cells, problem = [], str(error)
    status = context.run_quota_status()
    blocked = generation_blocked(status)
    short = (
        status is not None
        and not blocked
        and not status.can_take(axes.generations_needed(len(cells)))
    )
    if problem:
        st.warning(md(problem), icon=":material/edit:")
    elif status is not None:
        st.markdown(f"**{md(_cost_line(len(cells), status))}**")
    if st.button(
        "Start sweep",
        type="primary",
        icon=":material/grid_view:",
        disabled=bool(problem) or blocked is not None or short or not (prompt or "").strip(),
        key="sweep_start",
    ):
        _start(lora_id, prompt or "", base, x, y)  # no seed: the core picks one for all
    if blocked:
        st.warning(md(blocked), icon=":material/timer:")
    elif short:
        st.warning("Fewer cells fit in what is left of your quota.", icon=":material/timer:")


def _cost_line(cells: int, status: quota.QuotaStatus) -> str:
    """ "12 images = 3 of your 8 generations left today"."""
    needed = axes.generations_needed(cells)
    images = f"{cells} image{'s' if cells != 1 else ''}"
    if status.is_exempt:
        return f"{axes.cost_text(cells)} (yours are unlimited)"
    return (
        f"{images} = {needed} of your {status.remaining} generation"
        f"{'s' if status.remaining != 1 else ''} left {period_text(status.window)}"
    )


def _axis(
    side: str,
    label: str,
    kinds: list[str],
    prompt: str | None,
    lora_id: str,
    choices: dict[str, str],
) -> axes.Axis | InvalidSweep | None:
    """One axis's kind and values; None for "nothing", the error when they can't be read."""
    kind = st.selectbox(
        label,
        kinds,
        format_func=lambda value: "Nothing (one row)" if value == NO_Y else AXIS_NAMES[value],
        key=f"sweep_{side}_kind",
    )
    if kind == NO_Y:
        return None
    try:
        if kind == "lora":
            picked = st.multiselect(
                "LoRAs",
                list(choices),
                default=[lora_id, axes.NO_LORA],
                format_func=choices.get,
                key=f"sweep_{side}_loras",
            )
            return axes.lora_axis(picked)
        if kind == "stack":
            return _stack_axis(side, lora_id, choices)
        text = st.text_input(
            f"{AXIS_NAMES[kind]} values",
            value=EXAMPLES[kind],
            key=f"sweep_{side}_{kind}",
            placeholder="red, blue, green" if kind == "prompt" else "",
            help=HINTS[kind],
        )
        if kind == "scale":
            return axes.scale_axis(text)
        if kind == "seed":
            return axes.seed_axis(text)
        return axes.prompt_axis(prompt or "", text)
    except InvalidSweep as error:
        return error


def _stack_axis(side: str, lora_id: str, choices: dict[str, str]) -> axes.Axis:
    """ "With LoRA: none / A / B", or one LoRA at several scales: LoRAs stacked on the
    sweep's LoRA (nothing stacked among them), each at each scale typed."""
    stackable = {
        axes.NO_LORA: "nothing stacked",
        **{key: name for key, name in choices.items() if key not in (lora_id, axes.NO_LORA)},
    }
    picked = st.multiselect(
        "LoRAs to stack", list(stackable), default=[axes.NO_LORA], format_func=stackable.get,
        key=f"sweep_{side}_stacked",
    )  # fmt: skip
    scales = st.text_input(
        "Their scales", value="0.5, 1", key=f"sweep_{side}_stacked_scales", help=HINTS["scale"]
    )
    return axes.stack_axis(picked, scales)


def _held_fixed() -> recipe.Recipe:
    """The settings every cell shares unless an axis varies them (no seed when none was
    typed: the sweep then gets one at random, the same for every cell)."""
    with st.expander("Held fixed: seed and settings"):
        chosen = recipe_inputs(
            recipe.PLAN,
            key=lambda name: f"sweep_{name}",
            seed_placeholder="Random (one for every cell)",
            seed_help="Every cell uses this seed unless an axis varies it.",
        )
    try:
        base = chosen.recipe()
    except LoraStudioError as error:  # a seed that is no number
        show_error(error)
        base = replace(chosen, seed="").recipe()
    return base


def _start(
    lora_id: str, prompt: str, base: recipe.Recipe, x: axes.Axis, y: axes.Axis | None
) -> None:
    user = context.current_user()
    if user is None:
        raise NotSignedIn("Sign in to run a sweep.")
    sweep_id, _done = context.studio().start_sweep(
        user=user, lora_id=lora_id, prompt=prompt, base=base, x=x, y=y
    )
    context.forget_run_quota()
    st.query_params["sweep"] = sweep_id
    st.rerun()


def recent_sweeps() -> None:
    """The newest sweeps, each a link to its grid; nothing when there are none."""
    found = context.read(views.recent)
    if not found:
        return
    st.markdown("**Recent sweeps**")
    for summary in found:
        sweep = summary.sweep
        x, y = views.axes_of(sweep)
        shape = f"{len(x.values)}×{len(y.values)}" if y is not None else f"{len(x.values)}"
        st.page_link(
            routes.LAB,
            label=f"{md(summary.lora_name)} · “{md(sweep.prompt)}” · {shape} · "
            f"by {md(sweep.user)} · {md(format_date(sweep.created_at))}",
            icon=":material/grid_view:",
            query_params={"sweep": sweep.id},
        )

"""Compare: 2–4 LoRAs and one prompt, their latest images for it side by side (the choice
lives in the link), and the missing ones generated on request, counted as usual."""

from __future__ import annotations

import logging

import streamlit as st

from lora_core.errors import LoraStudioError, QuotaExceeded
from lora_core.gallery import queries
from lora_core.generation import prompts
from lora_core.generation.recipe import PLAN, SCALE_RANGE, Recipe, StackedLora
from ui import context
from ui.components import linked_image_grid, lora_labels
from ui.errors import generation_blocked, remaining_text, report_unexpected, show_error
from ui.text import md

logger = logging.getLogger(__name__)
MIN_LORAS, MAX_LORAS = 2, 4

st.set_page_config(page_title="Compare · LoRA Studio")
st.title("Compare LoRAs")
st.caption(
    f"Pick {MIN_LORAS}–{MAX_LORAS} LoRAs and one prompt: each LoRA's latest images for exactly "
    "that prompt, side by side. The link keeps the comparison."
)


def generate_missing(
    missing: list[str], prompt: str, labels: dict[str, str], made_with: Recipe
) -> None:
    """One batch per LoRA without images, one after the other, each counted by the quota
    (`made_with`: the plan's settings, with the LoRA stacked on each, if one is)."""
    user = context.current_user()
    if user is None:
        st.info("Sign in to generate images.", icon=":material/login:")
        return
    failed = False
    for lora_id in missing:
        # Errors are said below their box, where the eye already is, not folded inside it.
        with st.status(f"Generating with {md(labels[lora_id])}…") as progress:
            try:
                context.studio().generate(
                    user=user, lora_id=lora_id, prompt=prompt, recipe=made_with
                )
            except Exception as error:
                progress.update(label=f"{md(labels[lora_id])}: not generated", state="error")
                problem: Exception | None = error
            else:
                progress.update(label=f"{md(labels[lora_id])}: done", state="complete")
                problem = None
        if problem is None:
            continue
        failed = True
        if not isinstance(problem, LoraStudioError):
            report_unexpected(problem, what="a generation")
            continue
        show_error(problem)
        if isinstance(problem, QuotaExceeded):
            return
    if not failed:  # a rerun would wipe the messages; new images then show on the next run
        st.rerun()


ready = context.read(queries.list_ready_loras)

# Bound to the link by label, as History's LoRA filter: labels are unique.
labels = lora_labels(ready)
chosen: list[str] = st.multiselect(
    "LoRAs",
    list(labels),
    format_func=labels.get,
    max_selections=MAX_LORAS,
    key="compare_loras",
    bind="query-params",
    placeholder=f"Choose {MIN_LORAS} to {MAX_LORAS} LoRAs",
)
prompt = st.text_input(
    "Prompt", key="compare_prompt", max_chars=prompts.MAX_PROMPT_LENGTH, bind="query-params"
)
# A LoRA stacked on each one compared (a style on subjects): its images made so, only.
left, right = st.columns([3, 1], vertical_alignment="bottom")
stacked_id = left.selectbox(
    "Stacked on each", list(labels), index=None, format_func=labels.get, key="compare_with",
    bind="query-params", placeholder="Nothing: each LoRA alone",
)  # fmt: skip
stacked_scale = right.number_input(
    "Its scale", *SCALE_RANGE, value=1.0, step=0.05, key="compare_with_scale",
    bind="query-params", disabled=stacked_id is None,
)  # fmt: skip
stacked = StackedLora(stacked_id, float(stacked_scale)) if stacked_id else None
if len(chosen) < MIN_LORAS or not prompt.strip():
    st.info(
        f"Choose at least {MIN_LORAS} LoRAs and enter a prompt to compare them.",
        icon=":material/compare:",
    )
    st.stop()

latest = context.read(queries.latest_for_prompt, lora_ids=chosen, prompt=prompt, stacked=stacked)
with_it = f" + {labels[stacked.lora_id]} · {stacked.scale:g}" if stacked else ""

# A LoRA is never stacked on itself: its column says so rather than offering it.
missing = [
    lora_id
    for lora_id in chosen
    if not latest[lora_id] and not (stacked and stacked.lora_id == lora_id)
]
if missing and context.current_user() is not None:
    names = ", ".join(md(labels[lora_id]) for lora_id in missing)
    status = context.run_quota_status()
    if status is not None:
        st.caption(remaining_text(status))
    blocked = generation_blocked(status)
    if st.button(
        f"Generate for {names} ({len(missing)} batch{'es' if len(missing) > 1 else ''})",
        key="generate_missing",
        type="primary",
        icon=":material/auto_awesome:",
        disabled=blocked is not None,
    ):
        generate_missing(missing, prompt, labels, PLAN.with_stack((stacked,) if stacked else ()))
    if blocked:  # why the button is disabled, next to it
        st.warning(md(blocked), icon=":material/timer:")


# Side by side at every width: on a phone the row scrolls sideways rather than stacking.
columns = st.columns(len(chosen), gap="medium", wrap=False)
for column, lora_id in zip(columns, chosen, strict=True):
    with column, st.container(border=True, key=f"compare_{lora_id}"):
        st.subheader(md(labels[lora_id] + with_it), anchor=False)
        if stacked and stacked.lora_id == lora_id:
            st.info("This LoRA is the one stacked on the others.", icon=":material/layers:")
        elif latest[lora_id]:
            linked_image_grid(  # each image a link to its details on its LoRA's page
                latest[lora_id], columns=2, with_captions=False,
                lora_name=labels[lora_id] + with_it,
            )  # fmt: skip
        else:
            st.info("No images for this prompt yet.", icon=":material/image:")

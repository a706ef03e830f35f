"""The Lab's evaluation suites: the shared list, each suite's run on LoRAs (the cost shown
first), and a form to make, change or copy one."""

from __future__ import annotations

import streamlit as st

from lora_core.data.models import LoraTraining, Suite
from lora_core.errors import LoraStudioError, NotSignedIn
from lora_core.gallery import queries
from lora_core.generation import recipe
from lora_core.generation.recipe import SCALE_RANGE, StackedLora
from lora_core.lab import axes, suites
from ui import context
from ui.components import format_date, lora_title
from ui.errors import generation_blocked, show_error
from ui.recipe_inputs import recipe_inputs
from ui.text import md

EDITING_KEY = "suite_editing"  # the id of the suite being changed, or NEW
NEW = "new"
LORA_PARAM = "suite_lora"  # a LoRA's page links here to run a suite on it


def suites_tool() -> None:
    """Every suite (they are shared), each with its run; then the form."""
    listed = context.read(suites.list_suites)
    loras = context.read(queries.list_ready_loras)
    if not listed:
        st.caption("No suite yet: make one below.")
    for suite in listed:
        spec = suites.spec_of(suite)
        with st.expander(
            f"{md(suite.name)} · {_count(len(spec.prompts), 'prompt')} × "
            f"{_count(len(spec.seeds), 'seed')}",
            expanded=bool(st.query_params.get(LORA_PARAM)) and suite is listed[0],
        ):
            st.caption(
                f"by {md(suite.user)} · {md(format_date(suite.updated_at))} · "
                f"{md(recipe.describe(spec.recipe))} · seeds "
                f"{', '.join(str(seed) for seed in spec.seeds)}"
                + (" · runs on every new training" if suite.auto_run_since else "")
            )
            st.code("\n".join(spec.prompts), language=None, wrap_lines=True)
            _run(suite, spec, loras)
            _actions(suite)
    _editor(listed)


def _run(suite: Suite, spec: suites.SuiteSpec, loras: list[LoraTraining]) -> None:
    """Pick LoRAs (and the baseline), see the cost, run."""
    names = {lora.id: lora_title(lora) for lora in loras}
    wanted = st.query_params.get(LORA_PARAM)
    picked = st.multiselect(
        "Run on", list(names), default=[wanted] if wanted in names else [],
        format_func=names.get, key=f"suite_loras_{suite.id}", placeholder="Choose LoRAs",
    )  # fmt: skip
    baseline = st.checkbox(
        "With the base model (no LoRA) as a baseline", value=True, key=f"suite_base_{suite.id}"
    )
    second = st.number_input(
        "Also at scale", min_value=0.0, max_value=2.0, value=None, step=0.25,
        placeholder=f"only {spec.recipe.lora_scale:g}", key=f"suite_second_{suite.id}",
        help="Each LoRA at the suite's scale and at this one: which strength works best.",
    )  # fmt: skip
    stacked = _stacked_on_each(suite, names)
    try:
        plan = (
            suites.run_plan(
                spec, lora_ids=picked, baseline=baseline, second_scale=second, stacked=stacked
            )
            if picked
            else None
        )
    except LoraStudioError as error:
        show_error(error)
        return
    status = context.run_quota_status()
    blocked = generation_blocked(status)
    if plan is not None:
        st.caption(f"{axes.cost_text(plan.cells)} of your quota.")
    if st.button(
        "Run the suite", key=f"suite_run_{suite.id}", type="primary", icon=":material/play_arrow:",
        disabled=plan is None or blocked is not None,
    ):  # fmt: skip
        try:
            user = context.current_user()
            if user is None:
                raise NotSignedIn("Sign in to run a suite.")
            sweep_id, _done = context.studio().run_suite(
                user=user, suite_id=suite.id, lora_ids=picked, baseline=baseline,
                second_scale=second, stacked=stacked,
            )  # fmt: skip
        except LoraStudioError as error:
            show_error(error)
            return
        context.forget_run_quota()
        st.query_params.pop(LORA_PARAM, None)
        st.query_params["sweep"] = sweep_id
        st.rerun()


def _stacked_on_each(suite: Suite, names: dict[str, str]) -> StackedLora | None:
    """Optionally, a LoRA stacked on every cell (a house style on subject LoRAs)."""
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    stacked_id = left.selectbox(
        "Stacked on each", list(names), index=None, format_func=names.get,
        key=f"suite_stack_{suite.id}", placeholder="Nothing: each LoRA alone",
    )  # fmt: skip
    scale = right.number_input(
        "Its scale", *SCALE_RANGE, value=1.0, step=0.05, key=f"suite_stack_scale_{suite.id}",
        disabled=stacked_id is None,
    )  # fmt: skip
    return StackedLora(stacked_id, float(scale)) if stacked_id else None


def _actions(suite: Suite) -> None:
    who = context.current_identity()
    if who.user is None:
        return
    with st.container(horizontal=True):
        if (who.is_admin or suite.user == who.user) and st.button(
            "Change", key=f"suite_change_{suite.id}", icon=":material/edit:"
        ):
            st.session_state[EDITING_KEY] = suite.id
            st.rerun()
        if st.button("Copy", key=f"suite_copy_{suite.id}", icon=":material/content_copy:"):
            try:
                copied = suites.copy(engine=context.studio().engine, who=who, suite_id=suite.id)
            except LoraStudioError as error:
                show_error(error)
                return
            st.session_state[EDITING_KEY] = copied
            st.rerun()


def _editor(listed: list[Suite]) -> None:
    """Make a suite, or change the one being changed."""
    who = context.current_identity()
    if who.user is None:
        st.info("Sign in to make a suite.", icon=":material/login:")
        return
    editing = next((s for s in listed if s.id == st.session_state.get(EDITING_KEY)), None)
    st.markdown(f"**Change “{md(editing.name)}”**" if editing else "**New suite**")
    spec = suites.spec_of(editing) if editing else None
    shown = spec.recipe if spec else recipe.PLAN
    target = editing.id if editing else NEW
    with st.form(f"suite_form_{target}", border=True):
        name = st.text_input(
            "Name", value=editing.name if editing else "", max_chars=suites.MAX_NAME_LENGTH,
            placeholder="Portraits, 4 prompts", key=f"suite_name_{target}",
        )  # fmt: skip
        prompts = st.text_area(
            "Prompts, one a line",
            value="\n".join(spec.prompts) if spec else "",
            placeholder="{trigger} portrait of an old fisherman\na lighthouse at dusk",
            help="Write {trigger} where the LoRA's trigger word goes; without it, "
            "“in the style of <trigger word>” is added, as when generating.",
            key=f"suite_prompts_{target}",
            height=140,
        )
        seeds = st.text_input(
            "Seeds", value=", ".join(str(s) for s in spec.seeds) if spec else "7, 8",
            help="A list (7, 8) or a range (1-4); every prompt is run with every seed.",
            key=f"suite_seeds_{target}",
        )  # fmt: skip
        chosen = recipe_inputs(shown, key=lambda part: f"suite_{part}_{target}", with_seed=False)
        auto_run = st.checkbox(
            "Run on every LoRA trained from now on",
            value=bool(editing and editing.auto_run_since),
            key=f"suite_auto_{target}",
            help="When a training completes, this suite runs on the new LoRA and the base "
            "model, under its trainer's quota; make an arena from the run to judge it.",
        )
        saved = st.form_submit_button("Save the suite", type="primary", icon=":material/save:")
    if not saved:
        return
    try:
        suites.save(
            engine=context.studio().engine,
            who=who,
            name=name,
            spec=suites.parse(prompts_text=prompts, seeds_text=seeds, recipe=chosen.recipe()),
            suite_id=editing.id if editing else None,
            auto_run=auto_run,
        )
    except LoraStudioError as error:
        show_error(error)
        return
    st.session_state.pop(EDITING_KEY, None)
    st.toast("Suite saved.", icon=":material/check:")
    st.rerun()


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' if number != 1 else ''}"

"""The Lab's two tools: the X/Y sweep (its form, and a sweep's grid filling in as its cells
finish) and the recipe reader (an image file's recipe, with Remix)."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from lora_core.data import lookups
from lora_core.data.db import session_scope
from lora_core.data.models import BatchStatus, LoraTraining
from lora_core.errors import InvalidSweep, LoraStudioError, NotSignedIn
from lora_core.gallery import queries
from lora_core.generation import quota, recipe, recipe_files, recovery
from lora_core.lab import axes, sweep_files, sweeps
from ui import context, routes
from ui.components import app_base_url, format_date, image_card, lora_title
from ui.errors import generation_blocked, guarded, period_text, report_unexpected, show_error
from ui.generate_dialog import recipe_inputs, remix
from ui.text import md

AXIS_NAMES = {"scale": "LoRA scale", "seed": "Seed", "prompt": "Prompt S/R", "lora": "LoRA"}
NO_Y = "nothing"
EXAMPLES = {"scale": "0, 0.5, 1, 1.5, 2", "seed": "1-4", "prompt": ""}
HINTS = {
    "scale": "A list (0, 0.5, 1) or a range (0-2 step 0.5), each between 0 and 2.",
    "seed": "Whole numbers: a list (1, 2, 3) or a range (1-4).",
    "prompt": "A word of the prompt, then what replaces it: red, blue, green.",
}
RETRY_ERROR_KEY = "sweep_retry_error"
POLL_SECONDS = 1.5  # how often a running sweep's grid is read again


# --- The form ----------------------------------------------------------------------------


def sweep_form() -> None:
    """Pick a LoRA, a prompt and one or two axes; see the cost; start."""
    with session_scope(context.studio().engine) as session:
        loras = queries.list_ready_loras(session=session)
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
    with session_scope(context.studio().engine) as session:
        found = sweeps.recent(session=session)
    if not found:
        return
    st.markdown("**Recent sweeps**")
    for summary in found:
        sweep = summary.sweep
        x, y = sweeps.axes_of(sweep)
        shape = f"{len(x.values)}×{len(y.values)}" if y is not None else f"{len(x.values)}"
        st.page_link(
            routes.LAB,
            label=f"{md(summary.lora_name)} · “{md(sweep.prompt)}” · {shape} · "
            f"by {md(sweep.wallet_address)} · {md(format_date(sweep.created_at))}",
            icon=":material/grid_view:",
            query_params={"sweep": sweep.id},
        )


# --- A sweep's grid ----------------------------------------------------------------------


def show_sweep(sweep_id: str) -> None:
    """The sweep at `?sweep=`: its grid (read again every moment while cells run), and its
    downloads once every cell has ended."""
    if st.button("New sweep", icon=":material/add:", key="sweep_new"):
        del st.query_params["sweep"]
        st.rerun()
    view = _read(sweep_id)
    if view is None:
        st.error("Sweep not found. Its link may be mistyped.", icon=":material/search_off:")
        return
    sweep = view.sweep
    st.subheader(md(view.title), anchor=False)
    st.caption(
        f"by {md(sweep.wallet_address)} · {md(format_date(sweep.created_at))} · "
        f"{md(recipe.describe(sweeps.base_recipe(sweep)))} · "
        f"{md(AXIS_NAMES[view.x.kind])} across"
        + (f", {md(AXIS_NAMES[view.y.kind])} down" if view.y is not None else "")
    )
    if view.running:
        _live_grid(sweep_id)
    else:
        _grid(view)
        _downloads(view)


def _read(sweep_id: str) -> sweeps.SweepView | None:
    """The sweep as it is now; cells a dead process left are settled first (as the
    background recovery would, which may be off: RECOVERY_SWEEP_SECONDS=0)."""
    studio = context.studio()
    with session_scope(studio.engine) as session:
        view = sweeps.sweep_view(session=session, sweep_id=sweep_id)
    if (
        view is not None
        and view.running
        and studio.resume_stale_batches(sweep_id=sweep_id) != (recovery.ResumeReport())
    ):
        with session_scope(studio.engine) as session:
            view = sweeps.sweep_view(session=session, sweep_id=sweep_id)
    return view


@st.fragment(run_every=POLL_SECONDS)
@guarded
def _live_grid(sweep_id: str) -> None:
    """The grid of a running sweep, read again every moment; once no cell runs, the whole
    page once more (the grid stops polling, the downloads appear)."""
    view = _read(sweep_id)
    if view is None:
        return
    if not view.running:
        st.rerun()
    _grid(view)


def _grid(view: sweeps.SweepView) -> None:
    if error := st.session_state.pop(RETRY_ERROR_KEY, None):  # a retry refused, or a bug
        if isinstance(error, LoraStudioError):
            show_error(error)
        else:
            report_unexpected(error, what="a sweep's retry")
    done = view.count(BatchStatus.SUCCEEDED)
    failed = view.count(BatchStatus.FAILED)
    line = f"{done} of {view.size} images" + (f" · {failed} failed" if failed else "")
    if view.running:
        line += " · images appear as they finish; leaving this page stops nothing"
    st.caption(line)
    rows = view.y_labels or ("",)
    with st.container(key="sweep_grid"):
        for row, row_label in enumerate(rows):
            if row_label:
                st.markdown(f"**{md(row_label)}**")
            columns = st.columns(len(view.x_labels), gap="small", wrap=False)
            for column, (place, x_label) in enumerate(zip(columns, view.x_labels, strict=True)):
                with place:
                    _cell(view, view.cells.get((column, row)), x_label, row_label)


def _cell(view: sweeps.SweepView, cell: sweeps.CellView | None, x_label: str, y_label: str) -> None:
    label = " · ".join(part for part in (x_label, y_label) if part)
    if cell is None:
        st.caption(f"{md(label)}: no cell")
        return
    if cell.status == BatchStatus.SUCCEEDED and cell.image is not None and not cell.image.nsfw:
        st.markdown(
            image_card(
                cell.image.image_url,
                caption=label,
                alt=f"Sweep image, {label}: {cell.prompt}",
                thumbnail=cell.image.thumbnail_url,
            ),
            unsafe_allow_html=True,
        )
    elif cell.status == BatchStatus.SUCCEEDED:
        st.caption(f"{md(label)}: hidden by fal's safety filter")
    elif cell.status == BatchStatus.PENDING:
        with st.container(border=True):
            st.caption(f"{md(label)}")
            st.markdown(":material/hourglass_top: Generating…")
    else:
        with st.container(border=True):
            st.caption(f"{md(label)}")
            st.markdown(f":red[:material/error:] {md(cell.error or 'Failed')}")
            if context.current_user() == view.sweep.wallet_address:
                st.button(
                    "Retry", key=f"retry_{cell.batch_id}", icon=":material/refresh:",
                    on_click=_retry, args=(cell.batch_id,),
                )  # fmt: skip


def _retry(batch_id: str) -> None:
    user = context.current_user()
    if user is None:
        return
    try:
        context.studio().retry_cell(user=user, batch_id=batch_id)
    except Exception as error:  # a callback runs outside the page's error boundary
        st.session_state[RETRY_ERROR_KEY] = error
    context.forget_run_quota()


def _downloads(view: sweeps.SweepView) -> None:
    store = context.studio().store
    stem = sweep_files.file_stem(view)
    left, right = st.columns(2)
    left.download_button(
        "Contact sheet (PNG)", data=lambda: sweep_files.sheet(view, store=store),
        file_name=f"{stem}.png", mime="image/png", icon=":material/grid_on:",
        on_click="ignore", key="sweep_sheet", use_container_width=True,
    )  # fmt: skip
    right.download_button(
        "Images and manifest (zip)", data=lambda: sweep_files.archive(view, store=store),
        file_name=f"{stem}.zip", mime="application/zip", icon=":material/folder_zip:",
        on_click="ignore", key="sweep_zip", use_container_width=True,
    )  # fmt: skip
    st.caption("Share this sweep")
    st.code(f"{app_base_url()}/{routes.sweep_url(view.sweep.id)}", language=None, wrap_lines=True)


# --- The recipe reader -------------------------------------------------------------------


def recipe_reader() -> None:
    """Read the recipe a dropped image file carries, with Remix when its LoRA is here."""
    upload = st.file_uploader(
        "An image file", type=["jpg", "jpeg", "png", "webp"], key="recipe_file",
        help="A JPEG from LoRA Studio, or a PNG from AUTOMATIC1111 (its “parameters”).",
        max_upload_size=recipe_files.MAX_FILE_BYTES // 2**20,
    )  # fmt: skip
    if upload is None:
        return
    found = recipe_files.read(upload.getvalue())  # InvalidFile: said by the page's boundary
    if found is None:
        st.info(
            "This image carries no recipe: it was not made by LoRA Studio (or its metadata "
            "was removed, as some sites and chat apps do).",
            icon=":material/help:",
        )
        return
    if found.fields is None:
        st.caption("Written by another tool (e.g. AUTOMATIC1111's “parameters”), as it is:")
        st.text(found.other_text or "")
        if found.cut:
            st.caption(
                f"The first {recipe_files.MAX_TEXT_SHOWN:,} characters are shown; "
                f"{found.cut:,} more are not."
            )
        return
    fields = found.fields
    lora_fields = fields.get("lora") or {}
    made_with = recipe_files.as_recipe(fields)
    st.markdown(f"**{md(str(fields.get('prompt', '')))}**")
    st.caption(
        f"LoRA {md(str(lora_fields.get('name') or lora_fields.get('trigger_word') or '—'))} · "
        f"seed {md(str(fields.get('seed') or '—'))} · "
        + (md(recipe.describe(made_with)) if made_with else "settings unreadable")
        + f" · {md(str(fields.get('created_at', '')))}"
    )
    st.text(f"Sent to fal: {fields.get('full_prompt', '')}")
    with session_scope(context.studio().engine) as session:
        lora = lookups.get_lora(session=session, lora_id=str(lora_fields.get("id") or ""))
    if lora is None or made_with is None:
        st.info(
            "Its LoRA is not in this LoRA Studio, so it cannot be remixed here.",
            icon=":material/link_off:",
        )
    elif st.button(
        f"Remix with {md(lora_title(lora))}", key="remix_file", type="primary",
        icon=":material/tune:",
    ):  # fmt: skip
        _remix(lora, str(fields.get("prompt", "")), made_with)


def _remix(lora: LoraTraining, prompt: str, made_with: recipe.Recipe) -> None:
    remix(lora.id, prompt, made_with)
    routes.open_lora(lora.id)

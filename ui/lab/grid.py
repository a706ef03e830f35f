"""A sweep's grid at `/lab?sweep=<id>`: read again every moment while cells run, a failed
cell's retry, and the downloads once every cell has ended."""

from __future__ import annotations

from html import escape

import streamlit as st

from lora_core.arena import arenas
from lora_core.data.models import BatchStatus
from lora_core.errors import LoraStudioError
from lora_core.gallery import scorecards
from lora_core.generation import recipe, recovery
from lora_core.generation.recipe import NO_LORA
from lora_core.lab import sweep_files, views
from ui import context, routes
from ui.components import app_base_url, format_date, image_card
from ui.errors import guarded, report_unexpected, show_error
from ui.lab import axis_name
from ui.text import html_text, md

RETRY_ERROR_KEY = "sweep_retry_error"
BESIDE_PARAM = "beside"  # another run of the same suite, its columns set beside these
POLL_SECONDS = 1.5  # how often a running sweep's grid is read again


def show_sweep(sweep_id: str) -> None:
    """The sweep at `?sweep=`: its grid (read again every moment while cells run), and its
    downloads once every cell has ended."""
    if st.button("New sweep", icon=":material/add:", key="sweep_new"):
        del st.query_params["sweep"]
        st.query_params.pop(BESIDE_PARAM, None)
        st.rerun()
    view = _read(sweep_id)
    if view is None:
        st.error("Sweep not found. Its link may be mistyped.", icon=":material/search_off:")
        return
    if (other_id := st.query_params.get(BESIDE_PARAM)) and not view.running:
        view = _beside(view, other_id)
    sweep = view.sweep
    st.subheader(md(view.title), anchor=False)
    st.caption(
        f"by {md(sweep.user)} · {md(format_date(sweep.created_at))} · "
        f"{md(recipe.describe(views.base_recipe(sweep)))} · "
        f"{md(axis_name(view.x.kind))} across"
        + (f", {md(axis_name(view.y.kind))} down" if view.y is not None else "")
    )
    if view.running:
        _live_grid(sweep_id)
    else:
        _grid(view)
        if view.beside is None:  # one sweep's downloads and arena, not a pair of runs'
            _downloads(view)
            _arena_action(view)
            _recommend_action(view)
        _beside_picker(view)


def _read(sweep_id: str) -> views.SweepView | None:
    """The sweep as it is now; cells a dead process left are settled first (as the
    background recovery would, which may be off: RECOVERY_SWEEP_SECONDS=0)."""
    studio = context.studio()
    view = context.read(views.sweep_view, sweep_id=sweep_id)
    if (
        view is not None
        and view.running
        and studio.resume_stale_batches(sweep_id=sweep_id) != (recovery.ResumeReport())
    ):
        view = context.read(views.sweep_view, sweep_id=sweep_id)
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


def _grid(view: views.SweepView) -> None:
    done = view.count(BatchStatus.SUCCEEDED)
    failed = view.count(BatchStatus.FAILED)
    line = f"{done} of {view.size} images" + (f" · {failed} failed" if failed else "")
    if view.running:
        line += " · images appear as they finish; leaving this page stops nothing"
    st.caption(line)
    st.html(grid_html(view))
    # Under the grid, over the Retry buttons: where the user who clicked one looks.
    if error := st.session_state.pop(RETRY_ERROR_KEY, None):  # a retry refused, or a bug
        if isinstance(error, LoraStudioError):
            show_error(error)
        else:
            report_unexpected(error, what="a sweep's retry")
    # The author retries from the sweep's own page: beside another run, a failed cell may
    # be that run's, and two cells may share a label.
    if view.beside is None and context.current_user() == view.sweep.user:
        _retry_buttons(view)


def grid_html(view: views.SweepView) -> str:
    """The whole grid as one element of raw HTML (each element is a message and a part the
    browser draws: benchmarks/page_ready.py), its columns side by side at any width. A
    cell's label and error are stored text, escaped here."""
    parts = [
        f'<p class="ls-sweep-row"><strong>{html_text(item)}</strong></p>'
        if isinstance(item, str)
        else _cell_html(*item)
        for item in views.reading_order(view)
    ]
    return (
        f'<div class="ls-sweep" style="--ls-columns: {len(view.x_labels)}">{"".join(parts)}</div>'
    )


def _cell_html(label: str, cell: views.CellView | None) -> str:
    """A cell's image card; or, in its place, a square saying why there is no image."""
    if (
        cell is not None
        and cell.status == BatchStatus.SUCCEEDED
        and cell.image is not None
        and not cell.image.nsfw
    ):
        return image_card(
            cell.image.image_url, caption=label, alt=f"Sweep image, {label}: {cell.prompt}",
            thumbnail=cell.image.thumbnail_url,
            eager=True,  # the grid is drawn to fit one screen
        )  # fmt: skip
    note, css = None, ""
    if cell is None:
        box = "No cell"
    elif cell.status == BatchStatus.SUCCEEDED:
        box = "Hidden by fal's safety filter"
    elif cell.status == BatchStatus.PENDING:
        box = "Generating…"
    else:
        box, note, css = "Failed", cell.error, " ls-cell-failed"
    note_html = f'<div class="ls-meta">{html_text(note)}</div>' if note else ""
    return (
        f'<div class="ls-card"><div class="ls-thumb-empty{css}">{html_text(box)}</div>'
        f'<div class="ls-caption" title="{escape(label)}">{html_text(label)}</div>'
        f"{note_html}</div>"
    )


def _retry_buttons(view: views.SweepView) -> None:
    """A retry for each failed cell, under the grid (the sweep's author's only)."""
    failed = [
        (item[0], item[1].batch_id)
        for item in views.reading_order(view)
        if not isinstance(item, str)
        and item[1] is not None
        and item[1].status == BatchStatus.FAILED
    ]
    if not failed:
        return
    with st.container(horizontal=True):
        for label, batch_id in failed:
            st.button(
                f"Retry {md(label)}", key=f"retry_{batch_id}", icon=":material/refresh:",
                on_click=_retry, args=(batch_id,),
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


def _downloads(view: views.SweepView) -> None:
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
    # Folded: a code block (for its copy button) loads Streamlit's syntax highlighter, about
    # 55 ms of a page's JavaScript (benchmarks/page_ready.py); a popover draws it when opened.
    with st.popover("Share this sweep", icon=":material/share:"):
        st.code(f"{app_base_url()}/{routes.sweep_url(view.sweep.id)}", language=None,
                wrap_lines=True)  # fmt: skip


def _arena_action(view: views.SweepView) -> None:
    """Judge this sweep's images blind: an arena of its pairs (a LoRA or scale axis)."""
    user = context.current_user()
    if user is None:
        return
    if st.button("Judge blind: make an arena", key="sweep_arena", icon=":material/how_to_vote:"):
        try:
            arena_id = arenas.create_arena(
                engine=context.studio().engine,
                user=user,
                # Not the sweep's title, which names its LoRA: the arena's page names none.
                name=f"{view.suite_name or '“' + view.sweep.prompt[:60] + '”'} · "
                f"{format_date(view.sweep.created_at)}",
                sweep_ids=[view.sweep.id],
            )
        except LoraStudioError as error:
            show_error(error)
            return
        routes.open_arena(arena_id)


def _beside(view: views.SweepView, other_id: str) -> views.SweepView:
    """This run with another run's columns beside it (`?beside=`), or this run alone and
    why, when the other cannot be set beside it."""
    other = context.read(views.sweep_view, sweep_id=other_id)
    if other is None or other.sweep.suite_id != view.sweep.suite_id:
        st.warning("That other run is not a run of this suite.", icon=":material/link_off:")
        return view
    if other.running:
        st.info("The other run is still generating: it appears beside this one once done.",
                icon=":material/hourglass_top:")  # fmt: skip
        return view
    try:
        return views.beside(view, other)
    except LoraStudioError as error:
        show_error(error)
        return view


def _beside_picker(view: views.SweepView) -> None:
    """For a suite's run: set another run of the suite beside it (a new training against
    the previous one, on identical prompts and seeds)."""
    if view.sweep.suite_id is None:
        return
    runs = [
        run
        for run in context.read(views.runs_of_suite, suite_id=view.sweep.suite_id)
        if run.sweep.id != view.sweep.id
    ]
    if not runs:
        return
    labels = {
        run.sweep.id: f"{run.lora_name} · {format_date(run.sweep.created_at)}" for run in runs
    }
    current = st.query_params.get(BESIDE_PARAM)
    options = ["", *labels]
    st.selectbox(
        "Beside another run of this suite",
        options,
        index=options.index(current) if current in labels else 0,
        format_func=lambda run_id: labels.get(run_id, "None"),
        key="sweep_beside",
        on_change=_set_beside,
    )


def _set_beside() -> None:
    if chosen := st.session_state.get("sweep_beside"):
        st.query_params[BESIDE_PARAM] = chosen
    else:
        st.query_params.pop(BESIDE_PARAM, None)


def _recommend_action(view: views.SweepView) -> None:
    """A sweep that tried a LoRA at several settings (scale, steps, guidance): its owner
    (or an admin) picks one cell's as the LoRA's recommended settings, which the Generate
    dialog then starts from."""
    tried: dict[str, set[tuple[float, int, float]]] = {}
    for cell in view.cells.values():
        # A stacked cell's settings belong to the combination, not to its LoRA alone.
        if (
            cell.lora_id != NO_LORA
            and cell.status == BatchStatus.SUCCEEDED
            and not cell.recipe.stack
        ):
            made = cell.recipe
            tried.setdefault(cell.lora_id, set()).add((made.lora_scale, made.steps, made.guidance))
    several = [lora_id for lora_id, settings in tried.items() if len(settings) > 1]
    who = context.current_identity()
    if not several or who.user is None:
        return
    for lora_id, name in context.read(scorecards.editable, who=who, lora_ids=several).items():
        with st.container(horizontal=True, vertical_alignment="bottom"):
            chosen = st.selectbox(
                f"Recommended settings for {md(name)}", sorted(tried[lora_id]),
                format_func=lambda settings: scorecards.Recommended(*settings).text(),
                key=f"recommend_{lora_id}", width=320,
            )  # fmt: skip
            if st.button("Recommend", key=f"recommend_set_{lora_id}", icon=":material/thumb_up:"):
                scale, steps, guidance = chosen
                try:
                    scorecards.recommend(
                        engine=context.studio().engine, who=who, lora_id=lora_id, scale=scale,
                        steps=steps, guidance=guidance,
                    )  # fmt: skip
                except LoraStudioError as error:
                    show_error(error)
                    return
                st.toast(
                    f"{md(name)}: the dialog starts at "
                    f"{md(scorecards.Recommended(*chosen).text())}.",
                    icon=":material/check:",
                )

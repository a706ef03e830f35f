"""History: every generation by everyone, filterable (filters live in the URL), summarised,
charted and exportable."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import date

import streamlit as st

from lora_core.arena import ratings
from lora_core.data.models import Verdict
from lora_core.gallery import queries
from lora_core.gallery.scorecards import VERDICT_LABELS
from lora_core.generation import recipe
from lora_core.generation.recipe import NO_LORA, NO_LORA_LABEL, Recipe
from lora_core.history import analytics, listing
from lora_core.history.filters import HistoryFilter, HistoryStatus
from ui import caches, charts, context, history_table, routes
from ui.components import app_base_url, linked_image_grid, summary_html
from ui.generate_dialog import follow_reuse, reuse_prompt
from ui.text import md

PAGE_SIZE = 50
# Each filter widget's key (also its name in the link) and its empty value.
FILTER_DEFAULTS: dict[str, object] = {
    "lora": [],
    "status": [],
    "user": "",
    "q": "",
    "from": None,
    "to": None,
    "starred": False,
    "scale": [],
    "verdict": None,
    "tag": "",
    "used": [],
}

follow_reuse()
st.set_page_config(page_title="History · LoRA Studio")
st.title("History")
st.caption(
    "Every generation by everyone, newest first or by a column's header. "
    "Filters and order are kept in the link."
)


def active_filters() -> int:
    """How many filters are set: the widgets' values, or the link's before the widgets
    have read it (they keep the link in step with them afterwards)."""
    return sum(
        1
        for key in FILTER_DEFAULTS
        if (st.session_state[key] if key in st.session_state else st.query_params.get(key))
    )


def clear_filters() -> None:
    for key, empty in FILTER_DEFAULTS.items():
        st.session_state[key] = list(empty) if isinstance(empty, list) else empty


def read_filters(
    lora_names: Callable[[], dict[str, str]], scales: Callable[[], list[float]]
) -> HistoryFilter:
    """Filter widgets bound to the URL's query parameters, so a view can be shared; folded
    away (the table first, on a phone too) and saying how many are set. Drawn while open or
    while a filter is set (a widget not drawn in a run loses its value).

    A bound multiselect keeps its labels in the link (`?lora=alpha`), hence unique labels.
    The LoRAs' names and the scales in use are read only when the widgets are drawn.
    """
    count = active_filters()
    label = f"Filters · {count} active" if count else "Filters"
    box = st.expander(
        label, icon=":material/filter_list:", key="history_filters", on_change="rerun"
    )
    if not (box.open or count):
        # Folded, nothing set: its eleven widgets are drawn once it is opened (a browser
        # takes a few ms for each element: benchmarks/page_ready.py).
        return HistoryFilter()
    with box:
        history_filter = _filter_widgets(lora_names(), scales())
        st.button(
            "Clear filters", key="clear_filters", icon=":material/filter_alt_off:",
            on_click=clear_filters, disabled=not count,
        )  # fmt: skip
    return history_filter


def _filter_widgets(lora_names: dict[str, str], scales: list[float]) -> HistoryFilter:
    labels = queries.unique_labels(lora_names)
    first, second, third = st.columns([2, 1, 1])
    lora_ids = first.multiselect(
        "LoRA", list(labels), format_func=labels.get, key="lora", bind="query-params"
    )
    statuses = second.multiselect(
        "Status", [status.value for status in HistoryStatus], key="status", bind="query-params"
    )
    user = third.text_input("User", key="user", bind="query-params")
    fourth, fifth, sixth = st.columns([2, 1, 1])
    prompt = fourth.text_input("Prompt contains", key="q", bind="query-params")
    date_from = fifth.date_input("From", value=None, key="from", bind="query-params")
    date_to = sixth.date_input("To", value=None, key="to", bind="query-params")
    seventh, eighth, ninth = st.columns([2, 1, 1])
    chosen_scales = seventh.multiselect(
        "LoRA scale", scales, format_func=lambda scale: f"{scale:g}", key="scale",
        bind="query-params", placeholder="Any scale",
    )  # fmt: skip
    verdict = eighth.selectbox(
        "LoRA's verdict", list(Verdict), index=None, format_func=VERDICT_LABELS.get,
        key="verdict", bind="query-params", placeholder="Any verdict",
    )  # fmt: skip
    tag = ninth.text_input("LoRA's tag", key="tag", bind="query-params", placeholder="Any tag")
    used = st.multiselect(
        "Used LoRA", list(labels), format_func=labels.get, key="used", bind="query-params",
        placeholder="Any LoRA, first or stacked",
        help="Generations made with it: as their LoRA, or stacked on another.",
    )  # fmt: skip
    me = context.current_user()
    starred = me is not None and st.checkbox(
        "Only generations with an image I starred", key="starred", bind="query-params"
    )
    return HistoryFilter(
        lora_ids=tuple(lora_ids),
        user=user.strip() or None,
        date_from=date_from if isinstance(date_from, date) else None,
        date_to=date_to if isinstance(date_to, date) else None,
        statuses=tuple(HistoryStatus(value) for value in statuses),
        prompt_contains=prompt.strip() or None,
        starred_by=me if starred else None,
        lora_scales=tuple(chosen_scales),
        verdict=Verdict(verdict) if verdict else None,
        tag=tag.strip().lower() or None,
        used_lora_ids=tuple(used),
    )


def show_summary(summary: analytics.HistorySummary, price: float) -> None:
    """Eight figures in one compact row that wraps (two short rows on a phone), drawn as one
    element (`ui.components.summary_html`)."""
    median = "—" if summary.median_seconds is None else f"{summary.median_seconds:.1f} s"
    figures = (
        ("Batches", f"{summary.batches:,}"),
        ("Images", f"{summary.images:,}"),
        ("Users", f"{summary.users:,}"),
        ("LoRAs", f"{summary.loras:,}"),
        ("Failed", f"{summary.failure_rate:.0%}"),
        ("Safety-filtered", f"{summary.safety_filter_rate:.0%}"),
        ("Median time", median),
        ("Est. spend", charts.money(summary.megapixels, price)),
    )
    st.html(summary_html(figures))


def show_table(page: queries.Page[listing.HistoryRow], order: listing.HistoryOrder) -> None:
    query = {key: st.query_params.get_all(key) for key in st.query_params}
    st.html(history_table.table_html(page.items, order=order, query=query))
    st.caption("Open a row's time for its whole prompt and recipe, and to reuse the prompt.")


def close_details() -> None:
    st.query_params.pop(history_table.DETAILS_PARAM, None)


@st.dialog("Generation", width="large", on_dismiss=close_details)
def details_dialog(batch_id: str) -> None:
    """One generation of the table (`?batch=…`, a row's link): its whole prompt as stored
    (with a copy button), what it was made with, and Reuse prompt."""
    row = context.read(listing.find_batch, batch_id=batch_id)
    if row is None:
        st.warning(
            "No generation has this id: the link may be wrong, or the generation was removed.",
            icon=":material/search_off:",
        )
        return
    label = history_table.lora_label(row)
    st.markdown(f"**{md(label)}** · {md(row.user)} · {history_table.when(row)} UTC")
    st.code(row.prompt, language=None, wrap_lines=True)
    duration = "" if row.duration_seconds is None else f" · {row.duration_seconds:.1f} s"
    shown = f"{row.images_shown:,} image{'' if row.images_shown == 1 else 's'} shown"
    st.caption(f"{md(row.status.value.capitalize())} · {shown}{duration}")
    made_with = Recipe(lora_scale=row.lora_scale, steps=row.steps, guidance=row.guidance,
                       image_size=row.image_size)  # fmt: skip
    st.caption(f"{md(recipe.describe(made_with))} · seed {md(row.seed or '—')}")
    if row.stacked_with:
        st.caption(f"Stacked with {md(row.stacked_with)}")
    images = context.read(listing.batch_images, batch_id=row.batch_id)
    if images and row.lora_id != NO_LORA:  # each a link to it large, over its LoRA's page
        linked_image_grid(images, columns=4, with_captions=False, lora_name=label)
    with st.container(horizontal=True):
        if row.lora_id != NO_LORA:
            if st.button(f"Reuse prompt on {md(label)}", key="reuse_prompt",
                         icon=":material/replay:", type="primary"):  # fmt: skip
                reuse_prompt(row.lora_id, row.prompt)
                st.rerun()  # the whole page, which goes to the LoRA's page
            st.page_link(routes.LORA, query_params={"id": row.lora_id},
                         label="Open its LoRA", icon=":material/brush:")  # fmt: skip
        if row.sweep_id:
            st.page_link(routes.LAB, query_params={"sweep": row.sweep_id},
                         label="Open its sweep", icon=":material/grid_view:")  # fmt: skip


def read_order() -> listing.HistoryOrder:
    """The table's order from the link (`?sort=-duration`); newest first when it names no
    column, saying so."""
    text = st.query_params.get(history_table.SORT_PARAM)
    order = listing.HistoryOrder.from_param(text)
    if order is None:
        st.warning(
            f"This link sorts by “{md(text)}”, which is not a column: newest first instead.",
            icon=":material/sort:",
        )
        return listing.HistoryOrder()
    return order


def show_exports(history_filter: HistoryFilter, order: listing.HistoryOrder) -> None:
    frame = context.read_later(
        listing.export_frame, history_filter=history_filter, order=order, base_url=app_base_url()
    )

    # Folded in a menu: three buttons a browser would draw on every visit for a rare click.
    menu = st.popover("Download", icon=":material/download:")
    for label, to_bytes, suffix, mime in (
        ("Download CSV", listing.to_csv_bytes, "csv", "text/csv"),
        ("Download Parquet", listing.to_parquet_bytes, "parquet", "application/vnd.apache.parquet"),
    ):
        menu.download_button(
            label,
            data=lambda to_bytes=to_bytes: to_bytes(frame()),
            file_name=f"lora-studio-history.{suffix}",
            mime=mime,
            icon=":material/download:",
            on_click="ignore",
        )
    # For analysts: every blind vote of every arena (read when asked for).
    votes = context.read_later(ratings.votes_export, arena_id=None)
    menu.download_button(
        "Blind votes (CSV)",
        data=lambda: listing.to_csv_bytes(votes()),
        file_name="lora-studio-votes.csv",
        mime="text/csv",
        icon=":material/how_to_vote:",
        on_click="ignore",
        key="history_votes",
    )


context.studio().prepare_history()  # the original app's images too, when nobody sweeps
# The base model (a sweep's baseline cells) is one more "LoRA" to filter and chart by.
names = functools.cache(
    lambda: {**context.read(queries.lora_names), NO_LORA: NO_LORA_LABEL}
)  # read once a run, and only when the filters or the charts are drawn
# With the user's stars, for the "I starred" filter (a star rarely changes).
version = context.read(analytics.data_version, starred_by=context.current_user())
history_filter = read_filters(names, lambda: caches.lora_scales(version))
order = read_order()
if st.session_state.get("history_view") != (history_filter, order):
    st.session_state["history_view"] = (history_filter, order)
    st.session_state.pop("history_page", None)  # a new filter or order starts on page one
if batch_id := st.query_params.get(history_table.DETAILS_PARAM):
    details_dialog(batch_id)
if (
    history_filter.date_from
    and history_filter.date_to
    and history_filter.date_from > history_filter.date_to
):
    st.warning("“From” is after “To”: no day is in that range.", icon=":material/event:")
price = context.get_settings().fal_price_per_megapixel
summary = caches.history_summary(history_filter, version)
if summary.batches == 0:
    if history_filter == HistoryFilter():  # nothing to summarise: no row of zeros
        st.info(
            "No generations yet. Open a LoRA in the gallery and generate its first images; "
            "every generation then shows here.",
            icon=":material/history:",
        )
        st.page_link(routes.GALLERY, label="Go to the gallery", icon=":material/photo_library:")
    else:
        st.info("No generations match these filters.", icon=":material/filter_alt_off:")
        st.button(
            "Clear filters", key="clear_filters_empty", icon=":material/filter_alt_off:",
            on_click=clear_filters,
        )  # fmt: skip
    st.stop()
show_summary(summary, price)
charts.show_history_charts(
    lambda: caches.history_charts(history_filter, names(), version, price), price
)
rows = context.read(
    listing.list_batches,
    history_filter=history_filter,
    order=order,
    page=int(st.session_state.get("history_page", 1)),
    page_size=PAGE_SIZE,
    total=summary.batches,
)
show_table(rows, order)
if rows.page_count > 1:
    st.pagination(rows.page_count, key="history_page", default=rows.page)
show_exports(history_filter, order)

"""History: every generation by everyone, filterable (filters live in the URL), summarised,
charted and exportable."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import date

import pandas as pd
import streamlit as st

from lora_core.arena import ratings
from lora_core.data.models import Verdict
from lora_core.gallery import queries
from lora_core.gallery.scorecards import VERDICT_LABELS
from lora_core.generation.recipe import NO_LORA, NO_LORA_LABEL
from lora_core.history import analytics, listing
from lora_core.history.filters import HistoryFilter, HistoryStatus
from ui import caches, charts, context, routes
from ui.components import app_base_url
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
st.caption("Every generation by everyone, newest first. Filters are kept in the link.")


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
    """Seven figures in one compact row that wraps (two short rows on a phone)."""
    median = "—" if summary.median_seconds is None else f"{summary.median_seconds:.1f} s"
    with st.container(horizontal=True, gap="medium", key="history_summary"):
        for label, value in (
            ("Batches", f"{summary.batches:,}"),
            ("Images", f"{summary.images:,}"),
            ("Users", f"{summary.users:,}"),
            ("LoRAs", f"{summary.loras:,}"),
            ("Failed", f"{summary.failure_rate:.0%}"),
            ("Safety-filtered", f"{summary.safety_filter_rate:.0%}"),
            ("Median time", median),
            ("Est. spend", charts.money(summary.megapixels, price)),
        ):
            st.metric(label, value, width="content")


def lora_label(row: listing.HistoryRow) -> str:
    if row.lora_id == NO_LORA:
        return NO_LORA_LABEL
    return row.trigger_word or row.lora_id


def table_frame(rows: list[listing.HistoryRow]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "time": [row.created_at for row in rows],
            "user": [row.user for row in rows],
            "lora": [lora_label(row) for row in rows],
            "page": [
                routes.lora_url(row.lora_id) if row.lora_id != NO_LORA else None for row in rows
            ],
            "sweep": [routes.sweep_url(row.sweep_id) if row.sweep_id else None for row in rows],
            "prompt": [row.prompt for row in rows],
            "images": [row.images_shown for row in rows],
            "status": [row.status.value for row in rows],
            "seconds": pd.Series([row.duration_seconds for row in rows], dtype="Float64"),
            "thumbnail": pd.Series([row.thumbnail_url for row in rows], dtype="string"),
            "scale": [row.lora_scale for row in rows],
            "steps": [row.steps for row in rows],
            "guidance": [row.guidance for row in rows],
            "size": [row.image_size for row in rows],
            "seed": pd.Series([row.seed for row in rows], dtype="string"),
            "stacked": [row.stacked_with for row in rows],
        }
    )


def show_table(page: queries.Page[listing.HistoryRow]) -> None:
    selection = st.dataframe(
        table_frame(page.items),
        hide_index=True,
        key="history_table",
        on_select="rerun",
        selection_mode="single-row",
        column_order=[
            "thumbnail",
            "time",
            "user",
            "lora",
            "prompt",
            "images",
            "status",
            "seconds",
            "scale",
            "stacked",
            "steps",
            "guidance",
            "size",
            "seed",
            "sweep",
            "page",
        ],
        column_config={
            "time": st.column_config.DatetimeColumn("Time (UTC)", format="YYYY-MM-DD HH:mm"),
            "user": "User",
            "lora": "LoRA",
            "page": st.column_config.LinkColumn("Open", display_text="Open ↗", width="small"),
            "sweep": st.column_config.LinkColumn(
                "Sweep",
                display_text="Sweep ↗",
                width="small",
                help="A cell of an X/Y sweep: open the whole grid in the Lab.",
            ),
            "prompt": st.column_config.TextColumn("Prompt", width="large"),
            "images": st.column_config.NumberColumn(
                "Images",
                width="small",
                help="Images shown: those fal's safety checker flagged are hidden.",
            ),
            "status": "Status",
            "seconds": st.column_config.NumberColumn("Duration", format="%.1f s"),
            "thumbnail": st.column_config.ImageColumn("Preview", width="small"),
            "scale": st.column_config.NumberColumn("Scale", format="%g"),
            "stacked": st.column_config.TextColumn(
                "Stacked with", help="LoRAs added to the first, each at its scale."
            ),
            "steps": st.column_config.NumberColumn("Steps"),
            "guidance": st.column_config.NumberColumn("Guidance", format="%g"),
            "size": "Size",
            "seed": "Seed",
        },
    )
    # A selection outlives a change of filter or page: ignore one that points past the rows.
    rows = selection.selection.rows if selection else []
    chosen = [index for index in rows if index < len(page.items)]
    if chosen:
        row = page.items[chosen[0]]
        # The whole prompt, which the table cuts off, as stored.
        st.markdown(f"**Prompt** · {md(lora_label(row))} · {md(row.user)}")
        st.text(row.prompt)
        if row.lora_id != NO_LORA:
            st.button(
                f"Reuse prompt on {md(row.trigger_word or row.lora_id)}",
                key="reuse_prompt",
                icon=":material/replay:",
                on_click=reuse_prompt,
                args=(row.lora_id, row.prompt),
            )
    else:
        st.caption("Select a row to read its whole prompt and reuse it.")


def show_exports(history_filter: HistoryFilter) -> None:
    frame = context.read_later(
        listing.export_frame, history_filter=history_filter, base_url=app_base_url()
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
if st.session_state.get("history_filter") != history_filter:
    st.session_state["history_filter"] = history_filter
    st.session_state.pop("history_page", None)  # a new filter starts on its first page
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
    page=int(st.session_state.get("history_page", 1)),
    page_size=PAGE_SIZE,
    total=summary.batches,
)
show_table(rows)
if rows.page_count > 1:
    st.pagination(rows.page_count, key="history_page", default=rows.page)
show_exports(history_filter)

"""Search (`/search`): every LoRA's images by prompt words and filters, the whole search in
the link; saved searches shared with the team."""

from __future__ import annotations

from datetime import date

import streamlit as st

from lora_core.errors import LoraStudioError
from lora_core.gallery import queries
from lora_core.generation.recipe import IMAGE_SIZES, SCALE_RANGE, STEPS_RANGE
from lora_core.search import saved
from lora_core.search.query import COUNT_CAP, PAGE_SIZE, Sort, Starred, from_params, search
from ui import context, picking, routes
from ui.components import image_grid, linked_image_grid
from ui.errors import show_error
from ui.text import md

PAGE_KEY = "search_page"
SAVED_PARAM = "saved"  # the saved search a link opens
# The link's parameters that are filters (the words and the order are not).
FILTERS = ("lora", "user", "seed", "from", "to", "smin", "smax", "size", "steps", "stacked",
           "starred", "sweep", "hidden", "flagged")  # fmt: skip

st.set_page_config(page_title="Search · LoRA Studio")
st.title("Search")
st.caption(
    'Every LoRA\'s images by the words of their prompts (any order; "a phrase" in quotes) '
    "and filters. The link keeps the whole search: share it or bookmark it."
)


def read_search(labels: dict[str, str]) -> dict[str, list[str]]:
    """The search box and filters, bound to the link; their values as the link holds them
    (LoRAs by label)."""
    who = context.current_identity()
    text = st.text_input(
        "Search prompts", key="q", bind="query-params", placeholder='red fox "in the snow"',
        icon=":material/search:",
    )  # fmt: skip
    names = list(labels.values())
    active = sum(1 for key in FILTERS if st.query_params.get_all(key))
    label = f"Filters · {active} active" if active else "Filters"
    with st.expander(label, icon=":material/filter_list:", key="search_filters"):
        first, second, third = st.columns([2, 1, 1])
        loras = first.multiselect("LoRA (first or stacked)", names, key="lora", bind="query-params")
        user = second.text_input("User", key="user", bind="query-params")
        seed = third.text_input("Seed", key="seed", bind="query-params")
        fourth, fifth, sixth, seventh = st.columns(4)
        date_from = fourth.date_input("From", value=None, key="from", bind="query-params")
        date_to = fifth.date_input("To", value=None, key="to", bind="query-params")
        smin = sixth.number_input(
            "Scale from", *SCALE_RANGE, value=None, step=0.05, key="smin", bind="query-params"
        )
        smax = seventh.number_input(
            "Scale to", *SCALE_RANGE, value=None, step=0.05, key="smax", bind="query-params"
        )
        eighth, ninth, tenth = st.columns([1, 1, 2])
        size = eighth.selectbox(
            "Size", list(IMAGE_SIZES), index=None, key="size", bind="query-params",
            placeholder="Any size",
        )  # fmt: skip
        steps = ninth.number_input(
            "Steps", *STEPS_RANGE, value=None, step=1, key="steps", bind="query-params"
        )
        stacked = tenth.multiselect(
            "With a LoRA stacked", names, key="stacked", bind="query-params",
            placeholder="Any, or none",
        )  # fmt: skip
        starred = st.segmented_control(
            "Starred", [Starred.ANYONE.value, Starred.MINE.value], key="starred",
            bind="query-params",
            format_func={"anyone": "by anyone", "mine": "by me"}.get,
        )  # fmt: skip
        in_sweep = st.checkbox("Only cells of sweeps and suite runs", key="sweep",
                               bind="query-params")  # fmt: skip
        hidden = flagged = False
        if who.is_admin:
            hidden = st.checkbox("With hidden images", key="hidden", bind="query-params")
            flagged = st.checkbox("With images fal's safety checker flagged", key="flagged",
                                  bind="query-params")  # fmt: skip
    sort = st.segmented_control(
        "Order", [Sort.NEWEST.value, Sort.STARS.value], key="sort", bind="query-params",
        default=Sort.NEWEST.value,
        format_func={"newest": "Newest first", "stars": "Most starred first"}.get,
    )  # fmt: skip
    values = {
        "q": text, "lora": loras, "user": user, "seed": seed, "from": date_from, "to": date_to,
        "smin": smin, "smax": smax, "size": size, "steps": steps, "stacked": stacked,
        "starred": starred, "sweep": in_sweep, "hidden": hidden, "flagged": flagged,
        "sort": sort,
    }  # fmt: skip
    return {key: _as_params(value) for key, value in values.items()}


def _as_params(value: object) -> list[str]:
    """A widget's value as the link's list of strings ([] for nothing)."""
    if value is None or value is False or value == "":
        return []
    if isinstance(value, list):
        return [str(item) for item in value]
    if value is True:
        return ["true"]
    if isinstance(value, date):
        return [value.isoformat()]
    return [f"{value:g}" if isinstance(value, float) else str(value)]


def show_saved(params: dict[str, list[str]], lora_ids: dict[str, str]) -> None:
    """Save this search under a name; the team's saved searches, what is new in each."""
    who = context.current_identity()
    with st.container(horizontal=True, vertical_alignment="bottom"):
        if who.user is not None:
            with st.popover("Save this search", icon=":material/bookmark_add:"):
                name = st.text_input("Name", key="saved_name", max_chars=saved.MAX_NAME)
                if st.button("Save", key="saved_save", type="primary"):
                    try:
                        saved.save(engine=context.studio().engine, who=who, name=name,
                                   params=params)  # fmt: skip
                    except LoraStudioError as error:
                        show_error(error)
                    else:
                        st.toast("Saved: the team finds it under Saved searches.",
                                 icon=":material/bookmark:")  # fmt: skip
        listing = st.toggle("Saved searches", key="saved_list")
    if not listing:
        return
    views = context.read(saved.listed, who=who, lora_ids=lora_ids)
    if not views:
        st.caption("No saved search yet.")
    for view in views:
        new = "" if view.new is None else f" · {view.new:,} new since you last looked"
        st.page_link(
            routes.SEARCH, label=f"{md(view.search.name)} · by {md(view.search.user)}{new}",
            query_params={**view.params, SAVED_PARAM: view.search.id},
            icon=":material/bookmark:",
        )  # fmt: skip


def note_opened() -> None:
    """A saved search's link was followed: its new images count from now for this user."""
    if search_id := st.query_params.get(SAVED_PARAM):
        saved.opened(
            engine=context.studio().engine, who=context.current_identity(), search_id=search_id
        )
        del st.query_params[SAVED_PARAM]


context.studio().prepare_search()
note_opened()
labels = queries.unique_labels(context.read(queries.lora_names))
lora_ids = {label: lora_id for lora_id, label in labels.items()}
params = read_search(labels)
try:
    query = from_params(params, lora_ids=lora_ids)
except LoraStudioError as error:
    show_error(error)
    st.stop()
show_saved(params, lora_ids)
page_number = int(st.session_state.get(PAGE_KEY, 1))
try:
    found = context.read(
        search, query=query, who=context.current_identity(), page=page_number, page_size=PAGE_SIZE
    )
except LoraStudioError as error:
    show_error(error)
    st.stop()
if found.total > COUNT_CAP:  # counted, and paged, no further
    st.caption(f"{COUNT_CAP:,}+ images. The pages go as far as the first {COUNT_CAP:,}: "
               "add a word or a filter to reach the rest.")  # fmt: skip
else:
    st.caption(f"{found.total:,} image{'s' if found.total != 1 else ''}")
if not found.items:
    st.info("No image matches this search. Fewer words or filters find more.",
            icon=":material/image_search:")  # fmt: skip
    st.stop()
choosing = picking.selecting("search")
if choosing:
    picking.selection_bar("search", found.items)
with st.container(key="search_results"):
    if choosing:
        image_grid(
            found.items,
            columns=4,
            on_open=lambda image: routes.open_image(image.lora_training_id, image.id),
            key="search",
            picking="search",
        )
    else:  # each image a link to its details on its LoRA's page
        linked_image_grid(found.items, columns=4)
if found.page_count > 1:
    st.pagination(found.page_count, key=PAGE_KEY, default=found.page)

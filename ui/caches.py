"""The pages' cached reads: what is costly to compute and the same for every visitor until
the data changes, kept per process by `st.cache_data`.

They live here, not in the pages, because a page's script runs again on every rerun: a
cached function defined there is built again each time, and building one reads and
tokenizes its source to name its cache (py-spy: about 1 % of a LoRA page's server time
per cache). Defined in a module, each is built once per process.

Every parameter keys its cache: none may start with an underscore, which Streamlit leaves
out of the key (`tests/ui/test_context.py` checks)."""

from __future__ import annotations

import streamlit as st

from lora_core.arena import ratings, voting
from lora_core.gallery import queries
from lora_core.history import analytics, listing
from lora_core.history.filters import HistoryFilter
from ui import charts, context


@st.cache_data(ttl=60, max_entries=256, show_spinner=False)
def lora_image_count(lora_id: str, key: tuple[object, ...]) -> int:
    """A LoRA's image count. Counting 100,000 images takes longer than the rest of its page:
    counted once per `queries.image_count_key` (newest image, hidden count), so never stale
    after a generation or a hide in any process. An image written with a time older than
    the newest (another app's clock) is counted within the minute the entry lives."""
    return context.read(queries.count_lora_images, lora_id=lora_id)


@st.cache_data(ttl=600, max_entries=64, show_spinner=False)
def history_summary(
    history_filter: HistoryFilter, version: tuple[object, ...]
) -> analytics.HistorySummary:
    """History's totals above its table scan the whole filtered set: computed once per
    filter and data version (which changes with every batch added, started or finished),
    not on every rerun such as selecting a row or turning a page."""
    return context.read(analytics.summarize, history_filter=history_filter)


@st.cache_data(ttl=600, max_entries=64, show_spinner=False)
def history_charts(
    history_filter: HistoryFilter,
    labels: dict[str, str],
    version: tuple[object, ...],
    price: float,
) -> list[charts.Chart]:
    """History's charts' data (six more scans, the spend ones the costliest: 86 of 101 ms
    at 100,000 images), built with their rows serialised: only once the charts are
    unfolded, then once per filter and data version, as `history_summary`."""
    overview = context.read(analytics.overview, history_filter=history_filter, lora_labels=labels)
    return charts.history_charts(overview, price)


@st.cache_data(ttl=600, max_entries=16, show_spinner=False)
def lora_scales(version: tuple[object, ...]) -> list[float]:
    """The LoRA scales in use, for History's filter (a scan of every batch): once per data
    version."""
    return context.read(listing.lora_scales)


@st.cache_data(ttl=600, max_entries=32, show_spinner=False)
def leaderboard(arena_id: str | None, version: tuple[object, ...]) -> ratings.Leaderboard:
    """The bootstrap refits the model a few hundred times: once per arena and set of votes
    (`version` changes with every vote), not on every rerun."""
    return context.read(ratings.leaderboard, arena_id=arena_id)


@st.cache_data(max_entries=64, show_spinner=False)
def anonymous_image(image_id: str) -> bytes:
    """An arena image's pixels, once per process (re-encoding is the slow part)."""
    return context.read(voting.anonymous_image, store=context.studio().store, image_id=image_id)

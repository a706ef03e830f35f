"""A LoRA's standing in the blind arenas, on its page: each arm of it (a scale, a setting)
with its rating, interval, rank and record across every arena."""

from __future__ import annotations

import math

import streamlit as st

from lora_core.arena import ratings
from ui import context, routes
from ui.text import md


@st.cache_data(ttl=60, max_entries=1, show_spinner=False)
def every_arena() -> dict[str, list[ratings.Standing]]:
    """Every LoRA's standings on the leaderboard of every arena, at most a minute old: a
    LoRA's page shows its standing without a statement of its own per view (the bootstrap
    refits the model many times), and copies out its own few lines, not the whole board
    (a cached value is copied on every read: the board's tables were a tenth of the page's
    server time)."""
    board = context.read(ratings.leaderboard, arena_id=None)
    lora_ids = board.standings["lora_id"].unique() if len(board.standings) else []
    return {str(lora_id): ratings.standings_of(board, lora_id) for lora_id in lora_ids}


def show_standing(lora_id: str) -> None:
    """One line per arm of this LoRA that was voted on; nothing when none was."""
    standings = every_arena().get(lora_id, [])
    for standing in standings[:3]:
        interval = "" if math.isnan(standing.low) else f" ({standing.low:.0f}–{standing.high:.0f})"
        arenas = f"in {standing.arenas} arena{'s' if standing.arenas != 1 else ''}"
        st.caption(
            f":material/leaderboard: Blind arenas: **{md(standing.arm)}** rated "
            f"{standing.rating:.0f}{interval}, #{standing.rank} of {standing.of} · "
            f"{standing.wins} wins, {standing.ties} ties, {standing.losses} losses · {arenas}"
            + (" · few votes" if standing.few_votes else "")
        )
    if standings:
        st.page_link(routes.LEADERBOARD, label="Leaderboard", icon=":material/leaderboard:")

"""The leaderboard (`?id=<arena id>`, or every arena without one): Bradley–Terry ratings
with 95 % intervals, win/tie/loss counts, head-to-head, per prompt, and the votes to
download."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lora_core.arena import arenas, ratings
from lora_core.errors import LoraStudioError
from lora_core.gallery import scorecards
from lora_core.history import listing
from ui import caches, context, routes
from ui.errors import show_error
from ui.text import md


def show_standings(board: ratings.Leaderboard) -> None:
    table = board.standings.assign(
        interval=[
            # A bootstrap of unanimous votes has no spread: no interval, not a certain one.
            "—" if pd.isna(low) or high - low < 1 else f"{low:.0f}–{high:.0f}"
            for low, high in zip(board.standings["low"], board.standings["high"], strict=True)
        ],
        note=["few votes" if few else "" for few in board.standings["few_votes"]],
    )[["rank", "arm", "rating", "interval", "wins", "ties", "losses", "both_bad", "votes", "note"]]
    st.dataframe(
        table,
        hide_index=True,
        key="standings",
        column_config={
            "rank": st.column_config.NumberColumn("Rank", width="small"),
            "wins": st.column_config.NumberColumn("Wins"),
            "ties": st.column_config.NumberColumn("Ties"),
            "losses": st.column_config.NumberColumn("Losses"),
            "votes": st.column_config.NumberColumn("Votes"),
            "arm": st.column_config.TextColumn("LoRA and settings"),
            "rating": st.column_config.NumberColumn("Rating", format="%.0f"),
            "interval": st.column_config.TextColumn("95 % interval"),
            "both_bad": st.column_config.NumberColumn("Both bad"),
            "note": st.column_config.TextColumn("", help=f"Fewer than {ratings.FEW_VOTES} votes"),
        },
    )


def recommend_best_scales(board: ratings.Leaderboard) -> None:
    """For a LoRA judged at several scales, its owner (or an admin) makes the best-rated
    one its recommended scale in one click: the Generate dialog then starts from it."""
    best = ratings.best_scales(board)
    who = context.current_identity()
    if not best or who.user is None:
        return
    for lora_id, name in context.read(scorecards.editable, who=who, lora_ids=list(best)).items():
        scale = best[lora_id]
        if st.button(
            f"Recommend scale {scale:g} for {md(name)} (rated best here)",
            key=f"recommend_best_{lora_id}", icon=":material/thumb_up:",
        ):  # fmt: skip
            try:
                scorecards.recommend(
                    engine=context.studio().engine, who=who, lora_id=lora_id, scale=scale
                )
            except LoraStudioError as error:
                show_error(error)
                continue
            st.toast(f"{md(name)}: the dialog starts at scale {scale:g}.", icon=":material/check:")


def shares_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Shares as "88 %", blank where there is none (an arm against itself, never met)."""
    return frame.apply(lambda column: column.map(lambda v: "" if pd.isna(v) else f"{v:.0%}"))


def show_matrices(board: ratings.Leaderboard) -> None:
    head, prompts = st.tabs(["Head to head", "Per prompt"])
    head.caption("How often the row's arm beat the column's (a tie counts half); blank: never met.")
    head.dataframe(shares_text(board.head_to_head), key="head_to_head")
    prompts.caption("Each arm's share of the votes it won, prompt by prompt.")
    prompts.dataframe(shares_text(board.per_prompt), key="per_prompt")


def show_downloads(arena_id: str | None, stem: str) -> None:
    """The votes for analysts, read and written only when a button is pressed."""
    votes = context.read_later(ratings.votes_export, arena_id=arena_id)
    with st.container(horizontal=True):
        for label, to_bytes, suffix, mime in (
            ("Votes (CSV)", listing.to_csv_bytes, "csv", "text/csv"),
            ("Votes (Parquet)", listing.to_parquet_bytes, "parquet",
             "application/vnd.apache.parquet"),
        ):  # fmt: skip
            st.download_button(
                label, data=lambda to_bytes=to_bytes: to_bytes(votes()),
                file_name=f"{stem}-votes.{suffix}", mime=mime, icon=":material/download:",
                on_click="ignore", key=f"votes_{suffix}",
            )  # fmt: skip


arena_id = st.query_params.get("id") or None
arena = context.read(arenas.get_arena, arena_id=arena_id) if arena_id else None
if arena_id and arena is None:
    st.error("Arena not found. Its link may be mistyped.", icon=":material/search_off:")
    st.stop()
st.title("Leaderboard", anchor=False)
st.subheader(md(arena.name) if arena else "Every arena", anchor=False)
st.caption(
    "Bradley–Terry ratings from blind votes on the Elo scale (1000 is the average arm), with "
    "95 % intervals from a bootstrap over votes. "
    + ("" if arena else "Across arenas, an arm is a LoRA at its settings, wherever it stood.")
)
with st.container(horizontal=True):
    if arena:
        st.page_link(routes.ARENA, label="Vote in this arena", icon=":material/how_to_vote:",
                     query_params={"id": arena.id})  # fmt: skip
        st.page_link(routes.LEADERBOARD, label="Every arena", icon=":material/leaderboard:",
                     query_params={})  # fmt: skip
    else:
        st.page_link(routes.ARENA, label="The arenas", icon=":material/how_to_vote:")
version = context.read(ratings.votes_version, arena_id=arena_id)
board = caches.leaderboard(arena_id, version)
if board.votes == 0:
    st.info("No votes yet: vote in an arena, and its ratings appear here.",
            icon=":material/how_to_vote:")  # fmt: skip
    st.stop()
agreement = "—" if board.agreement is None else f"{board.agreement:.0%}"
with st.container(horizontal=True, key="board_figures"):
    st.metric("Votes", f"{board.votes:,}", width="content")
    st.metric("Voters", f"{board.voters:,}", width="content")
    st.metric("Arms", f"{len(board.standings):,}", width="content")
    st.metric("Voters agree", agreement, width="content",
              help=f"Of the {board.judged_by_several} pairs two or more people judged, the "
              "share where all chose alike.")  # fmt: skip
show_standings(board)
recommend_best_scales(board)
show_matrices(board)
show_downloads(arena_id, f"arena-{arena.id}" if arena else "arenas")

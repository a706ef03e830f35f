"""Blind A/B votes (`?id=<arena id>`): one pair at a time, two images of one prompt and seed,
nothing on the page that names their arms until the vote is in. Without an id: the arenas,
and a form to make one from sweeps."""

from __future__ import annotations

import streamlit as st

from lora_core.arena import arenas, voting
from lora_core.arena.voting import Side
from lora_core.errors import LoraStudioError
from lora_core.lab import views as lab_views
from ui import caches, context, routes
from ui.components import format_date
from ui.errors import show_error
from ui.text import md

REVEAL_KEY = "arena_reveal"
ACTIONS = (
    # label, side, shortcut, icon
    ("Left is better", Side.LEFT, "Left", ":material/arrow_back:"),
    ("Right is better", Side.RIGHT, "Right", ":material/arrow_forward:"),
    ("Tie", Side.TIE, "T", ":material/drag_handle:"),
    ("Both bad", Side.BOTH_BAD, "B", ":material/thumb_down:"),
)


def show_index() -> None:
    st.title("Blind arena")
    st.caption(
        "Judge LoRAs without knowing which made an image: two images of the same prompt and "
        "seed, side by side, and you pick the better one. The leaderboard turns everyone's "
        "votes into Bradley–Terry ratings."
    )
    listed = context.read(arenas.list_arenas)
    if not listed:
        st.info(
            "No arena yet. Make one below from a sweep with a LoRA or scale axis, or from a "
            "collection (Make an arena, on its page).",
            icon=":material/how_to_vote:",
        )
    for summary in listed:
        with st.container(border=True, key=f"arena_{summary.arena.id}"):
            st.markdown(f"**{md(summary.arena.name)}**")
            st.caption(
                f"by {md(summary.arena.user)} · {md(format_date(summary.arena.created_at))} · "
                f"{summary.pairs} pairs · {summary.votes} votes by {summary.voters} voters"
            )
            link = {"id": summary.arena.id}
            with st.container(horizontal=True):
                st.page_link(routes.ARENA, label="Vote", icon=":material/how_to_vote:",
                             query_params=link)  # fmt: skip
                st.page_link(routes.LEADERBOARD, label="Leaderboard",
                             icon=":material/leaderboard:", query_params=link)  # fmt: skip
                if summary.arena.collection_id:
                    st.page_link(routes.COLLECTIONS, label="Its collection",
                                 icon=":material/collections_bookmark:",
                                 query_params={"id": summary.arena.collection_id})  # fmt: skip
    show_new_arena_form()


def show_new_arena_form() -> None:
    st.subheader("New arena", anchor=False)
    user = context.current_user()
    if user is None:
        st.info("Sign in to make an arena.", icon=":material/login:")
        return
    sweeps = context.read(lab_views.recent, limit=30)
    if not sweeps:
        st.caption("Run a sweep in the LoRA Lab first: its images are what an arena pairs.")
        return
    labels = {
        summary.sweep.id: f"{summary.sweep.prompt[:60]} · {summary.lora_name} · "
        f"{format_date(summary.sweep.created_at)}"
        for summary in sweeps
    }
    with st.form("new_arena", border=True):
        name = st.text_input("Name", max_chars=arenas.MAX_NAME_LENGTH,
                             placeholder="Neon v2 against v1")  # fmt: skip
        chosen = st.multiselect(
            "Sweeps", list(labels), format_func=labels.__getitem__,
            help="Images of the same prompt and seed from different LoRAs or scales are paired.",
        )  # fmt: skip
        if not st.form_submit_button("Make the arena", type="primary", icon=":material/add:"):
            return
    try:
        arena_id = arenas.create_arena(
            engine=context.studio().engine, user=user, name=name, sweep_ids=chosen
        )
    except LoraStudioError as error:
        show_error(error)
        return
    routes.open_arena(arena_id)


def vote(pair_id: str, side: Side) -> None:
    """A button's callback: store the vote and keep its reveal for the next run."""
    user = context.current_user()
    if user is None:
        return
    try:
        st.session_state[REVEAL_KEY] = voting.cast_vote(
            engine=context.studio().engine, voter=user, pair_id=pair_id, side=side
        )
    except LoraStudioError as error:  # a callback runs outside the page's error boundary
        st.session_state[REVEAL_KEY] = error


def skip(arena_id: str, pair_id: str) -> None:
    st.session_state.setdefault(f"arena_skipped_{arena_id}", set()).add(pair_id)
    st.session_state.pop(REVEAL_KEY, None)


def show_reveal() -> None:
    """The previous vote's arms, revealed once, above the next pair."""
    reveal = st.session_state.pop(REVEAL_KEY, None)
    if isinstance(reveal, LoraStudioError):
        show_error(reveal)
    elif reveal is not None:
        said = {
            Side.LEFT: "left better", Side.RIGHT: "right better", Side.TIE: "a tie",
            Side.BOTH_BAD: "both bad",
        }[reveal.side]  # fmt: skip
        first = "Your vote counted" if reveal.counted else "You had already voted on that pair"
        st.info(
            f"{first} ({said}). Left was **{md(reveal.left)}**; right was **{md(reveal.right)}**.",
            icon=":material/visibility:",
        )


def show_pair(arena_id: str) -> None:
    user = context.current_user()
    if user is None:
        st.info("Sign in to vote: one vote per person per pair.", icon=":material/login:")
        return
    show_reveal()
    skipped = st.session_state.get(f"arena_skipped_{arena_id}", set())
    pair = context.read(voting.next_pair, arena_id=arena_id, voter=user, skipped=skipped)
    if pair is None:
        st.success("You have voted on every pair of this arena. Thank you!",
                   icon=":material/task_alt:")  # fmt: skip
        st.page_link(routes.LEADERBOARD, label="See the leaderboard",
                     icon=":material/leaderboard:", query_params={"id": arena_id})  # fmt: skip
        return
    st.progress(pair.voted / pair.total, text=f"Pair {pair.voted + 1} of {pair.total}")
    st.markdown(f"**Prompt:** {md(pair.prompt)}")
    # At most two 400 px images across: the buttons stay on a laptop's first screen, and
    # a phone keeps both images side by side above them.
    with st.container(horizontal=True, key="arena_pair", width=820):
        for side, image_id in (("Left", pair.left_image_id), ("Right", pair.right_image_id)):
            with st.container(key=f"arena_{side.lower()}"):
                try:
                    st.image(
                        caches.anonymous_image(image_id), width="stretch", caption=side,
                        alt=f"{side} image for the prompt: {pair.prompt}",
                    )  # fmt: skip
                except LoraStudioError:  # its file is gone: the votes and Skip stay usable
                    st.warning(f"The {side.lower()} image cannot be shown right now; skip "
                               "this pair.", icon=":material/broken_image:")  # fmt: skip
    with st.container(horizontal=True, key="arena_actions"):
        for label, side, shortcut, icon in ACTIONS:
            st.button(
                label, key=f"vote_{side.value}", icon=icon, shortcut=shortcut,
                type="primary" if side in (Side.LEFT, Side.RIGHT) else "secondary",
                on_click=vote, args=(pair.pair_id, side),
            )  # fmt: skip
        st.button("Skip", key="vote_skip", icon=":material/skip_next:", shortcut="S",
                  on_click=skip, args=(arena_id, pair.pair_id))  # fmt: skip
    st.caption("Keys: ← left better · → right better · T tie · B both bad · S skip.")


arena_id = st.query_params.get("id", "")
if not arena_id:
    show_index()
    st.stop()
arena = context.read(arenas.get_arena, arena_id=arena_id)
if arena is None:
    st.error("Arena not found. Its link may be mistyped.", icon=":material/search_off:")
    st.page_link(routes.ARENA, label="Every arena", icon=":material/how_to_vote:",
                 query_params={})  # fmt: skip
    st.stop()
st.header(md(arena.name), anchor=False)
st.caption("Which image is better? The LoRAs stay hidden until you vote.")
show_pair(arena.id)

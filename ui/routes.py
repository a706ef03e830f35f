"""Every page of the app and every link to one, in one place.

The pages are `st.Page` objects (built once, when the router first imports this); pages
link to them through these names, never through file paths, and links that carry query
parameters are built here (`lora_url`), so a renamed page or parameter changes one line.
"""

from __future__ import annotations

from functools import partial
from urllib.parse import urlencode

import streamlit as st

# The LoRA page's parameter that opens its Generate dialog (a gallery card's link).
GENERATE_PARAM = "generate"

# Each page as a recipe: `st.navigation` needs fresh `st.Page` objects on every run, since
# Streamlit lets the page it returns run once; one object shared by the sessions of a
# process lets two users opening a page at the same moment collide ("This page cannot be
# called directly"). The objects below are for links (`st.page_link`, `st.switch_page`).
_GALLERY = partial(
    st.Page,
    "app_pages/gallery.py",
    title="All LoRAs",
    icon=":material/photo_library:",
    default=True,
)
# Reached by links only (`?id=…`): not in the menu.
_LORA = partial(
    st.Page,
    "app_pages/lora.py",
    title="LoRA",
    icon=":material/brush:",
    url_path="lora",
    visibility="hidden",
)
_HISTORY = partial(
    st.Page, "app_pages/history.py", title="History", icon=":material/history:", url_path="history"
)
_COMPARE = partial(
    st.Page,
    "app_pages/compare.py",
    title="Compare LoRAs",
    icon=":material/compare:",
    url_path="compare",
)
_TRAIN = partial(
    st.Page,
    "app_pages/train.py",
    title="Train a LoRA",
    icon=":material/model_training:",
    url_path="train",
)
_LAB = partial(
    st.Page, "app_pages/lab.py", title="LoRA Lab", icon=":material/science:", url_path="lab"
)
_ARENA = partial(
    st.Page, "app_pages/arena.py", title="Blind arena", icon=":material/how_to_vote:",
    url_path="arena",
)  # fmt: skip
_LEADERBOARD = partial(
    st.Page, "app_pages/leaderboard.py", title="Leaderboard", icon=":material/leaderboard:",
    url_path="leaderboard",
)  # fmt: skip
_SEARCH = partial(
    st.Page, "app_pages/search.py", title="Search", icon=":material/image_search:",
    url_path="search",
)  # fmt: skip
_COLLECTIONS = partial(
    st.Page, "app_pages/collections.py", title="Collections",
    icon=":material/collections_bookmark:", url_path="collections",
)  # fmt: skip
_USAGE = partial(
    st.Page, "app_pages/usage.py", title="Usage", icon=":material/monitoring:", url_path="usage"
)

GALLERY, LORA, TRAIN, LAB, SEARCH = _GALLERY(), _LORA(), _TRAIN(), _LAB(), _SEARCH()
COLLECTIONS, COMPARE = _COLLECTIONS(), _COMPARE()
ARENA, LEADERBOARD = _ARENA(), _LEADERBOARD()


def pages(*, admin: bool) -> list[st.Page]:
    """The pages this user may open, in menu order (Usage for admins only): new objects on
    every call, one set per run (see above)."""
    recipes = [
        _GALLERY, _LORA, _SEARCH, _COLLECTIONS, _HISTORY, _COMPARE, _LAB, _ARENA,
        _LEADERBOARD, _TRAIN,
        *([_USAGE] if admin else []),
    ]  # fmt: skip
    return [recipe() for recipe in recipes]


def lora_url(lora_id: str, image_id: str | None = None, *, generate: str | None = None) -> str:
    """The LoRA page (with one image large, or with its Generate dialog open once:
    `generate`, a token that `ui.generate_dialog.followed_generate_link` reads), relative
    to the app: for links inside it."""
    query = (
        {"id": lora_id}
        | ({"image": image_id} if image_id else {})
        | ({GENERATE_PARAM: generate} if generate else {})
    )
    return f"{LORA.url_path}?{urlencode(query)}"


def open_lora(lora_id: str) -> None:
    """Go to the LoRA's page (from a button: `st.switch_page`)."""
    st.switch_page(LORA, query_params={"id": lora_id})


def open_image(lora_id: str, image_id: str) -> None:
    """The image's details over its LoRA's page (a page switch: no reload)."""
    st.switch_page(LORA, query_params={"id": lora_id, "image": image_id})


def sweep_url(sweep_id: str) -> str:
    """A sweep's shareable link in the Lab, relative to the app."""
    return f"{LAB.url_path}?{urlencode({'sweep': sweep_id})}"


def compare_params(labels: dict[str, str], lora_ids: list[str], prompt: str) -> dict[str, object]:
    """Compare's link for these LoRAs (by their labels, as its picker is bound) and prompt."""
    return {"compare_loras": [labels[lora_id] for lora_id in lora_ids], "compare_prompt": prompt}


def open_arena(arena_id: str) -> None:
    """Go to an arena's blind votes (from a button)."""
    st.switch_page(ARENA, query_params={"id": arena_id})

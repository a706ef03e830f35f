"""Select several images on a grid, across its pages, and add them to a collection at once
(Pinterest's and Infinite Image Browsing's multi-select): a "Select images" switch puts a
checkbox on every card; the bar above the grid says how many are chosen and adds them."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from lora_core.data.models import GeneratedImage
from lora_core.errors import LoraStudioError
from lora_core.gallery import collections
from ui import context, routes
from ui.errors import show_error
from ui.text import md

NEW = "__new__"  # the choice "a new collection", beside the collections' ids


def _picked_key(scope: str) -> str:
    return f"picked_{scope}"


def picked(scope: str) -> list[str]:
    """The image ids chosen on this grid (its every page), in the order chosen."""
    return st.session_state.setdefault(_picked_key(scope), [])


def box_key(scope: str, grid_key: str, image_id: str) -> str:
    """A card's checkbox, under the scope's round: a new round's boxes are new widgets,
    which start from `picked` (the browser keeps a widget's ticks while its key lives)."""
    round_ = st.session_state.get(f"picked_round_{scope}", 0)
    return f"pick_{scope}_{round_}_{grid_key}_{image_id}"


def _new_round(scope: str) -> None:
    """The checkboxes start again from `picked` (after Select all, Clear or Add)."""
    for key in [k for k in st.session_state if str(k).startswith(f"pick_{scope}_")]:
        del st.session_state[key]
    st.session_state[f"picked_round_{scope}"] = st.session_state.get(f"picked_round_{scope}", 0) + 1


def toggle(scope: str, box: str, image_id: str) -> None:
    """A card's checkbox changed: the image joins or leaves the selection."""
    chosen = picked(scope)
    if st.session_state.get(box) and image_id not in chosen:
        chosen.append(image_id)
    elif not st.session_state.get(box) and image_id in chosen:
        chosen.remove(image_id)


def _select(scope: str, image_ids: Sequence[str]) -> None:
    chosen = picked(scope)
    chosen += [image_id for image_id in image_ids if image_id not in chosen]
    del chosen[collections.MAX_IMAGES :]
    _new_round(scope)


def _clear(scope: str) -> None:
    picked(scope).clear()
    _new_round(scope)


def selecting(scope: str) -> bool:
    """The "Select images" switch, for those signed in (others cannot add anywhere)."""
    if context.current_user() is None:
        return False
    return st.toggle(
        "Select images", key=f"selecting_{scope}",
        help="Choose several images, on any page, to add to a collection.",
    )  # fmt: skip


def selection_bar(scope: str, shown: Sequence[GeneratedImage]) -> None:
    """How many are chosen; choose every one shown; add them to a collection (one of
    those `who` may add to, or a new one)."""
    who = context.current_identity()
    chosen = picked(scope)
    with st.container(border=True, key=f"selection_{scope}"):
        with st.container(horizontal=True, vertical_alignment="center"):
            st.markdown(f"**{len(chosen)} selected**")
            showable = [image.id for image in shown if not image.nsfw]
            st.button(f"Select the {len(showable)} shown", key=f"select_all_{scope}",
                      icon=":material/select_all:", type="tertiary", on_click=_select,
                      args=(scope, showable))  # fmt: skip
            st.button(
                "Clear", key=f"clear_{scope}", icon=":material/deselect:", type="tertiary",
                on_click=_clear, args=(scope,), disabled=not chosen,
            )  # fmt: skip
        choices = context.read(collections.open_to, who=who) | {NEW: "A new collection…"}
        if made := st.session_state.pop(f"pick_made_{scope}", None):  # a new one: chosen next
            st.session_state[f"pick_target_{scope}"] = made
            st.session_state.pop(f"pick_name_{scope}", None)
        with st.container(horizontal=True, vertical_alignment="bottom"):
            target = st.selectbox("Add them to", list(choices), format_func=choices.get,
                                  key=f"pick_target_{scope}")  # fmt: skip
            name = ""
            if target == NEW:
                name = st.text_input("Its name", max_chars=collections.MAX_NAME,
                                     key=f"pick_name_{scope}",
                                     placeholder="Client review 12 Dec")  # fmt: skip
            go = st.button(f"Add {len(chosen)} image{'s' if len(chosen) != 1 else ''}",
                           key=f"pick_add_{scope}", type="primary",
                           icon=":material/bookmark_add:", disabled=not chosen)  # fmt: skip
        if go:
            _add(scope, chosen, target, name if target == NEW else choices[target])
        if done := st.session_state.pop(f"picked_done_{scope}", None):
            collection_id, text = done
            st.success(md(text), icon=":material/check:")
            st.page_link(
                routes.COLLECTIONS, query_params={"id": collection_id},
                label="Open the collection", icon=":material/collections_bookmark:",
            )  # fmt: skip


def _add(scope: str, chosen: list[str], target: str, name: str) -> None:
    """Add the selection to `target` (`NEW`: a new collection called `name`; else the one
    `name` names), then clear it and say so on the run that follows."""
    engine, who = context.studio().engine, context.current_identity()
    try:
        if target == NEW:
            target = collections.create(engine=engine, who=who, name=name, image_ids=chosen)
            added, where = len(chosen), f"the new collection “{name.strip()}”"
            st.session_state[f"pick_made_{scope}"] = target
        else:
            added = collections.add(engine=engine, who=who, collection_id=target,
                                    image_ids=chosen)  # fmt: skip
            where = f"“{name}”"
    except LoraStudioError as error:
        show_error(error)
        return
    already = len(chosen) - added
    text = f"Added {added} image{'s' if added != 1 else ''} to {where}" + (
        f" ({already} {'was' if already == 1 else 'were'} in it already)." if already else "."
    )
    _clear(scope)
    st.session_state[f"picked_done_{scope}"] = (target, text)
    st.rerun()  # the whole page: its counts and checkboxes start again

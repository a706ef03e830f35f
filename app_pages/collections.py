"""Collections (`/collections`, one at `?id=`): named, shared sets of images from any LoRAs;
made here, filled from an image's details or a grid's selection, ordered by their owner,
downloaded as a zip, opened in Compare, made into an arena."""

from __future__ import annotations

import streamlit as st

from lora_core.arena import arenas
from lora_core.data.models import Collection, GeneratedImage
from lora_core.errors import LoraStudioError
from lora_core.gallery import collections, downloads, queries, views
from ui import context, routes
from ui.components import format_date, linked_image_grid, lora_labels
from ui.errors import show_error
from ui.text import md

st.set_page_config(page_title="Collections · LoRA Studio")


def new_collection() -> None:
    """Name one (a description, and whether anyone may add), for those signed in."""
    who = context.current_identity()
    if who.user is None:
        st.caption("Sign in to make a collection.")
        return
    with st.popover("New collection", icon=":material/add:"), st.form("new_collection"):
        name = st.text_input("Name", max_chars=collections.MAX_NAME, key="collection_name",
                             placeholder="Client review 12 Dec")  # fmt: skip
        description = st.text_area("Description", max_chars=collections.MAX_DESCRIPTION,
                                   key="collection_description")  # fmt: skip
        anyone = st.checkbox("Anyone signed in can add images", key="collection_anyone")
        if st.form_submit_button("Make it", type="primary"):
            try:
                made = collections.create(
                    engine=context.studio().engine, who=who, name=name,
                    description=description, anyone_can_add=anyone,
                )  # fmt: skip
            except LoraStudioError as error:
                show_error(error)
                return
            st.query_params["id"] = made
            st.rerun()


def every_collection() -> None:
    st.title("Collections")
    st.caption(
        "Named sets of images from any LoRAs, shared with the team: add an image from its "
        "details (Add to a collection)."
    )
    new_collection()
    found = context.read(collections.listed)
    if not found:
        st.info("No collection yet.", icon=":material/collections_bookmark:")
    for collection, count in found:
        st.page_link(
            routes.COLLECTIONS, query_params={"id": collection.id},
            label=f"{md(collection.name)} · {count} image{'s' if count != 1 else ''} · by "
            f"{md(collection.user)}", icon=":material/collections_bookmark:",
        )  # fmt: skip


def one_collection(collection_id: str) -> None:
    who = context.current_identity()
    found = context.read(collections.view, collection_id=collection_id, who=who)
    if found is None:
        st.error("Collection not found. Its link may be mistyped, or it was deleted.",
                 icon=":material/search_off:")  # fmt: skip
        st.page_link(routes.COLLECTIONS, query_params={}, label="Every collection")
        return
    collection, images = found.collection, found.images
    st.title(md(collection.name), anchor=False)
    st.caption(
        f"by {md(collection.user)} · {md(format_date(collection.created_at))} · "
        f"{len(images)} image{'s' if len(images) != 1 else ''}"
        + (" · anyone signed in can add" if collection.anyone_can_add else "")
    )
    if collection.description:
        st.text(collection.description)  # as written
    with st.container(horizontal=True):
        st.page_link(routes.COLLECTIONS, query_params={}, label="Every collection",
                     icon=":material/arrow_back:")  # fmt: skip
        if images:
            st.download_button(
                f"Download the {len(images)} image{'s' if len(images) != 1 else ''} (zip)",
                data=lambda: zipped(images),
                file_name=f"collection-{collection.id}.zip", mime="application/zip",
                icon=":material/folder_zip:", on_click="ignore", key="collection_zip",
            )  # fmt: skip
        if images:
            compare_link(images)
        if images and who.user is not None:
            arena_maker(collection)
        if collections.may_change(who, collection):
            editor(collection)
    if not images:
        st.info("No image yet: open an image's details and Add to a collection.",
                icon=":material/image:")  # fmt: skip
        return
    linked_image_grid(images, columns=4)  # each image a link to its details on its LoRA's page
    if collections.may_change(who, collection):
        reorder(collection, images)


def zipped(images: list[GeneratedImage]) -> bytes:
    """The images with their recipes inside and the manifest (read when asked for)."""
    made = context.read(views.recipes_of, images=images)
    first = next((m.first for m in made.values() if m.first is not None), None)
    if first is None:
        raise LoraStudioError("None of these images' LoRAs is here any more.")
    return downloads.images_zip(images, first, store=context.studio().store, recipes=made)


def compare_link(images: list[GeneratedImage]) -> None:
    """Compare, opened on the prompt most of its LoRAs made, with those LoRAs."""
    labels = lora_labels(context.read(queries.list_ready_loras))
    seed = collections.compare_seed(images, usable=set(labels))
    if seed is not None:
        st.page_link(routes.COMPARE, label=f"Compare its LoRAs ({len(seed.lora_ids)})",
                     query_params=routes.compare_params(labels, seed.lora_ids, seed.prompt),
                     icon=":material/compare:")  # fmt: skip


def arena_maker(collection: Collection) -> None:
    """An arena of its images: blind votes between those of one prompt."""
    with st.popover("Make an arena", icon=":material/how_to_vote:"), st.form("collection_arena"):
        st.caption("Blind votes between its images of the same prompt from different LoRAs "
                   "or settings (at one seed where they share one).")  # fmt: skip
        name = st.text_input("Arena name", value=collection.name[: arenas.MAX_NAME_LENGTH],
                             max_chars=arenas.MAX_NAME_LENGTH)  # fmt: skip
        if not st.form_submit_button("Make the arena", type="primary"):
            return
    try:
        arena_id = arenas.create_arena_from_collection(
            engine=context.studio().engine, user=context.current_user() or "", name=name,
            collection_id=collection.id,
        )  # fmt: skip
    except LoraStudioError as error:
        show_error(error)
        return
    routes.open_arena(arena_id)


def editor(collection: Collection) -> None:
    with st.popover("Change", icon=":material/edit:"), st.form("collection_edit"):
        name = st.text_input("Name", value=collection.name, max_chars=collections.MAX_NAME)
        description = st.text_area("Description", value=collection.description or "",
                                   max_chars=collections.MAX_DESCRIPTION)  # fmt: skip
        anyone = st.checkbox("Anyone signed in can add images",
                             value=bool(collection.anyone_can_add))  # fmt: skip
        if st.form_submit_button("Save", type="primary"):
            try:
                collections.describe(
                    engine=context.studio().engine, who=context.current_identity(),
                    collection_id=collection.id, name=name, description=description,
                    anyone_can_add=anyone,
                )  # fmt: skip
            except LoraStudioError as error:
                show_error(error)
                return
            st.rerun()


def reorder(collection: Collection, images: list[GeneratedImage]) -> None:
    """Its owner moves an image earlier or later, or takes it out."""
    with st.expander("Order and remove", icon=":material/reorder:"):
        for number, image in enumerate(images, start=1):
            with st.container(horizontal=True, vertical_alignment="center"):
                st.caption(f"{number}. {md(image.prompt[:60])}")
                for label, icon, by in (("Earlier", ":material/arrow_upward:", -1),
                                        ("Later", ":material/arrow_downward:", 1)):  # fmt: skip
                    if st.button(label, key=f"move_{by}_{image.id}", icon=icon, type="tertiary"):
                        collections.move(
                            engine=context.studio().engine, who=context.current_identity(),
                            collection_id=collection.id, image_id=image.id, by=by,
                        )  # fmt: skip
                        st.rerun()
                if st.button("Remove", key=f"remove_{image.id}", icon=":material/close:",
                             type="tertiary"):  # fmt: skip
                    collections.remove(engine=context.studio().engine,
                                       who=context.current_identity(),
                                       collection_id=collection.id, image_id=image.id)  # fmt: skip
                    st.rerun()


if collection_id := st.query_params.get("id"):
    one_collection(collection_id)
else:
    every_collection()

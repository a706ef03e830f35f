"""An image's details over a LoRA's page (`?id=…&image=…`): the image large, what it was
made from, its stars, share link and downloads, Reproduce and Remix, hiding it."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from lora_core.data.models import GeneratedImage, LoraTraining
from lora_core.errors import LoraStudioError
from lora_core.gallery import collections, downloads, favorites, moderation, views
from lora_core.generation import recipe, service, stacks
from lora_core.generation.recipe import Recipe
from ui import context, routes
from ui.components import (
    FLAGGED_TEXT,
    empty_thumbnail,
    format_date,
    image_alt,
    image_card,
    linked_image_grid,
    lora_title,
    share_url,
)
from ui.errors import generation_blocked, show_error
from ui.generate_dialog import close_generate, remix
from ui.text import md

GRID_COLUMNS = 4


def close_image() -> None:
    st.query_params.pop("image", None)


def open_in_place(image: GeneratedImage) -> None:
    """Show an image's details over the page: no reload, and the address bar gets the
    image's shareable `?id=…&image=…`."""
    close_generate()
    st.query_params["image"] = image.id
    st.rerun()  # the whole page, so that the dialog opens (a grid's fragment cannot)


def show_stars(image: GeneratedImage, count: int, *, mine: bool) -> None:
    """How many users starred the image; a signed-in user stars or unstars it here."""
    user = context.current_user()
    if user is None:
        st.caption(f":material/star: {count}")
        return
    label = f"Starred · {count}" if mine else f"Star · {count}"
    if st.button(label, key="star_image", icon=":material/star:", type="secondary"):
        favorites.set_starred(
            engine=context.studio().engine, user=user, image=image, starred=not mine
        )
        st.rerun()


def show_collections(image: GeneratedImage) -> None:
    """The collections the image is in, and Add to a collection (those `who` may add to)."""
    who = context.current_identity()
    within = context.read(collections.of_image, image_id=image.id)
    if within:
        st.caption(
            f"In {len(within)} collection{'s' if len(within) != 1 else ''}: "
            + ", ".join(md(collection.name) for collection in within)
        )
    if who.user is None:
        return
    already = {collection.id for collection in within}
    choices = {
        collection_id: name
        for collection_id, name in context.read(collections.open_to, who=who).items()
        if collection_id not in already
    }
    if not choices:
        st.page_link(routes.COLLECTIONS, label="Make a collection to add it to",
                     icon=":material/collections_bookmark:")  # fmt: skip
        return
    with st.container(horizontal=True, vertical_alignment="bottom"):
        chosen = st.selectbox(
            "Add to a collection", list(choices), index=None, format_func=choices.get,
            key="collection_pick", placeholder="Choose a collection",
        )  # fmt: skip
        if st.button("Add", key="collection_add", icon=":material/bookmark_add:",
                     disabled=chosen is None):  # fmt: skip
            try:
                collections.add(engine=context.studio().engine, who=who, collection_id=chosen,
                                image_ids=[image.id])  # fmt: skip
            except LoraStudioError as error:  # full, or no longer open to others
                show_error(error)
                return
            st.rerun()  # its "In 1 collection" above


def show_hide_action(image: GeneratedImage, on_hidden: Callable[[], object]) -> None:
    """For its author or an admin: hide the image from the galleries (History keeps it)."""
    if image.hidden:
        st.caption("Hidden from the galleries; History keeps it.")
    label = "Show in the galleries again" if image.hidden else "Hide from the galleries"
    icon = ":material/visibility:" if image.hidden else ":material/visibility_off:"
    if st.button(label, key="hide_image", icon=icon):
        moderation.set_image_hidden(
            engine=context.studio().engine,
            who=context.current_identity(),
            image=image,
            hidden=not image.hidden,
        )
        on_hidden()  # its count changed, its newest image may not have
        st.rerun()


@st.dialog("Image details", width="large", on_dismiss=close_image)
def image_dialog(lora: LoraTraining, image_id: str, on_hidden: Callable[[], object]) -> None:
    """The image of a shared link (`?id=…&image=…`) or of a click on a card, large, with
    what it was made from, its share link and downloads, over the page. `on_hidden` runs
    when its author or an admin hides or shows it again (the page's counts change)."""
    view = context.read(
        views.image_view, lora_id=lora.id, image_id=image_id, who=context.current_identity()
    )
    if view is None:
        st.warning(
            "That image was not found on this LoRA: the link may be wrong, or the image was "
            "removed. Here is everything generated from the LoRA.",
            icon=":material/image_not_supported:",
        )
        return
    image, batch, may_hide = view.image, view.batch, view.may_hide
    if view.withheld:
        st.info(
            "This image was hidden from the galleries by its author or an admin.",
            icon=":material/visibility_off:",
        )
        return
    with st.container(key="image_view"):
        picture, details = st.columns([3, 2], gap="large")
        if image.nsfw:
            picture.markdown(empty_thumbnail(FLAGGED_TEXT), unsafe_allow_html=True)
        else:
            picture.markdown(
                image_card(
                    image.image_url,
                    alt=image_alt(image, lora_title(lora)),
                    css_class="ls-large",
                ),
                unsafe_allow_html=True,
            )
        with details:
            show_image_details(lora, view, batch, may_hide=may_hide, on_hidden=on_hidden)
        others = [other for other in batch if other.id != image.id and not other.hidden]
        if others:
            st.caption(f"The rest of its batch ({len(others)}): open one to see it large.")
            linked_image_grid(
                others, columns=GRID_COLUMNS, with_captions=False, lora_name=lora_title(lora)
            )


def show_image_details(
    lora: LoraTraining,
    view: views.ImageView,
    batch: list[GeneratedImage],
    *,
    may_hide: bool,
    on_hidden: Callable[[], object],
) -> None:
    """What the image was made from, its stars, share link and downloads. An image stacked
    on another LoRA (shown on an added LoRA's page) is downloaded and remixed as its own
    LoRA's."""
    image, store = view.image, context.studio().store
    if view.made.first is not None and view.made.first.id != lora.id:
        st.caption(f"Its LoRA: {md(lora_title(view.made.first))}")
    lora = view.made.first or lora
    st.markdown(f"**{md(image.prompt)}**")
    st.caption(f"by {md(image.user)} · {md(format_date(image.created_at))}")
    size = f"{image.image_width}×{image.image_height}" if image.image_width else "—"
    st.markdown(f"Seed {md(image.seed or '—')} · {size}")
    st.caption(md(recipe.describe(view.recipe)))  # the settings it was generated with
    if view.made.added:
        st.caption(md(stacks.describe_added(view.recipe, view.made.added)))
    show_recipe_actions(lora, image, view.recipe)
    show_stars(image, view.stars, mine=view.starred_by_me)
    show_collections(image)
    st.caption("Share link")
    st.code(share_url(image), language=None, wrap_lines=True)
    st.download_button(
        "Download image",
        data=lambda: downloads.image_download(image, lora, view.made, store=store),
        file_name=downloads.file_name(image),
        mime=downloads.mime_type(image),
        icon=":material/download:",
        on_click="ignore",
        disabled=bool(image.nsfw),
        key="download_image",
    )
    st.download_button(
        f"Download its batch ({len(batch)} images, zip)",
        data=lambda: zip_with_recipes(batch, lora),
        file_name=f"{lora.trigger_word}-{image.batch_id or image.id}.zip",
        mime="application/zip",
        icon=":material/folder_zip:",
        on_click="ignore",
        key="download_batch",
    )
    if may_hide:
        show_hide_action(image, on_hidden)
    if st.button("Back to all images", key="close_image", icon=":material/arrow_back:"):
        close_image()
        st.rerun()  # the whole page: a button in a dialog reruns only the dialog


def show_recipe_actions(lora: LoraTraining, image: GeneratedImage, made_with: Recipe) -> None:
    """Reproduce (the same prompt, seed and settings: a new batch at once) and Remix (the
    Generate dialog filled with them, to change anything), for those who may generate."""
    try:
        service.check_ready(lora)
    except LoraStudioError:
        return  # the page says why it cannot generate
    if context.current_user() is None:
        return
    disabled = generation_blocked(context.run_quota_status()) is not None
    with st.container(horizontal=True):
        for label, key, icon, run in (
            ("Reproduce", "reproduce_image", ":material/replay:", True),
            ("Remix", "remix_image", ":material/tune:", False),
        ):
            if st.button(label, key=key, icon=icon, disabled=disabled):
                close_image()
                remix(lora.id, image.prompt, made_with, run=run)
                if st.query_params.get("id") != lora.id:
                    routes.open_lora(lora.id)  # shown on an added LoRA's page: to its own
                st.rerun()  # the whole page: the Generate dialog replaces this one


def zip_with_recipes(images: list[GeneratedImage], lora: LoraTraining) -> bytes:
    """A zip of `images`, each file carrying its recipe (read when the zip is asked for)."""
    studio = context.studio()
    recipes = context.read(views.recipes_of, images=images)
    return downloads.images_zip(images, lora, store=studio.store, recipes=recipes)

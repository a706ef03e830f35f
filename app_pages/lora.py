"""One LoRA (`?id=<lora id>`): metadata, the Generate dialog, and every image made from it."""

from __future__ import annotations

import streamlit as st

from lora_core import weights
from lora_core.data.models import GeneratedImage, LoraStatus, LoraTraining
from lora_core.errors import LoraStudioError
from lora_core.gallery import groups, queries, views
from lora_core.generation import service
from ui import caches, context, picking, routes
from ui.components import (
    count_text,
    format_date,
    generation_html,
    image_grid,
    linked_grid_html,
    linked_image_grid,
    lora_title,
    status_badge,
)
from ui.errors import generation_blocked, guarded, show_error
from ui.generate_dialog import followed_generate_link, open_generate, render_open_dialog
from ui.image_details import close_image, image_dialog, open_in_place, zip_with_recipes
from ui.scorecard import scorecard_action, show_scorecard
from ui.standing import show_standing
from ui.text import md

PAGE_SIZE = 24
GRID_COLUMNS = 4


def not_found() -> None:
    st.set_page_config(page_title="LoRA not found · LoRA Studio")
    st.title("LoRA not found")
    st.error(
        "LoRA not found. The link may be wrong, or the LoRA was removed.",
        icon=":material/search_off:",
    )
    st.page_link(routes.GALLERY, label="Back to the gallery", icon=":material/arrow_back:")
    st.stop()


def show_header(lora: LoraTraining, image_count: int) -> None:
    st.set_page_config(page_title=f"{lora_title(lora)} · LoRA Studio")
    st.page_link(routes.GALLERY, label="All LoRAs", icon=":material/arrow_back:")
    st.title(md(lora_title(lora)), anchor=False)
    with st.container(horizontal=True, vertical_alignment="center", key="lora_facts"):
        status_badge(lora.status)
        # One compact line, so that the first screen is mostly images, on a phone too.
        facts = [
            *([f"Trigger word: {md(lora.trigger_word)}"] if lora.name else []),
            f"{md(count_text(lora.steps))} training steps",
            f"created {md(format_date(lora.created_at, with_time=False))}",
            f"{count_text(image_count)} images",
        ]
        st.caption(" · ".join(facts))
    show_standing(lora.id)


def show_weights(lora: LoraTraining) -> None:
    """Where the weights are: for people who use the LoRA elsewhere, below the main action."""
    if not (lora.lora_weights_url or lora.weights_copy_url):
        return
    with st.popover("Weights", icon=":material/download:"):
        if lora.lora_weights_url:
            st.caption("Weights URL")
            st.code(lora.lora_weights_url, language=None, wrap_lines=True)
        if lora.weights_copy_url:
            st.caption("LoRA Studio's copy of the weights (fal's links expire)")
            st.code(lora.weights_copy_url, language=None, wrap_lines=True)
        st.caption(md(weights.where_fal_downloads(lora)), help=None)


def show_generate_action(lora: LoraTraining) -> bool:
    """The Generate button (or why there is none); True when the LoRA can generate. A
    gallery card's Generate link opens the dialog as the button does (its "Sign in to
    generate", the sign-in)."""
    asked = followed_generate_link()
    try:
        service.check_ready(lora)
    except LoraStudioError as error:
        show_error(error)
        return False
    if not context.current_identity().signed_in:
        if st.button("Sign in to generate", key="sign_in_to_generate", type="primary") or asked:
            st.login()
        return True
    blocked = generation_blocked(context.run_quota_status())
    if asked and blocked is None:
        start_generating(lora.id)
    st.button(
        "Generate",
        key="open_generate",
        type="primary",
        icon=":material/auto_awesome:",
        on_click=start_generating,
        args=(lora.id,),
        disabled=blocked is not None,
    )
    if blocked:  # said next to the button it disables, not after a click
        st.caption(md(blocked), help=None)
    return True


def start_generating(lora_id: str) -> None:
    """One dialog at a time: the image's details close when the Generate dialog opens."""
    close_image()
    open_generate(lora_id)


def show_grid(
    images: list[GeneratedImage],
    *,
    lora_name: str,
    picking: str | None,
    key: str = "grid",
    with_captions: bool = True,
    notes: dict[str, str] | None = None,
    eager: int = 8,
) -> None:
    """Each image a link to its details, the grid one element; while images are picked
    (`picking`, a selection's scope), cards with a Select box and a Details button each."""
    if picking is None:
        linked_image_grid(
            images, columns=GRID_COLUMNS, with_captions=with_captions, lora_name=lora_name,
            notes=notes, eager=eager,
        )  # fmt: skip
        return
    image_grid(
        images, columns=GRID_COLUMNS, with_captions=with_captions, on_open=open_in_place,
        key=key, lora_name=lora_name, notes=notes, picking=picking, eager=eager,
    )  # fmt: skip


def generation_block(group: groups.ImageGroup, *, mark: str | None, body: str = "") -> str:
    """A generation's prompt, who and when (and its sweep's link, its note) over `body`,
    as HTML (`generation_html`)."""
    return generation_html(
        prompt=group.prompt, user=group.user, created_at=group.created_at,
        sweep_link=routes.sweep_url(group.sweep_id) if group.sweep_id else None, note=mark,
        body=body,
    )  # fmt: skip


def first_screen(number: int) -> int:
    """How many images of the `number`th generation load at once: the first two rows'."""
    return GRID_COLUMNS if number < 2 else 0


def show_generations(
    image_groups: list[groups.ImageGroup], *, lora_name: str, marks: dict[str, str]
) -> None:
    """Every generation of the page, each its header over its grid, all one element (each
    element is a message and a part the browser draws: benchmarks/page_ready.py), as
    `st.html`: the browser parses it natively instead of through Markdown's parser."""
    parts = []
    for number, group in enumerate(image_groups):
        grid = linked_grid_html(
            group.images, columns=GRID_COLUMNS, with_captions=False, lora_name=lora_name,
            eager=first_screen(number),
        )  # fmt: skip
        mark = marks.get(group.images[0].batch_id or "")
        parts.append(generation_block(group, mark=mark, body=grid))
    st.html("".join(parts))


def show_picked_generation(
    group: groups.ImageGroup, *, lora_name: str, mark: str | None, picking: str, eager: int
) -> None:
    """While images are picked (`picking`, a selection's scope): a generation's header and
    a grid of cards with their Select boxes."""
    with st.container(key=f"batch_{group.images[0].id}"):
        st.markdown(generation_block(group, mark=mark), unsafe_allow_html=True)
        show_grid(
            group.images, lora_name=lora_name, picking=picking,
            key=f"group_{group.images[0].id}", with_captions=False, eager=eager,
        )  # fmt: skip


def load_images(
    lora: LoraTraining, total: int, *, starred_by: str | None, stacked: bool
) -> tuple[views.LoraImages, str]:
    """The page of images to show, with their batches' notes, and the key of its pager:
    everyone's (with those of batches it was `stacked` in), or only the images
    `starred_by` starred (paged on their own)."""
    page_key = f"{'starred_' if starred_by else ''}page_{lora.id}"
    shown = context.read(
        views.lora_images, lora_id=lora.id, page=int(st.session_state.get(page_key, 1)),
        page_size=PAGE_SIZE, total=total, stacked=stacked, starred_by=starred_by,
    )  # fmt: skip
    return shown, page_key


@st.fragment
@guarded  # a fragment reruns alone: outside the router's error boundary
def show_images(lora: LoraTraining, total: int, *, ready: bool, stacked: bool) -> None:
    """The LoRA's images, one page at a time. A fragment: paging reruns only this part,
    with `total` as the page last counted it (a generation reruns the whole page)."""
    st.subheader("Generated images", anchor=False)
    if total == 0:
        invite = " Click Generate to create your first images." if ready else ""
        st.info(f"No images generated yet.{invite}", icon=":material/image:")
        return
    user = context.current_user()
    controls = st.container(horizontal=True)
    grouped = controls.toggle("Group by generation", value=True, key="group_batches")
    starred_only = user is not None and controls.toggle("Only my favorites", key="only_favorites")
    scope = f"lora_{lora.id}"
    with controls:
        choosing = picking.selecting(scope)
    loaded, page_key = load_images(
        lora, total, starred_by=user if starred_only else None, stacked=stacked
    )
    images = loaded.images
    if starred_only and images.total == 0:
        st.info(
            "You have not starred an image of this LoRA yet: open an image's details to star it.",
            icon=":material/star:",
        )
        return
    whose = "you starred" if starred_only else "by everyone"
    st.caption(
        f"{count_text(images.total)} images {whose}, newest first. "
        "Open an image for its prompt, seed, share link and downloads."
    )
    shown = images.items
    st.download_button(
        f"Download the {len(shown)} images shown (zip)",
        data=lambda: zip_with_recipes(shown, lora),
        file_name=f"{lora.trigger_word}-{'favorites-' if starred_only else ''}"
        f"page-{images.page}.zip",
        mime="application/zip",
        icon=":material/folder_zip:",
        on_click="ignore",
        key="download_page",
    )
    if choosing:
        picking.selection_bar(scope, images.items)
    name = lora_title(lora)
    # Sweeps' cells, and stacked batches (this LoRA with others) marked with the others.
    marks = loaded.notes.marks
    image_groups = groups.group_by_batch(images.items, loaded.notes.sweeps) if grouped else []
    if grouped and not choosing:
        show_generations(image_groups, lora_name=name, marks=marks)
    elif grouped:
        for number, group in enumerate(image_groups):
            show_picked_generation(
                group,
                lora_name=name,
                mark=marks.get(group.images[0].batch_id or ""),
                picking=scope,
                eager=first_screen(number),
            )
    else:
        show_grid(
            images.items, lora_name=name, picking=scope if choosing else None,
            notes={image.id: marks[image.batch_id] for image in images.items
                   if image.batch_id in marks},
        )  # fmt: skip
    if images.page_count > 1:
        st.pagination(images.page_count, key=page_key, default=images.page)


lora_id = st.query_params.get("id", "")
# A batch of this LoRA that a dead process left pending is finished before anything is
# read, when no background sweep does it (RECOVERY_SWEEP_SECONDS=0). With the sweep on,
# it would cost every view a query for what the sweep finishes within seconds anyway.
if not context.get_settings().recovery_sweep_seconds:
    context.studio().resume_stale_batches(lora_id=lora_id)
lora_view = context.read(views.lora_view, lora_id=lora_id)
if lora_view is None:
    not_found()
lora = lora_view.lora
if lora.status == LoraStatus.PENDING:  # still training: as the background sweep found it
    lora = context.studio().training_view(lora).lora
image_count = caches.lora_image_count(lora.id, lora_view.count_key)

show_header(lora, image_count)
show_scorecard(lora, lora_view.scorecard)
with st.container(horizontal=True, vertical_alignment="center", key="lora_actions"):
    ready = show_generate_action(lora)
    show_weights(lora)
    if ready:
        st.page_link(routes.LAB, label="Run a suite", icon=":material/fact_check:",
                     query_params={"suite_lora": lora.id})  # fmt: skip
    scorecard_action(lora, lora_view.scorecard)
# One dialog at a time: the Generate dialog when it was opened, else a shared image's.
if not render_open_dialog(lora) and (image_id := st.query_params.get("image")):
    image_dialog(lora, image_id, on_hidden=caches.lora_image_count.clear)
show_images(lora, image_count, ready=ready, stacked=queries.stacked_in_others(lora_view.count_key))

"""Train a LoRA: upload images, name a trigger word, and fal trains it in a few minutes.

The user's trainings are listed below the form with their state, asked from fal by request
id every few seconds while one runs, so a reload or a restart loses nothing.
"""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from lora_core import training
from lora_core.db import session_scope
from lora_core.errors import LoraStudioError
from lora_core.models import LoraStatus, LoraTraining
from lora_core.trainer import (
    DEFAULT_STEPS,
    MAX_IMAGES,
    MAX_STEPS,
    MIN_IMAGES,
    MIN_STEPS,
    TrainingState,
    UploadedFile,
)
from ui import context
from ui.components import escape_markdown, format_date
from ui.errors import period_text, show_error
from ui.generate_dialog import open_generate

POLL_SECONDS = 3

st.set_page_config(page_title="Train · LoRA Studio")
st.title("Train a LoRA")
st.caption(
    f"Upload {MIN_IMAGES}–{MAX_IMAGES} pictures of one style or subject and choose the trigger "
    "word that will call it up in prompts. fal trains a FLUX LoRA from them in a few minutes; "
    "you can leave this page meanwhile."
)


def training_quota_text(user: str) -> str:
    with session_scope(context.engine()) as session:
        status = training.get_status(session=session, policy=context.training_policy(), user=user)
    if status.is_exempt:
        return "Unlimited trainings"
    return f"{status.remaining} of {status.limit} trainings remaining {period_text(status.window)}"


def show_form(user: str) -> None:
    with st.form("train_form", border=True):
        files = st.file_uploader(
            "Training images",
            type=["jpg", "jpeg", "png", "webp", "zip"],
            accept_multiple_files=True,
            key="train_files",
            help=f"{MIN_IMAGES}–{MAX_IMAGES} JPEG, PNG or WebP images (at least 256 px a side), "
            "or a zip of them.",
        )
        trigger_word = st.text_input(
            "Trigger word",
            key="train_trigger",
            max_chars=32,
            placeholder="e.g. sks-style",
            help="A rare word: prompts get “in the style of <trigger word>” appended.",
        )
        steps = st.number_input(
            "Training steps",
            min_value=MIN_STEPS,
            max_value=MAX_STEPS,
            value=DEFAULT_STEPS,
            step=100,
            key="train_steps",
            help=f"fal's default is {DEFAULT_STEPS:,}; more steps take longer.",
        )
        submitted = st.form_submit_button(
            "Start training", type="primary", icon=":material/model_training:"
        )
    if submitted:
        start(user, files or [], trigger_word, int(steps))


def start(user: str, files: list, trigger_word: str, steps: int) -> None:
    """Upload and submit; the new training then shows in the list below."""
    with st.status("Uploading the images and starting the training…") as progress:
        try:
            lora = training.start_training(
                engine=context.engine(),
                trainer=context.trainer(),
                policy=context.training_policy(),
                user=user,
                files=[UploadedFile(file.name, file.getvalue()) for file in files],
                trigger_word=trigger_word,
                steps=steps,
            )
        except LoraStudioError as error:
            progress.update(label="The training was not started", state="error", expanded=True)
            show_error(error)
            return
        progress.update(label=f"Training “{lora.trigger_word}” started", state="complete")


def show_state(state: TrainingState | None) -> None:
    if state is None:
        st.info("Waiting for fal to report on this training…", icon=":material/hourglass_top:")
        return
    if state.stage == "queued":
        place = "" if state.queue_position is None else f" (position {state.queue_position + 1})"
        label = f"Queued at fal{place}"
    else:
        label = "Training on fal…"
    with st.status(label, state="running", expanded=bool(state.logs)):
        for line in state.logs[-5:]:
            st.text(line)


def show_training(lora: LoraTraining, state: TrainingState | None) -> None:
    with st.container(border=True, key=f"training_{lora.id}"):
        st.markdown(f"**{escape_markdown(lora.trigger_word)}**")
        st.caption(f"{lora.steps or '—'} steps · started {format_date(lora.created_at)}")
        if lora.status == LoraStatus.PENDING:
            show_state(state)
        elif lora.status == LoraStatus.COMPLETED:
            st.success("Training complete: the LoRA is ready.", icon=":material/check_circle:")
            generate, gallery = st.columns(2)
            if generate.button(
                "Generate Images",
                key=f"generate_{lora.id}",
                type="primary",
                icon=":material/auto_awesome:",
                width="stretch",
            ):
                open_generate(lora.id)
                st.switch_page("app_pages/lora.py", query_params={"id": lora.id})
            gallery.page_link(
                "app_pages/gallery.py", label="View in Gallery", icon=":material/photo_library:"
            )
        else:
            st.error(lora.error or "The training failed.", icon=":material/error:")


def show_trainings(user: str) -> None:
    """The user's trainings; the pending ones asked from fal on every run."""
    engine, trainer, policy = context.engine(), context.trainer(), context.training_policy()
    try:
        with session_scope(engine) as session:
            loras = training.list_trainings(session=session, user=user)
        views = [
            training.refresh(engine=engine, trainer=trainer, policy=policy, lora_id=lora.id)
            if lora.status == LoraStatus.PENDING
            else training.TrainingView(lora)
            for lora in loras
        ]
    except LoraStudioError as error:
        show_error(error)
        return
    if not views:
        st.caption("You have not trained a LoRA yet.")
        return
    for view in views:
        if view is not None:
            show_training(view.lora, view.state)
    was_pending = any(lora.status == LoraStatus.PENDING for lora in loras)
    still_pending = any(view and view.lora.status == LoraStatus.PENDING for view in views)
    if was_pending and not still_pending:
        st.rerun()  # the whole page, so that polling stops and the quota is current


who = context.current_identity()
if not who.signed_in or who.user is None:
    st.info("Sign in to train a LoRA.", icon=":material/login:")
    if st.button("Sign in", key="sign_in_to_train", type="primary", icon=":material/login:"):
        st.login()
    st.stop()

try:
    st.caption(training_quota_text(who.user))
    show_form(who.user)
    with session_scope(context.engine()) as session:
        polling = training.has_pending(session=session, user=who.user)
except LoraStudioError as error:
    show_error(error)
    st.stop()

st.subheader("Your trainings", anchor=False)
# While a training runs, only this part reruns, every few seconds.
st.fragment(run_every=timedelta(seconds=POLL_SECONDS) if polling else None)(show_trainings)(
    who.user
)

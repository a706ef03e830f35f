"""Train a LoRA: upload images, name a trigger word, and fal trains it in a few minutes.

The user's trainings are listed below the form with their state, asked from fal by request
id every few seconds while one runs, so a reload or a restart loses nothing.
"""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from lora_core.data.models import LoraStatus, LoraTraining
from lora_core.errors import LoraStudioError
from lora_core.training import lifecycle as training
from lora_core.training import names, registry
from lora_core.training.archive import (
    DEFAULT_STEPS,
    MAX_IMAGES,
    MAX_STEPS,
    MIN_IMAGES,
    MIN_STEPS,
    UploadedFile,
    submission_key,
)
from lora_core.training.trainers import TrainingState
from ui import context, routes
from ui.components import count_text, format_date, lora_title
from ui.errors import guarded, period_text, show_error
from ui.generate_dialog import open_generate
from ui.text import md

POLL_SECONDS = 3
# A started training gets a fresh, empty form (new widget keys), so it cannot be sent twice;
# a refused one keeps everything the user entered.
FORM_VERSION_KEY = "train_form_version"
STARTED_KEY = "train_started"
SUBMITTED_KEY = "train_submitted"

st.set_page_config(page_title="Train · LoRA Studio")
st.title("Train a LoRA")
st.caption(
    f"Upload {MIN_IMAGES}–{MAX_IMAGES} pictures of one style or subject and choose the trigger "
    "word that will call it up in prompts. fal trains a FLUX LoRA from them in a few minutes; "
    "you can leave this page meanwhile."
)


def training_quota_text(user: str) -> str:
    status = context.studio().training_status(user)
    if status.is_exempt:
        return "Unlimited trainings"
    return f"{status.remaining} of {status.limit} trainings remaining {period_text(status.window)}"


def show_form(user: str) -> None:
    version = st.session_state.get(FORM_VERSION_KEY, 0)
    with st.form(f"train_form_{version}", border=True):
        files = st.file_uploader(
            "Training images",
            type=["jpg", "jpeg", "png", "webp", "zip"],
            accept_multiple_files=True,
            key=f"train_files_{version}",
            help=f"{MIN_IMAGES}–{MAX_IMAGES} JPEG, PNG or WebP images (at least 256 px a side), "
            "or a zip of them.",
        )
        trigger_word = st.text_input(
            "Trigger word",
            key=f"train_trigger_{version}",
            max_chars=names.MAX_TRIGGER_WORD,
            placeholder="e.g. sks-style",
            help="A rare word: prompts get “in the style of <trigger word>” appended.",
        )
        kind = st.radio(
            "The pictures show",
            ["style", "subject"],
            format_func={"style": "A style", "subject": "A subject"}.get,
            captions=[
                "A look to apply to anything: fal trains it without captions or masks.",
                "A person, a pet or an object: fal masks it out of each picture.",
            ],
            horizontal=True,
            key=f"train_kind_{version}",
        )
        steps = st.number_input(
            "Training steps",
            min_value=MIN_STEPS,
            max_value=MAX_STEPS,
            value=DEFAULT_STEPS,
            step=100,
            key=f"train_steps_{version}",
            help=f"{DEFAULT_STEPS:,} is a good start for a FLUX LoRA; more steps take longer "
            "and cost more.",
        )
        submitted = st.form_submit_button(
            "Start training", type="primary", icon=":material/model_training:"
        )
    if submitted:
        start(user, files or [], trigger_word, int(steps), is_style=kind == "style")


def start(user: str, files: list, trigger_word: str, steps: int, *, is_style: bool) -> None:
    """Upload and submit; the new training then shows in the list below, under a fresh form."""
    uploads = [UploadedFile(file.name, file.getvalue()) for file in files]
    key = submission_key(uploads, trigger_word, steps, is_style=is_style)
    if st.session_state.get(SUBMITTED_KEY) == key:  # a second click during the first upload
        st.info(
            "This training was already started: follow it under Your LoRAs.",
            icon=":material/model_training:",
        )
        return
    st.session_state[SUBMITTED_KEY] = key
    with st.status("Uploading the images and starting the training…") as progress:
        try:
            lora = context.studio().start_training(
                user=user,
                files=uploads,
                trigger_word=trigger_word,
                steps=steps,
                is_style=is_style,
            )
        except LoraStudioError as error:
            st.session_state.pop(SUBMITTED_KEY, None)  # the user may fix it and try again
            progress.update(label="The training was not started", state="error", expanded=True)
            show_error(error)
            return
    st.session_state[FORM_VERSION_KEY] = st.session_state.get(FORM_VERSION_KEY, 0) + 1
    st.session_state[STARTED_KEY] = lora.trigger_word
    # Done: the fresh form protects from here on (and the same images may be trained again).
    st.session_state.pop(SUBMITTED_KEY, None)
    st.rerun()


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
        st.markdown(f"**{md(lora_title(lora))}**")
        registered = registry.is_registered(lora)
        when = md(format_date(lora.created_at))
        if registered:
            st.caption(f"registered {when} · trigger word {md(lora.trigger_word)}")
        else:
            kind = {None: "", True: "Style · ", False: "Subject · "}[lora.is_style]
            st.caption(f"{kind}{md(count_text(lora.steps))} steps · started {when}")
        if lora.status == LoraStatus.PENDING:
            show_state(state)
        elif lora.status == LoraStatus.COMPLETED:
            done = "Registered" if registered else "Training complete"
            st.success(f"{done}: the LoRA is ready.", icon=":material/check_circle:")
            if st.button(
                "Generate Images",
                key=f"generate_{lora.id}",
                type="primary",
                icon=":material/auto_awesome:",
                width="stretch",
            ):
                open_generate(lora.id)
                routes.open_lora(lora.id)
            st.page_link(routes.GALLERY, label="View in Gallery", icon=":material/photo_library:")
        else:
            st.error(md(lora.error or "The training failed."), icon=":material/error:")


PENDING_SHOWN_KEY = "train_pending_shown"


def show_trainings(user: str) -> None:
    """The user's trainings as the background sweep last found them (it follows each with
    fal whether or not this page is open); read again on every run while one is pending."""
    views = context.studio().trainings(user)
    if not views:
        st.caption("You have not trained a LoRA yet.")
        return
    for view in views:
        show_training(view.lora, view.state)
    pending = any(view.lora.status == LoraStatus.PENDING for view in views)
    was_pending = st.session_state.get(PENDING_SHOWN_KEY, False)
    st.session_state[PENDING_SHOWN_KEY] = pending
    if was_pending and not pending:
        st.rerun()  # the whole page, so that polling stops and the quota is current


who = context.current_identity()
if not who.signed_in or who.user is None:
    st.info("Sign in to train a LoRA.", icon=":material/login:")
    if st.button("Sign in", key="sign_in_to_train", type="primary", icon=":material/login:"):
        st.login()
    st.stop()


def show_register_form(user: str) -> None:
    """Add a LoRA trained elsewhere by its weights URL."""
    with st.form("register_form", border=True):
        weights_url = st.text_input(
            "Weights URL",
            key="register_url",
            placeholder="https://…/pytorch_lora_weights.safetensors",
            help="A public link to the LoRA's .safetensors file, e.g. from fal or Hugging Face.",
        )
        trigger_word = st.text_input(
            "Trigger word", key="register_trigger", max_chars=names.MAX_TRIGGER_WORD
        )
        name = st.text_input("Name (optional)", key="register_name", max_chars=names.MAX_NAME)
        keep_copy = st.checkbox(
            "Keep a copy of the weights",
            value=True,
            key="register_keep_copy",
            help="Links to weights expire (fal's do): a copy keeps the LoRA usable.",
        )
        submitted = st.form_submit_button(
            "Register LoRA", type="primary", icon=":material/add_link:"
        )
    if not submitted:
        return
    try:
        with st.spinner("Checking the weights URL…"):
            lora = context.studio().register(
                user=user,
                weights_url=weights_url,
                trigger_word=trigger_word,
                name=name,
                keep_copy=keep_copy,
            )
    except LoraStudioError as error:
        show_error(error)
        return
    st.success(f"“{md(lora_title(lora))}” is in the gallery.", icon=":material/check_circle:")
    if keep_copy and not lora.weights_copy_url:
        st.warning(
            "The weights could not be copied just now; `python -m lora_core.cli.repair` tries "
            "again.",
            icon=":material/cloud_off:",
        )
    st.page_link(
        routes.LORA,
        label="Open its page",
        icon=":material/open_in_new:",
        query_params={"id": lora.id},
    )


form_column, list_column = st.columns([3, 2], gap="large")
with form_column:
    train_tab, register_tab = st.tabs(["Train a new LoRA", "Register an existing LoRA"])
with train_tab:
    if started := st.session_state.pop(STARTED_KEY, None):
        st.success(
            f"Training “{md(started)}” started. It takes a few minutes; follow it under "
            "Your LoRAs.",
            icon=":material/model_training:",
        )
    quota_line = st.empty()  # filled after the form, to count a training just started
    show_form(who.user)
    quota_line.caption(training_quota_text(who.user))
    polling = context.read(training.has_pending, user=who.user)
with register_tab:
    show_register_form(who.user)

with list_column:
    st.subheader("Your LoRAs", anchor=False)
    # While a training runs, only this part reruns, every few seconds.
    # A fragment reruns alone, outside the router's error boundary: it has its own.
    st.fragment(run_every=timedelta(seconds=POLL_SECONDS) if polling else None)(
        guarded(show_trainings)
    )(who.user)

"""The Generate dialog: prompt → 4 images in a 2x2 grid, with quota, progress and errors.

Open it with `open_generate(lora_id)` (a button's `on_click`, or a gallery card's link that
`followed_generate_link` reads); the page calls
`render_open_dialog()` on every run so the dialog survives reruns (also under AppTest).
What it remembers between runs is one `DialogState` under one key (`STATE_KEY`), changed
only by its own methods (the transitions); the prompt box and "My prompts" are widgets and
keep their own keys.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import replace
from datetime import timedelta

import streamlit as st

from lora_core.data.models import LoraTraining
from lora_core.errors import (
    GenerationFailed,
    GenerationPending,
    LoraStudioError,
    NotSignedIn,
    QuotaExceeded,
)
from lora_core.gallery import queries, scorecards
from lora_core.generation import prompts, recipe, service, stacks
from lora_core.generation.generators import IMAGES_PER_BATCH, Progress
from ui import context, routes
from ui.components import image_grid, lora_title
from ui.errors import UNEXPECTED, quota_message, remaining_text, show_error
from ui.generate_state import Waiting, state
from ui.recipe_inputs import Chosen, recipe_inputs, stack_inputs
from ui.text import md

logger = logging.getLogger(__name__)

PROMPT_KEY = "gen_prompt"  # the prompt box (a widget)
MY_PROMPTS_KEY = "gen_my_prompts"  # the "My prompts" box (a widget)
# Streamlit focuses the dialog box; a person opening "Generate" wants to type. Our own
# constant script (no data in it), run once per opening.
_FOCUS_PROMPT = """<script>
(() => {
  let tries = 0;
  const focus = () => {
    const box = document.querySelector('[role="dialog"] textarea');
    if (box) box.focus();
    else if (tries++ < 40) setTimeout(focus, 50);
  };
  focus();
})();
</script>"""


class FollowedLinks:
    """The Generate links' tokens this process has followed, the latest `most` of them: a
    token counts once, whichever session follows it."""

    def __init__(self, most: int = 10_000) -> None:
        self._tokens: OrderedDict[str, None] = OrderedDict()
        self._most = most
        self._lock = threading.Lock()

    def first_time(self, token: str) -> bool:
        with self._lock:
            if token in self._tokens:
                return False
            self._tokens[token] = None
            if len(self._tokens) > self._most:
                self._tokens.popitem(last=False)
            return True


@st.cache_resource(show_spinner=False)
def followed_links() -> FollowedLinks:
    return FollowedLinks()


def followed_generate_link() -> bool:
    """Whether the page was opened by a gallery card's Generate link not followed before
    (`?generate=<token>`, `routes.lora_url`, a new token each time the gallery is drawn).
    The parameter is taken out of the address at once, and a token counts once, in any
    session: Back or Forward to the link's address, a reload of it (a new tab leaves it in
    the history) or someone it was copied to gets the LoRA's page, not its dialog or a
    sign-in. (Behind several replicas, another replica does not know the tokens.)"""
    token = st.query_params.get(routes.GENERATE_PARAM)
    if token is None:
        return False
    del st.query_params[routes.GENERATE_PARAM]
    return followed_links().first_time(token)


def open_generate(lora_id: str, *, recommended: bool = True) -> None:
    """Open a fresh dialog for `lora_id`, with the user's last prompt ready to edit; with
    `recommended`, at the LoRA's recommended scale when its scorecard has one."""
    dialog = state()
    if recommended:
        start = context.read(scorecards.recommended_recipe, lora_id=lora_id)
        if start != recipe.PLAN:
            dialog.start_at(start)
    dialog.open(lora_id)
    st.session_state[PROMPT_KEY] = dialog.saved_prompt  # the widget starts from our copy


def remix(lora_id: str, prompt: str, made_with: recipe.Recipe, *, run: bool = False) -> None:
    """Open `lora_id`'s dialog filled with an image's prompt, settings and seed, to change
    anything; with `run`, generate it again at once (Reproduce: the same recipe)."""
    dialog = state()
    dialog.keep(prompt=prompt, made_with=made_with)
    open_generate(lora_id, recommended=False)  # the image's own settings
    if run:
        dialog.ask_retry()


def _advanced() -> Chosen:
    """What fal's flux-lora takes and evaluators vary; closed unless it differs from the
    plan's settings (a remix shows what it holds).

    The widgets start from the saved recipe through `value=` and get new keys each time
    the dialog opens (`DialogState.round`): a value put into a widget's session state
    would not survive a browser that never drew the widget (a closed expander) and sent
    back the widget's default on submit."""
    dialog = state()
    shown, round_ = dialog.saved_recipe, dialog.round
    with st.expander("Advanced", expanded=replace(shown, stack=()) != recipe.PLAN):
        return recipe_inputs(shown, key=lambda name: f"gen_{name}_{round_}")


def _stack(lora: LoraTraining, chosen: Chosen) -> tuple[Chosen, list[str]]:
    """Other LoRAs to stack on this one (up to MAX_STACKED_LORAS), each at its scale; open
    when the saved recipe has some (a remix of a stacked image). Also the names of the
    saved recipe's LoRAs that cannot be stacked here (hidden, not ready, one too many),
    which a warning names."""
    places = context.studio().settings.max_stacked_loras
    dialog, round_ = state(), state().round
    choices = {
        other.id: stacks.label(other)
        for other in context.read(queries.list_ready_loras)
        if other.id != lora.id
    }
    kept = [more.lora_id for more in dialog.saved_recipe.stack if more.lora_id in choices]
    dropped = [
        more.lora_id for more in dialog.saved_recipe.stack if more.lora_id not in kept[:places]
    ]
    names = context.read(stacks.names_of, lora_ids=dropped) if dropped else {}
    if dropped:
        st.warning(
            "Not stacked here: "
            + ", ".join(md(names.get(lora_id, "a LoRA no longer here")) for lora_id in dropped)
            + " (hidden, not ready, or more than this LoRA Studio stacks). "
            "Generate makes the images without them.",
            icon=":material/layers_clear:",
        )
    if not places or not choices:
        return chosen, dropped
    with st.expander("Stack LoRAs", expanded=bool(dialog.saved_recipe.stack)):
        st.caption(
            "fal merges every LoRA listed. Each one's trigger word is added to the prompt "
            "after this LoRA's, in this order."
        )
        stack = stack_inputs(
            dialog.saved_recipe, choices=choices, places=places,
            key=lambda name: f"gen_{name}_{round_}",
        )  # fmt: skip
    return replace(chosen, stack=stack), dropped


def reuse_prompt(lora_id: str, prompt: str) -> None:
    """Open `lora_id`'s page with the Generate dialog ready to run `prompt` again."""
    dialog = state()
    dialog.keep(prompt=prompt)
    open_generate(lora_id)
    dialog.go_to_after(lora_id)


def follow_reuse() -> None:
    """After `reuse_prompt` (a callback, where switching pages is not allowed), go there."""
    lora_id = state().take_switch()
    if lora_id:
        routes.open_lora(lora_id)


def close_generate() -> None:
    state().close()


def render_open_dialog(lora: LoraTraining) -> bool:
    """Show the dialog if it was opened for this LoRA; True when it was."""
    if state().open_for != lora.id:
        return False
    _generate_dialog(lora)
    return True


@st.dialog("Generate Images", width="medium", on_dismiss=close_generate)
def _generate_dialog(lora: LoraTraining) -> None:
    [wording] = context.read(stacks.wordings, loras=[lora])
    # The plan's words; with a prompt template (the LoRA's scorecard), the template's.
    mark = "\ue000"  # where the prompt goes: no character Markdown escapes
    sent = md(wording.apply(prompts.PROMPT).replace(prompts.PROMPT, mark)).replace(mark, "...")
    st.caption(f'Your prompt will include: "{sent}"')
    dialog = state()
    try:
        status = context.quota_status()
    except LoraStudioError as error:
        show_error(error)
        return
    _my_prompts()
    # A form, so that typing a prompt and clicking the button is one click: a text area
    # outside a form only commits its value on blur. No `max_chars`: the browser would
    # silently drop a longer paste; the service explains the limit instead. The text area
    # never changes its parameters, as that would make it a new, empty widget.
    with st.form("gen_form", border=False):
        prompt = st.text_area(
            "Prompt",
            key=PROMPT_KEY,
            placeholder="Describe the image you want to create...",
            help=f"1 to {prompts.MAX_PROMPT_LENGTH} characters.",
            required=True,
        )
        chosen, dropped = _stack(lora, _advanced())
        hours = status.window.total_seconds() / 3600
        st.caption(remaining_text(status), help=f"Counted over a rolling {hours:g}-hour window.")
        submitted = st.form_submit_button(
            f"Generate {IMAGES_PER_BATCH} Images",
            type="primary",
            disabled=status.exhausted,
        )
    if status.exhausted:
        st.warning(
            quota_message(status.limit, status.window, status.next_slot_at),
            icon=":material/timer:",
        )
    # Reproduce runs at once, unless the image's LoRAs cannot all be stacked here: then
    # the warning above says which, and the user decides.
    retry = dialog.take("retry") and not dropped
    if retry or submitted:
        _run_generation(lora, prompt, chosen)  # reruns the app when done

    if dialog.take("focus"):
        st.html(_FOCUS_PROMPT, unsafe_allow_javascript=True)
    # Right under the button, in this order: why the last try failed, the batch fal is
    # still working on, and the last batch made (labelled as the previous one when a later
    # try failed or is still running, so that it never passes for that try's result).
    error, waiting, last = dialog.error, dialog.waiting, dialog.last
    # Lost a race for the last slot: the warning above already says it, once.
    if error is not None and not (isinstance(error, QuotaExceeded) and status.exhausted):
        show_error(error)
        if isinstance(error, GenerationFailed) and error.retryable:
            st.button("Try again", key="gen_retry", icon=":material/refresh:", on_click=_retry)
    if waiting is not None and waiting.lora_id == lora.id:
        _watch(waiting)
    if last is not None and last.lora_id == lora.id:
        if error is not None or waiting is not None:
            st.caption("Previous batch", help="The last batch that succeeded, not the try above.")
        # The same button makes the next batch.
        _show_results(last.outcome, lora_title(lora))


WATCH_SECONDS = 3


@st.fragment(run_every=timedelta(seconds=WATCH_SECONDS))
def _watch(waiting: Waiting) -> None:
    """Look for the waiting batch every few seconds; once fal answered (the background
    sweep stored its images, or its failure), show it as this dialog's result."""
    try:
        outcome = service.batch_outcome(engine=context.studio().engine, batch_id=waiting.batch_id)
    except GenerationFailed as error:
        state().waited_in_vain(error)
        st.rerun(scope="app")
    if outcome is None:
        st.caption(":material/hourglass_top: Still waiting for fal…")
        return
    state().succeeded(waiting.lora_id, outcome)
    st.rerun(scope="app")


def _my_prompts() -> None:
    """The user's recent prompts, to pick one into the prompt box."""
    try:
        recent = context.read(prompts.recent_prompts, user=_signed_in_user())
    except LoraStudioError:
        return  # the quota line above already says the database is unavailable
    if not recent:
        # A line of plain text, not a disabled box: a greyed label (2.66:1) beside a usable
        # form reads as broken, and says nothing a sentence cannot.
        st.markdown("**My prompts:** none of yours yet. Your prompts will be here to pick.")
        return
    st.selectbox(
        "My prompts",
        recent,
        index=None,
        key=MY_PROMPTS_KEY,
        placeholder="Pick one of your recent prompts…",
        on_change=_use_my_prompt,
    )


def _use_my_prompt() -> None:
    chosen = st.session_state.get(MY_PROMPTS_KEY)
    if chosen:
        st.session_state[PROMPT_KEY] = chosen


def _retry() -> None:
    state().ask_retry()


def _run_generation(lora: LoraTraining, prompt: str, settings: Chosen) -> None:
    dialog = state()
    dialog.trying(prompt)
    try:
        chosen = settings.recipe()
    except LoraStudioError as error:
        dialog.failed(error)
        st.rerun()
    dialog.keep(prompt=prompt, made_with=chosen)
    with st.status("Generating 4 images…", expanded=True) as progress_box:
        shown: list[str] = []

        def on_progress(progress: Progress) -> None:
            if progress.stage == "queued":
                progress_box.update(label=f"In queue (position {progress.queue_position})")
            elif progress.stage == "running":
                progress_box.update(label="Generating…")
                # fal sends every log line so far on each poll: show each once.
                if progress.message and progress.message not in shown[-1:]:
                    shown.append(progress.message)
                    progress_box.markdown(md(progress.message))

        try:
            outcome = context.studio().generate(
                user=_signed_in_user(),
                lora_id=lora.id,
                prompt=prompt,
                recipe=chosen,
                on_progress=on_progress,
            )
        except GenerationPending as error:
            progress_box.update(label="Waiting for fal", state="running", expanded=False)
            dialog.pending(lora.id, error)
        except LoraStudioError as error:
            progress_box.update(label="Generation failed", state="error", expanded=False)
            dialog.failed(error)
        except Exception:
            # A bug, not a user error: logged; shown (after the rerun below) as one sentence.
            logger.exception("unexpected error in a generation")
            progress_box.update(label="Generation failed", state="error", expanded=False)
            dialog.failed(GenerationFailed(UNEXPECTED))
        else:
            progress_box.update(label="Done", state="complete", expanded=False)
            dialog.succeeded(lora.id, outcome)
    # Draw the page and the dialog again in their new state: the results (and the new
    # images in the page's gallery behind it), or the error with a retry. A full rerun,
    # because a fragment-scoped one is refused outside fragment reruns (e.g. AppTest).
    st.rerun()


def _signed_in_user() -> str:
    user = context.current_user()
    if user is None:
        raise NotSignedIn("Sign in to generate images.")
    return user


def _show_results(outcome: service.BatchOutcome, lora_name: str) -> None:
    hidden = outcome.flagged + outcome.missing
    if hidden:
        shown = len(outcome.shown)
        st.warning(
            f"{hidden} of {outcome.asked} images were held back by fal's safety checker; "
            f"{shown} {'is' if shown == 1 else 'are'} shown. This still counts as one "
            "generation.",
            icon=":material/shield:",
        )
    if outcome.shown:
        image_grid(
            outcome.shown,
            columns=2,
            with_captions=False,
            css_class="ls-result",
            key="result",
            lora_name=lora_name,
        )
    st.caption(
        "Click an image to open it full size in a new tab. Edit the prompt and click "
        f"Generate {IMAGES_PER_BATCH} Images again for another batch; they all stay on the page."
    )

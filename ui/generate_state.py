"""What the Generate dialog remembers between runs: one `DialogState` under one key
(`STATE_KEY`) of the browser session, changed only by its own methods (each one thing that
happens to the dialog). Kept apart from the dialog's drawing (`ui/generate_dialog.py`)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import streamlit as st

from lora_core.errors import GenerationPending, LoraStudioError
from lora_core.generation import recipe, service

STATE_KEY = "generate_dialog"


@dataclass(frozen=True)
class LastBatch:
    lora_id: str
    outcome: service.BatchOutcome


@dataclass(frozen=True)
class Waiting:
    """A batch fal accepted and went quiet about: the sweep follows it; the dialog shows
    its images as soon as they are stored."""

    lora_id: str
    batch_id: str


@dataclass
class DialogState:
    """What the dialog remembers between runs. Its methods are the only writers: each is
    one thing that happens to the dialog."""

    open_for: str | None = None  # the LoRA it is open for; None: closed
    saved_prompt: str = ""  # the prompt box's text: Streamlit forgets an undrawn widget's
    saved_recipe: recipe.Recipe = recipe.PLAN  # what *Advanced* starts from
    last: LastBatch | None = None  # the last batch made
    error: LoraStudioError | None = None  # why the last try failed (or is waiting)
    waiting: Waiting | None = None  # the batch fal went quiet about
    retry: bool = False  # run the saved prompt and recipe at the next run
    focus: bool = False  # put the cursor in the prompt box at the next run
    round: int = 0  # one more each opening: fresh *Advanced* widgets
    switch_to: str | None = None  # the LoRA page to go to after a callback opened it

    def open(self, lora_id: str) -> None:
        """A fresh dialog for `lora_id`, the user's last prompt ready to edit."""
        self.open_for, self.focus, self.round = lora_id, True, self.round + 1
        self.error = self.last = self.waiting = None

    def close(self) -> None:
        self.open_for, self.error = None, None

    def trying(self, prompt: str) -> None:
        """A new try of `prompt`: what the last one said is no longer the news (a batch
        fal went quiet about is still followed: it lands on the LoRA's page)."""
        self.keep(prompt=prompt)
        self.error, self.waiting = None, None

    def failed(self, error: LoraStudioError) -> None:
        self.error = error

    def pending(self, lora_id: str, error: GenerationPending) -> None:
        self.error = error
        if error.batch_id is not None:
            self.waiting = Waiting(lora_id, error.batch_id)

    def succeeded(self, lora_id: str, outcome: service.BatchOutcome) -> None:
        self.error, self.waiting = None, None
        self.last = LastBatch(lora_id=lora_id, outcome=outcome)

    def waited_in_vain(self, error: LoraStudioError) -> None:
        """fal ended the batch it had gone quiet about with a failure."""
        self.error, self.waiting = error, None

    def keep(self, *, prompt: str, made_with: recipe.Recipe | None = None) -> None:
        """What the next opening starts from (a remix, a reused prompt, a try)."""
        self.saved_prompt = prompt
        if made_with is not None:
            self.saved_recipe = made_with

    def start_at(self, recommended: recipe.Recipe) -> None:
        """A LoRA's recommended scale, steps and guidance (its scorecard), the other saved
        settings (size, seed, stacked LoRAs) kept."""
        self.saved_recipe = replace(
            self.saved_recipe,
            lora_scale=recommended.lora_scale,
            steps=recommended.steps,
            guidance=recommended.guidance,
        )

    def ask_retry(self) -> None:
        self.error, self.retry = None, True

    def go_to_after(self, lora_id: str) -> None:
        self.switch_to = lora_id

    def take_switch(self) -> str | None:
        lora_id, self.switch_to = self.switch_to, None
        return lora_id

    def take(self, flag: str) -> bool:
        """Read a one-run request (`retry`, `focus`) and clear it."""
        value = bool(getattr(self, flag))
        setattr(self, flag, False)
        return value


def state() -> DialogState:
    """The dialog's state in this browser session (made on first use)."""
    return st.session_state.setdefault(STATE_KEY, DialogState())

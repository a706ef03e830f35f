"""Prompts: what the user typed, checked, and what fal receives; the user's own recent ones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlmodel import Session, col

from lora_core.data.models import GenerationBatch
from lora_core.errors import InvalidPrompt, InvalidSettings


def recent_prompts(*, session: Session, user: str, limit: int = 20) -> list[str]:
    """The user's own latest distinct prompts, newest first (for "My prompts")."""
    rows = session.scalars(
        select(col(GenerationBatch.prompt))
        .where(col(GenerationBatch.user) == user)
        .group_by(col(GenerationBatch.prompt))
        .order_by(func.max(col(GenerationBatch.created_at)).desc())
        .limit(limit)
    ).all()
    return list(rows)


MAX_PROMPT_LENGTH = 500


TRIGGER = "{trigger}"


def with_trigger(prompt: str, trigger_word: str) -> str:
    """The full prompt, what fal receives: the user's prompt with the trigger word where it
    says `{trigger}` (an evaluation suite's prompts place it so), else appended as the plan
    says ("… in the style of <trigger word>").

    A prompt has two names on its way: `prompt`, as the user typed it (stored, shown), and
    `full_prompt`, what fal received (in the recipe of every file)."""
    if TRIGGER in prompt:
        return prompt.replace(TRIGGER, trigger_word)
    return f"{prompt} in the style of {trigger_word}"


PROMPT = "{prompt}"
MAX_TEMPLATE_LENGTH = 200


@dataclass(frozen=True)
class Wording:
    """How one LoRA's trigger word goes into a prompt: its word, and its scorecard's
    template when it has one (`{prompt}, {trigger} style`)."""

    trigger_word: str
    template: str | None = None

    def apply(self, text: str) -> str:
        """`text` with this LoRA's trigger word: where the text says `{trigger}` (a suite's
        prompt places it), else by the LoRA's template, else by the plan's rule."""
        if TRIGGER in text or not self.template:
            return with_trigger(text, self.trigger_word)
        return self.template.replace(PROMPT, text).replace(TRIGGER, self.trigger_word)


def full_prompt(prompt: str, wordings: Sequence[Wording]) -> str:
    """What fal receives for `prompt` (trimmed) made with these LoRAs: each LoRA's trigger
    word applied in turn, the first LoRA first, then each added one in the order it was
    added (`Wording.apply`). No LoRA (the base model alone): the prompt as it is."""
    text = prompt.strip()
    for wording in wordings:
        text = wording.apply(text)
    return text


def clean_template(template: str | None) -> str | None:
    """A prompt template as stored: trimmed, None when blank; `InvalidSettings` when it
    would drop the user's prompt (no `{prompt}`) or is too long."""
    text = (template or "").strip()
    if not text:
        return None
    if PROMPT not in text:
        raise InvalidSettings(
            "A prompt template must say where the prompt goes with {prompt}, "
            "e.g. “{prompt}, {trigger} style”."
        )
    if len(text) > MAX_TEMPLATE_LENGTH:
        raise InvalidSettings(
            f"The prompt template is {len(text)} characters long; the limit is "
            f"{MAX_TEMPLATE_LENGTH}."
        )
    return text


def clean_prompt(prompt: str | None) -> str:
    """The prompt trimmed, or `InvalidPrompt` when empty or over 500 characters."""
    text = (prompt or "").strip()
    if not text:
        raise InvalidPrompt("Enter a prompt describing the image you want to create.")
    if len(text) > MAX_PROMPT_LENGTH:
        raise InvalidPrompt(
            f"The prompt is {len(text)} characters long; the limit is {MAX_PROMPT_LENGTH}."
        )
    return text

"""Prompts: what the user typed, checked, and what fal receives; the user's own recent ones."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlmodel import Session, col

from lora_core.data.models import GenerationBatch
from lora_core.errors import InvalidPrompt


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

"""What a LoRA is called: its trigger word and its display name, one rule each, whether the
LoRA is trained here or registered. Both are shown as headings and sent in prompts, so
Markdown and HTML (links, images) cannot get in."""

from __future__ import annotations

import re

from lora_core.errors import LoraStudioError

MAX_TRIGGER_WORD = 64
MAX_NAME = 80
# Letters and digits of any script first, then those, spaces and a little punctuation.
_TRIGGER_WORD = re.compile(r"^[^\W_][\w .'-]+$")
_NAME = re.compile(r"^[^\W_][\w .,'&()-]*$")
TRIGGER_WORD_RULE = (
    "The trigger word may hold letters, digits, spaces and - _ . ', at least 2 of them, "
    "starting with a letter or digit (e.g. sks-style)."
)
NAME_RULE = (
    "The name may hold letters, digits, spaces and - _ . ' , & ( ), starting with a letter "
    "or digit."
)


def trigger_word(text: str, *, error: type[LoraStudioError]) -> str:
    """The trigger word, whitespace tidied; `error` (the caller's kind) says what is wrong."""
    word = _clean(text, label="trigger word", limit=MAX_TRIGGER_WORD, error=error)
    if word is None:
        raise error("Enter the trigger word.")
    if not _TRIGGER_WORD.match(word):
        raise error(TRIGGER_WORD_RULE)
    return word


def display_name(text: str, *, error: type[LoraStudioError]) -> str | None:
    """An optional display name, whitespace tidied; None when empty."""
    name = _clean(text, label="name", limit=MAX_NAME, error=error)
    if name is not None and not _NAME.match(name):
        raise error(NAME_RULE)
    return name


def _clean(text: str, *, label: str, limit: int, error: type[LoraStudioError]) -> str | None:
    text = " ".join(text.split())
    if not text:
        return None
    if len(text) > limit:
        raise error(f"The {label} is {len(text)} characters; the limit is {limit}.")
    return text

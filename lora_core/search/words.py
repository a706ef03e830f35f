"""Words of prompts, as the index keeps them and a search asks for them.

A word is a run of Unicode letters, digits or underscores (`\\w`), after NFKC normalization
and case folding: "Café", "CAFÉ" and "café" are one word, "ﬁre" is "fire", and
punctuation separates words ("red,fox" is two). A quoted phrase is matched by its adjacent
pairs ("in the snow": "in the" and "the snow" both in the prompt), which the index keeps as
terms of their own: exact for two words, and for longer phrases each pair must appear.
"""

from __future__ import annotations

import re
import unicodedata
from itertools import pairwise

_WORD = re.compile(r"\w+")
_PHRASE = re.compile(r'"([^"]*)"')
MAX_WORD = 40  # longer runs are not words people search for (hashes, URLs)
MAX_WORDS = 200  # a prompt has at most 500 characters; an original app's may be longer


def words_of(text: str) -> list[str]:
    """The words of `text`, folded, in order."""
    folded = unicodedata.normalize("NFKC", text or "").casefold()
    return [word for word in _WORD.findall(folded) if len(word) <= MAX_WORD][:MAX_WORDS]


def terms_of_prompt(prompt: str) -> set[str]:
    """What the index keeps for a prompt: each word, and each pair of adjacent words."""
    words = words_of(prompt)
    return set(words) | {f"{a} {b}" for a, b in pairwise(words)}


def terms_of_search(text: str) -> list[str]:
    """What a search's text asks for, each once: every word (any order), and for a quoted
    phrase its adjacent pairs (its one word, for a phrase of one). An unclosed quote is
    read as words."""
    terms: list[str] = []
    for phrase in _PHRASE.findall(text or ""):
        words = words_of(phrase)
        terms += [f"{a} {b}" for a, b in pairwise(words)] or words
    terms += words_of(_PHRASE.sub(" ", text or ""))
    return list(dict.fromkeys(terms))

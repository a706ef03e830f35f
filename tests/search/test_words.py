"""Words as the index keeps them and a search asks for them: Unicode, case, punctuation."""

from __future__ import annotations

from lora_core.search.words import terms_of_prompt, terms_of_search, words_of


def test_words_are_folded_unicode_runs_split_by_punctuation():
    assert words_of("A Red-Fox, in   the SNOW!") == ["a", "red", "fox", "in", "the", "snow"]
    assert words_of("Café CAFÉ cafe\u0301") == ["café", "café", "café"]  # NFKC joins the accent
    assert words_of("ﬁre Straße") == ["fire", "strasse"]  # ligature and ß case-folded
    assert words_of("東京の夜 ночь") == ["東京の夜", "ночь"]
    assert words_of("x" * 41 + " ok") == ["ok"]  # a run longer than a word is left out


def test_a_prompt_is_kept_as_its_words_and_adjacent_pairs():
    assert terms_of_prompt("Red fox, red") == {"red", "fox", "red fox", "fox red"}


def test_a_search_asks_for_words_and_a_phrases_pairs_once_each():
    assert terms_of_search('fox "in the snow" FOX') == ["in the", "the snow", "fox"]
    assert terms_of_search('"fox"') == ["fox"]
    assert terms_of_search('unclosed "quote fox') == ["unclosed", "quote", "fox"]
    assert terms_of_search("  ,;  ") == []

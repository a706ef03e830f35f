"""Stored text shown literally: the one place that makes a value inert for Streamlit.

Anything that comes from the database or a user (prompts, trigger words, LoRA names, user
identities, file names, fal's messages) is data. Most Streamlit elements render their text as
Markdown: `st.markdown`, `st.caption`, `st.title`, `st.subheader`, alerts (`st.info`, …),
and the labels of buttons, expanders, tabs, statuses, metrics and page links. A value passed
there raw would show `**bold**`, `:red[colour]`, `$LaTeX$`, Material icons and live links.

- `md(value)`: for every Markdown-rendering element (body or label).
- `badge_label(value)`: for `st.badge`, which escapes brackets itself.
- Elements that show plain text need nothing: `st.text`, `st.code`, dataframe cells, the
  options of select boxes and multiselects, text inputs, `st.set_page_config(page_title=…)`.
- Raw HTML (`unsafe_allow_html=True`, `st.html`): `html_text(value)` for text between
  tags (Streamlit finds shortcodes and autolinks there too); `html.escape(one_line(value))`
  for an attribute's value.
"""

from __future__ import annotations

import re
from html import escape

# Every character CommonMark lets a backslash escape: escaped, none of them starts markup.
_ESCAPABLE = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
# Escapes alone do not stop two things Streamlit's renderer finds in the *text* after
# parsing: GFM's literal autolinks (`https://…`, `www.…`, `name@host.tld`) and shortcodes
# (`:material/star:`, `:smile:`). An invisible WORD JOINER after `:` and `@` (and between
# `www` and its dot) breaks their patterns and nothing a reader sees.
_WORD_JOINER = "\u2060"
_BREAK_AFTER = frozenset(":@")
_WWW_DOT = re.compile(r"(?i)(www)(\\\.)")
_WWW_HTML_DOT = re.compile(r"(?i)(www)(\.)")


def one_line(value: object) -> str:
    """The value with every run of whitespace (newlines, tabs) as one space: a stored
    string cannot start a new Markdown block, a heading or a code block."""
    return " ".join(str(value).split())


def md(value: object) -> str:
    """`value` as Markdown that shows exactly its characters (on one line)."""
    escaped: list[str] = []
    for char in one_line(value):
        if char in _ESCAPABLE:
            escaped.append("\\" + char)
            if char in _BREAK_AFTER:
                escaped.append(_WORD_JOINER)
        else:
            escaped.append(char)
    return _WWW_DOT.sub(rf"\1{_WORD_JOINER}\2", "".join(escaped))


def html_text(value: object) -> str:
    """`value` as the text of raw HTML that shows exactly its characters: escaped for HTML,
    and with the word joiners `md` puts in (a shortcode or an autolink in raw HTML's text
    is still made live by Streamlit's renderer)."""
    joined = escape(one_line(value))
    for char in _BREAK_AFTER:  # a replace per character: 50 table rows' text, many times
        joined = joined.replace(char, char + _WORD_JOINER)
    return _WWW_HTML_DOT.sub(rf"\1{_WORD_JOINER}\2", joined)


def badge_label(value: object) -> str:
    """For `st.badge`, which puts its label in a directive and escapes `[` and `]` itself."""
    return md(value).replace("\\[", "[").replace("\\]", "]")

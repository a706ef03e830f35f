"""`ui.text`: stored text made literal for Streamlit's Markdown (what the browser then draws
is checked in tests/browser/test_markup.py)."""

from __future__ import annotations

import html

from hypothesis import given
from hypothesis import strategies as st

from tests.support.markup import readable
from ui.text import badge_label, html_text, md, one_line


def test_every_markdown_punctuation_is_escaped():
    assert md("**a** [b](c) $d$ `e` #f <g>") == (r"\*\*a\*\* \[b\]\(c\) \$d\$ \`e\` \#f \<g\>")


def test_autolinks_and_shortcodes_are_broken_by_an_invisible_joiner():
    joiner = "\u2060"
    assert md("https://x.example") == f"https\\:{joiner}\\/\\/x\\.example"
    assert md("www.x.example") == f"www{joiner}\\.x\\.example"
    assert md("WWW.x.example").startswith(f"WWW{joiner}\\.")
    assert md("me@x.example") == f"me\\@{joiner}x\\.example"
    assert md(":material/star:") == f"\\:{joiner}material\\/star\\:{joiner}"


def test_whitespace_cannot_start_a_block():
    assert one_line("  a\n\n    b\tc  ") == "a b c"
    assert md("x\n\n# heading\n1. item") == r"x \# heading 1\. item"


def test_a_badge_leaves_its_brackets_to_streamlit():
    assert badge_label("[x] *y*") == r"[x] \*y\*"


@given(st.text())
def test_a_reader_sees_exactly_the_text_on_one_line(text):
    # A word joiner is invisible: one already in the stored text is no more seen than the
    # ones `md` adds, so the reader's text is compared without any.
    assert readable(md(text)) == one_line(text).replace("\u2060", "")


def test_raw_html_text_is_escaped_and_its_shortcodes_and_autolinks_broken():
    joiner = "\u2060"
    assert html_text("<b>a</b> & :smile:") == f"&lt;b&gt;a&lt;/b&gt; &amp; :{joiner}smile:{joiner}"
    assert html_text("www.x.example me@x.example") == f"www{joiner}.x.example me@{joiner}x.example"


@given(st.text())
def test_a_reader_sees_exactly_the_text_of_raw_html_on_one_line(text):
    shown = html.unescape(html_text(text)).replace("\u2060", "")
    assert shown == one_line(text).replace("\u2060", "")

"""`ui.components`: the helpers that write raw HTML."""

from __future__ import annotations

from types import ModuleType

import pytest


@pytest.fixture
def components(open_app) -> ModuleType:
    open_app()  # the routes' pages built, as in a page's run
    from ui import components

    return components


def test_a_url_cannot_end_a_grids_html_block(components):
    # A blank line inside raw HTML would hand the rest of a whole grid to Markdown.
    assert components.safe_url(" https://x.example/a\n\nb c.jpg ") == (
        "https://x.example/a%0A%0Ab%20c.jpg"
    )
    assert components.safe_url("app/static/media/x\ty.jpg") == "app/static/media/x%09y.jpg"


def test_only_web_and_relative_urls_are_kept(components):
    assert components.safe_url('https://x.example/a.jpg?b=1&c="2"') == (
        "https://x.example/a.jpg?b=1&amp;c=&quot;2&quot;"
    )
    assert components.safe_url("javascript:alert(1)") == ""
    assert components.safe_url("data:image/png;base64,AAAA") == ""


def test_the_apps_style_survives_st_htmls_sanitizer(components):
    # DOMPurify (st.html) removes a <style> whose text has a "<" in it, a comment's too:
    # every rule of the app would be gone at once.
    body = components._CSS.strip().removeprefix("<style>").removesuffix("</style>")
    assert body.count("{") > 50 and "<" not in body


def test_a_cards_action_is_a_link_or_a_disabled_button(components):
    link = components.card_action(label="Generate", title="<b>x</b>", link="lora?id=a&generate=t")
    assert link.startswith('<a class="ls-open ls-action" href="lora?id=a&amp;generate=t"')
    assert "with &lt;b&gt;x&lt;/b&gt;</span>" in link and "ls-icon-sparkles" in link
    disabled = components.card_action(label="Generate", title="x", link=None)
    assert disabled.startswith('<button type="button" class="ls-action" disabled>')
    assert "ls-icon-sparkles" not in components.card_action(
        label="Sign in to generate", title="x", link="lora?id=a", icon=False
    )

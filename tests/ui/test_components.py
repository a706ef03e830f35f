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

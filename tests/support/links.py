"""Links of the app followed under AppTest, in the session that shows them (a click in
place), where `tests.conftest.open_with_query` opens a page as a new session would."""

from __future__ import annotations

from urllib.parse import parse_qsl


def follow(at, href: str):
    """What a click on an app link (`lora?id=…`, `gallery`) does: its page, run with its
    query parameters, in the same session."""
    page, _, query = href.partition("?")
    at.query_params.clear()
    for name, value in parse_qsl(query):
        at.query_params[name] = value
    return at.switch_page(f"app_pages/{page or 'gallery'}.py").run()

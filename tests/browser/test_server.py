"""A page opened by its own link (`/lora?id=…`, a reload, a shared link) reaches the server
at once: its HTML says where the app's root is (`ui.server`), so Streamlit's browser code
never asks the page's path for the server first and waits 100 ms for it to fail."""

from __future__ import annotations

from urllib.request import urlopen

from playwright.sync_api import Page, expect


def test_a_page_opened_by_its_link_asks_the_root_only(page: Page, base_url: str) -> None:
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    sockets: list[str] = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    page.goto("/lora?id=demo-neon-noir")
    expect(page.get_by_role("heading", name="neonnoir")).to_be_visible(timeout=20_000)
    probes = [url.removeprefix(base_url) for url in asked if "/_stcore/" in url]
    assert "/_stcore/health" in probes
    assert not [url for url in probes if url.startswith("/lora/")]
    assert [url.removeprefix(base_url.replace("http", "ws", 1)) for url in sockets] == [
        "/_stcore/stream"
    ]


def test_a_stored_thumbnail_is_kept_by_the_browser(page: Page, base_url: str) -> None:
    page.goto("/lora?id=demo-neon-noir")
    thumbnail = page.locator("a.ls-open img").first
    expect(thumbnail).to_be_visible(timeout=20_000)
    source = thumbnail.get_attribute("src")
    assert source and source.startswith("app/static/")
    with urlopen(f"{base_url}/{source}") as answer:
        assert answer.headers["Cache-Control"] == "public, max-age=604800, immutable"
    with urlopen(f"{base_url}/lora") as answer:
        assert answer.headers["Cache-Control"] == "no-cache"  # the page itself is not kept


def test_only_a_pages_html_carries_the_line(base_url: str) -> None:
    with urlopen(f"{base_url}/history") as answer:
        page_html = answer.read().decode()
    with urlopen(f"{base_url}/") as answer:
        root_html = answer.read().decode()
    assert page_html.count("BACKEND_BASE_URL") == 1
    assert "BACKEND_BASE_URL" not in root_html
    assert (
        page_html.replace(
            page_html[
                page_html.index("<script>window.__streamlit") : page_html.index("</script>") + 9
            ],
            "",
        )
        == root_html
    )

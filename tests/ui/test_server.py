"""`ui.server`: the line that lets a page opened by its link find the server at once, added
to the HTML of a page's path only (the real server: tests/browser/test_server.py)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ui.server import (
    KEEP_FOR_A_WEEK,
    ROOT_SCRIPT,
    PagesFindTheServer,
    StoredImagesKept,
    app_path,
    page_name,
    with_root_script,
)

INDEX = "<!DOCTYPE html><html><head><title>Streamlit</title></head><body>app</body></html>"


@pytest.mark.parametrize(
    ("path", "base", "page"),
    [
        ("/lora", "", "lora"),
        ("/history", "", "history"),
        ("/", "", None),  # the root needs no help: its folder is itself
        ("", "", None),
        ("/lora/", "", None),  # Streamlit redirects it to /lora
        ("/lora/extra", "", None),
        ("/favicon.png", "", None),
        ("/manifest.json", "", None),
        ("/_stcore", "", None),
        ("/media", "", None),
        ("/oauth2callback", "", None),
        ("/static/js/index.js", "", None),
        ("/studio/lora", "studio", "lora"),
        ("/studio/lora", "/studio/", "lora"),
        ("/studio", "studio", None),
        ("/studio/", "studio", None),
        ("/lora", "studio", None),
        ("/studiolora", "studio", None),
    ],
)
def test_page_name_is_one_segment_under_the_base_path(path, base, page):
    assert page_name(path, base) == page


def test_the_script_goes_first_in_the_head_once():
    edited = with_root_script(b"<html><head><title>x</title></head><head></head></html>")
    assert edited == b"<html><head>" + ROOT_SCRIPT + b"<title>x</title></head><head></head></html>"
    assert (
        b"BACKEND_BASE_URL" in ROOT_SCRIPT and b'new URL(".", window.location.href)' in ROOT_SCRIPT
    )


class Client:
    """Asks an ASGI app through httpx's ASGI transport, in a thread of its own (Playwright's
    tests leave an event loop running in this one)."""

    def __init__(self, app) -> None:
        self.app = app

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return self._ask("GET", path, headers)

    def head(self, path: str) -> httpx.Response:
        return self._ask("HEAD", path, None)

    def _ask(self, method: str, path: str, headers: dict[str, str] | None) -> httpx.Response:
        async def ask() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                return await client.request(method, path, headers=headers)

        with ThreadPoolExecutor(max_workers=1) as thread:
            return thread.submit(asyncio.run, ask()).result()


def make_client() -> tuple[Client, list[str | None]]:
    """The middleware around a stand-in for Streamlit: HTML for any page, gzip when asked
    (recording the Accept-Encoding it was sent), JSON, a 404 page and a streamed page."""
    encodings: list[str | None] = []

    def index(request: Request) -> Response:
        encodings.append(request.headers.get("accept-encoding"))
        return HTMLResponse(INDEX, headers={"Cache-Control": "no-cache"})

    def missing(request: Request) -> Response:
        return HTMLResponse(INDEX, status_code=404)

    def streamed(request: Request) -> Response:
        chunks = [b"<html><he", b"ad><title>s</title></head>", b"<body>late</body></html>"]
        return StreamingResponse(iter(chunks), media_type="text/html")

    inner = Starlette(routes=[
        Route("/", index), Route("/lora", index), Route("/history", index),
        Route("/gone", missing), Route("/slow", streamed),
        Route("/data", lambda request: JSONResponse({"head": "<head>"})),
    ])  # fmt: skip
    return Client(PagesFindTheServer(inner)), encodings


def test_a_pages_html_gets_the_script_with_its_length():
    client, encodings = make_client()
    answer = client.get("/lora?id=neon", headers={"Accept-Encoding": "gzip"})
    assert answer.status_code == 200
    assert answer.text == INDEX.replace("<head>", "<head>" + ROOT_SCRIPT.decode())
    assert int(answer.headers["content-length"]) == len(answer.content)
    assert answer.headers["cache-control"] == "no-cache"  # Streamlit's headers kept
    assert encodings == [None]  # asked uncompressed, to be edited


def test_a_streamed_page_is_edited_whole():
    client, _ = make_client()
    answer = client.get("/slow")
    assert (
        answer.text
        == f"<html><head>{ROOT_SCRIPT.decode()}<title>s</title></head><body>late</body></html>"
    )


def test_everything_else_passes_untouched():
    client, encodings = make_client()
    root = client.get("/", headers={"Accept-Encoding": "gzip"})
    assert root.text == INDEX and encodings == ["gzip"]
    assert client.get("/data").json() == {"head": "<head>"}
    gone = client.get("/gone")
    assert (gone.status_code, gone.text) == (404, INDEX)
    assert client.head("/history").status_code in {200, 405}
    assert b"BACKEND_BASE_URL" not in client.head("/history").content


@pytest.mark.parametrize(
    ("path", "base", "relative"),
    [
        ("/app/static/media/a.webp", "", "app/static/media/a.webp"),
        ("/", "", ""),
        ("/studio/app/static/a.webp", "studio", "app/static/a.webp"),
        ("/studio", "studio", ""),
        ("/app/static/a.webp", "studio", None),
    ],
)
def test_app_path_is_the_path_under_the_base(path, base, relative):
    assert app_path(path, base) == relative


def image_client() -> Client:
    """`StoredImagesKept` around a stand-in for Streamlit's routes: the app's static files
    (one there, one missing), Streamlit's own media and a page."""

    def static(request: Request) -> Response:
        if request.path_params["path"] == "media/b1/0.thumb.webp":
            return Response(b"RIFF", media_type="image/webp", headers={"ETag": '"1"'})
        return Response(b"File not found", status_code=404)

    inner = Starlette(routes=[
        Route("/app/static/{path:path}", static),
        Route("/media/{path:path}", lambda request: Response(b"x", media_type="image/png")),
        Route("/lora", lambda request: HTMLResponse(INDEX)),
    ])  # fmt: skip
    return Client(StoredImagesKept(inner))


def test_a_stored_image_is_kept_for_a_week():
    answer = image_client().get("/app/static/media/b1/0.thumb.webp")
    assert answer.status_code == 200 and answer.content == b"RIFF"
    assert answer.headers["cache-control"] == KEEP_FOR_A_WEEK.decode()
    assert answer.headers["etag"] == '"1"'
    assert KEEP_FOR_A_WEEK == b"public, max-age=604800, immutable"


def test_nothing_else_is_kept():
    client = image_client()
    missing = client.get("/app/static/media/b1/9.webp")  # may exist later: asked again
    assert missing.status_code == 404 and "cache-control" not in missing.headers
    assert "cache-control" not in client.get("/media/abc.png").headers  # Streamlit's own
    assert "cache-control" not in client.get("/lora").headers

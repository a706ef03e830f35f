"""The web server's two additions to Streamlit's, as ASGI middleware (`streamlit_app.py`).

**A page opened by its own link** (`/lora?id=…`, `/history`) reaches the server at once
instead of 100 ms late (`PagesFindTheServer`). Streamlit's browser code cannot tell from
`/lora` whether the app lives at `/` (and `lora` is a page) or at `/lora` (a base URL path).
It asks `/lora/_stcore/health` first; the server answers 404 (Streamlit reserves that
path), and the browser waits 100 ms before it asks `/_stcore/health` (`getPossibleBaseUris`
and the pinging loop in Streamlit's frontend, which say so). Every shared link, reload and
new tab of a page other than the gallery paid that: about a fifth of the page's time
(`benchmarks/page_ready.py`). The browser code reads where the server is from
`window.__streamlit.BACKEND_BASE_URL` when the page defines it (the hook Streamlit's own
hosts use): this middleware adds that one line to the HTML Streamlit serves for a page's
path, the app's root as the folder of the page's URL (right behind a proxy that serves
the app under a prefix too).

**Stored images are kept by the browser** (`StoredImagesKept`): Streamlit serves the app's
`static/` folder (`app/static/…`, where a local media store writes each image and thumbnail
once, under its batch's or image's id, atomically) without Cache-Control, so a browser asks
again for every image younger than a few minutes (its heuristic: a tenth of the file's
age), a just-generated batch on every page it shows on. They are kept for a week.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import streamlit as st

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# A page's URL is the app's root plus one segment (`lora`): its folder is the app's root.
ROOT_SCRIPT = (
    b"<script>window.__streamlit = Object.assign("
    b'{BACKEND_BASE_URL: new URL(".", window.location.href).href}, window.__streamlit)'
    b"</script>"
)
# What a stored image's answer says: nothing at that address ever changes.
KEEP_FOR_A_WEEK = b"public, max-age=604800, immutable"
# Paths with a segment of their own that are never a page.
_NOT_PAGES = frozenset({"_stcore", "static", "media", "app", "component", "auth", "oauth2callback"})


def app_path(path: str, base_url_path: str) -> str | None:
    """A request's path under the app's base URL path, without its leading slash (`"lora"`
    for `/lora`; `"app/static/x.webp"`), or None when it is outside it."""
    base = base_url_path.strip("/")
    relative = path.lstrip("/")
    if not base:
        return relative
    if relative == base:
        return ""
    return relative[len(base) + 1 :] if relative.startswith(base + "/") else None


def page_name(path: str, base_url_path: str) -> str | None:
    """The page a request's path names under the app's base URL path (`"lora"` for
    `/lora`), or None when it is the app's root or not a page's path (a file, an
    endpoint, anything deeper)."""
    relative = app_path(path, base_url_path)
    if (
        relative is None
        or not relative
        or "/" in relative
        or "." in relative
        or relative in _NOT_PAGES
    ):
        return None
    return relative


def with_root_script(html: bytes) -> bytes:
    """Streamlit's page HTML with `ROOT_SCRIPT` first in its head, before Streamlit's code
    (a module script, run after the document is parsed)."""
    return html.replace(b"<head>", b"<head>" + ROOT_SCRIPT, 1)


class PagesFindTheServer:
    """ASGI middleware: `ROOT_SCRIPT` in the HTML of a page's path; everything else (the
    WebSocket, files, endpoints, the root's HTML) passes untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.base_url_path = _base_url_path()  # read once: fixed while the server runs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or page_name(scope["path"], self.base_url_path) is None
        ):
            await self.app(scope, receive, send)
            return
        # The HTML is a few KB: asked for uncompressed, so it can be edited.
        headers = [(name, value) for name, value in scope["headers"] if name != b"accept-encoding"]
        await self.app({**scope, "headers": headers}, receive, _Editor(send).send)


def _base_url_path() -> str:
    return str(st.get_option("server.baseUrlPath") or "")


class StoredImagesKept:
    """ASGI middleware: `KEEP_FOR_A_WEEK` on every file found under `app/static/`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.base_url_path = _base_url_path()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        relative = app_path(scope.get("path", ""), self.base_url_path)
        if scope["type"] != "http" or not (relative or "").startswith("app/static/"):
            await self.app(scope, receive, send)
            return

        async def kept(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 200:
                headers = [(k, v) for k, v in message["headers"] if k != b"cache-control"]
                message = {**message, "headers": [*headers, (b"cache-control", KEEP_FOR_A_WEEK)]}
            await send(message)

        await self.app(scope, receive, kept)


class _Editor:
    """Holds back an HTML answer's start and body, and sends them edited, its length new."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._start: Message | None = None
        self._body = b""

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            content_type = dict(message.get("headers", [])).get(b"content-type", b"")
            if message["status"] == 200 and content_type.startswith(b"text/html"):
                self._start = message
                return
        elif message["type"] == "http.response.body" and self._start is not None:
            self._body += message.get("body", b"")
            if message.get("more_body"):
                return
            body = with_root_script(self._body)
            headers = [(k, v) for k, v in self._start["headers"] if k != b"content-length"]
            await self._send(
                {**self._start, "headers": [*headers, (b"content-length", b"%d" % len(body))]}
            )
            await self._send({"type": "http.response.body", "body": body})
            self._start = None
            return
        await self._send(message)

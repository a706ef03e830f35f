"""A host on this machine's private network that records every request it gets: where a
LoRA's weights URL may point, to see whether the app asked it anything."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class PrivateHost:
    url: str  # http://127.0.0.1:<port>
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)

    @property
    def weights_url(self) -> str:
        return f"{self.url}/w.safetensors"


@contextlib.contextmanager
def private_host(status: int = 404) -> Iterator[PrivateHost]:
    """A loopback HTTP server answering `status` to everything (by default 404: were it
    asked, the weights would look gone), recording each request."""
    host = PrivateHost(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            host.requests.append((self.command, self.path))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_HEAD

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    host.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield host
    finally:
        server.shutdown()
        server.server_close()

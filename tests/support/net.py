"""Loopback helpers shared by the tests, the fakes and the benchmarks: the deployment's own
free port (`deploy.stack`), so a free port is found one way everywhere, and a TLS server
whose certificate comes from a CA of its own."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import trustme

from deploy.stack import free_port

__all__ = ["Answer", "free_port", "refuse_example_names", "serve_https"]


class Answer(BaseHTTPRequestHandler):
    """`{}` to any GET or POST: a stand-in server."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.do_GET()

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve_https(ca_file: Path) -> Iterator[tuple[str, Path]]:
    """A server answering `{}` over TLS on loopback, its certificate from a new CA whose PEM
    is written to `ca_file`: (its URL, `ca_file`)."""
    ca = trustme.CA()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ca.cert_pem.write_to_path(str(ca_file))
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", ca_file
    finally:
        server.shutdown()
        server.server_close()


def refuse_example_names() -> None:
    """Make names under `.example` (reserved, RFC 2606: the tests' stored image URLs) fail
    to resolve at once, in this process. A DNS server that does not answer made each lookup
    wait 5 s, and closing the app waits for a thumbnail worker fetching such an image."""
    real = socket.getaddrinfo

    def getaddrinfo(host: str | bytes | None, *args: object, **kwargs: object) -> list:
        name = host.decode() if isinstance(host, bytes) else host
        if isinstance(name, str) and name.rstrip(".").lower().endswith(".example"):
            raise socket.gaierror(socket.EAI_NONAME, f"{name}: a reserved name (RFC 2606)")
        return real(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo

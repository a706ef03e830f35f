"""HTTP clients for what the core fetches from the web: fal's images, LoRA weights, our own
bucket, Turso. One trust setup for all of them.

httpx builds a TLS context for every client it makes, and building one reads the whole
certificate bundle: ~30 ms of CPU, more than copying a batch's four images. The clients
here share one context per trust setting instead, trusting what httpx (and so fal_client)
trusts: `SSL_CERT_FILE`/`SSL_CERT_DIR` when set, else certifi's bundle, so that a Python
without the system's store (macOS's python.org build) still reaches Turso and fal.
"""

from __future__ import annotations

import functools
import os
import ssl

import certifi
import httpx


def tls_context() -> ssl.SSLContext:
    """The context for the trust setting of the environment now (shared; built once)."""
    return _context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.cache
def _context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    if cert_file or cert_dir:
        return ssl.create_default_context()  # OpenSSL reads both variables
    return ssl.create_default_context(cafile=certifi.where())


def client(*, timeout: float, follow_redirects: bool = False) -> httpx.Client:
    """An httpx client over the shared TLS context (close it, or use it in `with`)."""
    return httpx.Client(timeout=timeout, follow_redirects=follow_redirects, verify=tls_context())

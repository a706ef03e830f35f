"""The core's HTTP clients: one TLS context per trust setting, trusting what httpx trusts."""

from __future__ import annotations

import ssl

import httpx
import pytest

from lora_core import web


@pytest.fixture
def contexts_built(monkeypatch) -> list[ssl.SSLContext]:
    """Every TLS context built from now on (httpx's own and ours), none cached before."""
    built: list[ssl.SSLContext] = []
    original = ssl.create_default_context

    def counted(*args, **kwargs):
        built.append(original(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(ssl, "create_default_context", counted)
    web._context.cache_clear()
    yield built
    web._context.cache_clear()


def test_clients_trust_the_certificates_ssl_cert_file_names(https_server, monkeypatch):
    url, ca_file = https_server
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))

    with web.client(timeout=5) as client:
        assert client.get(url).json() == {}


def test_clients_refuse_a_certificate_from_an_unknown_authority(https_server, monkeypatch):
    url, _ = https_server
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)  # certifi's bundle: not this CA

    with web.client(timeout=5) as client, pytest.raises(httpx.ConnectError):
        client.get(url)


def test_many_clients_build_one_tls_context(https_server, monkeypatch, contexts_built):
    url, ca_file = https_server
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))

    for _ in range(3):
        with web.client(timeout=5, follow_redirects=True) as client:
            client.get(url)

    assert len(contexts_built) == 1


def test_a_new_trust_setting_gets_its_own_context(https_server, monkeypatch, contexts_built):
    _, ca_file = https_server
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    certifi_context = web.tls_context()
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))

    assert web.tls_context() is not certifi_context
    assert web.tls_context() is web.tls_context()
    assert len(contexts_built) == 2

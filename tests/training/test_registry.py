"""Registering a LoRA trained elsewhere by its weights URL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from lora_core.data.clock import to_iso
from lora_core.data.models import LoraStatus, LoraTraining
from lora_core.errors import InvalidRegistration
from lora_core.generation import service
from lora_core.training import registry
from tests.support.factories import stored_loras

pytestmark = pytest.mark.both_backends  # the core suite, on SQLite and on libSQL


@pytest.fixture
def weights_url(fake_fal) -> str:
    """Trained weights on fal's CDN (the fake answers HEAD for its files)."""
    return f"{fake_fal.url}/files/job-1/pytorch_lora_weights.safetensors"


def is_a_sentence(message: str) -> bool:
    """What people read: a capital first, a full stop last (no mangled words around)."""
    return message[:1].isupper() and message[1:2].islower() and message.endswith(".")


def register(
    engine, url: str, trigger_word: str = "wtrclr", name: str = "", *, private: bool = True
) -> LoraTraining:
    """Register as the app would; the fake's loopback address is allowed unless told not."""
    return registry.register_lora(
        engine=engine, user="ann", weights_url=url, trigger_word=trigger_word, name=name,
        allow_private_hosts=private,
    )  # fmt: skip


def test_a_reachable_safetensors_url_becomes_a_completed_lora(engine, fake_fal, weights_url):
    lora = register(engine, f"  {weights_url} ", "  wtrclr ", " Watercolour  studies ")

    [row] = stored_loras(engine)
    assert row.id == lora.id
    assert (row.status, row.lora_weights_url, row.user) == (
        LoraStatus.COMPLETED, weights_url, "ann",
    )  # fmt: skip
    assert (row.trigger_word, row.name) == ("wtrclr", "Watercolour studies")
    assert row.request_id.startswith("registered-")
    assert [(r.method, r.path) for r in fake_fal.requests] == [
        ("HEAD", "/files/job-1/pytorch_lora_weights.safetensors")
    ]
    service.check_ready(row)  # it can generate


@pytest.mark.parametrize(
    ("url", "trigger_word", "name", "message"),
    [
        ("ftp://host/w.safetensors", "sks", "", "must be a web address"),
        ("https:///w.safetensors", "sks", "", "must be a web address"),
        ("https://host/weights.bin", "sks", "", "must point to a .safetensors file"),
        ("FAKE", "   ", "", "Enter the trigger word."),
        ("FAKE", "x" * 65, "", "The trigger word is 65 characters; the limit is 64."),
        ("FAKE", "sks", "n" * 81, "The name is 81 characters; the limit is 80."),
        ("https://[abc/x.safetensors", "sks", "", "must be a web address"),
        ("FAKE", "[click](javascript:alert(1))", "", "may hold letters, digits"),
        ("FAKE", "sks", "<img src=x onerror=alert(1)>", "may hold letters, digits"),
        ("FAKE", "sks", "![pixel](https://tracker.example/p.png)", "may hold letters, digits"),
    ],
)
def test_unusable_input_is_explained_and_nothing_is_stored(
    engine, fake_fal, weights_url, url, trigger_word, name, message
):
    with pytest.raises(InvalidRegistration, match=message) as refused:
        register(engine, weights_url if url == "FAKE" else url, trigger_word, name)

    assert is_a_sentence(str(refused.value))
    assert stored_loras(engine) == []
    assert fake_fal.requests == []  # refused before any request


def test_weights_that_do_not_answer_are_refused(engine, fake_fal, weights_url):
    fake_fal.script.files_missing = True
    with pytest.raises(InvalidRegistration, match="answered HTTP 404"):
        register(engine, weights_url)
    with pytest.raises(InvalidRegistration, match="did not answer"):
        register(engine, "https://127.0.0.1:1/lora.safetensors")

    assert stored_loras(engine) == []


def test_the_same_weights_cannot_be_registered_twice(engine, weights_url):
    register(engine, weights_url, name="First")

    with pytest.raises(InvalidRegistration, match="already in the gallery as “First”"):
        register(engine, weights_url, "other")

    assert len(stored_loras(engine)) == 1


@pytest.mark.parametrize(
    "url",
    [
        "FAKE",  # this machine
        "http://169.254.169.254/latest/meta-data/w.safetensors",  # a cloud's metadata
        "http://10.0.0.7/w.safetensors",
    ],
)
def test_weights_on_a_private_network_are_refused_unless_allowed(
    engine, fake_fal, weights_url, url
):
    with pytest.raises(InvalidRegistration) as refused:
        register(engine, weights_url if url == "FAKE" else url, private=False)

    assert str(refused.value) == (
        "The weights URL points into a private network: use a public address."
    )
    assert fake_fal.requests == [] and stored_loras(engine) == []


class _Host(BaseHTTPRequestHandler):
    """Weights behind a host that refuses HEAD (405) and answers a ranged GET, or that
    redirects every request to itself."""

    loop = False
    seen: ClassVar[list[tuple[str, str | None]]] = []

    def log_message(self, *args) -> None:
        pass

    def do_HEAD(self) -> None:
        self.seen.append(("HEAD", self.path))
        if self.path == "/moved.safetensors":  # moved elsewhere on the same host
            self.send_response(301)
            self.send_header("Location", "/w.safetensors")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._answer(405)

    def do_GET(self) -> None:
        self.seen.append(("GET", self.headers.get("Range")))
        self._answer(206, b"x")

    def _answer(self, status: int, body: bytes = b"") -> None:
        if self.loop:
            self.send_response(302)
            self.send_header("Location", self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "GET":
            self.wfile.write(body)


@pytest.fixture
def host():
    _Host.seen = []
    _Host.loop = False
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Host)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/w.safetensors"
    server.shutdown()


def test_weights_whose_host_refuses_head_are_checked_with_a_one_byte_get(engine, host):
    register(engine, host)

    assert _Host.seen == [("HEAD", "/w.safetensors"), ("GET", "bytes=0-0")]
    assert [row.lora_weights_url for row in stored_loras(engine)] == [host]


def test_weights_that_redirect_forever_are_refused_in_so_many_words(engine, host):
    _Host.loop = True

    with pytest.raises(InvalidRegistration) as refused:
        register(engine, host)

    assert str(refused.value) == "The weights URL redirects too many times."
    assert stored_loras(engine) == []


def test_a_registered_lora_is_dated_when_it_was_registered(engine, weights_url):
    moment = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    registry.register_lora(
        engine=engine, user="ann", weights_url=weights_url, trigger_word="wtrclr",
        allow_private_hosts=True, now=moment,
    )  # fmt: skip

    assert [row.created_at for row in stored_loras(engine)] == [to_iso(moment)]


def test_private_hosts_are_refused_unless_the_caller_allows_them(engine, weights_url):
    with pytest.raises(InvalidRegistration, match="points into a private network"):
        registry.register_lora(
            engine=engine, user="ann", weights_url=weights_url, trigger_word="wtrclr"
        )


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://host/w.safetensors", "The weights URL must be a web address (https://…)."),
        (
            "https://no-such-host.invalid/w.safetensors",
            "The weights URL did not answer: check the address and that it is public.",
        ),
    ],
)
def test_an_unusable_address_is_refused_in_so_many_words(engine, url, words):
    with pytest.raises(InvalidRegistration) as refused:
        register(engine, url, private=False)

    assert str(refused.value) == words


def test_a_moved_weights_file_is_followed_to_its_new_address(engine, host):
    register(engine, host.replace("/w.", "/moved."))

    assert _Host.seen == [
        ("HEAD", "/moved.safetensors"),
        ("HEAD", "/w.safetensors"),
        ("GET", "bytes=0-0"),
    ]


def test_each_registration_gets_a_request_id_of_its_own(engine, weights_url, fake_fal):
    first = register(engine, weights_url)
    second = register(engine, weights_url.replace("job-1", "job-2"))

    assert first.request_id != second.request_id
    assert all(len(lora.request_id) > len("registered-") + 8 for lora in (first, second))

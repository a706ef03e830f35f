"""The libSQL backend against a real `sqld`: errors a user can act on, and no stalls."""

from __future__ import annotations

import http.client
import io
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from lora_core.data import turso
from lora_core.data.db import DatabaseTarget, create_db_engine, session_scope
from lora_core.data.models import LoraTraining
from lora_core.data.schema import ensure_schema
from lora_core.errors import DatabaseUnavailable
from tests.support.sqld import Sqld, signed_token


def a_lora(lora_id: str) -> LoraTraining:
    return LoraTraining(
        id=lora_id,
        request_id=f"req-{lora_id}",
        user="trainer",
        trigger_word="sks",
        status="completed",
        created_at="2026-11-25T10:00:00.000Z",
    )


def count_loras(engine) -> int:
    with session_scope(engine) as session:
        return session.execute(text("SELECT count(*) FROM lora_trainings")).scalar_one()


@pytest.mark.parametrize(
    ("url", "http"),
    [
        ("libsql://studio-team.turso.io", "https://studio-team.turso.io"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("wss://studio-team.turso.io", "https://studio-team.turso.io"),
        ("https://studio-team.turso.io?authToken=x", "https://studio-team.turso.io"),
    ],
)
def test_turso_addresses_become_http_addresses(url, http):
    assert turso.is_remote_url(url)
    assert turso.http_base_url(url) == http


def test_a_file_url_is_not_a_server():
    assert not turso.is_remote_url("sqlite:///data/studio.db")


def test_the_label_names_the_server_but_never_the_token():
    target = DatabaseTarget("libsql://studio-team.turso.io", auth_token="secret-token")

    assert target.label == "Turso / libSQL server · studio-team.turso.io"
    assert "secret-token" not in repr(target)


def test_a_duplicate_key_is_an_integrity_error_not_a_generic_one(sqld: Sqld):
    sqld.wipe()
    engine = create_db_engine(sqld.target)
    ensure_schema(engine)
    with session_scope(engine) as session:
        session.add(a_lora("l1"))
        session.commit()

    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(
            text("INSERT INTO lora_trainings (id, request_id, wallet_address, trigger_word,"
                 " status, created_at) VALUES ('l1', 'other', 'w', 't', 'completed', 'x')")
        )  # fmt: skip
    assert count_loras(engine) == 1
    engine.dispose()


def test_a_failed_transaction_writes_nothing(sqld: Sqld):
    sqld.wipe()
    engine = create_db_engine(sqld.target)
    ensure_schema(engine)

    with pytest.raises(IntegrityError), Session(engine) as session:
        session.add(a_lora("l1"))
        session.flush()
        session.add(a_lora("l1"))  # same key: the whole transaction rolls back
        session.commit()

    assert count_loras(engine) == 0
    engine.dispose()


@pytest.fixture
def own_sqld(tmp_path: Path) -> Iterator[Sqld]:
    """A server of this test's own: no stream another test left open can hold its lock."""
    server = Sqld(tmp_path / "sqld").start()
    yield server
    server.remove()


def test_many_threads_write_at_once_without_waiting_for_the_server_timeout(own_sqld: Sqld):
    engine = create_db_engine(own_sqld.target)
    ensure_schema(engine)
    start = threading.Barrier(16)
    failures: list[BaseException] = []
    waits: list[float] = []

    def writer(number: int) -> None:
        start.wait()
        try:
            for step in range(5):
                began = time.monotonic()
                with session_scope(engine) as session:
                    session.add(a_lora(f"l-{number}-{step}"))
                    session.commit()
                waits.append(time.monotonic() - began)
        except BaseException as error:  # reported below
            failures.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert failures == [], [repr(failure.__cause__) for failure in failures]
    assert count_loras(engine) == 80
    # A stall waits for sqld's 5 s transaction timeout: no single write comes near it (the
    # total depends on how busy the machine is; one write's wait on a stall does not).
    assert max(waits) < 4.5, f"the slowest of 80 writes took {max(waits):.1f} s"
    engine.dispose()


def leave_a_dropped_stream_in_the_pool(engine) -> None:
    """Close the pooled connection's stream on the server, as sqld does after 10 s idle."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
        session = connection.connection.driver_connection.http_session
        baton = session._baton
        session.execute_pipeline([{"type": "close"}], track_autocommit=False)
        session._baton = baton  # the client still believes in it


@pytest.mark.parametrize(("idle_limit", "works"), [(0.2, True), (60, False)])
def test_a_connection_idle_past_its_stream_starts_a_new_one(
    sqld: Sqld, monkeypatch, idle_limit, works
):
    sqld.wipe()
    engine = create_db_engine(sqld.target)
    ensure_schema(engine)
    monkeypatch.setattr(turso, "STREAM_IDLE_SECONDS", idle_limit)
    leave_a_dropped_stream_in_the_pool(engine)
    time.sleep(0.3)

    if works:
        assert count_loras(engine) == 0
    else:  # the control: reusing the dropped stream fails
        with pytest.raises(DatabaseUnavailable):
            count_loras(engine)
    engine.dispose()


def test_a_wrong_token_names_the_setting_to_fix(sqld: Sqld):
    sqld.wipe()
    other_key_token = signed_token(Sqld(Path("/nonexistent")).key)
    for token in (other_key_token, None, "not-a-jwt"):
        engine = create_db_engine(DatabaseTarget(sqld.url, auth_token=token))

        with pytest.raises(DatabaseUnavailable, match="TURSO_AUTH_TOKEN") as raised:
            ensure_schema(engine)
        assert token is None or token not in str(raised.value)
        engine.dispose()


def test_a_server_that_goes_away_is_unavailable_then_recovers(tmp_path: Path):
    server = Sqld(tmp_path / "sqld").start()
    try:
        engine = create_db_engine(server.target)
        ensure_schema(engine)
        with session_scope(engine) as session:
            session.add(a_lora("l1"))
            session.commit()

        server.stop()
        with pytest.raises(DatabaseUnavailable, match="unavailable right now"):
            count_loras(engine)

        server.start()  # same port, same data
        assert count_loras(engine) == 1
        engine.dispose()
    finally:
        server.remove()


def test_statements_reuse_one_keep_alive_connection(sqld: Sqld, monkeypatch):
    sqld.wipe()
    engine = create_db_engine(sqld.target)
    ensure_schema(engine)
    engine.dispose()  # start counting from an empty pool
    connects: list[object] = []
    real_connect = socket.create_connection

    def counted(address, *args, **kwargs) -> socket.socket:
        connects.append(address)
        return real_connect(address, *args, **kwargs)

    monkeypatch.setattr(turso.socket, "create_connection", counted)
    for _ in range(20):
        assert count_loras(engine) == 0

    assert len(connects) == 1  # not one TCP connection (and TLS handshake) per statement
    engine.dispose()


def test_a_connection_the_server_closed_while_idle_is_replaced(tmp_path: Path, monkeypatch):
    """A restarted server (or a proxy's idle timeout) closes the kept-alive connection;
    the next statement opens a new one instead of failing on the dead one."""
    monkeypatch.setattr(turso, "STREAM_IDLE_SECONDS", 0.0)  # only the connection is stale
    server = Sqld(tmp_path / "sqld").start()
    try:
        engine = create_db_engine(server.target)
        ensure_schema(engine)
        assert count_loras(engine) == 0
        server.stop()
        server.start()  # same port: the pooled connection's socket is closed
        time.sleep(0.1)

        assert count_loras(engine) == 0
        engine.dispose()
    finally:
        server.remove()


def test_tls_trusts_the_certificates_ssl_cert_file_names(https_server, monkeypatch):
    url, ca_file = https_server
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    http = turso._KeepAlive(connect_seconds=5, read_seconds=5)

    assert http.post(f"{url}/v3/cursor", b"{}", {}) == (200, b"{}")
    http.close()


def test_tls_refuses_a_certificate_from_an_unknown_authority(https_server, monkeypatch):
    url, _ = https_server
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)  # certifi's bundle: not this CA
    http = turso._KeepAlive(connect_seconds=5, read_seconds=5)

    with pytest.raises(ssl.SSLCertVerificationError):
        http.post(f"{url}/v3/cursor", b"{}", {})


# The HTTP exchange itself (`turso._KeepAlive` writes requests and reads answers): what
# sqld and Turso's servers send, and what a broken or closing server leaves.


CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


def answer(raw: bytes) -> tuple[int, bytes, bool]:
    return turso._read_answer(io.BytesIO(raw))


def test_a_chunked_answer_is_read_whole_and_the_connection_kept():
    raw = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
        b'5\r\n{"a":\r\n4;ext=1\r\n 1}\n\r\n0\r\nX-Trailer: t\r\n\r\n'
        b"HTTP/1.1 200 OK\r\n"  # the next answer on the same connection stays unread
    )
    assert answer(raw) == (200, b'{"a": 1}\n', False)


def test_an_answer_with_a_length_is_read_to_that_length():
    raw = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 7\r\n\r\ndenied!extra"
    assert answer(raw) == (401, b"denied!", False)


def test_a_server_that_says_it_closes_or_gives_no_length_ends_the_connection():
    assert answer(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}") == (
        200, b"{}", True,
    )  # fmt: skip
    assert answer(b"HTTP/1.1 200 OK\r\n\r\n{}") == (200, b"{}", True)
    assert answer(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}") == (200, b"{}", True)


def test_an_answer_without_a_body_is_not_waited_for():
    """No body after 204 (a proxy's answer, say): reading one would wait for the timeout."""
    assert answer(b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK") == (204, b"", False)


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"", http.client.RemoteDisconnected),  # closed before answering
        (b"SSH-2.0-OpenSSH\r\n\r\n", http.client.BadStatusLine),  # not an HTTP server
        (b"HTTP/1.1 200 OK\r\nContent-Le", http.client.IncompleteRead),  # cut in the head
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", http.client.IncompleteRead),
        (CHUNKED + b"5\r\n{}", http.client.IncompleteRead),  # a chunk cut short
        (CHUNKED + b"zz\r\n", http.client.IncompleteRead),  # not a chunk's size
        (CHUNKED + b"-5\r\n{}", http.client.IncompleteRead),  # nor this: no read to the end
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", http.client.HTTPException),
        (b"HTTP/1.1 200 OK\r\n" + b"a: b\r\n" * 101 + b"\r\n", http.client.HTTPException),
        (b"HTTP/1.1 200 OK\r\nx: " + b"y" * 70_000 + b"\r\n\r\n", http.client.LineTooLong),
    ],
)
def test_a_broken_answer_is_an_http_error_not_a_hang_or_a_wrong_body(raw, error):
    with pytest.raises(error):
        answer(raw)


def test_an_ipv6_host_keeps_its_brackets_in_the_host_header():
    request = turso._request(urlsplit("http://[::1]:8080/v3"), b"", {})
    assert b"\r\nHost: [::1]:8080\r\n" in request


def test_a_request_is_one_write_with_its_length_and_headers():
    request = turso._request(
        urlsplit("http://127.0.0.1:8080/v3/pipeline"), b'{"x": 1}', {"Authorization": "Bearer t"}
    )
    assert request == (
        b"POST /v3/pipeline HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept-Encoding: identity\r\n"
        b'Content-Length: 8\r\nAuthorization: Bearer t\r\n\r\n{"x": 1}'
    )


def test_a_token_with_a_line_break_is_refused_not_sent():
    with pytest.raises(ValueError, match="line break"):
        turso._request(urlsplit("http://h/v3"), b"{}", {"Authorization": "Bearer t\r\nX: y"})


def test_after_an_answer_that_closes_the_next_request_opens_a_new_connection():
    """A proxy in front of the server may answer `Connection: close`: the next statement
    goes over a new connection instead of failing on the closed one."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    bodies: list[bytes] = []

    def serve() -> None:
        for number in range(2):
            connection, _ = listener.accept()
            with connection, connection.makefile("rb") as incoming:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    head += incoming.read(1)
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                bodies.append(incoming.read(length))
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n"
                    + str(number).encode()
                )

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    http = turso._KeepAlive(connect_seconds=5, read_seconds=5)
    try:
        assert http.post(f"http://127.0.0.1:{port}/v3", b"first", {}) == (200, b"0")
        assert http.post(f"http://127.0.0.1:{port}/v3", b"second", {}) == (200, b"1")
    finally:
        http.close()
        listener.close()
    server.join(timeout=5)
    assert bodies == [b"first", b"second"]
